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
