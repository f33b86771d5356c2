//! Bearer token verification: no claim is trusted before the token is proven.
//!
//! Layout:
//! - [`settings`]: the `[[issuers]]` table as written, and its checked form.
//! - [`keys`]: parsing a JWKS into verification keys, with key-type and size checks.
//! - [`key_source`]: fetching, caching and refreshing an issuer's keys (rate-limited, bounded staleness).
//! - [`verify`]: the ordered checks (security-sensitive) producing a [`VerifiedToken`].
//! - [`principal`]: the claim mapping to a [`Principal`].
//! - [`cache`]: the verified-token cache.
//! - [`reason`]: the stable reason codes.
//! - `strict_json`: JSON that refuses duplicate keys.
//!
//! Tests: unit tests beside the code; the attack suite, property tests and the JWKS rotation
//! test against a real HTTP server in `tests/tokens/`.

pub mod cache;
pub mod key_source;
pub mod keys;
pub mod principal;
pub mod reason;
pub mod settings;
mod strict_json;
pub mod verify;

pub use principal::{AttributeValue, Principal};
pub use reason::{TokenError, TokenReason};
pub use settings::{IssuerConfig, IssuerSettings, IssuerSettingsError};
pub use verify::{Issuer, Jti, VerifiedToken, Verifier};

/// Installs aws-lc as jsonwebtoken's crypto provider. Call once at start (and in tests) before
/// any token is verified; calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}
