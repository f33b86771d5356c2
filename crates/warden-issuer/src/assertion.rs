//! RFC 7523 client assertions (`private_key_jwt`): a JWT the client signs with its private key.
//!
//! SECURITY-SENSITIVE: a client proves who it is with these assertions.
//!
//! Checked against the account's registered public keys only: the signature (the algorithm must
//! fit the key; never `none` or HMAC), `iss` = `sub` = the client id, `aud` = the token endpoint
//! or the issuer, `exp` in the future but not further than the configured bound, `iat` not in
//! the future, and a `jti`, which the caller then records so a replay is refused.

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use warden_token::keys::VerificationKey;

/// RFC 7523's `client_assertion_type`.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest accepted assertion, in bytes.
pub const MAX_ASSERTION_BYTES: usize = 8192;

/// A verified assertion's replay key and lifetime.
#[derive(Debug, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`.
    pub expires_at: i64,
}

/// What the check needs besides the assertion.
#[derive(Debug)]
pub struct AssertionRules<'a> {
    /// The client the assertion must be from.
    pub client_id: &'a str,
    /// Accepted audiences (the token endpoint URL and the issuer).
    pub audiences: &'a [String],
    /// Clock skew tolerated.
    pub leeway_seconds: i64,
    /// Longest `exp - now`.
    pub max_lifetime_seconds: i64,
    /// Now, Unix seconds.
    pub now: i64,
}

#[derive(Deserialize)]
struct AssertionClaims {
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

/// The unverified `sub` (else `iss`) of an assertion: only to find whose keys to check it with.
pub fn claimed_client(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims
        .get("sub")
        .or_else(|| claims.get("iss"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// Why a client assertion is refused, in words for the decision log (the client gets
/// `invalid_client` whatever the reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AssertionRefusal(pub String);

impl From<String> for AssertionRefusal {
    fn from(why: String) -> Self {
        AssertionRefusal(why)
    }
}

/// Verifies `assertion` with one of `keys`; the error says why.
pub fn verify(
    assertion: &str,
    keys: &[VerificationKey],
    rules: &AssertionRules<'_>,
) -> Result<VerifiedAssertion, AssertionRefusal> {
    checked(assertion, keys, rules).map_err(AssertionRefusal)
}

fn checked(
    assertion: &str,
    keys: &[VerificationKey],
    rules: &AssertionRules<'_>,
) -> Result<VerifiedAssertion, String> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err("the assertion is too large".to_owned());
    }
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|error| format!("the assertion's header is malformed: {error}"))?;
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err("HMAC-signed assertions are refused".to_owned());
    }
    let candidates: Vec<&VerificationKey> = keys
        .iter()
        .filter(|key| key.accepts(header.alg))
        .filter(|key| match (&header.kid, &key.kid) {
            (Some(wanted), Some(kid)) => wanted == kid,
            _ => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "no registered, usable key of the client verifies {:?}",
            header.alg
        ));
    }
    let mut validation = Validation::new(header.alg);
    validation.leeway = u64::try_from(rules.leeway_seconds).unwrap_or(0);
    validation.set_audience(rules.audiences);
    validation.set_issuer(&[rules.client_id]);
    validation.sub = Some(rules.client_id.to_owned());
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.validate_nbf = true;
    validation.reject_tokens_expiring_in_less_than = 0;
    let mut last_error = String::new();
    for key in candidates {
        match jsonwebtoken::decode::<AssertionClaims>(assertion, key.decoding_key(), &validation) {
            Ok(data) => {
                let claims = data.claims;
                let jti = claims
                    .jti
                    .filter(|jti| !jti.is_empty() && jti.len() <= 256)
                    .ok_or_else(|| "the assertion has no usable `jti`".to_owned())?;
                if claims.exp - rules.now > rules.max_lifetime_seconds {
                    return Err(format!(
                        "the assertion expires more than {} seconds from now",
                        rules.max_lifetime_seconds
                    ));
                }
                if claims
                    .iat
                    .is_some_and(|iat| iat > rules.now + rules.leeway_seconds)
                {
                    return Err("the assertion's `iat` is in the future".to_owned());
                }
                return Ok(VerifiedAssertion {
                    jti,
                    expires_at: claims.exp,
                });
            }
            Err(error) => last_error = error.to_string(),
        }
    }
    Err(format!("the assertion does not verify: {last_error}"))
}

/// Audiences a client assertion may name.
pub fn audiences(issuer: &str, token_endpoint: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    [token_endpoint, issuer, &format!("{issuer}/")]
        .into_iter()
        .filter(|audience| seen.insert(audience.to_string()))
        .map(str::to_owned)
        .collect()
}
