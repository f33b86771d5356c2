//! One module per verb; each returns a [`Verdict`] or an error (bad usage or input, exit 2).

pub mod admin;
pub mod audit;
pub mod check;
pub mod diff;
pub mod entity_import;
pub mod serve;
pub mod service_accounts;
pub mod tenant_policies;
pub mod test;
pub mod token;
pub mod validate;

/// What a verb concluded; `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0: valid, allowed, passed.
    Success,
    /// Exit 1: invalid, denied, failed.
    Negative,
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
