//! The metrics every decision records, with their handles kept. Looking a handle up in the
//! recorder's registry (hashing the name and the labels) on every decision cost about 1% of a
//! cached decision; each label set is now looked up once.
//!
//! A handle is bound to the recorder installed when it is made, so `Server::start` installs the
//! Prometheus recorder before anything else (no decision can be made before a server starts).

use std::cell::RefCell;
use std::sync::OnceLock;

use metrics::{Counter, Histogram};

/// `warden_decisions_total{decision, reason}`. Each thread keeps its own handles (to the same
/// counters), so no lock is shared between workers; reasons are a fixed set of codes, so a
/// thread holds a few dozen handles at most.
pub fn count_decision(allowed: bool, reason: &'static str) {
    thread_local! {
        static COUNTERS: RefCell<Vec<(bool, &'static str, Counter)>> = const { RefCell::new(Vec::new()) };
    }
    COUNTERS.with_borrow_mut(|counters| {
        let known = counters
            .iter()
            .find(|(was_allowed, was_reason, _)| *was_allowed == allowed && *was_reason == reason);
        if let Some((_, _, counter)) = known {
            counter.increment(1);
            return;
        }
        let counter = metrics::counter!(
            "warden_decisions_total",
            "decision" => if allowed { "allow" } else { "deny" },
            "reason" => reason
        );
        counter.increment(1);
        counters.push((allowed, reason, counter));
    });
}

/// `warden_decision_duration_seconds`.
pub fn record_duration(seconds: f64) {
    static HISTOGRAM: OnceLock<Histogram> = OnceLock::new();
    HISTOGRAM
        .get_or_init(|| metrics::histogram!("warden_decision_duration_seconds"))
        .record(seconds);
}

/// `warden_decision_cache_total{result}`.
pub fn count_cache_lookup(hit: bool) {
    static HITS: OnceLock<Counter> = OnceLock::new();
    static MISSES: OnceLock<Counter> = OnceLock::new();
    let counter = if hit {
        HITS.get_or_init(|| metrics::counter!("warden_decision_cache_total", "result" => "hit"))
    } else {
        MISSES.get_or_init(|| metrics::counter!("warden_decision_cache_total", "result" => "miss"))
    };
    counter.increment(1);
}
