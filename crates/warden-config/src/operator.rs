//! The operator's controls on the listener: `[server.tls]` (rustls, PEM files, reloaded when
//! they change, optional client certificates), `[rate_limits]` and `[metrics]`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[server.tls]`: serve HTTPS instead of HTTP.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to. Without it no client
    /// certificate is asked for.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: `optional` (a client may present one) or `required` (a
    /// connection without a valid one is refused during the handshake). Default `optional`.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// How often the files are checked for changes, in seconds (default 5). A change that
    /// does not load keeps the previous certificate serving and is logged and counted.
    #[serde(default = "default_reload_interval")]
    pub reload_interval_seconds: u64,
}

fn default_reload_interval() -> u64 {
    5
}

named_choice!(
    /// Whether a TLS client must present a certificate.
    ClientAuth, "server.tls.client_auth", {
        /// A client may present one; requests without one authenticate otherwise.
        #[default]
        Optional = "optional",
        /// Every connection must present a valid one.
        Required = "required",
    }
);

/// `[rate_limits]`: per client address (an IPv6 address counts by its /64), a token bucket per
/// kind of call that refills over a minute; over it the answer is 429 with `Retry-After`.
/// `0` switches a limit off. Behind a proxy every caller has the proxy's address: set the
/// limits for the proxy, or 0 and limit at the proxy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Calls to `/oauth2/token` and `/oauth2/revoke` per minute (default 600).
    #[serde(default = "default_token_per_minute")]
    pub token_per_minute: u32,
    /// Calls to the admin API per minute (default 1200).
    #[serde(default = "default_admin_per_minute")]
    pub admin_per_minute: u32,
    /// Failed authentications of a caller (admin credential, PEP credential, client
    /// authentication at the token endpoint, `/metrics` credential) per minute, after a burst
    /// of as many; past it every call from the address but health checks is refused until
    /// the bucket has room for one more (60/N seconds) (default 60). End users' bearer tokens refused on a decision are not counted: they
    /// arrive through PEPs, and one bad token must not lock out a gateway.
    #[serde(default = "default_failed_auth_per_minute")]
    pub failed_auth_per_minute: u32,
    /// The most addresses tracked at once per limit (default 100000); past it a limit forgets
    /// every address (each gets a fresh burst), so memory stays bounded.
    #[serde(default = "default_max_tracked")]
    pub max_tracked_addresses: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            token_per_minute: default_token_per_minute(),
            admin_per_minute: default_admin_per_minute(),
            failed_auth_per_minute: default_failed_auth_per_minute(),
            max_tracked_addresses: default_max_tracked(),
        }
    }
}

fn default_token_per_minute() -> u32 {
    600
}
fn default_admin_per_minute() -> u32 {
    1200
}
fn default_failed_auth_per_minute() -> u32 {
    60
}
fn default_max_tracked() -> usize {
    100_000
}

/// `[metrics]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// `sha256:<hex>` hashes of credentials that may read `/metrics`
    /// (`Authorization: Bearer <credential>`). Empty: `/metrics` is open, as before.
    #[serde(default)]
    pub credentials: Vec<String>,
}

/// Parses `sha256:<64 hex digits>` entries of `key`.
pub(crate) fn credential_hashes(key: &str, entries: &[String]) -> Result<Vec<[u8; 32]>, String> {
    entries
        .iter()
        .map(|credential| {
            credential
                .strip_prefix("sha256:")
                .and_then(|hex_digest| hex::decode(hex_digest).ok())
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| {
                    format!(
                        "{key} entries must be \"sha256:<64 hex digits>\" (hashes, never the credential itself)"
                    )
                })
        })
        .collect()
}

/// Resolves the TLS paths against `base_dir` and checks the interval.
pub(crate) fn check_tls(mut tls: TlsSettings, base_dir: &Path) -> Result<TlsSettings, String> {
    if tls.reload_interval_seconds == 0 {
        return Err("server.tls.reload_interval_seconds must be at least 1".to_owned());
    }
    if tls.client_auth == ClientAuth::Required && tls.client_ca_file.is_none() {
        return Err(
            "server.tls.client_auth = \"required\" needs server.tls.client_ca_file".to_owned(),
        );
    }
    tls.cert_file = base_dir.join(&tls.cert_file);
    tls.key_file = base_dir.join(&tls.key_file);
    tls.client_ca_file = tls.client_ca_file.map(|file| base_dir.join(file));
    Ok(tls)
}
