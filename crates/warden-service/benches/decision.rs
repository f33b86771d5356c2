//! One decision on the example pack, against raw Cedar on the same data as the baseline, and
//! a decision that one tenant's own policy allows, in packs of the example plus 100, 10,000
//! and 100,000 tenant policies (issue #19: the index keeps the cost flat). Each pack's compile
//! time is printed once (not a criterion measurement: one compile of 100,000 policies takes
//! seconds).
//!
//! Run: `cargo bench -p warden-service --bench decision`. Figures go in `docs/performance.md`.
//! Packs, entities and requests are built outside the timed loop: a request only looks up.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark setup"
)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use warden_core::cedar_policy::Authorizer;
use warden_core::pack::{PackSources, SourceFile};
use warden_core::{Pack, parse_uid};

fn example_sources() -> PackSources {
    warden_packdir::read_pack(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/saas"))
        .unwrap()
}

/// `n_tenants` policies in the shape of the example's tenant policy, one per synthetic tenant.
fn with_tenant_policies(mut sources: PackSources, n_tenants: usize) -> PackSources {
    let mut text = String::with_capacity(n_tenants * 200);
    for tenant in 0..n_tenants {
        text.push_str(&format!(
            "@id(\"t{tenant}-legal-contracts\")\npermit (principal in Group::\"t{tenant}/legal\", action in [Action::\"read\", Action::\"edit\"], resource in Folder::\"t{tenant}/contracts\");\n"
        ));
    }
    sources
        .policy_files
        .push(SourceFile::new("tenants/generated.cedar", text));
    sources
}

/// Tenant `t{tenant}`: a user in its legal group, and a document in its contracts folder.
fn tenant_entities(tenant: usize) -> String {
    let t = format!("t{tenant}");
    serde_json::json!([
        {"uid": {"type": "Tenant", "id": t}, "attrs": {"name": t, "plan": "pro"}, "parents": []},
        {"uid": {"type": "Group", "id": format!("{t}/legal")}, "attrs": {}, "parents": []},
        {"uid": {"type": "User", "id": format!("{t}/lee")},
         "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": t}}},
         "parents": [{"type": "Group", "id": format!("{t}/legal")}]},
        {"uid": {"type": "Folder", "id": format!("{t}/contracts")},
         "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": t}}}, "parents": []},
        {"uid": {"type": "Document", "id": format!("{t}/msa")},
         "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": t}},
                   "owner": {"__entity": {"type": "User", "id": format!("{t}/lee")}},
                   "classification": "internal"},
         "parents": [{"type": "Folder", "id": format!("{t}/contracts")}]}
    ])
    .to_string()
}

fn bench_decisions(c: &mut Criterion) {
    let entities_json = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/saas/entities.json"),
    )
    .unwrap();
    let small = Pack::compile(&example_sources()).unwrap().pack;
    let entities = small.parse_entities(&entities_json).unwrap();
    let request = small
        .request(
            parse_uid(r#"User::"acme/carol""#).unwrap(),
            parse_uid(r#"Action::"read""#).unwrap(),
            parse_uid(r#"Document::"acme/roadmap""#).unwrap(),
            None,
        )
        .unwrap();
    assert!(small.decide(&request, &entities).is_allowed());

    let mut group = c.benchmark_group("decision");
    let authorizer = Authorizer::new();
    group.bench_function("cedar_baseline_example_pack", |b| {
        b.iter(|| {
            black_box(authorizer.is_authorized(black_box(&request), small.policy_set(), &entities))
        })
    });
    group.bench_function("warden_example_pack", |b| {
        b.iter(|| black_box(small.decide(black_box(&request), &entities)))
    });
    for n_tenants in [100, 10_000, 100_000] {
        let started = std::time::Instant::now();
        let pack = Pack::compile(&with_tenant_policies(example_sources(), n_tenants))
            .unwrap()
            .pack;
        eprintln!(
            "compile of the example pack plus {n_tenants} tenant policies: {:.2} s",
            started.elapsed().as_secs_f64()
        );
        // The middle tenant's own policy decides.
        let tenant = n_tenants / 2;
        let entities = pack.parse_entities(&tenant_entities(tenant)).unwrap();
        let request = pack
            .request(
                parse_uid(&format!("User::\"t{tenant}/lee\"")).unwrap(),
                parse_uid(r#"Action::"read""#).unwrap(),
                parse_uid(&format!("Document::\"t{tenant}/msa\"")).unwrap(),
                None,
            )
            .unwrap();
        let decision = pack.decide(&request, &entities);
        assert!(decision.is_allowed(), "{decision:?}");
        assert_eq!(
            decision.determining[0].id.to_string(),
            format!("t{tenant}-legal-contracts")
        );
        group.bench_function(format!("warden_tenant_policy_of_{n_tenants}"), |b| {
            b.iter(|| black_box(pack.decide(black_box(&request), &entities)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decisions);
criterion_main!(benches);
