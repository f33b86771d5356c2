//! The `[[issuers]]` table of `warden.toml`, as written, and its checked form.
//!
//! Two types: [`IssuerSettings`] is what the file says (unknown keys are errors naming the
//! key), [`IssuerConfig`] is what the verifier runs on, built only by [`IssuerSettings::check`].
//! Secrets (the HS256 key) are never in the file: an environment variable name or a file path.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

/// One `[[issuers]]` table as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// The exact `iss` value of this issuer's tokens.
    pub issuer: String,
    /// Accepted audiences; the token's `aud` (string or array) must contain one.
    pub audiences: Vec<String>,
    /// Where to fetch the JWKS (https, or http on a loopback address).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// A JWKS file to read instead of fetching one.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Allowed algorithms: RS256/384/512, PS256/384/512, ES256, ES384, EdDSA, or HS256 alone
    /// with a configured secret.
    pub algorithms: Vec<String>,
    /// Clock skew tolerated for `exp`, `nbf` and `iat`, in seconds (default 30, at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Claims that must be present (default `["sub", "exp"]`).
    #[serde(default = "default_required_claims")]
    pub required_claims: Vec<String>,
    /// Largest accepted token, in bytes (default 8192).
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Required header `typ`, e.g. `at+jwt` (RFC 9068); compared case-insensitively, with an
    /// optional `application/` prefix.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Name of the environment variable holding the HS256 secret.
    #[serde(default)]
    pub hs256_secret_env: Option<String>,
    /// Path of a file holding the HS256 secret.
    #[serde(default)]
    pub hs256_secret_file: Option<PathBuf>,
    /// Refresh interval when the JWKS response has no `Cache-Control: max-age` (default 300).
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_seconds: u64,
    /// At most one refresh for unknown `kid`s per this many seconds (default 30).
    #[serde(default = "default_unknown_kid_interval")]
    pub jwks_unknown_kid_interval_seconds: u64,
    /// How long keys keep serving when the JWKS cannot be fetched (default 86400).
    #[serde(default = "default_max_stale")]
    pub jwks_max_stale_seconds: u64,
    /// Timeout of one JWKS fetch (default 5).
    #[serde(default = "default_fetch_timeout")]
    pub jwks_timeout_seconds: u64,
    /// How claims become a principal.
    #[serde(default)]
    pub claims: ClaimSettings,
}

/// `[issuers.claims]`: the claim mapping.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSettings {
    /// The claim holding the subject (default `sub`).
    #[serde(default = "default_subject")]
    pub subject: String,
    /// The claim holding the tenant, e.g. `org_id`; when set, the principal's id is
    /// `<tenant>/<subject>` and a token without it is refused.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The claim holding roles: an array, or a space- or comma-separated string.
    #[serde(default)]
    pub roles: Option<String>,
    /// The claim holding scopes (default `scope`): a space-delimited string or an array
    /// (`scp`).
    #[serde(default = "default_scopes")]
    pub scopes: String,
    /// The principal's entity type: a name (`User`, the default) or rules.
    #[serde(default)]
    pub principal_type: PrincipalTypeSettings,
    /// Extra claims copied into principal attributes, by attribute name.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeSettings>,
}

impl Default for ClaimSettings {
    fn default() -> Self {
        Self {
            subject: default_subject(),
            tenant: None,
            roles: None,
            scopes: default_scopes(),
            principal_type: PrincipalTypeSettings::default(),
            attributes: BTreeMap::new(),
        }
    }
}

/// `principal_type = "User"`, or a table with a default and rules.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum PrincipalTypeSettings {
    /// Every principal of this issuer has this type.
    Fixed(String),
    /// The first matching rule decides; otherwise the default.
    Rules {
        /// The type when no rule matches.
        default: String,
        /// Rules, in order.
        rules: Vec<PrincipalTypeRule>,
    },
}

impl Default for PrincipalTypeSettings {
    fn default() -> Self {
        PrincipalTypeSettings::Fixed("User".to_owned())
    }
}

/// One rule: when all of `present` are there and none of `absent`, the principal is `type`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PrincipalTypeRule {
    /// Claims that must be present.
    #[serde(default)]
    pub present: Vec<String>,
    /// Claims that must be absent.
    #[serde(default)]
    pub absent: Vec<String>,
    /// The entity type, e.g. `ServiceAccount`.
    #[serde(rename = "type")]
    pub entity_type: String,
}

/// One extra attribute: which claim, and its declared type.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AttributeSettings {
    /// The claim to copy.
    pub claim: String,
    /// `string`, `long`, `bool` or `set_of_string`.
    #[serde(rename = "type")]
    pub attribute_type: AttributeType,
    /// Refuse tokens without the claim (default false: the attribute is then absent).
    #[serde(default)]
    pub required: bool,
}

/// Declared types of extra attributes.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    /// A JSON string.
    String,
    /// A JSON integer.
    Long,
    /// A JSON boolean.
    Bool,
    /// A JSON array of strings (or a space-separated string).
    SetOfString,
}

fn default_leeway() -> u64 {
    30
}
fn default_required_claims() -> Vec<String> {
    vec!["sub".to_owned(), "exp".to_owned()]
}
fn default_max_token_bytes() -> usize {
    8192
}
fn default_jwks_refresh() -> u64 {
    300
}
fn default_unknown_kid_interval() -> u64 {
    30
}
fn default_max_stale() -> u64 {
    86_400
}
fn default_fetch_timeout() -> u64 {
    5
}
fn default_subject() -> String {
    "sub".to_owned()
}
fn default_scopes() -> String {
    "scope".to_owned()
}

/// Where an issuer's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySourceConfig {
    /// Fetched over HTTP(S).
    Uri(String),
    /// Read from a file.
    File(PathBuf),
    /// An HS256 shared secret (from the environment or a file). Never shown in `Debug`.
    Secret(HmacSecret),
    /// Keys the server installs itself (Warden's own signing keys, read from the store): see
    /// `IssuerKeys::install`.
    Managed,
}

/// An HS256 secret; its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecret(pub(crate) Vec<u8>);

impl HmacSecret {
    /// The secret bytes, for signing development tokens (`warden token mint`). Never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HmacSecret(<{} bytes redacted>)", self.0.len())
    }
}

/// JWKS refresh timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwksTiming {
    /// Refresh interval without Cache-Control.
    pub refresh: Duration,
    /// Minimum time between unknown-kid refreshes.
    pub unknown_kid_interval: Duration,
    /// Keys stop serving this long after the last successful fetch.
    pub max_stale: Duration,
    /// One fetch's timeout.
    pub timeout: Duration,
}

/// A checked issuer configuration.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// Exact `iss`.
    pub issuer: String,
    /// Accepted audiences (non-empty).
    pub audiences: Vec<String>,
    /// Allowed algorithms (non-empty; HS256 only alone).
    pub algorithms: Vec<Algorithm>,
    /// Key source.
    pub keys: KeySourceConfig,
    /// Leeway in seconds.
    pub leeway_seconds: i64,
    /// Required claims.
    pub required_claims: Vec<String>,
    /// Size limit.
    pub max_token_bytes: usize,
    /// Required `typ`, lower-cased without `application/`.
    pub token_type: Option<String>,
    /// JWKS timing.
    pub timing: JwksTiming,
    /// The claim mapping.
    pub claims: ClaimSettings,
}

/// A configuration error, naming the issuer and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("issuer `{issuer}`: {message}")]
pub struct IssuerSettingsError {
    /// The issuer's `issuer` value.
    pub issuer: String,
    /// What is wrong.
    pub message: String,
}

/// Algorithms Warden verifies.
pub const SUPPORTED_ALGORITHMS: [&str; 10] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
];

impl IssuerSettings {
    /// Checks the settings; `read_env` looks up environment variables (injected for tests).
    pub fn check(
        &self,
        read_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<IssuerConfig, IssuerSettingsError> {
        let fail = |message: String| IssuerSettingsError {
            issuer: self.issuer.clone(),
            message,
        };
        if self.issuer.trim().is_empty() {
            return Err(fail("`issuer` must not be empty".to_owned()));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(fail(
                "`audiences` must list at least one non-empty audience".to_owned(),
            ));
        }
        if self.algorithms.is_empty() {
            return Err(fail(
                "`algorithms` must list at least one algorithm".to_owned(),
            ));
        }
        let mut algorithms = Vec::with_capacity(self.algorithms.len());
        for name in &self.algorithms {
            let supported = SUPPORTED_ALGORITHMS.contains(&name.as_str());
            let algorithm = Algorithm::from_str(name).ok().filter(|_| supported).ok_or_else(|| {
                fail(format!(
                    "algorithm `{name}` is not supported (supported: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256)"
                ))
            })?;
            algorithms.push(algorithm);
        }
        let wants_hmac = algorithms.contains(&Algorithm::HS256);
        let secret_configured = self.hs256_secret_env.is_some() || self.hs256_secret_file.is_some();
        let keys = match (&self.jwks_uri, &self.jwks_file, wants_hmac) {
            (_, _, true) => {
                if algorithms.len() > 1 {
                    return Err(fail(
                        "HS256 cannot be combined with other algorithms on one issuer".to_owned(),
                    ));
                }
                if self.jwks_uri.is_some() || self.jwks_file.is_some() {
                    return Err(fail("HS256 is refused on an issuer with asymmetric keys (jwks_uri or jwks_file)".to_owned()));
                }
                KeySourceConfig::Secret(self.read_secret(read_env).map_err(fail)?)
            }
            _ if secret_configured => {
                return Err(fail(
                    "an HS256 secret is configured but HS256 is not in `algorithms`".to_owned(),
                ));
            }
            (Some(_), Some(_), false) => {
                return Err(fail(
                    "set either `jwks_uri` or `jwks_file`, not both".to_owned(),
                ));
            }
            (Some(uri), None, false) => {
                check_jwks_uri(uri).map_err(fail)?;
                KeySourceConfig::Uri(uri.clone())
            }
            (None, Some(path), false) => KeySourceConfig::File(path.clone()),
            (None, None, false) => {
                return Err(fail(
                    "one of `jwks_uri` or `jwks_file` is required".to_owned(),
                ));
            }
        };
        if self.leeway_seconds > 300 {
            return Err(fail(format!(
                "`leeway_seconds` = {} is more than 300",
                self.leeway_seconds
            )));
        }
        if !(256..=65_536).contains(&self.max_token_bytes) {
            return Err(fail(format!(
                "`max_token_bytes` = {} must be between 256 and 65536",
                self.max_token_bytes
            )));
        }
        if self.claims.subject.is_empty() {
            return Err(fail("`claims.subject` must not be empty".to_owned()));
        }
        if let PrincipalTypeSettings::Rules { rules, .. } = &self.claims.principal_type
            && rules
                .iter()
                .any(|rule| rule.present.is_empty() && rule.absent.is_empty())
        {
            return Err(fail(
                "each `claims.principal_type` rule needs `present` or `absent` claims".to_owned(),
            ));
        }
        let token_type = self.token_type.as_deref().map(normalize_type);
        Ok(IssuerConfig {
            issuer: self.issuer.clone(),
            audiences: self.audiences.clone(),
            algorithms,
            keys,
            leeway_seconds: i64::try_from(self.leeway_seconds).unwrap_or(300),
            required_claims: self.required_claims.clone(),
            max_token_bytes: self.max_token_bytes,
            token_type,
            timing: JwksTiming {
                refresh: Duration::from_secs(self.jwks_refresh_seconds.max(1)),
                unknown_kid_interval: Duration::from_secs(self.jwks_unknown_kid_interval_seconds),
                max_stale: Duration::from_secs(self.jwks_max_stale_seconds),
                timeout: Duration::from_secs(self.jwks_timeout_seconds.clamp(1, 60)),
            },
            claims: self.claims.clone(),
        })
    }

    fn read_secret(&self, read_env: &dyn Fn(&str) -> Option<String>) -> Result<HmacSecret, String> {
        let secret = match (&self.hs256_secret_env, &self.hs256_secret_file) {
            (Some(_), Some(_)) => {
                return Err(
                    "set either `hs256_secret_env` or `hs256_secret_file`, not both".to_owned(),
                );
            }
            (Some(variable), None) => read_env(variable)
                .ok_or_else(|| format!("HS256 secret variable `{variable}` is not set"))?
                .into_bytes(),
            (None, Some(path)) => std::fs::read(path)
                .map_err(|error| format!("HS256 secret file {}: {error}", path.display()))?
                .trim_ascii()
                .to_vec(),
            (None, None) => {
                return Err(
                    "HS256 needs a secret: `hs256_secret_env` or `hs256_secret_file`".to_owned(),
                );
            }
        };
        if secret.len() < 32 {
            return Err("the HS256 secret must be at least 32 bytes".to_owned());
        }
        Ok(HmacSecret(secret))
    }
}

/// `application/at+jwt` and `AT+JWT` both become `at+jwt` (RFC 8725 §3.11).
pub(crate) fn normalize_type(typ: &str) -> String {
    let lower = typ.trim().to_ascii_lowercase();
    lower
        .strip_prefix("application/")
        .unwrap_or(&lower)
        .to_owned()
}

fn check_jwks_uri(uri: &str) -> Result<(), String> {
    https_or_loopback_http(uri).map_err(|why| format!("`jwks_uri` {why}"))
}

/// A URL Warden will not fetch keys from or name itself by. The message says why, after the
/// URL, to follow the name of the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// Not a URL.
    #[error("{uri:?} is not a URL: {why}")]
    NotAUrl {
        /// The text.
        uri: String,
        /// The parser's reason.
        why: String,
    },
    /// Plain http on a host that is not loopback.
    #[error("{0:?} must use https (plain http only on a loopback address)")]
    PlainHttp(String),
    /// Another scheme.
    #[error("{uri:?}: scheme `{scheme}` is not http(s)")]
    Scheme {
        /// The URL.
        uri: String,
        /// Its scheme.
        scheme: String,
    },
}

/// Whether `uri` is `https://`, or `http://` on a loopback host (`localhost` or a loopback IP):
/// the only URLs Warden fetches keys from or names itself by.
pub fn https_or_loopback_http(uri: &str) -> Result<(), UrlRefusal> {
    let parsed = reqwest::Url::parse(uri).map_err(|error| UrlRefusal::NotAUrl {
        uri: uri.to_owned(),
        why: error.to_string(),
    })?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(UrlRefusal::PlainHttp(uri.to_owned()))
            }
        }
        other => Err(UrlRefusal::Scheme {
            uri: uri.to_owned(),
            scheme: other.to_owned(),
        }),
    }
}
