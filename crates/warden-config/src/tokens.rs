//! `[tokens]` (Warden as an OAuth issuer for service accounts) and `[service_accounts]`
//! (their lifecycle limits and the inventory report's thresholds).
//!
//! The key-encryption key that seals Warden's signing keys at rest is never in the file: an
//! environment variable name or a file path, holding 32 random bytes as 64 hex digits or
//! unpadded base64url. Warden's own issuer is added to the verifier's issuers, so its tokens
//! go through the same verification as any other issuer's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use warden_token::settings::{
    ClaimSettings, IssuerConfig, JwksTiming, KeySourceConfig, PrincipalTypeSettings,
};

/// The largest token Warden accepts from its own issuer (and so the largest it issues).
pub const OWN_MAX_TOKEN_BYTES: usize = 8192;

/// `[tokens]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// The `iss` of Warden's tokens: its public base URL (`https://…`, or `http://` on loopback).
    pub issuer: String,
    /// The `aud` of issued tokens (default `warden`).
    #[serde(default = "default_audience")]
    pub audience: String,
    /// `EdDSA` (default) or `ES256`.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Token lifetime unless the account sets its own (default 600).
    #[serde(default = "default_ttl")]
    pub default_ttl_seconds: u64,
    /// The longest lifetime an account may set (default 3600).
    #[serde(default = "default_max_ttl")]
    pub max_ttl_seconds: u64,
    /// Environment variable holding the key-encryption key.
    #[serde(default)]
    pub key_encryption_key_env: Option<String>,
    /// File holding the key-encryption key.
    #[serde(default)]
    pub key_encryption_key_file: Option<PathBuf>,
    /// Scheduled signing-key rotation (default 30 days; 0 turns the schedule off).
    #[serde(default = "default_rotate_days")]
    pub rotate_after_days: u64,
    /// Clock skew tolerated on client assertions and Warden's own tokens (default 30).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// The longest lifetime of a token made by token exchange (RFC 8693; default 300). It
    /// never outlives the subject token either.
    #[serde(default = "default_exchange_ttl")]
    pub exchange_ttl_seconds: u64,
    /// Audiences an exchanged token may be issued for besides `audience` (a token exchange
    /// naming any other is refused `invalid_target`). Warden accepts its own tokens for each.
    #[serde(default)]
    pub exchange_audiences: Vec<String>,
    /// The most actors a delegation chain may hold (an exchanged token exchanged again adds
    /// one; default 3, at most 10).
    #[serde(default = "default_delegation_depth")]
    pub max_delegation_depth: u64,
}

/// `[service_accounts]` as written (every key has a default).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountSettings {
    /// The longest account lifetime (default 365 days).
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime_days: u64,
    /// The longest credential lifetime, and a new secret's default (default 365 days).
    #[serde(default = "default_max_credential_lifetime")]
    pub max_credential_lifetime_days: u64,
    /// How long older secrets keep working after a rotation, by default (default 86400).
    #[serde(default = "default_overlap")]
    pub secret_overlap_seconds: u64,
    /// Report: unused for this long is `stale` (default 30).
    #[serde(default = "default_stale")]
    pub stale_after_days: u64,
    /// Report: expiring within this is `expiring_soon` (default 14).
    #[serde(default = "default_expiring")]
    pub expiring_within_days: u64,
    /// Report: a credential older than this is `credential_too_old` (default 90).
    #[serde(default = "default_credential_age")]
    pub credential_max_age_days: u64,
    /// Report: a scope no allowed decision used in this many days is unused (default 30).
    #[serde(default = "default_unused_scope")]
    pub unused_scope_days: u64,
    /// Longest accepted client assertion lifetime, `exp - now` (default 300).
    #[serde(default = "default_assertion_lifetime")]
    pub max_assertion_lifetime_seconds: u64,
}

impl Default for ServiceAccountSettings {
    fn default() -> Self {
        Self {
            max_lifetime_days: default_max_lifetime(),
            max_credential_lifetime_days: default_max_credential_lifetime(),
            secret_overlap_seconds: default_overlap(),
            stale_after_days: default_stale(),
            expiring_within_days: default_expiring(),
            credential_max_age_days: default_credential_age(),
            unused_scope_days: default_unused_scope(),
            max_assertion_lifetime_seconds: default_assertion_lifetime(),
        }
    }
}

fn default_audience() -> String {
    "warden".to_owned()
}
fn default_algorithm() -> String {
    "EdDSA".to_owned()
}
fn default_ttl() -> u64 {
    600
}
fn default_max_ttl() -> u64 {
    3600
}
fn default_rotate_days() -> u64 {
    30
}
fn default_leeway() -> u64 {
    30
}
fn default_exchange_ttl() -> u64 {
    300
}
fn default_delegation_depth() -> u64 {
    3
}
fn default_max_lifetime() -> u64 {
    365
}
fn default_max_credential_lifetime() -> u64 {
    365
}
fn default_overlap() -> u64 {
    86_400
}
fn default_stale() -> u64 {
    30
}
fn default_expiring() -> u64 {
    14
}
fn default_credential_age() -> u64 {
    90
}
fn default_unused_scope() -> u64 {
    30
}
fn default_assertion_lifetime() -> u64 {
    300
}

/// 32 bytes that seal Warden's signing keys; `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEncryptionKey(pub [u8; 32]);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

/// The checked `[tokens]`.
#[derive(Clone, Debug)]
pub struct TokenIssuance {
    /// `iss`, without a trailing slash.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// `EdDSA` or `ES256`.
    pub algorithm: String,
    /// Default token lifetime.
    pub default_ttl_seconds: i64,
    /// Longest token lifetime.
    pub max_ttl_seconds: i64,
    /// Seals signing keys at rest.
    pub key_encryption_key: KeyEncryptionKey,
    /// Scheduled rotation interval, if any.
    pub rotate_after: Option<Duration>,
    /// Clock skew tolerated.
    pub leeway_seconds: i64,
    /// The longest lifetime of an exchanged token.
    pub exchange_ttl_seconds: i64,
    /// Audiences an exchanged token may name besides `audience`.
    pub exchange_audiences: Vec<String>,
    /// The most actors a delegation chain may hold.
    pub max_delegation_depth: usize,
}

impl TokenIssuance {
    /// The token endpoint's URL (the `aud` client assertions must name, or the issuer).
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/token", self.issuer)
    }

    /// Whether an exchanged token may be issued for `audience`.
    pub fn exchange_audience_allowed(&self, audience: &str) -> bool {
        audience == self.audience
            || self
                .exchange_audiences
                .iter()
                .any(|known| known == audience)
    }

    /// Warden's own issuer, verified like any other: keys installed from the store, tokens
    /// typed `at+jwt`, the principal a `ServiceAccount` of the `tenant` claim.
    pub fn issuer_config(&self) -> IssuerConfig {
        IssuerConfig {
            issuer: self.issuer.clone(),
            audiences: std::iter::once(self.audience.clone())
                .chain(self.exchange_audiences.iter().cloned())
                .collect(),
            algorithms: vec![
                jsonwebtoken::Algorithm::EdDSA,
                jsonwebtoken::Algorithm::ES256,
            ],
            keys: KeySourceConfig::Managed,
            leeway_seconds: self.leeway_seconds,
            required_claims: ["sub", "exp", "iat", "jti", "client_id", "tenant"]
                .map(str::to_owned)
                .to_vec(),
            max_token_bytes: OWN_MAX_TOKEN_BYTES,
            token_type: Some("at+jwt".to_owned()),
            timing: JwksTiming {
                refresh: Duration::from_secs(300),
                unknown_kid_interval: Duration::from_secs(30),
                max_stale: Duration::from_secs(86_400),
                timeout: Duration::from_secs(5),
            },
            claims: ClaimSettings {
                subject: "sub".to_owned(),
                tenant: Some("tenant".to_owned()),
                roles: None,
                scopes: "scope".to_owned(),
                principal_type: PrincipalTypeSettings::Fixed("ServiceAccount".to_owned()),
                attributes: BTreeMap::new(),
            },
        }
    }
}

/// Checks `[tokens]`; `read_env` looks up environment variables.
pub(crate) fn check_tokens(
    raw: TokenSettings,
    base_dir: &std::path::Path,
    read_env: &dyn Fn(&str) -> Option<String>,
) -> Result<TokenIssuance, String> {
    let issuer = raw.issuer.trim_end_matches('/').to_owned();
    warden_token::settings::https_or_loopback_http(&issuer)
        .map_err(|why| format!("tokens.issuer {why}"))?;
    if !["EdDSA", "ES256"].contains(&raw.algorithm.as_str()) {
        return Err(format!(
            "tokens.algorithm must be \"EdDSA\" or \"ES256\" (it is {:?})",
            raw.algorithm
        ));
    }
    if raw.audience.trim().is_empty() {
        return Err("tokens.audience must not be empty".to_owned());
    }
    if raw.default_ttl_seconds == 0
        || raw.max_ttl_seconds < raw.default_ttl_seconds
        || raw.max_ttl_seconds > 86_400
    {
        return Err(
            "tokens.default_ttl_seconds must be at least 1 and at most tokens.max_ttl_seconds, which is at most 86400"
                .to_owned(),
        );
    }
    if raw.leeway_seconds > 300 {
        return Err("tokens.leeway_seconds must be at most 300".to_owned());
    }
    if raw.exchange_ttl_seconds == 0 || raw.exchange_ttl_seconds > 86_400 {
        return Err("tokens.exchange_ttl_seconds must be 1 to 86400".to_owned());
    }
    if !(1..=10).contains(&raw.max_delegation_depth) {
        return Err("tokens.max_delegation_depth must be 1 to 10".to_owned());
    }
    if let Some(bad) = raw
        .exchange_audiences
        .iter()
        .find(|audience| audience.trim().is_empty() || audience.len() > 512)
    {
        return Err(format!(
            "tokens.exchange_audiences: {bad:?} is not an audience (non-empty, at most 512 bytes)"
        ));
    }
    let text = match (&raw.key_encryption_key_env, &raw.key_encryption_key_file) {
        (Some(variable), None) => read_env(variable).ok_or_else(|| {
            format!("tokens.key_encryption_key_env: the environment variable {variable} is not set")
        })?,
        (None, Some(file)) => {
            let path = base_dir.join(file);
            std::fs::read_to_string(&path).map_err(|error| {
                format!(
                    "tokens.key_encryption_key_file: {}: {error}",
                    path.display()
                )
            })?
        }
        _ => {
            return Err(
                "[tokens] needs exactly one of key_encryption_key_env or key_encryption_key_file (the key that seals Warden's signing keys; never in this file)"
                    .to_owned(),
            );
        }
    };
    let key_encryption_key = parse_key(text.trim()).ok_or_else(|| {
        "the key-encryption key must be 32 random bytes as 64 hex digits or unpadded base64url (e.g. `openssl rand -hex 32`)".to_owned()
    })?;
    let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    Ok(TokenIssuance {
        issuer,
        audience: raw.audience,
        algorithm: raw.algorithm,
        default_ttl_seconds: as_i64(raw.default_ttl_seconds),
        max_ttl_seconds: as_i64(raw.max_ttl_seconds),
        key_encryption_key,
        rotate_after: (raw.rotate_after_days > 0)
            .then(|| Duration::from_secs(raw.rotate_after_days.saturating_mul(86_400))),
        leeway_seconds: as_i64(raw.leeway_seconds),
        // Never longer than any token Warden issues.
        exchange_ttl_seconds: as_i64(raw.exchange_ttl_seconds.min(raw.max_ttl_seconds)),
        exchange_audiences: raw.exchange_audiences,
        max_delegation_depth: usize::try_from(raw.max_delegation_depth).unwrap_or(10),
    })
}

fn parse_key(text: &str) -> Option<KeyEncryptionKey> {
    let bytes = if text.len() == 64 {
        hex::decode(text).ok()?
    } else {
        URL_SAFE_NO_PAD.decode(text).ok()?
    };
    <[u8; 32]>::try_from(bytes).ok().map(KeyEncryptionKey)
}

/// Checks `[service_accounts]`.
pub(crate) fn check_service_accounts(raw: &ServiceAccountSettings) -> Result<(), String> {
    if raw.max_lifetime_days == 0 || raw.max_credential_lifetime_days == 0 {
        return Err(
            "service_accounts.max_lifetime_days and max_credential_lifetime_days must be at least 1"
                .to_owned(),
        );
    }
    if raw.max_assertion_lifetime_seconds == 0 || raw.max_assertion_lifetime_seconds > 3600 {
        return Err("service_accounts.max_assertion_lifetime_seconds must be 1 to 3600".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(issuer: &str) -> TokenSettings {
        TokenSettings {
            issuer: issuer.to_owned(),
            audience: default_audience(),
            algorithm: default_algorithm(),
            default_ttl_seconds: default_ttl(),
            max_ttl_seconds: default_max_ttl(),
            key_encryption_key_env: Some("KEK".to_owned()),
            key_encryption_key_file: None,
            rotate_after_days: 30,
            leeway_seconds: 30,
            exchange_ttl_seconds: default_exchange_ttl(),
            exchange_audiences: Vec::new(),
            max_delegation_depth: default_delegation_depth(),
        }
    }

    #[test]
    fn plain_http_is_accepted_for_a_loopback_issuer_only() {
        let key = "ab".repeat(32);
        let env = |name: &str| (name == "KEK").then(|| key.clone());
        for good in [
            "https://warden.example",
            "http://127.0.0.1:8180",
            "http://localhost",
            "http://[::1]:80/x",
        ] {
            assert!(
                check_tokens(settings(good), std::path::Path::new("."), &env).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "http://localhost.evil.com",
            "http://127.0.0.1.nip.io:8180",
            "http://warden.example",
            "ftp://x",
        ] {
            assert!(
                check_tokens(settings(bad), std::path::Path::new("."), &env).is_err(),
                "{bad}"
            );
        }
        let no_key = |_: &str| None;
        assert!(
            check_tokens(
                settings("https://w.example"),
                std::path::Path::new("."),
                &no_key
            )
            .is_err()
        );
    }

    #[test]
    fn the_key_encryption_key_is_32_bytes_in_hex_or_base64url() {
        assert!(parse_key(&"ab".repeat(32)).is_some());
        assert!(parse_key(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_some());
        assert!(parse_key(&"ab".repeat(16)).is_none());
        assert!(parse_key("not a key").is_none());
        assert_eq!(
            format!("{:?}", KeyEncryptionKey([1; 32])),
            "KeyEncryptionKey(<redacted>)"
        );
    }
}
