//! Issue #20: one decision on the example pack when the entity data holds 1,000 entities and
//! when it holds 1,000,000, through the engine (each decision assembles its slice of the data),
//! every input new to the decision cache. The same decision on raw Cedar with the example's
//! own entities is the baseline of the run.
//!
//! Run: `cargo bench -p warden-service --bench entities`. Figures go in `docs/performance.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark setup"
)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use warden_core::cedar_policy::Authorizer;
use warden_core::{Pack, parse_uid};
use warden_service::engine::{self, DecisionInput, DecisionScope, EntityInput, PrincipalInput};
use warden_service::entity_graph::EntityGraph;
use warden_service::snapshot::Snapshot;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The example's entities, then tenants of 100 users, 10 folders and 790 documents each.
fn data(total: usize) -> Vec<Value> {
    let mut entities: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/saas/entities.json")).unwrap(),
    )
    .unwrap();
    let mut tenant = 0;
    while entities.len() < total {
        let t = format!("t{tenant}");
        let scope = json!({"__entity": {"type": "Tenant", "id": t}});
        for u in 0..100 {
            let role = if u < 50 { "viewer" } else { "editor" };
            entities.push(json!({"uid": {"type": "User", "id": format!("{t}/u{u}")},
                "attrs": {"tenant": scope, "email": format!("u{u}@{t}.example")},
                "parents": [{"type": "Role", "id": role}]}));
        }
        for f in 0..10 {
            entities.push(json!({"uid": {"type": "Folder", "id": format!("{t}/f{f}")},
                "attrs": {"tenant": scope}, "parents": []}));
        }
        for d in 0..790 {
            entities.push(json!({"uid": {"type": "Document", "id": format!("{t}/d{d}")},
                "attrs": {"tenant": scope,
                          "owner": {"__entity": {"type": "User", "id": format!("{t}/u{}", 50 + d % 50)}},
                          "classification": "internal"},
                "parents": [{"type": "Folder", "id": format!("{t}/f{}", d % 10)}]}));
        }
        tenant += 1;
    }
    entities.truncate(total);
    entities
}

fn scope(pack: &Arc<Pack>, total: usize) -> DecisionScope {
    let graph = EntityGraph::of_values(pack, data(total)).unwrap();
    DecisionScope {
        snapshot: Arc::new(Snapshot::of(Arc::clone(pack), graph)),
        stale: None,
        claim_attributes: Arc::new(Vec::new()),
        audit_down: None,
    }
}

fn input(n: u64) -> DecisionInput<'static> {
    let named = |entity_type: &str, id: String| EntityInput {
        entity_type: entity_type.to_owned(),
        id,
        properties: None,
    };
    DecisionInput {
        principal: PrincipalInput::Named(named("User", format!("t0/u{}", n % 100))),
        action: "read".to_owned(),
        resource: named("Document", format!("t0/d{}", n % 790)),
        context: Some(json!({"support_ticket": format!("T-{n}")})),
    }
}

fn bench_entities(c: &mut Criterion) {
    let sources = warden_packdir::read_pack(&root().join("examples/saas")).unwrap();
    let pack = Arc::new(Pack::compile(&sources).unwrap().pack);
    let small = scope(&pack, 1_000);
    let large = scope(&pack, 1_000_000);
    assert!(engine::decide(&small, &input(1)).allowed());
    assert!(engine::decide(&large, &input(1)).allowed());
    let example = pack
        .parse_entities(
            &std::fs::read_to_string(root().join("examples/saas/entities.json")).unwrap(),
        )
        .unwrap();
    let request = pack
        .request(
            parse_uid(r#"User::"acme/carol""#).unwrap(),
            parse_uid(r#"Action::"read""#).unwrap(),
            parse_uid(r#"Document::"acme/roadmap""#).unwrap(),
            None,
        )
        .unwrap();
    let authorizer = Authorizer::new();

    let mut group = c.benchmark_group("entities");
    group.bench_function("cedar_baseline_example_entities", |b| {
        b.iter(|| black_box(authorizer.is_authorized(&request, pack.policy_set(), &example)))
    });
    let mut n = 0u64;
    group.bench_function("engine_new_input_1k_entities", |b| {
        b.iter(|| {
            n += 1;
            black_box(engine::decide(&small, &input(n)))
        })
    });
    group.bench_function("engine_new_input_1m_entities", |b| {
        b.iter(|| {
            n += 1;
            black_box(engine::decide(&large, &input(n)))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_entities);
criterion_main!(benches);
