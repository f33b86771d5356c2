//! Decision latency with 1,000,000 active revocations against none, in the same run: the
//! revocation check of a verified token (the same `RevocationSet::check` `/v1/check` runs after
//! the signature) followed by the decision, on the example pack.
//!
//! `cargo bench -p warden-service --bench revocation`
//!
//! Two kinds of decision: the same input every time (answered by the snapshot's decision cache
//! after the first, as a repeated request is) and a new input every time (a `support_ticket`
//! context value that counts up: Cedar evaluates each one). The revocation check runs before
//! either, whatever the cache holds.
//!
//! Criterion measures each case on its own; on a noisy machine two separate measurements can
//! differ by a third. So the bench then also alternates the cases in short blocks (the same
//! process, the same minute) and prints the ratio of their medians: that is the figure to read.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark setup"
)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::Criterion;
use serde_json::json;
use warden_service::engine::{self, DecisionInput, DecisionScope, EntityInput, PrincipalInput};
use warden_service::revocation::RevocationSet;
use warden_service::snapshot::PolicyHolder;
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
                issuer: if kind.issuer_scoped() {
                    ISSUER.to_owned()
                } else {
                    String::new()
                },
                value: format!("revoked-{i}"),
                revoked_at: 1,
                expires_at: None,
                reason: "bench".to_owned(),
                actor: "admin:bench".to_owned(),
            }
        })
        .collect()
}

struct Fixture {
    /// Counts up for the inputs that are new every time.
    ticket: std::cell::Cell<u64>,
    verified: Arc<warden_token::VerifiedToken>,
    scope: DecisionScope,
    now: i64,
    none: RevocationSet,
    million: RevocationSet,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn decide(&self, set: &RevocationSet, new_input: bool) {
        assert!(set.check(black_box(&self.verified), self.now).is_none());
        let context = new_input.then(|| {
            self.ticket.set(self.ticket.get() + 1);
            json!({"support_ticket": format!("T-{}", self.ticket.get())})
        });
        let outcome = engine::decide(
            &self.scope,
            &DecisionInput {
                principal: PrincipalInput::Token(&self.verified.principal),
                action: "read".to_owned(),
                resource: EntityInput {
                    entity_type: "Document".to_owned(),
                    id: "acme/roadmap".to_owned(),
                    properties: None,
                },
                context,
            },
        );
        assert!(outcome.allowed());
    }
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
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
    let files = warden_service::reload::read_sources(&warden_config::PolicySettings {
        dir: root.clone(),
        entities_file: Some(root.join("entities.json")),
        watch: false,
    })
    .unwrap();
    warden_service::reload::install(&files, &holder).unwrap();
    let scope = DecisionScope {
        snapshot: holder.current().unwrap(),
        stale: None,
        claim_attributes: Arc::new(Vec::new()),
        audit_down: None,
    };
    let none = RevocationSet::default();
    let million = RevocationSet::default();
    million.apply(&revocations(1_000_000));
    assert_eq!(million.len(), 1_000_000);
    Fixture {
        ticket: std::cell::Cell::new(0),
        verified,
        scope,
        now,
        none,
        million,
        _dir: dir,
    }
}

fn bench(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("revocation");
    group.bench_function("decide_with_no_revocations", |b| {
        b.iter(|| f.decide(&f.none, false))
    });
    group.bench_function("decide_with_1m_revocations", |b| {
        b.iter(|| f.decide(&f.million, false))
    });
    group.bench_function("decide_new_input_with_no_revocations", |b| {
        b.iter(|| f.decide(&f.none, true))
    });
    group.bench_function("decide_new_input_with_1m_revocations", |b| {
        b.iter(|| f.decide(&f.million, true))
    });
    group.bench_function("check_only_no_revocations", |b| {
        b.iter(|| f.none.check(black_box(&f.verified), f.now))
    });
    group.bench_function("check_only_1m_revocations", |b| {
        b.iter(|| f.million.check(black_box(&f.verified), f.now))
    });
    group.finish();
}

/// Alternates the two cases in blocks and compares the medians of the block means.
fn interleaved(f: &Fixture, new_input: bool) {
    const ROUNDS: usize = 40;
    const BLOCK: u32 = 2_000;
    let block = |set: &RevocationSet| {
        let started = std::time::Instant::now();
        for _ in 0..BLOCK {
            f.decide(set, new_input);
        }
        started.elapsed().as_nanos() as f64 / f64::from(BLOCK)
    };
    let (mut none, mut million) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always runs on a warmer cache.
        if round % 2 == 0 {
            none.push(block(&f.none));
            million.push(block(&f.million));
        } else {
            million.push(block(&f.million));
            none.push(block(&f.none));
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (none, million) = (median(&mut none), median(&mut million));
    println!(
        "interleaved, {} ({ROUNDS} rounds of {BLOCK} decisions each): no revocations {:.2} µs, 1,000,000 revocations {:.2} µs, ratio {:.3}",
        if new_input {
            "a new input every time"
        } else {
            "the same input every time"
        },
        none / 1000.0,
        million / 1000.0,
        million / none
    );
}

fn main() {
    let f = fixture();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &f);
    criterion.final_summary();
    interleaved(&f, false);
    interleaved(&f, true);
}
