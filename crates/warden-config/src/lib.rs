//! `warden.toml`: one file, every value overridable by the environment, checked once at start.
//!
//! Two types, as everywhere in Warden: [`RawConfig`] is the file as written (unknown keys and
//! wrong types are errors naming the key, so a typo cannot silently switch a check off), and
//! [`Config`] is what the program runs on, built only by [`load`]. Environment variables named
//! `WARDEN_<SECTION>__<KEY>` (double underscore between levels; a number indexes an array,
//! e.g. `WARDEN_ISSUERS__0__LEEWAY_SECONDS`) override the file; their values are read as TOML
//! when they parse as TOML (numbers, booleans, arrays) and as strings otherwise. Relative paths
//! are resolved against the directory of the config file. Secrets are never in the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use warden_token::{IssuerConfig, IssuerSettings};

mod tokens;
pub use tokens::{
    KeyEncryptionKey, OWN_MAX_TOKEN_BYTES, ServiceAccountSettings, TokenIssuance, TokenSettings,
};

/// Where the config came from, for error messages.
const ENV_PREFIX: &str = "WARDEN_";

/// A configuration that cannot be used; the message names the file, key or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The config file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, a key is unknown, or a value has the wrong type.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file (and environment) the error came from.
        origin: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// An environment override cannot be applied.
    #[error("environment variable {variable}: {message}")]
    Environment {
        /// The variable.
        variable: String,
        /// What is wrong.
        message: String,
    },
    /// An issuer is misconfigured.
    #[error(transparent)]
    Issuer(#[from] warden_token::IssuerSettingsError),
}

/// `warden.toml` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerSettings,
    /// `[policy]`.
    #[serde(default)]
    pub policy: Option<PolicySettings>,
    /// `[peps]`.
    #[serde(default)]
    pub peps: PepSettings,
    /// `[[issuers]]`.
    #[serde(default)]
    pub issuers: Vec<IssuerSettings>,
    /// `[storage]`.
    #[serde(default)]
    pub storage: Option<StorageSettings>,
    /// `[principals]`.
    #[serde(default)]
    pub principals: PrincipalSettings,
    /// `[audit]`.
    #[serde(default)]
    pub audit: AuditSettings,
    /// `[tokens]`: Warden as an issuer.
    #[serde(default)]
    pub tokens: Option<TokenSettings>,
    /// `[service_accounts]`.
    #[serde(default)]
    pub service_accounts: ServiceAccountSettings,
    /// `[rate_limits]`.
    #[serde(default)]
    pub rate_limits: RateLimitSettings,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// `[[routes]]`: gateway requests as actions on resources.
    #[serde(default)]
    pub routes: Vec<RouteSettings>,
    /// `[forward_auth]`.
    #[serde(default)]
    pub forward_auth: ForwardAuthSettings,
    /// `[grpc]`: the Envoy `ext_authz` listener.
    #[serde(default)]
    pub grpc: Option<GrpcSettings>,
    /// `[context_token]`: identity passed inward on allow.
    #[serde(default)]
    pub context_token: Option<ContextTokenSettings>,
}

/// Declares a configuration value that is one of a few names: parsed from the name (with a
/// message listing the choices), written back as the name.
macro_rules! named_choice {
    ($(#[$meta:meta])* $name:ident, $key:literal, { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The name as written in the configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(text: String) -> Result<Self, String> {
                match text.as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        concat!($key, " must be one of {} (it is \"{}\")"),
                        [$(concat!("\"", $text, "\"")),+].join(", "),
                        text
                    )),
                }
            }
        }
    };
}

mod operator;
pub use operator::{ClientAuth, MetricsSettings, RateLimitSettings, TlsSettings};
mod gateways;
pub use gateways::{
    ContextTokenSettings, ForwardAuthSettings, GrpcSettings, MAX_CONTEXT_TOKEN_TTL_SECONDS,
    RouteSettings, TemplateSegment, UnknownResources, UnmatchedRoute,
};

named_choice!(
    /// Where decision-log records go (`[audit] sink`).
    AuditSink, "audit.sink", {
        /// JSON lines in `[audit] dir`.
        #[default]
        File = "file",
        /// The `[storage]` PostgreSQL database.
        Postgres = "postgres",
    }
);

named_choice!(
    /// When an answer may leave relative to its record (`[audit] durability`).
    AuditDurability, "audit.durability", {
        /// Once written to the operating system.
        #[default]
        Durable = "durable",
        /// Once written and fsynced.
        Synced = "synced",
        /// At once; the record follows within milliseconds.
        Buffered = "buffered",
    }
);

named_choice!(
    /// What a failing decision log does to new requests (`[audit] on_failure`).
    AuditOnFailure, "audit.on_failure", {
        /// Deny (fail closed).
        #[default]
        Deny = "deny",
        /// Wait, bounded by the request timeout.
        Block = "block",
    }
);

/// `[audit]`: the decision log.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Record decisions at all (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// `file` (JSON lines, the default) or `postgres` (the `[storage]` database).
    #[serde(default)]
    pub sink: AuditSink,
    /// The log directory of the file sink (default `warden-audit`, relative to the config file).
    #[serde(default = "default_audit_dir")]
    pub dir: PathBuf,
    /// Rotate the file when it would grow past this many bytes (default 64 MiB).
    #[serde(default = "default_audit_max_file_bytes")]
    pub max_file_bytes: u64,
    /// `durable` (default), `synced` or `buffered`.
    #[serde(default)]
    pub durability: AuditDurability,
    /// `deny` (default: fail closed) or `block`.
    #[serde(default)]
    pub on_failure: AuditOnFailure,
    /// Records that may wait for the writer (default 8192).
    #[serde(default = "default_audit_queue")]
    pub queue_capacity: usize,
    /// Most records per write (default 512).
    #[serde(default = "default_audit_batch")]
    pub batch_max: usize,
    /// A signed checkpoint every this many records (default 1000)…
    #[serde(default = "default_audit_checkpoint_every")]
    pub checkpoint_every: u64,
    /// …or this many seconds after an unsigned record (default 5).
    #[serde(default = "default_audit_checkpoint_seconds")]
    pub checkpoint_interval_seconds: u64,
    /// The Ed25519 checkpoint key (PKCS#8 PEM), created with mode 0600 when missing (default
    /// `<dir>/audit-signing.key`; keep it elsewhere in production).
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// Milliseconds between retries of a failed write (default 500).
    #[serde(default = "default_audit_retry_ms")]
    pub retry_interval_ms: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            sink: AuditSink::default(),
            dir: default_audit_dir(),
            max_file_bytes: default_audit_max_file_bytes(),
            durability: AuditDurability::default(),
            on_failure: AuditOnFailure::default(),
            queue_capacity: default_audit_queue(),
            batch_max: default_audit_batch(),
            checkpoint_every: default_audit_checkpoint_every(),
            checkpoint_interval_seconds: default_audit_checkpoint_seconds(),
            signing_key_file: None,
            retry_interval_ms: default_audit_retry_ms(),
        }
    }
}

fn default_audit_dir() -> PathBuf {
    PathBuf::from("warden-audit")
}
fn default_audit_max_file_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_audit_queue() -> usize {
    8192
}
fn default_audit_batch() -> usize {
    512
}
fn default_audit_checkpoint_every() -> u64 {
    1000
}
fn default_audit_checkpoint_seconds() -> u64 {
    5
}
fn default_audit_retry_ms() -> u64 {
    500
}

/// `[principals]`: which facts about a known principal a verified token may state.
///
/// Where the store or the entity file knows a principal, its data wins over the token's claims;
/// roles and status always come from there. Attributes listed here are the exception: for
/// them the (verified, mapped) claim is authoritative, e.g. an `mfa` flag only the IdP knows.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSettings {
    /// Principal attributes (names from `[issuers.claims.attributes]`) taken from the token.
    #[serde(default)]
    pub claim_attributes: Vec<String>,
}

/// `[storage]`: where Warden keeps its state.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// `sqlite://warden.db` (embedded; relative to the config file) or `postgres://…`.
    pub url: String,
    /// How often the change counter is read, in milliseconds (default 250).
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// A replica that cannot read the store for this long denies every request (default 5).
    #[serde(default = "default_max_staleness")]
    pub max_staleness_seconds: u64,
    /// Serve only these tenants (default: all): the replica holds only their tenant-scoped
    /// data, and refuses decisions about other tenants (`tenant_not_served`).
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
}

fn default_poll_ms() -> u64 {
    250
}
fn default_max_staleness() -> u64 {
    5
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Listen address (default `127.0.0.1:8180`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest request body, in bytes (default 65536).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest body of a bulk admin call (entity import and delete), in bytes (default 8 MiB).
    #[serde(default = "default_max_import_bytes")]
    pub max_import_bytes: usize,
    /// Most evaluations in one batch request (default 100).
    #[serde(default = "default_max_batch")]
    pub max_batch_size: usize,
    /// Request timeout, in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Seconds in-flight requests get to finish on shutdown (default 10).
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_seconds: u64,
    /// Milliseconds a connection gets to send a request's headers, and the longest an HTTP/1.1
    /// connection may sit idle between requests (default 10000).
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Most connections open at once from one client address (an IPv6 address by its /64);
    /// one more is closed at once (default 512).
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// Most connections open at once in all (default 10000; lowered at start to what the
    /// process's open-file limit leaves, after raising its soft limit to the hard one).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `[server.tls]`: HTTPS on the listener (paths resolved against the config file).
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            max_import_bytes: default_max_import_bytes(),
            max_batch_size: default_max_batch(),
            request_timeout_ms: default_timeout_ms(),
            shutdown_grace_seconds: default_shutdown_grace(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            max_connections_per_address: default_max_connections_per_address(),
            max_connections: default_max_connections(),
            tls: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8180))
}
fn default_max_body_bytes() -> usize {
    64 * 1024
}
fn default_max_import_bytes() -> usize {
    8 * 1024 * 1024
}
fn default_max_batch() -> usize {
    100
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_shutdown_grace() -> u64 {
    10
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_max_connections_per_address() -> usize {
    512
}
fn default_max_connections() -> usize {
    10_000
}

/// `[policy]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// The pack directory (or a single `.cedar` file).
    pub dir: PathBuf,
    /// Cedar entity JSON loaded at start and on every reload.
    #[serde(default)]
    pub entities_file: Option<PathBuf>,
    /// Reload when the pack directory changes (default true); SIGHUP always reloads.
    #[serde(default = "default_true")]
    pub watch: bool,
}

fn default_true() -> bool {
    true
}

/// `[peps]`: how policy enforcement points authenticate.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PepSettings {
    /// Accept unauthenticated PEPs (local development only; refused unless on loopback).
    #[serde(default)]
    pub allow_unauthenticated: bool,
    /// `sha256:<hex>` hashes of PEP bearer credentials.
    #[serde(default)]
    pub credentials: Vec<String>,
    /// Accept a client certificate verified against `server.tls.client_ca_file` as a PEP's
    /// authentication, in place of a bearer credential (default false).
    #[serde(default)]
    pub client_certificates: bool,
}

/// The checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where it came from.
    pub origin: String,
    /// `[server]`.
    pub server: ServerSettings,
    /// `[policy]` with absolute paths.
    pub policy: Option<PolicySettings>,
    /// Whether PEPs may call unauthenticated.
    pub allow_unauthenticated_peps: bool,
    /// SHA-256 digests of PEP credentials.
    pub pep_credential_hashes: Vec<[u8; 32]>,
    /// Checked issuers, with absolute paths.
    pub issuers: Vec<IssuerConfig>,
    /// `[storage]`, with a sqlite path resolved against the config file.
    pub storage: Option<StorageSettings>,
    /// Attributes for which the token, not the store, is authoritative.
    pub claim_attributes: Vec<String>,
    /// `[audit]`, with paths resolved against the config file (checked values).
    pub audit: AuditSettings,
    /// `[tokens]`, checked (its issuer is also in `issuers`).
    pub tokens: Option<TokenIssuance>,
    /// `[service_accounts]`.
    pub service_accounts: ServiceAccountSettings,
    /// `[rate_limits]`.
    pub rate_limits: RateLimitSettings,
    /// SHA-256 digests of the credentials that may read `/metrics` (empty: open).
    pub metrics_credential_hashes: Vec<[u8; 32]>,
    /// Whether a verified TLS client certificate authenticates a PEP.
    pub pep_client_certificates: bool,
    /// `[[routes]]`, checked for form (and against the pack when the server starts).
    pub routes: Vec<RouteSettings>,
    /// `[forward_auth]`.
    pub forward_auth: ForwardAuthSettings,
    /// `[grpc]`.
    pub grpc: Option<GrpcSettings>,
    /// `[context_token]`, checked (it needs `[tokens]`).
    pub context_token: Option<ContextTokenSettings>,
}

/// Loads `path` (or only defaults when `None`), applies `WARDEN_…__…` overrides from `env`,
/// and checks everything.
pub fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
    let (mut document, origin, base_dir) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let document: toml::Table =
                toml::from_str(&text).map_err(|error| ConfigError::Invalid {
                    origin: path.display().to_string(),
                    message: error.to_string().replace('\n', " ").trim().to_owned(),
                })?;
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            (document, path.display().to_string(), base)
        }
        None => (
            toml::Table::new(),
            "the built-in defaults".to_owned(),
            PathBuf::new(),
        ),
    };
    let mut overridden = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        apply_override(&mut document, rest, value).map_err(|message| ConfigError::Environment {
            variable: name.clone(),
            message,
        })?;
        overridden.push(name.clone());
    }
    let origin = if overridden.is_empty() {
        origin
    } else {
        format!("{origin} (with {})", overridden.join(", "))
    };
    let raw: RawConfig =
        serde_path_to_error::deserialize(toml::Value::Table(document)).map_err(|error| {
            let path = error.path().to_string();
            let message = error
                .into_inner()
                .message()
                .replace('\n', " ")
                .trim()
                .to_owned();
            ConfigError::Invalid {
                origin: origin.clone(),
                message: if path == "." {
                    message
                } else {
                    format!("`{path}`: {message}")
                },
            }
        })?;
    check(raw, origin, &base_dir, env)
}

fn check(
    raw: RawConfig,
    origin: String,
    base_dir: &Path,
    env: &[(String, String)],
) -> Result<Config, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.clone(),
        message,
    };
    if raw.peps.allow_unauthenticated && !raw.server.listen.ip().is_loopback() {
        return Err(invalid(format!(
            "peps.allow_unauthenticated = true is refused unless server.listen is a loopback address (it is {})",
            raw.server.listen
        )));
    }
    let pep_credential_hashes =
        operator::credential_hashes("peps.credentials", &raw.peps.credentials).map_err(&invalid)?;
    let metrics_credential_hashes =
        operator::credential_hashes("metrics.credentials", &raw.metrics.credentials)
            .map_err(&invalid)?;
    let mut server = raw.server;
    server.tls = server
        .tls
        .take()
        .map(|tls| operator::check_tls(tls, base_dir))
        .transpose()
        .map_err(&invalid)?;
    if raw.peps.client_certificates
        && server
            .tls
            .as_ref()
            .is_none_or(|tls| tls.client_ca_file.is_none())
    {
        return Err(invalid(
            "peps.client_certificates = true needs server.tls.client_ca_file (the CA that PEP certificates chain to)"
                .to_owned(),
        ));
    }
    for route in &raw.routes {
        route.check().map_err(&invalid)?;
    }
    if server.header_read_timeout_ms < 100
        || server.max_connections_per_address == 0
        || server.max_connections == 0
    {
        return Err(invalid(
            "server.header_read_timeout_ms must be at least 100, and server.max_connections_per_address and server.max_connections at least 1"
                .to_owned(),
        ));
    }
    if server.max_batch_size == 0 || server.max_body_bytes < 1024 {
        return Err(invalid(
            "server.max_batch_size must be at least 1 and server.max_body_bytes at least 1024"
                .to_owned(),
        ));
    }
    let policy = raw.policy.map(|mut policy| {
        policy.dir = base_dir.join(&policy.dir);
        policy.entities_file = policy.entities_file.map(|file| base_dir.join(file));
        policy
    });
    let read_env = |name: &str| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let mut issuers = Vec::with_capacity(raw.issuers.len());
    let mut seen = std::collections::HashSet::new();
    for mut settings in raw.issuers {
        if !seen.insert(settings.issuer.clone()) {
            return Err(invalid(format!(
                "issuer `{}` is configured twice",
                settings.issuer
            )));
        }
        settings.jwks_file = settings.jwks_file.map(|file| base_dir.join(file));
        settings.hs256_secret_file = settings.hs256_secret_file.map(|file| base_dir.join(file));
        issuers.push(settings.check(&read_env)?);
    }
    let storage = raw.storage.map(|mut storage| {
        if let Some(path) = storage.url.strip_prefix("sqlite://")
            && !path.starts_with('/')
            && !path.starts_with(':')
        {
            storage.url = format!("sqlite://{}", base_dir.join(path).display());
        }
        storage
    });
    let mut audit = raw.audit;
    if audit.sink == AuditSink::Postgres
        && !storage
            .as_ref()
            .is_some_and(|s| s.url.starts_with("postgres"))
    {
        return Err(invalid(
            "audit.sink = \"postgres\" needs a [storage] url on PostgreSQL".to_owned(),
        ));
    }
    if audit.queue_capacity == 0 || audit.batch_max == 0 || audit.checkpoint_every == 0 {
        return Err(invalid(
            "audit.queue_capacity, audit.batch_max and audit.checkpoint_every must be at least 1"
                .to_owned(),
        ));
    }
    audit.dir = base_dir.join(&audit.dir);
    audit.signing_key_file = Some(match audit.signing_key_file.take() {
        Some(file) => base_dir.join(file),
        None => audit.dir.join("audit-signing.key"),
    });
    let tokens = match raw.tokens {
        Some(settings) => {
            let checked = tokens::check_tokens(settings, base_dir, &read_env).map_err(&invalid)?;
            if storage.is_none() {
                return Err(invalid(
                    "[tokens] needs [storage]: service accounts and signing keys live in the store"
                        .to_owned(),
                ));
            }
            if issuers.iter().any(|issuer| issuer.issuer == checked.issuer) {
                return Err(invalid(format!(
                    "tokens.issuer `{}` is also an [[issuers]] entry; Warden verifies its own tokens without one",
                    checked.issuer
                )));
            }
            issuers.push(checked.issuer_config());
            Some(checked)
        }
        None => None,
    };
    tokens::check_service_accounts(&raw.service_accounts).map_err(&invalid)?;
    let context_token = match (raw.context_token, &tokens) {
        (None, _) => {
            if raw.routes.iter().any(|route| route.audience.is_some()) {
                return Err(invalid(
                    "routes: `audience` names a context token's audience, and [context_token] is not configured"
                        .to_owned(),
                ));
            }
            None
        }
        (Some(_), None) => {
            return Err(invalid(
                "[context_token] needs [tokens]: context tokens are signed with Warden's signing key"
                    .to_owned(),
            ));
        }
        (Some(settings), Some(tokens)) => {
            settings
                .check(&tokens.audience, &raw.routes)
                .map_err(&invalid)?;
            Some(settings)
        }
    };
    if let Some(grpc) = &raw.grpc
        && (grpc.max_message_bytes < 1024 || grpc.max_concurrent_streams == 0)
    {
        return Err(invalid(
            "grpc.max_message_bytes must be at least 1024 and grpc.max_concurrent_streams at least 1"
                .to_owned(),
        ));
    }
    Ok(Config {
        origin,
        audit,
        tokens,
        service_accounts: raw.service_accounts,
        storage,
        claim_attributes: raw.principals.claim_attributes,
        server,
        policy,
        allow_unauthenticated_peps: raw.peps.allow_unauthenticated,
        pep_credential_hashes,
        metrics_credential_hashes,
        pep_client_certificates: raw.peps.client_certificates,
        rate_limits: raw.rate_limits,
        issuers,
        routes: raw.routes,
        forward_auth: raw.forward_auth,
        grpc: raw.grpc,
        context_token,
    })
}

/// Sets `SECTION__KEY[__…]` in the document; numbers index arrays.
fn apply_override(document: &mut toml::Table, path: &str, raw_value: &str) -> Result<(), String> {
    let segments: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err("empty key segment".to_owned());
    }
    let value = toml::from_str::<toml::Table>(&format!("value = {raw_value}"))
        .ok()
        .and_then(|mut table| table.remove("value"))
        .unwrap_or_else(|| toml::Value::String(raw_value.to_owned()));
    set_value(document, &segments, value)
}

/// Sets `value`, already parsed, at the key path `segments` (an index segment steps into an
/// array of tables).
fn set_value(
    document: &mut toml::Table,
    segments: &[String],
    value: toml::Value,
) -> Result<(), String> {
    let Some((last, parents)) = segments.split_last() else {
        return Err("no key".to_owned());
    };
    let mut current = document;
    for (position, segment) in parents.iter().enumerate() {
        let next_is_index = segments
            .get(position + 1)
            .is_some_and(|s| s.parse::<usize>().is_ok());
        let entry = current.entry(segment.clone()).or_insert_with(|| {
            if next_is_index {
                toml::Value::Array(Vec::new())
            } else {
                toml::Value::Table(toml::Table::new())
            }
        });
        current = match entry {
            toml::Value::Table(table) => table,
            toml::Value::Array(items) => {
                // The next segment is an index into this array of tables.
                return set_in_array(
                    items,
                    segments.get(position + 1..).unwrap_or_default(),
                    value,
                );
            }
            _ => return Err(format!("`{segment}` is not a table")),
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

#[allow(
    clippy::indexing_slicing,
    reason = "callers pass a non-empty remainder checked below"
)]
fn set_in_array(
    items: &mut [toml::Value],
    rest: &[String],
    value: toml::Value,
) -> Result<(), String> {
    let Some((index, rest)) = rest.split_first() else {
        return Err("an array needs an index".to_owned());
    };
    let index: usize = index
        .parse()
        .map_err(|_| format!("`{index}` is not an array index"))?;
    let Some(toml::Value::Table(table)) = items.get_mut(index) else {
        return Err(format!("there is no element {index} to override"));
    };
    if rest.is_empty() {
        return Err("an array element needs a key".to_owned());
    }
    // The value as parsed once: turning it back into text and parsing it again would make a
    // quoted "123" or "true" a number or a boolean.
    set_value(table, rest, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warden.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// `[context_token]` needs Warden's signing key, a short life and an audience that is not
    /// Warden's own (issue #23); `[grpc]` limits are checked.
    #[test]
    fn context_tokens_and_grpc_are_checked() {
        let kek = [("WARDEN_TEST_KEK", "ab".repeat(32))];
        let kek: Vec<(String, String)> = kek
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let tokens = "[storage]\nurl = \"sqlite://w.db\"\n[tokens]\nissuer = \"http://127.0.0.1:8180\"\nkey_encryption_key_env = \"WARDEN_TEST_KEK\"\n";
        let route = "[[routes]]\npath = \"/d/{id}\"\naction = \"read\"\nresource_type = \"Document\"\nresource_id = \"id\"\n";
        let good = format!(
            "{tokens}[context_token]\naudience = \"docs-app\"\n[grpc]\nlisten = \"127.0.0.1:9191\"\n"
        );
        let (_dir, path) = write(&good);
        let config = load(Some(&path), &kek).unwrap();
        assert_eq!(config.context_token.unwrap().ttl_seconds, 30);
        assert_eq!(config.grpc.unwrap().max_message_bytes, 262_144);
        for (text, expected) in [
            (
                "[context_token]\naudience = \"docs-app\"\n".to_owned(),
                "needs [tokens]",
            ),
            (
                format!("{tokens}[context_token]\naudience = \"warden\"\n"),
                "Warden's own",
            ),
            (
                format!("{tokens}[context_token]\naudience = \"docs-app\"\nttl_seconds = 0\n"),
                "between 1 and 300",
            ),
            (
                format!("{tokens}[context_token]\naudience = \"docs-app\"\nttl_seconds = 301\n"),
                "between 1 and 300",
            ),
            (
                format!("{tokens}[context_token]\naudience = \" \"\n"),
                "non-empty",
            ),
            (
                format!(
                    "{tokens}[context_token]\naudience = \"docs-app\"\n{route}audience = \"warden\"\n"
                ),
                "Warden's own",
            ),
            (
                format!("{route}audience = \"billing\"\n"),
                "[context_token] is not configured",
            ),
            (
                "[grpc]\nlisten = \"127.0.0.1:1\"\nmax_message_bytes = 10\n".to_owned(),
                "grpc.max_message_bytes",
            ),
            ("[grpc]\nlisten = \"nowhere\"\n".to_owned(), "listen"),
        ] {
            let (_dir, path) = write(&text);
            let message = load(Some(&path), &kek).unwrap_err().to_string();
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    #[test]
    fn defaults_need_no_file() {
        let config = load(None, &[]).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8180");
        assert!(config.policy.is_none());
        assert!(config.issuers.is_empty());
    }

    /// Choices are typed once read: a wrong name is refused with the choices, from the file and
    /// from the environment alike (issue #26).
    #[test]
    fn audit_choices_are_enums_and_a_wrong_name_lists_the_choices() {
        let (_dir, path) = write("[audit]\ndurability = \"synced\"\non_failure = \"block\"\n");
        let config = load(Some(&path), &[]).unwrap();
        assert_eq!(config.audit.durability, AuditDurability::Synced);
        assert_eq!(config.audit.on_failure, AuditOnFailure::Block);
        assert_eq!(config.audit.sink, AuditSink::File);
        let (_dir, path) = write("[audit]\nsink = \"s3\"\n");
        let message = load(Some(&path), &[]).unwrap_err().to_string();
        assert!(
            message.contains(r#"audit.sink must be one of "file", "postgres" (it is "s3")"#),
            "{message}"
        );
        let message = load(None, &env(&[("WARDEN_AUDIT__ON_FAILURE", "shrug")]))
            .unwrap_err()
            .to_string();
        assert!(message.contains(r#""deny", "block""#), "{message}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let (_dir, path) = write("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
        let message = load(Some(&path), &[]).unwrap_err().to_string();
        assert!(message.contains("lisen"), "{message}");
        let (_dir, path) = write("[server]\nmax_batch_size = \"many\"\n");
        let message = load(Some(&path), &[]).unwrap_err().to_string();
        assert!(message.contains("max_batch_size"), "{message}");
        let (_dir, path) = write("[polcy]\ndir = \"x\"\n");
        assert!(
            load(Some(&path), &[])
                .unwrap_err()
                .to_string()
                .contains("polcy")
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let (_dir, path) = write(
            "[server]\nlisten = \"127.0.0.1:1\"\n[[issuers]]\nissuer = \"https://a\"\naudiences = [\"x\"]\njwks_uri = \"https://a/jwks\"\nalgorithms = [\"RS256\"]\n",
        );
        let config = load(
            Some(&path),
            &env(&[
                ("WARDEN_SERVER__LISTEN", "127.0.0.1:9999"),
                ("WARDEN_SERVER__MAX_BATCH_SIZE", "7"),
                ("WARDEN_ISSUERS__0__LEEWAY_SECONDS", "5"),
                ("WARDEN_ADMIN_TOKEN", "not a config key"),
            ]),
        )
        .unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(config.server.max_batch_size, 7);
        assert_eq!(config.issuers[0].leeway_seconds, 5);
        assert!(config.origin.contains("WARDEN_SERVER__LISTEN"));
        let error = load(Some(&path), &env(&[("WARDEN_SERVER__NOPE", "1")])).unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");
    }

    /// A quoted value inside an array of tables stays a string: it was turned back into text
    /// and parsed again, so `"123"` became the number 123 and was refused.
    #[test]
    fn a_quoted_override_in_an_array_element_stays_a_string() {
        let (_dir, path) = write(
            "[[issuers]]\nissuer = \"https://a\"\naudiences = [\"x\"]\njwks_uri = \"https://a/jwks\"\nalgorithms = [\"RS256\"]\n",
        );
        let config = load(
            Some(&path),
            &env(&[("WARDEN_ISSUERS__0__TOKEN_TYPE", "\"123\"")]),
        )
        .unwrap();
        assert_eq!(config.issuers[0].token_type.as_deref(), Some("123"));
    }

    #[test]
    fn unauthenticated_peps_only_on_loopback() {
        let (_dir, path) =
            write("[server]\nlisten = \"0.0.0.0:8180\"\n[peps]\nallow_unauthenticated = true\n");
        assert!(
            load(Some(&path), &[])
                .unwrap_err()
                .to_string()
                .contains("loopback")
        );
    }

    #[test]
    fn pep_credentials_must_be_hashes() {
        let (_dir, path) = write("[peps]\ncredentials = [\"hunter2\"]\n");
        assert!(
            load(Some(&path), &[])
                .unwrap_err()
                .to_string()
                .contains("sha256:")
        );
        let digest = "a".repeat(64);
        let (_dir, path) = write(&format!("[peps]\ncredentials = [\"sha256:{digest}\"]\n"));
        assert_eq!(
            load(Some(&path), &[]).unwrap().pep_credential_hashes.len(),
            1
        );
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let (dir, path) =
            write("[policy]\ndir = \"pack\"\nentities_file = \"pack/entities.json\"\n");
        let config = load(Some(&path), &[]).unwrap();
        let policy = config.policy.unwrap();
        assert_eq!(policy.dir, dir.path().join("pack"));
        assert_eq!(
            policy.entities_file.unwrap(),
            dir.path().join("pack/entities.json")
        );
    }
}
