//! The store's conformance suite: every test runs on SQLite (a real file) and on PostgreSQL
//! (the server at `WARDEN_TEST_POSTGRES_URL`, a fresh database per test). Without that
//! variable the PostgreSQL half is skipped, and says so.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod service_accounts;
mod suite;
mod support;
