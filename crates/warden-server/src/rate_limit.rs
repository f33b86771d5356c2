//! Per-address rate limits: the token endpoint, the admin API, and failed authentications of
//! callers (admin, PEP and client credentials, the `/metrics` credential). Over a limit the
//! answer is 429 `rate_limited` with `Retry-After`, before any handler runs. SECURITY-SENSITIVE.
//!
//! Each limit is a GCRA bucket per client address (`governor`): `N` per minute, bursting to `N`.
//! An IPv6 address counts by its /64 (one host holds a whole /64). Failed authentications
//! are settled where the caller's credential is checked, before the answer is made
//! ([`settle`]): a failure takes a cell, and the failure that finds the bucket empty blocks the
//! address and is answered 429, not 401; a success from a blocked address is answered 429 too.
//! So guesses sent together cannot outrun the limit (each is counted before it is answered, not
//! after), and an answer past the limit says nothing about the guess. Once an address has used
//! its bucket, every call from it but health checks is refused until a cell is free again
//! (60/N seconds after the failure that found it empty): the failures an address can see
//! answered are N per minute after a burst of N. End users' bearer tokens refused on a
//! decision are not counted: they come through PEPs, and one user's bad token must not lock
//! out the gateway that forwarded it.
//!
//! Memory is bounded: [`RateLimits::upkeep`] (every few seconds) forgets addresses whose
//! buckets are full again, and past `max_tracked_addresses` forgets them all (an attacker with
//! that many addresses gains one fresh burst per address, which it had anyway).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Mutex, RwLock};
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
        self.limiter
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// The limits of one server.
pub struct RateLimits {
    token: Option<Limit>,
    admin: Option<Limit>,
    failed_auth: Option<Limit>,
    /// Addresses that used up their failed-authentication bucket, until when.
    blocked: Mutex<std::collections::HashMap<IpAddr, Instant>>,
    max_tracked: usize,
    clock: DefaultClock,
}

impl RateLimits {
    /// From `[rate_limits]`.
    pub fn new(settings: &RateLimitSettings) -> RateLimits {
        RateLimits {
            token: Limit::new("token requests", "token", settings.token_per_minute),
            admin: Limit::new("admin requests", "admin", settings.admin_per_minute),
            failed_auth: Limit::new(
                "failed authentications",
                "failed_auth",
                settings.failed_auth_per_minute,
            ),
            blocked: Mutex::new(std::collections::HashMap::new()),
            max_tracked: settings.max_tracked_addresses.max(1),
            clock: DefaultClock::default(),
        }
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<IpAddr, Instant>> {
        self.blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// 429 while `key` is blocked for failed authentications.
    fn check_blocked(&self, key: IpAddr) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut blocked = self.blocked();
        match blocked.get(&key) {
            Some(until) if *until > now => Err(ApiError::RateLimited {
                what: "failed authentications",
                retry_after_seconds: whole_seconds(*until - now),
            }),
            Some(_) => {
                blocked.remove(&key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts one failed authentication; blocks the address when its bucket is empty (and
    /// refuses that failure: it is answered 429, not 401).
    fn count_failure(&self, key: IpAddr) -> Result<(), ApiError> {
        self.check_blocked(key)?;
        let Some(limit) = &self.failed_auth else {
            return Ok(());
        };
        let taken = limit.take(key, &self.clock);
        if let Err(ApiError::RateLimited {
            retry_after_seconds,
            ..
        }) = &taken
        {
            let retry_after_seconds = *retry_after_seconds;
            tracing::warn!(address = %key, "too many failed authentications: the address is refused for {retry_after_seconds} s");
            let mut blocked = self.blocked();
            if blocked.len() >= self.max_tracked && !blocked.contains_key(&key) {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
                // Still full (of addresses an attacker chose): one of them goes, not this
                // block, or filling the list would make an address immune to the limit.
                if blocked.len() >= self.max_tracked
                    && let Some(evicted) = blocked.keys().next().copied()
                {
                    blocked.remove(&evicted);
                }
            }
            blocked.insert(
                key,
                Instant::now() + Duration::from_secs(retry_after_seconds),
            );
        }
        taken
    }

    /// Forgets addresses whose buckets are full again; bounds the memory.
    pub fn upkeep(&self) {
        for limit in [&self.token, &self.admin, &self.failed_auth]
            .into_iter()
            .flatten()
        {
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
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    RateLimiter::keyed(limit.quota);
            }
        }
        let now = Instant::now();
        self.blocked().retain(|_, until| *until > now);
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
    } else if path.starts_with("/v1/admin/") || path.starts_with("/v1/decisions/") {
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
    if !always_open(path)
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
        limits.count_failure(key).unwrap();
        limits.check_blocked(key).unwrap();
        assert!(
            limits.count_failure(key).is_err(),
            "the failure that finds the bucket empty is refused"
        );
        assert!(limits.check_blocked(key).is_err());
        assert!(
            settle(&limits, Some(&CallerKey(key)), true).is_err(),
            "a success from a blocked address is refused too"
        );
        settle(&limits, Some(&CallerKey(other)), true).unwrap();
        settle(&limits, None, false).unwrap();
    }

    /// Issue #22 review: with the block list full of (the attacker's) other addresses, an
    /// address past its bucket was not blocked at all, and could go on failing without limit.
    #[test]
    fn an_address_past_its_bucket_is_blocked_even_when_the_block_list_is_full() {
        let limits = RateLimits::new(&RateLimitSettings {
            token_per_minute: 0,
            admin_per_minute: 0,
            failed_auth_per_minute: 1,
            max_tracked_addresses: 3,
        });
        let throwaways: Vec<IpAddr> = (1..=3)
            .map(|i| format!("192.0.2.{i}").parse().unwrap())
            .collect();
        for address in &throwaways {
            let _first = limits.count_failure(*address);
            let _second = limits.count_failure(*address);
            assert!(limits.check_blocked(*address).is_err(), "{address}");
        }
        let guesser: IpAddr = "198.51.100.7".parse().unwrap();
        let _first = limits.count_failure(guesser);
        let _second = limits.count_failure(guesser);
        assert!(
            limits.check_blocked(guesser).is_err(),
            "an address past its bucket is not blocked while the block list is full"
        );
        assert!(
            limits.blocked().len() <= 3,
            "the block list outgrew its bound"
        );
    }
}
