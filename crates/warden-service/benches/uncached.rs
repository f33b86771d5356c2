//! Issue #19: Warden's uncached decision, in process, against the work a bare Cedar server does
//! for the same request (`crates/warden-server/examples/bare_cedar.rs`, without its HTTP): the
//! example pack and entities, AuthZEN's carol-reads-roadmap with a context value that is new on
//! every iteration, so the decision cache never answers.
//!
//! - `bare_cedar_work`: the context parsed against the schema, the request built and validated,
//!   every policy of the pack evaluated against the entities parsed once at start.
//! - `warden_engine`: `engine::decide` as `warden serve` runs it (entity slice, policy
//!   selection, tenant guard, decision id, metrics, the cache insert), entities from the
//!   entity file (decided on the file's store, built once).
//! - `warden_engine_stored`: the same with the same entities held as the store holds them
//!   (compact records): every decision assembles its own slice.
//! - `warden_engine_noting_use`: `warden_engine` plus what the pipeline adds on an allow when a
//!   store is configured: the usage evidence note for entitlement reviews (issue #24).
//!
//! Run: `cargo bench -p warden-service --bench uncached`. Figures go in `docs/performance.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark setup"
)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use warden_core::Pack;
use warden_core::cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request, Schema,
};
use warden_service::engine::{self, DecisionInput, DecisionScope, EntityInput, PrincipalInput};
use warden_service::entity_graph::EntityGraph;
use warden_service::snapshot::Snapshot;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn ticket(n: u64) -> Value {
    json!({"support_ticket": format!("T-{n}")})
}

/// What `bare_cedar.rs` does per request once the body is parsed.
fn bare_decide(
    policies: &PolicySet,
    schema: &Schema,
    entities: &Entities,
    authorizer: &Authorizer,
    n: u64,
) -> bool {
    let principal: EntityUid = r#"User::"acme/carol""#.parse().unwrap();
    let action: EntityUid = r#"Action::"read""#.parse().unwrap();
    let resource: EntityUid = r#"Document::"acme/roadmap""#.parse().unwrap();
    let context = Context::from_json_value(ticket(n), Some((schema, &action))).unwrap();
    let request = Request::new(principal, action, resource, context, Some(schema)).unwrap();
    authorizer
        .is_authorized(&request, policies, entities)
        .decision()
        == Decision::Allow
}

fn input(n: u64) -> DecisionInput<'static> {
    let named = |entity_type: &str, id: &str| EntityInput {
        entity_type: entity_type.to_owned(),
        id: id.to_owned(),
        properties: None,
    };
    DecisionInput {
        principal: PrincipalInput::Named(named("User", "acme/carol")),
        action: "read".to_owned(),
        resource: named("Document", "acme/roadmap"),
        context: Some(ticket(n)),
    }
}

fn bench_uncached(c: &mut Criterion) {
    let sources = warden_packdir::read_pack(&root().join("examples/saas")).unwrap();
    let pack = Arc::new(Pack::compile(&sources).unwrap().pack);
    let entities_json =
        std::fs::read_to_string(root().join("examples/saas/entities.json")).unwrap();
    let schema = pack.schema().expect("the example has a schema").clone();
    let entities = Entities::from_json_str(&entities_json, Some(&schema)).unwrap();
    let policies = pack.policy_set().clone();
    let authorizer = Authorizer::new();
    let graph = EntityGraph::of_file(&pack, Some(&entities_json)).unwrap();
    let scope = DecisionScope {
        snapshot: Arc::new(Snapshot::of(Arc::clone(&pack), graph)),
        stale: None,
        claim_attributes: Arc::new(Vec::new()),
        audit_down: None,
    };
    let mut stored_graph = EntityGraph::default();
    let values: Vec<Value> = serde_json::from_str(&entities_json).unwrap();
    for value in values {
        let id = value["uid"]["id"].as_str().unwrap().to_owned();
        let record = warden_store::EntityRecord {
            tenant: id
                .split_once('/')
                .map_or("shared", |(tenant, _)| tenant)
                .to_owned(),
            entity_type: value["uid"]["type"].as_str().unwrap().to_owned(),
            entity_id: id,
            attrs: value["attrs"].clone(),
            parents: value["parents"].clone(),
            canonical_for: None,
        };
        stored_graph.put_stored(&pack, &record, 0).unwrap();
    }
    let stored = DecisionScope {
        snapshot: Arc::new(Snapshot::of(Arc::clone(&pack), stored_graph)),
        stale: None,
        claim_attributes: Arc::new(Vec::new()),
        audit_down: None,
    };
    assert!(bare_decide(&policies, &schema, &entities, &authorizer, 0));
    assert!(engine::decide(&stored, &input(0)).allowed());
    assert!(engine::decide(&scope, &input(0)).allowed());

    let mut group = c.benchmark_group("uncached");
    let mut n = 0u64;
    group.bench_function("bare_cedar_work", |b| {
        b.iter(|| {
            n += 1;
            black_box(bare_decide(&policies, &schema, &entities, &authorizer, n))
        })
    });
    group.bench_function("warden_engine", |b| {
        b.iter(|| {
            n += 1;
            black_box(engine::decide(&scope, &input(n)))
        })
    });
    let usage = warden_service::entitlement_usage::EntitlementUsage::default();
    group.bench_function("warden_engine_noting_use", |b| {
        b.iter(|| {
            n += 1;
            let outcome = engine::decide(&scope, &input(n));
            if let Some(decision) = outcome.decision() {
                usage.note(
                    ("User", "acme/carol"),
                    decision.determining.iter().map(|policy| &policy.id),
                    &outcome.decision_id,
                    1,
                );
            }
            black_box(outcome)
        })
    });
    group.bench_function("warden_engine_stored", |b| {
        b.iter(|| {
            n += 1;
            black_box(engine::decide(&stored, &input(n)))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_uncached);
criterion_main!(benches);
