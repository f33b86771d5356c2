//! The decision log from the service's side: every entry point writes exactly one record per
//! decision (batch items, refused tokens and admin calls included), records are explained and
//! found by id, the chain verifies after a clean shutdown, and the fail-closed mode denies
//! while the log cannot be written and recovers once it can.

use std::time::Duration;

use serde_json::{Value, json};
use warden_audit::file_sink::{CURRENT, HEAD};
use warden_audit::record::decode;
use warden_audit::verify::{Head, lines_of, verify};
use warden_audit::{Kind, PublicKey, StoredRecord};
use warden_testkit::claims_at;

use crate::support::{ADMIN_SECRET, ISSUER, Setup, TestServer, now};

fn records(dir: &std::path::Path) -> Vec<StoredRecord> {
    std::fs::read_to_string(dir.join(CURRENT))
        .unwrap()
        .lines()
        .map(|line| decode(line).unwrap())
        .collect()
}

fn count(records: &[StoredRecord], entry: &str) -> usize {
    records
        .iter()
        .filter(|r| r.record.entry.as_deref() == Some(entry))
        .count()
}

#[tokio::test]
async fn every_entry_point_writes_one_record_per_decision_and_the_chain_verifies() {
    let mut server = TestServer::start(Setup {
        storage: Some(String::new()),
        ..Setup::default()
    })
    .await;
    let audit_dir = server.dir.path().join("warden-audit");

    let (status, single) = server
        .pep_post(
            "/access/v1/evaluation",
            &json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}}),
        )
        .await;
    assert_eq!(status, 200, "{single}");
    let single_id = single["context"]["decision_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, batch) = server
        .pep_post(
            "/access/v1/evaluations",
            &json!({
                "subject": {"type": "User", "id": "acme/carol"},
                "action": {"name": "read"},
                "evaluations": [
                    {"resource": {"type": "Document", "id": "acme/roadmap"}},
                    {"resource": {"type": "Document", "id": "globex/roadmap"}},
                    {"resource": {"type": "Document", "id": "acme/roadmap"}, "action": {"name": "delete"}}
                ]
            }),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["evaluations"].as_array().unwrap().len(), 3);

    let mut claims = claims_at(ISSUER, now());
    claims["sub"] = json!("carol");
    claims["org_id"] = json!("acme");
    let token = server.key.token(&claims);
    let check = |token: String| {
        server
            .client
            .post(server.url("/v1/check"))
            .bearer_auth(token)
            .json(
                &json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}),
            )
            .send()
    };
    let allowed = check(token).await.unwrap();
    assert_eq!(allowed.status(), 200);
    let allowed: Value = allowed.json().await.unwrap();
    let refused = check("not-a-jwt".to_owned()).await.unwrap();
    assert_eq!(refused.status(), 401);

    let (status, _) = server
        .admin(
            reqwest::Method::POST,
            "/v1/admin/tenants/acme/roles/grant",
            Some(ADMIN_SECRET),
            Some(&json!({"principal": "User::\"acme/dave\"", "role": "Role::\"acme/editor\"", "reason": "audit test"})),
        )
        .await;
    assert!(status < 500, "admin call answered {status}");

    // A recorded decision is found by id, explained in plain words.
    let (status, found) = server
        .admin(
            reqwest::Method::GET,
            &format!("/v1/decisions/{single_id}"),
            Some(ADMIN_SECRET),
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["decision"], "allow");
    assert_eq!(found["reason"], "permitted");
    assert_eq!(found["resource"]["tenant"], "acme");
    assert_eq!(found["caller"], "pep-credential-0");
    assert!(found["origin"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(
        found["explanation"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("ALLOW"),
        "{found}"
    );
    let (status, _) = server
        .admin(
            reqwest::Method::GET,
            "/v1/decisions/no-such-decision",
            Some(ADMIN_SECRET),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .admin(
            reqwest::Method::GET,
            &format!("/v1/decisions/{single_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 401, "decisions are read with an admin credential");

    server
        .server
        .take()
        .unwrap()
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();

    let all = records(&audit_dir);
    assert_eq!(count(&all, "authzen.evaluation"), 1);
    assert_eq!(
        count(&all, "authzen.evaluations"),
        3,
        "one record per batch item"
    );
    assert_eq!(count(&all, "check"), 2, "the allow and the refused token");
    assert_eq!(count(&all, "admin"), 1);
    let refusal = all
        .iter()
        .find(|r| {
            r.record.entry.as_deref() == Some("check")
                && r.record.decision.as_deref() == Some("deny")
        })
        .unwrap();
    assert_eq!(refusal.record.reason.as_deref(), Some("token_malformed"));
    let check_record = all
        .iter()
        .find(|r| r.record.id == allowed["decision_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        check_record
            .record
            .token
            .as_ref()
            .unwrap()
            .issuer
            .as_deref(),
        Some(ISSUER)
    );
    assert_eq!(
        check_record
            .record
            .principal
            .as_ref()
            .unwrap()
            .tenant
            .as_deref(),
        Some("acme")
    );
    let cross = all
        .iter()
        .find(|r| {
            r.record
                .resource
                .as_ref()
                .is_some_and(|res| res.id == "globex/roadmap")
        })
        .unwrap();
    assert_eq!(cross.record.decision.as_deref(), Some("deny"));
    assert!(
        all.last().unwrap().record.kind == Kind::Checkpoint,
        "shutdown signs the head"
    );

    let text = std::fs::read_to_string(audit_dir.join(CURRENT)).unwrap();
    let head: Head = serde_json::from_str(
        std::fs::read_to_string(audit_dir.join(HEAD))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let key = PublicKey::read(&audit_dir.join("audit-signing.key.pub")).unwrap();
    let report = verify(&lines_of("log", &text), &[key], Some(("head", &head)));
    assert_eq!(report.finding, None);
    assert!(report.checkpoints_verified >= 1);
    assert!(report.head_checked);
}

#[tokio::test]
async fn fail_closed_denies_while_the_log_cannot_be_written_and_recovers() {
    let server = TestServer::start(Setup {
        extra: "[audit]\non_failure = \"deny\"\nretry_interval_ms = 50\n",
        ..Setup::default()
    })
    .await;
    let audit_dir = server.dir.path().join("warden-audit");
    let question = json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}});
    let ask = || server.pep_post("/access/v1/evaluation", &question);
    let (_, before) = ask().await;
    assert_eq!(before["decision"], true);

    // The log file becomes something no process can append to (a directory stands in its
    // place; the CLI suite covers a read-only directory with a non-root server).
    let current = audit_dir.join(CURRENT);
    let moved = audit_dir.join("moved-away.jsonl");
    std::fs::rename(&current, &moved).unwrap();
    std::fs::create_dir(&current).unwrap();
    let (_, failing) = ask().await;
    assert_eq!(failing["decision"], false, "{failing}");
    assert_eq!(failing["context"]["reason"], "audit_unavailable");
    let (_, still) = ask().await;
    assert_eq!(still["decision"], false);
    assert_eq!(still["context"]["reason"], "audit_unavailable");
    let (status, ready) = server.get("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["checks"]["audit"]["status"], "down");

    std::fs::remove_dir(&current).unwrap();
    std::fs::rename(&moved, &current).unwrap();
    let mut recovered = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, answer) = ask().await;
        if answer["decision"] == true {
            recovered = true;
            break;
        }
    }
    assert!(
        recovered,
        "the service allows again once the log is writable"
    );
    // The denials were recorded as denials once the log came back.
    let all = records(&audit_dir);
    let failed: Vec<_> = all
        .iter()
        .filter(|r| r.record.reason.as_deref() == Some("audit_unavailable"))
        .collect();
    assert!(
        failed.len() >= 2,
        "{} audit_unavailable records",
        failed.len()
    );
    assert!(
        failed
            .iter()
            .all(|r| r.record.decision.as_deref() == Some("deny"))
    );
}
