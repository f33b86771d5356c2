//! AuthZEN 1.0: the interop Todo scenario (every published decision), batch semantics,
//! search, metadata, PEP authentication and request ids.

use serde_json::{Value, json};

use crate::support::{PEP_SECRET, Setup, TestServer, repo_root};

fn interop() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("examples/authzen-todo/interop-decisions.json"))
            .unwrap(),
    )
    .unwrap()
}

async fn todo_server() -> TestServer {
    TestServer::start(Setup {
        pack: "examples/authzen-todo",
        ..Setup::default()
    })
    .await
}

#[tokio::test]
async fn the_interop_todo_decisions_all_hold() {
    let server = todo_server().await;
    let cases = interop();
    let mut failures = Vec::new();
    for case in cases["evaluation"].as_array().unwrap() {
        let (status, body) = server
            .pep_post("/access/v1/evaluation", &case["request"])
            .await;
        assert_eq!(status, 200, "{body}");
        if body["decision"] != case["expected"] {
            failures.push(format!("{} -> {body}", case["request"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(cases["evaluation"].as_array().unwrap().len(), 40);

    for case in cases["evaluations"].as_array().unwrap() {
        let (status, body) = server
            .pep_post("/access/v1/evaluations", &case["request"])
            .await;
        assert_eq!(status, 200, "{body}");
        let decisions: Vec<&Value> = body["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["decision"])
            .collect();
        let expected: Vec<&Value> = case["expected"].as_array().unwrap().iter().collect();
        assert_eq!(decisions, expected, "{}", case["request"]);
    }
}

fn three_documents(semantic: Option<&str>) -> Value {
    let mut request = json!({
        "subject": {"type": "User", "id": "acme/carol"},
        "action": {"name": "read"},
        "evaluations": [
            {"resource": {"type": "Document", "id": "acme/roadmap"}},
            {"resource": {"type": "Document", "id": "acme/salaries"}},
            {"resource": {"type": "Document", "id": "acme/nda"}},
        ],
    });
    if let Some(semantic) = semantic {
        request["options"] = json!({"evaluations_semantic": semantic});
    }
    request
}

#[tokio::test]
async fn batch_semantics_short_circuit_as_the_spec_shows() {
    let server = TestServer::start(Setup::default()).await;
    let decisions = |body: &Value| -> Vec<bool> {
        body["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["decision"].as_bool().unwrap())
            .collect()
    };
    let (_, all) = server
        .pep_post("/access/v1/evaluations", &three_documents(None))
        .await;
    assert_eq!(decisions(&all), [true, false, true]);
    assert_eq!(all["evaluations"][1]["context"]["reason"], "forbidden");
    let (_, explicit) = server
        .pep_post(
            "/access/v1/evaluations",
            &three_documents(Some("execute_all")),
        )
        .await;
    assert_eq!(decisions(&explicit), [true, false, true]);
    let (_, deny_first) = server
        .pep_post(
            "/access/v1/evaluations",
            &three_documents(Some("deny_on_first_deny")),
        )
        .await;
    assert_eq!(decisions(&deny_first), [true, false]);
    let (_, permit_first) = server
        .pep_post(
            "/access/v1/evaluations",
            &three_documents(Some("permit_on_first_permit")),
        )
        .await;
    assert_eq!(decisions(&permit_first), [true]);
    let (status, body) = server
        .pep_post(
            "/access/v1/evaluations",
            &three_documents(Some("sometimes")),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn batch_items_inherit_and_override_defaults() {
    let server = TestServer::start(Setup::default()).await;
    let request = json!({
        "subject": {"type": "User", "id": "acme/carol"},
        "action": {"name": "read"},
        "resource": {"type": "Document", "id": "acme/roadmap"},
        "evaluations": [
            {},
            {"action": {"name": "delete"}},
            {"subject": {"type": "User", "id": "acme/alice"}, "action": {"name": "delete"}},
            {"resource": {"id": "globex/roadmap"}},
        ],
    });
    let (status, body) = server.pep_post("/access/v1/evaluations", &request).await;
    assert_eq!(status, 200, "{body}");
    let decisions: Vec<bool> = body["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_bool().unwrap())
        .collect();
    assert_eq!(decisions, [true, false, true, false]);
    // An item left without a subject anywhere is a deny in place, not an error.
    let (status, body) = server
        .pep_post("/access/v1/evaluations", &json!({"evaluations": [{"action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}}]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["evaluations"][0]["decision"], false);
    assert_eq!(
        body["evaluations"][0]["context"]["reason"],
        "invalid_request"
    );
    // No evaluations: a single evaluation of the defaults.
    let (_, single) = server
        .pep_post("/access/v1/evaluations", &json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}, "evaluations": []}))
        .await;
    assert_eq!(single["decision"], true);
}

#[tokio::test]
async fn an_evaluation_reports_reason_policies_and_decision_id() {
    let server = TestServer::start(Setup::default()).await;
    let request = json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}, "unknown_field": 1});
    let (status, body) = server.pep_post("/access/v1/evaluation", &request).await;
    assert_eq!(status, 200);
    assert_eq!(body["decision"], true);
    assert_eq!(body["context"]["reason"], "permitted");
    assert_eq!(body["context"]["policies"][0]["policy"], "viewers-read");
    assert_eq!(body["context"]["decision_id"].as_str().unwrap().len(), 36);
}

#[tokio::test]
async fn known_facts_win_over_properties() {
    let server = TestServer::start(Setup::default()).await;
    // carol is a viewer in the entity data; claiming admin roles or another tenant changes nothing.
    let request = json!({
        "subject": {"type": "User", "id": "acme/carol", "properties": {"tenant": {"__entity": {"type": "Tenant", "id": "globex"}}}},
        "action": {"name": "delete"},
        "resource": {"type": "Document", "id": "globex/roadmap", "properties": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}},
    });
    let (_, body) = server.pep_post("/access/v1/evaluation", &request).await;
    assert_eq!(body["decision"], false);
    // An entity Warden does not know is built from its properties, checked against the schema.
    let unknown = json!({
        "subject": {"type": "User", "id": "acme/bob"},
        "action": {"name": "edit"},
        "resource": {"type": "Document", "id": "acme/new-draft", "properties": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}, "owner": {"__entity": {"type": "User", "id": "acme/bob"}}, "classification": "internal"}},
    });
    let (_, body) = server.pep_post("/access/v1/evaluation", &unknown).await;
    assert_eq!(body["decision"], true, "{body}");
    // Properties may not move an entity named `globex/…` into acme.
    let moved = json!({
        "subject": {"type": "User", "id": "acme/bob"},
        "action": {"name": "edit"},
        "resource": {"type": "Document", "id": "globex/new-draft", "properties": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}, "owner": {"__entity": {"type": "User", "id": "acme/bob"}}, "classification": "internal"}},
    });
    let (_, body) = server.pep_post("/access/v1/evaluation", &moved).await;
    assert_eq!(body["decision"], false);
    assert_eq!(body["context"]["reason"], "invalid_request", "{body}");
    let misfit = json!({
        "subject": {"type": "User", "id": "acme/bob"},
        "action": {"name": "edit"},
        "resource": {"type": "Document", "id": "acme/new-draft", "properties": {"classification": 7}},
    });
    let (status, body) = server.pep_post("/access/v1/evaluation", &misfit).await;
    assert_eq!(status, 200);
    assert_eq!(body["decision"], false);
    assert_eq!(body["context"]["reason"], "invalid_request");
}

#[tokio::test]
async fn search_finds_what_the_policies_allow() {
    let server = TestServer::start(Setup::default()).await;
    let (status, subjects) = server
        .pep_post("/access/v1/search/subject", &json!({"subject": {"type": "User"}, "action": {"name": "delete"}, "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .await;
    assert_eq!(status, 200, "{subjects}");
    let ids: Vec<&str> = subjects["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    // alice (admin) and bob (owner) of acme; nobody of globex.
    assert_eq!(ids, ["acme/alice", "acme/bob"]);
    assert_eq!(subjects["page"]["next_token"], "");

    let (_, resources) = server
        .pep_post("/access/v1/search/resource", &json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document"}}))
        .await;
    let ids: Vec<&str> = resources["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme/nda", "acme/roadmap", "public/handbook"]);

    let (_, actions) = server
        .pep_post("/access/v1/search/action", &json!({"subject": {"type": "User", "id": "acme/bob"}, "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .await;
    let names: Vec<&str> = actions["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["delete", "edit", "read", "share"]);

    // Paging: one result at a time walks the same set.
    let mut token = String::new();
    let mut paged = Vec::new();
    for _ in 0..20 {
        let (_, page) = server
            .pep_post("/access/v1/search/resource", &json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document"}, "page": {"limit": 1, "token": token}}))
            .await;
        paged.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
        token = page["page"]["next_token"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(paged, ["acme/nda", "acme/roadmap", "public/handbook"]);
}

#[tokio::test]
async fn metadata_and_request_ids() {
    let server = TestServer::start(Setup::default()).await;
    let (status, metadata) = server.get("/.well-known/authzen-configuration").await;
    assert_eq!(status, 200);
    assert_eq!(metadata["policy_decision_point"], server.base);
    assert_eq!(
        metadata["access_evaluation_endpoint"],
        format!("{}/access/v1/evaluation", server.base)
    );
    assert_eq!(
        metadata["search_action_endpoint"],
        format!("{}/access/v1/search/action", server.base)
    );
    let response = server
        .client
        .post(server.url("/access/v1/evaluation"))
        .bearer_auth(PEP_SECRET)
        .header("x-request-id", "req-42")
        .json(&json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-42");
}

#[tokio::test]
async fn peps_must_authenticate() {
    let server = TestServer::start(Setup::default()).await;
    let body = json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}});
    for credential in [None, Some("wrong"), Some("")] {
        let mut request = server
            .client
            .post(server.url("/access/v1/evaluation"))
            .json(&body);
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{credential:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let open = TestServer::start(Setup {
        pep_auth: false,
        ..Setup::default()
    })
    .await;
    let response = open
        .client
        .post(open.url("/access/v1/evaluation"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// A repeated decision comes from the snapshot's cache: the same answer, its own decision id;
/// a new pack is a new snapshot, so nothing cached survives a change of policy.
#[tokio::test]
async fn repeated_decisions_come_from_the_cache_and_a_new_pack_empties_it() {
    let server = TestServer::start(Setup::default()).await;
    let request = json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}});
    let (_, first) = server.pep_post("/access/v1/evaluation", &request).await;
    let (_, second) = server.pep_post("/access/v1/evaluation", &request).await;
    assert_eq!(first["decision"], true);
    assert_eq!(second["decision"], true);
    assert_eq!(first["context"]["policies"], second["context"]["policies"]);
    assert_ne!(
        first["context"]["decision_id"],
        second["context"]["decision_id"]
    );
    let snapshot = server
        .server
        .as_ref()
        .unwrap()
        .state()
        .policy
        .current()
        .unwrap();
    assert_eq!(snapshot.decisions.len(), 1);
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
        metrics.contains("warden_decision_cache_total{result=\"hit\"}"),
        "{metrics}"
    );

    // A pack that forbids every read: the cached allow must not survive the reload.
    std::fs::write(
        server.pack_dir().join("zz-no-reads.cedar"),
        "@id(\"no-reads\")\nforbid (principal, action == Action::\"read\", resource);\n",
    )
    .unwrap();
    let reloaded = async {
        loop {
            let (_, body) = server.pep_post("/access/v1/evaluation", &request).await;
            if body["decision"] == false {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let denied = tokio::time::timeout(std::time::Duration::from_secs(15), reloaded)
        .await
        .expect("the reload reached the decisions within 15 s");
    assert_eq!(
        denied["context"]["policies"][0]["policy"], "no-reads",
        "{denied}"
    );
}
