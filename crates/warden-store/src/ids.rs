//! Typed ids on security paths: a tenant id and a service account's client id are not
//! interchangeable strings, and each is checked once, where it enters, by its constructor.
//! A write names its tenant as a [`TenantId`], so swapping a tenant for a subject or a client
//! id is a compile error. Tests: the unit tests below.

use std::fmt;

/// A malformed id, refused where it entered (a 400 at the HTTP edge).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not a tenant id.
    #[error("`{0}` is not a tenant id (1 to 128 characters, no `/`, no control characters)")]
    Tenant(String),
    /// Not a client id.
    #[error("`{0}` is not a client id (1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `-`)")]
    Client(String),
}

/// The longest id accepted.
const MAX_ID_CHARS: usize = 128;

/// A tenant's id: the prefix of its entities' ids (`acme` in `User::"acme/alice"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Checks a tenant id: 1 to 128 characters, no `/` (it separates the tenant from the
    /// local id) and no control characters.
    pub fn parse(text: &str) -> Result<TenantId, IdError> {
        let fits = !text.is_empty()
            && text.chars().count() <= MAX_ID_CHARS
            && !text.contains('/')
            && !text.chars().any(char::is_control);
        if fits {
            Ok(TenantId(text.to_owned()))
        } else {
            Err(IdError::Tenant(text.escape_debug().to_string()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A service account's client id (`sa_…`, or any id a caller names that may match one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// Checks a client id: 1 to 128 characters of `A-Z a-z 0-9 . _ -`.
    pub fn parse(text: &str) -> Result<ClientId, IdError> {
        let fits = !text.is_empty()
            && text.len() <= MAX_ID_CHARS
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
        if fits {
            Ok(ClientId(text.to_owned()))
        } else {
            Err(IdError::Client(text.escape_debug().to_string()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_checked_once() {
        assert_eq!(TenantId::parse("acme").unwrap().as_str(), "acme");
        for bad in ["", "acme/x", "a\u{8}b", &"x".repeat(129)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_ids_are_checked_once() {
        assert_eq!(ClientId::parse("sa_0a1b").unwrap().as_str(), "sa_0a1b");
        for bad in ["", "sa 1", "sa/1", "é", &"x".repeat(129)] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
