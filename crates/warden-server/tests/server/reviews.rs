//! Issue #24: entitlement review campaigns end to end through the API — a campaign snapshots
//! who holds what, shows usage evidence from allowed decisions, a keep stays, a revoke takes the
//! normal revoke path (the next request is denied, both are audited), an overdue campaign's
//! undecided items are revoked by the sweep, an interrupted revoke is completed, and reports
//! come as JSON and CSV. Each scenario runs on SQLite and, when `WARDEN_TEST_POSTGRES_URL` is
//! set, on PostgreSQL.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    ADMIN_SECRET, SCOPED_ADMIN_SECRET, Setup, TestServer, check_document, fresh_postgres_url, now,
    user_token,
};

/// A server per back end, with the store's URL (the tests also open the store themselves).
async fn servers() -> Vec<(String, TestServer)> {
    let mut servers = Vec::new();
    let sqlite = TestServer::start(Setup {
        storage: Some(String::new()),
        ..Setup::default()
    })
    .await;
    let url = format!("sqlite://{}", sqlite.dir.path().join("warden.db").display());
    servers.push((url, sqlite));
    match fresh_postgres_url().await {
        Some(url) => {
            let server = TestServer::start(Setup {
                storage: Some(url.clone()),
                ..Setup::default()
            })
            .await;
            servers.push((url, server));
        }
        None => eprintln!(
            "note: WARDEN_TEST_POSTGRES_URL is not set; the PostgreSQL half of this test is skipped"
        ),
    }
    servers
}

async fn admin(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server
        .admin(method, path, Some(ADMIN_SECRET), body.as_ref())
        .await
}

async fn grant(server: &TestServer, principal: &str, role: &str) {
    let (status, answer) = admin(
        server,
        Method::POST,
        "/v1/admin/tenants/acme/roles/grant",
        Some(json!({"principal": principal, "role": role, "reason": "project work"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

async fn decision(server: &TestServer, who: &str, action: &str, document: &str) -> Value {
    let token = user_token(server, who, "acme", &[]);
    check_document(server, &token, action, document).await
}

fn item<'a>(items: &'a Value, principal: &str, role: &str) -> &'a Value {
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["principal"] == principal && item["role"] == role)
        .unwrap_or_else(|| panic!("no item for {principal} {role} in {items}"))
}

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, answer) = admin(
        server,
        Method::POST,
        "/v1/admin/tenants/acme/reviews",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    answer["campaign"].clone()
}

#[tokio::test]
async fn a_campaign_keeps_and_revokes_with_usage_evidence_and_reports() {
    for (url, server) in servers().await {
        // carol (a viewer in the entity file) is granted editor; erin (no role) viewer.
        assert_eq!(
            decision(&server, "carol", "edit", "acme/roadmap").await["decision"],
            "deny",
            "{url}"
        );
        grant(&server, "User::\"carol\"", "Role::\"editor\"").await;
        grant(&server, "User::\"erin\"", "Role::\"viewer\"").await;
        let allowed = decision(&server, "carol", "edit", "acme/roadmap").await;
        assert_eq!(allowed["decision"], "allow", "{url}: {allowed}");
        let allow_id = allowed["decision_id"].as_str().unwrap().to_owned();

        let campaign = create(
            &server,
            json!({"name": "Q4 access review", "scope": "roles", "due_in_days": 14}),
        )
        .await;
        assert_eq!(campaign["status"], "open");
        assert_eq!(campaign["counts"]["total"], 2, "{url}: {campaign}");
        assert_eq!(campaign["reviewer"], "owner");
        let id = campaign["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("rc_"), "{id}");

        let (status, shown) = admin(
            &server,
            Method::GET,
            &format!("/v1/admin/tenants/acme/reviews/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["next"], Value::Null, "{shown}");
        // A page at a time.
        let page = |after: i64| {
            let path = format!("/v1/admin/tenants/acme/reviews/{id}?after={after}&limit=1");
            let server = &server;
            async move { admin(server, Method::GET, &path, None).await.1 }
        };
        let first = page(0).await;
        assert_eq!(first["items"].as_array().unwrap().len(), 1, "{first}");
        assert_eq!(first["items"][0]["id"], "1");
        assert_eq!(first["next"], 1);
        assert_eq!(first["campaign"]["counts"]["total"], 2);
        let second = page(1).await;
        assert_eq!(second["items"][0]["id"], "2");
        let past = page(2).await;
        assert_eq!(past["items"], json!([]));
        assert_eq!(past["next"], Value::Null);
        let carol = item(&shown["items"], "User::\"acme/carol\"", "Role::\"editor\"");
        assert_eq!(carol["kind"], "role");
        assert_eq!(carol["granted_by"], "admin:adm_test");
        assert_eq!(carol["grant_reason"], "project work");
        assert!(carol["granted_at"].as_i64().unwrap() >= now() - 60);
        // The owner of a grant is its grantor.
        assert_eq!(carol["reviewer"], "admin:adm_test");
        // The allow that needed the editor role is the evidence.
        assert_eq!(
            carol["usage"]["last_decision_id"],
            allow_id.as_str(),
            "{url}: {carol}"
        );
        assert!(carol["usage"]["last_allowed_at"].as_i64().is_some());
        assert_eq!(carol["usage"]["unused"], false);
        let erin = item(&shown["items"], "User::\"acme/erin\"", "Role::\"viewer\"");
        assert_eq!(erin["usage"]["last_allowed_at"], Value::Null, "{erin}");
        let carol_item = carol["id"].as_str().unwrap().to_owned();
        let erin_item = erin["id"].as_str().unwrap().to_owned();
        let item_path = |item: &str| format!("/v1/admin/tenants/acme/reviews/{id}/items/{item}");

        // Keep erin's; a second decision on it is a conflict and changes nothing.
        let (status, kept) = admin(
            &server,
            Method::POST,
            &item_path(&erin_item),
            Some(json!({"decision": "keep", "note": "needs it for the audit"})),
        )
        .await;
        assert_eq!(status, 200, "{kept}");
        assert_eq!(kept["item"]["decision"], "keep");
        assert_eq!(kept["item"]["decided_by"], "admin:adm_test");
        let (status, again) = admin(
            &server,
            Method::POST,
            &item_path(&erin_item),
            Some(json!({"decision": "revoke", "note": "changed my mind"})),
        )
        .await;
        assert_eq!(status, 409, "{again}");
        assert_eq!(
            decision(&server, "erin", "read", "acme/roadmap").await["decision"],
            "allow"
        );

        // A revoke needs a note; with one, the next request is denied at once.
        let (status, refused) = admin(
            &server,
            Method::POST,
            &item_path(&carol_item),
            Some(json!({"decision": "revoke"})),
        )
        .await;
        assert_eq!(status, 400, "{refused}");
        let (status, revoked) = admin(
            &server,
            Method::POST,
            &item_path(&carol_item),
            Some(json!({"decision": "revoke", "note": "project over"})),
        )
        .await;
        assert_eq!(status, 200, "{revoked}");
        assert_eq!(revoked["item"]["decision"], "revoke");
        assert_eq!(revoked["item"]["applied"], true);
        let after = decision(&server, "carol", "edit", "acme/roadmap").await;
        assert_eq!(after["decision"], "deny", "{url}: {after}");

        // Both the decision and the revoke it made are in the audit trail.
        let (_, trail) = admin(&server, Method::GET, "/v1/admin/audit", None).await;
        let actions: Vec<&str> = trail["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|record| record["action"].as_str().unwrap())
            .collect();
        for wanted in [
            "review.create",
            "review.keep",
            "review.revoke",
            "role.revoke",
        ] {
            assert!(actions.contains(&wanted), "{wanted} not in {actions:?}");
        }
        let role_revoke = trail["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|record| record["action"] == "role.revoke")
            .unwrap();
        assert!(
            role_revoke["detail"]["reason"]
                .as_str()
                .unwrap()
                .contains("project over"),
            "{role_revoke}"
        );

        // The campaign is complete; the list says so.
        let (_, listed) = admin(&server, Method::GET, "/v1/admin/tenants/acme/reviews", None).await;
        let listed = &listed["campaigns"][0];
        assert_eq!(listed["id"], id.as_str());
        assert_eq!(listed["status"], "complete", "{listed}");
        assert_eq!(listed["counts"]["kept"], 1);
        assert_eq!(listed["counts"]["revoked"], 1);

        // Reports.
        let (status, report) = admin(
            &server,
            Method::GET,
            &format!("/v1/admin/tenants/acme/reviews/{id}/report?format=json"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(report["items"].as_array().unwrap().len(), 2);
        let response = server
            .client
            .get(server.url(&format!(
                "/v1/admin/tenants/acme/reviews/{id}/report?format=csv"
            )))
            .bearer_auth(ADMIN_SECRET)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = response.text().await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(lines[0].starts_with("campaign,item,kind,principal,entitlement"));
        assert!(
            lines
                .iter()
                .any(|line| line.contains("acme/carol") && line.contains(",revoke,")),
            "{csv}"
        );
    }
}

#[tokio::test]
async fn campaigns_are_tenant_scoped_and_requests_are_checked() {
    for (url, server) in servers().await {
        grant(&server, "User::\"erin\"", "Role::\"viewer\"").await;
        let campaign = create(
            &server,
            json!({"name": "acme only", "scope": "both", "due_in_days": 3, "reviewer": "User::\"alice\""}),
        )
        .await;
        assert_eq!(campaign["reviewer"], "User::\"acme/alice\"", "{url}");
        let id = campaign["id"].as_str().unwrap();
        // globex's admin cannot see acme's campaign; acme's campaign is not under globex.
        let (status, _) = server
            .admin(
                Method::GET,
                &format!("/v1/admin/tenants/acme/reviews/{id}"),
                Some(SCOPED_ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(status, 403);
        let (status, _) = admin(
            &server,
            Method::GET,
            &format!("/v1/admin/tenants/globex/reviews/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = server
            .admin(
                Method::POST,
                &format!("/v1/admin/tenants/globex/reviews/{id}/items/1"),
                Some(SCOPED_ADMIN_SECRET),
                Some(&json!({"decision": "revoke", "note": "not mine"})),
            )
            .await;
        assert_eq!(status, 404);
        // Bad requests change nothing.
        for body in [
            json!({"name": "x", "scope": "everything", "due_in_days": 3}),
            json!({"name": "x", "scope": "roles", "due_at": now() - 10}),
            json!({"name": "x", "scope": "roles"}),
            json!({"name": "", "scope": "roles", "due_in_days": 3}),
            json!({"name": "x", "scope": "roles", "due_in_days": 3, "extra": 1}),
            json!({"name": "x", "scope": "roles", "due_in_days": 3, "reviewer": "User::\"globex/bob\""}),
            json!({"name": "x", "scope": "roles", "due_in_days": 3, "unused_days": 0}),
            json!({"name": "x", "scope": "roles", "due_in_days": 3, "reviewer": "Role::\"admin\""}),
        ] {
            let (status, answer) = admin(
                &server,
                Method::POST,
                "/v1/admin/tenants/acme/reviews",
                Some(body.clone()),
            )
            .await;
            assert_eq!(status, 400, "{body}: {answer}");
        }
        let (status, _) = admin(
            &server,
            Method::POST,
            &format!("/v1/admin/tenants/acme/reviews/{id}/items/999"),
            Some(json!({"decision": "keep"})),
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = admin(
            &server,
            Method::POST,
            &format!("/v1/admin/tenants/acme/reviews/{id}/items/1"),
            Some(json!({"decision": "maybe"})),
        )
        .await;
        assert_eq!(status, 400);
        let (status, _) = admin(
            &server,
            Method::GET,
            &format!("/v1/admin/tenants/acme/reviews/{id}/report?format=xml"),
            None,
        )
        .await;
        assert_eq!(status, 400);
        let (_, listed) = admin(&server, Method::GET, "/v1/admin/tenants/acme/reviews", None).await;
        assert_eq!(listed["campaigns"].as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed["campaigns"][0]["counts"]["pending"], 1);
    }
}

/// Polls `who`'s `action` until it is `wanted`, for at most 5 s.
async fn eventually(server: &TestServer, who: &str, action: &str, wanted: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if decision(server, who, action, "acme/roadmap").await["decision"] == wanted {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn an_overdue_campaign_revokes_what_was_not_reviewed_and_a_recorded_revoke_is_completed() {
    for (url, server) in servers().await {
        grant(&server, "User::\"carol\"", "Role::\"editor\"").await;
        grant(&server, "User::\"erin\"", "Role::\"viewer\"").await;
        let store = warden_store::Store::connect(&url).await.unwrap();

        // A campaign that revokes what is left undecided when it is due.
        let due = create(
            &server,
            json!({"name": "due soon", "scope": "roles", "due_at": now() + 1, "auto_revoke_overdue": true}),
        )
        .await;
        let due_id = due["id"].as_str().unwrap().to_owned();
        // Before it is due the sweep leaves it alone.
        let swept = warden_service::reviews::sweep(None, &store, now())
            .await
            .unwrap();
        assert_eq!(swept.overdue_revoked, 0, "{url}");
        // Carol's item is kept by a reviewer in time; erin's is not reviewed.
        let (_, shown) = admin(
            &server,
            Method::GET,
            &format!("/v1/admin/tenants/acme/reviews/{due_id}"),
            None,
        )
        .await;
        let carol = item(&shown["items"], "User::\"acme/carol\"", "Role::\"editor\"")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, _) = admin(
            &server,
            Method::POST,
            &format!("/v1/admin/tenants/acme/reviews/{due_id}/items/{carol}"),
            Some(json!({"decision": "keep", "note": "still on the project"})),
        )
        .await;
        assert_eq!(status, 200);
        // The sweep at a time past the due date (the real pass, run now rather than in 15 s).
        let swept = warden_service::reviews::sweep(None, &store, now() + 5)
            .await
            .unwrap();
        assert_eq!(swept.overdue_revoked, 1, "{url}: {swept:?}");
        assert!(eventually(&server, "erin", "read", "deny").await, "{url}");
        assert_eq!(
            decision(&server, "carol", "edit", "acme/roadmap").await["decision"],
            "allow"
        );
        let (_, shown) = admin(
            &server,
            Method::GET,
            &format!("/v1/admin/tenants/acme/reviews/{due_id}"),
            None,
        )
        .await;
        let erin = item(&shown["items"], "User::\"acme/erin\"", "Role::\"viewer\"");
        assert_eq!(erin["decision"], "revoke", "{erin}");
        assert_eq!(erin["decided_by"], "warden:overdue");
        assert_eq!(erin["applied"], true);
        assert_eq!(shown["campaign"]["status"], "complete");

        // A revoke recorded but never applied (a crash between the two) is completed.
        let campaign = create(
            &server,
            json!({"name": "interrupted", "scope": "roles", "due_in_days": 30}),
        )
        .await;
        let tenant = warden_store::TenantId::parse("acme").unwrap();
        let stored = store
            .review_campaign(&tenant, campaign["id"].as_str().unwrap())
            .await
            .unwrap();
        let items = store.review_items(&stored.id).await.unwrap();
        let carol = items
            .iter()
            .find(|item| item.principal_id == "acme/carol")
            .unwrap();
        store
            .decide_review_item(
                &stored,
                &carol.item_id,
                &warden_store::ItemDecision {
                    decision: warden_store::ReviewDecision::Revoke,
                    decided_by: "admin:adm_test".into(),
                    decided_at: now(),
                    note: "left the company".into(),
                    applied_at: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            decision(&server, "carol", "edit", "acme/roadmap").await["decision"],
            "allow",
            "{url}: recorded only, not applied yet"
        );
        let swept = warden_service::reviews::sweep(None, &store, now())
            .await
            .unwrap();
        assert_eq!(swept.completed, 1, "{url}: {swept:?}");
        assert!(eventually(&server, "carol", "edit", "deny").await, "{url}");
        let again = warden_service::reviews::sweep(None, &store, now())
            .await
            .unwrap();
        assert_eq!(again, warden_service::reviews::Swept::default(), "{url}");
    }
}

#[tokio::test]
async fn a_service_account_review_revoke_disables_the_account() {
    let (_key_file, extra) = crate::support::tokens_section("http://127.0.0.1:8180");
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        extra: &extra,
        ..Setup::default()
    })
    .await;
    let (status, created) = admin(
        &server,
        Method::POST,
        "/v1/admin/tenants/acme/service-accounts",
        Some(json!({"name": "billing-sync", "owner": "alice", "purpose": "syncs invoices", "scopes": ["documents:read"], "expires_in_seconds": 86_400})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let token = |server: &TestServer| {
        let request = server
            .client
            .post(server.url("/oauth2/token"))
            .basic_auth(&client_id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials");
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(token(&server).await, 200);
    let campaign = create(
        &server,
        json!({"name": "robots", "scope": "service_accounts", "due_in_days": 7}),
    )
    .await;
    assert_eq!(campaign["counts"]["total"], 1, "{campaign}");
    let id = campaign["id"].as_str().unwrap();
    let (_, shown) = admin(
        &server,
        Method::GET,
        &format!("/v1/admin/tenants/acme/reviews/{id}"),
        None,
    )
    .await;
    let account = &shown["items"][0];
    assert_eq!(account["kind"], "service_account");
    assert_eq!(account["client_id"], client_id.as_str());
    assert_eq!(account["reviewer"], "User::\"acme/alice\"", "{account}");
    assert_eq!(account["scopes"], json!(["documents:read"]));
    let (status, revoked) = admin(
        &server,
        Method::POST,
        &format!("/v1/admin/tenants/acme/reviews/{id}/items/1"),
        Some(json!({"decision": "revoke", "note": "no longer needed"})),
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    let (_, account) = admin(
        &server,
        Method::GET,
        &format!("/v1/admin/tenants/acme/service-accounts/{client_id}"),
        None,
    )
    .await;
    assert_eq!(account["status"], "disabled", "{account}");
    assert_ne!(
        token(&server).await,
        200,
        "a disabled account gets no token"
    );

    // An account named as a reviewer does not review itself.
    let (status, created) = admin(
        &server,
        Method::POST,
        "/v1/admin/tenants/acme/service-accounts",
        Some(json!({"name": "review-bot", "owner": "alice", "purpose": "reviews", "scopes": ["documents:read"], "expires_in_seconds": 86_400})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let bot = created["client_id"].as_str().unwrap().to_owned();
    let bot_secret = created["client_secret"].as_str().unwrap().to_owned();
    let campaign = create(
        &server,
        json!({"name": "bot reviews", "scope": "service_accounts", "due_in_days": 7, "reviewer": format!("ServiceAccount::\"{bot}\"")}),
    )
    .await;
    let bot_campaign = campaign["id"].as_str().unwrap().to_owned();
    let response = server
        .client
        .post(server.url("/oauth2/token"))
        .basic_auth(&bot, Some(&bot_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let issued: Value = response.json().await.unwrap();
    let bot_token = issued["access_token"].as_str().unwrap().to_owned();
    let (status, mine) = as_user(&server, &bot_token, Method::GET, "/v1/reviews", None).await;
    assert_eq!(status, 200, "{mine}");
    let own = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["item"]["client_id"] == bot.as_str())
        .unwrap_or_else(|| panic!("the bot's own account is among its items: {mine}"));
    assert_eq!(
        own["item"]["principal"],
        format!("ServiceAccount::\"acme/{bot}\""),
        "an account's item names it as its decisions do"
    );
    let (status, answer) = as_user(
        &server,
        &bot_token,
        Method::POST,
        &format!(
            "/v1/reviews/{bot_campaign}/items/{}",
            own["item"]["id"].as_str().unwrap()
        ),
        Some(json!({"decision": "keep", "note": "I am fine"})),
    )
    .await;
    assert_eq!(status, 403, "{answer}");

    // An account disabled by other means while under review: its revoke is done, not stuck.
    let (status, created) = admin(
        &server,
        Method::POST,
        "/v1/admin/tenants/acme/service-accounts",
        Some(json!({"name": "legacy-export", "owner": "alice", "purpose": "exports", "scopes": ["documents:read"], "expires_in_seconds": 86_400})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let legacy = created["client_id"].as_str().unwrap().to_owned();
    let campaign = create(
        &server,
        json!({"name": "robots again", "scope": "both", "due_in_days": 7}),
    )
    .await;
    let id = campaign["id"].as_str().unwrap();
    let (status, _) = admin(
        &server,
        Method::POST,
        &format!("/v1/admin/tenants/acme/service-accounts/{legacy}/disable"),
        Some(json!({"reason": "offboarded by hand"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, shown) = admin(
        &server,
        Method::GET,
        &format!("/v1/admin/tenants/acme/reviews/{id}"),
        None,
    )
    .await;
    let item = shown["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["client_id"] == legacy.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, revoked) = admin(
        &server,
        Method::POST,
        &format!("/v1/admin/tenants/acme/reviews/{id}/items/{item}"),
        Some(json!({"decision": "revoke", "note": "gone already"})),
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["item"]["applied"], true);
}

/// `POST` or `GET` as an end user with their own bearer token.
async fn as_user(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server
        .client
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_named_reviewer_decides_their_items_with_their_own_token() {
    for (url, server) in servers().await {
        grant(&server, "User::\"carol\"", "Role::\"editor\"").await;
        grant(&server, "User::\"alice\"", "Role::\"support\"").await;
        let campaign = create(
            &server,
            json!({"name": "alice reviews", "scope": "roles", "due_in_days": 5, "reviewer": "User::\"alice\""}),
        )
        .await;
        let id = campaign["id"].as_str().unwrap().to_owned();
        let alice = user_token(&server, "alice", "acme", &[]);
        let bob = user_token(&server, "bob", "acme", &[]);
        let alice_globex = user_token(&server, "alice", "globex", &[]);

        let (status, mine) = as_user(&server, &alice, Method::GET, "/v1/reviews", None).await;
        assert_eq!(status, 200, "{url}: {mine}");
        assert_eq!(mine["reviewer"], "User::\"acme/alice\"");
        assert_eq!(mine["items"].as_array().unwrap().len(), 2, "{mine}");
        let carol_item = mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["item"]["principal"] == "User::\"acme/carol\"")
            .unwrap()["item"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let own_item = mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["item"]["principal"] == "User::\"acme/alice\"")
            .unwrap()["item"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Nobody else sees or decides alice's items; a token of the same name in another
        // tenant is someone else; no token is a 401.
        for other in [&bob, &alice_globex] {
            let (status, theirs) = as_user(&server, other, Method::GET, "/v1/reviews", None).await;
            assert_eq!(status, 200);
            assert_eq!(theirs["items"], json!([]), "{theirs}");
            let (status, _) = as_user(
                &server,
                other,
                Method::POST,
                &format!("/v1/reviews/{id}/items/{carol_item}"),
                Some(json!({"decision": "keep", "note": "sure"})),
            )
            .await;
            assert_eq!(status, 404, "{url}");
        }
        let (status, _) = as_user(&server, "not-a-token", Method::GET, "/v1/reviews", None).await;
        assert_eq!(status, 401);
        // Not on her own entitlement.
        let (status, answer) = as_user(
            &server,
            &alice,
            Method::POST,
            &format!("/v1/reviews/{id}/items/{own_item}"),
            Some(json!({"decision": "keep", "note": "mine"})),
        )
        .await;
        assert_eq!(status, 403, "{answer}");
        // Her revoke of carol's grant takes effect at once, recorded as hers.
        assert_eq!(
            decision(&server, "carol", "edit", "acme/roadmap").await["decision"],
            "allow"
        );
        let (status, decided) = as_user(
            &server,
            &alice,
            Method::POST,
            &format!("/v1/reviews/{id}/items/{carol_item}"),
            Some(json!({"decision": "revoke", "note": "left the project"})),
        )
        .await;
        assert_eq!(status, 200, "{url}: {decided}");
        assert_eq!(
            decided["item"]["decided_by"],
            "principal:User::\"acme/alice\""
        );
        assert_eq!(
            decision(&server, "carol", "edit", "acme/roadmap").await["decision"],
            "deny",
            "{url}"
        );
        let (_, mine) = as_user(&server, &alice, Method::GET, "/v1/reviews", None).await;
        assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    }
}

#[tokio::test]
async fn a_tenant_review_leaves_shared_principals_alone_and_names_what_an_allow_used() {
    for (url, server) in servers().await {
        // A shared principal (a role in a role) holds its grant in every tenant.
        let (status, answer) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/roles/grant",
            Some(json!({"principal": "Role::\"support\"", "role": "Role::\"admin\"", "reason": "escalation"})),
        )
        .await;
        assert_eq!(status, 200, "{url}: {answer}");
        grant(&server, "User::\"hank\"", "Role::\"admin\"").await;
        let read = decision(&server, "hank", "read", "acme/roadmap").await;
        assert_eq!(read["decision"], "allow", "{read}");
        let campaign = create(
            &server,
            json!({"name": "no shared", "scope": "roles", "due_in_days": 3}),
        )
        .await;
        let (_, shown) = admin(
            &server,
            Method::GET,
            &format!(
                "/v1/admin/tenants/acme/reviews/{}",
                campaign["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
        let items = shown["items"].as_array().unwrap();
        assert!(
            items
                .iter()
                .all(|item| item["principal"] != "Role::\"support\""),
            "{url}: a shared principal's grant is not a tenant's to review: {shown}"
        );
        // hank's admin role was used only through the viewer permit: the evidence says so.
        let hank = item(&shown["items"], "User::\"acme/hank\"", "Role::\"admin\"");
        assert_eq!(hank["usage"]["used_through"], "Role::\"viewer\"", "{hank}");
        assert_eq!(
            hank["usage"]["last_decision_id"],
            read["decision_id"].clone(),
            "{hank}"
        );
    }
}
