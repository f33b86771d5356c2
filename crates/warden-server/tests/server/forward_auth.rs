//! Issue #23: `GET|POST /v1/forward-auth`, the HTTP forward-auth of nginx `auth_request`, Caddy
//! `forward_auth` and Traefik ForwardAuth, deciding through `[[routes]]` exactly as `/v1/check`
//! decides: allowed, denied, unauthenticated, cross-tenant by path, paths that could be read
//! otherwise upstream, unmatched routes under both defaults, and the decision log's records.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN_SECRET, Setup, TestServer, check_document, user_token};

const ROUTES: &str = "[[routes]]\nmethod = \"GET\"\npath = \"/tenants/{tenant}/documents/{id}\"\naction = \"read\"\nresource_type = \"Document\"\nresource_id = \"id\"\ntenant = \"tenant\"\n[[routes]]\nmethod = \"DELETE\"\npath = \"/tenants/{tenant}/documents/{id}\"\naction = \"delete\"\nresource_type = \"Document\"\nresource_id = \"id\"\ntenant = \"tenant\"\n";

async fn server(extra: &'static str) -> TestServer {
    TestServer::start(Setup {
        storage: Some(String::new()),
        extra,
        ..Setup::default()
    })
    .await
}

/// Asks forward-auth as a gateway would for `method uri` with `token`; (status, headers, body).
async fn ask(
    server: &TestServer,
    method: &str,
    uri: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = server
        .client
        .get(server.url("/v1/forward-auth"))
        .header("x-forwarded-method", method)
        .header("x-forwarded-uri", uri)
        .header("x-forwarded-host", "app.example");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn forward_auth_decides_like_check_through_the_route_table() {
    let server = server(ROUTES).await;
    let carol = user_token(&server, "carol", "acme", &[]);

    // Allowed: 200, with the decision id and the principal for the upstream.
    let (status, headers, _) = ask(
        &server,
        "GET",
        "/tenants/acme/documents/roadmap?x=1",
        Some(&carol),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-decision-id"));
    assert_eq!(headers["x-warden-principal"], "acme/carol");
    assert_eq!(headers["x-warden-tenant"], "acme");
    // The same answer as /v1/check.
    assert_eq!(
        check_document(&server, &carol, "read", "acme/roadmap").await["decision"],
        "allow"
    );

    // Denied by policy: 403 with the reason code and decision id, no policy named.
    let (status, headers, body) = ask(
        &server,
        "DELETE",
        "/tenants/acme/documents/roadmap",
        Some(&carol),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        check_document(&server, &carol, "delete", "acme/roadmap").await["decision"],
        "deny"
    );
    assert!(body["decision_id"].is_string() && headers.contains_key("x-decision-id"));
    assert!(body["reason"].is_string(), "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("policy") && !text.contains(".cedar") && !text.contains("policies"),
        "a denial leaks the policy: {text}"
    );

    // Cross-tenant by path.
    let (status, _, body) = ask(
        &server,
        "GET",
        "/tenants/globex/documents/roadmap",
        Some(&carol),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // No token, a forged token: 401 with a challenge.
    let (status, headers, body) =
        ask(&server, "GET", "/tenants/acme/documents/roadmap", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(headers.contains_key("www-authenticate"));
    let forged = format!("{}x", &carol[..carol.len() - 1]);
    let (status, _, _) = ask(
        &server,
        "GET",
        "/tenants/acme/documents/roadmap",
        Some(&forged),
    )
    .await;
    assert_eq!(status, 401);

    // A disabled principal: the store's word counts at the edge too.
    let (status, answer) = server
        .admin(
            Method::POST,
            "/v1/admin/tenants/acme/principals/status",
            Some(ADMIN_SECRET),
            Some(&json!({"principal": "User::\"carol\"", "status": "disabled"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, body) = ask(
        &server,
        "GET",
        "/tenants/acme/documents/roadmap",
        Some(&carol),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reason"], "principal_disabled", "{body}");
}

#[tokio::test]
async fn paths_the_upstream_could_read_otherwise_are_refused_whatever_the_default() {
    let server = server(Box::leak(
        format!("{ROUTES}[forward_auth]\ndefault = \"allow\"\n").into_boxed_str(),
    ))
    .await;
    let carol = user_token(&server, "carol", "acme", &[]);
    for uri in [
        "/tenants/acme/documents/../../globex/documents/roadmap",
        "/tenants/acme/documents/%2e%2e/x",
        "/tenants/acme/documents/a%2Fb",
        "/tenants/acme//documents/roadmap",
        "/tenants/acme/documents/roadmap/",
        "tenants/acme/documents/roadmap",
        "/tenants/acme%00/documents/roadmap",
    ] {
        let (status, _, body) = ask(&server, "GET", uri, Some(&carol)).await;
        assert_eq!(status, 403, "{uri}: {body}");
        assert_eq!(body["reason"], "path_refused", "{uri}: {body}");
    }
    // Unmatched, with default = "allow": let through without a token.
    let (status, _, _) = ask(&server, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    // A matched route still needs its token.
    let (status, _, _) = ask(&server, "GET", "/tenants/acme/documents/roadmap", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn an_unmatched_request_is_denied_by_default_and_headers_are_required() {
    let server = server(ROUTES).await;
    let carol = user_token(&server, "carol", "acme", &[]);
    let (status, _, body) = ask(
        &server,
        "PUT",
        "/tenants/acme/documents/roadmap",
        Some(&carol),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reason"], "no_route");
    // nginx's headers are read too.
    let response = server
        .client
        .get(server.url("/v1/forward-auth"))
        .header("x-original-method", "GET")
        .header("x-original-uri", "/tenants/acme/documents/roadmap")
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A URI that is not ASCII text is a 400 that says so.
    let response = server
        .client
        .get(server.url("/v1/forward-auth"))
        .header("x-forwarded-method", "GET")
        .header(
            "x-forwarded-uri",
            reqwest::header::HeaderValue::from_bytes(
                "/tenants/acme/documents/caf\u{e9}".as_bytes(),
            )
            .unwrap(),
        )
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("not ASCII"),
        "{body}"
    );
    // Without the original request's method and path there is nothing to decide.
    let response = server
        .client
        .get(server.url("/v1/forward-auth"))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_route_that_does_not_fit_the_pack_stops_the_start() {
    for (routes, expected) in [
        (
            "[[routes]]\npath = \"/d/{id}\"\naction = \"fly\"\nresource_type = \"Document\"\nresource_id = \"id\"\n",
            "no action `fly`",
        ),
        (
            "[[routes]]\npath = \"/d/{id}\"\naction = \"read\"\nresource_type = \"Spaceship\"\nresource_id = \"id\"\n",
            "no entity type `Spaceship`",
        ),
        (
            "[[routes]]\npath = \"/d/{id}\"\naction = \"read\"\nresource_type = \"Document\"\nresource_id = \"id\"\n",
            "tenant-scoped",
        ),
        (
            "[[routes]]\npath = \"/t/{tenant}/roles/{id}\"\naction = \"read\"\nresource_type = \"Role\"\nresource_id = \"id\"\ntenant = \"tenant\"\n",
            "not tenant-scoped",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("warden.toml");
        let pack = crate::support::repo_root().join("examples/saas");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[policy]\ndir = {:?}\n{routes}",
                pack.display().to_string()
            ),
        )
        .unwrap();
        let config = warden_config::load(Some(&config), &[]).unwrap();
        let error = match warden_server::Server::start(config).await {
            Ok(_) => panic!("{routes}: started"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains(expected), "{routes}: {error}");
    }
}

/// Issue #23 review: what an upstream could read as another request is refused before any
/// decision: a method-override header, a forwarded header sent twice or in both forms, a `;`
/// or a second encoding in the path, a resource id the entity data does not know (an alias
/// such as `roadmap.json` or `ROADMAP`), and, under `default = "allow"`, a path that matches a
/// route but for its case.
#[tokio::test]
async fn what_the_upstream_could_read_otherwise_is_refused() {
    let server = server(ROUTES).await;
    let carol = user_token(&server, "carol", "acme", &[]);
    let roadmap = "/tenants/acme/documents/roadmap";

    let response = server
        .client
        .get(server.url("/v1/forward-auth"))
        .header("x-forwarded-method", "POST")
        .header("x-forwarded-uri", roadmap)
        .header("x-http-method-override", "DELETE")
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "method_override", "{body}");

    for (first, second) in [
        (
            ("x-forwarded-uri", roadmap),
            ("x-forwarded-uri", "/tenants/acme/documents/salaries"),
        ),
        (
            ("x-forwarded-uri", roadmap),
            ("x-original-uri", "/tenants/acme/documents/salaries"),
        ),
        (
            ("x-forwarded-method", "GET"),
            ("x-original-method", "DELETE"),
        ),
    ] {
        let mut request = server
            .client
            .get(server.url("/v1/forward-auth"))
            .bearer_auth(&carol)
            .header(first.0, first.1)
            .header(second.0, second.1);
        if first.0.ends_with("method") {
            request = request.header("x-forwarded-uri", roadmap);
        } else {
            request = request.header("x-forwarded-method", "GET");
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{first:?} {second:?}");
    }

    for (uri, reason) in [
        (
            "/tenants/acme/documents/roadmap;jsessionid=1",
            "path_refused",
        ),
        ("/tenants/acme/documents/roadmap%252e", "path_refused"),
        ("/tenants/acme/documents/roadmap.json", "resource_unknown"),
        ("/tenants/acme/documents/ROADMAP", "resource_unknown"),
    ] {
        let (status, _, body) = ask(&server, "GET", uri, Some(&carol)).await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (403, Some(reason)),
            "{uri}: {body}"
        );
    }

    let allowing = crate::forward_auth::server(Box::leak(
        format!("{ROUTES}[forward_auth]\ndefault = \"allow\"\n").into_boxed_str(),
    ))
    .await;
    for uri in [
        "/TENANTS/acme/documents/roadmap",
        "/tenants/acme/Documents/salaries",
    ] {
        let (status, _, body) = ask(&allowing, "GET", uri, None).await;
        assert_eq!(status, 403, "{uri}: {body}");
        assert_eq!(body["reason"], "path_refused", "{uri}: {body}");
    }
}

/// A gateway's address whose failed-authentication bucket someone else emptied (bad PEP
/// credentials through the same proxy) still gets forward-auth answers: forward-auth checks
/// no caller credential.
#[tokio::test]
async fn forward_auth_is_not_locked_out_by_other_callers_failures() {
    let server = server(Box::leak(
        format!("{ROUTES}[rate_limits]\nfailed_auth_per_minute = 2\n").into_boxed_str(),
    ))
    .await;
    let carol = user_token(&server, "carol", "acme", &[]);
    for _ in 0..4 {
        let _ = server
            .client
            .post(server.url("/access/v1/evaluation"))
            .bearer_auth("pep-guess")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
    }
    let (status, _) = server.get("/v1/admin/credentials").await;
    assert_eq!(status, 429, "the address is locked out");
    let (status, _, body) = ask(
        &server,
        "GET",
        "/tenants/acme/documents/roadmap",
        Some(&carol),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
