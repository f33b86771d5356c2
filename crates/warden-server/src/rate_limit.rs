//! Per-address rate limits: the token endpoint, the admin API, and failed authentications of
//! callers (admin, PEP and client credentials, the `/metrics` credential). Over a limit the
//! answer is 429 `rate_limited` with `Retry-After`, before any handler runs. SECURITY-SENSITIVE.
//!
//! Each limit is a GCRA bucket per client address: `N` per minute, bursting to `N`. An IPv6
//! address counts by its /64 (one host holds a whole /64). The token and admin buckets are
//! `governor`'s. Failed authentications have a bucket of their own ([`FailureBuckets`]), because
//! it must be looked at without taking a cell: while an address's bucket is empty, every call
//! from it but health checks is refused 429, a right credential included (else a 429 for a
//! wrong guess and a 200 for the right one would tell a guesser which is which). Failures are
//! settled where the caller's credential is checked, before the answer is made ([`settle`]), so
//! guesses sent together cannot outrun the bucket: an address sees at most N failures
//! answered 401 in a burst, then one per 60/N seconds. End users' bearer tokens refused on a
//! decision are not counted: they come through PEPs, and one user's bad token must not lock
//! out the gateway that forwarded it.
//!
//! Memory is bounded: [`RateLimits::upkeep`] (every few seconds) forgets addresses whose
//! buckets are full again; past `max_tracked_addresses` the token and admin limits forget all
//! addresses (an attacker with that many addresses gains one fresh burst per address, which it
//! had anyway), and the failure buckets keep the addresses that failed most recently.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use warden_config::RateLimitSettings;

use crate::problem::ApiError;
use crate::state::AppState;

/// The rate-limit key of a request's peer, left in the request by [`enforce`] for the code that
/// checks the caller's credential (absent in-process, where nothing is limited).
#[derive(Clone, Copy, Debug)]
pub struct CallerKey(IpAddr);

/// Settles a caller's authentication before it is answered: a failure takes a cell of the
/// address's failed-authentication bucket (the one that finds it empty blocks the address), and
/// any outcome from a blocked address is refused 429. `Ok` means answer as the check decided.
pub fn settle(
    limits: &RateLimits,
    caller: Option<&CallerKey>,
    authenticated: bool,
) -> Result<(), ApiError> {
    let Some(CallerKey(key)) = caller.copied() else {
        return Ok(());
    };
    let settled = if authenticated {
        limits.check_blocked(key)
    } else {
        limits.count_failure(key)
    };
    if settled.is_err() {
        metrics::counter!("warden_rate_limited_total", "limit" => "failed_auth").increment(1);
    }
    settled
}

/// One limit: a bucket per address.
struct Limit {
    what: &'static str,
    /// The `limit` label of `warden_rate_limited_total`.
    label: &'static str,
    quota: Quota,
    /// Replaced by an empty one when it tracks too many addresses.
    limiter: RwLock<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Limit {
    fn new(what: &'static str, label: &'static str, per_minute: u32) -> Option<Limit> {
        NonZeroU32::new(per_minute).map(|per_minute| {
            let quota = Quota::per_minute(per_minute);
            Limit {
                what,
                label,
                quota,
                limiter: RwLock::new(RateLimiter::keyed(quota)),
            }
        })
    }

    fn limiter(&self) -> std::sync::RwLockReadGuard<'_, DefaultKeyedRateLimiter<IpAddr>> {
        self.limiter.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one cell, or says how long until one is free.
    fn take(&self, key: IpAddr, clock: &DefaultClock) -> Result<(), ApiError> {
        self.limiter().check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(clock.now());
            ApiError::RateLimited {
                what: self.what,
                retry_after_seconds: whole_seconds(wait),
            }
        })
    }
}

/// Rounds up to whole seconds, at least 1 (`Retry-After` has no fractions).
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// Failed-authentication buckets: GCRA by hand, so that whether a bucket is empty can be asked
/// without taking a cell (`governor` cannot).
struct FailureBuckets {
    /// One cell refills every `interval` (60 s / N).
    interval: Duration,
    /// `interval` × N: how far ahead of now a bucket's theoretical arrival time may run.
    capacity: Duration,
    /// Per address, when its bucket is full again (GCRA's theoretical arrival time); an address
    /// missing or in the past has a full bucket.
    full_at: Mutex<HashMap<IpAddr, Instant>>,
    max_tracked: usize,
}

impl FailureBuckets {
    fn new(per_minute: u32, max_tracked: usize) -> Option<FailureBuckets> {
        NonZeroU32::new(per_minute).map(|per_minute| {
            let interval = Duration::from_secs(60) / per_minute.get();
            FailureBuckets {
                interval,
                capacity: interval * per_minute.get(),
                full_at: Mutex::new(HashMap::new()),
                max_tracked,
            }
        })
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.full_at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long until `key`'s bucket holds a cell; `None` when it holds one now.
    fn wait(&self, full_at: Option<Instant>, now: Instant) -> Option<Duration> {
        let after_one_more = full_at.map_or(now, |at| at.max(now)) + self.interval;
        let ahead = after_one_more - now;
        (ahead > self.capacity).then(|| ahead - self.capacity)
    }

    /// `Err(wait)` while `key`'s bucket is empty.
    fn check(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        let full_at = self.buckets().get(&key).copied();
        self.wait(full_at, now).map_or(Ok(()), Err)
    }

    /// Takes a cell for one failure, or `Err(wait)` when there is none.
    fn take(&self, key: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets();
        let full_at = buckets.get(&key).copied();
        if let Some(wait) = self.wait(full_at, now) {
            return Err(wait);
        }
        if buckets.len() >= self.max_tracked.saturating_mul(2) && full_at.is_none() {
            self.shrink(&mut buckets, now);
        }
        buckets.insert(key, full_at.map_or(now, |at| at.max(now)) + self.interval);
        Ok(())
    }

    /// Forgets full buckets; past `max_tracked`, keeps those that refill last (the addresses
    /// that failed most).
    fn shrink(&self, buckets: &mut HashMap<IpAddr, Instant>, now: Instant) {
        buckets.retain(|_, full_at| *full_at > now);
        if buckets.len() > self.max_tracked {
            let mut ends: Vec<Instant> = buckets.values().copied().collect();
            let cut = ends.len() - self.max_tracked;
            let (_, threshold, _) = ends.select_nth_unstable(cut);
            let threshold = *threshold;
            buckets.retain(|_, full_at| *full_at >= threshold);
        }
        buckets.shrink_to_fit();
    }
}

/// The limits of one server.
pub struct RateLimits {
    token: Option<Limit>,
    admin: Option<Limit>,
    failures: Option<FailureBuckets>,
    max_tracked: usize,
    clock: DefaultClock,
}

impl RateLimits {
    /// From `[rate_limits]`.
    pub fn new(settings: &RateLimitSettings) -> RateLimits {
        let max_tracked = settings.max_tracked_addresses.max(1);
        RateLimits {
            token: Limit::new("token requests", "token", settings.token_per_minute),
            admin: Limit::new("admin requests", "admin", settings.admin_per_minute),
            failures: FailureBuckets::new(settings.failed_auth_per_minute, max_tracked),
            max_tracked,
            clock: DefaultClock::default(),
        }
    }

    /// 429 while `key`'s failed-authentication bucket is empty.
    fn check_blocked(&self, key: IpAddr) -> Result<(), ApiError> {
        match &self.failures {
            Some(failures) => failures
                .check(key, Instant::now())
                .map_err(failed_authentications),
            None => Ok(()),
        }
    }

    /// Counts one failed authentication: `Ok` when it fits the bucket (answer it as a 401),
    /// else 429 (it is not answered as checked).
    fn count_failure(&self, key: IpAddr) -> Result<(), ApiError> {
        let Some(failures) = &self.failures else {
            return Ok(());
        };
        failures.take(key, Instant::now()).map_err(|wait| {
            tracing::warn!(address = %key, "too many failed authentications: the address is refused for {} s", whole_seconds(wait));
            failed_authentications(wait)
        })
    }

    /// Forgets addresses whose buckets are full again; bounds the memory.
    pub fn upkeep(&self) {
        for limit in [&self.token, &self.admin].into_iter().flatten() {
            let too_many = {
                let limiter = limit.limiter();
                limiter.retain_recent();
                limiter.shrink_to_fit();
                limiter.len() > self.max_tracked
            };
            if too_many {
                tracing::warn!(
                    limit = limit.what,
                    "more client addresses than rate_limits.max_tracked_addresses: forgetting them"
                );
                *limit
                    .limiter
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = RateLimiter::keyed(limit.quota);
            }
        }
        if let Some(failures) = &self.failures {
            failures.shrink(&mut failures.buckets(), Instant::now());
        }
    }
}

/// The 429 of an empty failed-authentication bucket.
fn failed_authentications(wait: Duration) -> ApiError {
    ApiError::RateLimited {
        what: "failed authentications",
        retry_after_seconds: whole_seconds(wait),
    }
}

/// The bucket key of an address: itself, or its /64 for IPv6.
pub(crate) fn key_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                ))
            }
        },
    }
}

/// Which limit a path falls under.
fn limit_for<'a>(limits: &'a RateLimits, path: &str) -> Option<&'a Limit> {
    if path == "/oauth2/token" || path == "/oauth2/revoke" {
        limits.token.as_ref()
    } else if path.starts_with("/v1/admin/")
        || path.starts_with("/v1/decisions/")
        || path == "/v1/reviews"
        || path.starts_with("/v1/reviews/")
    {
        limits.admin.as_ref()
    } else {
        None
    }
}

/// Paths never refused for an address's failed authentications (probes and public documents).
fn always_open(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/openapi.json") || path.starts_with("/.well-known/")
}

/// The middleware: refuses over-limit calls before the handler, and leaves the [`CallerKey`]
/// for [`settle`]. Calls without a peer address (in-process tests) are not limited.
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(address) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
    else {
        return next.run(request).await;
    };
    let limits = &state.rate_limits;
    let key = key_of(address);
    let path = request.uri().path();
    // Forward-auth checks no caller credential (only end users' tokens, never counted): a
    // gateway's address locked out by someone else's failures must not refuse every user.
    if !always_open(path)
        && path != "/v1/forward-auth"
        && let Err(refused) = limits.check_blocked(key)
    {
        metrics::counter!("warden_rate_limited_total", "limit" => "failed_auth").increment(1);
        return refused.into_response();
    }
    if let Some(limit) = limit_for(limits, path)
        && let Err(refused) = limit.take(key, &limits.clock)
    {
        metrics::counter!("warden_rate_limited_total", "limit" => limit.label).increment(1);
        return refused.into_response();
    }
    request.extensions_mut().insert(CallerKey(key));
    next.run(request).await
}

/// Runs [`RateLimits::upkeep`] every ten seconds.
pub fn spawn_upkeep(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            state.rate_limits.upkeep();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(key_of(a), key_of(b));
        assert_ne!(key_of(a), key_of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(key_of(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn admin_decision_and_reviewer_paths_share_the_admin_limit() {
        let limits = RateLimits::new(&RateLimitSettings {
            token_per_minute: 3,
            admin_per_minute: 5,
            failed_auth_per_minute: 2,
            max_tracked_addresses: 10,
        });
        for path in [
            "/v1/admin/audit",
            "/v1/decisions/x",
            "/v1/reviews",
            "/v1/reviews/rc_1/items/1",
        ] {
            assert!(
                limit_for(&limits, path)
                    .is_some_and(|limit| std::ptr::eq(limit, limits.admin.as_ref().unwrap())),
                "{path}"
            );
        }
        for path in ["/v1/check", "/v1/reviewsx", "/console/session"] {
            assert!(limit_for(&limits, path).is_none(), "{path}");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_and_failures_block_the_address() {
        let limits = RateLimits::new(&RateLimitSettings {
            token_per_minute: 3,
            admin_per_minute: 0,
            failed_auth_per_minute: 2,
            max_tracked_addresses: 10,
        });
        let key: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let token = limits.token.as_ref().unwrap();
        for _ in 0..3 {
            token.take(key, &limits.clock).unwrap();
        }
        let refused = token.take(key, &limits.clock).unwrap_err();
        assert!(
            matches!(refused, ApiError::RateLimited { retry_after_seconds, .. } if (1..=20).contains(&retry_after_seconds)),
            "{refused:?}"
        );
        token.take(other, &limits.clock).unwrap();
        assert!(limits.admin.is_none(), "0 switches a limit off");

        limits.count_failure(key).unwrap();
        limits.check_blocked(key).unwrap();
        limits.count_failure(key).unwrap();
        // The bucket is empty: the address is refused, whatever it sends next.
        assert!(limits.check_blocked(key).is_err());
        assert!(
            limits.count_failure(key).is_err(),
            "a failure past the bucket is refused, not answered as checked"
        );
        assert!(
            settle(&limits, Some(&CallerKey(key)), true).is_err(),
            "a right credential from an address whose bucket is empty is refused too (a 200 \
             there would tell a guesser its guess was right)"
        );
        settle(&limits, Some(&CallerKey(other)), true).unwrap();
        settle(&limits, None, false).unwrap();
    }

    #[test]
    fn a_failure_bucket_refills_one_cell_per_interval() {
        let buckets = FailureBuckets::new(60, 10).unwrap(); // one a second, bursting to 60
        let key: IpAddr = "192.0.2.9".parse().unwrap();
        let start = Instant::now();
        for _ in 0..60 {
            buckets.take(key, start).unwrap();
        }
        let wait = buckets.take(key, start).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(buckets.check(key, start).is_err());
        let later = start + Duration::from_secs(1);
        buckets.check(key, later).unwrap();
        buckets.take(key, later).unwrap();
        assert!(buckets.take(key, later).is_err(), "one cell, not two");
    }

    /// Issue #22 review: with the block list full of (the attacker's) other addresses, an
    /// address past its bucket was not blocked at all, and could go on failing without limit.
    #[test]
    fn an_address_past_its_bucket_stays_refused_when_many_others_fail_too() {
        let limits = RateLimits::new(&RateLimitSettings {
            token_per_minute: 0,
            admin_per_minute: 0,
            failed_auth_per_minute: 1,
            max_tracked_addresses: 3,
        });
        let throwaways: Vec<IpAddr> = (1..=20)
            .map(|i| format!("192.0.2.{i}").parse().unwrap())
            .collect();
        for address in &throwaways {
            limits.count_failure(*address).unwrap();
            assert!(limits.check_blocked(*address).is_err(), "{address}");
        }
        let guesser: IpAddr = "198.51.100.7".parse().unwrap();
        limits.count_failure(guesser).unwrap();
        assert!(limits.count_failure(guesser).is_err());
        limits.upkeep();
        assert!(
            limits.check_blocked(guesser).is_err(),
            "the address that failed last was forgotten"
        );
        let failures = limits.failures.as_ref().unwrap();
        assert!(
            failures.buckets().len() <= 3,
            "the buckets outgrew their bound"
        );
    }
}
