//! Issue #24: the console's pages and its sessions. Login with an admin credential only (no
//! default), the session in an HttpOnly SameSite=Strict cookie, every admin call with the cookie
//! needing the CSRF token and the console's own origin, logout and a revoked credential ending
//! the session, a strict CSP on the pages; and the decision search the console reads.

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::support::{
    ADMIN_SECRET, SCOPED_ADMIN_SECRET, Setup, TestServer, check_document, user_token,
};

async fn server() -> TestServer {
    TestServer::start(Setup {
        storage: Some(String::new()),
        ..Setup::default()
    })
    .await
}

/// Logs in; the session cookie (`name=value`) and the CSRF token.
async fn login(server: &TestServer, credential: &str) -> (u16, Option<String>, Value) {
    let response = server
        .client
        .post(server.url("/console/session"))
        .json(&json!({"credential": credential}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|value| value.to_str().unwrap().to_owned());
    (status, cookie, response.json().await.unwrap_or(Value::Null))
}

fn session_headers(cookie: &str, csrf: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let pair = cookie.split(';').next().unwrap();
    headers.insert("cookie", HeaderValue::from_str(pair).unwrap());
    if let Some(csrf) = csrf {
        headers.insert("x-csrf-token", HeaderValue::from_str(csrf).unwrap());
    }
    headers
}

async fn with_session(
    server: &TestServer,
    method: Method,
    path: &str,
    headers: HeaderMap,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server
        .client
        .request(method, server.url(path))
        .headers(headers);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_console_pages_carry_a_strict_policy() {
    let server = server().await;
    for (path, kind) in [
        ("/console", "text/html"),
        ("/console/assets/console.js", "text/javascript"),
        ("/console/assets/console.css", "text/css"),
    ] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    // No inline script or style in the page itself (the CSP would block it anyway).
    let page = server
        .client
        .get(server.url("/console"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("<script>"),
        "inline script in the console page"
    );
    assert!(!page.contains("style="), "inline style in the console page");
}

#[tokio::test]
async fn a_console_session_needs_a_credential_and_its_csrf_token() {
    let server = server().await;
    // No default credential: a wrong or empty one opens nothing.
    for wrong in ["", "admin", "wdn_admin_guess"] {
        let (status, cookie, _) = login(&server, wrong).await;
        assert_eq!(status, 401, "{wrong:?}");
        assert!(cookie.is_none());
    }
    // A login that is not JSON is refused.
    let response = server
        .client
        .post(server.url("/console/session"))
        .header("content-type", "text/plain")
        .body(format!("{{\"credential\": \"{ADMIN_SECRET}\"}}"))
        .send()
        .await
        .unwrap();
    assert!(
        [400, 415].contains(&response.status().as_u16()),
        "{}",
        response.status()
    );
    assert!(response.headers().get("set-cookie").is_none());
    // Nor one from another origin.
    let response = server
        .client
        .post(server.url("/console/session"))
        .header("origin", "https://evil.example")
        .json(&json!({"credential": ADMIN_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let (status, cookie, session) = login(&server, ADMIN_SECRET).await;
    assert_eq!(status, 200, "{session}");
    let cookie = cookie.unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains(ADMIN_SECRET),
        "the credential is not the cookie"
    );
    assert_eq!(session["admin"]["credential_id"], "adm_test");
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();

    let path = "/v1/admin/tenants/acme/reviews";
    let (status, _) = with_session(
        &server,
        Method::GET,
        path,
        session_headers(&cookie, Some(&csrf)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    for csrf in [None, Some("0".repeat(64).as_str()), Some("")] {
        let (status, answer) = with_session(
            &server,
            Method::GET,
            path,
            session_headers(&cookie, csrf),
            None,
        )
        .await;
        assert_eq!(status, 403, "{csrf:?}: {answer}");
        let (status, _) = with_session(
            &server,
            Method::POST,
            path,
            session_headers(&cookie, csrf),
            Some(json!({"name": "x", "scope": "roles", "due_in_days": 3})),
        )
        .await;
        assert_eq!(status, 403, "{csrf:?}");
    }
    let mut other_origin = session_headers(&cookie, Some(&csrf));
    other_origin.insert("origin", HeaderValue::from_static("https://evil.example"));
    let (status, _) = with_session(&server, Method::GET, path, other_origin, None).await;
    assert_eq!(status, 403);
    // A forged session secret (with its matching CSRF token) is a failed authentication.
    let forged = "warden_console=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let forged_csrf = {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"warden console csrf\n");
        hasher.update(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        hex::encode(hasher.finalize())
    };
    let (status, _) = with_session(
        &server,
        Method::GET,
        path,
        session_headers(forged, Some(&forged_csrf)),
        None,
    )
    .await;
    assert_eq!(status, 401);

    // A reload resumes the session with the same CSRF token.
    let (status, resumed) = with_session(
        &server,
        Method::GET,
        "/console/session",
        session_headers(&cookie, None),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(resumed["csrf_token"], csrf.as_str());
    // Logout needs the token, then ends the session.
    let (status, _) = with_session(
        &server,
        Method::DELETE,
        "/console/session",
        session_headers(&cookie, None),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = with_session(
        &server,
        Method::DELETE,
        "/console/session",
        session_headers(&cookie, Some(&csrf)),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = with_session(
        &server,
        Method::GET,
        path,
        session_headers(&cookie, Some(&csrf)),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = with_session(
        &server,
        Method::GET,
        "/console/session",
        session_headers(&cookie, None),
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_session_ends_with_its_credential_and_keeps_its_tenant_scope() {
    let server = server().await;
    let (status, created) = server
        .admin(
            Method::POST,
            "/v1/admin/credentials",
            Some(ADMIN_SECRET),
            Some(&json!({"label": "console user"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    let (_, cookie, session) = login(&server, secret).await;
    let (cookie, csrf) = (
        cookie.unwrap(),
        session["csrf_token"].as_str().unwrap().to_owned(),
    );
    let path = "/v1/admin/tenants/acme/reviews";
    let (status, _) = with_session(
        &server,
        Method::GET,
        path,
        session_headers(&cookie, Some(&csrf)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // Rotating the credential ends the sessions opened with the old secret.
    let (status, rotated) = server
        .admin(
            Method::POST,
            &format!("/v1/admin/credentials/{id}/rotate"),
            Some(ADMIN_SECRET),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _) = with_session(
        &server,
        Method::GET,
        path,
        session_headers(&cookie, Some(&csrf)),
        None,
    )
    .await;
    assert_eq!(status, 401, "a rotated credential's old session is over");
    let (_, cookie, session) = login(&server, rotated["secret"].as_str().unwrap()).await;
    let (cookie, csrf) = (
        cookie.unwrap(),
        session["csrf_token"].as_str().unwrap().to_owned(),
    );
    let (status, _) = with_session(
        &server,
        Method::GET,
        path,
        session_headers(&cookie, Some(&csrf)),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, answer) = server
        .admin(
            Method::POST,
            &format!("/v1/admin/credentials/{id}/revoke"),
            Some(ADMIN_SECRET),
            Some(&json!({"reason": "left the team"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = with_session(
        &server,
        Method::GET,
        path,
        session_headers(&cookie, Some(&csrf)),
        None,
    )
    .await;
    assert_eq!(status, 401, "a revoked credential's session is over");

    // A session of a credential for globex only is for globex only.
    let (_, cookie, session) = login(&server, SCOPED_ADMIN_SECRET).await;
    let (cookie, csrf) = (
        cookie.unwrap(),
        session["csrf_token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(session["admin"]["tenant_scope"], "globex");
    let (status, _) = with_session(
        &server,
        Method::GET,
        path,
        session_headers(&cookie, Some(&csrf)),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = with_session(
        &server,
        Method::GET,
        "/v1/admin/decisions?tenant=acme",
        session_headers(&cookie, Some(&csrf)),
        None,
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_decision_search_finds_a_denied_decision_with_its_explanation() {
    let server = server().await;
    let carol = user_token(&server, "carol", "acme", &[]);
    let denied = check_document(&server, &carol, "delete", "acme/roadmap").await;
    assert_eq!(denied["decision"], "deny");
    let id = denied["decision_id"].as_str().unwrap().to_owned();
    let globex = user_token(&server, "bob", "globex", &[]);
    check_document(&server, &globex, "delete", "globex/roadmap").await;
    // The log is written in the background: bounded wait for the record.
    let mut found = Value::Null;
    for _ in 0..50 {
        let (status, answer) = server
            .admin(
                Method::GET,
                "/v1/admin/decisions?decision=deny&tenant=acme&limit=10",
                Some(ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        if let Some(record) = answer["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|record| record["id"] == id.as_str())
        {
            found = record.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(found["decision"], "deny", "the deny was not found");
    assert_eq!(found["principal"]["id"], "acme/carol");
    assert!(found["explanation"].is_object(), "{found}");
    // Every record of the answer is acme's deny.
    let (_, answer) = server
        .admin(
            Method::GET,
            "/v1/admin/decisions?decision=deny&tenant=acme",
            Some(ADMIN_SECRET),
            None,
        )
        .await;
    for record in answer["decisions"].as_array().unwrap() {
        assert_eq!(record["decision"], "deny");
        assert!(
            record["resource"]["id"]
                .as_str()
                .unwrap()
                .starts_with("acme/")
        );
    }
    // globex's admin does not see acme's decisions, even unfiltered.
    let (status, answer) = server
        .admin(
            Method::GET,
            "/v1/admin/decisions",
            Some(SCOPED_ADMIN_SECRET),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        answer["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|record| record["id"] != id.as_str()),
        "{answer}"
    );
    for bad in [
        "decision=maybe",
        "limit=0",
        "limit=201",
        "since=yesterday",
        "colour=red",
    ] {
        let (status, _) = server
            .admin(
                Method::GET,
                &format!("/v1/admin/decisions?{bad}"),
                Some(ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(status, 400, "{bad}");
    }
}

#[tokio::test]
async fn a_session_cannot_manage_credentials_nor_be_confused_by_a_second_cookie() {
    let server = server().await;
    let (_, cookie, session) = login(&server, ADMIN_SECRET).await;
    let (cookie, csrf) = (
        cookie.unwrap(),
        session["csrf_token"].as_str().unwrap().to_owned(),
    );
    // A stolen session must not turn itself into a lasting credential.
    let account = json!({"name": "minted", "owner": "alice", "purpose": "p", "scopes": ["documents:read"], "expires_in_seconds": 86_400});
    for (method, path, body) in [
        (Method::POST, "/v1/admin/credentials", json!({})),
        (
            Method::POST,
            "/v1/admin/credentials/adm_test/rotate",
            json!({}),
        ),
        (
            Method::POST,
            "/v1/admin/credentials/adm_globex/revoke",
            json!({}),
        ),
        (
            Method::POST,
            "/v1/admin/tenants/acme/service-accounts",
            account,
        ),
        (Method::POST, "/v1/admin/keys/rotate", json!({})),
    ] {
        let (status, answer) = with_session(
            &server,
            method,
            path,
            session_headers(&cookie, Some(&csrf)),
            Some(body),
        )
        .await;
        assert_eq!(status, 403, "{path}: {answer}");
    }
    // Two session cookies (one planted by a neighbour on the same host) are none.
    let pair = cookie.split(';').next().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "cookie",
        HeaderValue::from_str(&format!(
            "warden_console=planted0000000000000000000000; {pair}"
        ))
        .unwrap(),
    );
    headers.insert("x-csrf-token", HeaderValue::from_str(&csrf).unwrap());
    let (status, _) = with_session(
        &server,
        Method::GET,
        "/v1/admin/tenants/acme/reviews",
        headers,
        None,
    )
    .await;
    assert_eq!(status, 401);
    // The resume call checks the origin too.
    let mut headers = session_headers(&cookie, None);
    headers.insert("origin", HeaderValue::from_static("https://evil.example"));
    let (status, _) = with_session(&server, Method::GET, "/console/session", headers, None).await;
    assert_eq!(status, 403);
}
