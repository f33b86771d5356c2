//! Where an issuer's keys come from, and keeping them fresh.
//!
//! Keys come from a JWKS URL (HTTP(S), rustls), a JWKS file, or an HS256 secret. A fetched set
//! is cached and refreshed in the background at the interval the response's
//! `Cache-Control: max-age` asks for, held within bounds. A token whose `kid` is unknown
//! triggers a refresh, but at most once per `jwks_unknown_kid_interval_seconds`, with one
//! fetch in flight, so an attacker's random kids cannot become a fetch storm. When the IdP is
//! down, the last good set keeps serving for at most `jwks_max_stale_seconds`; after that the
//! issuer has no keys and its tokens are refused (fail closed). Nothing a token says (`jku`,
//! `x5u`, `jwk`, `x5c`) is ever fetched or used. Tests: `tests/tokens/jwks_rotation.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;

use crate::keys::{KeySet, VerificationKey};
use crate::settings::{IssuerConfig, JwksTiming, KeySourceConfig};

/// The largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Bounds on a `Cache-Control: max-age` refresh interval.
const MIN_REFRESH: Duration = Duration::from_secs(60);
const MAX_REFRESH: Duration = Duration::from_secs(86_400);
/// Retry delay after a failed background refresh: short, so that a replica is ready again
/// within seconds of its IdP coming back, even with no token traffic (one fetch per issuer
/// every two seconds while the IdP is down).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);
/// The longest a request waits for a key-set fetch it triggered (an unknown `kid`, or keys
/// past their staleness bound): a slow IdP must not hold requests; they are refused
/// (`token_key_unknown`) and the background refresher keeps trying.
const REQUEST_PATH_FETCH_WAIT: Duration = Duration::from_millis(500);

/// A key set could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("issuer `{issuer}`: keys from {source_name}: {message}")]
pub struct KeySourceError {
    /// The issuer.
    pub issuer: String,
    /// The URL or file.
    pub source_name: String,
    /// What went wrong.
    pub message: String,
}

/// What `/readyz` and `warden token verify` report about an issuer's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// Keys are loaded and not stale beyond the bound.
    pub usable: bool,
    /// Number of usable keys.
    pub n_keys: usize,
    /// Seconds since the last successful load, if any.
    pub age_seconds: Option<u64>,
    /// The last load error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Keys refused at the last load (too short, wrong type, …).
    pub refused: Vec<String>,
}

struct KeyState {
    set: Arc<KeySet>,
    loaded_at: Option<Instant>,
    next_refresh: Duration,
    last_error: Option<String>,
    refused: Vec<String>,
}

/// The keys of one issuer, kept fresh.
pub struct IssuerKeys {
    issuer: String,
    source: KeySourceConfig,
    timing: JwksTiming,
    client: Option<reqwest::Client>,
    state: RwLock<KeyState>,
    /// Held while an unknown-kid refresh runs; remembers when the last one started.
    unknown_kid_refresh: tokio::sync::Mutex<Option<Instant>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl IssuerKeys {
    /// Keys for a checked issuer. A secret is ready at once; a URL or file needs [`Self::load`].
    pub fn new(config: &IssuerConfig) -> Result<Arc<Self>, KeySourceError> {
        let client = match &config.keys {
            KeySourceConfig::Uri(_) => Some(
                reqwest::Client::builder()
                    .timeout(config.timing.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|error| KeySourceError {
                        issuer: config.issuer.clone(),
                        source_name: "the HTTP client".to_owned(),
                        message: error.to_string(),
                    })?,
            ),
            _ => None,
        };
        let (set, loaded_at) = match &config.keys {
            KeySourceConfig::Secret(secret) => (KeySet::from_secret(secret), Some(Instant::now())),
            _ => (KeySet::default(), None),
        };
        Ok(Arc::new(Self {
            issuer: config.issuer.clone(),
            source: config.keys.clone(),
            timing: config.timing,
            client,
            state: RwLock::new(KeyState {
                set: Arc::new(set),
                loaded_at,
                next_refresh: config.timing.refresh,
                last_error: None,
                refused: Vec::new(),
            }),
            unknown_kid_refresh: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        }))
    }

    /// The issuer these keys belong to.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How many times the keys were fetched or read (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn is_secret(&self) -> bool {
        matches!(self.source, KeySourceConfig::Secret(_))
    }

    /// Keys installed by the server never go stale by age and are never fetched.
    fn is_pushed(&self) -> bool {
        matches!(
            self.source,
            KeySourceConfig::Secret(_) | KeySourceConfig::Managed
        )
    }

    /// Replaces the set of a managed issuer (Warden's own keys, read from the store). Keys
    /// still in the new set keep their identity, so verified-token cache entries survive.
    pub fn install(&self, set: KeySet) {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.set = Arc::new(state.set.merged_with(set));
        state.loaded_at = Some(Instant::now());
        state.last_error = None;
    }

    /// The current key set, or `None` if never loaded or stale beyond the bound.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = state
            .loaded_at
            .is_some_and(|at| self.is_pushed() || at.elapsed() <= self.timing.max_stale);
        fresh.then(|| Arc::clone(&state.set))
    }

    /// Loads the keys now (fetch or read), replacing the set on success.
    pub async fn load(&self) -> Result<(), KeySourceError> {
        if self.is_pushed() {
            return Ok(());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch().await;
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok((set, refused, max_age)) => {
                for message in &refused {
                    tracing::warn!(issuer = %self.issuer, "{message}");
                }
                state.set = Arc::new(set);
                state.loaded_at = Some(Instant::now());
                state.next_refresh = max_age.map_or(self.timing.refresh, |age| {
                    age.clamp(MIN_REFRESH, MAX_REFRESH)
                });
                state.last_error = None;
                state.refused = refused;
                Ok(())
            }
            Err(message) => {
                tracing::warn!(issuer = %self.issuer, error = %message, "loading the issuer's keys failed; the last good keys keep serving within the staleness bound");
                state.last_error = Some(message.clone());
                Err(KeySourceError {
                    issuer: self.issuer.clone(),
                    source_name: self.source_name(),
                    message,
                })
            }
        }
    }

    fn source_name(&self) -> String {
        match &self.source {
            KeySourceConfig::Uri(uri) => uri.clone(),
            KeySourceConfig::File(path) => path.display().to_string(),
            KeySourceConfig::Secret(_) => "the HS256 secret".to_owned(),
            KeySourceConfig::Managed => "Warden's own signing keys".to_owned(),
        }
    }

    async fn fetch(&self) -> Result<(KeySet, Vec<String>, Option<Duration>), String> {
        let (body, max_age) = match (&self.source, &self.client) {
            (KeySourceConfig::Uri(uri), Some(client)) => {
                let mut response = client
                    .get(uri)
                    .send()
                    .await
                    .map_err(|error| error.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("HTTP status {}", response.status()));
                }
                let max_age = response
                    .headers()
                    .get(reqwest::header::CACHE_CONTROL)
                    .and_then(|value| value.to_str().ok())
                    .and_then(parse_max_age);
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
                    if body.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(format!("the JWKS is larger than {MAX_JWKS_BYTES} bytes"));
                    }
                    body.extend_from_slice(&chunk);
                }
                (body, max_age)
            }
            (KeySourceConfig::File(path), _) => {
                let body = tokio::fs::read(path)
                    .await
                    .map_err(|error| error.to_string())?;
                if body.len() > MAX_JWKS_BYTES {
                    return Err(format!("the JWKS is larger than {MAX_JWKS_BYTES} bytes"));
                }
                (body, None)
            }
            _ => return Err("no key source".to_owned()),
        };
        let (set, refused) = KeySet::from_jwks(&body).map_err(|error| error.to_string())?;
        Ok((set, refused, max_age))
    }

    /// The key for a token's `kid` and `alg`, refreshing once (rate-limited) on an unknown kid.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Option<Arc<VerificationKey>> {
        // An HS256 issuer has exactly one key, whatever `kid` the token names.
        let kid = if self.is_secret() { None } else { kid };
        if let Some(set) = self.current()
            && let Some(key) = set.find(kid, algorithm)
        {
            return Some(Arc::clone(key));
        }
        // Only a kid the set does not know justifies a refresh; a known kid with the wrong
        // algorithm, or a stale-expired set with no way to refresh, does not.
        let known_kid = match (self.current(), kid) {
            (Some(set), Some(kid)) => set.has_kid(kid),
            _ => false,
        };
        if self.is_pushed() || known_kid {
            return None;
        }
        let mut last_refresh = self.unknown_kid_refresh.lock().await;
        // Another task may have refreshed while this one waited.
        if let Some(set) = self.current()
            && let Some(key) = set.find(kid, algorithm)
        {
            return Some(Arc::clone(key));
        }
        if last_refresh.is_some_and(|at| at.elapsed() < self.timing.unknown_kid_interval) {
            return None;
        }
        *last_refresh = Some(Instant::now());
        if tokio::time::timeout(REQUEST_PATH_FETCH_WAIT, self.load())
            .await
            .is_err()
        {
            tracing::warn!(issuer = %self.issuer, "the issuer's keys did not load within {REQUEST_PATH_FETCH_WAIT:?}; the token is refused and the refresher keeps trying");
        }
        drop(last_refresh);
        self.current()
            .and_then(|set| set.find(kid, algorithm).cloned())
    }

    /// Whether this exact key is still current (the verified-token cache asks on every hit).
    pub fn still_has(&self, key: &Arc<VerificationKey>) -> bool {
        self.current().is_some_and(|set| set.contains(key))
    }

    /// A report for readiness and the CLI.
    pub fn status(&self) -> KeyStatus {
        let usable = self.current().is_some();
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        KeyStatus {
            usable,
            n_keys: state.set.len(),
            age_seconds: state.loaded_at.map(|at| at.elapsed().as_secs()),
            last_error: state.last_error.clone(),
            refused: state.refused.clone(),
        }
    }

    /// Refreshes a fetched key set in the background until the returned handle is aborted.
    pub fn spawn_refresher(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if !matches!(self.source, KeySourceConfig::Uri(_)) {
            return None;
        }
        let keys = Arc::clone(self);
        Some(tokio::spawn(async move {
            loop {
                let wait = {
                    let state = keys
                        .state
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if state.last_error.is_some() || state.loaded_at.is_none() {
                        RETRY_AFTER_FAILURE
                    } else {
                        state.next_refresh
                    }
                };
                tokio::time::sleep(wait).await;
                let _ = keys.load().await;
            }
        }))
    }
}

/// `max-age=N` from a Cache-Control value; `no-cache`/`no-store` mean "as soon as allowed".
fn parse_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            max_age = seconds
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age_is_read() {
        assert_eq!(
            parse_max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("private"), None);
        assert_eq!(parse_max_age("max-age=oops"), None);
    }
}
