//! One authorization decision: Cedar's answer, then the tenant guard, as a value.
//!
//! A deny is a value, not a failure: the caller always gets the outcome, a stable reason code,
//! the determining policies with their descriptions, every evaluation error, the pack revision
//! and the evaluation time. Warden is a superset of Cedar: the outcome is exactly Cedar's,
//! except that the tenant guard may turn an allow into a deny. Tests: `tests/decisions.rs`,
//! `tests/cedar_corpus.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cedar_policy::{Authorizer, Entities, PolicyId, PolicySet, Request};

use crate::pack::{Pack, Revision, Selection, index};
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

/// Cedar's answer over one or more policy sets, combined as one set would answer: any forbid
/// that holds denies (and only the forbids that hold determine it); otherwise any permit that
/// holds allows (and the permits that hold determine it); errors are every set's errors.
struct CedarAnswer {
    allowed: bool,
    determining: Vec<PolicyId>,
    errors: Vec<EvaluationError>,
}

fn cedar_answer(request: &Request, sets: &[&PolicySet], entities: &Entities) -> CedarAnswer {
    let authorizer = Authorizer::new();
    let mut forbids: Vec<PolicyId> = Vec::new();
    let mut permits: Vec<PolicyId> = Vec::new();
    let mut errors: Vec<EvaluationError> = Vec::new();
    for set in sets {
        if set.is_empty() {
            continue;
        }
        let response = authorizer.is_authorized(request, set, entities);
        let diagnostics = response.diagnostics();
        let reasons = diagnostics.reason().cloned();
        // Cedar names the forbids that held for a deny with reasons, the permits that held for
        // an allow, and nothing for a deny without reasons (nothing held).
        if response.decision() == cedar_policy::Decision::Allow {
            permits.extend(reasons);
        } else {
            forbids.extend(reasons);
        }
        errors.extend(diagnostics.errors().map(|error| match error {
            cedar_policy::AuthorizationError::PolicyEvaluationError(failure) => EvaluationError {
                policy: failure.policy_id().clone(),
                message: failure.inner().to_string().replace('\n', " "),
            },
        }));
    }
    let allowed = forbids.is_empty() && !permits.is_empty();
    let mut determining = if forbids.is_empty() { permits } else { forbids };
    // Cedar reports sets; sorted, the output is stable for logs, tests and people.
    determining.sort_unstable_by(|a, b| AsRef::<str>::as_ref(a).cmp(b.as_ref()));
    determining.dedup();
    errors.sort_unstable_by(|a, b| AsRef::<str>::as_ref(&a.policy).cmp(b.policy.as_ref()));
    errors.dedup_by(|a, b| a.policy == b.policy);
    CedarAnswer {
        allowed,
        determining,
        errors,
    }
}

impl Pack {
    /// Decides one request against the given entities, evaluating the policies the index
    /// selects for it (see [`crate::pack::index`]).
    pub fn decide(&self, request: &Request, entities: &Entities) -> Decision {
        let selection = self.select(request, entities);
        self.decide_selected(request, &selection, entities)
    }

    /// Decides one request against every policy of the pack, without the index: the reference
    /// the index is tested against, and a way to rule it out when investigating a decision.
    pub fn decide_with_every_policy(&self, request: &Request, entities: &Entities) -> Decision {
        let started = Instant::now();
        let answer = cedar_answer(request, &[self.policy_set()], entities);
        self.conclude(request, entities, answer, started)
    }

    /// Decides one request against the policies of a [`Selection`] (made against the same
    /// request and entities).
    pub fn decide_selected(
        &self,
        request: &Request,
        selection: &Selection<'_>,
        entities: &Entities,
    ) -> Decision {
        let started = Instant::now();
        let mut answer = if selection.chosen.is_empty() {
            cedar_answer(request, &[selection.open], entities)
        } else {
            match index::policy_set_of(selection.chosen.iter().copied()) {
                Ok(chosen) => cedar_answer(request, &[selection.open, &chosen], entities),
                // Ids are unique across a pack and tenant policies are namespaced, so this
                // cannot happen; if it did, the whole answer is an error, never a guess.
                Err(error) => CedarAnswer {
                    allowed: false,
                    determining: Vec::new(),
                    errors: vec![EvaluationError {
                        policy: PolicyId::new("(policy selection)"),
                        message: error.to_string(),
                    }],
                },
            }
        };
        // A tenant's forbid that cannot be evaluated denies: Cedar skips an erroring policy,
        // and a tenant policy the pack's schema has moved away from must not open what it
        // closed (see `tenant_policies`).
        if answer.allowed
            && selection.chosen.iter().any(|indexed| {
                let policy = indexed.policy();
                policy.effect() == cedar_policy::Effect::Forbid
                    && AsRef::<str>::as_ref(policy.id())
                        .starts_with(crate::tenant_policies::TENANT_POLICY_PREFIX)
                    && answer
                        .errors
                        .iter()
                        .any(|error| &error.policy == policy.id())
            })
        {
            answer.allowed = false;
            answer.determining.clear();
        }
        self.conclude(request, entities, answer, started)
    }

    fn conclude(
        &self,
        request: &Request,
        entities: &Entities,
        answer: CedarAnswer,
        started: Instant,
    ) -> Decision {
        let CedarAnswer {
            allowed: cedar_allowed,
            determining: determining_ids,
            errors,
        } = answer;

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
