//! The wall clock in Unix seconds, as tokens, revocations and the store count time.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
