//! Warden's decision core: policy packs, decisions, the tenant guard and explanations.
//!
//! This crate does no I/O (no files, no network, no clock but the evaluation timer): callers
//! hand it text and entities, it hands back values. It has no `Serialize` on its types; the
//! wire formats live at the edges (`warden` CLI, `warden-server`).
//!
//! Layout:
//! - [`pack`]: compiling a pack (schema, `*.cedar`, `pack.toml`) into a ready [`Pack`].
//! - [`request`]: building a Cedar request typed against the pack's schema.
//! - [`decision`]: one decision: Cedar, then the tenant guard; reason codes.
//! - [`tenant_guard`]: the tenant invariant outside any policy (security-sensitive).
//! - [`tenant_policies`]: policies tenants manage, checked, scoped and indexed per tenant
//!   (security-sensitive).
//! - [`explain`]: decisions in plain words, with near misses.
//! - [`filter`]: data-filter plans (policies as conditions over a resource type; security-sensitive).
//! - [`uid`]: parsing entity UIDs from text and JSON.
//! - [`suite`]: running policy regression suites, their generated adversarial cases, coverage.
//!
//! Architecture invariants: any error on the decision path is a deny with a reason; the
//! tenant guard only ever turns an allow into a deny; a pack is immutable once compiled.

pub mod decision;
pub mod explain;
pub mod filter;
pub mod pack;
pub mod request;
pub mod suite;
pub mod tenant_guard;
pub mod tenant_policies;
pub mod uid;

pub use cedar_policy;
pub use decision::{Decision, EvaluationError, Outcome, PolicyRef, ReasonCode};
pub use explain::{Explanation, explain};
pub use pack::{CompiledPack, Pack, PackDiagnostic, PackError, PackSources, Revision, Severity};
pub use request::RequestError;
pub use uid::{UidError, parse_uid, parse_uid_json};
