//! Revocations in memory: every revocation the store holds, indexed so that checking a verified
//! token costs a handful of hash lookups whatever the number of revocations (O(1)).
//!
//! SECURITY-SENSITIVE: a revocation missed here lets a revoked token in.
//!
//! A token is revoked when its `(iss, jti)` or `(iss, sid)` is revoked, when its subject
//! `(iss, sub)` or its client (`client_id`, else `azp`) was revoked after the token was issued
//! (`iat` before the revocation; a token without `iat` counts as issued before), or when the key
//! that verified it is revoked (by its `kid` or its RFC 7638 thumbprint). The check runs after signature verification on every
//! request, cached tokens included. The set is filled incrementally from the store (only rows
//! newer than the version last seen), and lapsed revocations are ignored and purged.

/// The revocation maps hash with `foldhash`, seeded at random per process: SipHash was most of
/// a check against a million revocations. Only admins (and a client for its own tokens) add
/// revocations, so their keys are not chosen by anonymous callers; the random seed still keeps
/// a fixed set of values from landing in one bucket on every replica.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::{PoisonError, RwLock};

use warden_store::{Revocation, RevocationKind};
use warden_token::VerifiedToken;

#[derive(Clone, Copy, Debug)]
struct Entry {
    revoked_at: i64,
    expires_at: Option<i64>,
}

/// A revocation stays in force this long past its expiry, longer than any clock leeway a
/// verifier grants, so a token accepted a little past its `exp` is still refused.
pub const EXPIRY_MARGIN_SECONDS: i64 = 300;

impl Entry {
    fn in_force(self, now: i64) -> bool {
        self.expires_at
            .is_none_or(|at| at.saturating_add(EXPIRY_MARGIN_SECONDS) >= now)
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// issuer → jti → entry.
    tokens: HashMap<String, HashMap<String, Entry>>,
    /// issuer → sid → entry.
    sessions: HashMap<String, HashMap<String, Entry>>,
    /// issuer → sub → entry (tokens issued before `revoked_at`).
    subjects: HashMap<String, HashMap<String, Entry>>,
    /// client id → entry (tokens issued before `revoked_at`).
    clients: HashMap<String, Entry>,
    /// kid → entry (every token).
    keys: HashMap<String, Entry>,
    /// How many key revocations name an RFC 7638 thumbprint (43 base64url characters): the
    /// token's thumbprint is looked up only when there is one, so the usual check by `kid`
    /// costs one lookup.
    thumbprint_shaped: usize,
    seen_version: i64,
    count: usize,
}

/// Why a token is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// Which kind of revocation matched.
    pub kind: RevocationKind,
}

/// The revocations a replica knows.
#[derive(Debug, Default)]
pub struct RevocationSet {
    inner: RwLock<Inner>,
}

impl RevocationSet {
    /// The store version of the newest revocation applied.
    pub fn seen_version(&self) -> i64 {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .seen_version
    }

    /// Revocations held.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .count
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds revocations read from the store, and remembers the newest store version read.
    pub fn apply(&self, revocations: &[Revocation]) {
        self.add(revocations, true);
    }

    /// Reads every revocation again from the next refresh on (the store's change counter went
    /// back: a restored or replaced database). What is held stays: a revocation is never
    /// weakened, so one the restored store lacks keeps refusing until the process restarts.
    pub fn rewind(&self) {
        self.inner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .seen_version = 0;
    }

    /// Adds a revocation this replica just wrote, before the answer leaves. It does not move
    /// the version read from the store: another replica's earlier write may not be read yet.
    pub fn apply_local(&self, revocation: &Revocation) {
        self.add(std::slice::from_ref(revocation), false);
    }

    fn add(&self, revocations: &[Revocation], advance_version: bool) {
        if revocations.is_empty() {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        for revocation in revocations {
            let entry = Entry {
                revoked_at: revocation.revoked_at,
                expires_at: revocation.expires_at,
            };
            let fresh = match revocation.kind {
                RevocationKind::Token => insert2(&mut inner.tokens, revocation, entry),
                RevocationKind::Session => insert2(&mut inner.sessions, revocation, entry),
                RevocationKind::Subject => insert2(&mut inner.subjects, revocation, entry),
                RevocationKind::Client => insert(&mut inner.clients, &revocation.value, entry),
                RevocationKind::Key => {
                    let fresh = insert(&mut inner.keys, &revocation.value, entry);
                    if fresh && thumbprint_shaped(&revocation.value) {
                        inner.thumbprint_shaped += 1;
                    }
                    fresh
                }
            };
            if fresh {
                inner.count += 1;
            }
            if advance_version {
                inner.seen_version = inner.seen_version.max(revocation.version);
            }
        }
        metrics::gauge!("warden_revocations_active").set(inner.count as f64);
    }

    /// Drops revocations that lapsed at or before `now`.
    pub fn purge(&self, now: i64) -> usize {
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let inner = &mut *guard;
        let mut removed = 0;
        for map in [&mut inner.tokens, &mut inner.sessions, &mut inner.subjects] {
            for values in map.values_mut() {
                let before = values.len();
                values.retain(|_, entry| entry.in_force(now));
                removed += before - values.len();
            }
            map.retain(|_, values| !values.is_empty());
        }
        for map in [&mut inner.clients, &mut inner.keys] {
            let before = map.len();
            map.retain(|_, entry| entry.in_force(now));
            removed += before - map.len();
        }
        inner.thumbprint_shaped = inner
            .keys
            .keys()
            .filter(|value| thumbprint_shaped(value))
            .count();
        inner.count = inner.count.saturating_sub(removed);
        metrics::gauge!("warden_revocations_active").set(inner.count as f64);
        removed
    }

    /// The revocation that refuses `token` at `now`, if any.
    pub fn check(&self, token: &VerifiedToken, now: i64) -> Option<Revoked> {
        let client = token
            .claims
            .get("client_id")
            .or_else(|| token.claims.get("azp"))
            .and_then(serde_json::Value::as_str);
        self.check_ids(
            &TokenIds {
                issuer: Some(&token.issuer),
                jti: token.jti.as_ref().map(warden_token::Jti::as_str),
                sid: token.sid.as_deref(),
                subject: Some(&token.principal.subject),
                issued_at: token.issued_at,
                client,
                kid: token.kid.as_deref(),
                key_thumbprint: token.key_thumbprint.as_deref(),
            },
            now,
        )
    }

    /// The revocation that refuses a token with these identifiers at `now`, if any (also for
    /// the identifiers an enforcement point forwards on the AuthZEN path).
    pub fn check_ids(&self, token: &TokenIds<'_>, now: i64) -> Option<Revoked> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if inner.count == 0 {
            return None;
        }
        let issued_before = |entry: &Entry| {
            entry.in_force(now) && token.issued_at.is_none_or(|iat| iat < entry.revoked_at)
        };
        let hit = |kind| Some(Revoked { kind });
        if let Some(issuer) = token.issuer {
            if let Some(jti) = token.jti
                && lookup2(&inner.tokens, issuer, jti).is_some_and(|e| e.in_force(now))
            {
                return hit(RevocationKind::Token);
            }
            if let Some(sid) = token.sid
                && lookup2(&inner.sessions, issuer, sid).is_some_and(|e| e.in_force(now))
            {
                return hit(RevocationKind::Session);
            }
            if let Some(subject) = token.subject
                && lookup2(&inner.subjects, issuer, subject).is_some_and(|e| issued_before(&e))
            {
                return hit(RevocationKind::Subject);
            }
        }
        if let Some(client) = token.client
            && inner.clients.get(client).is_some_and(issued_before)
        {
            return hit(RevocationKind::Client);
        }
        // A key is revoked by its `kid` or by its RFC 7638 thumbprint; both name the key that
        // verified the token, whether or not the token's header named a `kid`.
        let key_revoked = |name: Option<&str>| {
            name.is_some_and(|name| inner.keys.get(name).is_some_and(|e| e.in_force(now)))
        };
        if !inner.keys.is_empty()
            && (key_revoked(token.kid)
                || (inner.thumbprint_shaped > 0 && key_revoked(token.key_thumbprint)))
        {
            return hit(RevocationKind::Key);
        }
        None
    }
}

/// What identifies a token for the revocation check. Absent parts match nothing; without an
/// `iat`, a subject or client revocation covers the token (fail closed).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenIds<'a> {
    /// `iss` (token, session and subject revocations are per issuer).
    pub issuer: Option<&'a str>,
    /// `jti`.
    pub jti: Option<&'a str>,
    /// `sid`.
    pub sid: Option<&'a str>,
    /// `sub`.
    pub subject: Option<&'a str>,
    /// `iat`.
    pub issued_at: Option<i64>,
    /// `client_id` (else `azp`).
    pub client: Option<&'a str>,
    /// The `kid` of the key that verified the token.
    pub kid: Option<&'a str>,
    /// The RFC 7638 thumbprint of the key that verified the token.
    pub key_thumbprint: Option<&'a str>,
}

/// Two revocations of the same thing: the stronger of each part holds (the later not-before,
/// the longer life, no expiry over any).
fn merge(old: Entry, new: Entry) -> Entry {
    Entry {
        revoked_at: old.revoked_at.max(new.revoked_at),
        expires_at: match (old.expires_at, new.expires_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        },
    }
}

/// Whether a key revocation's value could be an RFC 7638 SHA-256 thumbprint (43 base64url
/// characters); a `kid` of that shape counts too, which only costs a lookup.
fn thumbprint_shaped(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

fn insert(map: &mut HashMap<String, Entry>, value: &str, entry: Entry) -> bool {
    match map.get_mut(value) {
        Some(old) => {
            *old = merge(*old, entry);
            false
        }
        None => {
            map.insert(value.to_owned(), entry);
            true
        }
    }
}

fn insert2(
    map: &mut HashMap<String, HashMap<String, Entry>>,
    revocation: &Revocation,
    entry: Entry,
) -> bool {
    insert(
        map.entry(revocation.issuer.clone()).or_default(),
        &revocation.value,
        entry,
    )
}

fn lookup2(
    map: &HashMap<String, HashMap<String, Entry>>,
    issuer: &str,
    value: &str,
) -> Option<Entry> {
    map.get(issuer)
        .and_then(|values| values.get(value))
        .copied()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn revocation(
        kind: RevocationKind,
        value: &str,
        version: i64,
        expires_at: Option<i64>,
    ) -> Revocation {
        Revocation {
            id: version,
            version,
            kind,
            issuer: if kind.issuer_scoped() {
                "https://idp".to_owned()
            } else {
                String::new()
            },
            value: value.to_owned(),
            revoked_at: 100,
            expires_at,
            reason: "r".to_owned(),
            actor: "admin:test".to_owned(),
        }
    }

    #[test]
    fn apply_counts_tracks_versions_and_purge_waits_for_the_margin() {
        let set = RevocationSet::default();
        set.apply(&[
            revocation(RevocationKind::Token, "a", 3, Some(1000)),
            revocation(RevocationKind::Key, "k", 5, None),
            revocation(RevocationKind::Token, "a", 6, Some(1000)),
        ]);
        assert_eq!(set.len(), 2, "the same jti twice is one revocation");
        assert_eq!(set.seen_version(), 6);
        assert_eq!(
            set.purge(1000 + EXPIRY_MARGIN_SECONDS),
            0,
            "kept through the margin"
        );
        assert_eq!(set.purge(1000 + EXPIRY_MARGIN_SECONDS + 1), 1);
        assert_eq!(set.len(), 1, "the key revocation never lapses");
    }

    #[test]
    fn a_second_revocation_of_the_same_thing_never_weakens_the_first() {
        let set = RevocationSet::default();
        set.apply(&[revocation(RevocationKind::Key, "k", 1, None)]);
        set.apply(&[revocation(RevocationKind::Key, "k", 2, Some(500))]);
        assert_eq!(set.purge(10_000), 0, "the permanent one holds");
        set.apply_local(&revocation(RevocationKind::Token, "t", 9, None));
        assert_eq!(
            set.seen_version(),
            2,
            "a local write does not skip unread versions"
        );
        assert_eq!(set.len(), 2);
    }
}
