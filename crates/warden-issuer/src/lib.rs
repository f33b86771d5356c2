//! Warden as an OAuth issuer for service accounts (issue #10).
//!
//! - [`signing`]: Warden's signing keys (Ed25519 or P-256), sealed at rest, published as JWKS.
//! - [`credentials`]: client ids and secrets (shown once, stored as SHA-256 digests, compared in
//!   constant time), scopes and their narrowing.
//! - [`assertion`]: RFC 7523 client assertions (`private_key_jwt`) checked against the account's
//!   registered public keys.
//! - [`access_token`]: the RFC 9068 access token Warden signs.
//! - [`context_token`]: the short-lived token a gateway passes inward on allow.
//! - [`delegation`]: RFC 8693 token exchange: the delegated token's `act` chain and origin.
//!
//! Nothing here does I/O: the server reads the store and hands records in. Tests: the unit
//! tests of each module and `warden-server`'s `tests/server/service_accounts.rs`.

pub mod access_token;
pub mod assertion;
pub mod context_token;
pub mod credentials;
pub mod delegation;
pub mod report;
pub mod signing;

/// A failure in the issuer's cryptography or inputs. Messages never carry key material.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// Key generation, sealing or signing failed.
    #[error("{0}")]
    Crypto(String),
}
