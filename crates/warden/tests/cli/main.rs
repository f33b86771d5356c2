//! The `warden` binary as scripts use it: arguments, output and exit codes
//! (0 ok, 1 negative result, 2 bad usage or input). One test binary, one module per verb.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod admin_verb;
mod audit_verb;
mod check;
mod diff_verb;
mod entity_import;
mod exchange_verb;
mod policy_verb;
mod replicas;
mod revocation_replicas;
mod sa_verb;
mod same_decisions;
mod secrets_in_logs;
mod serve_signals;
mod store_crash;
mod support;
mod test_verb;
mod tidy;
mod token;
mod validate;
