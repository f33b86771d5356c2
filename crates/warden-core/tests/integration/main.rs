//! Integration tests of the decision core, compiled into one binary.
//! Each module covers one rule; fixtures are data files under `tests/fixtures/` and the
//! example pack under `examples/saas/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod cedar_corpus;
mod context;
mod example_pack;
mod explanations;
mod filter_plan;
mod pack_loading;
mod policy_index;
mod suites;
mod support;
mod tenant_guard;
mod tenant_policy_index;
