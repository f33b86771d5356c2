//! Planning one question: which resources of a type may this principal act on with this action?
//!
//! SECURITY-SENSITIVE. Cedar's typed partial evaluation (`PolicySet::tpe`, the resource
//! unknown) tells, per policy, whether it holds, fails, errors, or depends on the resource (a
//! residual). The plan is the decision procedure of [`crate::decision`] written over those
//! per-policy conditions, with the tenant guard made explicit:
//!
//! - **inside the principal's tenant** `T` (`resource.<tenant> == T`): the pack's and `T`'s own
//!   policies decide; the tenant attribute is known there, so `resource.tenant.plan` reads
//!   `T`'s data;
//! - **across tenants** (only when a `@cross_tenant` permit can hold): a row is allowed when a
//!   marked permit holds, no unmarked permit holds (the guard denies an allow that an unmarked
//!   permit also determined), no pack forbid holds, and no forbid of the row's own tenant
//!   holds. When the marked permits name their tenants (`resource.tenant == Tenant::"public"`)
//!   each of those tenants is planned with its attribute known; otherwise every tenant that has
//!   forbids of its own is written out, up to [`MAX_CROSS_TENANT_FORBIDS`], beyond which the
//!   plan is refused rather than guessed.
//!
//! A tenant forbid that errors denies (as in a decision). A policy whose residual cannot be
//! written as a filter fails the plan with its id, in any branch that can allow.

use std::collections::BTreeSet;
use std::sync::Arc;

use cedar_policy::{
    Context, Effect, Entities, EntityTypeName, EntityUid, PartialEntities, PartialEntityUid,
    PartialRequest, Policy, PolicyId, PolicySet, Schema,
};
use serde_json::Value;

use super::condition::{CompareOp, Condition, FilterValue};
use super::residual::{self, Known};
use super::shape::{AttrKind, FilterShape, shape_of};
use crate::pack::Pack;
use crate::pack::index::policy_set_of;
use crate::tenant_guard::tenant_of;
use crate::tenant_policies::TenantPolicies;

/// The most tenants with forbids of their own a cross-tenant plan writes out.
pub const MAX_CROSS_TENANT_FORBIDS: usize = 64;

/// The question.
pub struct FilterQuery<'a> {
    /// The principal (known, with its entity in `entities`).
    pub principal: &'a EntityUid,
    /// The action.
    pub action: &'a EntityUid,
    /// The resource type the list is of.
    pub resource_type: &'a EntityTypeName,
    /// The request context, checked against the schema.
    pub context: Option<Value>,
    /// The entities the principal's decision would read (its slice, with the policies'
    /// literals).
    pub entities: &'a Entities,
    /// The tenants' own policies.
    pub tenant_policies: &'a TenantPolicies,
    /// The tenants a replica serves (`[storage] tenants`): rows of any other tenant are never
    /// admitted, as a decision about them is refused. `None` for all.
    pub served_tenants: Option<&'a BTreeSet<String>>,
}

/// What the plan says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanOutcome {
    /// Every resource of the type is allowed (only without `[tenancy]`).
    AlwaysAllowed,
    /// No resource of the type is allowed.
    AlwaysDenied,
    /// Exactly the resources the condition holds for are allowed.
    Conditional(Condition),
}

/// A plan and what it was made from.
#[derive(Clone, Debug)]
pub struct FilterPlan {
    /// The outcome.
    pub outcome: PlanOutcome,
    /// The permits that can allow some resource (held or residual), sorted.
    pub policies: Vec<PolicyId>,
    /// The principal's tenant, with `[tenancy]`.
    pub tenant: Option<EntityUid>,
}

/// Why no plan could be made. Never answered with a broader filter.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// Partial evaluation needs the schema.
    #[error("data filters need a pack with a schema")]
    NoSchema,
    /// The resource type is not declared.
    #[error("`{0}` is not an entity type of the schema")]
    UnknownResourceType(String),
    /// The request does not fit the schema.
    #[error("the request does not fit the schema: {0}")]
    Request(String),
    /// The known entities could not be read for partial evaluation.
    #[error("the principal's entities could not be read: {0}")]
    Entities(String),
    /// Cedar's partial evaluation failed.
    #[error("partial evaluation failed: {0}")]
    Evaluation(String),
    /// A policy's condition on the resource cannot be written as a filter.
    #[error("policy `{policy}` cannot be written as a filter: {detail}")]
    Unsupported {
        /// The policy.
        policy: String,
        /// Why, in words.
        detail: String,
    },
    /// A cross-tenant plan would have to write out too many tenants' own forbids.
    #[error(
        "a cross-tenant permit can hold for any tenant and {count} tenants have forbids of their own (the limit is {limit}); name the tenants in the permit's condition"
    )]
    TooManyTenants {
        /// Tenants with forbids.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// What partial evaluation said of one policy.
#[derive(Clone, Debug)]
pub(super) enum Verdict {
    Holds,
    Fails,
    Errors,
    Depends(Arc<cedar_policy::pst::Expr>),
}

#[derive(Clone, Debug)]
pub(super) struct Evaluated {
    pub(super) id: PolicyId,
    pub(super) effect: Effect,
    pub(super) cross_tenant: bool,
    pub(super) verdict: Verdict,
}

impl Evaluated {
    fn condition(&self, known: &Known<'_>) -> Result<Condition, FilterError> {
        match &self.verdict {
            Verdict::Holds => Ok(Condition::Const(true)),
            // A policy that errors is skipped by Cedar (a tenant forbid's error is handled by
            // the caller).
            Verdict::Fails | Verdict::Errors => Ok(Condition::Const(false)),
            Verdict::Depends(expr) => {
                residual::translate(expr, known).map_err(|detail| FilterError::Unsupported {
                    policy: self.id.to_string(),
                    detail,
                })
            }
        }
    }
}

/// Partial evaluation of one policy set for the question.
pub(super) fn evaluate(
    set: &PolicySet,
    request: &PartialRequest,
    entities: &PartialEntities,
    schema: &Schema,
    pack: &Pack,
) -> Result<Vec<Evaluated>, FilterError> {
    let response = set
        .tpe(request, entities, schema)
        .map_err(|error| FilterError::Evaluation(one_line(&error)))?;
    let mut out = Vec::new();
    let mut push = |id: &PolicyId, verdict: Verdict| {
        let Some(policy) = set.policy(id) else {
            return;
        };
        out.push(Evaluated {
            id: id.clone(),
            effect: policy.effect(),
            cross_tenant: pack
                .policy_info(id)
                .is_some_and(|info| info.cross_tenant.is_some()),
            verdict,
        });
    };
    for id in response.true_permits().chain(response.true_forbids()) {
        push(id, Verdict::Holds);
    }
    for id in response.false_permits().chain(response.false_forbids()) {
        push(id, Verdict::Fails);
    }
    for id in response.error_permits().chain(response.error_forbids()) {
        push(id, Verdict::Errors);
    }
    let residual: Vec<PolicyId> = response
        .residual_permits()
        .chain(response.residual_forbids())
        .cloned()
        .collect();
    for id in residual {
        let expr = response
            .get_policy(&id)
            .ok_or_else(|| FilterError::Evaluation(format!("no residual for policy `{id}`")))
            .and_then(|policy| residual_expr(&policy))?;
        push(&id, Verdict::Depends(Arc::new(expr)));
    }
    // Cedar reports sets: in id order, a plan's condition is the same for the same question.
    out.sort_by(|a, b| AsRef::<str>::as_ref(&a.id).cmp(b.id.as_ref()));
    Ok(out)
}

/// The residual policy's condition as one expression (its `when` clauses and-ed, its `unless`
/// clauses negated).
fn residual_expr(policy: &Policy) -> Result<cedar_policy::pst::Expr, FilterError> {
    use cedar_policy::pst::{BinaryOp, Clause, Expr, Literal, UnaryOp};
    let pst = policy.to_pst().map_err(|error| FilterError::Unsupported {
        policy: policy.id().to_string(),
        detail: one_line(&error),
    })?;
    let mut condition = Expr::Literal(Literal::Bool(true));
    for clause in pst.body().clauses() {
        let part = match clause {
            Clause::When(expr) => expr.as_ref().clone(),
            Clause::Unless(expr) => Expr::UnaryOp {
                op: UnaryOp::Not,
                expr: Arc::clone(expr),
            },
        };
        condition = Expr::BinaryOp {
            op: BinaryOp::And,
            left: Arc::new(condition),
            right: Arc::new(part),
        };
    }
    Ok(condition)
}

pub(super) fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().replace('\n', " ")
}

/// Where a resource's tenant is: its tenant attribute, or the resource itself for the tenant
/// type.
pub(super) enum TenantKey<'a> {
    Attribute { name: &'a str, optional: bool },
    Itself,
}

impl TenantKey<'_> {
    pub(super) fn is(&self, tenant: &EntityUid) -> Condition {
        match self {
            TenantKey::Attribute { name, .. } => Condition::Compare {
                field: (*name).to_owned(),
                op: CompareOp::Eq,
                value: FilterValue::Entity(tenant.clone()),
            },
            TenantKey::Itself => Condition::IdIn {
                ids: vec![tenant.id().unescaped().to_owned()],
            },
        }
    }

    /// The resource has a tenant and it is not `tenant`.
    pub(super) fn other_than(&self, tenant: &EntityUid) -> Condition {
        match self {
            TenantKey::Attribute { name, optional } => Condition::and([
                if *optional {
                    Condition::Has {
                        field: (*name).to_owned(),
                    }
                } else {
                    Condition::Const(true)
                },
                Condition::Compare {
                    field: (*name).to_owned(),
                    op: CompareOp::Ne,
                    value: FilterValue::Entity(tenant.clone()),
                },
            ]),
            TenantKey::Itself => Condition::negate(Condition::IdIn {
                ids: vec![tenant.id().unescaped().to_owned()],
            }),
        }
    }

    pub(super) fn attribute(&self) -> Option<&str> {
        match self {
            TenantKey::Attribute { name, .. } => Some(name),
            TenantKey::Itself => None,
        }
    }

    /// The tenants `condition` limits the tenant key to, when it does.
    fn pinned(
        &self,
        condition: &Condition,
        tenant_type: &EntityTypeName,
    ) -> Option<Vec<EntityUid>> {
        match condition {
            Condition::Compare {
                field,
                op: CompareOp::Eq,
                value: FilterValue::Entity(uid),
            } if self.attribute() == Some(field.as_str()) => Some(vec![uid.clone()]),
            Condition::InSet { field, values } if self.attribute() == Some(field.as_str()) => Some(
                values
                    .iter()
                    .filter_map(|value| match value {
                        FilterValue::Entity(uid) => Some(uid.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
            Condition::IdIn { ids } if matches!(self, TenantKey::Itself) => Some(
                ids.iter()
                    .map(|id| {
                        EntityUid::from_type_name_and_id(
                            tenant_type.clone(),
                            cedar_policy::EntityId::new(id),
                        )
                    })
                    .collect(),
            ),
            Condition::And(parts) => parts.iter().find_map(|part| self.pinned(part, tenant_type)),
            Condition::Or(parts) => {
                let mut all = Vec::new();
                for part in parts {
                    all.extend(self.pinned(part, tenant_type)?);
                }
                Some(all)
            }
            Condition::Const(false) => Some(Vec::new()),
            _ => None,
        }
    }
}

/// The pack's and the tenants' policies, evaluated once each.
struct Evaluations<'a> {
    pack_policies: Vec<Evaluated>,
    request: &'a PartialRequest,
    entities: &'a PartialEntities,
    schema: &'a Schema,
    pack: &'a Pack,
    query: &'a FilterQuery<'a>,
}

impl Evaluations<'_> {
    /// A tenant's own policies (of one effect, or both) that can apply to the question.
    fn tenant(&self, tenant: &str, effect: Option<Effect>) -> Result<Vec<Evaluated>, FilterError> {
        let chosen = self.query.tenant_policies.select_for_resource_type(
            self.pack,
            tenant,
            effect,
            self.query.principal,
            self.query.action,
            self.query.resource_type,
            self.query.entities,
        );
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let set =
            policy_set_of(chosen).map_err(|error| FilterError::Evaluation(one_line(&error)))?;
        evaluate(&set, self.request, self.entities, self.schema, self.pack)
    }
}

/// At least one of the policies holds. A policy that holds for every resource makes the others
/// irrelevant, so their translation errors are too; otherwise the first error (in policy id
/// order, so the same question always gets the same answer) refuses the plan.
pub(super) fn any(policies: &[&Evaluated], known: &Known<'_>) -> Result<Condition, FilterError> {
    let mut parts = Vec::with_capacity(policies.len());
    let mut first_error = None;
    for policy in policies {
        match policy.condition(known) {
            Ok(Condition::Const(true)) => return Ok(Condition::Const(true)),
            Ok(condition) => parts.push(condition),
            Err(error) => {
                if first_error.is_none() {
                    first_error = Some(error);
                }
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(Condition::or(parts)),
    }
}

/// `permits && !forbids`, the forbids translated only when the permits can hold.
pub(super) fn allowed(
    permits: &[&Evaluated],
    forbids: &[&Evaluated],
    known: &Known<'_>,
) -> Result<Condition, FilterError> {
    let permitted = any(permits, known)?;
    if permitted == Condition::Const(false) {
        return Ok(permitted);
    }
    Ok(Condition::and([
        permitted,
        Condition::negate(any(forbids, known)?),
    ]))
}

pub(super) fn of_effect(policies: &[Evaluated], effect: Effect) -> Vec<&Evaluated> {
    policies.iter().filter(|p| p.effect == effect).collect()
}

impl Pack {
    /// The entities a plan for `principal` may read besides the principal's own: every
    /// entity a pack policy's condition names, those the principal's tenant's own policies
    /// name, and (when at most [`MAX_CROSS_TENANT_FORBIDS`] tenants have forbids of their own)
    /// those tenants and what their policies name, for the cross-tenant plan. The caller
    /// slices them with everything they reach.
    pub fn filter_roots(
        &self,
        tenant_policies: &TenantPolicies,
        principal_tenant: Option<&str>,
    ) -> Vec<EntityUid> {
        let mut roots: Vec<EntityUid> = self.condition_literals().to_vec();
        if let Some(tenant) = principal_tenant {
            for policy in tenant_policies.of_tenant(tenant) {
                roots.extend(policy.literals().iter().cloned());
            }
        }
        if let Some(tenancy) = self.tenancy() {
            let forbidding: Vec<&str> = tenant_policies
                .tenants_with_forbids()
                .take(MAX_CROSS_TENANT_FORBIDS + 2)
                .collect();
            if forbidding.len() <= MAX_CROSS_TENANT_FORBIDS + 1 {
                for tenant in forbidding {
                    roots.push(EntityUid::from_type_name_and_id(
                        tenancy.tenant_type.clone(),
                        cedar_policy::EntityId::new(tenant),
                    ));
                    for policy in tenant_policies.of_tenant(tenant) {
                        roots.extend(policy.literals().iter().cloned());
                    }
                }
            }
        }
        roots.sort();
        roots.dedup();
        roots
    }

    /// The partial request (one side unknown) and the known entities, both checked against
    /// the schema, for partial evaluation.
    pub(super) fn partial_inputs(
        &self,
        principal: PartialEntityUid,
        action: &EntityUid,
        resource: PartialEntityUid,
        context: Option<&Value>,
        entities: &Entities,
    ) -> Result<(PartialRequest, PartialEntities), FilterError> {
        let schema = self.schema().ok_or(FilterError::NoSchema)?;
        let context = match context {
            None => Context::empty(),
            // A context of primitives is built directly (Cedar's JSON reading costs more).
            Some(value) => match self.primitive_context(action, value) {
                Some(context) => context,
                None => Context::from_json_value(value.clone(), Some((schema, action)))
                    .map_err(|error| FilterError::Request(one_line(&error)))?,
            },
        };
        let request =
            PartialRequest::new(principal, action.clone(), resource, Some(context), schema)
                .map_err(|error| FilterError::Request(one_line(&error)))?;
        let entities = PartialEntities::from_concrete(entities.clone(), schema)
            .map_err(|error| FilterError::Entities(one_line(&error)))?;
        Ok((request, entities))
    }

    /// The data-filter plan for one principal, action and resource type.
    pub fn filter_plan(&self, query: &FilterQuery<'_>) -> Result<FilterPlan, FilterError> {
        let schema = self.schema().ok_or(FilterError::NoSchema)?;
        let shape = shape_of(schema, query.resource_type)
            .ok_or_else(|| FilterError::UnknownResourceType(query.resource_type.to_string()))?;
        let shape = &shape;
        let (request, entities) = self.partial_inputs(
            PartialEntityUid::from_concrete(query.principal.clone()),
            query.action,
            PartialEntityUid::new(query.resource_type.clone(), None),
            query.context.as_ref(),
            query.entities,
        )?;
        // Only the policies whose scope can hold for this principal, action and resource type
        // (partial evaluation typechecks each policy it is given).
        let mut chosen = Vec::new();
        self.policy_index().select_for_resource_type(
            self.action_map(),
            query.principal,
            query.action,
            query.resource_type,
            query.entities,
            &mut chosen,
        );
        let pack_set =
            policy_set_of(chosen).map_err(|error| FilterError::Evaluation(one_line(&error)))?;
        let evaluations = Evaluations {
            pack_policies: evaluate(&pack_set, &request, &entities, schema, self)?,
            request: &request,
            entities: &entities,
            schema,
            pack: self,
            query,
        };
        let mut policies: Vec<PolicyId> = evaluations
            .pack_policies
            .iter()
            .filter(|p| {
                p.effect == Effect::Permit && !matches!(p.verdict, Verdict::Fails | Verdict::Errors)
            })
            .map(|p| p.id.clone())
            .collect();
        let outcome = match self.tenancy() {
            None => {
                let known = Known {
                    resource_type: query.resource_type,
                    unknown_principal: false,
                    shape,
                    entities: query.entities,
                    tenant: None,
                };
                let pack = &evaluations.pack_policies;
                let condition = allowed(
                    &of_effect(pack, Effect::Permit),
                    &of_effect(pack, Effect::Forbid),
                    &known,
                )?;
                (condition, None)
            }
            Some(tenancy) => {
                match tenant_of(tenancy, query.principal, query.entities) {
                    // The guard denies every allow of a principal without a tenant.
                    Err(_) => (Condition::Const(false), None),
                    Ok(tenant) => {
                        let key = if query.resource_type == &tenancy.tenant_type {
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
                                // A resource type without a tenant attribute: the guard denies.
                                _ => {
                                    return Ok(FilterPlan {
                                        outcome: PlanOutcome::AlwaysDenied,
                                        policies: Vec::new(),
                                        tenant: Some(tenant),
                                    });
                                }
                            }
                        };
                        let condition = tenant_plan(
                            &evaluations,
                            query,
                            shape,
                            &key,
                            &tenant,
                            &tenancy.tenant_type,
                            &mut policies,
                        )?;
                        (condition, Some(tenant))
                    }
                }
            }
        };
        let (condition, tenant) = outcome;
        policies.sort_unstable_by(|a, b| AsRef::<str>::as_ref(a).cmp(b.as_ref()));
        policies.dedup();
        Ok(FilterPlan {
            outcome: match condition {
                Condition::Const(true) => PlanOutcome::AlwaysAllowed,
                Condition::Const(false) => PlanOutcome::AlwaysDenied,
                condition => PlanOutcome::Conditional(condition),
            },
            policies,
            tenant,
        })
    }
}

/// The plan with the tenant guard: inside the principal's tenant, or across tenants.
fn tenant_plan(
    evaluations: &Evaluations<'_>,
    query: &FilterQuery<'_>,
    shape: &FilterShape,
    key: &TenantKey<'_>,
    tenant: &EntityUid,
    tenant_type: &EntityTypeName,
    policies: &mut Vec<PolicyId>,
) -> Result<Condition, FilterError> {
    fn known<'k>(
        query: &'k FilterQuery<'_>,
        shape: &'k FilterShape,
        key: &'k TenantKey<'_>,
        inside: Option<&'k EntityUid>,
    ) -> Known<'k> {
        Known {
            resource_type: query.resource_type,
            unknown_principal: false,
            shape,
            entities: query.entities,
            tenant: key.attribute().zip(inside),
        }
    }
    let pack = &evaluations.pack_policies;

    // Inside the principal's tenant: the pack's and the tenant's own policies.
    let own = evaluations.tenant(tenant.id().unescaped(), None)?;
    policies.extend(
        own.iter()
            .filter(|p| {
                p.effect == Effect::Permit && !matches!(p.verdict, Verdict::Fails | Verdict::Errors)
            })
            .map(|p| p.id.clone()),
    );
    let inside = if own
        .iter()
        .any(|p| p.effect == Effect::Forbid && matches!(p.verdict, Verdict::Errors))
    {
        Condition::Const(false)
    } else {
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
        let known = known(query, shape, key, Some(tenant));
        Condition::and([key.is(tenant), allowed(&permits, &forbids, &known)?])
    };

    // Across tenants: only through marked permits of the pack (tenant permits never cross).
    let marked: Vec<&Evaluated> = pack
        .iter()
        .filter(|p| p.effect == Effect::Permit && p.cross_tenant)
        .collect();
    let unmarked: Vec<&Evaluated> = pack
        .iter()
        .filter(|p| p.effect == Effect::Permit && !p.cross_tenant)
        .collect();
    let pack_forbids = of_effect(pack, Effect::Forbid);
    let open = known(query, shape, key, None);
    // The tenants the marked permits name, read from their residuals before translation (a
    // named tenant is planned with its tenant known, so its permit may read its data).
    let named = match key.attribute() {
        Some(attribute) => named_tenants(&marked, attribute, tenant_type),
        None => None,
    };
    let any_marked = match &named {
        Some(tenants) if tenants.is_empty() => Condition::Const(false),
        Some(_) => Condition::Const(true),
        None => any(&marked, &open)?,
    };
    if any_marked == Condition::Const(false) {
        return Ok(inside);
    }
    // The row is allowed across tenants when a marked permit holds, no unmarked one does (the
    // guard denies an allow that an unmarked permit also determined), and no forbid holds.
    let across_with =
        |known: &Known<'_>, row_tenant_forbids: &[Evaluated]| -> Result<Condition, FilterError> {
            let marked_holds = any(&marked, known)?;
            if marked_holds == Condition::Const(false) {
                return Ok(marked_holds);
            }
            let mut forbids = pack_forbids.clone();
            forbids.extend(row_tenant_forbids.iter());
            Ok(Condition::and([
                marked_holds,
                Condition::negate(any(&unmarked, known)?),
                Condition::negate(any(&forbids, known)?),
            ]))
        };
    let forbids_of = |other: &EntityUid| -> Result<Option<Vec<Evaluated>>, FilterError> {
        let forbids = evaluations.tenant(other.id().unescaped(), Some(Effect::Forbid))?;
        // A tenant forbid that errors denies.
        if forbids.iter().any(|p| matches!(p.verdict, Verdict::Errors)) {
            return Ok(None);
        }
        Ok(Some(forbids))
    };
    policies.extend(
        marked
            .iter()
            .filter(|p| !matches!(p.verdict, Verdict::Fails | Verdict::Errors))
            .map(|p| p.id.clone()),
    );
    let pinned = named.or_else(|| key.pinned(&any_marked, tenant_type));
    let across = match pinned {
        Some(tenants) => {
            let tenants: BTreeSet<EntityUid> = tenants
                .into_iter()
                .filter(|other| other != tenant && other.type_name() == tenant_type)
                .collect();
            let mut parts = Vec::with_capacity(tenants.len());
            for other in &tenants {
                let Some(forbids) = forbids_of(other)? else {
                    continue;
                };
                parts.push(Condition::and([
                    key.is(other),
                    across_with(&known(query, shape, key, Some(other)), &forbids)?,
                ]));
            }
            Condition::or(parts)
        }
        None => {
            let forbidding: Vec<&str> = query
                .tenant_policies
                .tenants_with_forbids()
                .filter(|other| *other != tenant.id().unescaped())
                .collect();
            if forbidding.len() > MAX_CROSS_TENANT_FORBIDS {
                return Err(FilterError::TooManyTenants {
                    count: forbidding.len(),
                    limit: MAX_CROSS_TENANT_FORBIDS,
                });
            }
            let mut parts = vec![key.other_than(tenant), across_with(&open, &[])?];
            for other in forbidding {
                let other = EntityUid::from_type_name_and_id(
                    tenant_type.clone(),
                    cedar_policy::EntityId::new(other),
                );
                let theirs = match forbids_of(&other)? {
                    None => Condition::Const(false),
                    Some(forbids) => Condition::negate(any(
                        &forbids.iter().collect::<Vec<_>>(),
                        &known(query, shape, key, Some(&other)),
                    )?),
                };
                parts.push(Condition::or([Condition::negate(key.is(&other)), theirs]));
            }
            Condition::and(parts)
        }
    };
    // A replica that serves some tenants admits no row of the others (as it decides none).
    let across = match query.served_tenants {
        None => across,
        Some(served) => Condition::and([
            across,
            Condition::or(
                served
                    .iter()
                    .map(|id| {
                        key.is(&EntityUid::from_type_name_and_id(
                            tenant_type.clone(),
                            cedar_policy::EntityId::new(id),
                        ))
                    })
                    .collect::<Vec<_>>(),
            ),
        ]),
    };
    Ok(Condition::or([inside, across]))
}

/// The tenants a set of marked permits can hold for, when every one of them names its
/// tenants in a conjunct of its residual (`resource.<tenant> == Tenant::"x"`, or a
/// disjunction of such): `None` when one does not (it may hold for any tenant). A permit that
/// fails or errors names none.
pub(super) fn named_tenants(
    marked: &[&Evaluated],
    attribute: &str,
    tenant_type: &EntityTypeName,
) -> Option<Vec<EntityUid>> {
    let mut all = Vec::new();
    for policy in marked {
        match &policy.verdict {
            Verdict::Fails | Verdict::Errors => {}
            Verdict::Holds => return None,
            Verdict::Depends(expr) => all.extend(named_in(expr, attribute, tenant_type, 0)?),
        }
    }
    Some(all)
}

fn named_in(
    expr: &cedar_policy::pst::Expr,
    attribute: &str,
    tenant_type: &EntityTypeName,
    depth: usize,
) -> Option<Vec<EntityUid>> {
    use cedar_policy::pst::{BinaryOp, Expr, Literal, Var};
    if depth > 64 {
        return None;
    }
    let is_tenant_attribute = |expr: &Expr| {
        matches!(expr, Expr::GetAttr { expr, attr }
            if attr.as_str() == attribute && matches!(expr.as_ref(), Expr::Var(Var::Resource)))
    };
    let literal = |expr: &Expr| match expr {
        Expr::Literal(Literal::EntityUID(uid)) => {
            let name: EntityTypeName = uid.ty.to_string().parse().ok()?;
            (&name == tenant_type).then(|| {
                EntityUid::from_type_name_and_id(
                    name,
                    cedar_policy::EntityId::new(uid.eid.as_str()),
                )
            })
        }
        _ => None,
    };
    match expr {
        Expr::BinaryOp {
            op: BinaryOp::Eq,
            left,
            right,
        } => {
            if is_tenant_attribute(left) {
                literal(right).map(|uid| vec![uid])
            } else if is_tenant_attribute(right) {
                literal(left).map(|uid| vec![uid])
            } else {
                None
            }
        }
        Expr::BinaryOp {
            op: BinaryOp::And,
            left,
            right,
        } => named_in(left, attribute, tenant_type, depth + 1)
            .or_else(|| named_in(right, attribute, tenant_type, depth + 1)),
        Expr::BinaryOp {
            op: BinaryOp::Or,
            left,
            right,
        } => {
            let mut both = named_in(left, attribute, tenant_type, depth + 1)?;
            both.extend(named_in(right, attribute, tenant_type, depth + 1)?);
            Some(both)
        }
        _ => None,
    }
}
