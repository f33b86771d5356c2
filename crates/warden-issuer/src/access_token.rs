//! The access token Warden issues: a JWT per RFC 9068 (`typ: at+jwt`), signed with the current
//! signing key, naming the service account (`sub` = `client_id`), its tenant and its scopes.

use jsonwebtoken::Header;
use serde::Serialize;

use crate::IssuerError;
use crate::signing::SigningKey;

/// The claims of one access token.
#[derive(Debug, Serialize)]
pub struct AccessClaims<'a> {
    /// Warden's issuer URL.
    pub iss: &'a str,
    /// The client id.
    pub sub: &'a str,
    /// The audience.
    pub aud: &'a str,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before (= `iat`).
    pub nbf: i64,
    /// Token id (for revocation and the decision log).
    pub jti: &'a str,
    /// The client id again (RFC 9068 §2.2).
    pub client_id: &'a str,
    /// The account's tenant.
    pub tenant: &'a str,
    /// Granted scopes, space-separated.
    pub scope: &'a str,
}

/// Signs the claims with `key`.
pub fn mint(key: &SigningKey, claims: &AccessClaims<'_>) -> Result<String, IssuerError> {
    sign(key, claims)
}

/// Signs any access token's claims (`typ: at+jwt`, the key's `kid`): the client-credentials
/// token here, the delegated token of [`crate::delegation`].
pub(crate) fn sign(key: &SigningKey, claims: &impl Serialize) -> Result<String, IssuerError> {
    let mut header = Header::new(key.algorithm);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid.clone());
    key.sign_jwt(&header, claims)
}
