//! Data-filter plans allow exactly what per-row decisions allow: on random packs (permits and
//! forbids over ownership, classification, levels, booleans, sets, optional attributes, folder
//! hierarchies, resource identity, roles, context, `@cross_tenant` permits, the tenant guard)
//! with random tenant policies and random data, for every principal and action, the plan's
//! condition holds for a document exactly when `Pack::decide_selected` (with the tenant
//! policies the engine would select) allows it. Plus the example pack, including the policy
//! that reads the resource's tenant's plan.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Value, json};
use warden_core::cedar_policy::{Entities, EntityUid};
use warden_core::filter::{Condition, FilterError, FilterQuery, PlanOutcome};
use warden_core::pack::{PackSources, SchemaFormat, SchemaSource, SourceFile};
use warden_core::tenant_policies::{TenantPolicies, TenantPolicy};
use warden_core::{Pack, parse_uid};

const SCHEMA: &str = r#"
entity Tenant { plan: String };
entity Role in [Role];
entity User in [Role] { tenant: Tenant, level: Long, dept: String };
entity Folder in [Folder] { tenant: Tenant };
entity Document in [Folder] {
  tenant: Tenant,
  owner: User,
  classification: String,
  level: Long,
  archived: Bool,
  tags: Set<String>,
  reviewer?: User,
};
action read, edit appliesTo { principal: [User], resource: [Document], context: { n: Long } };
"#;

const MANIFEST: &str =
    "name = \"filters\"\n[tenancy]\nattribute = \"tenant\"\ntenant_type = \"Tenant\"\n";

const TENANTS: usize = 3;
const ROLES: usize = 3;
const USERS: usize = 6;
const FOLDERS: usize = 4;
const DOCUMENTS: usize = 40;

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource.owner == principal".to_owned()),
        (0..3usize).prop_map(|c| format!("resource.classification == \"c{c}\"")),
        (0..3usize).prop_map(|c| format!("resource.classification != \"c{c}\"")),
        Just("[\"c0\", \"c2\"].contains(resource.classification)".to_owned()),
        Just("resource.level <= principal.level".to_owned()),
        (0..4i64).prop_map(|n| format!("resource.level > {n}")),
        (0..4i64).prop_map(|n| format!("{n} >= resource.level")),
        Just("resource.archived".to_owned()),
        Just("!resource.archived".to_owned()),
        (0..3usize).prop_map(|t| format!("resource.tags.contains(\"t{t}\")")),
        Just("resource.tags.containsAny([\"t0\", \"t1\"])".to_owned()),
        Just("resource.tags.containsAll([\"t1\", \"t2\"])".to_owned()),
        Just("resource has reviewer && resource.reviewer == principal".to_owned()),
        Just("resource has reviewer".to_owned()),
        (0..FOLDERS).prop_map(|f| format!("resource in Folder::\"f{f}\"")),
        Just("resource.tenant == principal.tenant".to_owned()),
        (0..TENANTS).prop_map(|t| format!("resource.tenant == Tenant::\"t{t}\"")),
        (0..ROLES).prop_map(|r| format!("principal in Role::\"r{r}\"")),
        (0..3i64).prop_map(|n| format!("context.n > {n}")),
        (0..2usize).prop_map(|d| format!("principal.dept == \"d{d}\"")),
        (0..DOCUMENTS).prop_map(|d| format!("resource == Document::\"d{d}\"")),
        Just("(if resource.archived then principal in Role::\"r0\" else true)".to_owned()),
        Just("resource.owner == User::\"u0\"".to_owned()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    let leaf = atom();
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

fn scope() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            2 => Just("principal".to_owned()),
            1 => (0..ROLES).prop_map(|r| format!("principal in Role::\"r{r}\"")),
        ],
        prop_oneof![
            Just("action".to_owned()),
            Just("action == Action::\"read\"".to_owned()),
            Just("action == Action::\"edit\"".to_owned()),
        ],
        prop_oneof![
            2 => Just("resource is Document".to_owned()),
            1 => Just("resource".to_owned()),
            1 => (0..FOLDERS).prop_map(|f| format!("resource in Folder::\"f{f}\"")),
        ],
    )
        .prop_map(|(p, a, r)| format!("({p}, {a}, {r})"))
}

fn policy() -> impl Strategy<Value = String> {
    (
        prop_oneof![3 => Just("permit"), 1 => Just("forbid")],
        prop::bool::weighted(0.2),
        scope(),
        prop::option::weighted(0.85, condition()),
        prop::option::weighted(0.15, condition()),
    )
        .prop_map(|(effect, cross, scope, when, unless)| {
            let annotation = if cross && effect == "permit" {
                "@cross_tenant(\"shared\")\n"
            } else {
                ""
            };
            let when = when.map(|c| format!(" when {{ {c} }}")).unwrap_or_default();
            let unless = unless
                .map(|c| format!(" unless {{ {c} }}"))
                .unwrap_or_default();
            format!("{annotation}{effect} {scope}{when}{unless};")
        })
}

#[derive(Debug, Clone)]
struct Document {
    tenant: usize,
    owner: usize,
    classification: usize,
    level: i64,
    archived: bool,
    tags: Vec<usize>,
    reviewer: Option<usize>,
    folders: Vec<usize>,
}

fn document() -> impl Strategy<Value = Document> {
    (
        0..TENANTS,
        0..USERS,
        0..3usize,
        0..5i64,
        any::<bool>(),
        prop::collection::btree_set(0..3usize, 0..3),
        prop::option::of(0..USERS),
        prop::collection::vec(0..FOLDERS, 0..2),
    )
        .prop_map(
            |(tenant, owner, classification, level, archived, tags, reviewer, folders)| Document {
                tenant,
                owner,
                classification,
                level,
                archived,
                tags: tags.into_iter().collect(),
                reviewer,
                folders,
            },
        )
}

#[derive(Debug, Clone)]
struct World {
    policies: Vec<String>,
    tenant_policies: Vec<(usize, String)>,
    user_roles: Vec<Vec<usize>>,
    user_tenants: Vec<usize>,
    user_levels: Vec<i64>,
    folder_parents: Vec<Vec<usize>>,
    documents: Vec<Document>,
    n: i64,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(policy(), 1..10),
        prop::collection::vec((0..TENANTS, policy()), 0..4),
        prop::collection::vec(prop::collection::vec(0..ROLES, 0..2), USERS),
        prop::collection::vec(0..TENANTS, USERS),
        prop::collection::vec(0..5i64, USERS),
        prop::collection::vec(prop::collection::vec(0..FOLDERS, 0..2), FOLDERS),
        prop::collection::vec(document(), DOCUMENTS),
        0..3i64,
    )
        .prop_map(
            |(
                policies,
                tenant_policies,
                user_roles,
                user_tenants,
                user_levels,
                folder_parents,
                documents,
                n,
            )| World {
                policies,
                tenant_policies,
                user_roles,
                user_tenants,
                user_levels,
                folder_parents,
                documents,
                n,
            },
        )
}

fn tenant_ref(t: usize) -> Value {
    json!({"__entity": {"type": "Tenant", "id": format!("t{t}")}})
}

impl World {
    fn entities_json(&self) -> Value {
        let mut all = Vec::new();
        for t in 0..TENANTS {
            let plan = if t == 0 { "free" } else { "pro" };
            all.push(json!({"uid": {"type": "Tenant", "id": format!("t{t}")}, "attrs": {"plan": plan}, "parents": []}));
        }
        all.push(json!({"uid": {"type": "Role", "id": "r0"}, "attrs": {}, "parents": [{"type": "Role", "id": "r1"}]}));
        for r in 1..ROLES {
            all.push(
                json!({"uid": {"type": "Role", "id": format!("r{r}")}, "attrs": {}, "parents": []}),
            );
        }
        for u in 0..USERS {
            let roles: Vec<Value> = self.user_roles[u]
                .iter()
                .map(|r| json!({"type": "Role", "id": format!("r{r}")}))
                .collect();
            all.push(json!({
                "uid": {"type": "User", "id": format!("u{u}")},
                "attrs": {
                    "tenant": tenant_ref(self.user_tenants[u]),
                    "level": self.user_levels[u],
                    "dept": format!("d{}", u % 2),
                },
                "parents": roles,
            }));
        }
        for (f, parents) in self.folder_parents.iter().enumerate() {
            let parents: Vec<Value> = parents
                .iter()
                .filter(|p| **p > f)
                .map(|p| json!({"type": "Folder", "id": format!("f{p}")}))
                .collect();
            all.push(json!({
                "uid": {"type": "Folder", "id": format!("f{f}")},
                "attrs": {"tenant": tenant_ref(f % TENANTS)},
                "parents": parents,
            }));
        }
        for (d, doc) in self.documents.iter().enumerate() {
            let mut attrs = json!({
                "tenant": tenant_ref(doc.tenant),
                "owner": {"__entity": {"type": "User", "id": format!("u{}", doc.owner)}},
                "classification": format!("c{}", doc.classification),
                "level": doc.level,
                "archived": doc.archived,
                "tags": doc.tags.iter().map(|t| format!("t{t}")).collect::<Vec<_>>(),
            });
            if let Some(reviewer) = doc.reviewer {
                attrs["reviewer"] =
                    json!({"__entity": {"type": "User", "id": format!("u{reviewer}")}});
            }
            let parents: Vec<Value> = doc
                .folders
                .iter()
                .map(|f| json!({"type": "Folder", "id": format!("f{f}")}))
                .collect();
            all.push(json!({
                "uid": {"type": "Document", "id": format!("d{d}")},
                "attrs": attrs,
                "parents": parents,
            }));
        }
        Value::Array(all)
    }
}

fn compile(schema: &str, manifest: &str, policies: &[String]) -> Pack {
    let text: String = policies
        .iter()
        .enumerate()
        .map(|(i, policy)| format!("@id(\"p{i}\")\n{policy}\n"))
        .collect();
    let sources = PackSources {
        policy_files: vec![SourceFile::new("policies.cedar", text)],
        schema: Some(SchemaSource {
            file: SourceFile::new("schema.cedarschema", schema.to_owned()),
            format: SchemaFormat::CedarSchema,
        }),
        manifest: Some(SourceFile::new("pack.toml", manifest.to_owned())),
    };
    match Pack::compile(&sources) {
        Ok(compiled) => compiled.pack,
        Err(error) => panic!("the generated pack does not compile: {error:?}"),
    }
}

/// The engine's decision: the pack's selection plus the tenant policies it would select.
fn allowed(
    pack: &Pack,
    tenant_policies: &TenantPolicies,
    entities: &Entities,
    principal: &EntityUid,
    action: &str,
    resource: &EntityUid,
    context: Value,
) -> bool {
    let request = pack
        .request(
            principal.clone(),
            parse_uid(&format!("Action::\"{action}\"")).unwrap(),
            resource.clone(),
            Some(context),
        )
        .unwrap();
    let mut selection = pack.select(&request, entities);
    tenant_policies.select_into(pack, &request, entities, &mut selection);
    pack.decide_selected(&request, &selection, entities)
        .is_allowed()
}

fn holds(outcome: &PlanOutcome, resource: &EntityUid, entities: &Entities) -> bool {
    match outcome {
        PlanOutcome::AlwaysAllowed => true,
        PlanOutcome::AlwaysDenied => false,
        PlanOutcome::Conditional(condition) => {
            let entity = entities.get(resource).unwrap();
            condition.holds(entity, entities)
        }
    }
}

/// Every plan for every principal and action of `pack` against per-row decisions. Returns the
/// plans that were refused (with their errors).
fn compare(
    pack: &Pack,
    tenant_policies: &TenantPolicies,
    entities: &Entities,
    principals: &[String],
    actions: &[&str],
    resources: &[String],
    context: &Value,
) -> Result<Vec<FilterError>, TestCaseError> {
    let mut refused = Vec::new();
    let document = pack.type_name("Document").unwrap();
    for principal in principals {
        let principal = parse_uid(principal).unwrap();
        for action in actions {
            let action_uid = parse_uid(&format!("Action::\"{action}\"")).unwrap();
            let query = FilterQuery {
                principal: &principal,
                action: &action_uid,
                resource_type: &document,
                context: Some(context.clone()),
                entities,
                tenant_policies,
                served_tenants: None,
            };
            let plan = match pack.filter_plan(&query) {
                Ok(plan) => plan,
                Err(error) => {
                    refused.push(error);
                    continue;
                }
            };
            if let PlanOutcome::Conditional(condition) = &plan.outcome {
                // The tenant boundary is part of every plan with [tenancy].
                prop_assert!(
                    mentions_tenant(condition),
                    "no tenant in the plan {condition}"
                );
            }
            for resource in resources {
                let resource = parse_uid(resource).unwrap();
                let expected = allowed(
                    pack,
                    tenant_policies,
                    entities,
                    &principal,
                    action,
                    &resource,
                    context.clone(),
                );
                prop_assert_eq!(
                    holds(&plan.outcome, &resource, entities),
                    expected,
                    "{} {} {}: plan {:?}",
                    principal,
                    action,
                    resource,
                    plan.outcome
                );
            }
        }
    }
    Ok(refused)
}

fn mentions_tenant(condition: &Condition) -> bool {
    match condition {
        Condition::Compare { field, .. } => field == "tenant",
        Condition::And(parts) => parts.iter().any(mentions_tenant),
        Condition::Or(parts) => parts.iter().all(mentions_tenant),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn plans_allow_exactly_what_decisions_allow(world in world()) {
        let pack = compile(SCHEMA, MANIFEST, &world.policies);
        let entities = pack.parse_entities(&world.entities_json().to_string()).unwrap();
        let mut tenant_policies = TenantPolicies::default();
        for (i, (tenant, text)) in world.tenant_policies.iter().enumerate() {
            // Tenant policies are checked against the pack; the generator's may be refused
            // (e.g. for naming another tenant), like a tenant's would be.
            if let Ok(policy) = TenantPolicy::check(&pack, &format!("t{tenant}"), &format!("tp{i}"), text) {
                tenant_policies.put(&pack, policy);
            }
        }
        let principals: Vec<String> = (0..USERS).map(|u| format!("User::\"u{u}\"")).collect();
        let resources: Vec<String> = (0..DOCUMENTS).map(|d| format!("Document::\"d{d}\"")).collect();
        let refused = compare(
            &pack,
            &tenant_policies,
            &entities,
            &principals,
            &["read", "edit"],
            &resources,
            &json!({"n": world.n}),
        )?;
        // Everything the generator writes can be planned.
        prop_assert!(refused.is_empty(), "refused: {:?}", refused);
    }
}

fn example_pack() -> (Pack, Entities) {
    let sources = warden_packdir::read_pack(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/saas"
    )))
    .unwrap();
    let pack = Pack::compile(&sources).unwrap().pack;
    let mut data: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/saas/entities.json"
        ))
        .unwrap(),
    )
    .unwrap();
    // Documents across the example's tenants, classifications, owners and folders.
    let tenants = ["acme", "globex", "public", "operator"];
    let users = ["acme/alice", "acme/bob", "acme/carol", "globex/bob"];
    for i in 0..48usize {
        let tenant = tenants[i % tenants.len()];
        let classification = ["public", "internal", "restricted"][(i / 3) % 3];
        data.push(json!({
            "uid": {"type": "Document", "id": format!("{tenant}/doc{i}")},
            "attrs": {
                "tenant": {"__entity": {"type": "Tenant", "id": tenant}},
                "owner": {"__entity": {"type": "User", "id": users[(i / 4) % users.len()]}},
                "classification": classification,
            },
            "parents": [],
        }));
    }
    let entities = pack
        .parse_entities(&Value::Array(data).to_string())
        .unwrap();
    (pack, entities)
}

#[test]
fn the_example_pack_plans_every_action_exactly() {
    let (pack, entities) = example_pack();
    let principals: Vec<String> = entities
        .iter()
        .filter(|e| e.uid().type_name().to_string() == "User")
        .map(|e| e.uid().to_string())
        .collect();
    assert!(principals.len() >= 4);
    let resources: Vec<String> = entities
        .iter()
        .filter(|e| e.uid().type_name().to_string() == "Document")
        .map(|e| e.uid().to_string())
        .collect();
    let tenant_policies = TenantPolicies::default();
    for context in [json!({}), json!({"support_ticket": "SUP-1"})] {
        let refused = compare(
            &pack,
            &tenant_policies,
            &entities,
            &principals,
            &["read", "edit", "delete", "share"],
            &resources,
            &context,
        )
        .unwrap();
        assert!(refused.is_empty(), "refused: {refused:?}");
    }
}

#[test]
fn a_plan_reads_the_resource_tenants_data_inside_the_tenant() {
    // `sharing-needs-paid-plan` reads `resource.tenant.plan`: inside the principal's tenant the
    // tenant is known, so the plan folds it (globex is on the free plan: nobody shares there).
    let (pack, entities) = example_pack();
    let document = pack.type_name("Document").unwrap();
    let share = parse_uid("Action::\"share\"").unwrap();
    let tenant_policies = TenantPolicies::default();
    let plan_for = |principal: &str| {
        let principal = parse_uid(principal).unwrap();
        pack.filter_plan(&FilterQuery {
            principal: &principal,
            action: &share,
            resource_type: &document,
            context: None,
            entities: &entities,
            tenant_policies: &tenant_policies,
            served_tenants: None,
        })
        .unwrap()
    };
    assert!(matches!(
        plan_for("User::\"acme/alice\"").outcome,
        PlanOutcome::Conditional(_)
    ));
    let globex_admins: BTreeSet<String> = entities
        .iter()
        .filter(|e| e.uid().id().unescaped().starts_with("globex/"))
        .filter(|e| e.uid().type_name().to_string() == "User")
        .map(|e| e.uid().to_string())
        .collect();
    for user in globex_admins {
        assert_eq!(plan_for(&user).outcome, PlanOutcome::AlwaysDenied, "{user}");
    }
}

#[test]
fn a_residual_that_cannot_be_a_filter_is_refused_with_the_policy() {
    let pack = compile(
        SCHEMA,
        MANIFEST,
        &[
            "permit (principal, action, resource is Document) when { resource.tenant == principal.tenant };".to_owned(),
            // Reads an attribute of the resource's owner: not a field of the resource.
            "forbid (principal, action, resource is Document) when { resource.owner.level > 3 };".to_owned(),
        ],
    );
    let world = World {
        policies: Vec::new(),
        tenant_policies: Vec::new(),
        user_roles: vec![Vec::new(); USERS],
        user_tenants: vec![0; USERS],
        user_levels: vec![1; USERS],
        folder_parents: vec![Vec::new(); FOLDERS],
        documents: Vec::new(),
        n: 0,
    };
    let entities = pack
        .parse_entities(&world.entities_json().to_string())
        .unwrap();
    let principal = parse_uid("User::\"u0\"").unwrap();
    let read = parse_uid("Action::\"read\"").unwrap();
    let document = pack.type_name("Document").unwrap();
    let error = pack
        .filter_plan(&FilterQuery {
            principal: &principal,
            action: &read,
            resource_type: &document,
            context: Some(json!({"n": 0})),
            entities: &entities,
            tenant_policies: &TenantPolicies::default(),
            served_tenants: None,
        })
        .unwrap_err();
    match error {
        FilterError::Unsupported { policy, detail } => {
            assert_eq!(policy, "p1");
            assert!(detail.contains("resource.owner.level"), "{detail}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Security review of the data-filter plans (#21): each test below states what it proves. A
// test that fails is a finding: the plan disagrees with the per-row decision.
// ---------------------------------------------------------------------------------------------

fn compile_with(schema: SchemaSource, manifest: &str, policies: &[&str]) -> Pack {
    let text: String = policies
        .iter()
        .enumerate()
        .map(|(i, policy)| format!("@id(\"p{i}\")\n{policy}\n"))
        .collect();
    let sources = PackSources {
        policy_files: vec![SourceFile::new("policies.cedar", text)],
        schema: Some(schema),
        manifest: Some(SourceFile::new("pack.toml", manifest.to_owned())),
    };
    match Pack::compile(&sources) {
        Ok(compiled) => compiled.pack,
        Err(error) => panic!("the pack does not compile: {error:?}"),
    }
}

fn json_schema(schema: Value) -> SchemaSource {
    SchemaSource {
        file: SourceFile::new("schema.cedarschema.json", schema.to_string()),
        format: SchemaFormat::Json,
    }
}

fn cedar_schema(schema: &str) -> SchemaSource {
    SchemaSource {
        file: SourceFile::new("schema.cedarschema", schema.to_owned()),
        format: SchemaFormat::CedarSchema,
    }
}

/// The plan for one question; `plan_entities` stands for what the service gives the planner
/// (the principal's slice and the policies' literals), `row_entities` for a row's decision.
#[allow(
    clippy::too_many_arguments,
    reason = "a test helper taking the question apart"
)]
fn plan_and_decisions(
    pack: &Pack,
    tenant_policies: &TenantPolicies,
    plan_entities: &Entities,
    row_entities: &Entities,
    principal: &str,
    action: &str,
    resource_type: &str,
    context: Option<Value>,
    rows: &[&str],
) -> (PlanOutcome, Vec<(String, bool, bool)>) {
    let principal = parse_uid(principal).unwrap();
    let action_uid = parse_uid(action).unwrap();
    let resource_type = pack.type_name(resource_type).unwrap();
    let plan = pack
        .filter_plan(&FilterQuery {
            principal: &principal,
            action: &action_uid,
            resource_type: &resource_type,
            context: context.clone(),
            entities: plan_entities,
            tenant_policies,
            served_tenants: None,
        })
        .unwrap_or_else(|error| panic!("no plan: {error}"));
    let mut out = Vec::new();
    for row in rows {
        let resource = parse_uid(row).unwrap();
        let request = pack
            .request(
                principal.clone(),
                action_uid.clone(),
                resource.clone(),
                context.clone(),
            )
            .unwrap();
        let mut selection = pack.select(&request, row_entities);
        tenant_policies.select_into(pack, &request, row_entities, &mut selection);
        let decided = pack
            .decide_selected(&request, &selection, row_entities)
            .is_allowed();
        let planned = holds(&plan.outcome, &resource, row_entities);
        out.push(((*row).to_owned(), planned, decided));
    }
    (plan.outcome, out)
}

fn assert_plan_matches(outcome: &PlanOutcome, rows: &[(String, bool, bool)]) {
    for (row, planned, decided) in rows {
        assert_eq!(
            planned, decided,
            "{row}: the plan says {planned}, the decision says {decided}; plan {outcome:?}"
        );
    }
}

/// FINDING (broader): an entity type whose JSON-schema `shape` is a common type. `shapes()`
/// (pack/shapes.rs) reads only a literal `{"type": "Record", "attributes": …}` shape, so the
/// type's attributes are unknown to the translation, and `has_attr` (filter/residual.rs) folds
/// `resource has <attr>` of an undeclared attribute to `false`. A forbid on the attribute's
/// presence disappears from the plan.
#[test]
fn review_a_common_type_shape_keeps_a_has_forbid() {
    let schema = json_schema(json!({
        "": {
            "commonTypes": {
                "DocShape": {"type": "Record", "attributes": {
                    "title": {"type": "String"},
                    "legal_hold": {"type": "Boolean", "required": false},
                }},
            },
            "entityTypes": {
                "User": {},
                "Document": {"shape": {"type": "DocShape"}},
            },
            "actions": {"read": {"appliesTo": {
                "principalTypes": ["User"], "resourceTypes": ["Document"],
            }}},
        }
    }));
    let pack = compile_with(
        schema,
        "name = \"shapes\"\n",
        &[
            "permit (principal, action, resource);",
            "forbid (principal, action, resource) when { resource has legal_hold };",
        ],
    );
    let entities = pack
        .parse_entities(
            &json!([
                {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []},
                {"uid": {"type": "Document", "id": "free"}, "attrs": {"title": "a"}, "parents": []},
                {"uid": {"type": "Document", "id": "held"}, "attrs": {"title": "b", "legal_hold": true}, "parents": []},
            ])
            .to_string(),
        )
        .unwrap();
    let (outcome, rows) = plan_and_decisions(
        &pack,
        &TenantPolicies::default(),
        &entities,
        &entities,
        "User::\"alice\"",
        "Action::\"read\"",
        "Document",
        None,
        &["Document::\"free\"", "Document::\"held\""],
    );
    assert_plan_matches(&outcome, &rows);
}

/// FINDING (broader): a JSON schema in a namespace naming a type of the empty namespace as
/// `{"type": "Entity", "name": "User"}`. Cedar resolves the name to `User` (the namespace has
/// none); `kind_of` (pack/shapes.rs) qualifies it unconditionally as `App::User`, so
/// `comparable` (filter/residual.rs) decides that `resource.blocked` can never contain a
/// `User` and folds the forbid to `false`.
#[test]
fn review_a_json_entity_type_name_resolves_like_cedar() {
    let schema = json_schema(json!({
        "": {
            "entityTypes": {"User": {}},
            "actions": {},
        },
        "App": {
            "entityTypes": {
                "Document": {"shape": {"type": "Record", "attributes": {
                    "blocked": {"type": "Set", "element": {"type": "Entity", "name": "User"}},
                }}},
            },
            "actions": {"read": {"appliesTo": {
                "principalTypes": ["User"], "resourceTypes": ["Document"],
            }}},
        },
    }));
    let pack = compile_with(
        schema,
        "name = \"namespaces\"\n",
        &[
            "permit (principal, action, resource);",
            "forbid (principal, action, resource) when { resource.blocked.contains(principal) };",
        ],
    );
    let entities = pack
        .parse_entities(
            &json!([
                {"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []},
                {"uid": {"type": "App::Document", "id": "open"}, "attrs": {"blocked": []}, "parents": []},
                {"uid": {"type": "App::Document", "id": "closed"},
                 "attrs": {"blocked": [{"__entity": {"type": "User", "id": "alice"}}]}, "parents": []},
            ])
            .to_string(),
        )
        .unwrap();
    let (outcome, rows) = plan_and_decisions(
        &pack,
        &TenantPolicies::default(),
        &entities,
        &entities,
        "User::\"alice\"",
        "App::Action::\"read\"",
        "App::Document",
        None,
        &["App::Document::\"open\"", "App::Document::\"closed\""],
    );
    assert_plan_matches(&outcome, &rows);
}

const NESTED_TENANTS: &str = r#"
entity Tenant in [Tenant];
entity User { tenant: Tenant };
entity Document { tenant: Tenant, shared: Bool };
action read appliesTo { principal: [User], resource: [Document] };
"#;

/// FINDING (broader): across tenants without named tenants, every tenant with forbids of its
/// own is planned with its tenant known (`known(query, shape, key, Some(&other))` in
/// filter/plan.rs), and `resource.tenant in …` folds through `known.entities.is_ancestor_of`
/// (filter/residual.rs, `BinaryOp::In` of two values). The planner's entities are the
/// principal's slice (warden-service/src/filter.rs: principal, action, literals): the other
/// tenant's entity is not in it, so `in` folds to `false` where the row's decision (whose
/// slice reaches the row's tenant and its ancestors) finds `true`.
///
/// Here tenant `sub` (a sub-organisation of `parent`) forbids its parent organisation's users;
/// a `@cross_tenant` permit shares documents marked `shared`. The decision denies; the plan
/// allows. (With `unless` instead of `when` the same fold makes the plan narrower.)
#[test]
fn review_a_row_tenants_forbid_reads_its_tenants_ancestors() {
    let pack = compile_with(
        cedar_schema(NESTED_TENANTS),
        MANIFEST,
        &[
            "permit (principal, action, resource) when { resource.tenant == principal.tenant };",
            "@cross_tenant(\"shared documents\")\npermit (principal, action, resource) when { resource.shared };",
        ],
    );
    let mut tenant_policies = TenantPolicies::default();
    tenant_policies.put(
        &pack,
        TenantPolicy::check(
            &pack,
            "sub",
            "no-parent",
            "forbid (principal, action, resource) when { resource.tenant in principal.tenant };",
        )
        .unwrap(),
    );
    let tenant = |id: &str, parents: &[&str]| {
        json!({"uid": {"type": "Tenant", "id": id}, "attrs": {},
               "parents": parents.iter().map(|p| json!({"type": "Tenant", "id": p})).collect::<Vec<_>>()})
    };
    let alice = json!({"uid": {"type": "User", "id": "parent/alice"},
                       "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "parent"}}}, "parents": []});
    let document = json!({"uid": {"type": "Document", "id": "sub/d"},
                          "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "sub"}}, "shared": true},
                          "parents": []});
    // What the service's planner sees: what `Pack::filter_roots` and the principal reach (the
    // tenants with forbids of their own are among its roots).
    let data = json!([
        alice,
        tenant("parent", &[]),
        tenant("sub", &["parent"]),
        document
    ]);
    let plan_entities = planner_slice(
        &pack,
        &tenant_policies,
        &data,
        &parse_uid("User::\"parent/alice\"").unwrap(),
    );
    // What the row's decision sees: reachable from the principal and the row.
    let row_entities = pack
        .parse_entities(
            &json!([
                alice,
                tenant("parent", &[]),
                tenant("sub", &["parent"]),
                document
            ])
            .to_string(),
        )
        .unwrap();
    let (outcome, rows) = plan_and_decisions(
        &pack,
        &tenant_policies,
        &plan_entities,
        &row_entities,
        "User::\"parent/alice\"",
        "Action::\"read\"",
        "Document",
        None,
        &["Document::\"sub/d\""],
    );
    assert_plan_matches(&outcome, &rows);
}

/// The service's planner entities (warden-service/src/filter.rs `planned`): everything
/// reachable (attributes and parents) from the principal, the pack's condition literals and
/// the principal's tenant's policies' literals. The differential test above hands the planner
/// the whole data instead, which hides what the planner cannot see.
fn planner_slice(
    pack: &Pack,
    tenant_policies: &TenantPolicies,
    data: &Value,
    principal: &EntityUid,
) -> Entities {
    fn refs(value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(object) => {
                if let Some(inner) = object.get("__entity") {
                    out.push((
                        inner["type"].as_str().unwrap().to_owned(),
                        inner["id"].as_str().unwrap().to_owned(),
                    ));
                } else {
                    object.values().for_each(|v| refs(v, out));
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let items = data.as_array().unwrap();
    let key = |item: &Value| {
        (
            item["uid"]["type"].as_str().unwrap().to_owned(),
            item["uid"]["id"].as_str().unwrap().to_owned(),
        )
    };
    let by_uid: std::collections::HashMap<(String, String), &Value> =
        items.iter().map(|item| (key(item), item)).collect();
    let uid_key = |uid: &EntityUid| (uid.type_name().to_string(), uid.id().unescaped().to_owned());
    let mut queue: Vec<(String, String)> = vec![uid_key(principal)];
    // What the service slices: the principal and `Pack::filter_roots`.
    let principal_tenant = pack.tenancy().and_then(|tenancy| {
        let full = pack.parse_entities(&data.to_string()).unwrap();
        warden_core::tenant_guard::tenant_of(tenancy, principal, &full)
            .ok()
            .map(|tenant| tenant.id().unescaped().to_owned())
    });
    queue.extend(
        pack.filter_roots(tenant_policies, principal_tenant.as_deref())
            .iter()
            .map(uid_key),
    );
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    while let Some(next) = queue.pop() {
        if !seen.insert(next.clone()) {
            continue;
        }
        let Some(item) = by_uid.get(&next) else {
            continue;
        };
        out.push((*item).clone());
        let mut found = Vec::new();
        refs(&item["attrs"], &mut found);
        for parent in item["parents"].as_array().into_iter().flatten() {
            found.push((
                parent["type"].as_str().unwrap().to_owned(),
                parent["id"].as_str().unwrap().to_owned(),
            ));
        }
        queue.extend(found);
    }
    pack.parse_entities(&Value::Array(out).to_string()).unwrap()
}

fn extended_atom() -> impl Strategy<Value = String> {
    prop_oneof![
        atom(),
        Just("resource.owner != principal".to_owned()),
        Just("resource has reviewer && resource.reviewer != principal".to_owned()),
        Just(
            "(if resource has reviewer then resource.reviewer == principal else resource.archived)"
                .to_owned()
        ),
        Just("!(resource has reviewer)".to_owned()),
        Just("resource is Document".to_owned()),
        Just("resource in [Folder::\"f0\", Folder::\"f2\"]".to_owned()),
        Just("[Document::\"d1\", Document::\"d2\"].contains(resource)".to_owned()),
        Just("resource.tenant != principal.tenant".to_owned()),
        Just("principal.tenant == resource.tenant".to_owned()),
        (0..TENANTS).prop_map(|t| format!("resource.tenant != Tenant::\"t{t}\"")),
        (0..TENANTS).prop_map(|t| format!("resource.tenant in Tenant::\"t{t}\"")),
        Just("resource.tenant.plan == \"pro\"".to_owned()),
        (0..4i64).prop_map(|n| format!("resource.level != {n}")),
        (0..4i64).prop_map(|n| format!("resource.level == {n}")),
        Just("resource.level == principal.level".to_owned()),
        Just("context.n == resource.level".to_owned()),
        Just("resource.archived == false".to_owned()),
        Just("(resource.level > 1) == true".to_owned()),
        Just("resource.tags.containsAll([\"t0\"])".to_owned()),
        Just("[\"c0\"].contains(resource.classification)".to_owned()),
        Just("(if context.n > 1 then resource.archived else !resource.archived)".to_owned()),
        Just("Folder::\"f0\" in Folder::\"f1\"".to_owned()),
        Just("resource in resource.owner.tenant".to_owned()),
        Just("principal == User::\"u0\"".to_owned()),
    ]
}

fn extended_condition() -> impl Strategy<Value = String> {
    extended_atom().prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

fn extended_policy() -> impl Strategy<Value = String> {
    (
        prop_oneof![3 => Just("permit"), 2 => Just("forbid")],
        prop::bool::weighted(0.3),
        scope(),
        prop::option::weighted(0.85, extended_condition()),
        prop::option::weighted(0.15, extended_condition()),
    )
        .prop_map(|(effect, cross, scope, when, unless)| {
            let annotation = if cross && effect == "permit" {
                "@cross_tenant(\"shared\")\n"
            } else {
                ""
            };
            let when = when.map(|c| format!(" when {{ {c} }}")).unwrap_or_default();
            let unless = unless
                .map(|c| format!(" unless {{ {c} }}"))
                .unwrap_or_default();
            format!("{annotation}{effect} {scope}{when}{unless};")
        })
}

fn extended_world() -> impl Strategy<Value = World> {
    (
        world(),
        prop::collection::vec(extended_policy(), 1..8),
        prop::collection::vec((0..TENANTS, extended_policy()), 0..5),
    )
        .prop_map(|(mut world, policies, tenant_policies)| {
            world.policies = policies;
            world.tenant_policies = tenant_policies;
            world
        })
}

fn compiles(schema: &str, manifest: &str, policies: &[String]) -> Option<Pack> {
    let text: String = policies
        .iter()
        .enumerate()
        .map(|(i, policy)| format!("@id(\"p{i}\")\n{policy}\n"))
        .collect();
    let sources = PackSources {
        policy_files: vec![SourceFile::new("policies.cedar", text)],
        schema: Some(SchemaSource {
            file: SourceFile::new("schema.cedarschema", schema.to_owned()),
            format: SchemaFormat::CedarSchema,
        }),
        manifest: Some(SourceFile::new("pack.toml", manifest.to_owned())),
    };
    Pack::compile(&sources).ok().map(|compiled| compiled.pack)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// More of Cedar (negated comparisons, `is`, `in` sets, ids, `if`, the tenant attribute
    /// compared and tested with `in`, attributes of the tenant, refused residuals), more
    /// forbids and cross-tenant permits, and the planner given the entities the service gives
    /// it (the principal's slice), not the whole data. A refused plan is fine; a plan that
    /// disagrees with a decision is not.
    #[test]
    fn review_plans_from_the_principals_slice_allow_exactly_what_decisions_allow(world in extended_world()) {
        let Some(pack) = compiles(SCHEMA, MANIFEST, &world.policies) else {
            // A generated policy the strict validator refuses; not the planner's business.
            return Ok(());
        };
        let data = world.entities_json();
        let entities = pack.parse_entities(&data.to_string()).unwrap();
        let mut tenant_policies = TenantPolicies::default();
        for (i, (tenant, text)) in world.tenant_policies.iter().enumerate() {
            if let Ok(policy) = TenantPolicy::check(&pack, &format!("t{tenant}"), &format!("tp{i}"), text) {
                tenant_policies.put(&pack, policy);
            }
        }
        let document = pack.type_name("Document").unwrap();
        let context = json!({"n": world.n});
        for u in 0..USERS {
            let principal = parse_uid(&format!("User::\"u{u}\"")).unwrap();
            let slice = planner_slice(&pack, &tenant_policies, &data, &principal);
            for action in ["read", "edit"] {
                let action_uid = parse_uid(&format!("Action::\"{action}\"")).unwrap();
                let Ok(plan) = pack.filter_plan(&FilterQuery {
                    principal: &principal,
                    action: &action_uid,
                    resource_type: &document,
                    context: Some(context.clone()),
                    entities: &slice,
                    tenant_policies: &tenant_policies,
                    served_tenants: None,
                }) else {
                    continue;
                };
                for d in 0..DOCUMENTS {
                    let resource = parse_uid(&format!("Document::\"d{d}\"")).unwrap();
                    let expected = allowed(&pack, &tenant_policies, &entities, &principal, action, &resource, context.clone());
                    prop_assert_eq!(
                        holds(&plan.outcome, &resource, &entities),
                        expected,
                        "{} {} {}: plan {}\npolicies {:#?}\ntenant policies {:#?}",
                        principal, action, resource,
                        match &plan.outcome { PlanOutcome::Conditional(c) => c.to_string(), other => format!("{other:?}") },
                        world.policies, world.tenant_policies
                    );
                }
            }
        }
    }
}

const SMALL: &str = r#"
entity Tenant { plan: String, locked?: Bool };
entity Folder in [Folder] { tenant: Tenant };
entity User { tenant: Tenant, level: Long };
entity Document in [Folder] { tenant: Tenant, shared: Bool, level: Long };
action read appliesTo { principal: [User], resource: [Document, Tenant] };
"#;

fn small_data(extra: &[Value]) -> Value {
    let mut all = vec![
        json!({"uid": {"type": "Tenant", "id": "acme"}, "attrs": {"plan": "pro"}, "parents": []}),
        json!({"uid": {"type": "Tenant", "id": "globex"}, "attrs": {"plan": "free"}, "parents": []}),
        json!({"uid": {"type": "Tenant", "id": "initech"}, "attrs": {"plan": "pro", "locked": true}, "parents": []}),
        json!({"uid": {"type": "User", "id": "acme/alice"},
               "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}, "level": 3}, "parents": []}),
    ];
    all.extend(extra.iter().cloned());
    Value::Array(all)
}

fn doc(id: &str, tenant: &str, shared: bool, folders: &[&str]) -> Value {
    json!({"uid": {"type": "Document", "id": id},
           "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": tenant}}, "shared": shared, "level": 1},
           "parents": folders.iter().map(|f| json!({"type": "Folder", "id": f})).collect::<Vec<_>>()})
}

/// HELD: entity ids with quotes, backslashes, `::`, slashes and non-ASCII in `resource ==`,
/// `[…].contains(resource)` and `resource in Folder::…` are written unescaped in `id_in` and
/// `member_of`, and match the rows they name (no more, no fewer).
#[test]
fn review_entity_ids_with_special_characters_match_exactly() {
    let pack = compile_with(
        cedar_schema(SMALL),
        MANIFEST,
        &[
            r#"permit (principal, action, resource is Document) when { resource == Document::"acme/q\"uote" };"#,
            r#"permit (principal, action, resource is Document) when { [Document::"acme/back\\slash", Document::"acme/é::x"].contains(resource) };"#,
            r#"permit (principal, action, resource is Document) when { resource in Folder::"acme/f\"1" };"#,
            r#"forbid (principal, action, resource is Document) when { resource == Document::"acme/in \"f\" but forbidden" };"#,
        ],
    );
    let folder = json!({"uid": {"type": "Folder", "id": "acme/f\"1"},
                        "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}, "parents": []});
    let ids = [
        "acme/q\"uote",
        "acme/q\\\"uote",
        "acme/back\\slash",
        "acme/back\\\\slash",
        "acme/é::x",
        "acme/in \"f\" but forbidden",
        "acme/in f",
        "acme/plain",
    ];
    let mut extra = vec![folder];
    for id in ids {
        let folders: &[&str] = if id.starts_with("acme/in") {
            &["acme/f\"1"]
        } else {
            &[]
        };
        extra.push(doc(id, "acme", false, folders));
    }
    let entities = pack
        .parse_entities(&small_data(&extra).to_string())
        .unwrap();
    let rows: Vec<String> = ids
        .iter()
        .map(|id| format!("Document::{}", Value::String((*id).to_owned())))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let (outcome, rows) = plan_and_decisions(
        &pack,
        &TenantPolicies::default(),
        &entities,
        &entities,
        "User::\"acme/alice\"",
        "Action::\"read\"",
        "Document",
        None,
        &rows,
    );
    assert!(rows.iter().filter(|(_, _, decided)| *decided).count() >= 3);
    assert_plan_matches(&outcome, &rows);
}

/// HELD: the resource type is the tenant type (`TenantKey::Itself`): inside (`id_in`), across
/// through a marked permit, the row tenant's own forbid, and one that errors (overflow: Cedar
/// skips it, Warden's decision denies).
#[test]
fn review_the_tenant_type_as_the_resource() {
    let pack = compile_with(
        cedar_schema(SMALL),
        MANIFEST,
        &[
            "permit (principal, action, resource is Tenant) when { resource == principal.tenant };",
            "@cross_tenant(\"pro tenants are listed\")\npermit (principal, action, resource is Tenant) when { resource.plan == \"pro\" };",
        ],
    );
    let mut tenant_policies = TenantPolicies::default();
    // initech hides itself when locked; globex's forbid overflows for every principal.
    tenant_policies.put(
        &pack,
        TenantPolicy::check(
            &pack,
            "initech",
            "hide",
            "forbid (principal, action, resource) when { resource has locked && resource.locked };",
        )
        .unwrap(),
    );
    tenant_policies.put(
        &pack,
        TenantPolicy::check(&pack, "globex", "broken", "forbid (principal, action, resource) when { principal.level * 9223372036854775807 > 0 };").unwrap(),
    );
    let entities = pack.parse_entities(&small_data(&[]).to_string()).unwrap();
    let (outcome, rows) = plan_and_decisions(
        &pack,
        &tenant_policies,
        &entities,
        &entities,
        "User::\"acme/alice\"",
        "Action::\"read\"",
        "Tenant",
        None,
        &[
            "Tenant::\"acme\"",
            "Tenant::\"globex\"",
            "Tenant::\"initech\"",
        ],
    );
    assert_plan_matches(&outcome, &rows);
}

/// HELD: a tenant forbid that errors (integer overflow) denies, inside the principal's
/// tenant and for rows of another tenant reached by a `@cross_tenant` permit, pinned to named
/// tenants or not.
#[test]
fn review_an_erroring_tenant_forbid_denies_in_every_branch() {
    for marked in [
        "@cross_tenant(\"shared\")\npermit (principal, action, resource is Document) when { resource.shared };",
        "@cross_tenant(\"shared\")\npermit (principal, action, resource is Document) when { resource.shared && (resource.tenant == Tenant::\"globex\" || resource.tenant == Tenant::\"initech\") };",
    ] {
        let pack = compile_with(
            cedar_schema(SMALL),
            MANIFEST,
            &[
                "permit (principal, action, resource is Document) when { resource.tenant == principal.tenant };",
                marked,
            ],
        );
        let mut tenant_policies = TenantPolicies::default();
        for tenant in ["acme", "globex"] {
            tenant_policies.put(
                &pack,
                TenantPolicy::check(&pack, tenant, "broken", "forbid (principal, action, resource is Document) when { principal.level * 9223372036854775807 > 0 };").unwrap(),
            );
        }
        let extra = [
            doc("acme/a", "acme", true, &[]),
            doc("globex/g", "globex", true, &[]),
            doc("initech/i", "initech", true, &[]),
        ];
        let entities = pack
            .parse_entities(&small_data(&extra).to_string())
            .unwrap();
        let principal = parse_uid("User::\"acme/alice\"").unwrap();
        let read = parse_uid("Action::\"read\"").unwrap();
        let document = pack.type_name("Document").unwrap();
        // Partial evaluation knows the forbid errors (no residual): the plan is made.
        pack.filter_plan(&FilterQuery {
            principal: &principal,
            action: &read,
            resource_type: &document,
            context: None,
            entities: &entities,
            tenant_policies: &tenant_policies,
            served_tenants: None,
        })
        .unwrap();
        let (outcome, rows) = plan_and_decisions(
            &pack,
            &tenant_policies,
            &entities,
            &entities,
            "User::\"acme/alice\"",
            "Action::\"read\"",
            "Document",
            None,
            &[
                "Document::\"acme/a\"",
                "Document::\"globex/g\"",
                "Document::\"initech/i\"",
            ],
        );
        assert_plan_matches(&outcome, &rows);
    }
}

/// FINDING (narrower, availability): a cross-tenant permit that names its tenant and reads
/// that tenant's data (`resource.tenant == Tenant::"initech" && resource.tenant.plan == "pro"`)
/// is refused: docs/filtering.md says named tenants are planned with the tenant known, but
/// `tenant_plan` first translates every marked permit with the tenant unknown
/// (`any(&marked, &open)?`, filter/plan.rs) to find the names, and that translation refuses
/// `resource.tenant.plan`.
#[test]
fn review_a_named_tenant_cross_tenant_permit_may_read_that_tenants_data() {
    let pack = compile_with(
        cedar_schema(SMALL),
        MANIFEST,
        &[
            "permit (principal, action, resource is Document) when { resource.tenant == principal.tenant };",
            "@cross_tenant(\"initech shares on its paid plan\")\npermit (principal, action, resource is Document) when { resource.tenant == Tenant::\"initech\" && resource.tenant.plan == \"pro\" && resource.shared };",
        ],
    );
    let extra = [
        doc("acme/a", "acme", false, &[]),
        doc("initech/i", "initech", true, &[]),
    ];
    let entities = pack
        .parse_entities(&small_data(&extra).to_string())
        .unwrap();
    let (outcome, rows) = plan_and_decisions(
        &pack,
        &TenantPolicies::default(),
        &entities,
        &entities,
        "User::\"acme/alice\"",
        "Action::\"read\"",
        "Document",
        None,
        &["Document::\"acme/a\"", "Document::\"initech/i\""],
    );
    assert_plan_matches(&outcome, &rows);
}

/// FINDING (narrower, availability across tenants): one tenant's forbid that reads its own
/// tenant entity (`resource.tenant.locked`, a valid tenant policy) makes every other tenant's
/// cross-tenant plan fail: across tenants without names, that forbid is translated with the
/// tenant known, `get_attr` (filter/residual.rs) looks the tenant up in the planner's
/// entities, the principal's slice, which does not hold another tenant: 422 for every
/// principal of every other tenant (the resource search falls back to a decision per row).
#[test]
fn review_one_tenants_forbid_does_not_refuse_everyone_elses_plans() {
    let pack = compile_with(
        cedar_schema(SMALL),
        MANIFEST,
        &[
            "permit (principal, action, resource is Document) when { resource.tenant == principal.tenant };",
            "@cross_tenant(\"shared\")\npermit (principal, action, resource is Document) when { resource.shared };",
        ],
    );
    let mut tenant_policies = TenantPolicies::default();
    tenant_policies.put(
        &pack,
        TenantPolicy::check(&pack, "initech", "locked", "forbid (principal, action, resource is Document) when { resource.tenant has locked && resource.tenant.locked };").unwrap(),
    );
    let data = small_data(&[
        doc("acme/a", "acme", false, &[]),
        doc("initech/i", "initech", true, &[]),
    ]);
    let entities = pack.parse_entities(&data.to_string()).unwrap();
    let principal = parse_uid("User::\"acme/alice\"").unwrap();
    let slice = planner_slice(&pack, &tenant_policies, &data, &principal);
    let (outcome, rows) = plan_and_decisions(
        &pack,
        &tenant_policies,
        &slice,
        &entities,
        "User::\"acme/alice\"",
        "Action::\"read\"",
        "Document",
        None,
        &["Document::\"acme/a\"", "Document::\"initech/i\""],
    );
    assert_plan_matches(&outcome, &rows);
}

/// FINDING (broader, with [tenancy]): the same common-type shape on the tenant type, listed
/// as the resource (`TenantKey::Itself` needs no tenant attribute, so the plan is made): the
/// tenant's own "suspended" forbid is folded away.
#[test]
fn review_a_common_type_shape_on_the_tenant_type_keeps_a_has_forbid() {
    let schema = json_schema(json!({
        "": {
            "commonTypes": {
                "TenantShape": {"type": "Record", "attributes": {
                    "suspended": {"type": "Boolean", "required": false},
                }},
            },
            "entityTypes": {
                "Tenant": {"shape": {"type": "TenantShape"}},
                "User": {"shape": {"type": "Record", "attributes": {
                    "tenant": {"type": "Entity", "name": "Tenant"},
                }}},
            },
            "actions": {"view": {"appliesTo": {
                "principalTypes": ["User"], "resourceTypes": ["Tenant"],
            }}},
        }
    }));
    let pack = compile_with(
        schema,
        MANIFEST,
        &[
            "permit (principal, action, resource) when { resource == principal.tenant };",
            "forbid (principal, action, resource) when { resource has suspended };",
        ],
    );
    let entities = pack
        .parse_entities(
            &json!([
                {"uid": {"type": "Tenant", "id": "acme"}, "attrs": {"suspended": true}, "parents": []},
                {"uid": {"type": "User", "id": "acme/alice"},
                 "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}, "parents": []},
            ])
            .to_string(),
        )
        .unwrap();
    let (outcome, rows) = plan_and_decisions(
        &pack,
        &TenantPolicies::default(),
        &entities,
        &entities,
        "User::\"acme/alice\"",
        "Action::\"view\"",
        "Tenant",
        None,
        &["Tenant::\"acme\""],
    );
    assert_plan_matches(&outcome, &rows);
}

const OPTIONAL_TENANT: &str = r#"
entity Tenant { plan: String };
entity User { tenant?: Tenant, level: Long };
entity Document { tenant?: Tenant, shared: Bool };
action read appliesTo { principal: [User], resource: [Document] };
"#;

/// HELD: an optional tenant attribute (rows without a tenant are never listed, inside or
/// across), a principal without a tenant (always denied; a resource type without a tenant
/// attribute is refused by the pack itself), and the limit of tenants with forbids written out (64 planned exactly,
/// 65 refused).
#[test]
fn review_optional_and_missing_tenants_and_the_forbid_limit() {
    let pack = compile_with(
        cedar_schema(OPTIONAL_TENANT),
        MANIFEST,
        &[
            "permit (principal, action, resource);",
            "@cross_tenant(\"shared\")\npermit (principal, action, resource is Document) when { resource.shared };",
        ],
    );
    let mut data = vec![
        json!({"uid": {"type": "User", "id": "t0/alice"},
               "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "t0"}}, "level": 1}, "parents": []}),
        json!({"uid": {"type": "User", "id": "nobody"}, "attrs": {"level": 1}, "parents": []}),
        json!({"uid": {"type": "Document", "id": "loose"}, "attrs": {"shared": true}, "parents": []}),
    ];
    let mut tenant_policies = TenantPolicies::default();
    let mut rows = vec!["Document::\"loose\"".to_owned()];
    for t in 0..65 {
        data.push(json!({"uid": {"type": "Tenant", "id": format!("t{t}")}, "attrs": {"plan": "pro"}, "parents": []}));
        for shared in [true, false] {
            let id = format!("t{t}/{shared}");
            data.push(json!({"uid": {"type": "Document", "id": id},
                             "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": format!("t{t}")}}, "shared": shared},
                             "parents": []}));
            rows.push(format!("Document::\"{id}\""));
        }
    }
    let entities = pack
        .parse_entities(&Value::Array(data).to_string())
        .unwrap();
    // 64 other tenants with forbids (t1..t64; t0 is alice's own), every third one forbidding.
    for t in 1..65 {
        let text = if t % 3 == 0 {
            "forbid (principal, action, resource);"
        } else {
            "forbid (principal, action, resource) when { principal.level > 5 };"
        };
        tenant_policies.put(
            &pack,
            TenantPolicy::check(&pack, &format!("t{t}"), "f", text).unwrap(),
        );
    }
    let rows_ref: Vec<&str> = rows.iter().map(String::as_str).collect();
    let (outcome, checked) = plan_and_decisions(
        &pack,
        &tenant_policies,
        &entities,
        &entities,
        "User::\"t0/alice\"",
        "Action::\"read\"",
        "Document",
        None,
        &rows_ref,
    );
    assert_plan_matches(&outcome, &checked);
    let (outcome, checked) = plan_and_decisions(
        &pack,
        &tenant_policies,
        &entities,
        &entities,
        "User::\"nobody\"",
        "Action::\"read\"",
        "Document",
        None,
        &rows_ref,
    );
    assert_eq!(outcome, PlanOutcome::AlwaysDenied);
    assert_plan_matches(&outcome, &checked);
    // One more tenant with a forbid: refused, not guessed.
    tenant_policies.put(
        &pack,
        TenantPolicy::check(
            &pack,
            "t0",
            "f",
            "forbid (principal, action, resource) when { principal.level > 5 };",
        )
        .unwrap(),
    );
    tenant_policies.put(
        &pack,
        TenantPolicy::check(&pack, "t65", "f", "forbid (principal, action, resource);").unwrap(),
    );
    let principal = parse_uid("User::\"t0/alice\"").unwrap();
    let read = parse_uid("Action::\"read\"").unwrap();
    let document = pack.type_name("Document").unwrap();
    let refused = pack.filter_plan(&FilterQuery {
        principal: &principal,
        action: &read,
        resource_type: &document,
        context: None,
        entities: &entities,
        tenant_policies: &tenant_policies,
        served_tenants: None,
    });
    assert!(
        matches!(refused, Err(FilterError::TooManyTenants { count: 65, .. })),
        "{refused:?}"
    );
}

/// The same question always gets the same answer: a policy that cannot be a filter refuses
/// the plan exactly when it matters (no other permit holds for every resource), whatever
/// order partial evaluation reports the policies in, and the condition is the same each time.
#[test]
fn the_same_question_always_gets_the_same_plan() {
    let sources = warden_packdir::read_pack(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/saas"
    )))
    .unwrap();
    let mut sources = sources;
    sources.policy_files.push(SourceFile::new(
        "like.cedar",
        "@id(\"internal-delete\")\npermit (principal, action == Action::\"delete\", resource is Document) when { resource.tenant == principal.tenant && resource.classification like \"int*\" };\n".to_owned(),
    ));
    let pack = Pack::compile(&sources).unwrap().pack;
    let (_, entities) = example_pack();
    let document = pack.type_name("Document").unwrap();
    let delete = parse_uid("Action::\"delete\"").unwrap();
    let read = parse_uid("Action::\"read\"").unwrap();
    let plan = |principal: &str, action: &EntityUid| {
        let principal = parse_uid(principal).unwrap();
        pack.filter_plan(&FilterQuery {
            principal: &principal,
            action,
            resource_type: &document,
            context: None,
            entities: &entities,
            tenant_policies: &TenantPolicies::default(),
            served_tenants: None,
        })
    };
    let first_read = plan("User::\"acme/carol\"", &read).unwrap().outcome;
    for _ in 0..30 {
        // An admin may delete every document of the tenant: the `like` permit is irrelevant.
        assert!(plan("User::\"acme/alice\"", &delete).is_ok());
        // A viewer's delete rests on it: refused, naming it, every time.
        match plan("User::\"acme/carol\"", &delete) {
            Err(FilterError::Unsupported { policy, .. }) => assert_eq!(policy, "internal-delete"),
            other => panic!("expected the like policy refused, got {other:?}"),
        }
        assert_eq!(
            plan("User::\"acme/carol\"", &read).unwrap().outcome,
            first_read
        );
    }
}

/// A replica that serves some tenants admits no row of the others, even through a
/// `@cross_tenant` permit (a decision about them is refused there).
#[test]
fn a_replica_serving_some_tenants_admits_no_other_tenants_rows() {
    let (pack, entities) = example_pack();
    let document = pack.type_name("Document").unwrap();
    let read = parse_uid("Action::\"read\"").unwrap();
    let carol = parse_uid("User::\"acme/carol\"").unwrap();
    let plan = |served: Option<&BTreeSet<String>>| {
        pack.filter_plan(&FilterQuery {
            principal: &carol,
            action: &read,
            resource_type: &document,
            context: None,
            entities: &entities,
            tenant_policies: &TenantPolicies::default(),
            served_tenants: served,
        })
        .unwrap()
        .outcome
    };
    let handbook = parse_uid("Document::\"public/doc2\"").unwrap();
    let everywhere = plan(None);
    assert!(holds(&everywhere, &handbook, &entities));
    let acme_only: BTreeSet<String> = ["acme".to_owned()].into();
    let served = plan(Some(&acme_only));
    assert!(!holds(&served, &handbook, &entities), "{served:?}");
    let own = parse_uid("Document::\"acme/doc0\"").unwrap();
    assert_eq!(
        holds(&served, &own, &entities),
        holds(&everywhere, &own, &entities)
    );
}

/// Subject plans (the principal unknown) admit exactly the principals a decision allows.
fn compare_subjects(
    pack: &Pack,
    tenant_policies: &TenantPolicies,
    entities: &Entities,
    principals: &[String],
    actions: &[&str],
    resources: &[String],
    context: &Value,
) -> Result<usize, TestCaseError> {
    let user = pack.type_name("User").unwrap();
    let mut planned = 0;
    for resource in resources {
        let resource = parse_uid(resource).unwrap();
        for action in actions {
            let action_uid = parse_uid(&format!("Action::\"{action}\"")).unwrap();
            let outcome = pack.subject_plan(&warden_core::filter::SubjectQuery {
                resource: &resource,
                action: &action_uid,
                principal_type: &user,
                context: Some(context.clone()),
                entities,
                tenant_policies,
            });
            let Ok(outcome) = outcome else {
                continue;
            };
            planned += 1;
            for principal in principals {
                let principal = parse_uid(principal).unwrap();
                let expected = allowed(
                    pack,
                    tenant_policies,
                    entities,
                    &principal,
                    action,
                    &resource,
                    context.clone(),
                );
                prop_assert_eq!(
                    holds(&outcome, &principal, entities),
                    expected,
                    "{} {} {}: subject plan {:?}",
                    principal,
                    action,
                    resource,
                    outcome
                );
            }
        }
    }
    Ok(planned)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn subject_plans_admit_exactly_the_principals_decisions_allow(world in world()) {
        let pack = compile(SCHEMA, MANIFEST, &world.policies);
        let entities = pack.parse_entities(&world.entities_json().to_string()).unwrap();
        let mut tenant_policies = TenantPolicies::default();
        for (i, (tenant, text)) in world.tenant_policies.iter().enumerate() {
            if let Ok(policy) = TenantPolicy::check(&pack, &format!("t{tenant}"), &format!("tp{i}"), text) {
                tenant_policies.put(&pack, policy);
            }
        }
        let principals: Vec<String> = (0..USERS).map(|u| format!("User::\"u{u}\"")).collect();
        let resources: Vec<String> = (0..DOCUMENTS).step_by(4).map(|d| format!("Document::\"d{d}\"")).collect();
        compare_subjects(
            &pack,
            &tenant_policies,
            &entities,
            &principals,
            &["read", "edit"],
            &resources,
            &json!({"n": world.n}),
        )?;
    }
}

#[test]
fn the_example_packs_subject_plans_match_decisions() {
    let (pack, entities) = example_pack();
    let principals: Vec<String> = entities
        .iter()
        .filter(|e| e.uid().type_name().to_string() == "User")
        .map(|e| e.uid().to_string())
        .collect();
    let resources: Vec<String> = entities
        .iter()
        .filter(|e| e.uid().type_name().to_string() == "Document")
        .map(|e| e.uid().to_string())
        .collect();
    for context in [json!({}), json!({"support_ticket": "SUP-1"})] {
        let planned = compare_subjects(
            &pack,
            &TenantPolicies::default(),
            &entities,
            &principals,
            &["read", "edit", "delete", "share"],
            &resources,
            &context,
        )
        .unwrap();
        assert!(planned > resources.len() * 3, "{planned} subject plans");
    }
}

// ---------------------------------------------------------------------------------------------
// Second review (#21): subject plans (the principal unknown) against per-principal decisions,
// for every kind of principal type the tenant guard knows: a required tenant attribute, an
// optional one, the tenant type itself, and none. Each `review2_*` test that fails is a
// finding.
// ---------------------------------------------------------------------------------------------

/// How the searched principal type `P` carries its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Required,
    Optional,
    TenantType,
    NoTenant,
}

fn kind_schema(kind: Kind) -> (String, String) {
    // (schema, manifest); the tenant type is `T` except for `TenantType`, where it is `P`.
    let tenant = if kind == Kind::TenantType { "P" } else { "T" };
    let principal = match kind {
        Kind::Required => "entity P in [Role] { tenant: T, level: Long, dept: String };".to_owned(),
        Kind::Optional => {
            "entity P in [Role] { tenant?: T, level: Long, dept: String };".to_owned()
        }
        Kind::TenantType => {
            "entity P in [Role] { level: Long, dept: String, plan: String };".to_owned()
        }
        Kind::NoTenant => "entity P in [Role] { level: Long, dept: String };".to_owned(),
    };
    let schema = format!(
        r#"
entity T {{ plan: String }};
entity Role in [Role];
{principal}
entity Document {{ tenant: {tenant}, owner: P, level: Long, shared: Bool, tags: Set<String> }};
action read, edit appliesTo {{ principal: [P], resource: [Document], context: {{ n: Long }} }};
"#
    );
    let manifest = format!(
        "name = \"subjects\"\n[tenancy]\nattribute = \"tenant\"\ntenant_type = \"{tenant}\"\n"
    );
    (schema, manifest)
}

const KIND_TENANTS: usize = 3;
const KIND_PRINCIPALS: usize = 7;
const KIND_DOCUMENTS: usize = 6;
const BIG: &str = "4611686018427387904";

fn kind_atom(kind: Kind) -> BoxedStrategy<String> {
    let tenant = if kind == Kind::TenantType { "P" } else { "T" };
    let mut atoms: Vec<BoxedStrategy<String>> = vec![
        (0..4i64)
            .prop_map(|n| format!("principal.level > {n}"))
            .boxed(),
        Just("resource.level <= principal.level".to_owned()).boxed(),
        (0..ROLES)
            .prop_map(|r| format!("principal in Role::\"r{r}\""))
            .boxed(),
        Just("resource.owner == principal".to_owned()).boxed(),
        Just("principal.dept == \"d0\"".to_owned()).boxed(),
        Just("resource.shared".to_owned()).boxed(),
        Just("resource.tenant.plan == \"pro\"".to_owned()).boxed(),
        (0..KIND_TENANTS)
            .prop_map(move |t| format!("resource.tenant == {tenant}::\"t{t}\""))
            .boxed(),
        (0..3i64).prop_map(|n| format!("context.n > {n}")).boxed(),
        Just("resource.tags.contains(\"t0\")".to_owned()).boxed(),
        Just("(if principal.level > 2 then resource.shared else true)".to_owned()).boxed(),
        // Errors for some resources (overflow), known to partial evaluation.
        Just(format!("resource.level * {BIG} > 0")).boxed(),
    ];
    match kind {
        Kind::Required => {
            atoms.push(Just("resource.tenant == principal.tenant".to_owned()).boxed());
            atoms.push(Just("principal.tenant.plan == \"pro\"".to_owned()).boxed());
            atoms.push(
                (0..KIND_TENANTS)
                    .prop_map(|t| format!("principal.tenant == T::\"t{t}\""))
                    .boxed(),
            );
            atoms.push(
                (0..KIND_TENANTS)
                    .prop_map(|t| {
                        format!("(principal.tenant == T::\"t{t}\" && resource.level * {BIG} > 0)")
                    })
                    .boxed(),
            );
            atoms.push(
                (0..KIND_TENANTS)
                    .prop_map(|t| {
                        format!("(principal.tenant != T::\"t{t}\" || resource.level * {BIG} > 0)")
                    })
                    .boxed(),
            );
        }
        Kind::Optional => {
            atoms.push(
                Just("principal has tenant && resource.tenant == principal.tenant".to_owned())
                    .boxed(),
            );
            atoms.push(Just("principal has tenant".to_owned()).boxed());
            atoms.push(
                Just("principal has tenant && principal.tenant.plan == \"pro\"".to_owned()).boxed(),
            );
            atoms.push(
                (0..KIND_TENANTS)
                    .prop_map(|t| {
                        format!("(principal has tenant && principal.tenant == T::\"t{t}\")")
                    })
                    .boxed(),
            );
            atoms.push(
                (0..KIND_TENANTS)
                    .prop_map(|t| {
                        format!("((principal has tenant && principal.tenant == T::\"t{t}\") && resource.level * {BIG} > 0)")
                    })
                    .boxed(),
            );
        }
        Kind::TenantType => {
            atoms.push(Just("resource.tenant == principal".to_owned()).boxed());
            atoms.push(Just("principal.plan == \"pro\"".to_owned()).boxed());
            atoms.push(
                (0..KIND_TENANTS)
                    .prop_map(|t| format!("principal == P::\"t{t}\""))
                    .boxed(),
            );
        }
        Kind::NoTenant => {}
    }
    proptest::strategy::Union::new(atoms).boxed()
}

fn kind_condition(kind: Kind) -> BoxedStrategy<String> {
    kind_atom(kind)
        .prop_recursive(2, 6, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
                inner.prop_map(|a| format!("!({a})")),
            ]
        })
        .boxed()
}

fn kind_policy(kind: Kind) -> BoxedStrategy<String> {
    (
        prop_oneof![3 => Just("permit"), 1 => Just("forbid")],
        prop::bool::weighted(0.35),
        prop_oneof![
            2 => Just("principal".to_owned()),
            1 => (0..ROLES).prop_map(|r| format!("principal in Role::\"r{r}\"")),
        ],
        prop_oneof![
            Just("action".to_owned()),
            Just("action == Action::\"read\"".to_owned()),
        ],
        prop::option::weighted(0.85, kind_condition(kind)),
        prop::option::weighted(0.15, kind_condition(kind)),
    )
        .prop_map(|(effect, cross, principal, action, when, unless)| {
            let annotation = if cross && effect == "permit" {
                "@cross_tenant(\"shared\")\n"
            } else {
                ""
            };
            let when = when.map(|c| format!(" when {{ {c} }}")).unwrap_or_default();
            let unless = unless
                .map(|c| format!(" unless {{ {c} }}"))
                .unwrap_or_default();
            format!("{annotation}{effect} ({principal}, {action}, resource){when}{unless};")
        })
        .boxed()
}

#[derive(Debug, Clone)]
struct KindWorld {
    kind: Kind,
    policies: Vec<String>,
    tenant_policies: Vec<(usize, String)>,
    /// Per principal: tenant (None = no tenant attribute, where optional), roles, level.
    principals: Vec<(Option<usize>, Vec<usize>, i64)>,
    /// Per document: tenant, owner, level, shared, tagged t0.
    documents: Vec<(usize, usize, i64, bool, bool)>,
    n: i64,
}

fn kind_world() -> impl Strategy<Value = KindWorld> {
    prop_oneof![
        3 => Just(Kind::Required),
        3 => Just(Kind::Optional),
        3 => Just(Kind::TenantType),
        1 => Just(Kind::NoTenant),
    ]
    .prop_flat_map(|kind| {
        (
            Just(kind),
            prop::collection::vec(kind_policy(kind), 1..7),
            prop::collection::vec((0..KIND_TENANTS, kind_policy(kind)), 0..4),
            prop::collection::vec(
                (
                    prop::option::weighted(0.8, 0..KIND_TENANTS),
                    prop::collection::vec(0..ROLES, 0..2),
                    0..5i64,
                ),
                KIND_PRINCIPALS,
            ),
            prop::collection::vec(
                (
                    0..KIND_TENANTS,
                    0..KIND_PRINCIPALS,
                    0..4i64,
                    any::<bool>(),
                    any::<bool>(),
                ),
                KIND_DOCUMENTS,
            ),
            0..3i64,
        )
    })
    .prop_map(
        |(kind, policies, tenant_policies, principals, documents, n)| KindWorld {
            kind,
            policies,
            tenant_policies,
            principals,
            documents,
            n,
        },
    )
}

impl KindWorld {
    fn tenant_type(&self) -> &'static str {
        if self.kind == Kind::TenantType {
            "P"
        } else {
            "T"
        }
    }

    /// Principal ids: `t<k>/p<i>` (the tenant's prefix), or the tenant's own id for the
    /// tenant type.
    fn principal_ids(&self) -> Vec<String> {
        match self.kind {
            Kind::TenantType => (0..KIND_TENANTS).map(|t| format!("t{t}")).collect(),
            _ => self
                .principals
                .iter()
                .enumerate()
                .map(|(i, (tenant, _, _))| format!("t{}/p{i}", tenant.unwrap_or(0)))
                .collect(),
        }
    }

    fn entities_json(&self) -> Value {
        let tenant_type = self.tenant_type();
        let mut all = Vec::new();
        all.push(json!({"uid": {"type": "Role", "id": "r0"}, "attrs": {}, "parents": [{"type": "Role", "id": "r1"}]}));
        for r in 1..ROLES {
            all.push(
                json!({"uid": {"type": "Role", "id": format!("r{r}")}, "attrs": {}, "parents": []}),
            );
        }
        let ids = self.principal_ids();
        match self.kind {
            Kind::TenantType => {
                for (t, id) in ids.iter().enumerate() {
                    let (_, roles, level) = &self.principals[t];
                    all.push(json!({
                        "uid": {"type": "P", "id": id},
                        "attrs": {"level": level, "dept": format!("d{}", t % 2), "plan": if t == 0 { "free" } else { "pro" }},
                        "parents": roles.iter().map(|r| json!({"type": "Role", "id": format!("r{r}")})).collect::<Vec<_>>(),
                    }));
                }
            }
            _ => {
                for t in 0..KIND_TENANTS {
                    all.push(json!({"uid": {"type": "T", "id": format!("t{t}")}, "attrs": {"plan": if t == 0 { "free" } else { "pro" }}, "parents": []}));
                }
                for (i, (tenant, roles, level)) in self.principals.iter().enumerate() {
                    let mut attrs = json!({"level": level, "dept": format!("d{}", i % 2)});
                    match (self.kind, tenant) {
                        (Kind::NoTenant, _) => {}
                        (Kind::Optional, None) => {}
                        (_, t) => {
                            attrs["tenant"] = json!({"__entity": {"type": "T", "id": format!("t{}", t.unwrap_or(0))}});
                        }
                    }
                    all.push(json!({
                        "uid": {"type": "P", "id": ids[i]},
                        "attrs": attrs,
                        "parents": roles.iter().map(|r| json!({"type": "Role", "id": format!("r{r}")})).collect::<Vec<_>>(),
                    }));
                }
            }
        }
        for (d, (tenant, owner, level, shared, tagged)) in self.documents.iter().enumerate() {
            let owner = &ids[owner % ids.len()];
            all.push(json!({
                "uid": {"type": "Document", "id": format!("t{tenant}/d{d}")},
                "attrs": {
                    "tenant": {"__entity": {"type": tenant_type, "id": format!("t{tenant}")}},
                    "owner": {"__entity": {"type": "P", "id": owner}},
                    "level": level,
                    "shared": shared,
                    "tags": if *tagged { vec!["t0"] } else { Vec::<&str>::new() },
                },
                "parents": [],
            }));
        }
        Value::Array(all)
    }
}

/// The subject plan for each resource and action against each principal's decision, with the
/// planner given `plan_entities`. Returns (plans made, plans refused).
#[allow(
    clippy::too_many_arguments,
    reason = "a test helper taking the question apart"
)]
fn compare_subjects_of(
    pack: &Pack,
    tenant_policies: &TenantPolicies,
    plan_entities: &dyn Fn(&EntityUid) -> Entities,
    entities: &Entities,
    principal_type: &str,
    principals: &[String],
    resources: &[String],
    context: &Value,
) -> Result<(usize, usize), TestCaseError> {
    let principal_type = pack.type_name(principal_type).unwrap();
    let (mut planned, mut refused) = (0, 0);
    for resource in resources {
        let resource = parse_uid(resource).unwrap();
        let known = plan_entities(&resource);
        for action in ["read", "edit"] {
            let action_uid = parse_uid(&format!("Action::\"{action}\"")).unwrap();
            let outcome = pack.subject_plan(&warden_core::filter::SubjectQuery {
                resource: &resource,
                action: &action_uid,
                principal_type: &principal_type,
                context: Some(context.clone()),
                entities: &known,
                tenant_policies,
            });
            let Ok(outcome) = outcome else {
                refused += 1;
                continue;
            };
            planned += 1;
            for principal in principals {
                let principal = parse_uid(principal).unwrap();
                let expected = allowed(
                    pack,
                    tenant_policies,
                    entities,
                    &principal,
                    action,
                    &resource,
                    context.clone(),
                );
                prop_assert_eq!(
                    holds(&outcome, &principal, entities),
                    expected,
                    "{} {} {}: subject plan {:?}",
                    principal,
                    action,
                    resource,
                    outcome
                );
            }
        }
    }
    Ok((planned, refused))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Subject plans for principal types with a required, an optional, no tenant attribute,
    /// and the tenant type itself; marked and unmarked permits, forbids, tenant policies,
    /// residuals that error for some resources behind `&&`/`||` on the principal's tenant.
    #[test]
    fn review2_subject_plans_for_every_kind_of_principal_type(world in kind_world()) {
        let (schema, manifest) = kind_schema(world.kind);
        let Some(pack) = compiles(&schema, &manifest, &world.policies) else {
            return Ok(());
        };
        let entities = pack.parse_entities(&world.entities_json().to_string()).unwrap();
        let mut tenant_policies = TenantPolicies::default();
        for (i, (tenant, text)) in world.tenant_policies.iter().enumerate() {
            if let Ok(policy) = TenantPolicy::check(&pack, &format!("t{tenant}"), &format!("tp{i}"), text) {
                tenant_policies.put(&pack, policy);
            }
        }
        let principals: Vec<String> = world
            .principal_ids()
            .iter()
            .map(|id| format!("P::{id:?}"))
            .collect();
        let resources: Vec<String> = (0..KIND_DOCUMENTS)
            .map(|d| format!("Document::\"t{}/d{d}\"", world.documents[d].0))
            .collect();
        // The planner gets what the service gives it: the resource's slice and the roots of
        // `Pack::filter_roots` for the resource's tenant.
        let data = world.entities_json();
        compare_subjects_of(
            &pack,
            &tenant_policies,
            &|resource| planner_slice(&pack, &tenant_policies, &data, resource),
            &entities,
            "P",
            &principals,
            &resources,
            &json!({"n": world.n}),
        )?;
    }
}

/// The subject plan for one question and, per principal, (principal, plan admits, decision
/// allows) where they differ.
fn subject_mismatches(
    pack: &Pack,
    tenant_policies: &TenantPolicies,
    entities: &Entities,
    principal_type: &str,
    action: &str,
    resource: &str,
    principals: &[&str],
) -> (PlanOutcome, Vec<(String, bool, bool)>) {
    let resource = parse_uid(resource).unwrap();
    let action_uid = parse_uid(&format!("Action::\"{action}\"")).unwrap();
    let outcome = pack
        .subject_plan(&warden_core::filter::SubjectQuery {
            resource: &resource,
            action: &action_uid,
            principal_type: &pack.type_name(principal_type).unwrap(),
            context: None,
            entities,
            tenant_policies,
        })
        .unwrap_or_else(|error| panic!("no subject plan: {error}"));
    let mut out = Vec::new();
    for principal in principals {
        let principal = parse_uid(principal).unwrap();
        let planned = holds(&outcome, &principal, entities);
        let decided = allowed(
            pack,
            tenant_policies,
            entities,
            &principal,
            action,
            &resource,
            json!({}),
        );
        if planned != decided {
            out.push((principal.to_string(), planned, decided));
        }
    }
    (outcome, out)
}

const PEOPLE: &str = r#"
entity Tenant { plan: String };
entity Role in [Role];
entity User in [Role] { tenant: Tenant, level: Long, manager?: User };
entity Document { tenant: Tenant, owner: User, level: Long, shared: Bool };
action read appliesTo { principal: [User], resource: [Document] };
action manage appliesTo { principal: [User], resource: [User] };
action list appliesTo { principal: [User, Tenant], resource: [Tenant] };
"#;

fn people_data() -> Value {
    let user = |id: &str, tenant: &str, level: i64, roles: &[&str], manager: Option<&str>| {
        let mut attrs =
            json!({"tenant": {"__entity": {"type": "Tenant", "id": tenant}}, "level": level});
        if let Some(manager) = manager {
            attrs["manager"] = json!({"__entity": {"type": "User", "id": manager}});
        }
        json!({"uid": {"type": "User", "id": id}, "attrs": attrs,
               "parents": roles.iter().map(|r| json!({"type": "Role", "id": r})).collect::<Vec<_>>()})
    };
    json!([
        {"uid": {"type": "Tenant", "id": "acme"}, "attrs": {"plan": "pro"}, "parents": []},
        {"uid": {"type": "Tenant", "id": "globex"}, "attrs": {"plan": "free"}, "parents": []},
        {"uid": {"type": "Tenant", "id": "public"}, "attrs": {"plan": "free"}, "parents": []},
        {"uid": {"type": "Role", "id": "admin"}, "attrs": {}, "parents": []},
        user("acme/alice", "acme", 3, &["admin"], None),
        user("acme/bob", "acme", 1, &[], Some("acme/alice")),
        user("acme/carl", "acme", 5, &[], Some("acme/bob")),
        user("globex/gina", "globex", 4, &["admin"], None),
        user("globex/gus", "globex", 0, &[], Some("acme/alice")),
        {"uid": {"type": "Document", "id": "acme/d"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}},
            "owner": {"__entity": {"type": "User", "id": "acme/bob"}}, "level": 2, "shared": true}, "parents": []},
        {"uid": {"type": "Document", "id": "public/p"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "public"}},
            "owner": {"__entity": {"type": "User", "id": "acme/alice"}}, "level": 2, "shared": true}, "parents": []},
    ])
}

const PEOPLE_USERS: [&str; 5] = [
    "User::\"acme/alice\"",
    "User::\"acme/bob\"",
    "User::\"acme/carl\"",
    "User::\"globex/gina\"",
    "User::\"globex/gus\"",
];

/// HELD: the resource of the principal's own type (`principal == resource`,
/// `resource.manager == principal`, `principal in resource`), and the tenant type as the
/// resource (`resource == principal.tenant`, a marked permit for `Tenant::"public"`), and
/// the tenant type as the principal: the subject plan admits exactly whom decisions allow.
#[test]
fn review2_principal_typed_and_tenant_resources() {
    let pack = compile_with(
        cedar_schema(PEOPLE),
        MANIFEST,
        &[
            "permit (principal, action == Action::\"manage\", resource) when { principal == resource || (resource has manager && resource.manager == principal) };",
            "permit (principal in Role::\"admin\", action == Action::\"manage\", resource) when { resource.tenant == principal.tenant && resource.level < principal.level };",
            "@cross_tenant(\"managers may manage their reports anywhere\")\npermit (principal, action == Action::\"manage\", resource) when { resource has manager && resource.manager == principal };",
            "forbid (principal, action == Action::\"manage\", resource) when { principal in resource && principal.level < 2 };",
            "permit (principal is User, action == Action::\"list\", resource) when { resource == principal.tenant };",
            "permit (principal is Tenant, action == Action::\"list\", resource) when { resource == principal };",
            "@cross_tenant(\"public listing\")\npermit (principal, action == Action::\"list\", resource) when { resource == Tenant::\"public\" };",
            "forbid (principal, action == Action::\"list\", resource) when { resource.plan == \"free\" && principal is User && principal.level == 0 };",
        ],
    );
    let entities = pack.parse_entities(&people_data().to_string()).unwrap();
    let mut tenant_policies = TenantPolicies::default();
    tenant_policies.put(
        &pack,
        TenantPolicy::check(
            &pack,
            "acme",
            "no-carl",
            "forbid (principal == User::\"acme/carl\", action, resource);",
        )
        .unwrap(),
    );
    for resource in PEOPLE_USERS {
        let (outcome, wrong) = subject_mismatches(
            &pack,
            &tenant_policies,
            &entities,
            "User",
            "manage",
            resource,
            &PEOPLE_USERS,
        );
        assert!(
            wrong.is_empty(),
            "manage {resource}: {wrong:?}; plan {outcome:?}"
        );
    }
    for resource in [
        "Tenant::\"acme\"",
        "Tenant::\"globex\"",
        "Tenant::\"public\"",
    ] {
        let (outcome, wrong) = subject_mismatches(
            &pack,
            &tenant_policies,
            &entities,
            "User",
            "list",
            resource,
            &PEOPLE_USERS,
        );
        assert!(
            wrong.is_empty(),
            "list {resource} by users: {wrong:?}; plan {outcome:?}"
        );
        let tenants = [
            "Tenant::\"acme\"",
            "Tenant::\"globex\"",
            "Tenant::\"public\"",
        ];
        let (outcome, wrong) = subject_mismatches(
            &pack,
            &tenant_policies,
            &entities,
            "Tenant",
            "list",
            resource,
            &tenants,
        );
        assert!(
            wrong.is_empty(),
            "list {resource} by tenants: {wrong:?}; plan {outcome:?}"
        );
    }
}

/// HELD: a forbid of the resource's tenant that errors (overflow) denies every principal,
/// inside the tenant and across it through a marked permit; one that errors only behind a
/// `principal.tenant == …` it never reaches (the `&&` short-circuit, inside `!` and `if`)
/// does not.
#[test]
fn review2_erroring_tenant_forbids_and_short_circuits() {
    for (forbid, denies_all) in [
        (
            "forbid (principal, action, resource is Document) when { resource.level * 9223372036854775807 > 0 };",
            true,
        ),
        (
            "forbid (principal, action, resource is Document) when { principal.tenant != Tenant::\"acme\" && resource.level * 9223372036854775807 > 0 };",
            false,
        ),
        (
            "forbid (principal, action, resource is Document) unless { principal.tenant == Tenant::\"acme\" || resource.level * 9223372036854775807 > 0 };",
            false,
        ),
        (
            "forbid (principal, action, resource is Document) when { !(principal.tenant != Tenant::\"acme\" && resource.level * 9223372036854775807 > 0) && principal.level > 4 };",
            false,
        ),
        (
            "forbid (principal, action, resource is Document) when { if principal.tenant == Tenant::\"acme\" then principal.level > 4 else resource.level * 9223372036854775807 > 0 };",
            false,
        ),
    ] {
        for marked in [true, false] {
            let mut policies = vec![
                "permit (principal, action == Action::\"read\", resource) when { resource.tenant == principal.tenant };",
            ];
            if marked {
                policies.push("@cross_tenant(\"shared\")\npermit (principal, action == Action::\"read\", resource) when { resource.shared };");
            }
            let pack = compile_with(cedar_schema(PEOPLE), MANIFEST, &policies);
            let mut tenant_policies = TenantPolicies::default();
            for tenant in ["acme", "public"] {
                tenant_policies.put(
                    &pack,
                    TenantPolicy::check(&pack, tenant, "f", &forbid.replace("acme", tenant))
                        .unwrap(),
                );
            }
            let entities = pack.parse_entities(&people_data().to_string()).unwrap();
            for resource in ["Document::\"acme/d\"", "Document::\"public/p\""] {
                let resource_uid = parse_uid(resource).unwrap();
                let outcome = pack.subject_plan(&warden_core::filter::SubjectQuery {
                    resource: &resource_uid,
                    action: &parse_uid("Action::\"read\"").unwrap(),
                    principal_type: &pack.type_name("User").unwrap(),
                    context: None,
                    entities: &entities,
                    tenant_policies: &tenant_policies,
                });
                let Ok(outcome) = outcome else {
                    // Refused (the residual's error is reached for some principals): the search
                    // decides each candidate. Not a disagreement.
                    continue;
                };
                if denies_all {
                    assert_eq!(outcome, PlanOutcome::AlwaysDenied, "{forbid}");
                }
                let (_, wrong) = subject_mismatches(
                    &pack,
                    &tenant_policies,
                    &entities,
                    "User",
                    "read",
                    resource,
                    &PEOPLE_USERS,
                );
                assert!(
                    wrong.is_empty(),
                    "{forbid} {resource}: {wrong:?}; plan {outcome:?}"
                );
            }
        }
    }
}
