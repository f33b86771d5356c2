//! Client ids, client secrets and scopes.
//!
//! SECURITY-SENSITIVE: client secrets are made, hashed and compared here.
//!
//! A secret is 32 random bytes (`wsa_` + base64url), shown once; the store keeps only its
//! SHA-256 digest, which is enough for a secret of that entropy (no password stretching needed:
//! it cannot be guessed, only stolen). Matching compares digests in constant time. Ids and
//! secrets use only URL-safe characters, so HTTP Basic needs no escaping.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::IssuerError;

/// The prefix of every client secret (lets secret scanners recognise a leaked one).
pub const SECRET_PREFIX: &str = "wsa_";
/// The longest accepted scope string, and the most scopes an account may hold.
pub const MAX_SCOPE_BYTES: usize = 1024;
/// The most scopes an account may hold.
pub const MAX_SCOPES: usize = 64;

fn random<const N: usize>() -> Result<[u8; N], IssuerError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| IssuerError::Crypto("the system random generator failed".to_owned()))?;
    Ok(bytes)
}

/// A new client id, `sa_` + 20 hex digits.
pub fn new_client_id() -> Result<String, IssuerError> {
    Ok(format!("sa_{}", hex::encode(random::<10>()?)))
}

/// A new credential id, `cred_` + 12 hex digits.
pub fn new_credential_id() -> Result<String, IssuerError> {
    Ok(format!("cred_{}", hex::encode(random::<6>()?)))
}

/// A new review campaign id, `rc_` + 16 hex digits.
pub fn new_review_campaign_id() -> Result<String, IssuerError> {
    Ok(format!("rc_{}", hex::encode(random::<8>()?)))
}

/// A new console session: its secret (for the browser's HttpOnly cookie only; 32 random
/// bytes, base64url) and the secret's hex SHA-256 digest (for the store).
pub fn new_console_session() -> Result<(String, String), IssuerError> {
    let secret = URL_SAFE_NO_PAD.encode(random::<32>()?);
    let digest = digest_hex(&secret);
    Ok((secret, digest))
}

/// A new token id.
pub fn new_jti() -> Result<String, IssuerError> {
    Ok(URL_SAFE_NO_PAD.encode(random::<16>()?))
}

/// A new secret and its hex SHA-256 digest. Show the secret once; store only the digest.
pub fn new_secret() -> Result<(String, String), IssuerError> {
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(random::<32>()?));
    let digest = digest_hex(&secret);
    Ok((secret, digest))
}

/// The prefix of every admin credential's secret.
pub const ADMIN_SECRET_PREFIX: &str = "wdn_admin_";

/// A new admin credential: its id (`adm_` + 12 hex digits), its secret (`wdn_admin_` +
/// base64url of 32 random bytes; show it once) and the secret's hex SHA-256 digest (store it).
pub fn new_admin_credential() -> Result<(String, String, String), IssuerError> {
    let id = format!("adm_{}", hex::encode(random::<6>()?));
    let (secret, digest) = new_admin_secret()?;
    Ok((id, secret, digest))
}

/// A new admin secret and its hex SHA-256 digest (rotation keeps the id).
pub fn new_admin_secret() -> Result<(String, String), IssuerError> {
    let secret = format!(
        "{ADMIN_SECRET_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random::<32>()?)
    );
    let digest = digest_hex(&secret);
    Ok((secret, digest))
}

/// The hex SHA-256 digest of a presented secret.
pub fn digest_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `presented` matches any of the stored digests, comparing every one in constant time.
pub fn secret_matches<'a>(
    presented: &str,
    digests: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let presented = Sha256::digest(presented.as_bytes());
    let mut found = None;
    for stored in digests {
        let Ok(stored_bytes) = hex::decode(stored) else {
            continue;
        };
        if bool::from(stored_bytes.as_slice().ct_eq(presented.as_slice())) {
            found = Some(stored);
        }
    }
    found
}

/// A scope name per RFC 6749 §3.3: visible ASCII except `"` and `\`.
pub fn valid_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.bytes().all(|byte| {
            byte == 0x21 || (0x23..=0x5B).contains(&byte) || (0x5D..=0x7E).contains(&byte)
        })
}

/// Why an account's scope list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeListError {
    /// Too many scopes.
    #[error("at most {MAX_SCOPES} scopes")]
    TooMany,
    /// A name outside the scope alphabet.
    #[error(
        "scope {0:?} is not a valid scope name (visible ASCII, no spaces, quotes or backslashes)"
    )]
    Invalid(String),
    /// A name listed twice.
    #[error("scope {0:?} is listed twice")]
    Duplicate(String),
}

/// Checks an account's scope list: valid names, no duplicates, within the limits.
pub fn check_scopes(scopes: &[String]) -> Result<(), ScopeListError> {
    if scopes.len() > MAX_SCOPES {
        return Err(ScopeListError::TooMany);
    }
    if let Some(bad) = scopes.iter().find(|scope| !valid_scope(scope)) {
        return Err(ScopeListError::Invalid(bad.clone()));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = scopes.iter().find(|scope| !seen.insert(scope.as_str())) {
        return Err(ScopeListError::Duplicate(twice.clone()));
    }
    Ok(())
}

/// Why a requested scope cannot be granted.
#[derive(Debug, PartialEq, Eq)]
pub enum ScopeRefusal {
    /// Not a space-separated list of scope names.
    Malformed,
    /// Names a scope the account does not hold.
    NotGranted(String),
}

/// The scopes a token gets: all the account's when none are asked for, else the requested
/// ones, each of which the account must hold (fewer is fine, more never).
pub fn narrow(requested: Option<&str>, granted: &[String]) -> Result<Vec<String>, ScopeRefusal> {
    let Some(requested) = requested else {
        return Ok(granted.to_vec());
    };
    if requested.len() > MAX_SCOPE_BYTES {
        return Err(ScopeRefusal::Malformed);
    }
    let mut out: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|part| !part.is_empty()) {
        if !valid_scope(scope) {
            return Err(ScopeRefusal::Malformed);
        }
        if !granted.iter().any(|held| held == scope) {
            return Err(ScopeRefusal::NotGranted(scope.to_owned()));
        }
        if !out.iter().any(|seen| seen == scope) {
            out.push(scope.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_their_digest() {
        let (secret, digest) = new_secret().unwrap();
        assert!(secret.starts_with(SECRET_PREFIX));
        let (_, other) = new_secret().unwrap();
        assert_eq!(
            secret_matches(&secret, [other.as_str(), digest.as_str()]),
            Some(digest.as_str())
        );
        assert_eq!(secret_matches("wsa_wrong", [digest.as_str()]), None);
        assert_eq!(secret_matches(&secret, ["not hex"]), None);
    }

    #[test]
    fn a_request_may_narrow_scopes_never_widen_them() {
        let granted = vec!["documents:read".to_owned(), "documents:write".to_owned()];
        assert_eq!(narrow(None, &granted).unwrap(), granted);
        assert_eq!(
            narrow(Some("documents:read"), &granted).unwrap(),
            vec!["documents:read"]
        );
        assert_eq!(
            narrow(Some("documents:read admin"), &granted),
            Err(ScopeRefusal::NotGranted("admin".to_owned()))
        );
        assert_eq!(
            narrow(Some("bad\"scope"), &granted),
            Err(ScopeRefusal::Malformed)
        );
        assert!(check_scopes(&["a".to_owned(), "a".to_owned()]).is_err());
        assert!(check_scopes(&["has space".to_owned()]).is_err());
    }
}
