//! One decision on the example pack, against raw Cedar on the same data as the baseline, and
//! the same request against the pack plus 10,000 tenant-specific policies.
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

/// 10,000 policies in the shape of the example's tenant policy, one per synthetic tenant.
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

fn bench_decisions(c: &mut Criterion) {
    let entities_json = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/saas/entities.json"),
    )
    .unwrap();
    let small = Pack::compile(&example_sources()).unwrap().pack;
    let large = Pack::compile(&with_tenant_policies(example_sources(), 10_000))
        .unwrap()
        .pack;
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
    assert!(large.decide(&request, &entities).is_allowed());

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
    group.bench_function("warden_example_pack_plus_10k_tenant_policies", |b| {
        b.iter(|| black_box(large.decide(black_box(&request), &entities)))
    });
    group.finish();
}

criterion_group!(benches, bench_decisions);
criterion_main!(benches);
