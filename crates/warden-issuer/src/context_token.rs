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
    key.sign_jwt(&header, claims)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{DecodingKey, Validation};
    use warden_config::KeyEncryptionKey;

    use super::*;
    use crate::signing;

    fn claims() -> ContextClaims {
        ContextClaims {
            iss: "http://127.0.0.1:8180".to_owned(),
            sub: "acme/carol".to_owned(),
            aud: "docs-app".to_owned(),
            exp: 4_000_000_000,
            iat: 3_999_999_970,
            nbf: 3_999_999_970,
            jti: "j-1".to_owned(),
            principal_type: "User".to_owned(),
            tenant: Some("acme".to_owned()),
            decision_id: "d-1".to_owned(),
            original_jti: None,
            action: "read".to_owned(),
            resource: ContextResource {
                entity_type: "Document".to_owned(),
                id: "acme/roadmap".to_owned(),
            },
        }
    }

    /// Minted with a key parsed once, a context token verifies with the published JWK under
    /// jsonwebtoken (as any JOSE library would verify it), for both algorithms, and carries its
    /// type and kid; another key's JWK does not verify it.
    #[test]
    fn a_minted_context_token_verifies_with_the_published_key_only() {
        let kek = KeyEncryptionKey([7; 32]);
        for algorithm in ["EdDSA", "ES256"] {
            let record = signing::generate(algorithm, &kek, 100).unwrap();
            let key = signing::unseal(&record, &kek).unwrap();
            let token = mint(&key, &claims()).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.typ.as_deref(), Some(CONTEXT_TOKEN_TYPE));
            assert_eq!(header.kid.as_deref(), Some(record.kid.as_str()));
            let jwk: Jwk = serde_json::from_str(&record.public_jwk).unwrap();
            let mut validation = Validation::new(header.alg);
            validation.set_audience(&["docs-app"]);
            let decoded = jsonwebtoken::decode::<ContextClaims>(
                &token,
                &DecodingKey::from_jwk(&jwk).unwrap(),
                &validation,
            )
            .unwrap();
            assert_eq!(decoded.claims, claims(), "{algorithm}");
            let other = signing::generate(algorithm, &kek, 100).unwrap();
            let other: Jwk = serde_json::from_str(&other.public_jwk).unwrap();
            assert!(
                jsonwebtoken::decode::<ContextClaims>(
                    &token,
                    &DecodingKey::from_jwk(&other).unwrap(),
                    &validation
                )
                .is_err(),
                "{algorithm}: another key"
            );
        }
    }
}
