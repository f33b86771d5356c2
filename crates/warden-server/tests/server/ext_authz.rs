//! Issue #23: Envoy `ext_authz` over gRPC (`envoy.service.auth.v3.Authorization/Check`, the
//! real Envoy protos of `envoy-types`) against the real server, next to HTTP forward-auth and
//! `/v1/check` (what the Python SDK calls), case by case from the one table
//! `tests/gateways/agreement.json` that the Python gateway suite also asserts; the context token
//! passed inward on allow; malformed check requests; gRPC health.

use std::collections::HashMap;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse, HttpResponse};
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use warden_audit::StoredRecord;
use warden_audit::file_sink::CURRENT;
use warden_audit::record::decode;
use warden_testkit::TestKey;

use crate::support::{ADMIN_SECRET, ISSUER, Setup, TestServer, now, repo_root};

/// The example app's routes (tests/gateways/stack.py ROUTES).
const ROUTES: &str = r#"
[[routes]]
method = "GET"
path = "/tenants/{tenant}/documents"
action = "list"
resource_type = "Tenant"
resource_id = "tenant"
tenant = "tenant"
[[routes]]
method = "GET"
path = "/tenants/{tenant}/documents/{id}"
action = "read"
resource_type = "Document"
resource_id = "id"
tenant = "tenant"
[[routes]]
method = "DELETE"
path = "/tenants/{tenant}/documents/{id}"
action = "delete"
resource_type = "Document"
resource_id = "id"
tenant = "tenant"
"#;

const WARDEN_ISSUER: &str = "http://127.0.0.1:8180";
const UPSTREAM: &str = "docs-app";

/// A server with routes, `[grpc]`, `[tokens]` and `[context_token]`, plus `extra`.
async fn gateway_server(extra: &str) -> TestServer {
    gateway_server_with("", extra).await
}

/// `gateway_server` with `[server]` keys of its own.
async fn gateway_server_with(server_extra: &'static str, extra: &str) -> TestServer {
    let (key_file, tokens) = crate::support::tokens_section(WARDEN_ISSUER);
    let config = format!(
        "{ROUTES}\n[grpc]\nlisten = \"127.0.0.1:0\"\n{tokens}[context_token]\naudience = {UPSTREAM:?}\n{extra}\n"
    );
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        server_extra,
        extra: Box::leak(config.into_boxed_str()),
        ..Setup::default()
    })
    .await;
    drop(key_file);
    server
}

fn carol_bearer(server: &TestServer, jti: &str) -> String {
    let token = token_for(
        server,
        &json!({"sub": "carol", "org": "acme", "roles": [], "variant": "valid"}),
        jti,
    );
    format!("Bearer {token}")
}

fn records(dir: &std::path::Path) -> Vec<StoredRecord> {
    std::fs::read_to_string(dir.join(CURRENT))
        .unwrap()
        .lines()
        .map(|line| decode(line).unwrap())
        .collect()
}

/// An HTTP/2 (prior knowledge) connection to `address`, its driver spawned.
async fn h2_connect(address: std::net::SocketAddr) -> h2::client::SendRequest<axum::body::Bytes> {
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send.ready().await.unwrap()
}

async fn grpc_client(server: &TestServer) -> AuthorizationClient<tonic::transport::Channel> {
    let address = server.server.as_ref().unwrap().grpc_address().unwrap();
    AuthorizationClient::connect(format!("http://{address}"))
        .await
        .unwrap()
}

/// A `CheckRequest` as Envoy sends it: lower-cased headers, the target as the client wrote it.
fn check_request(method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    id: "envoy-request-1".to_owned(),
                    method: method.to_owned(),
                    path: path.to_owned(),
                    host: "app.example".to_owned(),
                    scheme: "https".to_owned(),
                    protocol: "HTTP/1.1".to_owned(),
                    headers: headers
                        .iter()
                        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                        .collect(),
                    size: -1,
                    ..HttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    }
}

/// One gateway's answer, reduced to what the cases compare.
#[derive(Debug)]
struct Answer {
    status: u16,
    reason: Option<String>,
    headers: HashMap<String, String>,
    body: Value,
}

async fn ext_authz(
    client: &mut AuthorizationClient<tonic::transport::Channel>,
    request: CheckRequest,
) -> (CheckResponse, Answer) {
    let response = client.check(request).await.unwrap().into_inner();
    let code = response.status.as_ref().map_or(-1, |status| status.code);
    let answer = match response.http_response.clone() {
        Some(HttpResponse::OkResponse(ok)) => {
            assert_eq!(code, 0, "an OK response has gRPC status OK");
            Answer {
                status: 200,
                reason: None,
                headers: ok
                    .headers
                    .iter()
                    .filter_map(|option| option.header.as_ref())
                    .map(|header| (header.key.clone(), header.value.clone()))
                    .collect(),
                body: Value::Null,
            }
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            let status = u16::try_from(denied.status.unwrap().code).unwrap();
            let expected_code = if status == 401 {
                tonic::Code::Unauthenticated
            } else {
                tonic::Code::PermissionDenied
            };
            assert_eq!(code, expected_code as i32, "{denied:?}");
            let body: Value = serde_json::from_str(&denied.body).unwrap();
            Answer {
                status,
                reason: body["reason"].as_str().map(str::to_owned),
                headers: denied
                    .headers
                    .iter()
                    .filter_map(|option| option.header.as_ref())
                    .map(|header| (header.key.clone(), header.value.clone()))
                    .collect(),
                body,
            }
        }
        other => panic!("no OK or denied response in {other:?}"),
    };
    (response, answer)
}

async fn forward_auth(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = server
        .client
        .get(server.url("/v1/forward-auth"))
        .header("x-forwarded-method", method)
        .header("x-forwarded-uri", path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        reason: body["reason"].as_str().map(str::to_owned),
        headers,
        body,
    }
}

/// The token a case describes, minted by the test IdP (or by a key it never published).
fn token_for(server: &TestServer, spec: &Value, jti: &str) -> String {
    let now = now();
    let mut claims = warden_testkit::claims_at(ISSUER, now);
    claims["sub"] = spec["sub"].clone();
    claims["org_id"] = spec["org"].clone();
    claims["roles"] = spec["roles"].clone();
    claims["jti"] = json!(jti);
    match spec["variant"].as_str().unwrap() {
        "valid" | "revoked" => server.key.token(&claims),
        "expired" => {
            claims["exp"] = json!(now - 3600);
            claims["iat"] = json!(now - 7200);
            claims["nbf"] = json!(now - 7200);
            server.key.token(&claims)
        }
        // The same kid, another key: the signature does not verify.
        "forged" => TestKey::rsa("k1").token(&claims),
        "wrong_audience" => {
            claims["aud"] = json!("another-api");
            server.key.token(&claims)
        }
        other => panic!("unknown token variant {other}"),
    }
}

/// The published JWKS of Warden's own keys.
async fn warden_jwks(server: &TestServer) -> JwkSet {
    let response = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

/// Verifies a context token against Warden's JWKS for `audience`; its claims.
fn verify_context(jwks: &JwkSet, token: &str, audience: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    assert_eq!(header.typ.as_deref(), Some("warden-ctx+jwt"));
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("unknown kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[WARDEN_ISSUER]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

async fn revoke_jti(server: &TestServer, jti: &str) {
    let (status, body) = server
        .admin(
            reqwest::Method::POST,
            "/v1/admin/revocations",
            Some(ADMIN_SECRET),
            Some(&json!({"kind": "token", "issuer": ISSUER, "value": jti, "reason": "agreement test"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// `/v1/check` as the SDK calls it (the end user's token as the bearer): allow, deny or
/// unauthenticated.
async fn sdk_check(server: &TestServer, token: Option<&str>, check: &Value) -> String {
    let mut request = server.client.post(server.url("/v1/check")).json(check);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match (status, body["decision"].as_str()) {
        (200, Some(decision)) => decision.to_owned(),
        (401, _) => "unauthenticated".to_owned(),
        other => panic!("/v1/check answered {other:?}: {body}"),
    }
}

#[tokio::test]
async fn forward_auth_ext_authz_and_the_sdk_check_agree_on_every_case_of_the_table() {
    let table: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/gateways/agreement.json")).unwrap(),
    )
    .unwrap();
    let server = gateway_server("").await;
    let mut client = grpc_client(&server).await;
    let cases = table["cases"].as_array().unwrap();
    assert!(cases.len() >= 10, "the table has its cases");
    for (index, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let method = case["method"].as_str().unwrap();
        let path = case["path"].as_str().unwrap();
        let jti = format!("agreement-{index}");
        let token = (!case["token"].is_null()).then(|| token_for(&server, &case["token"], &jti));
        if case["token"]["variant"] == "revoked" {
            revoke_jti(&server, &jti).await;
        }
        let mut headers: Vec<(String, String)> = case["headers"]
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(token) = &token {
            headers.push(("authorization".to_owned(), format!("Bearer {token}")));
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();

        let http = forward_auth(&server, method, path, &headers).await;
        let (_, grpc) = ext_authz(&mut client, check_request(method, path, &headers)).await;
        let expected_status = u16::try_from(case["status"].as_u64().unwrap()).unwrap();
        let reasons: Vec<&str> = case["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        for (gateway, answer) in [("forward-auth", &http), ("ext_authz", &grpc)] {
            assert_eq!(
                answer.status, expected_status,
                "{name}: {gateway} answered {answer:?}"
            );
            if expected_status != 200 {
                let reason = answer.reason.as_deref().unwrap_or_default();
                assert!(
                    reasons.contains(&reason),
                    "{name}: {gateway} gave reason {reason}, expected one of {reasons:?}"
                );
                let detail = answer.body["detail"].as_str().unwrap_or_default();
                assert!(
                    !detail.contains("permit(") && !detail.contains("policy"),
                    "{name}: {gateway} names no policy: {detail}"
                );
            }
            if expected_status == 401 {
                assert!(
                    answer.headers["www-authenticate"].starts_with("Bearer"),
                    "{name}: {gateway} sends a challenge"
                );
            }
            if expected_status == 403 {
                assert!(
                    answer.headers.contains_key("x-decision-id"),
                    "{name}: {gateway} names the record"
                );
            }
        }
        assert_eq!(http.reason, grpc.reason, "{name}: the same reason");

        if expected_status == 200 {
            // The same identity goes upstream, and a context token for the upstream that
            // states this decision.
            for header in [
                "x-warden-principal",
                "x-warden-principal-type",
                "x-warden-tenant",
            ] {
                assert_eq!(
                    http.headers.get(header),
                    grpc.headers.get(header),
                    "{name}: {header}"
                );
            }
            let jwks = warden_jwks(&server).await;
            for (gateway, answer) in [("forward-auth", &http), ("ext_authz", &grpc)] {
                let claims = verify_context(&jwks, &answer.headers["x-warden-context"], UPSTREAM)
                    .unwrap_or_else(|e| panic!("{name}: {gateway}'s context token: {e}"));
                assert_eq!(
                    claims["decision_id"],
                    json!(answer.headers["x-decision-id"])
                );
                assert_eq!(claims["action"], case["check"]["action"], "{name}");
                assert_eq!(claims["resource"], case["check"]["resource"], "{name}");
                assert_eq!(
                    claims["sub"],
                    json!(answer.headers["x-warden-principal"]),
                    "{name}"
                );
                assert_eq!(claims["original_jti"], json!(jti), "{name}");
                let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
                assert_eq!(lifetime, 30, "the default lifetime");
                // Not for another upstream.
                assert!(
                    verify_context(&jwks, &answer.headers["x-warden-context"], "billing-api")
                        .is_err()
                );
            }
        }

        match (case["sdk"].as_str(), case["check"].is_null()) {
            (Some(expected), false) => {
                let said = sdk_check(&server, token.as_deref(), &case["check"]).await;
                assert_eq!(said, expected, "{name}: the SDK's check");
            }
            (None, true) => {}
            other => panic!("{name}: sdk and check go together, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_context_token_is_not_an_access_token() {
    let server = gateway_server("").await;
    let carol = token_for(
        &server,
        &json!({"sub": "carol", "org": "acme", "roles": [], "variant": "valid"}),
        "ctx-1",
    );
    let answer = forward_auth(
        &server,
        "GET",
        "/tenants/acme/documents/roadmap",
        &[("authorization", &format!("Bearer {carol}"))],
    )
    .await;
    assert_eq!(answer.status, 200);
    let context = answer.headers["x-warden-context"].clone();
    // Sent back to Warden as a bearer token: refused (its type and audience are not an access
    // token's), on every entry point.
    let again = forward_auth(
        &server,
        "GET",
        "/tenants/acme/documents/roadmap",
        &[("authorization", &format!("Bearer {context}"))],
    )
    .await;
    assert_eq!(again.status, 401, "{:?}", again.body);
    let check = json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}});
    assert_eq!(
        sdk_check(&server, Some(&context), &check).await,
        "unauthenticated"
    );
}

#[tokio::test]
async fn a_route_names_its_own_upstream_audience() {
    let routes = "[[routes]]\nmethod = \"GET\"\npath = \"/billing/{tenant}/invoices/{id}\"\naction = \"read\"\nresource_type = \"Document\"\nresource_id = \"id\"\ntenant = \"tenant\"\naudience = \"billing-api\"\n";
    let server = gateway_server(routes).await;
    let carol = token_for(
        &server,
        &json!({"sub": "carol", "org": "acme", "roles": [], "variant": "valid"}),
        "ctx-2",
    );
    let bearer = format!("Bearer {carol}");
    let answer = forward_auth(
        &server,
        "GET",
        "/billing/acme/invoices/roadmap",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let jwks = warden_jwks(&server).await;
    let context = &answer.headers["x-warden-context"];
    assert!(verify_context(&jwks, context, "billing-api").is_ok());
    assert!(
        verify_context(&jwks, context, UPSTREAM).is_err(),
        "not the default upstream's"
    );
}

#[tokio::test]
async fn malformed_check_requests_are_denials_that_say_why() {
    let server = gateway_server("").await;
    let mut client = grpc_client(&server).await;
    // No HTTP attributes at all.
    let (_, answer) = ext_authz(&mut client, CheckRequest { attributes: None }).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    // No method or path.
    let (_, answer) = ext_authz(&mut client, check_request("", "", &[])).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    // An absolute-form target is not a path of plain segments.
    let (_, answer) = ext_authz(
        &mut client,
        check_request(
            "GET",
            "http://app.example/tenants/acme/documents/roadmap",
            &[],
        ),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.reason.as_deref(), Some("path_refused"));
    // With encode_raw_headers, two Authorization headers: which one the upstream reads is not
    // known, so neither is used.
    let carol = token_for(
        &server,
        &json!({"sub": "carol", "org": "acme", "roles": [], "variant": "valid"}),
        "raw-1",
    );
    let mut request = check_request("GET", "/tenants/acme/documents/roadmap", &[]);
    if let Some(http) = request
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
    {
        let raw = |key: &str, value: &str| HeaderValue {
            key: key.to_owned(),
            value: String::new(),
            raw_value: value.as_bytes().to_vec(),
        };
        http.header_map = Some(HeaderMap {
            headers: vec![
                raw("authorization", &format!("Bearer {carol}")),
                raw("Authorization", "Bearer another"),
            ],
        });
    }
    let (_, answer) = ext_authz(&mut client, request.clone()).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    // One raw Authorization header: decided as usual.
    if let Some(map) = request
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .and_then(|h| h.header_map.as_mut())
    {
        map.headers.truncate(1);
    }
    let (_, answer) = ext_authz(&mut client, request).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // Larger than [grpc] max_message_bytes (256 KiB by default): a recorded denial with its
    // reason; past four times that, refused by gRPC before it is buffered (OUT_OF_RANGE, which
    // Envoy fails closed on).
    let padding = "x".repeat(300 * 1024);
    let large = check_request(
        "GET",
        "/tenants/acme/documents/roadmap",
        &[("x-padding", &padding)],
    );
    let (_, answer) = ext_authz(&mut client, large).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(answer.reason.as_deref(), Some("request_too_large"));
    assert!(answer.headers.contains_key("x-decision-id"));
    let padding = "x".repeat(1100 * 1024);
    let oversized = check_request(
        "GET",
        "/tenants/acme/documents/roadmap",
        &[("x-padding", &padding)],
    );
    let refused = client.check(oversized).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::OutOfRange, "{refused:?}");
    // The connection still serves the next check.
    let (_, answer) = ext_authz(&mut client, check_request("GET", "/admin", &[])).await;
    assert_eq!(answer.status, 403);
}

#[tokio::test]
async fn an_unrouted_request_let_through_carries_no_identity_and_clears_the_clients() {
    let server = gateway_server("[forward_auth]\ndefault = \"allow\"\n").await;
    let mut client = grpc_client(&server).await;
    let (response, answer) = ext_authz(
        &mut client,
        check_request(
            "GET",
            "/public/about",
            &[("x-warden-principal", "acme/alice")],
        ),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(answer.headers.is_empty(), "{answer:?}");
    let Some(HttpResponse::OkResponse(ok)) = response.http_response else {
        panic!("not OK");
    };
    for header in [
        "x-decision-id",
        "x-warden-principal",
        "x-warden-principal-type",
        "x-warden-tenant",
        "x-warden-context",
    ] {
        assert!(
            ok.headers_to_remove.iter().any(|h| h == header),
            "{header} is removed: {:?}",
            ok.headers_to_remove
        );
    }
}

#[tokio::test]
async fn grpc_health_reports_serving_once_the_pack_is_loaded() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let server = gateway_server("").await;
    let address = server.server.as_ref().unwrap().grpc_address().unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let mut serving = false;
    for _ in 0..50 {
        let status = health
            .check(HealthCheckRequest {
                service: "envoy.service.auth.v3.Authorization".to_owned(),
            })
            .await
            .map(|r| r.into_inner().status);
        if status.ok()
            == Some(tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
        {
            serving = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(serving, "the ext_authz service reports SERVING");
}

/// Review #23: the HTTP listener keeps a bound on streams per HTTP/2 connection (hyper reads
/// `max_concurrent_streams(None)` as no limit).
#[tokio::test]
async fn the_http_listener_still_bounds_concurrent_http2_streams() {
    let server = gateway_server("").await;
    for address in [
        server.server.as_ref().unwrap().address(),
        server.server.as_ref().unwrap().grpc_address().unwrap(),
    ] {
        let mut send = h2_connect(address).await;
        // One round trip: the server's SETTINGS are applied by the time the answer is in.
        let request = axum::http::Request::get(format!("http://{address}/healthz"))
            .body(())
            .unwrap();
        let (response, _) = send.send_request(request, true).unwrap();
        let _ = response.await.unwrap();
        let limit = send.current_max_send_streams();
        assert!(
            limit <= 1024,
            "{address}: one connection may open {limit} streams at once"
        );
    }
}

/// Review #23: a Check whose message never arrives is ended soon after the request timeout
/// instead of holding its stream and buffer for ever.
#[tokio::test]
async fn a_check_whose_message_never_arrives_is_ended_within_the_request_timeout() {
    let server = gateway_server_with("request_timeout_ms = 500\n", "").await;
    let address = server.server.as_ref().unwrap().grpc_address().unwrap();
    let mut send = h2_connect(address).await;
    let request = axum::http::Request::post(format!(
        "http://{address}/envoy.service.auth.v3.Authorization/Check"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, mut body) = send.send_request(request, false).unwrap();
    // The gRPC prefix announces a 60 KiB message; nothing follows.
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&(60u32 * 1024).to_be_bytes());
    body.send_data(axum::body::Bytes::from(prefix), false)
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(3), response).await;
    assert!(
        ended.is_ok(),
        "a stalled Check still holds its stream 3 s later"
    );
}

/// Review #23: a CheckRequest Envoy sends for a request inside its default 60 KiB header limit
/// (the target counted twice, as `path` and `:path`) is decided, not a bare gRPC error.
#[tokio::test]
async fn a_check_request_envoy_can_send_is_decided() {
    let server = gateway_server("").await;
    let mut client = grpc_client(&server).await;
    let bearer = carol_bearer(&server, "big-1");
    let path = format!(
        "/tenants/acme/documents/roadmap?q={}",
        "a".repeat(31 * 1024)
    );
    let cookie = "c".repeat(3 * 1024);
    let request = check_request(
        "GET",
        &path,
        &[
            (":method", "GET"),
            (":path", &path),
            (":authority", "app.example"),
            ("cookie", &cookie),
            ("authorization", &bearer),
        ],
    );
    let (_, answer) = ext_authz(&mut client, request).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

const SHARES_ROUTE: &str = "[[routes]]\nmethod = \"POST\"\npath = \"/tenants/{tenant}/documents/{id}/shares\"\naction = \"share\"\nresource_type = \"Document\"\nresource_id = \"id\"\ntenant = \"tenant\"\n";

/// Review #23: overrides an upstream honours are refused in every spelling Warden can see (a
/// `_method` query parameter; `_` for `-` in a header name, which CGI-style upstreams fold), and
/// so is an identity header spelled with `_`, on both gateways.
#[tokio::test]
async fn method_overrides_and_identity_lookalikes_in_other_spellings_are_refused() {
    let server = gateway_server(SHARES_ROUTE).await;
    let mut client = grpc_client(&server).await;
    let bearer = carol_bearer(&server, "override-1");
    for (method, path, header, reason) in [
        (
            "POST",
            "/tenants/acme/documents/roadmap/shares?_method=DELETE",
            None,
            "method_override",
        ),
        (
            "POST",
            "/tenants/acme/documents/roadmap/shares?%5FMETHOD=DELETE",
            None,
            "method_override",
        ),
        (
            "GET",
            "/tenants/acme/documents/roadmap",
            Some(("x_http_method_override", "DELETE")),
            "method_override",
        ),
        (
            "GET",
            "/tenants/acme/documents/roadmap",
            Some(("X-Method-Override", "DELETE")),
            "method_override",
        ),
        (
            "GET",
            "/tenants/acme/documents/roadmap",
            Some(("x_warden_tenant", "globex")),
            "identity_header_refused",
        ),
        (
            "GET",
            "/tenants/acme/documents/roadmap",
            Some(("X_Warden_Context", "forged")),
            "identity_header_refused",
        ),
    ] {
        let mut headers = vec![("authorization", bearer.as_str())];
        headers.extend(header);
        let (_, grpc) = ext_authz(&mut client, check_request(method, path, &headers)).await;
        let http = forward_auth(&server, method, path, &headers).await;
        for (gateway, answer) in [("ext_authz", grpc), ("forward-auth", http)] {
            assert_eq!(
                answer.status, 403,
                "{gateway} {path} {header:?}: {answer:?}"
            );
            assert_eq!(
                answer.reason.as_deref(),
                Some(reason),
                "{gateway} {path} {header:?}"
            );
        }
    }
    // A query parameter that only contains the word is not an override.
    let (_, answer) = ext_authz(
        &mut client,
        check_request(
            "GET",
            "/tenants/acme/documents/roadmap?sort=_method",
            &[("authorization", &bearer)],
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// Review #23: refusals of checks Warden cannot read are in the decision log with their entry
/// point.
#[tokio::test]
async fn malformed_check_refusals_are_recorded_as_ext_authz_denials() {
    let mut server = gateway_server("").await;
    let audit_dir = server.dir.path().join("warden-audit");
    let mut client = grpc_client(&server).await;
    let bearer = carol_bearer(&server, "dup-1");
    let mut request = check_request("GET", "/tenants/acme/documents/roadmap", &[]);
    if let Some(http) = request
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
    {
        let raw = |key: &str, value: &str| HeaderValue {
            key: key.to_owned(),
            value: String::new(),
            raw_value: value.as_bytes().to_vec(),
        };
        http.header_map = Some(HeaderMap {
            headers: vec![
                raw("authorization", &bearer),
                raw("Authorization", "Bearer x"),
            ],
        });
    }
    let (_, answer) = ext_authz(&mut client, request).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    let (_, answer) = ext_authz(&mut client, CheckRequest { attributes: None }).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    // Forward-auth's own 400 (no forwarded method) too.
    let response = server
        .client
        .get(server.url("/v1/forward-auth"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    drop(client);
    server
        .server
        .take()
        .unwrap()
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
    let malformed: Vec<(String, String)> = records(&audit_dir)
        .into_iter()
        .filter(|r| r.record.reason.as_deref() == Some("request_malformed"))
        .map(|r| {
            assert_eq!(r.record.decision.as_deref(), Some("deny"));
            (
                r.record.entry.unwrap_or_default(),
                r.record.errors.join(" "),
            )
        })
        .collect();
    assert_eq!(malformed.len(), 3, "{malformed:?}");
    assert_eq!(
        malformed
            .iter()
            .filter(|(entry, _)| entry == "ext_authz")
            .count(),
        2,
        "{malformed:?}"
    );
    assert!(malformed.iter().any(|(entry, _)| entry == "forward_auth"));
}

/// Review #23: a 503 denial names no internals (the decision log's path, OS errors), in the
/// body or the gRPC status message.
#[tokio::test]
async fn a_503_denial_names_no_internals() {
    let server = gateway_server(
        "[forward_auth]\ndefault = \"allow\"\n[audit]\non_failure = \"deny\"\nretry_interval_ms = 50\n",
    )
    .await;
    let audit_dir = server.dir.path().join("warden-audit");
    let mut client = grpc_client(&server).await;
    let (_, answer) = ext_authz(&mut client, check_request("GET", "/public/about", &[])).await;
    assert_eq!(answer.status, 200);
    let current = audit_dir.join(CURRENT);
    std::fs::rename(&current, audit_dir.join("moved-away.jsonl")).unwrap();
    std::fs::create_dir(&current).unwrap();
    let mut refused = None;
    // The log notices the lost file on its next write; bounded.
    for _ in 0..50 {
        let (response, answer) =
            ext_authz(&mut client, check_request("GET", "/public/about", &[])).await;
        if answer.status == 503 {
            refused = Some((response, answer));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (response, answer) = refused.expect("the unrecorded allow becomes a 503");
    let detail = answer.body["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let message = response.status.map(|s| s.message).unwrap_or_default();
    for text in [detail, message] {
        assert!(
            !text.contains("os error")
                && !text.contains("warden-audit")
                && !text.contains(".jsonl"),
            "internals in a denial: {text}"
        );
    }
}
