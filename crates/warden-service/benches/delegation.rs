//! The cost of a delegated token (RFC 8693, issue #25) on the request path: `Service::
//! authenticate` of the user's own token (the baseline), of a service account's own token, and
//! of delegated tokens one and two actors deep, each through the verified-token cache as on a
//! busy server; and one whole exchange (the subject token verified, a new token signed).
//!
//! Run: `cargo bench -p warden-service --bench delegation`. Figures go in `docs/performance.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark setup"
)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden_service::token_exchange::ExchangeRequest;
use warden_store::{AccountStatus, ServiceAccount};
use warden_testkit::{TestKey, claims_at, jwks};

const IDP: &str = "https://idp.bench";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn account(client_id: &str, now: i64) -> ServiceAccount {
    ServiceAccount {
        client_id: client_id.to_owned(),
        tenant: "acme".to_owned(),
        name: client_id.to_owned(),
        owner: "User::\"acme/alice\"".to_owned(),
        purpose: "bench".to_owned(),
        scopes: vec![
            "warden:token-exchange".to_owned(),
            "documents:read".to_owned(),
        ],
        token_ttl_seconds: 600,
        created_at: now,
        created_by: "bench".to_owned(),
        expires_at: now + 86_400,
        status: AccountStatus::Active,
        last_used_at: None,
        credentials: Vec::new(),
    }
}

fn bench_delegation(c: &mut Criterion) {
    warden_token::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::rsa("k1");
    std::fs::write(dir.path().join("jwks.json"), jwks(&[&key])).unwrap();
    std::fs::write(dir.path().join("kek"), "5f".repeat(32)).unwrap();
    let pack = root().join("examples/saas");
    let config_path = dir.path().join("warden.toml");
    std::fs::write(
        &config_path,
        format!(
            "[policy]\ndir = {:?}\nentities_file = {:?}\nwatch = false\n[storage]\nurl = \"sqlite://{}\"\nmax_staleness_seconds = 3600\n[tokens]\nissuer = \"http://127.0.0.1:8180\"\nkey_encryption_key_file = \"kek\"\n[[issuers]]\nissuer = {IDP:?}\naudiences = [\"warden\"]\njwks_file = \"jwks.json\"\nalgorithms = [\"RS256\"]\n[issuers.claims]\ntenant = \"org_id\"\nroles = \"roles\"\n",
            pack.display().to_string(),
            pack.join("entities.json").display().to_string(),
            dir.path().join("warden.db").display()
        ),
    )
    .unwrap();
    let config = warden_config::load(Some(&config_path), &[]).unwrap();
    let (service, worker, helper) = runtime.block_on(async {
        let service = warden_service::start::open_offline(&config).await.unwrap();
        let store = service.store.clone().unwrap();
        let now = warden_service::clock::unix_now();
        let (worker, helper) = (account("sa_worker", now), account("sa_helper", now));
        store.create_service_account(&worker).await.unwrap();
        store.create_service_account(&helper).await.unwrap();
        let issuer = service.token_issuer.clone().unwrap();
        issuer.sync(&store, &service.verifier, now).await.unwrap();
        (service, worker, helper)
    });
    let issuer = service.token_issuer.clone().unwrap();
    let user = {
        let mut claims = claims_at(IDP, warden_service::clock::unix_now());
        claims["sub"] = json!("carol");
        claims["scope"] = json!("documents:read");
        key.token(&claims)
    };
    let exchange = |subject: &str, actor: &ServiceAccount| {
        let request = ExchangeRequest {
            subject_token: Some(subject),
            subject_token_type: Some(ACCESS_TOKEN),
            ..ExchangeRequest::default()
        };
        let now = warden_service::clock::unix_now();
        runtime
            .block_on(service.exchange(&issuer, actor, &request, now))
            .unwrap()
            .access_token
    };
    let one = exchange(&user, &worker);
    let two = exchange(&one, &helper);
    let own = {
        // A service account's own token: signed as the token endpoint signs it.
        let now = warden_service::clock::unix_now();
        warden_issuer::access_token::mint(
            &issuer.signing_key().unwrap(),
            &warden_issuer::access_token::AccessClaims {
                iss: "http://127.0.0.1:8180",
                sub: "sa_worker",
                aud: "warden",
                exp: now + 600,
                iat: now,
                nbf: now,
                jti: "bench-own",
                client_id: "sa_worker",
                tenant: "acme",
                scope: "documents:read",
            },
        )
        .unwrap()
    };

    let mut group = c.benchmark_group("authenticate");
    for (name, token) in [
        ("user_token", &user),
        ("service_account_token", &own),
        ("delegated_one_actor", &one),
        ("delegated_two_actors", &two),
    ] {
        // Verified once: the rows compare the checks after the verified-token cache.
        let bearer = runtime.block_on(service.authenticate(token)).unwrap();
        assert_eq!(
            bearer.principal().subject.as_str(),
            if name == "service_account_token" {
                "sa_worker"
            } else {
                "carol"
            }
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(service.authenticate(black_box(token)))
                    .unwrap()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("exchange");
    group.bench_function("user_token_for_worker", |b| {
        b.iter(|| black_box(exchange(black_box(&user), &worker)))
    });
    group.finish();
}

criterion_group!(benches, bench_delegation);
criterion_main!(benches);
