//! Hot reload: a changed pack is swapped in; a broken pack keeps the last good one serving,
//! says why in `/readyz`, and never turns into denies or allows.

use std::time::Duration;

use serde_json::json;

use crate::support::{Setup, TestServer};

async fn revision(server: &TestServer) -> String {
    let (_, ready) = server.get("/readyz").await;
    ready["checks"]["policy"]["revision"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls `/readyz` until `done` holds, for at most five seconds.
async fn wait_for(
    server: &TestServer,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..50 {
        let (_, ready) = server.get("/readyz").await;
        if done(&ready) {
            return ready;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not reach the expected state within five seconds");
}

async fn carol_deletes(server: &TestServer) -> bool {
    let (_, body) = server
        .pep_post("/access/v1/evaluation", &json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "delete"}, "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .await;
    body["decision"].as_bool().unwrap()
}

#[tokio::test]
async fn a_broken_pack_keeps_the_last_good_one_serving() {
    let server = TestServer::start(Setup::default()).await;
    let good = revision(&server).await;
    assert!(!carol_deletes(&server).await);

    // A syntax error in one file: the reload fails, the old pack keeps deciding.
    std::fs::write(
        server.pack_dir().join("broken.cedar"),
        "permit (principal, action resource);",
    )
    .unwrap();
    let ready = wait_for(&server, |ready| {
        !ready["checks"]["policy"]["last_reload_error"].is_null()
    })
    .await;
    assert_eq!(ready["checks"]["policy"]["status"], "degraded");
    assert_eq!(ready["checks"]["policy"]["revision"], good.as_str());
    assert!(
        ready["checks"]["policy"]["last_reload_error"]
            .as_str()
            .unwrap()
            .contains("broken.cedar:1:"),
        "{ready}"
    );
    assert!(!carol_deletes(&server).await);
    let (_, body) = server
        .pep_post("/access/v1/evaluation", &json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .await;
    assert_eq!(
        body["decision"], true,
        "the last good pack still allows what it allowed"
    );

    // A valid change: the new pack is swapped in.
    std::fs::write(
        server.pack_dir().join("broken.cedar"),
        "@id(\"viewers-delete\") permit (principal in Role::\"viewer\", action == Action::\"delete\", resource is Document) when { resource.tenant == principal.tenant };",
    )
    .unwrap();
    let ready = wait_for(&server, |ready| {
        ready["checks"]["policy"]["revision"] != good.as_str()
    })
    .await;
    assert_eq!(ready["checks"]["policy"]["status"], "ok");
    assert!(carol_deletes(&server).await);
}

#[tokio::test]
async fn entity_data_changes_take_effect() {
    let server = TestServer::start(Setup::default()).await;
    let entities_path = server.pack_dir().join("entities.json");
    let text = std::fs::read_to_string(&entities_path).unwrap();
    // Make carol an admin.
    let promoted = text.replace(
        r#""id": "acme/carol"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}, "email": "carol@acme.example"}, "parents": [{"type": "Role", "id": "viewer"}]"#,
        r#""id": "acme/carol"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}, "email": "carol@acme.example"}, "parents": [{"type": "Role", "id": "admin"}]"#,
    );
    assert_ne!(text, promoted);
    let before = revision(&server).await;
    std::fs::write(&entities_path, promoted).unwrap();
    for _ in 0..50 {
        if carol_deletes(&server).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(carol_deletes(&server).await);
    // The pack revision covers policies, not entity data.
    assert_eq!(revision(&server).await, before);
}
