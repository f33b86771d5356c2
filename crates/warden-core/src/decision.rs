//! One authorization decision: Cedar's answer, then the tenant guard, as a value.
//!
//! A deny is a value, not a failure: the caller always gets the outcome, a stable reason code,
//! the determining policies with their descriptions, every evaluation error, the pack revision
//! and the evaluation time. Warden is a superset of Cedar: the outcome is exactly Cedar's,
//! except that the tenant guard may turn an allow into a deny. Tests: `tests/decisions.rs`,
//! `tests/cedar_corpus.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cedar_policy::{Authorizer, Entities, PolicyId, Request};

use crate::pack::{Pack, Revision};
use crate::tenant_guard::{self, CrossTenantGrant, GuardVerdict, TenantViolation};

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The request is allowed.
    Allow,
    /// The request is denied.
    Deny,
}

impl Outcome {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
        }
    }
}

/// Why the decision came out as it did; stable codes that scripts and dashboards rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    /// Allowed: at least one permit held and no forbid did.
    Permitted,
    /// Allowed across tenants: every determining permit is marked `@cross_tenant`.
    PermittedCrossTenant,
    /// Denied: no permit held (Cedar's default deny).
    NoPermit,
    /// Denied: a forbid held.
    Forbidden,
    /// Denied: no permit held, and at least one policy could not be evaluated.
    EvaluationError,
    /// Denied by the tenant guard: principal and resource are in different tenants.
    TenantBoundary,
    /// Denied by the tenant guard: the principal or the resource has no tenant.
    TenantMissing,
}

impl ReasonCode {
    /// Every reason code, in declaration order.
    pub const ALL: [ReasonCode; 7] = [
        ReasonCode::Permitted,
        ReasonCode::PermittedCrossTenant,
        ReasonCode::NoPermit,
        ReasonCode::Forbidden,
        ReasonCode::EvaluationError,
        ReasonCode::TenantBoundary,
        ReasonCode::TenantMissing,
    ];

    /// The code written as [`ReasonCode::as_str`] gives it, e.g. `no_permit`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// The code as written in JSON, logs and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Permitted => "permitted",
            ReasonCode::PermittedCrossTenant => "permitted_cross_tenant",
            ReasonCode::NoPermit => "no_permit",
            ReasonCode::Forbidden => "forbidden",
            ReasonCode::EvaluationError => "evaluation_error",
            ReasonCode::TenantBoundary => "tenant_boundary",
            ReasonCode::TenantMissing => "tenant_missing",
        }
    }
}

/// A policy named in a decision, with its description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRef {
    /// The policy id.
    pub id: PolicyId,
    /// Its `@description`, if any.
    pub description: Option<Arc<str>>,
}

/// A policy that could not be evaluated for this request; Cedar skips it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvaluationError {
    /// The policy that failed.
    pub policy: PolicyId,
    /// What went wrong, in one line.
    pub message: String,
}

/// The full answer to one request.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Allow or deny.
    pub outcome: Outcome,
    /// The reason code.
    pub reason: ReasonCode,
    /// The policies that determined Cedar's answer: the permits for an allow (also when the
    /// tenant guard then denied it), the forbids for a forbid.
    pub determining: Vec<PolicyRef>,
    /// Policies that could not be evaluated.
    pub errors: Vec<EvaluationError>,
    /// Set when an allow crossed tenants through `@cross_tenant` permits.
    pub cross_tenant: Option<CrossTenantGrant>,
    /// Set when the tenant guard denied.
    pub tenant_violation: Option<TenantViolation>,
    /// The revision of the pack that decided.
    pub revision: Revision,
    /// Time spent evaluating (Cedar and the guard).
    pub elapsed: Duration,
}

impl Decision {
    /// True for an allow.
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }
}

impl Pack {
    /// Decides one request against the given entities.
    pub fn decide(&self, request: &Request, entities: &Entities) -> Decision {
        let started = Instant::now();
        let policies = self.policies_for_action(request.action());
        let response = Authorizer::new().is_authorized(request, policies, entities);
        let diagnostics = response.diagnostics();
        // Cedar reports sets; sorted, the output is stable for logs, tests and people.
        let mut determining_ids: Vec<PolicyId> = diagnostics.reason().cloned().collect();
        determining_ids.sort_unstable_by(|a, b| AsRef::<str>::as_ref(a).cmp(b.as_ref()));
        let mut errors: Vec<EvaluationError> = diagnostics
            .errors()
            .map(|error| match error {
                cedar_policy::AuthorizationError::PolicyEvaluationError(failure) => {
                    EvaluationError {
                        policy: failure.policy_id().clone(),
                        message: failure.inner().to_string().replace('\n', " "),
                    }
                }
            })
            .collect();
        errors.sort_unstable_by(|a, b| AsRef::<str>::as_ref(&a.policy).cmp(b.policy.as_ref()));
        let cedar_allowed = response.decision() == cedar_policy::Decision::Allow;

        let mut outcome = if cedar_allowed {
            Outcome::Allow
        } else {
            Outcome::Deny
        };
        let mut reason = if cedar_allowed {
            ReasonCode::Permitted
        } else if !determining_ids.is_empty() {
            ReasonCode::Forbidden
        } else if !errors.is_empty() {
            ReasonCode::EvaluationError
        } else {
            ReasonCode::NoPermit
        };
        let mut cross_tenant = None;
        let mut tenant_violation = None;

        if cedar_allowed && let Some(tenancy) = self.tenancy() {
            let verdict = match (request.principal(), request.resource()) {
                (Some(principal), Some(resource)) => tenant_guard::check(
                    tenancy,
                    self,
                    principal,
                    resource,
                    entities,
                    &determining_ids,
                ),
                // Every request Warden builds is concrete; anything else fails closed.
                _ => GuardVerdict::Violation(TenantViolation::PartialRequest),
            };
            match verdict {
                GuardVerdict::SameTenant => {}
                GuardVerdict::CrossTenant(grant) => {
                    reason = ReasonCode::PermittedCrossTenant;
                    cross_tenant = Some(grant);
                }
                GuardVerdict::Violation(violation) => {
                    outcome = Outcome::Deny;
                    reason = match violation {
                        TenantViolation::Missing { .. } | TenantViolation::PartialRequest => {
                            ReasonCode::TenantMissing
                        }
                        TenantViolation::Boundary { .. } => ReasonCode::TenantBoundary,
                    };
                    tenant_violation = Some(violation);
                }
            }
        }

        let determining = determining_ids
            .into_iter()
            .map(|id| self.policy_ref(id))
            .collect();
        Decision {
            outcome,
            reason,
            determining,
            errors,
            cross_tenant,
            tenant_violation,
            revision: self.revision().clone(),
            elapsed: started.elapsed(),
        }
    }

    /// A policy id with its description.
    pub fn policy_ref(&self, id: PolicyId) -> PolicyRef {
        let description = self
            .policy_info(&id)
            .and_then(|info| info.description.clone());
        PolicyRef { id, description }
    }
}
