//! Decisions explained in plain words, for people: the CLI's `check`, the decision log's
//! `explain`, and error pages.
//!
//! An allow names the permits; a deny names the forbid that fired, or the tenant guard, or
//! says that no policy permits the request and lists the near misses: permits whose scope
//! (principal, action, resource) matched but whose conditions were false. Explaining runs
//! after the decision and off the hot path. Tests: `tests/explanations.rs`.

use std::fmt;

use cedar_policy::{
    ActionConstraint, Effect, Entities, EntityUid, Policy, PrincipalConstraint, Request,
    ResourceConstraint,
};

use crate::decision::{Decision, Outcome, PolicyRef, ReasonCode};
use crate::pack::Pack;
use crate::tenant_guard::{MissingTenant, TenantViolation};

/// A decision in plain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// One sentence: the outcome and its main reason.
    pub summary: String,
    /// Further sentences: each determining policy, grant, error and near miss.
    pub details: Vec<String>,
    /// Permits whose scope matched but whose conditions were false (denials only).
    pub near_misses: Vec<PolicyRef>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary)?;
        for detail in &self.details {
            writeln!(f, "  - {detail}")?;
        }
        Ok(())
    }
}

/// Explains a decision made by `pack` for `request` against `entities`.
pub fn explain(
    pack: &Pack,
    request: &Request,
    entities: &Entities,
    decision: &Decision,
) -> Explanation {
    let principal = request
        .principal()
        .map_or_else(|| "an unknown principal".to_owned(), ToString::to_string);
    let action = request
        .action()
        .map_or_else(|| "an unknown action".to_owned(), ToString::to_string);
    let resource = request
        .resource()
        .map_or_else(|| "an unknown resource".to_owned(), ToString::to_string);
    let mut details = Vec::new();
    let mut near_misses = Vec::new();

    let summary = match decision.reason {
        ReasonCode::Permitted | ReasonCode::PermittedCrossTenant => {
            for policy in &decision.determining {
                details.push(format!("permitted by {}", describe(policy)));
            }
            if let Some(grant) = &decision.cross_tenant {
                for (policy, why) in &grant.grants {
                    details.push(format!(
                        "crosses from {} to {} through @cross_tenant policy `{policy}`: {why}",
                        grant.principal_tenant, grant.resource_tenant
                    ));
                }
            }
            format!("ALLOW: {principal} may perform {action} on {resource}.")
        }
        ReasonCode::Forbidden => {
            for policy in &decision.determining {
                details.push(format!("forbidden by {}", describe(policy)));
            }
            format!(
                "DENY: {principal} may not perform {action} on {resource}: a forbid policy applies."
            )
        }
        ReasonCode::TenantBoundary | ReasonCode::TenantMissing => {
            for policy in &decision.determining {
                details.push(format!(
                    "Cedar alone would permit it through {}",
                    describe(policy)
                ));
            }
            match &decision.tenant_violation {
                Some(TenantViolation::Boundary {
                    principal_tenant,
                    resource_tenant,
                    unmarked_permits,
                }) => {
                    for policy in unmarked_permits {
                        details.push(format!(
                            "policy `{policy}` is not marked @cross_tenant(\"reason\"), so it cannot cross tenants"
                        ));
                    }
                    format!(
                        "DENY: tenant boundary: {principal} of {principal_tenant} may not reach {resource} of {resource_tenant}."
                    )
                }
                Some(TenantViolation::Missing {
                    side,
                    entity,
                    problem,
                }) => {
                    let what = match problem {
                        MissingTenant::UnknownEntity => "is not in the entity data".to_owned(),
                        MissingTenant::NoAttribute => {
                            let attribute =
                                pack.tenancy().map_or("tenant", |t| t.attribute.as_str());
                            format!("has no `{attribute}` attribute")
                        }
                        MissingTenant::NotATenant(value) => {
                            format!(
                                "has a tenant attribute that is not a tenant reference ({value})"
                            )
                        }
                    };
                    format!(
                        "DENY: the {} {entity} {what}; every principal and resource must name its tenant.",
                        side.as_str()
                    )
                }
                Some(TenantViolation::PartialRequest) | None => {
                    "DENY: the request has no concrete principal or resource.".to_owned()
                }
            }
        }
        ReasonCode::NoPermit | ReasonCode::EvaluationError => {
            near_misses = find_near_misses(pack, request, entities, decision);
            for policy in &near_misses {
                details.push(format!(
                    "near miss: {} matched the principal, action and resource, but its conditions were false",
                    describe(policy)
                ));
            }
            format!("DENY: no policy permits {action} on {resource} for {principal}.")
        }
    };
    for error in &decision.errors {
        details.push(format!(
            "policy `{}` could not be evaluated and was skipped: {}",
            error.policy, error.message
        ));
    }
    debug_assert!(decision.outcome == Outcome::Allow || !summary.starts_with("ALLOW"));
    Explanation {
        summary,
        details,
        near_misses,
    }
}

fn describe(policy: &PolicyRef) -> String {
    match &policy.description {
        Some(description) => format!("`{}` ({description})", policy.id),
        None => format!("`{}`", policy.id),
    }
}

/// Permits whose scope matches the request but that neither held nor failed.
fn find_near_misses(
    pack: &Pack,
    request: &Request,
    entities: &Entities,
    decision: &Decision,
) -> Vec<PolicyRef> {
    let (Some(principal), Some(action), Some(resource)) =
        (request.principal(), request.action(), request.resource())
    else {
        return Vec::new();
    };
    pack.policies()
        .into_iter()
        .filter(|info| info.effect == Effect::Permit)
        .filter(|info| !decision.errors.iter().any(|error| error.policy == info.id))
        .filter(|info| {
            !decision
                .determining
                .iter()
                .any(|policy| policy.id == info.id)
        })
        .filter(|info| {
            pack.policy(&info.id)
                .is_some_and(|policy| scope_matches(policy, principal, action, resource, entities))
        })
        .map(|info| pack.policy_ref(info.id.clone()))
        .collect()
}

/// Does the policy's scope (principal, action and resource constraints) match the request?
pub fn scope_matches(
    policy: &Policy,
    principal: &EntityUid,
    action: &EntityUid,
    resource: &EntityUid,
    entities: &Entities,
) -> bool {
    let within = |entity: &EntityUid, ancestor: &EntityUid| {
        entity == ancestor || entities.is_ancestor_of(ancestor, entity)
    };
    let principal_ok = match policy.principal_constraint() {
        PrincipalConstraint::Any => true,
        PrincipalConstraint::Eq(uid) => principal == &uid,
        PrincipalConstraint::In(uid) => within(principal, &uid),
        PrincipalConstraint::Is(type_name) => principal.type_name() == &type_name,
        PrincipalConstraint::IsIn(type_name, uid) => {
            principal.type_name() == &type_name && within(principal, &uid)
        }
    };
    let action_ok = match policy.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => action == &uid,
        ActionConstraint::In(uids) => uids.iter().any(|uid| within(action, uid)),
    };
    let resource_ok = match policy.resource_constraint() {
        ResourceConstraint::Any => true,
        ResourceConstraint::Eq(uid) => resource == &uid,
        ResourceConstraint::In(uid) => within(resource, &uid),
        ResourceConstraint::Is(type_name) => resource.type_name() == &type_name,
        ResourceConstraint::IsIn(type_name, uid) => {
            resource.type_name() == &type_name && within(resource, &uid)
        }
    };
    principal_ok && action_ok && resource_ok
}
