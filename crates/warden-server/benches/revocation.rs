//! Decision latency with 1,000,000 active revocations against none, in the same run: the
//! revocation check of a verified token (the same `RevocationSet::check` `/v1/check` runs after
//! the signature) followed by the decision, on the example pack.
//!
//! `cargo bench -p warden-server --bench revocation`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden_server::engine::{self, DecisionInput, DecisionScope, EntityInput, PrincipalInput};
use warden_server::revocation::RevocationSet;
use warden_server::state::PolicyHolder;
use warden_store::{Revocation, RevocationKind};
use warden_testkit::{TestKey, claims_at, jwks};

const ISSUER: &str = "https://idp.bench";

fn revocations(n: usize) -> Vec<Revocation> {
    let kinds = [
        RevocationKind::Token,
        RevocationKind::Token,
        RevocationKind::Token,
        RevocationKind::Token,
        RevocationKind::Session,
        RevocationKind::Session,
        RevocationKind::Subject,
        RevocationKind::Subject,
        RevocationKind::Client,
        RevocationKind::Key,
    ];
    (0..n)
        .map(|i| {
            let kind = kinds[i % kinds.len()];
            Revocation {
                id: i as i64,
                version: i as i64,
                kind,
                issuer: if kind.issuer_scoped() { ISSUER.to_owned() } else { String::new() },
                value: format!("revoked-{i}"),
                revoked_at: 1,
                expires_at: None,
                reason: "bench".to_owned(),
                actor: "admin:bench".to_owned(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    warden_token::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::rsa("k1");
    std::fs::write(dir.path().join("jwks.json"), jwks(&[&key])).unwrap();
    let settings: warden_token::IssuerSettings = serde_json::from_value(json!({
        "issuer": ISSUER,
        "audiences": ["warden"],
        "jwks_file": dir.path().join("jwks.json"),
        "algorithms": ["RS256"],
        "claims": {"tenant": "org_id", "roles": "roles"},
    }))
    .unwrap();
    let config = settings.check(&|_: &str| None).unwrap();
    let verifier = warden_token::Verifier::new(vec![config], 1024).unwrap();
    assert!(runtime.block_on(verifier.load_keys()).is_empty());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = claims_at(ISSUER, now);
    claims["sub"] = json!("carol");
    claims["sid"] = json!("session-1");
    claims["client_id"] = json!("web");
    let token = key.token(&claims);
    let verified = runtime.block_on(verifier.verify(&token, now)).unwrap();

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/saas");
    let holder = PolicyHolder::default();
    let files = warden_server::reload::read_sources(&warden_config::PolicySettings {
        dir: root.clone(),
        entities_file: Some(root.join("entities.json")),
        watch: false,
    })
    .unwrap();
    warden_server::reload::install(&files, &holder).unwrap();
    let scope = DecisionScope {
        snapshot: holder.current().unwrap(),
        stale: None,
        claim_attributes: Arc::new(Vec::new()),
        audit_down: None,
    };
    let decide = |set: &RevocationSet| {
        assert!(set.check(black_box(&verified), now).is_none());
        let outcome = engine::decide(
            &scope,
            &DecisionInput {
                principal: PrincipalInput::Token(&verified.principal),
                action: "read".to_owned(),
                resource: EntityInput {
                    entity_type: "Document".to_owned(),
                    id: "acme/roadmap".to_owned(),
                    properties: None,
                },
                context: None,
            },
        );
        assert!(outcome.allowed());
    };

    let none = RevocationSet::default();
    let million = RevocationSet::default();
    million.apply(&revocations(1_000_000));
    assert_eq!(million.len(), 1_000_000);

    let mut group = c.benchmark_group("revocation");
    group.bench_function("decide_with_no_revocations", |b| b.iter(|| decide(&none)));
    group.bench_function("decide_with_1m_revocations", |b| b.iter(|| decide(&million)));
    group.bench_function("check_only_no_revocations", |b| {
        b.iter(|| none.check(black_box(&verified), now))
    });
    group.bench_function("check_only_1m_revocations", |b| {
        b.iter(|| million.check(black_box(&verified), now))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
