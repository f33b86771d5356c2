//! A cache of decisions, one per snapshot.
//!
//! A Cedar decision is a pure function of the policies, the entities and the request. A
//! [`crate::state::Snapshot`] fixes the first two (any change to the pack, the entity file or the
//! store builds a new snapshot, with a new, empty cache), and the key fixes the third: the whole
//! decision input (principal with every claim-derived attribute, action, resource with its
//! properties, context), every part written with its length first (`engine::cache_key`), so two
//! different inputs never share a key. The map hashes keys with `foldhash`, seeded at random per
//! process (callers choose the keys: a fixed hash would let them aim collisions at one bucket). What is checked before a decision (token verification and
//! revocation, store freshness, the decision log's health) stays outside the cache and runs on
//! every request; every decision is still logged with its own id.
//!
//! Bounded: inputs whose key is longer than [`MAX_KEY_BYTES`] are not cached, and the cache is
//! emptied when it holds [`CAPACITY`] decisions.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use warden_core::Decision;

/// The most decisions one snapshot caches.
pub const CAPACITY: usize = 4096;
/// The longest key cached (larger inputs are decided every time).
pub const MAX_KEY_BYTES: usize = 2048;

/// One cached decision: the principal as Cedar writes it, the decision, the Cedar request, and
/// the plain-words explanation once the decision log made it (the same input against the same
/// snapshot explains the same way, so the log's writer explains each cached decision once).
#[derive(Debug)]
pub struct Entry {
    /// The principal's uid text.
    pub principal: String,
    /// The decision.
    pub decision: Decision,
    /// The Cedar request.
    pub request: warden_core::cedar_policy::Request,
    /// The explanation, made at most once.
    pub explanation: OnceLock<warden_audit::Explanation>,
}

/// Decisions made against one snapshot.
#[derive(Debug, Default)]
pub struct DecisionCache {
    entries: Mutex<HashMap<Vec<u8>, Arc<Entry>, RandomState>>,
}

impl DecisionCache {
    /// The decision made for this key, if any.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Entry>> {
        let hit = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned();
        crate::decision_metrics::count_cache_lookup(hit.is_some());
        hit
    }

    /// Remembers a decision (not when its key is longer than [`MAX_KEY_BYTES`]).
    pub fn insert(&self, key: Vec<u8>, entry: Arc<Entry>) {
        if key.len() > MAX_KEY_BYTES {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, entry);
    }

    /// How many decisions are cached.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
