//! Token verification cost per algorithm: the bare signature check (baseline), Warden's full
//! verification without the cache (cold), and through the verified-token cache.
//!
//! Run: `cargo bench -p warden-token --bench verify`. Figures go in `docs/performance.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark setup"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey};
use warden_testkit::{NOW, TestKey, claims, jwks};
use warden_token::{IssuerSettings, Verifier};

fn bench_verify(c: &mut Criterion) {
    warden_token::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("RS256", TestKey::rsa("rsa"), Algorithm::RS256),
        ("ES256", TestKey::ec("ec"), Algorithm::ES256),
        ("EdDSA", TestKey::ed("ed"), Algorithm::EdDSA),
    ];
    let mut group = c.benchmark_group("verify");
    for (name, key, algorithm) in cases {
        let issuer = format!("https://{name}.bench");
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, jwks(&[&key])).unwrap();
        let settings: IssuerSettings = toml::from_str(&format!(
            "issuer = {issuer:?}\naudiences = [\"warden\"]\njwks_file = {:?}\nalgorithms = [\"{name}\"]\n[claims]\ntenant = \"org_id\"\nroles = \"roles\"\n",
            path.display().to_string()
        ))
        .unwrap();
        let verifier = Verifier::new(vec![settings.check(&|_| None).unwrap()], 1000).unwrap();
        assert!(runtime.block_on(verifier.load_keys()).is_empty());
        let token = key.token(&claims(&issuer));
        assert!(runtime.block_on(verifier.verify(&token, NOW)).is_ok());

        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).unwrap();
        let decoding_key = DecodingKey::from_jwk(&jwk).unwrap();
        let split = token.rfind('.').unwrap();
        let (signing_input, signature) = (&token[..split], &token[split + 1..]);
        group.bench_function(format!("{name}/signature_only_baseline"), |b| {
            b.iter(|| {
                black_box(
                    jsonwebtoken::crypto::verify(
                        signature,
                        signing_input.as_bytes(),
                        &decoding_key,
                        algorithm,
                    )
                    .unwrap(),
                )
            })
        });
        group.bench_function(format!("{name}/warden_cold"), |b| {
            b.iter(|| {
                black_box(
                    runtime
                        .block_on(verifier.verify_uncached(black_box(&token), NOW))
                        .unwrap(),
                )
            })
        });
        group.bench_function(format!("{name}/warden_cached"), |b| {
            b.iter(|| {
                black_box(
                    runtime
                        .block_on(verifier.verify(black_box(&token), NOW))
                        .unwrap(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
