//! Issue #20: imports larger than a request body, every refused entity named by its place,
//! roles that came from imported parents revoked, parents edited whatever wrote them, and
//! search paged by cursor over thousands of entities. Each scenario runs on SQLite and, when
//! `WARDEN_TEST_POSTGRES_URL` is set, on PostgreSQL.

use crate::support::{
    ADMIN_SECRET, Setup, TestServer, check_document, servers_with_a_store, user_token,
};
use reqwest::Method;
use serde_json::{Value, json};

async fn decide(server: &TestServer, token: &str, action: &str, document: &str) -> String {
    let answer = check_document(server, token, action, document).await;
    answer["decision"].as_str().unwrap_or("none").to_owned()
}

async fn admin(server: &TestServer, method: Method, path: &str, body: Value) -> (u16, Value) {
    server
        .admin(method, path, Some(ADMIN_SECRET), Some(&body))
        .await
}

fn user(id: &str, roles: &[&str]) -> Value {
    json!({
        "uid": {"type": "User", "id": id},
        "attrs": {"email": format!("{id}@acme.example")},
        "parents": roles.iter().map(|role| json!({"type": "Role", "id": role})).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn an_import_larger_than_a_request_body_succeeds_and_refusals_name_their_entity() {
    for (backend, server) in servers_with_a_store().await {
        // 3,000 users are about 300 KiB: far over this server's 16 KiB `max_body_bytes`.
        let users: Vec<Value> = (0..3000)
            .map(|n| user(&format!("bulk{n}"), &["viewer"]))
            .collect();
        assert!(json!(users).to_string().len() > 64 * 1024);
        let (status, answer) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/entities",
            json!(users),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        assert_eq!(answer["imported"], 3000, "{backend}");
        assert_eq!(
            answer["keys"][0],
            json!(["User", "acme/bulk0"]),
            "{backend}"
        );
        let reader = user_token(&server, "bulk2999", "acme", &[]);
        assert_eq!(
            decide(&server, &reader, "read", "acme/roadmap").await,
            "allow",
            "{backend}: an imported user is in force at once"
        );

        // One batch with two bad entities: both named by index, nothing written.
        let batch = json!([
            user("fine1", &["editor"]),
            {"uid": {"type": "User", "id": "typo"}, "attrs": {"email": 7}, "parents": []},
            user("fine2", &["editor"]),
            {"uid": {"type": "User", "id": "other/x"}, "attrs": {}, "parents": []},
        ]);
        let (status, answer) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/entities",
            batch,
        )
        .await;
        assert_eq!(status, 400, "{backend}: {answer}");
        let indexes: Vec<u64> = answer["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| error["index"].as_u64().unwrap())
            .collect();
        assert_eq!(indexes, vec![1, 3], "{backend}: {answer}");
        assert_eq!(answer["errors"][0]["uid"], "User::\"typo\"", "{backend}");
        let fine = user_token(&server, "fine1", "acme", &[]);
        assert_eq!(
            decide(&server, &fine, "edit", "acme/roadmap").await,
            "deny",
            "{backend}: a refused batch wrote nothing"
        );
    }
}

#[tokio::test]
async fn role_revoke_removes_a_role_that_came_from_an_imported_entity() {
    for (backend, server) in servers_with_a_store().await {
        let (status, answer) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/entities",
            json!([user("zed", &["editor"])]),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let zed = user_token(&server, "zed", "acme", &[]);
        assert_eq!(decide(&server, &zed, "edit", "acme/roadmap").await, "allow");
        let (status, answer) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/roles/revoke",
            json!({"principal": "User::\"zed\"", "role": "Role::\"editor\"", "reason": "left the team"}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        assert_eq!(
            decide(&server, &zed, "edit", "acme/roadmap").await,
            "deny",
            "{backend}: the imported role is gone at once"
        );
        // Neither a grant nor a parent: not found, and said so.
        let (status, answer) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/roles/revoke",
            json!({"principal": "User::\"zed\"", "role": "Role::\"editor\"", "reason": "again"}),
        )
        .await;
        assert_eq!(status, 404, "{backend}: {answer}");
    }
}

#[tokio::test]
async fn parents_are_added_and_removed_whatever_wrote_them() {
    for (backend, server) in servers_with_a_store().await {
        admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/entities",
            json!([user("yan", &["viewer"])]),
        )
        .await;
        let yan = user_token(&server, "yan", "acme", &[]);
        assert_eq!(decide(&server, &yan, "edit", "acme/roadmap").await, "deny");
        let path = "/v1/admin/tenants/acme/entities/User/yan/parents";
        let (status, answer) = admin(
            &server,
            Method::POST,
            path,
            json!({"add": ["Role::\"editor\""], "remove": ["Role::\"viewer\""], "reason": "promotion"}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        assert_eq!(
            answer["parents"],
            json!([{"type": "Role", "id": "editor"}]),
            "{backend}"
        );
        assert_eq!(
            decide(&server, &yan, "edit", "acme/roadmap").await,
            "allow",
            "{backend}"
        );
        // A parent type the schema does not allow is refused, and nothing changes.
        let (status, answer) = admin(
            &server,
            Method::POST,
            path,
            json!({"add": ["Folder::\"contracts\""], "reason": "wrong"}),
        )
        .await;
        assert_eq!(status, 400, "{backend}: {answer}");
        // Without a reason: refused.
        let (status, _) = admin(
            &server,
            Method::POST,
            path,
            json!({"remove": ["Role::\"editor\""], "reason": " "}),
        )
        .await;
        assert_eq!(status, 400, "{backend}");
        assert_eq!(decide(&server, &yan, "edit", "acme/roadmap").await, "allow");
        // An entity the store does not have: 404.
        let (status, _) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/entities/User/nobody/parents",
            json!({"add": ["Role::\"editor\""], "reason": "x"}),
        )
        .await;
        assert_eq!(status, 404, "{backend}");
    }
}

#[tokio::test]
async fn stored_keys_are_listed_by_page_and_deleted_in_bulk() {
    for (backend, server) in servers_with_a_store().await {
        let users: Vec<Value> = (0..25).map(|n| user(&format!("k{n:02}"), &[])).collect();
        admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/entities",
            json!(users),
        )
        .await;
        let mut keys = Vec::new();
        let mut query = "limit=10".to_owned();
        for _ in 0..10 {
            let (status, answer) = server
                .admin(
                    Method::GET,
                    &format!("/v1/admin/tenants/acme/entities/keys?{query}"),
                    Some(ADMIN_SECRET),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{backend}: {answer}");
            keys.extend(answer["keys"].as_array().unwrap().iter().cloned());
            match answer["next"].as_str() {
                Some(next) => query = next.to_owned(),
                None => break,
            }
        }
        assert_eq!(keys.len(), 25, "{backend}");
        assert_eq!(keys[0], json!(["User", "acme/k00"]), "{backend}");
        assert_eq!(keys[24], json!(["User", "acme/k24"]), "{backend}");
        let (status, answer) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/entities/delete",
            json!({"entities": [{"type": "User", "id": "k00"}, {"type": "User", "id": "acme/k01"}, {"type": "User", "id": "never"}]}),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        assert_eq!(answer["deleted"], 2, "{backend}");
        // Another tenant's id is refused.
        let (status, _) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/entities/delete",
            json!({"entities": [{"type": "User", "id": "globex/alice"}]}),
        )
        .await;
        assert_eq!(status, 400, "{backend}");
    }
}

#[tokio::test]
async fn a_resource_search_pages_by_cursor_through_thousands_of_documents() {
    for (backend, server) in servers_with_a_store().await {
        // 2,000 documents of acme (half restricted) and 500 of globex.
        let mut documents: Vec<Value> = (0..2000)
            .map(|n| {
                json!({
                    "uid": {"type": "Document", "id": format!("doc{n:04}")},
                    "attrs": {
                        "owner": {"__entity": {"type": "User", "id": "acme/alice"}},
                        "classification": if n % 2 == 0 { "internal" } else { "restricted" },
                    },
                    "parents": [],
                })
            })
            .collect();
        let (status, answer) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/acme/entities",
            json!(documents),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        documents.truncate(500);
        let (status, answer) = admin(
            &server,
            Method::POST,
            "/v1/admin/tenants/globex/entities",
            json!(documents),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let mut found = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(pages < 100, "{backend}: the search does not end");
            let (status, answer) = server
                .pep_post(
                    "/access/v1/search/resource",
                    &json!({
                        "subject": {"type": "User", "id": "acme/carol"},
                        "action": {"name": "read"},
                        "resource": {"type": "Document"},
                        "page": {"limit": 300, "token": token},
                    }),
                )
                .await;
            assert_eq!(status, 200, "{backend}: {answer}");
            for result in answer["results"].as_array().unwrap() {
                found.push(result["id"].as_str().unwrap().to_owned());
            }
            token = answer["page"]["next_token"].as_str().unwrap().to_owned();
            if token.is_empty() {
                break;
            }
        }
        // carol (viewer of acme) reads acme's internal documents, none restricted, none of
        // globex (the public handbook too); each exactly once, in id order.
        let mut sorted = found.clone();
        sorted.sort();
        assert!(found == sorted, "{backend}: pages do not come in id order");
        let mut unique = sorted.clone();
        unique.dedup();
        assert_eq!(
            unique.len(),
            found.len(),
            "{backend}: a document came twice"
        );
        assert_eq!(
            found.iter().filter(|id| id.starts_with("acme/doc")).count(),
            1000,
            "{backend}"
        );
        let foreign: Vec<&String> = found
            .iter()
            .filter(|id| id.starts_with("globex/"))
            .collect();
        assert!(
            foreign.is_empty(),
            "{backend}: another tenant's documents: {foreign:?}"
        );
        // A token this PDP did not issue is refused.
        let (status, _) = server
            .pep_post(
                "/access/v1/search/resource",
                &json!({
                    "subject": {"type": "User", "id": "acme/carol"},
                    "action": {"name": "read"},
                    "resource": {"type": "Document"},
                    "page": {"token": "not hex"},
                }),
            )
            .await;
        assert_eq!(status, 400, "{backend}");
    }
}

/// `[storage] tenants`: a replica serving globex only holds none of acme's stored data and
/// refuses decisions about acme (`tenant_not_served`) instead of deciding without its data;
/// globex is decided as usual, and a second replica serving acme decides acme's.
#[tokio::test]
async fn a_replica_serving_some_tenants_refuses_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let globex_only = TestServer::start(Setup {
        storage: Some(url.clone()),
        storage_extra: "tenants = [\"globex\"]",
        ..Setup::default()
    })
    .await;
    let acme_only = TestServer::start(Setup {
        storage: Some(url),
        storage_extra: "tenants = [\"acme\"]",
        ..Setup::default()
    })
    .await;
    // A write through the globex replica is kept in the store for acme's replica.
    let (status, answer) = admin(
        &globex_only,
        Method::POST,
        "/v1/admin/tenants/acme/entities",
        json!([user("quinn", &["editor"])]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let quinn = user_token(&globex_only, "quinn", "acme", &[]);
    let response = globex_only
        .client
        .post(globex_only.url("/v1/check"))
        .bearer_auth(&quinn)
        .json(&json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["decision"], "deny", "{answer}");
    assert_eq!(answer["reason"], "tenant_not_served", "{answer}");
    // globex is decided as usual there.
    let (status, answer) = globex_only
        .pep_post(
            "/access/v1/evaluation",
            &json!({"subject": {"type": "User", "id": "globex/alice"}, "action": {"name": "read"},
                    "resource": {"type": "Document", "id": "globex/roadmap"}}),
        )
        .await;
    assert_eq!(
        (status, answer["decision"].clone()),
        (200, json!(true)),
        "{answer}"
    );
    // The acme replica has quinn (from the store) within a poll or two.
    let quinn = user_token(&acme_only, "quinn", "acme", &[]);
    let mut allowed = false;
    for _ in 0..50 {
        if decide(&acme_only, &quinn, "edit", "acme/roadmap").await == "allow" {
            allowed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(allowed, "the acme replica did not take the write");
    let (_, answer) = acme_only
        .pep_post(
            "/access/v1/evaluation",
            &json!({"subject": {"type": "User", "id": "globex/alice"}, "action": {"name": "read"},
                    "resource": {"type": "Document", "id": "globex/roadmap"}}),
        )
        .await;
    assert_eq!(answer["decision"], json!(false), "{answer}");
}
