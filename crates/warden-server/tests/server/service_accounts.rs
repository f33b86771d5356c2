//! Service accounts end to end against the real server: create one, get a token with its
//! secret (HTTP Basic and `client_secret_post`) or a client assertion, use it on `/v1/check`,
//! narrow its scopes, rotate its secret with an overlap, disable it, rotate Warden's signing key;
//! the refusals of the token endpoint (each `invalid_client`/`invalid_grant`/… per RFC 6749,
//! none saying more than the code, each in the decision log); RFC 7009 revocation; and the
//! inventory report's findings on a seeded store.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use warden_testkit::TestKey;

use crate::support::{ADMIN_SECRET, SCOPED_ADMIN_SECRET, Setup, TestServer, now};

/// The `iss` of Warden's own tokens in these tests (an identifier; clients reach the server at
/// its bound address).
pub(crate) const OWN_ISSUER: &str = "http://127.0.0.1:8180";

async fn issuing_server() -> TestServer {
    issuing_server_with("rotate_after_days = 0").await
}

pub(crate) async fn issuing_server_with(tokens_extra: &str) -> TestServer {
    issuing_replica(tokens_extra, String::new(), 100).await
}

/// A server with `[tokens]` on `storage` (empty: a fresh SQLite file), polling the store every
/// `poll_interval_ms`.
async fn issuing_replica(tokens_extra: &str, storage: String, poll_interval_ms: u64) -> TestServer {
    let (key_file, tokens) = crate::support::tokens_section(OWN_ISSUER);
    let extra = format!("{tokens}{tokens_extra}\n");
    let server = TestServer::start(Setup {
        storage: Some(storage),
        extra: Box::leak(extra.into_boxed_str()),
        poll_interval_ms,
        ..Setup::default()
    })
    .await;
    drop(key_file);
    server
}

async fn admin(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server
        .admin(method, path, Some(ADMIN_SECRET), body.as_ref())
        .await
}

/// Creates an acme account owned by alice; returns (client id, secret).
pub(crate) async fn create(server: &TestServer, name: &str, scopes: &[&str]) -> (String, String) {
    let (status, body) = admin(
        server,
        reqwest::Method::POST,
        "/v1/admin/tenants/acme/service-accounts",
        Some(json!({
            "name": name, "owner": "alice", "purpose": "nightly search indexing",
            "scopes": scopes, "expires_in_seconds": 90 * 86_400,
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["service_account"]["owner"],
        json!("User::\"acme/alice\"")
    );
    (
        body["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// `POST /oauth2/token` with HTTP Basic; returns (status, body, WWW-Authenticate).
pub(crate) async fn token_basic(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let response = server
        .client
        .post(server.url("/oauth2/token"))
        .basic_auth(client_id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(form))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        challenge,
    )
}

pub(crate) async fn token_form(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = server
        .client
        .post(server.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(form))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) fn encode(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(name, value)| format!("{name}={}", percent(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn access_token(server: &TestServer, client_id: &str, secret: &str) -> String {
    let (status, body, _) = token_basic(
        server,
        client_id,
        secret,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn check(server: &TestServer, token: &str, action: &str) -> (u16, Value) {
    let response = server
        .client
        .post(server.url("/v1/check"))
        .bearer_auth(token)
        .json(&json!({"action": action, "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap()
}

pub(crate) fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// An AuthZEN evaluation (as a PEP) with the account as the subject: may it read the roadmap?
async fn evaluate_as_account(server: &TestServer, client_id: &str) -> Value {
    let (status, body) = server
        .pep_post(
            "/access/v1/evaluation",
            &json!({
                "subject": {"type": "ServiceAccount", "id": format!("acme/{client_id}"),
                            "properties": {"tenant": {"type": "Tenant", "id": "acme"}, "scopes": ["documents:read"]}},
                "action": {"name": "read"},
                "resource": {"type": "Document", "id": "acme/roadmap"},
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn assert_invalid_client(status: u16, body: &Value) {
    assert_eq!(status, 401, "{body}");
    // The same words whatever was wrong: nothing says which part failed.
    assert_eq!(
        body,
        &json!({"error": "invalid_client", "error_description": "client authentication failed"})
    );
}

#[tokio::test]
async fn a_service_account_token_gets_the_decisions_its_scopes_allow() {
    let server = issuing_server().await;
    let (client_id, secret) = create(&server, "indexer", &["documents:read"]).await;

    let (status, body, _) = token_basic(
        &server,
        &client_id,
        &secret,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "documents:read");
    let token = body["access_token"].as_str().unwrap();
    let header = header_of(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let claims = claims_of(token);
    assert_eq!(claims["iss"], OWN_ISSUER);
    assert_eq!(claims["sub"], json!(client_id));
    assert_eq!(claims["client_id"], json!(client_id));
    assert_eq!(claims["tenant"], "acme");
    assert!(claims["jti"].as_str().is_some_and(|jti| !jti.is_empty()));

    let (status, body) = check(&server, token, "read").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "allow", "{body}");
    assert_eq!(body["principal"]["type"], "ServiceAccount");
    assert_eq!(body["principal"]["id"], json!(format!("acme/{client_id}")));
    assert_eq!(body["reasons"][0]["policy"], "service-accounts-read");
    let (_, body) = check(&server, token, "edit").await;
    assert_eq!(body["decision"], "deny", "{body}");

    // Fewer scopes may be asked for; more never.
    let (status, body, _) = token_basic(
        &server,
        &client_id,
        &secret,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "documents:read documents:write"),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_scope")),
        "{body}"
    );
    // client_secret_post works as well as Basic.
    let (status, body) = token_form(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", "documents:read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Narrowing the account's scopes takes effect at once, in the token already issued too.
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        &format!("/v1/admin/tenants/acme/service-accounts/{client_id}/scopes"),
        Some(json!({"scopes": ["documents:list-only"], "reason": "least privilege"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["before"], json!(["documents:read"]));
    let (_, body) = check(&server, token, "read").await;
    assert_eq!(body["decision"], "deny", "{body}");

    // A tenant-scoped admin of another tenant sees and changes nothing.
    let (status, _) = server
        .admin(
            reqwest::Method::GET,
            &format!("/v1/admin/tenants/acme/service-accounts/{client_id}"),
            Some(SCOPED_ADMIN_SECRET),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_rotated_secret_overlaps_then_only_the_new_one_works_and_expired_things_are_refused() {
    let server = issuing_server().await;
    let (client_id, old_secret) = create(&server, "sync", &["documents:read"]).await;
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        &format!("/v1/admin/tenants/acme/service-accounts/{client_id}/credentials/rotate"),
        Some(json!({"overlap_seconds": 3})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let new_secret = body["client_secret"].as_str().unwrap().to_owned();
    // During the overlap both work.
    access_token(&server, &client_id, &old_secret).await;
    access_token(&server, &client_id, &new_secret).await;

    // An account that expires in a second, and a credential that does.
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        "/v1/admin/tenants/acme/service-accounts",
        Some(
            json!({"name": "short-lived", "owner": "User::\"acme/bob\"", "purpose": "a test",
                    "scopes": ["documents:read"], "expires_in_seconds": 3}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (short_id, short_secret) = (
        body["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().unwrap().to_owned(),
    );
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        &format!("/v1/admin/tenants/acme/service-accounts/{client_id}/credentials"),
        Some(json!({"kind": "secret", "expires_in_seconds": 3})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let brief_secret = body["client_secret"].as_str().unwrap().to_owned();
    access_token(&server, &client_id, &brief_secret).await;

    // Expiries are whole Unix seconds: 3 s leaves room for a loaded machine, 4.1 s is past them.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    let grant = [("grant_type", "client_credentials")];
    let (status, body, challenge) = token_basic(&server, &client_id, &old_secret, &grant).await;
    assert_invalid_client(status, &body);
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"warden\""));
    access_token(&server, &client_id, &new_secret).await;
    let (status, body, _) = token_basic(&server, &client_id, &brief_secret, &grant).await;
    assert_invalid_client(status, &body);
    let (status, body, _) = token_basic(&server, &short_id, &short_secret, &grant).await;
    assert_invalid_client(status, &body);
}

#[tokio::test]
async fn refusals_say_only_the_rfc_code_and_each_is_in_the_decision_log() {
    let server = issuing_server().await;
    let (client_id, secret) = create(&server, "refusals", &["documents:read"]).await;
    let grant = [("grant_type", "client_credentials")];

    let (status, body, _) = token_basic(&server, &client_id, "wsa_wrong", &grant).await;
    assert_invalid_client(status, &body);
    let (status, body, _) = token_basic(&server, "sa_unknown", &secret, &grant).await;
    assert_invalid_client(status, &body);
    let (status, body) = token_form(&server, &grant).await;
    assert_invalid_client(status, &body);
    let (status, body, _) =
        token_basic(&server, &client_id, &secret, &[("grant_type", "password")]).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("unsupported_grant_type"))
    );
    let (status, body, _) = token_basic(&server, &client_id, &secret, &[]).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_request")));
    let (status, body, _) = token_basic(
        &server,
        &client_id,
        &secret,
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_request")));
    // Two authentication methods at once.
    let (status, body, _) = token_basic(
        &server,
        &client_id,
        &secret,
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_request")));

    // A disabled account: refused, and its live token dies at once.
    let live = access_token(&server, &client_id, &secret).await;
    assert_eq!(check(&server, &live, "read").await.1["decision"], "allow");
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        &format!("/v1/admin/tenants/acme/service-accounts/{client_id}/disable"),
        Some(json!({"reason": "the job was retired"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = check(&server, &live, "read").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["reason"], "token_revoked");
    let (status, body, _) = token_basic(&server, &client_id, &secret, &grant).await;
    assert_invalid_client(status, &body);
    // An enforcement point naming the account on the AuthZEN path is denied as well.
    let body = evaluate_as_account(&server, &client_id).await;
    assert_eq!(body["decision"], false, "{body}");
    assert_eq!(body["context"]["reason"], "principal_disabled", "{body}");
    // A deleted account likewise, as deleted.
    let (deleted_id, _) = create(&server, "to-delete", &["documents:read"]).await;
    let (status, body) = admin(
        &server,
        reqwest::Method::DELETE,
        &format!("/v1/admin/tenants/acme/service-accounts/{deleted_id}?reason=gone"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body = evaluate_as_account(&server, &deleted_id).await;
    assert_eq!(body["context"]["reason"], "principal_deleted", "{body}");

    // Every call is one record, with the reason the caller was not told.
    let log =
        std::fs::read_to_string(server.dir.path().join("warden-audit/decisions.jsonl")).unwrap();
    let records: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|record: &Value| record["action"] == "oauth2.token")
        .collect();
    let reasons: Vec<&str> = records
        .iter()
        .map(|record| record["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "invalid_client",
            "invalid_client",
            "invalid_client",
            "unsupported_grant_type",
            "invalid_request",
            "invalid_request",
            "invalid_request",
            "token_issued",
            "invalid_client",
        ]
    );
    let why = |index: usize| records[index]["errors"][0].as_str().unwrap().to_owned();
    assert!(why(0).contains("matches no active"), "{}", why(0));
    assert!(why(1).contains("unknown client"), "{}", why(1));
    assert!(why(8).contains("disabled"), "{}", why(8));
    assert!(!log.contains(&secret), "a secret reached the decision log");
}

#[tokio::test]
async fn private_key_jwt_assertions_work_once_and_only_for_this_audience() {
    let server = issuing_server().await;
    let (client_id, _) = create(&server, "signer", &["documents:read"]).await;
    let client_key = TestKey::ec("client-key-1");
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        &format!("/v1/admin/tenants/acme/service-accounts/{client_id}/credentials"),
        Some(json!({"kind": "public_key", "jwk": client_key.jwk()})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // A private JWK is refused outright.
    let (status, _) = admin(
        &server,
        reqwest::Method::POST,
        &format!("/v1/admin/tenants/acme/service-accounts/{client_id}/credentials"),
        Some(json!({"kind": "public_key", "jwk": {"kty": "EC", "crv": "P-256", "kid": "x", "x": "AA", "y": "AA", "d": "AA"}})),
    )
    .await;
    assert_eq!(status, 400);

    let assertion = |audience: &str, jti: &str| {
        client_key.token(&json!({
            "iss": client_id, "sub": client_id, "aud": audience,
            "exp": now() + 60, "iat": now(), "jti": jti,
        }))
    };
    let endpoint = format!("{OWN_ISSUER}/oauth2/token");
    let first = assertion(&endpoint, "assertion-1");
    let form = |assertion: &str| {
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            (
                "client_assertion_type".to_owned(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion".to_owned(), assertion.to_owned()),
        ]
    };
    let send = |fields: Vec<(String, String)>| {
        let server = &server;
        async move {
            let pairs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            token_form(server, &pairs).await
        }
    };
    let (status, body) = send(form(&first)).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(check(&server, &token, "read").await.1["decision"], "allow");
    // Replayed: refused.
    let (status, body) = send(form(&first)).await;
    assert_invalid_client(status, &body);
    // Another audience: refused.
    let (status, body) = send(form(&assertion(
        "https://elsewhere.example/token",
        "assertion-2",
    )))
    .await;
    assert_invalid_client(status, &body);
    // Signed by a key the account never registered: refused.
    let stranger = TestKey::ec("client-key-1");
    let forged = stranger.token(&json!({
        "iss": client_id, "sub": client_id, "aud": endpoint,
        "exp": now() + 60, "iat": now(), "jti": "assertion-3",
    }));
    let (status, body) = send(form(&forged)).await;
    assert_invalid_client(status, &body);
}

#[tokio::test]
async fn a_signing_key_rotation_keeps_old_tokens_valid_and_new_ones_use_the_new_key() {
    let server = issuing_server().await;
    let (client_id, secret) = create(&server, "rotation", &["documents:read"]).await;
    let before = access_token(&server, &client_id, &secret).await;
    let old_kid = header_of(&before)["kid"].as_str().unwrap().to_owned();

    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        "/v1/admin/keys/rotate",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["previous_kid"], json!(old_kid));
    let new_kid = body["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);

    let after = access_token(&server, &client_id, &secret).await;
    assert_eq!(header_of(&after)["kid"], json!(new_kid));
    assert_eq!(check(&server, &before, "read").await.1["decision"], "allow");
    assert_eq!(check(&server, &after, "read").await.1["decision"], "allow");

    let (status, jwks) = server.get("/.well-known/jwks.json").await;
    assert_eq!(status, 200);
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{jwks}"
    );
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|key| key.get("d").is_none())
    );
    let (_, keys) = admin(&server, reqwest::Method::GET, "/v1/admin/keys", None).await;
    let statuses: Vec<(&str, &str)> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            (
                key["kid"].as_str().unwrap(),
                key["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(statuses.contains(&(new_kid.as_str(), "active")), "{keys}");
    assert!(statuses.contains(&(old_kid.as_str(), "retiring")), "{keys}");

    let (status, discovery) = server.get("/.well-known/openid-configuration").await;
    assert_eq!(status, 200);
    assert_eq!(discovery["issuer"], OWN_ISSUER);
    assert_eq!(
        discovery["token_endpoint"],
        json!(format!("{OWN_ISSUER}/oauth2/token"))
    );
    assert_eq!(
        discovery["grant_types_supported"],
        json!([
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    // A tenant-scoped admin cannot rotate Warden's keys.
    let (status, _) = server
        .admin(
            reqwest::Method::POST,
            "/v1/admin/keys/rotate",
            Some(SCOPED_ADMIN_SECRET),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_client_revokes_its_own_token_per_rfc_7009() {
    let server = issuing_server().await;
    let (client_id, secret) = create(&server, "revoker", &["documents:read"]).await;
    let (other_id, other_secret) = create(&server, "bystander", &["documents:read"]).await;
    let token = access_token(&server, &client_id, &secret).await;
    let keep = access_token(&server, &client_id, &secret).await;

    // Another client cannot revoke it: 200, and nothing changes.
    let response = server
        .client
        .post(server.url("/oauth2/revoke"))
        .basic_auth(&other_id, Some(&other_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("token", &token)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(check(&server, &token, "read").await.1["decision"], "allow");

    let response = server
        .client
        .post(server.url("/oauth2/revoke"))
        .basic_auth(&client_id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[
            ("token", &token),
            ("token_type_hint", "access_token"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, body) = check(&server, &token, "read").await;
    assert_eq!(
        (status, &body["reason"]),
        (401, &json!("token_revoked")),
        "{body}"
    );
    assert_eq!(check(&server, &keep, "read").await.1["decision"], "allow");
    // Garbage is answered 200 too (RFC 7009 §2.2); a wrong secret is not.
    let response = server
        .client
        .post(server.url("/oauth2/revoke"))
        .basic_auth(&client_id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response = server
        .client
        .post(server.url("/oauth2/revoke"))
        .basic_auth(&client_id, Some("wsa_wrong"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("token", &keep)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn the_report_finds_stale_accounts_gone_owners_and_unused_scopes_on_a_seeded_store() {
    let server = issuing_server().await;
    // An owner the store knows, deleted later.
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        "/v1/admin/tenants/acme/entities",
        Some(json!([{"uid": {"type": "User", "id": "acme/frank"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}, "parents": []}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (stale_id, _) = create(&server, "stale-bot", &["documents:read"]).await;
    let (busy_id, busy_secret) =
        create(&server, "busy-bot", &["documents:read", "documents:write"]).await;
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        "/v1/admin/tenants/acme/service-accounts",
        Some(
            json!({"name": "orphan-bot", "owner": "frank", "purpose": "a test",
                    "scopes": ["documents:read"], "expires_in_seconds": 86_400 * 300}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = admin(
        &server,
        reqwest::Method::DELETE,
        "/v1/admin/tenants/acme/entities/User/acme%2Ffrank",
        None,
    )
    .await;
    assert_eq!(status, 200);
    // busy-bot reads (documents:read helps allow) and is recorded within a flush (10 s).
    let token = access_token(&server, &busy_id, &busy_secret).await;
    assert_eq!(check(&server, &token, "read").await.1["decision"], "allow");
    tokio::time::sleep(Duration::from_secs(11)).await;
    // Age the two bots by 40 days in the store.
    let store = server
        .server
        .as_ref()
        .unwrap()
        .state()
        .store
        .clone()
        .unwrap();
    let warden_store::Store::Sqlite(pool) = &store else {
        panic!("the test store is SQLite")
    };
    for client_id in [&stale_id, &busy_id] {
        sqlx::query(
            "UPDATE service_accounts SET created_at = created_at - 3456000 WHERE client_id = $1",
        )
        .bind(client_id)
        .execute(pool)
        .await
        .unwrap();
    }

    let (status, report) = admin(
        &server,
        reqwest::Method::GET,
        "/v1/admin/tenants/acme/service-accounts/report",
        None,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    let findings: Vec<(String, Vec<String>)> = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|account| {
            (
                account["name"].as_str().unwrap().to_owned(),
                account["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|finding| finding["code"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    let expected: Vec<(String, Vec<String>)> = vec![
        ("busy-bot".into(), vec!["unused_scopes".into()]),
        ("orphan-bot".into(), vec!["owner_gone".into()]),
        (
            "stale-bot".into(),
            vec!["stale".into(), "unused_scopes".into()],
        ),
    ];
    assert_eq!(findings, expected, "{report}");
    let busy = &report["accounts"][0];
    assert!(
        busy["findings"][0]["detail"]
            .as_str()
            .unwrap()
            .ends_with(": documents:write"),
        "{busy}"
    );
    assert!(busy["last_used_at"].as_i64().is_some(), "{busy}");
}

#[tokio::test]
async fn a_signing_key_older_than_the_schedule_is_rotated_and_stays_published() {
    let server = issuing_server_with("rotate_after_days = 30").await;
    let (client_id, secret) = create(&server, "scheduled", &["documents:read"]).await;
    let before = access_token(&server, &client_id, &secret).await;
    let old_kid = header_of(&before)["kid"].as_str().unwrap().to_owned();
    // The key in use turns 31 days old.
    let store = server
        .server
        .as_ref()
        .unwrap()
        .state()
        .store
        .clone()
        .unwrap();
    let warden_store::Store::Sqlite(pool) = &store else {
        panic!("the test store is SQLite")
    };
    sqlx::query("UPDATE signing_keys SET created_at = created_at - 2678400 WHERE kid = $1")
        .bind(&old_kid)
        .execute(pool)
        .await
        .unwrap();
    // The next read of the store (here: after an admin write) rotates it.
    create(&server, "trigger", &["documents:read"]).await;
    let after = access_token(&server, &client_id, &secret).await;
    let new_kid = header_of(&after)["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(check(&server, &before, "read").await.1["decision"], "allow");
    let (_, keys) = admin(&server, reqwest::Method::GET, "/v1/admin/keys", None).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{keys}");
    // The private halves in the store are sealed, not PKCS#8 in the clear.
    let sealed: Vec<(String,)> = sqlx::query_as("SELECT private_key_sealed FROM signing_keys")
        .fetch_all(pool)
        .await
        .unwrap();
    for (text,) in sealed {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&text)
            .unwrap();
        // PKCS#8 DER starts with a SEQUENCE (0x30) holding version 0; a sealed key starts with
        // a random 12-byte nonce, and no Ed25519 PKCS#8 prefix appears anywhere in it.
        let ed25519_prefix = [0x06, 0x03, 0x2b, 0x65, 0x70];
        assert!(!bytes.windows(5).any(|window| window == ed25519_prefix));
    }
}

/// A replica that has not polled the store yet still accepts a token signed by a key, or issued
/// to an account, that another replica made a moment ago: it reads the store out of turn.
#[tokio::test]
async fn a_replica_that_has_not_polled_yet_catches_up_on_a_new_key_and_a_new_account() {
    let a = issuing_server().await;
    let storage = format!("sqlite://{}", a.dir.path().join("warden.db").display());
    // B polls once a minute: only the out-of-turn read can show it A's changes in time.
    let b = issuing_replica("rotate_after_days = 0", storage, 60_000).await;
    let (client_id, secret) = create(&a, "made-on-a", &["documents:read"]).await;
    let (status, body) = admin(&a, reqwest::Method::POST, "/v1/admin/keys/rotate", None).await;
    assert_eq!(status, 200, "{body}");
    let token = access_token(&a, &client_id, &secret).await;
    assert_eq!(header_of(&token)["kid"], body["kid"]);
    let (status, body) = check(&b, &token, "read").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "allow", "{body}");
}
