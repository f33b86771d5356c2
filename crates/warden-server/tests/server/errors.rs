//! Errors a client can cause are 4xx problem documents, never 500: malformed JSON, missing
//! fields, wrong content type, oversized bodies and batches, unknown paths. Operations
//! endpoints answer.

use serde_json::json;

use crate::support::{PEP_SECRET, Setup, TestServer};

#[tokio::test]
async fn malformed_requests_are_problem_documents() {
    let server = TestServer::start(Setup::default()).await;
    let cases: [(&str, &str, u16); 5] = [
        ("{not json", "application/json", 400),
        ("", "application/json", 400),
        (
            r#"{"subject": {"type": "User"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "d"}}"#,
            "application/json",
            400,
        ),
        (
            r#"{"subject": "alice", "action": {"name": "read"}, "resource": {"type": "Document", "id": "d"}}"#,
            "application/json",
            400,
        ),
        (
            r#"{"subject": {"type": "User", "id": "a"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "d"}}"#,
            "text/plain",
            400,
        ),
    ];
    for (body, content_type, status) in cases {
        let response = server
            .client
            .post(server.url("/access/v1/evaluation"))
            .bearer_auth(PEP_SECRET)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["status"], status);
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

#[tokio::test]
async fn oversized_bodies_and_batches_are_refused() {
    let server = TestServer::start(Setup::default()).await;
    let big = json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "x".repeat(20_000)}});
    let (status, body) = server.pep_post("/access/v1/evaluation", &big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["status"], 413);
    let items: Vec<_> = (0..51).map(|_| json!({})).collect();
    let (status, body) = server
        .pep_post("/access/v1/evaluations", &json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}, "evaluations": items}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("limit is 50"),
        "{body}"
    );
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let server = TestServer::start(Setup::default()).await;
    let (status, health) = server.get("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, ready) = server.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"]["policy"]["status"], "ok");
    assert_eq!(ready["checks"]["issuers"][0]["status"], "ok");
    let (status, openapi) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/access/v1/evaluation",
        "/access/v1/evaluations",
        "/access/v1/search/subject",
        "/access/v1/search/resource",
        "/access/v1/search/action",
        "/v1/check",
        "/v1/filter",
        "/healthz",
        "/readyz",
        "/metrics",
        "/.well-known/authzen-configuration",
        "/v1/decisions/{id}",
        "/v1/admin/revocations",
        "/oauth2/token",
        "/oauth2/revoke",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/v1/admin/tenants/{tenant}/service-accounts",
        "/v1/admin/tenants/{tenant}/service-accounts/report",
        "/v1/admin/tenants/{tenant}/service-accounts/{client_id}",
        "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/credentials",
        "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/credentials/rotate",
        "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/credentials/{credential_id}/retire",
        "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/scopes",
        "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/owner",
        "/v1/admin/tenants/{tenant}/service-accounts/{client_id}/disable",
        "/v1/admin/service-accounts/report",
        "/v1/admin/keys",
        "/v1/admin/keys/rotate",
        "/v1/admin/credentials",
        "/v1/admin/credentials/{id}/rotate",
        "/v1/admin/credentials/{id}/revoke",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} is not documented in openapi.json"
        );
    }
    server.pep_post("/access/v1/evaluation", &json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}})).await;
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("warden_decisions_total{decision=\"allow\",reason=\"permitted\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("warden_decision_duration_seconds_bucket"));
    let (status, _) = server.get("/no/such/path").await;
    assert_eq!(status, 400);
}
