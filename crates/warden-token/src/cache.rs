//! The verified-token cache: a token verified once is not verified again until it expires.
//!
//! Keyed by SHA-256 of the whole token (the token itself is never stored), bounded in size,
//! and an entry never outlives the token's `exp` (plus leeway) nor a maximum age. A hit is
//! only honoured while the key that verified it is still in the issuer's current key set, so
//! a key removed from the JWKS stops its cached tokens too. Revocation is checked on every use
//! by the caller all the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// The longest a verified token is trusted without verifying again, in seconds.
pub const MAX_CACHE_SECONDS: i64 = 300;

/// The cache key: SHA-256 of the token.
pub type TokenHash = [u8; 32];

/// Hashes a token for the cache (and for logs that must not show the token).
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

struct Entry<T> {
    token: Arc<T>,
    valid_until: i64,
}

/// A bounded map from token hash to what verifying the token gave (the verifier keeps its
/// `VerifiedToken`s here). Generic, so the cache knows nothing of verification: the module
/// graph runs one way, from `verify` to `cache`.
pub struct TokenCache<T> {
    entries: Mutex<HashMap<TokenHash, Entry<T>>>,
    capacity: usize,
}

impl<T> TokenCache<T> {
    /// A cache holding at most `capacity` tokens (0 disables it).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::with_capacity(capacity.min(4096))),
            capacity,
        }
    }

    /// The cached token, if still valid at `now`.
    pub fn get(&self, hash: &TokenHash, now: i64) -> Option<Arc<T>> {
        if self.capacity == 0 {
            return None;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(hash) {
            Some(entry) if now <= entry.valid_until => Some(Arc::clone(&entry.token)),
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Forgets one token (its key is gone, or it was found revoked).
    pub fn remove(&self, hash: &TokenHash) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(hash);
    }

    /// Remembers a verified token until `valid_until` (Unix seconds).
    pub fn insert(&self, hash: TokenHash, token: Arc<T>, valid_until: i64, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, entry| entry.valid_until >= now);
            if entries.len() >= self.capacity {
                // Still full of live tokens: start over rather than grow. Verification is
                // correct without the cache, only slower.
                entries.clear();
            }
        }
        entries.insert(hash, Entry { token, valid_until });
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
