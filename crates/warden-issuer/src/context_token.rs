//! The context token a gateway passes inward on allow (issue #23): Warden's signed statement
//! that it allowed `action` on `resource` for a principal, for one upstream (`aud`), for a few
//! seconds. The upstream's SDK accepts it for exactly that action and resource instead of asking
//! Warden again; anything else still goes to Warden.
//!
//! SECURITY-SENSITIVE: the header `typ` (`warden-ctx+jwt`) differs from the access token's
//! (`at+jwt`, which Warden's verifier requires of its own tokens), and the audience is never
//! Warden's (checked when the configuration loads), so a context token is never accepted as an
//! access token.

use jsonwebtoken::Header;
use serde::{Deserialize, Serialize};

use crate::IssuerError;
use crate::signing::SigningKey;

/// The header `typ` of a context token.
pub const CONTEXT_TOKEN_TYPE: &str = "warden-ctx+jwt";

/// The resource the decision was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextResource {
    /// Entity type, e.g. `Document`.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Entity id (tenant-qualified for a tenant-scoped type).
    pub id: String,
}

/// The claims of one context token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextClaims {
    /// Warden's issuer URL.
    pub iss: String,
    /// The principal's id.
    pub sub: String,
    /// The upstream.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before (= `iat`).
    pub nbf: i64,
    /// This token's id.
    pub jti: String,
    /// The principal's entity type, e.g. `User`.
    pub principal_type: String,
    /// The principal's tenant, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The decision-log record of the edge decision.
    pub decision_id: String,
    /// The `jti` of the end user's token, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_jti: Option<String>,
    /// The action allowed.
    pub action: String,
    /// The resource it was allowed on.
    pub resource: ContextResource,
}

/// Signs the claims with `key`.
pub fn mint(key: &SigningKey, claims: &ContextClaims) -> Result<String, IssuerError> {
    let mut header = Header::new(key.algorithm);
    header.typ = Some(CONTEXT_TOKEN_TYPE.to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, key.encoding_key())
        .map_err(|error| IssuerError::Crypto(format!("signing the context token failed: {error}")))
}
