//! Issue #22, the operator's controls: admin credentials as a lifecycle, rate limits (429 with
//! `Retry-After`), `/metrics` behind a credential, and TLS on the listener (rustls, reload on
//! change, client certificates for PEPs). Real servers on 127.0.0.1, real stores.

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{
    ADMIN_SECRET, PEP_SECRET, SCOPED_ADMIN_SECRET, Setup, TestServer, now, servers_with_a_store,
    user_token,
};

async fn admin(
    server: &TestServer,
    method: Method,
    path: &str,
    secret: &str,
    body: Value,
) -> (u16, Value) {
    server.admin(method, path, Some(secret), Some(&body)).await
}

fn secret_of(answer: &Value) -> String {
    answer["secret"]
        .as_str()
        .expect("a secret in the answer")
        .to_owned()
}

#[tokio::test]
async fn admin_credentials_are_created_listed_rotated_and_revoked() {
    for (backend, server) in servers_with_a_store().await {
        // Create one for acme only, expiring in an hour.
        let (status, created) = admin(
            &server,
            Method::POST,
            "/v1/admin/credentials",
            ADMIN_SECRET,
            json!({"tenant": "acme", "expires_in_seconds": 3600, "label": "ci"}),
        )
        .await;
        assert_eq!(status, 201, "{backend}: {created}");
        let acme_id = created["id"].as_str().unwrap().to_owned();
        let acme_secret = secret_of(&created);
        assert!(acme_secret.starts_with("wdn_admin_"), "{backend}");
        assert_eq!(created["tenant"], "acme", "{backend}");
        assert_eq!(created["status"], "active", "{backend}");
        let expires_at = created["expires_at"].as_i64().unwrap();
        assert!(
            (now() + 3590..=now() + 3610).contains(&expires_at),
            "{backend}"
        );

        // It administers acme, not globex, and cannot make credentials.
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/tenants/acme/entities",
            &acme_secret,
            Value::Null,
        )
        .await;
        assert_eq!(status, 200, "{backend}");
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/tenants/globex/entities",
            &acme_secret,
            Value::Null,
        )
        .await;
        assert_eq!(status, 403, "{backend}");
        let (status, _) = admin(
            &server,
            Method::POST,
            "/v1/admin/credentials",
            &acme_secret,
            json!({}),
        )
        .await;
        assert_eq!(
            status, 403,
            "{backend}: a tenant credential makes no credentials"
        );
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/credentials",
            &acme_secret,
            Value::Null,
        )
        .await;
        assert_eq!(status, 403, "{backend}");

        // The list shows it without any secret or digest.
        let (status, listed) = admin(
            &server,
            Method::GET,
            "/v1/admin/credentials",
            ADMIN_SECRET,
            Value::Null,
        )
        .await;
        assert_eq!(status, 200, "{backend}");
        let text = listed.to_string();
        assert!(
            !text.contains(&acme_secret),
            "{backend}: a secret in the list"
        );
        let digest = hex::encode(Sha256::digest(acme_secret.as_bytes()));
        assert!(!text.contains(&digest), "{backend}: a digest in the list");
        let ours = listed["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|credential| credential["id"] == acme_id.as_str())
            .expect("the new credential is listed");
        assert_eq!(ours["label"], "ci");
        assert!(ours.get("secret").is_none());

        // A tenant credential rotates itself: the old secret stops at once.
        let (status, rotated) = admin(
            &server,
            Method::POST,
            &format!("/v1/admin/credentials/{acme_id}/rotate"),
            &acme_secret,
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {rotated}");
        let new_secret = secret_of(&rotated);
        assert_ne!(new_secret, acme_secret);
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/tenants/acme/entities",
            &acme_secret,
            Value::Null,
        )
        .await;
        assert_eq!(status, 401, "{backend}: the rotated-out secret still works");
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/tenants/acme/entities",
            &new_secret,
            Value::Null,
        )
        .await;
        assert_eq!(status, 200, "{backend}");
        // … but not another credential.
        let (status, _) = admin(
            &server,
            Method::POST,
            "/v1/admin/credentials/adm_test/rotate",
            &new_secret,
            json!({}),
        )
        .await;
        assert_eq!(status, 403, "{backend}");

        // Revoking needs a reason; then the credential is refused.
        let revoke = format!("/v1/admin/credentials/{acme_id}/revoke");
        let (status, _) = admin(&server, Method::POST, &revoke, ADMIN_SECRET, json!({})).await;
        assert_eq!(status, 400, "{backend}: a revocation without a reason");
        let (status, revoked) = admin(
            &server,
            Method::POST,
            &revoke,
            ADMIN_SECRET,
            json!({"reason": "left the team"}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {revoked}");
        assert_eq!(revoked["status"], "revoked");
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/tenants/acme/entities",
            &new_secret,
            Value::Null,
        )
        .await;
        assert_eq!(status, 401, "{backend}: a revoked credential still works");
        let (status, _) = admin(
            &server,
            Method::POST,
            &revoke,
            ADMIN_SECRET,
            json!({"reason": "again"}),
        )
        .await;
        assert_eq!(status, 404, "{backend}: revoking twice");
        let (status, _) = admin(
            &server,
            Method::POST,
            &format!("/v1/admin/credentials/{acme_id}/rotate"),
            ADMIN_SECRET,
            json!({}),
        )
        .await;
        assert_eq!(
            status, 404,
            "{backend}: a revoked credential cannot be brought back by rotation"
        );

        // The last credential for all tenants is not revoked by accident.
        let (status, refused) = admin(
            &server,
            Method::POST,
            "/v1/admin/credentials/adm_test/revoke",
            ADMIN_SECRET,
            json!({"reason": "oops"}),
        )
        .await;
        assert_eq!(status, 409, "{backend}: {refused}");
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("last usable admin credential"),
            "{refused}"
        );
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/credentials",
            ADMIN_SECRET,
            Value::Null,
        )
        .await;
        assert_eq!(
            status, 200,
            "{backend}: the refused revocation changed something"
        );

        // With a second one for all tenants, the first can go; the second then cannot.
        let (status, second) = admin(
            &server,
            Method::POST,
            "/v1/admin/credentials",
            ADMIN_SECRET,
            json!({"label": "break-glass"}),
        )
        .await;
        assert_eq!(status, 201, "{backend}: {second}");
        let second_id = second["id"].as_str().unwrap().to_owned();
        let second_secret = secret_of(&second);
        let (status, _) = admin(
            &server,
            Method::POST,
            "/v1/admin/credentials/adm_test/revoke",
            &second_secret,
            json!({"reason": "rotated out"}),
        )
        .await;
        assert_eq!(status, 200, "{backend}");
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/credentials",
            ADMIN_SECRET,
            Value::Null,
        )
        .await;
        assert_eq!(status, 401, "{backend}");
        let (status, _) = admin(
            &server,
            Method::POST,
            &format!("/v1/admin/credentials/{second_id}/revoke"),
            &second_secret,
            json!({"reason": "x"}),
        )
        .await;
        assert_eq!(status, 409, "{backend}: the last one revoked itself");
        let (status, forced) = admin(
            &server,
            Method::POST,
            &format!("/v1/admin/credentials/{second_id}/revoke"),
            &second_secret,
            json!({"reason": "decommissioning", "force": true}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {forced}");
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/credentials",
            &second_secret,
            Value::Null,
        )
        .await;
        assert_eq!(status, 401, "{backend}");

        // Every step is in the store's audit trail, without a secret.
        let store = server
            .server
            .as_ref()
            .unwrap()
            .state()
            .store
            .clone()
            .unwrap();
        let trail = store.audit_trail().await.unwrap();
        let actions: Vec<&str> = trail.iter().map(|record| record.action.as_str()).collect();
        for action in [
            "admin.credential.create",
            "admin.credential.rotate",
            "admin.credential.revoke",
        ] {
            assert!(
                actions.contains(&action),
                "{backend}: {action} not audited: {actions:?}"
            );
        }
        let all = format!("{trail:?}");
        for secret in [&acme_secret, &new_secret, &second_secret] {
            assert!(
                !all.contains(secret.as_str()),
                "{backend}: a secret in the audit trail"
            );
        }
    }
}

#[tokio::test]
async fn an_expired_admin_credential_is_refused_and_admin_init_is_the_way_back() {
    for (backend, server) in servers_with_a_store().await {
        let store = server
            .server
            .as_ref()
            .unwrap()
            .state()
            .store
            .clone()
            .unwrap();
        let (id, secret, digest_hex) = warden_issuer::credentials::new_admin_credential().unwrap();
        store
            .create_admin_credential(
                &warden_store::NewAdminCredential {
                    credential: warden_store::AdminCredential {
                        id: id.clone(),
                        digest_hex,
                        tenant_scope: None,
                    },
                    label: String::new(),
                    expires_at: Some(now() - 1),
                },
                "test",
                now() - 100,
            )
            .await
            .unwrap();
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/credentials",
            &secret,
            Value::Null,
        )
        .await;
        assert_eq!(
            status, 401,
            "{backend}: an expired credential authenticates"
        );
        let (_, listed) = admin(
            &server,
            Method::GET,
            "/v1/admin/credentials",
            ADMIN_SECRET,
            Value::Null,
        )
        .await;
        let expired = listed["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id.as_str())
            .unwrap()
            .clone();
        assert_eq!(expired["status"], "expired", "{backend}");

        // `admin init` is refused while a usable credential for all tenants exists …
        let (_, extra_secret, extra_digest) =
            warden_issuer::credentials::new_admin_credential().unwrap();
        let init = |digest: String| warden_store::AdminCredential {
            id: format!("adm_init_{digest}").chars().take(20).collect(),
            digest_hex: digest,
            tenant_scope: None,
        };
        assert!(matches!(
            store
                .create_first_admin(&init(extra_digest.clone()), now())
                .await,
            Err(warden_store::StoreError::Refused(_))
        ));
        // … and makes one again once none is usable.
        store
            .revoke_admin_credential("adm_test", "gone", true, "test", now())
            .await
            .unwrap();
        store
            .create_first_admin(&init(extra_digest), now())
            .await
            .unwrap();
        let (status, _) = admin(
            &server,
            Method::GET,
            "/v1/admin/credentials",
            &extra_secret,
            Value::Null,
        )
        .await;
        assert_eq!(status, 200, "{backend}");
    }
}

#[tokio::test]
async fn admin_credential_input_is_checked_before_anything_is_stored() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        ..Setup::default()
    })
    .await;
    for body in [
        json!({"tenant": "acme/../globex"}),
        json!({"tenant": ""}),
        json!({"expires_in_seconds": 0}),
        json!({"expires_in_seconds": 999_999_999_999u64}),
        json!({"label": "x".repeat(300)}),
        json!({"label": "line\nbreak"}),
        json!({"secret": "chosen-by-the-caller"}),
    ] {
        let (status, answer) = admin(
            &server,
            Method::POST,
            "/v1/admin/credentials",
            ADMIN_SECRET,
            body.clone(),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let (_, listed) = admin(
        &server,
        Method::GET,
        "/v1/admin/credentials",
        ADMIN_SECRET,
        Value::Null,
    )
    .await;
    assert_eq!(
        listed["credentials"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
}

/// Sends `count` calls; returns the statuses and the last answer's `Retry-After`.
async fn hammer(
    server: &TestServer,
    count: usize,
    call: impl Fn() -> reqwest::RequestBuilder,
) -> (Vec<u16>, Option<u64>) {
    let mut statuses = Vec::with_capacity(count);
    let mut retry_after = None;
    for _ in 0..count {
        let response = call().send().await.unwrap();
        statuses.push(response.status().as_u16());
        retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        let _ = server;
    }
    (statuses, retry_after)
}

#[tokio::test]
async fn the_token_endpoint_and_the_admin_api_are_rate_limited_per_address() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        extra: "[rate_limits]\ntoken_per_minute = 5\nadmin_per_minute = 8\nfailed_auth_per_minute = 1000\n",
        ..Setup::default()
    })
    .await;
    let (statuses, retry_after) = hammer(&server, 7, || {
        server
            .client
            .post(server.url("/oauth2/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
    })
    .await;
    assert!(
        statuses[..5].iter().all(|status| *status != 429),
        "{statuses:?}"
    );
    assert_eq!(statuses[5..], [429, 429], "{statuses:?}");
    let retry_after = retry_after.expect("Retry-After on a 429");
    assert!((1..=12).contains(&retry_after), "{retry_after}");

    let response = server
        .client
        .post(server.url("/oauth2/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "rate_limited", "{body}");

    let (statuses, _) = hammer(&server, 10, || {
        server
            .client
            .get(server.url("/v1/admin/credentials"))
            .bearer_auth(ADMIN_SECRET)
    })
    .await;
    assert_eq!(statuses[..8], [200; 8], "{statuses:?}");
    assert_eq!(statuses[8..], [429, 429], "{statuses:?}");

    // Decisions are not limited by these buckets.
    let token = user_token(&server, "alice", "acme", &["admin"]);
    for _ in 0..20 {
        let response = server
            .client
            .post(server.url("/v1/check"))
            .bearer_auth(&token)
            .json(
                &json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn repeated_failed_authentications_lock_the_address_out_but_bad_user_tokens_do_not() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        extra: "[rate_limits]\nfailed_auth_per_minute = 4\n",
        ..Setup::default()
    })
    .await;
    // End users' bad tokens through a PEP: never counted.
    for _ in 0..10 {
        let response = server
            .client
            .post(server.url("/v1/check"))
            .bearer_auth("not-a-token")
            .json(
                &json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let (status, _) = admin(
        &server,
        Method::GET,
        "/v1/admin/credentials",
        ADMIN_SECRET,
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "bad user tokens locked the address out");

    // Wrong admin and PEP credentials: counted; past the bucket even the right one is refused.
    let mut statuses = Vec::new();
    for attempt in 0..6 {
        // (alternating the admin API and the PEP endpoints: one bucket for both)
        let response = if attempt % 2 == 0 {
            server
                .client
                .get(server.url("/v1/admin/credentials"))
                .bearer_auth("wdn_admin_guess")
                .send()
                .await
                .unwrap()
        } else {
            server
                .client
                .post(server.url("/access/v1/evaluation"))
                .bearer_auth("pep-guess")
                .json(&json!({}))
                .send()
                .await
                .unwrap()
        };
        statuses.push(response.status().as_u16());
    }
    // Four failures fit the bucket; the fifth finds it empty, locks the address out and is
    // answered 429 (counted before it is answered: a 401 past the limit would tell a guesser
    // its guess was checked).
    assert_eq!(statuses[..4], [401; 4], "{statuses:?}");
    assert_eq!(statuses[4..], [429; 2], "{statuses:?}");
    // The right credential is refused too while the bucket is empty: a 200 would tell a
    // guesser that the guess was right (issue #22 review).
    let (status, _) = admin(
        &server,
        Method::GET,
        "/v1/admin/credentials",
        ADMIN_SECRET,
        Value::Null,
    )
    .await;
    assert_eq!(status, 429);
    let response = server
        .client
        .get(server.url("/v1/admin/credentials"))
        .bearer_auth(ADMIN_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        429,
        "the right credential from a locked-out address"
    );
    assert!(response.headers().get("retry-after").is_some());
    let (status, _) = server.pep_post("/access/v1/evaluation", &json!({})).await;
    assert_eq!(status, 429);
    // Probes still answer.
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    let (status, _) = server.get("/readyz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn metrics_need_their_credential_when_one_is_configured() {
    let secret = "metrics-scraper-credential-0123456789";
    let extra = format!(
        "[metrics]\ncredentials = [\"sha256:{}\"]\n",
        hex::encode(Sha256::digest(secret.as_bytes()))
    );
    let server = TestServer::start(Setup {
        extra: Box::leak(extra.into_boxed_str()),
        ..Setup::default()
    })
    .await;
    let response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("warden-metrics")
    );
    for wrong in [
        "",
        "metrics-scraper-credential-012345678",
        PEP_SECRET,
        SCOPED_ADMIN_SECRET,
    ] {
        let response = server
            .client
            .get(server.url("/metrics"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{wrong:?}");
    }
    let response = server
        .client
        .get(server.url("/metrics"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("warden_"));
    // Without [metrics] credentials the endpoint stays open (as before).
    let open = TestServer::start(Setup::default()).await;
    let (status, _) = open.get("/healthz").await;
    assert_eq!(status, 200);
    let response = open.client.get(open.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

pub(super) use warden_testkit::pki::Pki;

/// A reqwest client trusting `ca_pem`, presenting `identity` (certificate + key PEM) if given.
pub(super) fn tls_client(ca_pem: &str, identity: Option<&(String, String)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .timeout(std::time::Duration::from_secs(5));
    if let Some((certificate, key)) = identity {
        builder = builder.identity(
            reqwest::Identity::from_pem(format!("{certificate}{key}").as_bytes()).unwrap(),
        );
    }
    builder.build().unwrap()
}

/// A server on HTTPS with a certificate from `pki`, client certificates from `clients`
/// (`client_auth` as given) and PEPs allowed to authenticate by them.
async fn tls_server(pki: &Pki, clients: &Pki, client_auth: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let (certificate, key) = pki.leaf("warden.test", false);
    std::fs::write(dir.path().join("server.pem"), &certificate).unwrap();
    std::fs::write(dir.path().join("server.key"), &key).unwrap();
    std::fs::write(dir.path().join("clients-ca.pem"), &clients.ca_pem).unwrap();
    let tls_dir = dir.keep();
    let extra = format!(
        "[server.tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\nclient_auth = {client_auth:?}\nreload_interval_seconds = 1\n",
        tls_dir.join("server.pem"),
        tls_dir.join("server.key"),
        tls_dir.join("clients-ca.pem"),
    );
    let mut server = TestServer::start(Setup {
        extra: Box::leak(extra.into_boxed_str()),
        ..Setup::default()
    })
    .await;
    server.base = server.base.replace("http://", "https://");
    server.client = tls_client(&pki.ca_pem, None);
    // Remember where the files are for the reload test.
    std::fs::write(
        server.dir.path().join("tls-dir"),
        tls_dir.display().to_string(),
    )
    .unwrap();
    server
}

pub(super) fn evaluation() -> Value {
    json!({
        "subject": {"type": "User", "id": "acme/alice"},
        "action": {"name": "read"},
        "resource": {"type": "Document", "id": "acme/roadmap"}
    })
}

#[tokio::test]
async fn the_listener_serves_https_and_reloads_a_changed_certificate() {
    let pki = Pki::new("Warden test CA");
    let clients = Pki::new("PEP CA");
    let server = tls_server(&pki, &clients, "optional").await;
    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .unwrap();
    let http = server.base.replace("https://", "http://");
    assert!(
        plain.get(format!("{http}/healthz")).send().await.is_err(),
        "plain HTTP got an answer from the TLS listener"
    );
    // A client that does not trust the CA refuses the server.
    let stranger = tls_client(&Pki::new("Other CA").ca_pem, None);
    assert!(stranger.get(server.url("/healthz")).send().await.is_err());

    // Replace the certificate with one from a new CA: within a few seconds new connections get it.
    let tls_dir = std::path::PathBuf::from(
        std::fs::read_to_string(server.dir.path().join("tls-dir")).unwrap(),
    );
    let next = Pki::new("Next CA");
    let (certificate, key) = next.leaf("warden.test", false);
    std::fs::write(tls_dir.join("server.key.new"), &key).unwrap();
    std::fs::write(tls_dir.join("server.pem.new"), &certificate).unwrap();
    std::fs::rename(tls_dir.join("server.key.new"), tls_dir.join("server.key")).unwrap();
    std::fs::rename(tls_dir.join("server.pem.new"), tls_dir.join("server.pem")).unwrap();
    let trusts_next = tls_client(&next.ca_pem, None);
    let mut reloaded = false;
    for _ in 0..40 {
        if trusts_next.get(server.url("/healthz")).send().await.is_ok() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(reloaded, "the new certificate was not served within 10 s");

    // A broken change keeps the current certificate serving.
    std::fs::write(
        tls_dir.join("server.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let fresh = tls_client(&next.ca_pem, None);
    let response = fresh.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let _ = std::fs::remove_dir_all(tls_dir);
}

#[tokio::test]
async fn a_pep_may_authenticate_with_a_client_certificate() {
    let pki = Pki::new("Warden test CA");
    let clients = Pki::new("PEP CA");
    let mut server = tls_server(&pki, &clients, "optional").await;
    // The server in tls_server has [peps] credentials; client certificates need the flag, which
    // a second server turns on.
    let identity = clients.leaf("gateway-1", true);
    let with_certificate = tls_client(&pki.ca_pem, Some(&identity));
    let response = with_certificate
        .post(server.url("/access/v1/evaluation"))
        .json(&evaluation())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "a certificate without peps.client_certificates authenticated"
    );
    drop(server.server.take());

    let dir = tempfile::tempdir().unwrap();
    let (certificate, key) = pki.leaf("warden.test", false);
    std::fs::write(dir.path().join("server.pem"), &certificate).unwrap();
    std::fs::write(dir.path().join("server.key"), &key).unwrap();
    std::fs::write(dir.path().join("clients-ca.pem"), &clients.ca_pem).unwrap();
    for (client_auth, anonymous_connects) in [("optional", true), ("required", false)] {
        let extra = format!(
            "[server.tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\nclient_auth = {client_auth:?}\n",
            dir.path().join("server.pem"),
            dir.path().join("server.key"),
            dir.path().join("clients-ca.pem"),
        );
        let server = start_with_cert_peps(&extra).await;
        let url = format!(
            "{}/access/v1/evaluation",
            server.base.replace("http://", "https://")
        );
        let response = with_certificate
            .post(&url)
            .json(&evaluation())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{client_auth}: the PEP's certificate"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["decision"], true, "{body}");

        // A wrong bearer credential is refused even with a good certificate.
        let response = with_certificate
            .post(&url)
            .bearer_auth("wrong")
            .json(&evaluation())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{client_auth}");

        // A certificate from another CA never gets through the handshake.
        let rogue = Pki::new("Rogue CA").leaf("gateway-1", true);
        let rogue_client = tls_client(&pki.ca_pem, Some(&rogue));
        assert!(
            rogue_client
                .post(&url)
                .json(&evaluation())
                .send()
                .await
                .is_err(),
            "{client_auth}"
        );

        // Without a certificate: 401 when optional (the PEP credential still works), no
        // connection when required.
        let anonymous = tls_client(&pki.ca_pem, None);
        let answer = anonymous.post(&url).json(&evaluation()).send().await;
        if anonymous_connects {
            assert_eq!(answer.unwrap().status(), 401);
            let response = anonymous
                .post(&url)
                .bearer_auth(PEP_SECRET)
                .json(&evaluation())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        } else {
            assert!(
                answer.is_err(),
                "required: a connection without a certificate"
            );
        }
    }
}

/// A server with `[peps] client_certificates = true` and `tls_extra`.
pub(super) async fn start_with_cert_peps(tls_extra: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    crate::support::copy_dir(
        &crate::support::repo_root().join("examples/saas"),
        &dir.path().join("pack"),
    );
    let key = warden_testkit::TestKey::rsa("k1");
    std::fs::write(dir.path().join("jwks.json"), warden_testkit::jwks(&[&key])).unwrap();
    let digest = hex::encode(Sha256::digest(PEP_SECRET.as_bytes()));
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{tls_extra}\n[policy]\ndir = \"pack\"\nentities_file = \"pack/entities.json\"\n[peps]\ncredentials = [\"sha256:{digest}\"]\nclient_certificates = true\n[[issuers]]\nissuer = \"https://idp.test\"\naudiences = [\"warden\"]\njwks_file = \"jwks.json\"\nalgorithms = [\"RS256\"]\n"
    );
    let path = dir.path().join("warden.toml");
    std::fs::write(&path, text).unwrap();
    let config = warden_config::load(Some(&path), &[]).unwrap();
    let server = warden_server::Server::start(config).await.unwrap();
    let base = format!("http://{}", server.address());
    TestServer {
        server: Some(server),
        base,
        client: reqwest::Client::new(),
        dir,
        key,
    }
}

#[test]
fn client_certificates_for_peps_need_a_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.toml");
    std::fs::write(&path, "[peps]\nclient_certificates = true\n").unwrap();
    let error = warden_config::load(Some(&path), &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("client_ca_file"), "{error}");
    std::fs::write(
        &path,
        "[server.tls]\ncert_file = \"a\"\nkey_file = \"b\"\nclient_auth = \"required\"\n",
    )
    .unwrap();
    let error = warden_config::load(Some(&path), &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("client_ca_file"), "{error}");
    std::fs::write(
        &path,
        "[server.tls]\ncert_file = \"a\"\nkey_file = \"b\"\nclient_auth = \"sometimes\"\n",
    )
    .unwrap();
    let error = warden_config::load(Some(&path), &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("client_auth"), "{error}");
    std::fs::write(&path, "[metrics]\ncredentials = [\"plaintext\"]\n").unwrap();
    let error = warden_config::load(Some(&path), &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("metrics.credentials"), "{error}");
}

#[tokio::test]
async fn a_certificate_that_does_not_load_stops_the_start_with_its_file_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.pem"), "no pem here").unwrap();
    std::fs::write(dir.path().join("server.key"), "no key here").unwrap();
    let path = dir.path().join("warden.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ncert_file = \"server.pem\"\nkey_file = \"server.key\"\n[policy]\ndir = {:?}\n",
            crate::support::repo_root().join("examples/saas")
        ),
    )
    .unwrap();
    let config = warden_config::load(Some(&path), &[]).unwrap();
    let error = match warden_server::Server::start(config).await {
        Ok(_) => panic!("a server started without a usable certificate"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("server.pem"), "{error}");
}
