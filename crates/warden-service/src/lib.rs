//! Everything that decides, and nothing that knows HTTP: `warden serve`, `warden check`,
//! `warden test` and the benches all run this crate's pipeline, so they decide alike by
//! construction.
//!
//! Layout:
//! - [`snapshot`]: the pack and the entities decisions are made against, swapped atomically,
//!   and how fresh the store view is. [`reload`] loads and reloads the pack and entity file.
//! - [`entity_graph`]: the entity data as one record per entity, changed a record at a time,
//!   and the slice of it each decision assembles (stored entities kept compact by
//!   [`compact_entity`]). **Security-sensitive.**
//! - [`engine`]: one decision without I/O (entities assembled with known facts winning, the
//!   store's principal statuses, the tenant-prefix rule, claim overrides, Cedar, the tenant
//!   guard), with [`decision_cache`] and [`decision_metrics`].
//! - [`filter`]: data-filter plans (`POST /v1/filter`, resource search), the principal resolved
//!   as for a decision. **Security-sensitive.**
//! - [`revocation`]: every revocation in memory, checked after a token is verified.
//!   **Security-sensitive.**
//! - [`issuer`]: Warden as an OAuth issuer at run time (signing keys, service accounts' state).
//!   **Security-sensitive.**
//! - [`store_sync`]: keeping the snapshot, revocations and issuer state in step with the store.
//! - [`decision_log`]: decisions, refused tokens, searches and admin calls as decision-log
//!   records, and fail-closed on a log that cannot keep them.
//! - [`pipeline`]: [`pipeline::Service`], the one pipeline every entry point runs:
//!   authenticate → principal → decide → record. **Security-sensitive.**
//! - [`start`]: building a [`Service`] from the configuration, for the server (with its
//!   background tasks) or for the command line (read once).
//! - [`reason`]: one reason type for decisions, refusals and refused tokens.
//! - [`suite`]: policy suites (`warden test`) decided by the engine.
//! - [`policy_diff`]: recorded decisions replayed against a candidate pack (`warden diff`).
//! - [`entitlement_usage`] and [`reviews`]: entitlement review campaigns, with usage evidence
//!   from allows, decisions applied through the normal revoke paths, and the overdue sweep.
//! - [`token_exchange`]: RFC 8693 token exchange, and the checks a delegated token passes at
//!   every use. **Security-sensitive.**
//! - [`clock`]: Unix seconds.
//!
//! Tests: unit tests beside the code; end to end through the server in
//! `crates/warden-server/tests/server/`.

pub mod clock;
pub mod compact_entity;
pub mod decision_cache;
pub mod decision_log;
pub mod decision_metrics;
pub mod engine;
pub mod entitlement_usage;
pub mod entity_graph;
pub mod filter;
pub mod issuer;
pub mod pipeline;
pub mod policy_diff;
pub mod reason;
pub mod reload;
pub mod reviews;
pub mod revocation;
pub mod routes;
pub mod slice_store;
pub mod snapshot;
pub mod start;
pub mod store_sync;
pub mod suite;
pub mod token_exchange;

pub use pipeline::{Bearer, Service};
