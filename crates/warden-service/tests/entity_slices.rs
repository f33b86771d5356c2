//! Issue #20's differential tests.
//!
//! 1. A decision made on its slice of the entity data (what `EntityGraph::slice` assembles)
//!    is the decision Cedar makes on the whole data: same outcome, reason, determining
//!    policies, errors and tenant-guard verdict, for the example pack and for a pack whose
//!    conditions follow attributes several entities deep, over randomly generated data.
//! 2. After a random sequence of writes (entities, parents, grants, statuses, deletes,
//!    revocations of roles), the state kept up to date from the change feed decides exactly
//!    as a state read from scratch, on SQLite and on PostgreSQL (when
//!    `WARDEN_TEST_POSTGRES_URL` is set; skipped otherwise, and said so).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use warden_core::cedar_policy::{EntityId, EntityUid};
use warden_core::{Decision, Pack, PackSources};
use warden_service::engine::{self, DecisionInput, DecisionScope, EntityInput, PrincipalInput};
use warden_service::entity_graph::EntityGraph;
use warden_service::revocation::RevocationSet;
use warden_service::snapshot::{PolicyHolder, Snapshot, StoreFreshness};
use warden_service::store_sync;
use warden_store::{EntityRecord, PrincipalStatus, RoleAssignment, Store, TenantId};

/// A small deterministic generator (the data must be the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn example_pack() -> Arc<Pack> {
    let sources = warden_packdir::read_pack(&repo_root().join("examples/saas")).unwrap();
    Arc::new(Pack::compile(&sources).unwrap().pack)
}

fn example_entities() -> Vec<Value> {
    serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("examples/saas/entities.json")).unwrap(),
    )
    .unwrap()
}

/// Everything of a decision but its timing.
fn digest(decision: &Decision) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?}",
        decision.outcome,
        decision.reason,
        decision.determining,
        decision.errors,
        decision.cross_tenant,
        decision.tenant_violation
    )
}

fn scope_of(snapshot: Arc<Snapshot>) -> DecisionScope {
    DecisionScope {
        snapshot,
        stale: None,
        claim_attributes: Arc::new(Vec::new()),
        audit_down: None,
    }
}

fn named(entity_type: &str, id: &str) -> EntityInput {
    EntityInput {
        entity_type: entity_type.to_owned(),
        id: id.to_owned(),
        properties: None,
    }
}

/// The engine's answer (on the slice) as a digest, or the refusal's reason.
fn on_slice(
    scope: &DecisionScope,
    principal: (&str, &str),
    action: &str,
    resource: (&str, &str),
    context: Option<Value>,
) -> String {
    let outcome = engine::decide(
        scope,
        &DecisionInput {
            principal: PrincipalInput::Named(named(principal.0, principal.1)),
            action: action.to_owned(),
            resource: named(resource.0, resource.1),
            context,
        },
    );
    match outcome.decision() {
        Some(decision) => digest(decision),
        None => format!("refused {}", outcome.reason()),
    }
}

fn uid(pack: &Pack, entity_type: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(pack.type_name(entity_type).unwrap(), EntityId::new(id))
}

/// Cedar on the whole data.
fn on_everything(
    pack: &Pack,
    everything: &warden_core::cedar_policy::Entities,
    principal: (&str, &str),
    action: &str,
    resource: (&str, &str),
    context: Option<Value>,
) -> String {
    let request = pack
        .request(
            uid(pack, principal.0, principal.1),
            uid(pack, "Action", action),
            uid(pack, resource.0, resource.1),
            context,
        )
        .unwrap();
    digest(&pack.decide(&request, everything))
}

fn example_data(random: &mut Lcg) -> Vec<Value> {
    let mut entities = example_entities();
    let roles = ["viewer", "editor", "admin", "support"];
    for tenant in ["acme", "globex"] {
        for n in 0..4 {
            let parent = if n == 0 || random.chance(30) {
                json!([])
            } else {
                json!([{"type": "Folder", "id": format!("{tenant}/f{}", random.below(n))}])
            };
            entities.push(json!({"uid": {"type": "Folder", "id": format!("{tenant}/f{n}")},
                "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": tenant}}}, "parents": parent}));
        }
        for n in 0..6 {
            let mut parents = Vec::new();
            for role in roles {
                if random.chance(25) {
                    parents.push(json!({"type": "Role", "id": role}));
                }
            }
            if random.chance(30) {
                parents.push(json!({"type": "Group", "id": "acme/legal"}));
            }
            entities.push(json!({"uid": {"type": "User", "id": format!("{tenant}/u{n}")},
                "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": tenant}}}, "parents": parents}));
        }
        for n in 0..8 {
            // Owners sometimes of the other tenant, sometimes unknown to the data.
            let owner_tenant = if random.chance(20) { "globex" } else { tenant };
            let owner = if random.chance(10) {
                format!("{owner_tenant}/ghost")
            } else {
                format!("{owner_tenant}/u{}", random.below(6))
            };
            let classification = ["public", "internal", "restricted"][random.below(3)];
            let parents = if random.chance(70) {
                json!([{"type": "Folder", "id": format!("{tenant}/f{}", random.below(4))}])
            } else {
                json!([])
            };
            entities.push(
                json!({"uid": {"type": "Document", "id": format!("{tenant}/d{n}")},
                "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": tenant}},
                          "owner": {"__entity": {"type": "User", "id": owner}},
                          "classification": classification},
                "parents": parents}),
            );
        }
    }
    entities
}

/// The same data as the store holds it (compact records, see `compact_entity`).
fn stored_graph(pack: &Pack, data: &[Value]) -> EntityGraph {
    store_into(pack, EntityGraph::default(), data.iter().enumerate())
}

/// Every third entity from an entity file, the others stored: a decision reaching only file
/// entities decides on the file's whole store, the others on a slice that mixes shared file
/// entities (given the ancestors the stored ones add) with rebuilt stored ones.
fn mixed_graph(pack: &Pack, data: &[Value]) -> EntityGraph {
    let file: Vec<Value> = data.iter().step_by(3).cloned().collect();
    let graph = EntityGraph::of_values(pack, file).unwrap();
    store_into(
        pack,
        graph,
        data.iter().enumerate().filter(|(n, _)| n % 3 != 0),
    )
}

fn store_into<'a>(
    pack: &Pack,
    mut graph: EntityGraph,
    data: impl Iterator<Item = (usize, &'a Value)>,
) -> EntityGraph {
    for (n, entity) in data {
        let id = entity["uid"]["id"].as_str().unwrap();
        let mut record = EntityRecord {
            tenant: id
                .split_once('/')
                .map_or("shared", |(tenant, _)| tenant)
                .to_owned(),
            entity_type: entity["uid"]["type"].as_str().unwrap().to_owned(),
            entity_id: id.to_owned(),
            attrs: entity["attrs"].clone(),
            parents: entity["parents"].clone(),
            canonical_for: None,
        };
        // Every other entity as an import writes it: Cedar's own JSON, marked as validated
        // against this pack (taken without a parse); the others as raw rows.
        if n % 2 == 0 {
            let written = warden_service::entity_graph::parse_entity(pack, entity.clone())
                .unwrap()
                .to_json_value()
                .unwrap();
            record.attrs = written["attrs"].clone();
            record.parents = written["parents"].clone();
            record.canonical_for = Some(pack.data_fingerprint().as_str().to_owned());
        }
        graph.put_stored(pack, &record, 0).unwrap();
    }
    graph
}

#[test]
fn a_slice_decides_as_the_whole_example_data_does() {
    let pack = example_pack();
    for seed in 1..=6 {
        let mut random = Lcg(seed);
        let data = example_data(&mut random);
        let everything = pack
            .parse_entities(&Value::Array(data.clone()).to_string())
            .unwrap();
        let scope = scope_of(Arc::new(Snapshot::of(
            Arc::clone(&pack),
            EntityGraph::of_values(&pack, data.clone()).unwrap(),
        )));
        let stored = scope_of(Arc::new(Snapshot::of(
            Arc::clone(&pack),
            stored_graph(&pack, &data),
        )));
        let mixed = scope_of(Arc::new(Snapshot::of(
            Arc::clone(&pack),
            mixed_graph(&pack, &data),
        )));
        let mut principals: Vec<(String, String)> = Vec::new();
        let mut resources: Vec<(String, String)> = Vec::new();
        for entity in &data {
            let (t, id) = (
                entity["uid"]["type"].as_str().unwrap(),
                entity["uid"]["id"].as_str().unwrap(),
            );
            match t {
                "User" | "ServiceAccount" => principals.push((t.into(), id.into())),
                "Document" => resources.push((t.into(), id.into())),
                _ => {}
            }
        }
        principals.push(("User".into(), "acme/nobody".into()));
        resources.push(("Document".into(), "acme/missing".into()));
        let mut compared = 0;
        for (pt, pid) in &principals {
            for action in ["read", "edit", "delete", "share"] {
                for (rt, rid) in &resources {
                    let principal = (pt.as_str(), pid.as_str());
                    let resource = (rt.as_str(), rid.as_str());
                    let whole =
                        on_everything(&pack, &everything, principal, action, resource, None);
                    assert_eq!(
                        on_slice(&scope, principal, action, resource, None),
                        whole,
                        "seed {seed}: {pt}::{pid:?} {action} {rt}::{rid:?}"
                    );
                    assert_eq!(
                        on_slice(&stored, principal, action, resource, None),
                        whole,
                        "seed {seed}, kept compact: {pt}::{pid:?} {action} {rt}::{rid:?}"
                    );
                    assert_eq!(
                        on_slice(&mixed, principal, action, resource, None),
                        whole,
                        "seed {seed}, file and store: {pt}::{pid:?} {action} {rt}::{rid:?}"
                    );
                    compared += 1;
                }
            }
        }
        assert!(compared > 1000, "{compared}");
    }
}

const DEEP_SCHEMA: &str = r#"
entity Team in [Team];
entity Person in [Team] {
  manager?: Person,
  buddy?: Person,
  labels: Set<String>,
};
entity Doc in [Team] {
  owner: Person,
  reviewers: Set<Person>,
  meta: { lead: Person, sealed: Bool },
};
action view appliesTo {
  principal: [Person],
  resource: [Doc],
  context: { delegate?: Person, teams?: Set<Team> },
};
"#;

const DEEP_POLICIES: &str = r#"
@id("manager-of-owner")
permit (principal, action, resource) when { resource.owner has manager && resource.owner.manager == principal };
@id("buddy-chain")
permit (principal, action, resource) when { resource.owner has manager && resource.owner.manager has buddy && principal in resource.owner.manager.buddy };
@id("lead-in-my-teams")
permit (principal, action, resource) when { resource.meta.lead in principal };
@id("reviewer-with-buddy")
permit (principal, action, resource) when { resource.reviewers.contains(principal) && principal has buddy && principal.buddy in Team::"t1" };
@id("delegate")
permit (principal, action, resource) when { context has delegate && context.delegate in Team::"t2" && context.delegate.labels.contains("trusted") };
@id("literal-manager")
permit (principal, action, resource) when { Person::"p3" has manager && Person::"p3".manager == principal };
@id("team-context")
permit (principal, action, resource) when { context has teams && context.teams.contains(Team::"t0") && resource in Team::"t0" };
@id("in-team-scope")
permit (principal in Team::"t4", action, resource in Team::"t3");
@id("sealed")
forbid (principal, action, resource) when { resource.meta.sealed && !(principal has manager && principal.manager has manager && principal.manager.manager in Team::"t2") };
"#;

fn deep_pack() -> Arc<Pack> {
    let mut sources = PackSources::from_policy_text("deep.cedar", DEEP_POLICIES);
    sources.schema = Some(warden_core::pack::SchemaSource {
        file: warden_core::pack::SourceFile {
            path: "schema.cedarschema".into(),
            text: DEEP_SCHEMA.into(),
        },
        format: warden_core::pack::SchemaFormat::CedarSchema,
    });
    Arc::new(Pack::compile(&sources).unwrap().pack)
}

fn person(random: &mut Lcg, n: usize) -> Value {
    let pick = |random: &mut Lcg| json!({"__entity": {"type": "Person", "id": format!("p{}", random.below(14))}});
    let mut attrs =
        json!({"labels": if random.chance(40) { json!(["trusted"]) } else { json!([]) }});
    if random.chance(70) {
        attrs["manager"] = pick(random);
    }
    if random.chance(50) {
        attrs["buddy"] = pick(random);
    }
    let parents: Vec<Value> = (0..5)
        .filter(|_| random.chance(25))
        .map(|t| json!({"type": "Team", "id": format!("t{t}")}))
        .collect();
    json!({"uid": {"type": "Person", "id": format!("p{n}")}, "attrs": attrs, "parents": parents})
}

fn deep_data(random: &mut Lcg) -> Vec<Value> {
    let mut data = Vec::new();
    for t in 0..5 {
        // Teams nest only upwards, so the hierarchy has no cycle.
        let parents: Vec<Value> = (t + 1..5)
            .filter(|_| random.chance(30))
            .map(|p| json!({"type": "Team", "id": format!("t{p}")}))
            .collect();
        data.push(json!({"uid": {"type": "Team", "id": format!("t{t}")}, "attrs": {}, "parents": parents}));
    }
    // p12 and p13 are referred to but never listed.
    for n in 0..12 {
        data.push(person(random, n));
    }
    for d in 0..10 {
        let pick = |random: &mut Lcg| json!({"__entity": {"type": "Person", "id": format!("p{}", random.below(14))}});
        let reviewers: Vec<Value> = (0..random.below(3)).map(|_| pick(random)).collect();
        let parents: Vec<Value> = (0..5)
            .filter(|_| random.chance(20))
            .map(|t| json!({"type": "Team", "id": format!("t{t}")}))
            .collect();
        data.push(json!({"uid": {"type": "Doc", "id": format!("d{d}")},
            "attrs": {"owner": pick(random), "reviewers": reviewers,
                      "meta": {"lead": pick(random), "sealed": random.chance(20)}},
            "parents": parents}));
    }
    data
}

#[test]
fn a_slice_decides_as_the_whole_data_when_conditions_follow_attributes_deep() {
    let pack = deep_pack();
    let (mut allows, mut with_errors, mut total) = (0, 0, 0);
    for seed in 1..=10 {
        let mut random = Lcg(seed * 7919);
        let data = deep_data(&mut random);
        let everything = pack
            .parse_entities(&Value::Array(data.clone()).to_string())
            .unwrap();
        let scope = scope_of(Arc::new(Snapshot::of(
            Arc::clone(&pack),
            EntityGraph::of_values(&pack, data.clone()).unwrap(),
        )));
        let stored = scope_of(Arc::new(Snapshot::of(
            Arc::clone(&pack),
            stored_graph(&pack, &data),
        )));
        let mixed = scope_of(Arc::new(Snapshot::of(
            Arc::clone(&pack),
            mixed_graph(&pack, &data),
        )));
        for p in 0..14 {
            for d in 0..11 {
                let contexts = [
                    None,
                    Some(
                        json!({"delegate": {"__entity": {"type": "Person", "id": format!("p{}", (p + d) % 14)}}}),
                    ),
                    Some(
                        json!({"delegate": {"type": "Person", "id": format!("p{}", (p * d) % 14)}, "teams": [{"__entity": {"type": "Team", "id": "t0"}}]}),
                    ),
                ];
                for context in contexts {
                    let principal_id = format!("p{p}");
                    let resource_id = format!("d{d}");
                    let principal = ("Person", principal_id.as_str());
                    let resource = ("Doc", resource_id.as_str());
                    let whole = on_everything(
                        &pack,
                        &everything,
                        principal,
                        "view",
                        resource,
                        context.clone(),
                    );
                    assert_eq!(
                        on_slice(&scope, principal, "view", resource, context.clone()),
                        whole,
                        "seed {seed}: p{p} view d{d} with {context:?}"
                    );
                    assert_eq!(
                        on_slice(&stored, principal, "view", resource, context.clone()),
                        whole,
                        "seed {seed}, kept compact: p{p} view d{d} with {context:?}"
                    );
                    assert_eq!(
                        on_slice(&mixed, principal, "view", resource, context.clone()),
                        whole,
                        "seed {seed}, file and store: p{p} view d{d} with {context:?}"
                    );
                    total += 1;
                    allows += usize::from(whole.starts_with("Allow"));
                    with_errors += usize::from(!whole.contains(" [] None None"));
                }
            }
        }
    }
    // The data must exercise the policies: allows, denies, and evaluation errors.
    assert!(
        allows > total / 20 && allows < total - total / 20 && with_errors > 10,
        "allows {allows}, with errors {with_errors}, of {total}"
    );
}

/// One random write through the store's own API (what the admin API calls).
async fn random_write(store: &Store, random: &mut Lcg, now: i64) {
    let tenant_name = ["acme", "globex"][random.below(2)];
    let tenant = TenantId::parse(tenant_name).unwrap();
    let users = ["u0", "u1", "u2", "carol", "erin"];
    let principal = format!("{tenant_name}/{}", users[random.below(users.len())]);
    let role = ["viewer", "editor", "admin", "support"][random.below(4)];
    match random.below(8) {
        0 | 1 => {
            let parents: Vec<Value> = ["viewer", "editor", "admin"]
                .iter()
                .filter(|_| random.chance(30))
                .map(|role| json!({"type": "Role", "id": role}))
                .collect();
            let record = EntityRecord {
                tenant: tenant_name.into(),
                entity_type: "User".into(),
                entity_id: principal,
                attrs: json!({"tenant": {"__entity": {"type": "Tenant", "id": tenant_name}}}),
                parents: Value::Array(parents),
                canonical_for: None,
            };
            store
                .upsert_entities(&tenant, &[record], "test", now)
                .await
                .unwrap();
        }
        2 => {
            let owner = format!("{tenant_name}/{}", users[random.below(users.len())]);
            let classification = ["internal", "restricted"][random.below(2)];
            let record = EntityRecord {
                tenant: tenant_name.into(),
                entity_type: "Document".into(),
                entity_id: format!("{tenant_name}/d{}", random.below(3)),
                attrs: json!({"tenant": {"__entity": {"type": "Tenant", "id": tenant_name}},
                              "owner": {"__entity": {"type": "User", "id": owner}},
                              "classification": classification}),
                parents: json!([]),
                canonical_for: None,
            };
            store
                .upsert_entities(&tenant, &[record], "test", now)
                .await
                .unwrap();
        }
        3 => {
            let _ = store
                .delete_entity(&tenant, "User", &principal, "test", now)
                .await;
        }
        4 => {
            let grant = RoleAssignment {
                tenant: tenant_name.into(),
                principal_type: "User".into(),
                principal_id: principal,
                role_type: "Role".into(),
                role_id: role.into(),
                expires_at: random.chance(50).then_some(now + 3600),
                reason: "test".into(),
                granted_by: "test".into(),
                granted_at: now,
            };
            store.grant_role(&grant).await.unwrap();
        }
        5 => {
            let _ = store
                .revoke_role(
                    &tenant,
                    ("User", &principal),
                    ("Role", role),
                    "test",
                    "test",
                    now,
                )
                .await;
        }
        6 => {
            let status = [
                PrincipalStatus::Active,
                PrincipalStatus::Disabled,
                PrincipalStatus::Deleted,
            ][random.below(3)];
            store
                .set_status(&tenant, "User", &principal, status, "test", now)
                .await
                .unwrap();
        }
        _ => {
            let _ = store
                .edit_parents(
                    &tenant,
                    ("User", &principal),
                    &[("Role", role)],
                    &[("Role", ["viewer", "editor"][random.below(2)])],
                    "test",
                    "test",
                    now,
                )
                .await;
        }
    }
}

fn every_decision(holder: &PolicyHolder) -> Vec<String> {
    let scope = scope_of(holder.current().unwrap());
    let mut answers = Vec::new();
    for tenant in ["acme", "globex"] {
        for user in ["u0", "u1", "u2", "carol", "erin", "alice"] {
            for action in ["read", "edit", "delete"] {
                for document in ["d0", "d1", "d2", "roadmap", "salaries"] {
                    let principal = format!("{tenant}/{user}");
                    let resource = format!("{tenant}/{document}");
                    answers.push(format!(
                        "{principal} {action} {resource}: {}",
                        on_slice(
                            &scope,
                            ("User", &principal),
                            action,
                            ("Document", &resource),
                            None
                        )
                    ));
                }
            }
        }
    }
    answers
}

async fn holder_on(store: &Store) -> PolicyHolder {
    let holder = PolicyHolder::default();
    let text = std::fs::read_to_string(repo_root().join("examples/saas/entities.json")).unwrap();
    holder.set_pack(example_pack(), Some(text)).unwrap();
    let freshness = StoreFreshness::new(Duration::from_secs(60));
    store_sync::refresh(store, &holder, &freshness, &RevocationSet::default(), None)
        .await
        .unwrap();
    holder
}

async fn incremental_equals_rebuilt(backend: &str, store: Store) {
    let now = warden_service::clock::unix_now();
    let kept = holder_on(&store).await;
    let freshness = StoreFreshness::new(Duration::from_secs(60));
    let revocations = RevocationSet::default();
    let mut random = Lcg(4242);
    for step in 0..120 {
        random_write(&store, &mut random, now).await;
        store_sync::refresh(&store, &kept, &freshness, &revocations, None)
            .await
            .unwrap();
        assert_eq!(
            kept.store_position().map(|(version, _)| version),
            Some(store.version().await.unwrap()),
            "{backend}: step {step}: the kept state is not at the store's version"
        );
        if step % 10 == 9 {
            let rebuilt = holder_on(&store).await;
            assert_eq!(
                every_decision(&kept),
                every_decision(&rebuilt),
                "{backend}: after step {step}, the incrementally kept state decides differently"
            );
        }
    }
}

#[tokio::test]
async fn the_state_kept_from_the_change_feed_decides_as_one_read_from_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    incremental_equals_rebuilt("sqlite", Store::connect(&url).await.unwrap()).await;
    match warden_testkit::fresh_postgres_url().await {
        Some(url) => {
            incremental_equals_rebuilt("postgres", Store::connect(&url).await.unwrap()).await;
        }
        None => eprintln!(
            "note: WARDEN_TEST_POSTGRES_URL is not set; the PostgreSQL half of this test is skipped"
        ),
    }
}

/// `[storage] tenants`: a replica that does not hold another tenant's entities must not decide
/// when the decision can reach one (an owner of another tenant, say): without it, a forbid
/// reading it would error and be skipped. It refuses with `tenant_not_served` instead.
#[test]
fn a_replica_serving_some_tenants_refuses_decisions_that_reach_another() {
    let pack = example_pack();
    let mut graph = EntityGraph::of_values(&pack, example_entities()).unwrap();
    graph.serve_only(Some(Arc::new(["acme".to_owned()].into_iter().collect())));
    let shared = EntityRecord {
        tenant: "acme".into(),
        entity_type: "Document".into(),
        entity_id: "acme/shared".into(),
        attrs: json!({"tenant": {"__entity": {"type": "Tenant", "id": "acme"}},
                      "owner": {"__entity": {"type": "User", "id": "globex/bob"}},
                      "classification": "internal"}),
        parents: json!([]),
        canonical_for: None,
    };
    graph.put_stored(&pack, &shared, 0).unwrap();
    let scope = scope_of(Arc::new(Snapshot::of(Arc::clone(&pack), graph)));
    assert_eq!(
        on_slice(
            &scope,
            ("User", "acme/alice"),
            "read",
            ("Document", "acme/shared"),
            None
        ),
        "refused tenant_not_served"
    );
    assert!(
        on_slice(
            &scope,
            ("User", "acme/alice"),
            "read",
            ("Document", "acme/roadmap"),
            None
        )
        .starts_with("Allow"),
        "a decision within the served tenant is made"
    );
    assert_eq!(
        on_slice(
            &scope,
            ("User", "globex/alice"),
            "read",
            ("Document", "globex/roadmap"),
            None
        ),
        "refused tenant_not_served"
    );
}

#[test]
fn a_hierarchy_cycle_denies_the_decisions_that_reach_it_and_no_others() {
    let pack = example_pack();
    let mut data = example_entities();
    let tenant = json!({"__entity": {"type": "Tenant", "id": "acme"}});
    data.push(
        json!({"uid": {"type": "Folder", "id": "acme/x"}, "attrs": {"tenant": tenant},
        "parents": [{"type": "Folder", "id": "acme/y"}]}),
    );
    data.push(
        json!({"uid": {"type": "Folder", "id": "acme/y"}, "attrs": {"tenant": tenant},
        "parents": [{"type": "Folder", "id": "acme/x"}]}),
    );
    data.push(json!({"uid": {"type": "Document", "id": "acme/looped"},
        "attrs": {"tenant": tenant, "owner": {"__entity": {"type": "User", "id": "acme/carol"}},
                  "classification": "internal"},
        "parents": [{"type": "Folder", "id": "acme/x"}]}));
    // Cedar itself refuses the whole data.
    assert!(
        pack.parse_entities(&Value::Array(data.clone()).to_string())
            .is_err()
    );
    for (label, graph) in [
        ("file", EntityGraph::of_values(&pack, data.clone()).unwrap()),
        ("stored", stored_graph(&pack, &data)),
        ("file and store", mixed_graph(&pack, &data)),
    ] {
        let scope = scope_of(Arc::new(Snapshot::of(Arc::clone(&pack), graph)));
        let carol = ("User", "acme/carol");
        assert_eq!(
            on_slice(&scope, carol, "read", ("Document", "acme/looped"), None),
            "refused invalid_request",
            "{label}"
        );
        assert!(
            on_slice(&scope, carol, "read", ("Document", "acme/roadmap"), None)
                .starts_with("Allow"),
            "{label}"
        );
    }
}

#[test]
fn a_stored_row_over_a_file_entity_decides_and_the_file_store_serves_only_what_it_does_not_reach() {
    let pack = example_pack();
    let file = example_entities();
    // The store's `acme/salaries` is internal (the file's is restricted: admins only), and
    // the store's `acme/erin` is an editor (the file's has no role).
    let mut graph = EntityGraph::of_values(&pack, file.clone()).unwrap();
    let mut everything = file.clone();
    let overrides = [
        (
            "acme",
            "Document",
            "acme/salaries",
            json!({"tenant": {"__entity": {"type": "Tenant", "id": "acme"}},
                   "owner": {"__entity": {"type": "User", "id": "acme/alice"}},
                   "classification": "internal"}),
            json!([]),
        ),
        (
            "acme",
            "User",
            "acme/erin",
            json!({"tenant": {"__entity": {"type": "Tenant", "id": "acme"}},
                   "email": "erin@acme.example"}),
            json!([{"type": "Role", "id": "editor"}]),
        ),
    ];
    for (tenant, entity_type, id, attrs, parents) in overrides {
        graph
            .put_stored(
                &pack,
                &EntityRecord {
                    tenant: tenant.to_owned(),
                    entity_type: entity_type.to_owned(),
                    entity_id: id.to_owned(),
                    attrs: attrs.clone(),
                    parents: parents.clone(),
                    canonical_for: None,
                },
                0,
            )
            .unwrap();
        for entity in &mut everything {
            if entity["uid"]["type"] == entity_type && entity["uid"]["id"] == id {
                entity["attrs"] = attrs.clone();
                entity["parents"] = parents.clone();
            }
        }
    }
    // A role grant over a file principal: dave (a viewer in the file) is granted editor.
    graph
        .set_grants(
            &pack,
            "acme",
            ("User", "acme/dave"),
            &[RoleAssignment {
                tenant: "acme".to_owned(),
                principal_type: "User".to_owned(),
                principal_id: "acme/dave".to_owned(),
                role_type: "Role".to_owned(),
                role_id: "editor".to_owned(),
                expires_at: None,
                reason: "test".to_owned(),
                granted_by: "test".to_owned(),
                granted_at: 0,
            }],
            0,
        )
        .unwrap();
    for entity in &mut everything {
        if entity["uid"]["id"] == "acme/dave" {
            entity["parents"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "Role", "id": "editor"}));
        }
    }
    let everything = pack
        .parse_entities(&Value::Array(everything).to_string())
        .unwrap();
    let scope = scope_of(Arc::new(Snapshot::of(Arc::clone(&pack), graph)));
    let cases = [
        // Reaches the granted dave (the file's dave, with the grant as a parent).
        (("User", "acme/dave"), "edit", ("Document", "acme/roadmap")),
        // Reaches the stored salaries: the viewer now reads it.
        (
            ("User", "acme/carol"),
            "read",
            ("Document", "acme/salaries"),
        ),
        // Reaches the stored erin, an editor there.
        (("User", "acme/erin"), "edit", ("Document", "acme/roadmap")),
        // Reach only file entities: decided on the file's store.
        (("User", "acme/bob"), "read", ("Document", "acme/roadmap")),
        (("User", "acme/alice"), "delete", ("Document", "acme/nda")),
    ];
    let mut allows = 0;
    for (principal, action, resource) in cases {
        let whole = on_everything(&pack, &everything, principal, action, resource, None);
        assert_eq!(
            on_slice(&scope, principal, action, resource, None),
            whole,
            "{principal:?} {action} {resource:?}"
        );
        allows += usize::from(whole.starts_with("Allow"));
    }
    // The overrides change decisions (the first three allow only through them).
    assert!(allows >= 4, "{allows}");
}
