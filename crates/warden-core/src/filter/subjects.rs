//! Subject plans: which principals of one type may act on one known resource (the AuthZEN
//! subject search), as a condition over the principals' fields, from the same partial
//! evaluation with the principal unknown instead of the resource.
//!
//! SECURITY-SENSITIVE, as [`super::plan`]: the tenant guard is explicit. With the resource's
//! tenant `R` known, a principal inside `R` is decided by the pack's and `R`'s own policies
//! (`principal.tenant` known there); a principal of another tenant only through
//! `@cross_tenant` permits, when no unmarked permit, no pack forbid and no forbid of `R` holds.
//! A forbid of `R` that errors denies. The store's statuses are not part of the plan: the
//! caller leaves out disabled and deleted principals, as a decision refuses them.

use cedar_policy::{Effect, Entities, EntityTypeName, EntityUid, PartialEntityUid};
use serde_json::Value;

use super::condition::Condition;
use super::plan::{
    Evaluated, FilterError, PlanOutcome, TenantKey, Verdict, allowed, any, evaluate, of_effect,
    one_line,
};
use super::residual::Known;
use super::shape::{AttrKind, shape_of};
use crate::pack::Pack;
use crate::tenant_guard::tenant_of;
use crate::tenant_policies::TenantPolicies;

/// The question: which principals of `principal_type` may do `action` on `resource`?
pub struct SubjectQuery<'a> {
    /// The resource (known, with its entity in `entities`).
    pub resource: &'a EntityUid,
    /// The action.
    pub action: &'a EntityUid,
    /// The principal type searched.
    pub principal_type: &'a EntityTypeName,
    /// The request context, checked against the schema.
    pub context: Option<Value>,
    /// The entities the resource's decision would read, with the policies' literals.
    pub entities: &'a Entities,
    /// The tenants' own policies.
    pub tenant_policies: &'a TenantPolicies,
}

impl Pack {
    /// The subject plan for one resource and action.
    pub fn subject_plan(&self, query: &SubjectQuery<'_>) -> Result<PlanOutcome, FilterError> {
        let schema = self.schema().ok_or(FilterError::NoSchema)?;
        let shape = shape_of(schema, query.principal_type)
            .ok_or_else(|| FilterError::UnknownResourceType(query.principal_type.to_string()))?;
        let (request, entities) = self.partial_inputs(
            PartialEntityUid::new(query.principal_type.clone(), None),
            query.action,
            PartialEntityUid::from_concrete(query.resource.clone()),
            query.context.as_ref(),
            query.entities,
        )?;
        let pack = evaluate(self.policy_set(), &request, &entities, schema, self)?;
        let Some(tenancy) = self.tenancy() else {
            let condition = allowed(
                &of_effect(&pack, Effect::Permit),
                &of_effect(&pack, Effect::Forbid),
                &known_for(query, &shape, None),
            )?;
            return Ok(outcome(condition));
        };
        // The guard denies every allow on a resource without a tenant.
        let Ok(tenant) = tenant_of(tenancy, query.resource, query.entities) else {
            return Ok(PlanOutcome::AlwaysDenied);
        };
        let key = if query.principal_type == &tenancy.tenant_type {
            TenantKey::Itself
        } else {
            match (
                shape.kinds.get(&tenancy.attribute),
                shape.attributes.get(&tenancy.attribute),
            ) {
                (Some(AttrKind::Entity(declared)), Some(required))
                    if *declared == tenancy.tenant_type.to_string() =>
                {
                    TenantKey::Attribute {
                        name: &tenancy.attribute,
                        optional: !required,
                    }
                }
                // Principals without a tenant attribute: the guard denies them all.
                _ => return Ok(PlanOutcome::AlwaysDenied),
            }
        };
        // The resource's tenant's own policies: all of them inside it, its forbids across.
        let own_policies = query.tenant_policies.of_tenant(tenant.id().unescaped());
        let own: Vec<Evaluated> = if own_policies.is_empty() {
            Vec::new()
        } else {
            let mut set = cedar_policy::PolicySet::new();
            for policy in own_policies {
                set.add(policy.policy().clone())
                    .map_err(|error| FilterError::Evaluation(one_line(&error)))?;
            }
            evaluate(&set, &request, &entities, schema, self)?
        };
        // A forbid of the resource's tenant that errors denies, inside and across.
        if own
            .iter()
            .any(|p| p.effect == Effect::Forbid && matches!(p.verdict, Verdict::Errors))
        {
            return Ok(PlanOutcome::AlwaysDenied);
        }
        let attribute = key.attribute();
        let inside_known = known_for(query, &shape, attribute.map(|name| (name, &tenant)));
        let permits: Vec<&Evaluated> = pack
            .iter()
            .chain(own.iter())
            .filter(|p| p.effect == Effect::Permit)
            .collect();
        let forbids: Vec<&Evaluated> = pack
            .iter()
            .chain(own.iter())
            .filter(|p| p.effect == Effect::Forbid)
            .collect();
        let inside = Condition::and([key.is(&tenant), allowed(&permits, &forbids, &inside_known)?]);
        let open = known_for(query, &shape, None);
        let marked: Vec<&Evaluated> = pack
            .iter()
            .filter(|p| p.effect == Effect::Permit && p.cross_tenant)
            .collect();
        let any_marked = any(&marked, &open)?;
        if any_marked == Condition::Const(false) {
            return Ok(outcome(inside));
        }
        let unmarked: Vec<&Evaluated> = pack
            .iter()
            .filter(|p| p.effect == Effect::Permit && !p.cross_tenant)
            .collect();
        let across = Condition::and([
            key.other_than(&tenant),
            any_marked,
            Condition::negate(any(&unmarked, &open)?),
            // The pack's forbids and the resource tenant's, as inside.
            Condition::negate(any(&forbids, &open)?),
        ]);
        Ok(outcome(Condition::or([inside, across])))
    }
}

fn known_for<'k>(
    query: &'k SubjectQuery<'_>,
    shape: &'k super::shape::FilterShape,
    tenant: Option<(&'k str, &'k EntityUid)>,
) -> Known<'k> {
    Known {
        resource_type: query.principal_type,
        unknown_principal: true,
        shape,
        entities: query.entities,
        tenant,
    }
}

fn outcome(condition: Condition) -> PlanOutcome {
    match condition {
        Condition::Const(true) => PlanOutcome::AlwaysAllowed,
        Condition::Const(false) => PlanOutcome::AlwaysDenied,
        condition => PlanOutcome::Conditional(condition),
    }
}
