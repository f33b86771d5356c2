//! Issue #21: `POST /v1/filter`. A user's plan admits exactly the documents `/v1/check` allows
//! (every user, action and document of the example data), with the tenant always part of the
//! condition; bad tokens are 401 with their reason; a PEP needs its credential to name a
//! subject; a disabled principal's plan is `always_denied` with the reason; malformed questions
//! are 400; a policy that cannot be written as a filter is a 422 naming it; the resource search
//! answers from the plan.

use reqwest::Method;
use serde_json::{Value, json};
use warden_testkit::claims_at;

use crate::support::{
    ADMIN_SECRET, ISSUER, PEP_SECRET, Setup, TestServer, check_document, now, repo_root,
    servers_with_a_store, user_token,
};

async fn filter(server: &TestServer, bearer: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = server.client.post(server.url("/v1/filter")).json(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The example's documents as the entity file has them.
fn documents() -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join("examples/saas/entities.json")).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .filter(|entity| entity["uid"]["type"] == "Document")
        .collect()
}

/// A field's value as a plan compares it: entity references by `{type, id}`.
fn field(document: &Value, name: &str) -> Option<Value> {
    let value = document["attrs"].get(name)?;
    Some(match value.get("__entity") {
        Some(entity) => json!({"type": entity["type"], "id": entity["id"]}),
        None => value.clone(),
    })
}

/// The plan's condition for one document of the entity file (its direct parents are enough
/// for the example's one-level folders).
fn admits(condition: &Value, document: &Value) -> bool {
    let values = |key: &str| condition[key].as_array().unwrap().clone();
    match condition["op"].as_str().unwrap() {
        "and" => values("args").iter().all(|c| admits(c, document)),
        "or" => values("args").iter().any(|c| admits(c, document)),
        "not" => !admits(&condition["arg"], document),
        "eq" => field(document, condition["field"].as_str().unwrap())
            .is_some_and(|v| v == condition["value"]),
        "ne" => field(document, condition["field"].as_str().unwrap())
            .is_some_and(|v| v != condition["value"]),
        "in_set" => field(document, condition["field"].as_str().unwrap())
            .is_some_and(|v| values("values").contains(&v)),
        "has" => field(document, condition["field"].as_str().unwrap()).is_some(),
        "id_in" => values("ids").contains(&document["uid"]["id"]),
        "member_of" => {
            document["uid"] == condition["entity"]
                || document["parents"]
                    .as_array()
                    .unwrap()
                    .contains(&condition["entity"])
        }
        other => panic!("the example's plans use no `{other}`"),
    }
}

fn plan_admits(plan: &Value, document: &Value) -> bool {
    match plan["decision"].as_str().unwrap() {
        "always_allowed" => true,
        "always_denied" => false,
        "conditional" => admits(&plan["condition"], document),
        other => panic!("unknown decision {other}"),
    }
}

fn mentions_tenant(condition: &Value, tenant: &str) -> bool {
    match condition["op"].as_str().unwrap() {
        // Inside the tenant, or (support staff through a marked permit) any other tenant.
        "eq" | "ne" => condition["field"] == "tenant" && condition["value"]["id"] == tenant,
        "and" => condition["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| mentions_tenant(c, tenant)),
        _ => false,
    }
}

/// Every way the condition can hold names a tenant: the user's, or `public` (the example's
/// marked permit names it).
fn bounded(condition: &Value, tenant: &str) -> bool {
    mentions_tenant(condition, tenant)
        || mentions_tenant(condition, "public")
        || (condition["op"] == "or"
            && condition["args"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| bounded(c, tenant)))
}

#[tokio::test]
async fn a_users_plan_admits_exactly_what_check_allows() {
    let server = TestServer::start(Setup::default()).await;
    let documents = documents();
    assert!(documents.len() >= 6);
    let users = [
        ("alice", "acme", vec![]),
        ("bob", "acme", vec![]),
        ("carol", "acme", vec![]),
        ("alice", "globex", vec![]),
        ("bob", "globex", vec![]),
        ("sam", "operator", vec!["support"]),
    ];
    let mut conditional = 0;
    for (user, tenant, roles) in &users {
        let token = user_token(&server, user, tenant, roles);
        for action in ["read", "edit", "delete", "share"] {
            for context in [json!({}), json!({"support_ticket": "SUP-7"})] {
                let (status, plan) = filter(
                    &server,
                    Some(&token),
                    &json!({"action": action, "resource_type": "Document", "context": context}),
                )
                .await;
                assert_eq!(status, 200, "{user}@{tenant} {action}: {plan}");
                assert_eq!(plan["principal"]["id"], format!("{tenant}/{user}"));
                assert_eq!(plan["tenant"], json!({"type": "Tenant", "id": tenant}));
                if plan["decision"] == "conditional" {
                    conditional += 1;
                    // The tenant boundary is part of the condition (inside the tenant, or
                    // across it through a marked permit that names its tenant).
                    let condition = &plan["condition"];
                    assert!(bounded(condition, tenant), "{condition}");
                }
                for document in &documents {
                    let id = document["uid"]["id"].as_str().unwrap();
                    let response = server
                        .client
                        .post(server.url("/v1/check"))
                        .bearer_auth(&token)
                        .json(&json!({"action": action, "resource": {"type": "Document", "id": id}, "context": context}))
                        .send()
                        .await
                        .unwrap();
                    let decision: Value = response.json().await.unwrap();
                    assert_eq!(
                        plan_admits(&plan, document),
                        decision["decision"] == "allow",
                        "{user}@{tenant} {action} {id} {context}: plan {plan}, check {decision}"
                    );
                }
            }
        }
    }
    assert!(conditional > 10, "{conditional} conditional plans");
}

#[tokio::test]
async fn a_bad_token_is_401_and_a_pep_needs_its_credential_to_name_a_subject() {
    let server = TestServer::start(Setup::default()).await;
    let body = json!({"action": "read", "resource_type": "Document"});
    let (status, problem) = filter(&server, None, &body).await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["reason"], "token_missing");

    let mut expired = claims_at(ISSUER, now() - 7200);
    expired["sub"] = json!("carol");
    expired["org_id"] = json!("acme");
    let (status, problem) = filter(&server, Some(&server.key.token(&expired)), &body).await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["reason"], "token_expired");

    let (status, problem) = filter(&server, Some("not.a.jwt"), &body).await;
    assert_eq!(status, 401);
    assert_eq!(problem["reason"], "token_malformed");

    // Naming a subject makes the caller a PEP: a user's token is not a PEP credential.
    let as_pep = json!({"subject": {"type": "User", "id": "acme/carol"}, "action": "read", "resource_type": "Document"});
    let token = user_token(&server, "carol", "acme", &[]);
    let (status, _) = filter(&server, Some(&token), &as_pep).await;
    assert_eq!(status, 401);
    let (status, _) = filter(&server, None, &as_pep).await;
    assert_eq!(status, 401);
    let (status, plan) = filter(&server, Some(PEP_SECRET), &as_pep).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["decision"], "conditional");
    // The PEP's plan for carol is the user's own.
    let (_, own) = filter(&server, Some(&token), &body).await;
    assert_eq!(plan["condition"], own["condition"]);
}

#[tokio::test]
async fn malformed_questions_are_400_and_change_nothing() {
    let server = TestServer::start(Setup::default()).await;
    let token = user_token(&server, "carol", "acme", &[]);
    for body in [
        json!({"action": "fly", "resource_type": "Document"}),
        json!({"action": "read", "resource_type": "Spaceship"}),
        json!({"action": "read", "resource_type": "Document", "context": {"support_ticket": 7}}),
        json!({"action": "read", "resource_type": "Document", "extra": true}),
        json!({"action": "read"}),
    ] {
        let (status, problem) = filter(&server, Some(&token), &body).await;
        assert!(status == 400 || status == 422, "{body}: {status} {problem}");
        assert_eq!(status, 400, "{body}: {problem}");
    }
}

#[tokio::test]
async fn a_disabled_principal_gets_nothing_and_an_unfilterable_policy_is_named() {
    for (backend, server) in servers_with_a_store().await {
        let token = user_token(&server, "carol", "acme", &[]);
        let body = json!({"action": "read", "resource_type": "Document"});

        // A tenant policy whose condition reads an attribute of the resource's owner.
        let (status, answer) = server
            .admin(
                Method::PUT,
                "/v1/admin/tenants/acme/policies/owner-email",
                Some(ADMIN_SECRET),
                Some(&json!({"policy": "forbid (principal, action == Action::\"read\", resource is Document) when { resource.owner has email && resource.owner.email == \"x@acme.example\" };"})),
            )
            .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let (status, problem) = filter(&server, Some(&token), &body).await;
        assert_eq!(status, 422, "{backend}: {problem}");
        assert_eq!(problem["reason"], "filter_unsupported");
        // The question is recorded all the same.
        assert_eq!(
            problem["decision_id"].as_str().unwrap().len(),
            36,
            "{problem}"
        );
        assert!(
            problem["policy"].as_str().unwrap().contains("owner-email"),
            "{problem}"
        );
        // Another tenant's plan is not affected by acme's policy.
        let other = user_token(&server, "carol", "globex", &[]);
        let (status, _) = filter(&server, Some(&other), &body).await;
        assert_eq!(status, 200, "{backend}");
        let (status, _) = server
            .admin(
                Method::DELETE,
                "/v1/admin/tenants/acme/policies/owner-email",
                Some(ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(status, 200, "{backend}");

        let (status, answer) = server
            .admin(
                Method::POST,
                "/v1/admin/tenants/acme/principals/status",
                Some(ADMIN_SECRET),
                Some(&json!({"principal": "User::\"acme/carol\"", "status": "disabled"})),
            )
            .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let mut plan = Value::Null;
        for _ in 0..50 {
            plan = filter(&server, Some(&token), &body).await.1;
            if plan["decision"] == "always_denied" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(plan["decision"], "always_denied", "{backend}: {plan}");
        assert_eq!(plan["reason"], "principal_disabled", "{backend}: {plan}");
        assert!(plan.get("condition").is_none());
        // And /v1/check agrees.
        let decision = check_document(&server, &token, "read", "acme/roadmap").await;
        assert_eq!(decision["decision"], "deny", "{backend}");
    }
}

/// The AuthZEN resource search answers from the plan: page by page (one result a page), the
/// documents found are exactly those `/v1/check` allows, and never another tenant's (the
/// public tenant's, through its marked permit, aside).
#[tokio::test]
async fn the_resource_search_pages_through_exactly_the_allowed_documents_of_the_tenant() {
    let server = TestServer::start(Setup::default()).await;
    let documents = documents();
    for (user, tenant) in [("carol", "acme"), ("alice", "globex"), ("erin", "acme")] {
        let token = user_token(&server, user, tenant, &[]);
        let mut found = Vec::new();
        let mut page_token = String::new();
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(pages < 50, "the search does not end");
            let (status, page) = server
                .pep_post(
                    "/access/v1/search/resource",
                    &json!({"subject": {"type": "User", "id": format!("{tenant}/{user}")},
                            "action": {"name": "read"}, "resource": {"type": "Document"},
                            "page": {"limit": 1, "token": page_token}}),
                )
                .await;
            assert_eq!(status, 200, "{page}");
            let results = page["results"].as_array().unwrap();
            assert!(results.len() <= 1);
            found.extend(results.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
            page_token = page["page"]["next_token"].as_str().unwrap().to_owned();
            if page_token.is_empty() {
                break;
            }
        }
        let mut allowed = Vec::new();
        for document in &documents {
            let id = document["uid"]["id"].as_str().unwrap();
            if check_document(&server, &token, "read", id).await["decision"] == "allow" {
                allowed.push(id.to_owned());
            }
        }
        allowed.sort();
        assert_eq!(found, allowed, "{user}@{tenant}");
        assert!(
            found
                .iter()
                .all(|id| id.starts_with(&format!("{tenant}/")) || id.starts_with("public/")),
            "{user}@{tenant}: {found:?}"
        );
    }
}

/// The subject search answers from a subject plan: for each document, the users found (page by
/// page) are exactly those an AuthZEN evaluation allows; a disabled user is never found.
#[tokio::test]
async fn the_subject_search_finds_exactly_the_allowed_users() {
    for (backend, server) in servers_with_a_store().await {
        let (status, answer) = server
            .admin(
                Method::POST,
                "/v1/admin/tenants/acme/principals/status",
                Some(ADMIN_SECRET),
                Some(&json!({"principal": "User::\"acme/bob\"", "status": "disabled"})),
            )
            .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let text =
            std::fs::read_to_string(repo_root().join("examples/saas/entities.json")).unwrap();
        let all: Vec<Value> = serde_json::from_str(&text).unwrap();
        let users: Vec<String> = all
            .iter()
            .filter(|e| e["uid"]["type"] == "User")
            .map(|e| e["uid"]["id"].as_str().unwrap().to_owned())
            .collect();
        // The status reaches the snapshot within a bounded wait.
        let mut settled = false;
        for _ in 0..50 {
            let (_, answer) = server
                .pep_post("/access/v1/evaluation", &json!({"subject": {"type": "User", "id": "acme/bob"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}}))
                .await;
            if answer["decision"] == false {
                settled = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(settled, "{backend}: bob is still allowed");
        for (action, document) in [
            ("read", "acme/roadmap"),
            ("delete", "acme/nda"),
            ("share", "globex/roadmap"),
            ("read", "public/handbook"),
        ] {
            let mut found = Vec::new();
            let mut page_token = String::new();
            for _ in 0..50 {
                let (status, page) = server
                    .pep_post(
                        "/access/v1/search/subject",
                        &json!({"subject": {"type": "User"}, "action": {"name": action},
                                "resource": {"type": "Document", "id": document},
                                "page": {"limit": 2, "token": page_token}}),
                    )
                    .await;
                assert_eq!(status, 200, "{page}");
                found.extend(
                    page["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["id"].as_str().unwrap().to_owned()),
                );
                page_token = page["page"]["next_token"].as_str().unwrap().to_owned();
                if page_token.is_empty() {
                    break;
                }
            }
            assert!(page_token.is_empty(), "the search does not end");
            let mut allowed = Vec::new();
            for user in &users {
                let (_, answer) = server
                    .pep_post(
                        "/access/v1/evaluation",
                        &json!({"subject": {"type": "User", "id": user}, "action": {"name": action},
                                "resource": {"type": "Document", "id": document}}),
                    )
                    .await;
                if answer["decision"] == true {
                    allowed.push(user.clone());
                }
            }
            allowed.sort();
            assert_eq!(found, allowed, "{backend}: {action} {document}");
            assert!(!found.contains(&"acme/bob".to_owned()), "{backend}");
        }
    }
}
