//! A cache of decisions, one per snapshot.
//!
//! A Cedar decision is a pure function of the policies, the entities and the request. A
//! [`crate::snapshot::Snapshot`] fixes the first two (any change to the pack, the entity file or the
//! store builds a new snapshot, with a new, empty cache), and the key fixes the third: the whole
//! decision input (principal with every claim-derived attribute, action, resource with its
//! properties, context), every part written with its length first (`engine::cache_key`), so two
//! different inputs never share a key. The map hashes keys with `foldhash`, seeded at random per
//! process. Callers choose the keys; foldhash is fast, not a keyed cryptographic hash, and does
//! not claim to resist a patient attacker who probes for collisions, so the other defence is
//! the bound: at most [`CAPACITY`] entries, each key at most [`MAX_KEY_BYTES`].
//!
//! What is checked before a decision (token verification and revocation, store freshness, the
//! decision log's health) stays outside the cache and runs on every request; every decision is
//! still logged with its own id.
//!
//! Bounded: inputs whose key is longer than [`MAX_KEY_BYTES`] are not cached, and once the
//! cache holds [`CAPACITY`] decisions each new one replaces the oldest (first in, first out: one
//! entry dropped per insert, so no request pays for emptying the whole cache; emptying 4,096
//! decisions at once was a pause that showed in the p99 of inputs that are new every time).

use std::collections::{HashMap, VecDeque};

use foldhash::fast::RandomState;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use warden_core::Decision;

/// The most decisions one snapshot caches.
pub const CAPACITY: usize = 4096;
/// The longest key cached (larger inputs are decided every time).
pub const MAX_KEY_BYTES: usize = 2048;

/// One decision: the decision, the Cedar request, and the plain-words explanation once the
/// decision log made it (the same input against the same snapshot explains the same way, so the
/// log's writer explains each cached decision once). Every decision the policies made is one,
/// cached or not; requests and the decision log share it without copies.
#[derive(Debug)]
pub struct Entry {
    /// The decision.
    pub decision: Decision,
    /// The Cedar request.
    pub request: warden_core::cedar_policy::Request,
    /// The entities the decision was made on (the slice of the data it can read).
    pub entities: Arc<warden_core::cedar_policy::Entities>,
    /// The explanation, made at most once.
    pub explanation: OnceLock<warden_audit::Explanation>,
}

/// Decisions made against one snapshot.
#[derive(Debug, Default)]
pub struct DecisionCache {
    entries: Mutex<Entries>,
}

/// The decisions by key, and their keys oldest first (each key is stored once, shared).
#[derive(Debug, Default)]
struct Entries {
    by_key: HashMap<Arc<[u8]>, Arc<Entry>, RandomState>,
    oldest_first: VecDeque<Arc<[u8]>>,
}

impl DecisionCache {
    /// The decision made for this key, if any.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Entry>> {
        let hit = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key
            .get(key)
            .cloned();
        crate::decision_metrics::count_cache_lookup(hit.is_some());
        hit
    }

    /// Remembers a decision (not when its key is longer than [`MAX_KEY_BYTES`]; a key another
    /// request cached meanwhile keeps its first decision, which is the same), dropping the
    /// oldest when the cache is full.
    pub fn insert(&self, key: Vec<u8>, entry: Arc<Entry>) {
        if key.len() > MAX_KEY_BYTES {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.by_key.contains_key(key.as_slice()) {
            return;
        }
        while entries.by_key.len() >= CAPACITY {
            let Some(oldest) = entries.oldest_first.pop_front() else {
                break;
            };
            entries.by_key.remove(&oldest);
        }
        let key: Arc<[u8]> = Arc::from(key);
        entries.oldest_first.push_back(Arc::clone(&key));
        entries.by_key.insert(key, entry);
    }

    /// How many decisions are cached.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key
            .len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Arc<Entry> {
        let uid = |text: &str| text.parse().map_err(|_| text.to_owned());
        let (Ok(principal), Ok(action), Ok(resource)) = (
            uid(r#"User::"u""#),
            uid(r#"Action::"read""#),
            uid(r#"Document::"d""#),
        ) else {
            unreachable!("literal uids parse")
        };
        let request = warden_core::cedar_policy::Request::new(
            principal,
            action,
            resource,
            warden_core::cedar_policy::Context::empty(),
            None,
        );
        let Ok(request) = request else {
            unreachable!("a request without a schema is valid")
        };
        let sources = warden_core::pack::PackSources::from_policy_text(
            "allow.cedar",
            "@id(\"all\") permit (principal, action, resource);",
        );
        let Ok(compiled) = warden_core::Pack::compile(&sources) else {
            unreachable!("a one-policy pack compiles")
        };
        let pack = compiled.pack;
        let decision = pack.decide(&request, &warden_core::cedar_policy::Entities::empty());
        Arc::new(Entry {
            decision,
            request,
            entities: Arc::new(warden_core::cedar_policy::Entities::empty()),
            explanation: OnceLock::new(),
        })
    }

    #[test]
    fn a_full_cache_drops_its_oldest_decision_for_each_new_one() {
        let cache = DecisionCache::default();
        let shared = entry();
        for n in 0..CAPACITY + 10 {
            cache.insert(n.to_le_bytes().to_vec(), Arc::clone(&shared));
        }
        assert_eq!(cache.len(), CAPACITY);
        for gone in 0..10_usize {
            assert!(
                cache.get(&gone.to_le_bytes()).is_none(),
                "{gone} was evicted"
            );
        }
        for kept in [10, CAPACITY, CAPACITY + 9] {
            assert!(cache.get(&kept.to_le_bytes()).is_some(), "{kept} is kept");
        }
        // A key cached again keeps one place in the order.
        cache.insert(20_usize.to_le_bytes().to_vec(), Arc::clone(&shared));
        assert_eq!(cache.len(), CAPACITY);
        let entries = cache.entries.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(entries.oldest_first.len(), CAPACITY);
    }

    #[test]
    fn keys_past_the_limit_are_not_cached() {
        let cache = DecisionCache::default();
        cache.insert(vec![7; MAX_KEY_BYTES + 1], entry());
        assert!(cache.is_empty());
        cache.insert(vec![7; MAX_KEY_BYTES], entry());
        assert_eq!(cache.len(), 1);
    }
}
