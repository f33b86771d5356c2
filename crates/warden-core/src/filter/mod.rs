//! Data-filter plans: which resources of one type a principal may act on, as a condition over
//! the resources' fields that an application's query (or Warden's own entity data) applies.
//!
//! SECURITY-SENSITIVE: a plan that is broader than the policies lets an application list what
//! its user may not read. The plan is built from Cedar's typed partial evaluation (the resource
//! unknown, everything else known) and translated by rules that keep Cedar's meaning exactly
//! ([`residual`]); whatever the translation cannot write exactly is an error naming the policy,
//! never a broader condition. The tenant guard is part of every plan ([`plan`]).
//!
//! Layout:
//! - [`condition`]: the condition tree and its evaluation against an entity.
//! - [`residual`]: a residual Cedar expression into a condition.
//! - [`shape`]: the resource type's attribute types, from Cedar's validator schema.
//! - [`subjects`]: the same with the principal unknown: which principals may act on one
//!   resource (the subject search).
//! - [`plan`]: planning one question (principal, action, resource type) with the tenant guard.
//!
//! Tests: `tests/integration/filter_plan.rs` (the differential property test against per-row
//! decisions) and the unit tests here.

pub mod condition;
pub mod plan;
pub mod residual;
pub mod shape;
pub mod subjects;

pub use condition::{CompareOp, Condition, FilterValue};
pub use plan::{FilterError, FilterPlan, FilterQuery, PlanOutcome};
pub use subjects::SubjectQuery;
