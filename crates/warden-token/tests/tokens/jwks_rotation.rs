//! JWKS against a real HTTP server on 127.0.0.1: the IdP rotates its keys, a token signed by
//! the new key verifies after one refresh, a flood of unknown kids causes at most the configured
//! number of fetches, and an IdP that goes down keeps its last keys serving for a bounded time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;
use warden_token::{TokenReason, Verifier};

use crate::support::*;

const ISSUER: &str = "https://rotating.test";

#[derive(Default)]
struct Idp {
    jwks: Mutex<String>,
    down: Mutex<bool>,
    fetches: AtomicUsize,
}

async fn serve_jwks(
    State(idp): State<Arc<Idp>>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    idp.fetches.fetch_add(1, Ordering::SeqCst);
    if *idp.down.lock().unwrap() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("cache-control", "no-store")],
            String::new(),
        );
    }
    (
        StatusCode::OK,
        [("cache-control", "max-age=600")],
        idp.jwks.lock().unwrap().clone(),
    )
}

async fn start_idp(initial_jwks: String) -> (Arc<Idp>, String) {
    let idp = Arc::new(Idp {
        jwks: Mutex::new(initial_jwks),
        ..Idp::default()
    });
    let app = Router::new()
        .route("/jwks.json", get(serve_jwks))
        .with_state(Arc::clone(&idp));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (idp, format!("http://{address}/jwks.json"))
}

async fn verifier_for(uri: &str, extra: &str) -> Verifier {
    install();
    let text = format!(
        "issuer = {ISSUER:?}\naudiences = [\"warden\"]\njwks_uri = {uri:?}\nalgorithms = [\"RS256\", \"ES256\"]\n{extra}"
    );
    let config = settings(&text).check(&|_| None).unwrap();
    let verifier = Verifier::new(vec![config], 1000).unwrap();
    assert!(verifier.load_keys().await.is_empty());
    verifier
}

#[tokio::test]
async fn rotation_is_picked_up_with_one_refresh_and_floods_are_rate_limited() {
    let old = TestKey::rsa("2026-old");
    let new = TestKey::ec("2026-new");
    let (idp, uri) = start_idp(jwks(&[&old])).await;
    let verifier = verifier_for(&uri, "jwks_unknown_kid_interval_seconds = 3600\n").await;
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);

    let old_token = old.token(&claims(ISSUER));
    assert!(verifier.verify(&old_token, NOW).await.is_ok());

    // The IdP rotates: the new key is published, the old one withdrawn.
    *idp.jwks.lock().unwrap() = jwks(&[&new]);
    let new_token = new.token(&claims(ISSUER));
    assert!(
        verifier.verify(&new_token, NOW).await.is_ok(),
        "the new key is fetched on its unknown kid"
    );
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2, "exactly one refresh");

    // The withdrawn key no longer verifies, cached or not.
    assert_eq!(
        verifier.verify(&old_token, NOW).await.unwrap_err().reason,
        TokenReason::KeyUnknown
    );

    // A flood of random kids: no fetch at all within the interval.
    for n in 0..500 {
        let forged = TestKey::ec(&format!("random-{n}"));
        let token = forged.token_raw(
            &json!({"alg": "ES256", "kid": format!("random-{n}")}).to_string(),
            &claims(ISSUER).to_string(),
        );
        assert_eq!(
            verifier.verify(&token, NOW).await.unwrap_err().reason,
            TokenReason::KeyUnknown
        );
    }
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        2,
        "random kids caused no fetch"
    );
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_fetch() {
    let key = TestKey::rsa("k1");
    let (idp, uri) = start_idp(jwks(&[&key])).await;
    let verifier = Arc::new(verifier_for(&uri, "jwks_unknown_kid_interval_seconds = 3600\n").await);
    let forged = Arc::new(TestKey::ec("x"));
    let mut tasks = Vec::new();
    for n in 0..50 {
        let verifier = Arc::clone(&verifier);
        let forged = Arc::clone(&forged);
        tasks.push(tokio::spawn(async move {
            let token = forged.token_raw(
                &json!({"alg": "ES256", "kid": format!("k-{n}")}).to_string(),
                &claims(ISSUER).to_string(),
            );
            verifier.verify(&token, NOW).await.unwrap_err().reason
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), TokenReason::KeyUnknown);
    }
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        2,
        "the initial load and one refresh"
    );
}

#[tokio::test]
async fn an_idp_outage_serves_stale_keys_within_the_bound_only() {
    let key = TestKey::rsa("k1");
    let (idp, uri) = start_idp(jwks(&[&key])).await;
    let verifier = verifier_for(
        &uri,
        "jwks_unknown_kid_interval_seconds = 0\njwks_max_stale_seconds = 1\n",
    )
    .await;
    *idp.down.lock().unwrap() = true;
    let token = key.token(&claims(ISSUER));
    // The IdP is down, the last keys still serve.
    assert!(verifier.verify_uncached(&token, NOW).await.is_ok());
    let status = verifier.issuers().next().unwrap().keys.status();
    assert!(status.usable);
    // An unknown kid triggers a refresh that fails; nothing changes.
    let other = TestKey::rsa("k2").token(&claims(ISSUER));
    assert_eq!(
        verifier
            .verify_uncached(&other, NOW)
            .await
            .unwrap_err()
            .reason,
        TokenReason::KeyUnknown
    );
    assert!(
        verifier
            .issuers()
            .next()
            .unwrap()
            .keys
            .status()
            .last_error
            .is_some()
    );
    // Past the one-second staleness bound the issuer has no keys: fail closed.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        verifier
            .verify_uncached(&token, NOW)
            .await
            .unwrap_err()
            .reason,
        TokenReason::KeyUnknown
    );
    assert!(!verifier.issuers().next().unwrap().keys.status().usable);
}
