//! Issue #21: data-filter plans, in process, at scale. The example pack, its entities, and
//! 100,000 more documents of tenant `acme` held as the store holds them (compact records),
//! with one tenant policy for each of 100,000 tenants.
//!
//! - `plan`: `filter::plan` for carol reading documents, with a context value that is new on
//!   every iteration (nothing is cached).
//! - `decide_one`: one uncached decision of the same question for one document (the unit the
//!   per-row listing pays 100,000 times).
//! - `list_100k_by_plan`: one plan, then each of acme's 100,000 documents tested against its
//!   condition (`filter::admits`, which reads each document from the entity graph): what the
//!   resource search does for a whole list.
//! - `list_100k_per_row`: a decision per document, as a list endpoint without filters would.
//!
//! Run: `cargo bench -p warden-service --bench filter`. Figures go in `docs/performance.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark setup"
)]

use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use warden_core::Pack;
use warden_core::cedar_policy::{EntityId, EntityUid};
use warden_core::tenant_policies::{TenantPolicies, TenantPolicy};
use warden_service::engine::{self, DecisionInput, DecisionScope, EntityInput, PrincipalInput};
use warden_service::entity_graph::EntityGraph;
use warden_service::filter::{self, FilterInput};
use warden_service::snapshot::Snapshot;

const DOCUMENTS: usize = 100_000;
const TENANTS: usize = 100_000;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn record(value: &Value) -> warden_store::EntityRecord {
    let id = value["uid"]["id"].as_str().unwrap().to_owned();
    warden_store::EntityRecord {
        tenant: id
            .split_once('/')
            .map_or("shared", |(tenant, _)| tenant)
            .to_owned(),
        entity_type: value["uid"]["type"].as_str().unwrap().to_owned(),
        entity_id: id,
        attrs: value["attrs"].clone(),
        parents: value["parents"].clone(),
        canonical_for: None,
    }
}

fn document(i: usize) -> Value {
    let owners = ["acme/alice", "acme/bob", "acme/carol"];
    let classes = ["public", "internal", "internal", "restricted"];
    json!({
        "uid": {"type": "Document", "id": format!("acme/doc-{i:06}")},
        "attrs": {
            "tenant": {"__entity": {"type": "Tenant", "id": "acme"}},
            "owner": {"__entity": {"type": "User", "id": owners[i % owners.len()]}},
            "classification": classes[i % classes.len()],
        },
        "parents": [],
    })
}

fn carol(n: u64) -> (EntityInput, Option<Value>) {
    (
        EntityInput {
            entity_type: "User".to_owned(),
            id: "acme/carol".to_owned(),
            properties: None,
        },
        Some(json!({"support_ticket": format!("T-{n}")})),
    )
}

fn bench_filter(c: &mut Criterion) {
    let sources = warden_packdir::read_pack(&root().join("examples/saas")).unwrap();
    let pack = Arc::new(Pack::compile(&sources).unwrap().pack);
    let entities_json =
        std::fs::read_to_string(root().join("examples/saas/entities.json")).unwrap();
    let mut graph = EntityGraph::default();
    let values: Vec<Value> = serde_json::from_str(&entities_json).unwrap();
    for value in &values {
        graph.put_stored(&pack, &record(value), 0).unwrap();
    }
    for i in 0..DOCUMENTS {
        graph.put_stored(&pack, &record(&document(i)), 0).unwrap();
    }
    let mut tenant_policies = TenantPolicies::default();
    for t in 0..TENANTS {
        let tenant = if t == 0 {
            "acme".to_owned()
        } else {
            format!("tenant{t:06}")
        };
        let text = format!(
            "permit (principal, action == Action::\"read\", resource is Document) when {{ resource.tenant == Tenant::\"{tenant}\" && principal in Group::\"{tenant}/legal\" }};"
        );
        tenant_policies.put(
            &pack,
            TenantPolicy::check(&pack, &tenant, "legal-read", &text).unwrap(),
        );
    }
    let scope = DecisionScope {
        snapshot: Arc::new(
            Snapshot::of(Arc::clone(&pack), graph)
                .with_tenant_policies(Arc::new(RwLock::new(tenant_policies))),
        ),
        stale: None,
        claim_attributes: Arc::new(Vec::new()),
        audit_down: None,
    };
    let plan_input = |n: u64| {
        let (subject, context) = carol(n);
        FilterInput {
            principal: PrincipalInput::Named(subject),
            action: "read".to_owned(),
            resource_type: "Document".to_owned(),
            context,
        }
    };
    let decision_input = |n: u64, document: &str| {
        let (subject, context) = carol(n);
        DecisionInput {
            principal: PrincipalInput::Named(subject),
            action: "read".to_owned(),
            resource: EntityInput {
                entity_type: "Document".to_owned(),
                id: document.to_owned(),
                properties: None,
            },
            context,
        }
    };
    let document_type = pack.type_name("Document").unwrap();
    let ids: Vec<String> = (0..DOCUMENTS).map(|i| format!("acme/doc-{i:06}")).collect();
    let uids: Vec<EntityUid> = ids
        .iter()
        .map(|id| EntityUid::from_type_name_and_id(document_type.clone(), EntityId::new(id)))
        .collect();

    // The plan and the per-row decisions agree on the whole list.
    let plan = filter::plan(&scope, &plan_input(0)).unwrap().plan.unwrap();
    let listed = uids
        .iter()
        .filter(|uid| filter::admits(&scope.snapshot, &plan.outcome, uid))
        .count();
    let decided = ids
        .iter()
        .filter(|id| engine::decide(&scope, &decision_input(0, id)).allowed())
        .count();
    assert_eq!(listed, decided);
    assert!(listed > DOCUMENTS / 2, "{listed}");

    let mut group = c.benchmark_group("filter");
    let mut n = 1u64;
    group.bench_function("plan", |b| {
        b.iter(|| {
            n += 1;
            black_box(filter::plan(&scope, &plan_input(n)).unwrap())
        })
    });
    group.bench_function("decide_one", |b| {
        b.iter(|| {
            n += 1;
            black_box(engine::decide(
                &scope,
                &decision_input(n, &ids[(n as usize) % DOCUMENTS]),
            ))
        })
    });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("list_100k_by_plan", |b| {
        b.iter(|| {
            n += 1;
            let plan = filter::plan(&scope, &plan_input(n)).unwrap().plan.unwrap();
            black_box(
                uids.iter()
                    .filter(|uid| filter::admits(&scope.snapshot, &plan.outcome, uid))
                    .count(),
            )
        })
    });
    group.bench_function("list_100k_per_row", |b| {
        b.iter(|| {
            n += 1;
            black_box(
                ids.iter()
                    .filter(|id| engine::decide(&scope, &decision_input(n, id)).allowed())
                    .count(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_filter);
criterion_main!(benches);
