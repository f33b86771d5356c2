//! Data-filter plans for the service: the principal resolved exactly as for a decision (known
//! facts over claims, the store's statuses, served tenants), its entities sliced from the
//! graph, and the plan made by [`warden_core::filter`].
//!
//! SECURITY-SENSITIVE: a plan is a decision about many resources at once. A refusal (stale
//! store, failing decision log, disabled principal) is an `always_denied` plan with the
//! refusal's reason, never an error an application could mistake for "no filter".

use serde_json::Value;
use warden_core::cedar_policy::{EntityTypeName, EntityUid};
use warden_core::filter::{FilterError, FilterPlan, FilterQuery, PlanOutcome};

use crate::engine::{DecisionScope, PrincipalInput, Refusal, RefusalReason};
use crate::snapshot::Snapshot;

/// One question: which resources of a type may the principal act on with the action?
#[derive(Debug, Clone)]
pub struct FilterInput<'a> {
    /// The principal.
    pub principal: PrincipalInput<'a>,
    /// The action name.
    pub action: String,
    /// The resource type.
    pub resource_type: String,
    /// The context object.
    pub context: Option<Value>,
}

/// A plan, or the refusal that stands for one (then nothing is allowed).
#[derive(Debug, Clone)]
pub struct FilterOutcome {
    /// A fresh UUIDv7 (the decision-log record's id).
    pub decision_id: String,
    /// The plan, when the policies were consulted.
    pub plan: Option<FilterPlan>,
    /// Why they were not (always a deny of every resource).
    pub refusal: Option<Refusal>,
}

impl FilterOutcome {
    /// What the plan says; a refusal says `AlwaysDenied`.
    pub fn outcome(&self) -> &PlanOutcome {
        static DENIED: PlanOutcome = PlanOutcome::AlwaysDenied;
        self.plan.as_ref().map_or(&DENIED, |plan| &plan.outcome)
    }

    /// The reason code: the refusal's, else `filter`.
    pub fn reason(&self) -> &'static str {
        match &self.refusal {
            Some(refusal) => refusal.reason.as_str(),
            None => "filter",
        }
    }
}

/// Why no plan can be answered: the question is malformed, or the policies cannot be written
/// as a filter. Neither is ever answered with a broader filter.
#[derive(Debug, thiserror::Error)]
pub enum FilterFailure {
    /// The question does not fit the pack (unknown action or type, a context the schema
    /// refuses).
    #[error("{0}")]
    Invalid(String),
    /// The policies cannot be written as a filter.
    #[error(transparent)]
    Unsupported(FilterError),
    /// The same, recorded in the decision log under this id.
    #[error("{error}")]
    Unfilterable {
        /// Why.
        error: FilterError,
        /// The decision-log record's id.
        decision_id: String,
    },
}

/// Plans one question against the scope's snapshot.
pub fn plan(
    scope: &DecisionScope,
    input: &FilterInput<'_>,
) -> Result<FilterOutcome, FilterFailure> {
    let decision_id = uuid::Uuid::now_v7().to_string();
    let refused = |refusal: Refusal| FilterOutcome {
        decision_id: decision_id.clone(),
        plan: None,
        refusal: Some(refusal),
    };
    if let Some(why) = &scope.stale {
        return Ok(refused(Refusal {
            reason: RefusalReason::StoreUnavailable,
            detail: why.clone(),
        }));
    }
    if let Some(why) = &scope.audit_down {
        return Ok(refused(Refusal {
            reason: RefusalReason::AuditUnavailable,
            detail: why.clone(),
        }));
    }
    match planned(&scope.snapshot, &scope.claim_attributes, input)? {
        Ok(plan) => Ok(FilterOutcome {
            decision_id,
            plan: Some(plan),
            refusal: None,
        }),
        Err(refusal) => Ok(refused(refusal)),
    }
}

/// Whether a resource the entity data knows is one a plan admits: its entity read from the
/// graph, its ancestors sliced only when the condition tests membership. An entity the data
/// does not have (or cannot assemble) is not admitted.
pub fn admits(snapshot: &Snapshot, outcome: &PlanOutcome, resource: &EntityUid) -> bool {
    match outcome {
        PlanOutcome::AlwaysDenied => false,
        PlanOutcome::AlwaysAllowed => snapshot.entities().contains(resource),
        PlanOutcome::Conditional(condition) => {
            let graph = snapshot.entities();
            // On a replica that serves some tenants, the slice also refuses a resource whose
            // data reaches another tenant's (as a decision about it would be refused).
            if condition.needs_ancestors() || graph.served_tenants().is_some() {
                let Ok(entities) = graph.slice(
                    &snapshot.pack,
                    &snapshot.roots,
                    std::slice::from_ref(resource),
                    &[],
                ) else {
                    return false;
                };
                drop(graph);
                entities
                    .get(resource)
                    .is_some_and(|entity| condition.holds(entity, &entities))
            } else {
                let Some(entity) = graph.get(resource) else {
                    return false;
                };
                drop(graph);
                condition.holds(&entity, &warden_core::cedar_policy::Entities::empty())
            }
        }
    }
}

/// Whether a root stays in a plan's slice on a replica that serves some tenants. Only the
/// entity of an unserved tenant itself is left out (the cross-tenant branch never admits that
/// tenant's rows); any other entity of an unserved tenant stays, so the slice is refused as a
/// decision reading it would be (a plan must not fold away a policy that reads it).
fn keep_root(
    pack: &warden_core::Pack,
    graph: &crate::entity_graph::EntityGraph,
    uid: &EntityUid,
) -> bool {
    let is_tenant = pack
        .tenancy()
        .is_some_and(|tenancy| uid.type_name() == &tenancy.tenant_type);
    !is_tenant
        || graph
            .unserved_tenant(pack, &uid.type_name().to_string(), uid.id().unescaped())
            .is_none()
}

fn slice_refusal(error: crate::entity_graph::SliceError) -> Refusal {
    match error {
        crate::entity_graph::SliceError::NotServed(_) => Refusal {
            reason: RefusalReason::TenantNotServed,
            detail: error.to_string(),
        },
        crate::entity_graph::SliceError::Entities(detail) => Refusal {
            reason: RefusalReason::InvalidRequest,
            detail: format!("the principal's entities do not fit together: {detail}"),
        },
    }
}

fn type_name(snapshot: &Snapshot, name: &str) -> Result<EntityTypeName, FilterFailure> {
    snapshot
        .pack
        .type_name(name)
        .ok_or_else(|| FilterFailure::Invalid(format!("`{name}` is not a valid entity type name")))
}

fn planned(
    snapshot: &Snapshot,
    claim_attributes: &[String],
    input: &FilterInput<'_>,
) -> Result<Result<FilterPlan, Refusal>, FilterFailure> {
    let pack = &snapshot.pack;
    let resource_type = type_name(snapshot, &input.resource_type)?;
    let action = EntityUid::from_type_name_and_id(
        type_name(snapshot, "Action")?,
        warden_core::cedar_policy::EntityId::new(&input.action),
    );
    if let Some(schema) = pack.schema() {
        if !schema.actions().any(|declared| declared == &action) {
            return Err(FilterFailure::Invalid(format!(
                "`{}` is not an action of the schema",
                input.action
            )));
        }
        if pack.entity_shape(&input.resource_type).is_none() {
            return Err(FilterFailure::Invalid(format!(
                "`{}` is not an entity type of the schema",
                input.resource_type
            )));
        }
    }
    let graph = snapshot.entities();
    let (principal, extra) = match crate::engine::principal_facts(
        snapshot,
        &graph,
        claim_attributes,
        &input.principal,
    ) {
        Ok(facts) => facts,
        Err(refusal) if refusal.reason == RefusalReason::InvalidRequest => {
            return Err(FilterFailure::Invalid(refusal.detail));
        }
        Err(refusal) => return Ok(Err(refusal)),
    };
    // The principal's tenant, then everything a plan can read besides the (unknown)
    // resource: the principal, the action, and what `Pack::filter_roots` names. Exactly what
    // they reach (never the entity file's whole store: partial evaluation checks every entity
    // it is given). A root of a tenant this replica does not serve is left out: a plan never
    // admits that tenant's rows (`served_tenants`), so nothing of it is needed.
    let principal_tenant = match pack.tenancy() {
        None => None,
        Some(tenancy) => {
            let own = match graph.slice_reachable(
                pack,
                &snapshot.roots,
                std::slice::from_ref(&principal),
                &extra,
            ) {
                Ok(entities) => entities,
                Err(error) => return Ok(Err(slice_refusal(error))),
            };
            warden_core::tenant_guard::tenant_of(tenancy, &principal, &own)
                .ok()
                .map(|tenant| tenant.id().unescaped().to_owned())
        }
    };
    let tenant_policies = snapshot.tenant_policies();
    let mut roots = vec![principal.clone(), action.clone()];
    roots.extend(
        pack.filter_roots(&tenant_policies, principal_tenant.as_deref())
            .into_iter()
            .filter(|uid| keep_root(pack, &graph, uid)),
    );
    if let Some(context) = &input.context {
        crate::entity_graph::references_in(context, &mut roots);
    }
    let entities = match graph.slice_reachable(pack, &snapshot.roots, &roots, &extra) {
        Ok(entities) => entities,
        Err(error) => return Ok(Err(slice_refusal(error))),
    };
    let served = graph.served_tenants().cloned();
    drop(graph);
    let query = FilterQuery {
        principal: &principal,
        action: &action,
        resource_type: &resource_type,
        context: input.context.clone(),
        entities: &entities,
        tenant_policies: &tenant_policies,
        served_tenants: served.as_deref(),
    };
    match pack.filter_plan(&query) {
        Ok(plan) => Ok(Ok(plan)),
        Err(FilterError::Request(detail)) => Err(FilterFailure::Invalid(detail)),
        Err(FilterError::UnknownResourceType(name)) => Err(FilterFailure::Invalid(format!(
            "`{name}` is not an entity type of the schema"
        ))),
        Err(error) => Err(FilterFailure::Unsupported(error)),
    }
}

/// The subject plan of an AuthZEN subject search: which principals of `subject_type` may do
/// `action` on a resource the entity data knows. `None` when the search must decide each
/// candidate instead: a store not read in time or a failing decision log (each decision then
/// refuses), a resource the data does not know or of a tenant this replica does not serve, a
/// question that does not fit the pack, or policies that cannot be written as a filter.
pub fn subject_plan(
    scope: &DecisionScope,
    subject_type: &str,
    action: &str,
    resource: &crate::engine::EntityInput,
    context: Option<&Value>,
) -> Option<PlanOutcome> {
    if scope.stale.is_some() || scope.audit_down.is_some() {
        return None;
    }
    let snapshot = &scope.snapshot;
    let pack = &snapshot.pack;
    let principal_type = pack.type_name(subject_type)?;
    let action = EntityUid::from_type_name_and_id(
        pack.type_name("Action")?,
        warden_core::cedar_policy::EntityId::new(action),
    );
    let resource_uid = EntityUid::from_type_name_and_id(
        pack.type_name(&resource.entity_type)?,
        warden_core::cedar_policy::EntityId::new(&resource.id),
    );
    let graph = snapshot.entities();
    if !graph.contains(&resource_uid)
        || graph
            .unserved_tenant(pack, &resource.entity_type, &resource.id)
            .is_some()
    {
        return None;
    }
    let resource_tenant = match pack.tenancy() {
        None => None,
        Some(tenancy) => {
            let own = graph
                .slice_reachable(
                    pack,
                    &snapshot.roots,
                    std::slice::from_ref(&resource_uid),
                    &[],
                )
                .ok()?;
            warden_core::tenant_guard::tenant_of(tenancy, &resource_uid, &own)
                .ok()
                .map(|tenant| tenant.id().unescaped().to_owned())
        }
    };
    let tenant_policies = snapshot.tenant_policies();
    let mut roots = vec![resource_uid.clone(), action.clone()];
    roots.extend(
        pack.filter_roots(&tenant_policies, resource_tenant.as_deref())
            .into_iter()
            .filter(|uid| keep_root(pack, &graph, uid)),
    );
    if let Some(context) = context {
        crate::entity_graph::references_in(context, &mut roots);
    }
    let entities = graph
        .slice_reachable(pack, &snapshot.roots, &roots, &[])
        .ok()?;
    drop(graph);
    let query = warden_core::filter::SubjectQuery {
        resource: &resource_uid,
        action: &action,
        principal_type: &principal_type,
        context: context.cloned(),
        entities: &entities,
        tenant_policies: &tenant_policies,
    };
    match pack.subject_plan(&query) {
        Ok(outcome) => Some(outcome),
        Err(error) => {
            tracing::debug!(%error, "subject search: deciding each candidate");
            None
        }
    }
}

/// Whether a principal the entity data knows is one a subject plan admits and may act at all:
/// not disabled or deleted by the store, and of a tenant this replica serves (as a decision
/// would refuse it otherwise).
pub fn admits_subject(snapshot: &Snapshot, outcome: &PlanOutcome, principal: &EntityUid) -> bool {
    {
        let graph = snapshot.entities();
        if matches!(
            graph.status(principal),
            Some(warden_store::PrincipalStatus::Disabled | warden_store::PrincipalStatus::Deleted)
        ) || graph
            .unserved_tenant(
                &snapshot.pack,
                &principal.type_name().to_string(),
                principal.id().unescaped(),
            )
            .is_some()
        {
            return false;
        }
    }
    admits(snapshot, outcome, principal)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use std::sync::Arc;

    use super::*;
    use crate::entity_graph::EntityGraph;
    use crate::snapshot::Snapshot;

    fn example() -> DecisionScope {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let sources = warden_packdir::read_pack(&root.join("examples/saas")).unwrap();
        let pack = Arc::new(warden_core::Pack::compile(&sources).unwrap().pack);
        let text = std::fs::read_to_string(root.join("examples/saas/entities.json")).unwrap();
        let graph = EntityGraph::of_file(&pack, Some(&text)).unwrap();
        DecisionScope {
            snapshot: Arc::new(Snapshot::of(pack, graph)),
            stale: None,
            claim_attributes: Arc::new(Vec::new()),
            audit_down: None,
        }
    }

    fn entity(entity_type: &str, id: &str) -> crate::engine::EntityInput {
        crate::engine::EntityInput {
            entity_type: entity_type.to_owned(),
            id: id.to_owned(),
            properties: None,
        }
    }

    #[test]
    fn the_searches_plan_rather_than_decide_each_candidate() {
        let scope = example();
        let plan = plan(
            &scope,
            &FilterInput {
                principal: PrincipalInput::Named(entity("User", "acme/carol")),
                action: "read".to_owned(),
                resource_type: "Document".to_owned(),
                context: None,
            },
        )
        .unwrap();
        assert!(matches!(plan.outcome(), PlanOutcome::Conditional(_)));
        let subjects = subject_plan(
            &scope,
            "User",
            "read",
            &entity("Document", "acme/roadmap"),
            None,
        )
        .expect("a subject plan");
        let carol: EntityUid = r#"User::"acme/carol""#.parse().unwrap();
        let gina: EntityUid = r#"User::"globex/carol""#.parse().unwrap();
        assert!(admits_subject(&scope.snapshot, &subjects, &carol));
        assert!(!admits_subject(&scope.snapshot, &subjects, &gina));
        // A resource the data does not know, or a stale store: each candidate is decided.
        assert!(
            subject_plan(
                &scope,
                "User",
                "read",
                &entity("Document", "acme/nope"),
                None
            )
            .is_none()
        );
        let stale = DecisionScope {
            stale: Some("not read".to_owned()),
            ..scope
        };
        assert!(
            subject_plan(
                &stale,
                "User",
                "read",
                &entity("Document", "acme/roadmap"),
                None
            )
            .is_none()
        );
    }

    // -----------------------------------------------------------------------------------------
    // Second review (#21): the subject search's plan against each candidate's decision, as the
    // server runs them (`admits_subject` per candidate of `ids_of_type`, `engine::decide`).
    // -----------------------------------------------------------------------------------------

    fn scope_of(graph: EntityGraph, pack: Arc<warden_core::Pack>) -> DecisionScope {
        DecisionScope {
            snapshot: Arc::new(Snapshot::of(pack, graph)),
            stale: None,
            claim_attributes: Arc::new(vec!["tenant".to_owned(), "email".to_owned()]),
            audit_down: None,
        }
    }

    fn example_parts() -> (Arc<warden_core::Pack>, Vec<Value>) {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let sources = warden_packdir::read_pack(&root.join("examples/saas")).unwrap();
        let pack = Arc::new(warden_core::Pack::compile(&sources).unwrap().pack);
        let text = std::fs::read_to_string(root.join("examples/saas/entities.json")).unwrap();
        let values: Vec<Value> = serde_json::from_str(&text).unwrap();
        (pack, values)
    }

    /// Every candidate of `subject_type` the search would scan: (id, plan admits, decision
    /// allows) where they differ.
    fn search_mismatches(
        scope: &DecisionScope,
        subject_type: &str,
        action: &str,
        resource: &crate::engine::EntityInput,
    ) -> Vec<(String, bool, bool)> {
        // No plan: the search decides each candidate, which is the decision itself.
        let Some(outcome) = subject_plan(scope, subject_type, action, resource, None) else {
            return Vec::new();
        };
        let type_name = scope.snapshot.pack.type_name(subject_type).unwrap();
        let ids = scope
            .snapshot
            .entities()
            .ids_of_type(&type_name, None, usize::MAX);
        assert!(!ids.is_empty());
        let mut out = Vec::new();
        for id in ids {
            let uid = EntityUid::from_type_name_and_id(
                type_name.clone(),
                warden_core::cedar_policy::EntityId::new(&id),
            );
            let planned = admits_subject(&scope.snapshot, &outcome, &uid);
            let decided = crate::engine::decide(
                scope,
                &crate::engine::DecisionInput {
                    principal: PrincipalInput::Named(entity(subject_type, &id)),
                    action: action.to_owned(),
                    resource: resource.clone(),
                    context: None,
                },
            )
            .allowed();
            if planned != decided {
                out.push((id, planned, decided));
            }
        }
        out
    }

    fn grant(tenant: &str, principal: &str, role: &str) -> warden_store::RoleAssignment {
        warden_store::RoleAssignment {
            tenant: tenant.into(),
            principal_type: "User".into(),
            principal_id: principal.into(),
            role_type: "Role".into(),
            role_id: role.into(),
            expires_at: None,
            reason: "review".into(),
            granted_by: "review".into(),
            granted_at: 0,
        }
    }

    /// HELD: role grants (the `granted` layer, also for a principal the data does not list),
    /// disabled and deleted principals, and claim attributes (which named subjects never get):
    /// the plan admits exactly the candidates a decision allows.
    #[test]
    fn review2_grants_statuses_and_claims_match_decisions() {
        let (pack, values) = example_parts();
        let mut graph = EntityGraph::of_values(&pack, values).unwrap();
        let now = 1_000;
        graph
            .set_grants(
                &pack,
                "acme",
                ("User", "acme/erin"),
                &[grant("acme", "acme/erin", "admin")],
                now,
            )
            .unwrap();
        graph
            .set_grants(
                &pack,
                "acme",
                ("User", "acme/zed"),
                &[grant("acme", "acme/zed", "viewer")],
                now,
            )
            .unwrap();
        graph
            .set_grants(
                &pack,
                "globex",
                ("User", "globex/erin"),
                &[grant("globex", "globex/erin", "support")],
                now,
            )
            .unwrap();
        for (id, status) in [
            ("acme/bob", warden_store::PrincipalStatus::Disabled),
            ("acme/alice", warden_store::PrincipalStatus::Deleted),
        ] {
            graph
                .set_status(
                    &pack,
                    &warden_store::StatusRecord {
                        tenant: "acme".into(),
                        principal_type: "User".into(),
                        principal_id: id.into(),
                        status,
                    },
                )
                .unwrap();
        }
        let scope = scope_of(graph, pack);
        for action in ["read", "edit", "delete", "share"] {
            for document in ["acme/roadmap", "acme/salaries", "public/handbook"] {
                let resource = entity("Document", document);
                for subject_type in ["User", "ServiceAccount"] {
                    assert_eq!(
                        search_mismatches(&scope, subject_type, action, &resource),
                        Vec::new(),
                        "{subject_type} {action} {document}"
                    );
                }
            }
        }
        for tenant in ["acme", "globex", "public"] {
            assert_eq!(
                search_mismatches(&scope, "User", "list", &entity("Tenant", tenant)),
                Vec::new(),
                "list {tenant}"
            );
        }
    }

    /// FINDING (broader, replicas serving some tenants): a decision on a replica with
    /// `[storage] tenants` is refused (`tenant_not_served`) when its slice reaches an entity
    /// of a tenant it does not serve (`EntityGraph::slice_with` -> `not_held`), here the
    /// literal `User::"operator/blocked"` of a selected pack forbid (`engine::evaluate` adds
    /// the selection's literals to the roots). `subject_plan` leaves such roots out
    /// (`filter_roots(..).filter(unserved_tenant)`), partial evaluation folds the forbid to
    /// false for this resource, and `admits_subject` checks only the candidate's own id prefix
    /// and status: the search lists acme's viewers, every one of whose decisions is refused.
    #[test]
    fn review2_a_replica_lists_no_subject_whose_decision_it_refuses() {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let mut sources = warden_packdir::read_pack(&root.join("examples/saas")).unwrap();
        sources.policy_files.push(warden_core::pack::SourceFile::new(
            "operator.cedar",
            "@id(\"operator-blocked-owner\")\nforbid (principal, action, resource is Document) when { resource.owner == User::\"operator/blocked\" };\n",
        ));
        let pack = Arc::new(warden_core::Pack::compile(&sources).unwrap().pack);
        let (_, values) = example_parts();
        let mut graph = EntityGraph::of_values(&pack, values).unwrap();
        graph.serve_only(Some(Arc::new(
            ["acme".to_owned(), "public".to_owned()]
                .into_iter()
                .collect(),
        )));
        let scope = scope_of(graph, pack);
        let carol = crate::engine::decide(
            &scope,
            &crate::engine::DecisionInput {
                principal: PrincipalInput::Named(entity("User", "acme/carol")),
                action: "read".to_owned(),
                resource: entity("Document", "acme/roadmap"),
                context: None,
            },
        );
        assert_eq!(carol.reason(), "tenant_not_served");
        assert_eq!(
            search_mismatches(&scope, "User", "read", &entity("Document", "acme/roadmap")),
            Vec::new()
        );
    }

    /// The same refusal seen from the resource search (pre-existing, `plan` + `admits`):
    /// acme/carol's plan admits acme's documents, every decision about them is refused.
    #[test]
    fn review2_a_replica_lists_no_resource_whose_decision_it_refuses() {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let mut sources = warden_packdir::read_pack(&root.join("examples/saas")).unwrap();
        sources.policy_files.push(warden_core::pack::SourceFile::new(
            "operator.cedar",
            "@id(\"operator-blocked-owner\")\nforbid (principal, action, resource is Document) when { resource.owner == User::\"operator/blocked\" };\n",
        ));
        let pack = Arc::new(warden_core::Pack::compile(&sources).unwrap().pack);
        let (_, values) = example_parts();
        let mut graph = EntityGraph::of_values(&pack, values).unwrap();
        graph.serve_only(Some(Arc::new(
            ["acme".to_owned(), "public".to_owned()]
                .into_iter()
                .collect(),
        )));
        let scope = scope_of(graph, pack);
        let planned = plan(
            &scope,
            &FilterInput {
                principal: PrincipalInput::Named(entity("User", "acme/carol")),
                action: "read".to_owned(),
                resource_type: "Document".to_owned(),
                context: None,
            },
        )
        .unwrap();
        let document = scope.snapshot.pack.type_name("Document").unwrap();
        let ids = scope
            .snapshot
            .entities()
            .ids_of_type(&document, None, usize::MAX);
        let mut wrong = Vec::new();
        for id in ids {
            let uid = EntityUid::from_type_name_and_id(
                document.clone(),
                warden_core::cedar_policy::EntityId::new(&id),
            );
            let admitted = admits(&scope.snapshot, planned.outcome(), &uid);
            let decided = crate::engine::decide(
                &scope,
                &crate::engine::DecisionInput {
                    principal: PrincipalInput::Named(entity("User", "acme/carol")),
                    action: "read".to_owned(),
                    resource: entity("Document", &id),
                    context: None,
                },
            )
            .allowed();
            if admitted != decided {
                wrong.push((id, admitted, decided));
            }
        }
        assert_eq!(wrong, Vec::new());
    }
}
