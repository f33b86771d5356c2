//! `POST /v1/check`: the end user's token is verified, the principal built (the entity data
//! wins over claims), the decision made; bad tokens are 401 with the reason code.

use serde_json::{Value, json};
use warden_testkit::{TestKey, claims_at};

use crate::support::{ISSUER, Setup, TestServer, now};

fn token_for(key: &TestKey, sub: &str, org: &str, roles: &[&str]) -> String {
    let mut claims = claims_at(ISSUER, now());
    claims["sub"] = json!(sub);
    claims["org_id"] = json!(org);
    claims["roles"] = json!(roles);
    key.token(&claims)
}

async fn check(
    server: &TestServer,
    token: Option<&str>,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = server.client.post(server.url("/v1/check")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

fn read(document: &str) -> Value {
    json!({"action": "read", "resource": {"type": "Document", "id": document}})
}

#[tokio::test]
async fn allow_and_deny_with_the_principal_and_reasons() {
    let server = TestServer::start(Setup::default()).await;
    let token = token_for(&server.key, "carol", "acme", &[]);
    let (status, headers, body) = check(&server, Some(&token), &read("acme/roadmap")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "allow");
    assert_eq!(body["reason"], "permitted");
    assert_eq!(
        body["principal"],
        json!({"type": "User", "id": "acme/carol", "tenant": "acme"})
    );
    assert_eq!(body["reasons"][0]["policy"], "viewers-read");
    assert_eq!(
        headers["x-decision-id"].to_str().unwrap(),
        body["decision_id"].as_str().unwrap()
    );
    assert_eq!(body["policy_revision"].as_str().unwrap().len(), 16);

    // The same local id in the other tenant.
    let (_, _, body) = check(&server, Some(&token), &read("globex/roadmap")).await;
    assert_eq!(body["decision"], "deny");
    assert_eq!(body["reason"], "no_permit");
    // `{"name": …}` works as the action too.
    let (_, _, body) = check(&server, Some(&token), &json!({"action": {"name": "delete"}, "resource": {"type": "Document", "id": "acme/roadmap"}})).await;
    assert_eq!(body["decision"], "deny");
}

#[tokio::test]
async fn the_entity_data_wins_over_token_roles() {
    let server = TestServer::start(Setup::default()).await;
    // carol is a viewer in the entity data; her token claims admin.
    let token = token_for(&server.key, "carol", "acme", &["admin"]);
    let (_, _, body) = check(
        &server,
        Some(&token),
        &json!({"action": "delete", "resource": {"type": "Document", "id": "acme/roadmap"}}),
    )
    .await;
    assert_eq!(body["decision"], "deny", "{body}");
    // A user the data does not know is built from the token: tenant and roles.
    let newcomer = token_for(&server.key, "zed", "acme", &["editor"]);
    let (_, _, body) = check(
        &server,
        Some(&newcomer),
        &json!({"action": "edit", "resource": {"type": "Document", "id": "acme/roadmap"}}),
    )
    .await;
    assert_eq!(body["decision"], "allow", "{body}");
    assert_eq!(body["principal"]["id"], "acme/zed");
    // ... and the tenant guard holds for them too.
    let (_, _, body) = check(
        &server,
        Some(&newcomer),
        &json!({"action": "edit", "resource": {"type": "Document", "id": "globex/roadmap"}}),
    )
    .await;
    assert_eq!(body["decision"], "deny");
}

#[tokio::test]
async fn bad_tokens_are_401_with_the_reason_code() {
    let server = TestServer::start(Setup::default()).await;
    let mut expired = claims_at(ISSUER, now());
    expired["exp"] = json!(now() - 3600);
    let forged = TestKey::rsa("k1");
    let cases: [(Option<String>, &str); 4] = [
        (None, "token_missing"),
        (Some(server.key.token(&expired)), "token_expired"),
        (
            Some(token_for(&forged, "carol", "acme", &[])),
            "token_signature_invalid",
        ),
        (Some("not-a-token".to_owned()), "token_malformed"),
    ];
    for (token, reason) in cases {
        let (status, headers, body) = check(&server, token.as_deref(), &read("acme/roadmap")).await;
        assert_eq!(status, 401, "{reason}: {body}");
        assert_eq!(body["reason"], reason);
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(
            headers["www-authenticate"].to_str().unwrap(),
            format!("Bearer error=\"invalid_token\", error_description=\"{reason}\"")
        );
    }
    let response = server
        .client
        .post(server.url("/v1/check"))
        .header("authorization", "Basic YTpi")
        .json(&read("acme/roadmap"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn an_invalid_request_is_a_deny_not_an_error() {
    let server = TestServer::start(Setup::default()).await;
    let token = token_for(&server.key, "carol", "acme", &[]);
    let (status, _, body) = check(
        &server,
        Some(&token),
        &json!({"action": "fly", "resource": {"type": "Document", "id": "acme/roadmap"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["decision"], "deny");
    assert_eq!(body["reason"], "invalid_request");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("fly"),
        "{body}"
    );
}

#[tokio::test]
async fn claim_attributes_listed_in_the_config_override_known_data() {
    // bob of acme is known (email bob@acme.example); a policy forbids sharing for one domain.
    let forbid = "@id(\"blocked-domain\") forbid (principal is User, action == Action::\"share\", resource) when { principal has email && principal.email like \"*@blocked.example\" };";
    let mapping = "[issuers.claims.attributes]\nemail = { claim = \"email\", type = \"string\" }\n";
    for (authoritative, expected) in [(false, "allow"), (true, "deny")] {
        let extra = if authoritative {
            format!("{mapping}[principals]\nclaim_attributes = [\"email\"]\n")
        } else {
            mapping.to_owned()
        };
        let server = TestServer::start(Setup {
            extra: &extra,
            ..Setup::default()
        })
        .await;
        let (_, ready) = server.get("/readyz").await;
        let before = ready["checks"]["policy"]["policies"].as_u64().unwrap();
        std::fs::write(server.pack_dir().join("blocked.cedar"), forbid).unwrap();
        // Wait for the new policy (bounded).
        for _ in 0..50 {
            let (_, ready) = server.get("/readyz").await;
            if ready["checks"]["policy"]["policies"].as_u64() == Some(before + 1) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let mut claims = claims_at(ISSUER, now());
        claims["sub"] = json!("bob");
        claims["org_id"] = json!("acme");
        claims["email"] = json!("bob@blocked.example");
        let token = server.key.token(&claims);
        let (_, _, body) = check(
            &server,
            Some(&token),
            &json!({"action": "share", "resource": {"type": "Document", "id": "acme/roadmap"}}),
        )
        .await;
        assert_eq!(
            body["decision"], expected,
            "claim authoritative: {authoritative}: {body}"
        );
    }
}

#[tokio::test]
async fn authenticate_returns_the_principal_or_401() {
    let server = TestServer::start(Setup::default()).await;
    let token = token_for(&server.key, "carol", "acme", &["viewer"]);
    let response = server
        .client
        .post(server.url("/v1/authenticate"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["principal"]["id"], "acme/carol");
    assert_eq!(body["principal"]["tenant"], "acme");
    let response = server
        .client
        .post(server.url("/v1/authenticate"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

/// `POST /v1/checks`: one token, several checks, one result per check in order, each the
/// decision `/v1/check` gives for it; bad tokens and oversized batches are refused whole.
#[tokio::test]
async fn a_batch_of_checks_answers_each_as_a_single_check_would() {
    let server = TestServer::start(Setup::default()).await;
    let token = token_for(&server.key, "carol", "acme", &[]);
    let items = [
        read("acme/roadmap"),
        read("acme/salaries"),
        read("globex/roadmap"),
        json!({"action": "delete", "resource": {"type": "Document", "id": "acme/roadmap"}}),
        json!({"action": "fly", "resource": {"type": "Document", "id": "acme/roadmap"}}),
    ];
    let response = server
        .client
        .post(server.url("/v1/checks"))
        .bearer_auth(&token)
        .json(&json!({"checks": items}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["principal"],
        json!({"type": "User", "id": "acme/carol", "tenant": "acme"})
    );
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), items.len(), "{body}");
    for (item, result) in items.iter().zip(results) {
        let (_, _, single) = check(&server, Some(&token), item).await;
        assert_eq!(
            (&result["decision"], &result["reason"]),
            (&single["decision"], &single["reason"]),
            "{item}"
        );
    }
    let decisions: Vec<&str> = results
        .iter()
        .map(|result| result["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["allow", "deny", "deny", "deny", "deny"]);
    let mut ids: Vec<&str> = results
        .iter()
        .map(|result| result["decision_id"].as_str().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), items.len(), "every decision has its own id");

    let response = server
        .client
        .post(server.url("/v1/checks"))
        .bearer_auth("not-a-token")
        .json(&json!({"checks": [read("acme/roadmap")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "token_malformed");

    // An empty batch would only vouch for the token: refused.
    let response = server
        .client
        .post(server.url("/v1/checks"))
        .bearer_auth(&token)
        .json(&json!({"checks": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    // The test server's batch limit is 50.
    let too_many: Vec<Value> = (0..51).map(|_| read("acme/roadmap")).collect();
    let response = server
        .client
        .post(server.url("/v1/checks"))
        .bearer_auth(&token)
        .json(&json!({"checks": too_many}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}
