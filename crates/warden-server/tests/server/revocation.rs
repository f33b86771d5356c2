//! Revocation through the admin API, checked on `/v1/check` after the signature on every
//! request: by token id (also while the token sits in the verified-token cache), session,
//! subject (tokens issued before the revocation only), client and key; refusals of bad
//! revocations; survival across a restart; and a lapsed revocation that lets nothing back in.

use serde_json::{Value, json};
use warden_testkit::claims_at;

use crate::support::{ADMIN_SECRET, ISSUER, SCOPED_ADMIN_SECRET, Setup, TestServer, now};

fn token(server: &TestServer, edit: impl FnOnce(&mut Value)) -> String {
    let mut claims = claims_at(ISSUER, now());
    claims["sub"] = json!("carol");
    claims["org_id"] = json!("acme");
    claims["roles"] = json!([]);
    edit(&mut claims);
    server.key.token(&claims)
}

async fn check(server: &TestServer, token: &str) -> (u16, Value) {
    let response = server
        .client
        .post(server.url("/v1/check"))
        .bearer_auth(token)
        .json(&json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn revoke(server: &TestServer, body: Value) -> (u16, Value) {
    server
        .admin(
            reqwest::Method::POST,
            "/v1/admin/revocations",
            Some(ADMIN_SECRET),
            Some(&body),
        )
        .await
}

async fn assert_revoked(server: &TestServer, token: &str, kind: &str) {
    let (status, body) = check(server, token).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["reason"], "token_revoked", "{body}");
    assert!(
        body["detail"].as_str().unwrap_or_default().contains(kind),
        "{body}"
    );
}

async fn store_server() -> TestServer {
    TestServer::start(Setup {
        storage: Some(String::new()),
        ..Setup::default()
    })
    .await
}

#[tokio::test]
async fn a_token_revoked_while_cached_is_refused_on_the_next_request() {
    let server = store_server().await;
    let first = token(&server, |c| c["jti"] = json!("jti-1"));
    let second = token(&server, |c| c["jti"] = json!("jti-2"));
    assert_eq!(check(&server, &first).await.0, 200);
    assert_eq!(check(&server, &first).await.0, 200, "now cached");
    let (status, made) = revoke(
        &server,
        json!({"kind": "token", "issuer": ISSUER, "value": "jti-1", "reason": "laptop stolen"}),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["kind"], "token");
    assert_eq!(made["actor"], "admin:adm_test");
    assert_revoked(&server, &first, "token").await;
    assert_eq!(
        check(&server, &second).await.0,
        200,
        "another jti is untouched"
    );

    let (status, listed) = server
        .admin(
            reqwest::Method::GET,
            "/v1/admin/revocations",
            Some(ADMIN_SECRET),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["revocations"][0]["value"], "jti-1");
    assert_eq!(listed["revocations"][0]["reason"], "laptop stolen");
}

#[tokio::test]
async fn a_session_revocation_covers_every_token_of_the_session() {
    let server = store_server().await;
    let a = token(&server, |c| {
        c["jti"] = json!("a");
        c["sid"] = json!("s-1");
    });
    let b = token(&server, |c| {
        c["jti"] = json!("b");
        c["sid"] = json!("s-1");
    });
    let other = token(&server, |c| {
        c["jti"] = json!("c");
        c["sid"] = json!("s-2");
    });
    revoke(
        &server,
        json!({"kind": "session", "issuer": ISSUER, "value": "s-1", "reason": "logout"}),
    )
    .await;
    assert_revoked(&server, &a, "session").await;
    assert_revoked(&server, &b, "session").await;
    assert_eq!(check(&server, &other).await.0, 200);
}

#[tokio::test]
async fn a_subject_revocation_refuses_tokens_issued_before_it_and_accepts_later_ones() {
    let server = store_server().await;
    let before = token(&server, |c| c["iat"] = json!(now() - 30));
    assert_eq!(check(&server, &before).await.0, 200);
    let (status, made) = revoke(
        &server,
        json!({"kind": "subject", "issuer": ISSUER, "value": "carol", "reason": "password reset"}),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let revoked_at = made["revoked_at"].as_i64().unwrap();
    assert_revoked(&server, &before, "subject").await;
    let just_before = token(&server, |c| {
        c["jti"] = json!("late-1");
        c["iat"] = json!(revoked_at - 1);
    });
    assert_revoked(&server, &just_before, "subject").await;
    let after = token(&server, |c| {
        c["jti"] = json!("late-2");
        c["iat"] = json!(revoked_at);
        c["nbf"] = json!(revoked_at);
    });
    let (status, body) = check(&server, &after).await;
    assert_eq!(
        status, 200,
        "a token issued at or after the revocation works: {body}"
    );
    let someone_else = token(&server, |c| {
        c["sub"] = json!("dave");
        c["iat"] = json!(now() - 30);
    });
    assert_eq!(check(&server, &someone_else).await.0, 200);
}

#[tokio::test]
async fn client_and_key_revocations() {
    let server = store_server().await;
    let service = token(&server, |c| {
        c["jti"] = json!("svc");
        c["client_id"] = json!("svc-reports");
    });
    let other_client = token(&server, |c| {
        c["jti"] = json!("svc2");
        c["azp"] = json!("svc-billing");
    });
    revoke(
        &server,
        json!({"kind": "client", "value": "svc-reports", "reason": "decommissioned"}),
    )
    .await;
    assert_revoked(&server, &service, "client").await;
    assert_eq!(check(&server, &other_client).await.0, 200);

    let (status, _) = revoke(
        &server,
        json!({"kind": "key", "value": "k1", "reason": "key leaked"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_revoked(&server, &other_client, "key").await;
    let fresh = token(&server, |c| c["jti"] = json!("minted-after"));
    assert_revoked(&server, &fresh, "key").await;
}

#[tokio::test]
async fn bad_revocations_are_refused_and_change_nothing() {
    let server = store_server().await;
    let cases = [
        json!({"kind": "token", "value": "x", "reason": "r"}),
        json!({"kind": "token", "issuer": "https://typo.example", "value": "x", "reason": "r"}),
        json!({"kind": "client", "issuer": ISSUER, "value": "x", "reason": "r"}),
        json!({"kind": "everything", "value": "x", "reason": "r"}),
        json!({"kind": "token", "issuer": ISSUER, "value": "", "reason": "r"}),
        json!({"kind": "token", "issuer": ISSUER, "value": "x", "reason": " "}),
        json!({"kind": "token", "issuer": ISSUER, "value": "x", "reason": "r", "expires_at": 1}),
        json!({"kind": "token", "issuer": ISSUER, "value": "x", "reason": "r", "surprise": true}),
    ];
    for body in cases {
        let (status, answer) = revoke(&server, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
    }
    let (status, _) = server
        .admin(
            reqwest::Method::POST,
            "/v1/admin/revocations",
            Some(SCOPED_ADMIN_SECRET),
            Some(&json!({"kind": "key", "value": "k1", "reason": "r"})),
        )
        .await;
    assert_eq!(status, 403, "a tenant-scoped admin may not revoke globally");
    let (status, _) = server
        .admin(
            reqwest::Method::POST,
            "/v1/admin/revocations",
            None,
            Some(&json!({"kind": "key", "value": "k1", "reason": "r"})),
        )
        .await;
    assert_eq!(status, 401);
    let (_, listed) = server
        .admin(
            reqwest::Method::GET,
            "/v1/admin/revocations",
            Some(ADMIN_SECRET),
            None,
        )
        .await;
    assert_eq!(listed["revocations"], json!([]));
    let fine = token(&server, |_| {});
    assert_eq!(check(&server, &fine).await.0, 200);
}

#[tokio::test]
async fn revocations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let first = TestServer::start(Setup {
        storage: Some(url.clone()),
        ..Setup::default()
    })
    .await;
    revoke(
        &first,
        json!({"kind": "token", "issuer": ISSUER, "value": "jti-restart", "reason": "r"}),
    )
    .await;
    drop(first);
    let second = TestServer::start(Setup {
        storage: Some(url),
        ..Setup::default()
    })
    .await;
    let token = token(&second, |c| c["jti"] = json!("jti-restart"));
    assert_revoked(&second, &token, "token").await;
}

#[tokio::test]
async fn a_revocation_that_lapses_with_its_token_lets_nothing_back_in() {
    let server = store_server().await;
    let exp = now() + 2;
    let short = token(&server, |c| {
        c["jti"] = json!("short");
        c["exp"] = json!(exp);
    });
    assert_eq!(check(&server, &short).await.0, 200);
    let (status, _) = revoke(
        &server,
        json!({"kind": "token", "issuer": ISSUER, "value": "short", "reason": "r", "expires_at": exp}),
    )
    .await;
    assert_eq!(status, 200);
    assert_revoked(&server, &short, "token").await;
    // Past the revocation's expiry the token is refused still: revoked within the margin that
    // covers clock leeway, expired after it; never allowed.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, body) = check(&server, &short).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["reason"] == "token_revoked" || body["reason"] == "token_expired",
        "{body}"
    );
}

/// An enforcement point that verified a token itself forwards its identifiers in
/// `subject.properties.token`; a revocation in Warden denies on the AuthZEN path too.
#[tokio::test]
async fn a_forwarded_token_that_is_revoked_is_denied_on_the_authzen_path() {
    let server = store_server().await;
    let evaluate = |token: Value| {
        let server = &server;
        async move {
            let (status, body) = server
                .pep_post(
                    "/access/v1/evaluation",
                    &json!({
                        "subject": {"type": "User", "id": "acme/carol", "properties": {"token": token}},
                        "action": {"name": "read"},
                        "resource": {"type": "Document", "id": "acme/roadmap"},
                    }),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let issued = now() - 10;
    let forwarded = json!({"iss": ISSUER, "jti": "fwd-1", "sub": "carol", "iat": issued});
    assert_eq!(evaluate(forwarded.clone()).await["decision"], true);

    let (status, body) = revoke(
        &server,
        json!({"kind": "token", "issuer": ISSUER, "value": "fwd-1", "reason": "leaked"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let denied = evaluate(forwarded.clone()).await;
    assert_eq!(denied["decision"], false, "{denied}");
    assert_eq!(denied["context"]["reason"], "token_revoked", "{denied}");
    // The searches refuse the revoked token's subject too: they find nothing for it.
    let search = |token: Option<Value>| {
        let server = &server;
        async move {
            let subject = match token {
                Some(token) => {
                    json!({"type": "User", "id": "acme/carol", "properties": {"token": token}})
                }
                None => json!({"type": "User", "id": "acme/carol"}),
            };
            let (status, body) = server
                .pep_post(
                    "/access/v1/search/resource",
                    &json!({"subject": subject, "action": {"name": "read"}, "resource": {"type": "Document"}}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body["results"].as_array().unwrap().len()
        }
    };
    assert_eq!(search(Some(forwarded)).await, 0);
    assert!(search(None).await > 0);
    let live = json!({"iss": ISSUER, "jti": "fwd-live", "sub": "carol", "iat": issued});
    assert_eq!(search(Some(live)).await, search(None).await);
    // Another token of the same user is untouched; a subject revocation takes the older ones.
    let sibling = json!({"iss": ISSUER, "jti": "fwd-2", "sub": "carol", "iat": issued});
    assert_eq!(evaluate(sibling.clone()).await["decision"], true);
    revoke(
        &server,
        json!({"kind": "subject", "issuer": ISSUER, "value": "carol", "reason": "offboarded"}),
    )
    .await;
    assert_eq!(
        evaluate(sibling).await["context"]["reason"],
        "token_revoked"
    );
    // Malformed identifiers fail closed.
    let malformed = evaluate(json!({"iss": ISSUER, "iat": "yesterday"})).await;
    assert_eq!(malformed["decision"], false);
    assert_eq!(
        malformed["context"]["reason"], "invalid_request",
        "{malformed}"
    );
}

/// Issue #18: a token whose header names no `kid` is verified by the issuer's only key; a
/// revocation of that key (by its `kid` in the key set, or by its RFC 7638 thumbprint) must
/// refuse it too, as it refuses tokens that name the key.
#[tokio::test]
async fn a_key_revocation_refuses_tokens_whose_header_names_no_kid() {
    use base64::Engine as _;
    use sha2::Digest as _;

    let without_kid = |server: &TestServer, jti: &str| {
        let mut claims = claims_at(ISSUER, now());
        claims["sub"] = json!("carol");
        claims["org_id"] = json!("acme");
        claims["jti"] = json!(jti);
        server
            .key
            .token_raw(r#"{"alg":"RS256","typ":"JWT"}"#, &claims.to_string())
    };

    let server = store_server().await;
    let anonymous = without_kid(&server, "no-kid-1");
    assert_eq!(check(&server, &anonymous).await.0, 200);
    let (status, _) = revoke(
        &server,
        json!({"kind": "key", "value": "k1", "reason": "key leaked"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_revoked(&server, &anonymous, "key").await;

    // By thumbprint, computed here as RFC 7638 says, independently of the server.
    let server = store_server().await;
    let jwk = server.key.jwk();
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        jwk["e"].as_str().unwrap(),
        jwk["n"].as_str().unwrap()
    );
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(canonical.as_bytes()));
    let anonymous = without_kid(&server, "no-kid-2");
    let named = token(&server, |c| c["jti"] = json!("named"));
    assert_eq!(check(&server, &anonymous).await.0, 200);
    assert_eq!(check(&server, &named).await.0, 200);
    let (status, _) = revoke(
        &server,
        json!({"kind": "key", "value": thumbprint, "reason": "key leaked"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_revoked(&server, &anonymous, "key").await;
    assert_revoked(&server, &named, "key").await;
}

/// A database restored from a backup (or replaced) has a change counter lower than what the
/// replicas saw. Versions then order nothing: a replica must read everything again, or a
/// revocation written after the restore (at a version it believes it has seen) never reaches
/// it and the revoked token keeps working there.
#[tokio::test]
async fn a_revocation_after_a_store_restore_reaches_the_other_replica() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let replica = |url: String| {
        TestServer::start(Setup {
            storage: Some(url),
            ..Setup::default()
        })
    };
    let a = replica(url.clone()).await;
    let b = replica(url.clone()).await;
    for i in 0..3 {
        let (status, _) = revoke(
            &a,
            json!({"kind": "token", "issuer": ISSUER, "value": format!("before-{i}"), "reason": "r"}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let seen_by_b = || async {
        let (_, ready) = b.get("/readyz").await;
        ready["checks"]["policy"]["store_version"]
            .as_i64()
            .unwrap_or(0)
    };
    let mut caught_up = false;
    for _ in 0..50 {
        if seen_by_b().await >= 3 {
            caught_up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(caught_up, "replica b did not read the writes");

    // The database is restored to a point before those writes.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE store_version SET version = 0")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let on_b = token(&b, |c| c["jti"] = json!("after-restore"));
    assert_eq!(check(&b, &on_b).await.0, 200);
    let (status, _) = revoke(
        &a,
        json!({"kind": "token", "issuer": ISSUER, "value": "after-restore", "reason": "stolen"}),
    )
    .await;
    assert_eq!(status, 200);
    let mut refused = false;
    for _ in 0..30 {
        if check(&b, &on_b).await.0 == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "the revocation never reached replica b");
    assert_revoked(&b, &on_b, "token").await;
    // What b held before the restore still holds.
    let old = token(&b, |c| c["jti"] = json!("before-0"));
    assert_revoked(&b, &old, "token").await;
}

/// Issue #22: the cleanup pass itself, run at chosen times (not the minute timer): a lapsed
/// revocation's row is deleted only past the leeway margin, one without an expiry never, and
/// what stays in force keeps refusing. On SQLite and PostgreSQL.
#[tokio::test]
async fn the_cleanup_deletes_lapsed_revocations_past_the_margin_and_nothing_else() {
    use warden_server::revocation::EXPIRY_MARGIN_SECONDS;
    use warden_server::store_sync::clean_up;

    for (backend, server) in crate::support::servers_with_a_store().await {
        let lapses_at = now() + 10;
        for (value, expires_at) in [("lapsing", Some(lapses_at)), ("forever", None)] {
            let mut body =
                json!({"kind": "token", "issuer": ISSUER, "value": value, "reason": "test"});
            if let Some(at) = expires_at {
                body["expires_at"] = json!(at);
            }
            let (status, answer) = revoke(&server, body).await;
            assert_eq!(status, 200, "{backend}: {answer}");
        }
        let state = server.server.as_ref().unwrap().state();
        let store = state.store.clone().unwrap();
        let rows = |store: warden_store::Store| async move {
            let mut values: Vec<String> = store
                .revocations(i64::MIN, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|revocation| revocation.value)
                .collect();
            values.sort();
            values
        };
        assert_eq!(
            rows(store.clone()).await,
            ["forever", "lapsing"],
            "{backend}"
        );

        // Now, and within the margin after the expiry: nothing goes.
        for at in [now(), lapses_at + EXPIRY_MARGIN_SECONDS - 1] {
            let cleaned = clean_up(&store, &state.revocations, at).await;
            assert_eq!(cleaned.in_store, 0, "{backend} at {at}");
            assert_eq!(
                rows(store.clone()).await,
                ["forever", "lapsing"],
                "{backend}"
            );
        }
        let lapsing = token(&server, |c| c["jti"] = json!("lapsing"));
        assert_revoked(&server, &lapsing, "token").await;

        // Past the margin: the lapsed row is deleted, from the store and from memory.
        let cleaned = clean_up(
            &store,
            &state.revocations,
            lapses_at + EXPIRY_MARGIN_SECONDS + 2,
        )
        .await;
        assert_eq!(cleaned.in_store, 1, "{backend}");
        assert_eq!(rows(store.clone()).await, ["forever"], "{backend}");
        // In memory: the store poll may apply the revocation's change once more after the pass
        // (under load it lags); the next pass removes it again. Bounded.
        let mut in_memory = state.revocations.len();
        for _ in 0..50 {
            if in_memory == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            clean_up(
                &store,
                &state.revocations,
                lapses_at + EXPIRY_MARGIN_SECONDS + 2,
            )
            .await;
            in_memory = state.revocations.len();
        }
        assert_eq!(in_memory, 1, "{backend}: {cleaned:?}");

        // The one without an expiry still refuses, even far in the future.
        let cleaned = clean_up(&store, &state.revocations, now() + 10 * 365 * 86_400).await;
        assert_eq!(cleaned.in_store, 0, "{backend}");
        let forever = token(&server, |c| c["jti"] = json!("forever"));
        assert_revoked(&server, &forever, "token").await;
    }
}
