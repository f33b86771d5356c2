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
    assert_eq!(status, 200, "the grant was refused: {status}");

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
    let admin_record = all
        .iter()
        .find(|r| r.record.entry.as_deref() == Some("admin"))
        .unwrap();
    assert_eq!(admin_record.record.decision.as_deref(), Some("ok"));
    assert_eq!(admin_record.record.reason.as_deref(), Some("http_200"));
    assert_eq!(
        admin_record.record.action.as_deref(),
        Some("POST /v1/admin/tenants/acme/roles/grant")
    );
    assert_eq!(
        admin_record.record.caller.as_deref(),
        Some("admin:adm_test")
    );
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

/// Makes the decision log unwritable (a directory where the current file was); returns the
/// function that puts it back.
fn break_log(audit_dir: &std::path::Path) -> impl FnOnce() {
    let current = audit_dir.join(CURRENT);
    let moved = audit_dir.join("moved-away.jsonl");
    std::fs::rename(&current, &moved).unwrap();
    std::fs::create_dir(&current).unwrap();
    move || {
        std::fs::remove_dir(&current).unwrap();
        std::fs::rename(&moved, &current).unwrap();
    }
}

/// Issue #18: with `on_failure = "deny"`, no token is issued and no admin write is answered as
/// done while the decision log cannot record it; a revocation (which only takes access away)
/// still goes through.
#[tokio::test]
async fn nothing_is_issued_or_granted_unrecorded_while_the_log_is_down() {
    let (key_file, tokens) = crate::support::tokens_section("http://127.0.0.1:8180");
    let extra = format!("[audit]\non_failure = \"deny\"\nretry_interval_ms = 50\n{tokens}");
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        extra: &extra,
        ..Setup::default()
    })
    .await;
    drop(key_file);
    let audit_dir = server.dir.path().join("warden-audit");
    let (status, created) = server
        .admin(
            reqwest::Method::POST,
            "/v1/admin/tenants/acme/service-accounts",
            Some(ADMIN_SECRET),
            Some(&json!({"name": "indexer", "owner": "alice", "purpose": "search indexing", "scopes": ["documents:read"], "expires_in_seconds": 86_400})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let ask_token = || {
        server
            .client
            .post(server.url("/oauth2/token"))
            .basic_auth(&client_id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
    };
    assert_eq!(ask_token().await.unwrap().status(), 200);

    let restore = break_log(&audit_dir);
    let refused = ask_token().await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(body.get("access_token").is_none(), "{body}");

    let grant =
        json!({"principal": "User::\"carol\"", "role": "Role::\"admin\"", "reason": "incident 9"});
    let (status, body) = server
        .admin(
            reqwest::Method::POST,
            "/v1/admin/tenants/acme/roles/grant",
            Some(ADMIN_SECRET),
            Some(&grant),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing was changed"),
        "{body}"
    );
    let (status, body) = server
        .admin(
            reqwest::Method::POST,
            "/v1/admin/revocations",
            Some(ADMIN_SECRET),
            Some(&json!({"kind": "subject", "issuer": ISSUER, "value": "mallory", "reason": "stolen laptop"})),
        )
        .await;
    assert_eq!(status, 200, "a revocation is never held back: {body}");

    restore();
    let mut issued = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if ask_token().await.unwrap().status() == 200 {
            issued = true;
            break;
        }
    }
    assert!(issued, "tokens are issued again once the log is writable");
    let (_, trail) = server
        .admin(
            reqwest::Method::GET,
            "/v1/admin/audit",
            Some(ADMIN_SECRET),
            None,
        )
        .await;
    let actions: Vec<&str> = trail["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["action"].as_str().unwrap())
        .collect();
    assert!(
        !actions.contains(&"role.grant"),
        "the refused grant changed nothing: {actions:?}"
    );
    let all = records(&audit_dir);
    let issued_records = all
        .iter()
        .filter(|r| r.record.reason.as_deref() == Some("token_issued"))
        .count();
    assert_eq!(issued_records, 2, "one record per token handed out");
}

/// Issue #18: refusals of `/v1/authenticate` and every AuthZEN search are decision-log records.
#[tokio::test]
async fn authenticate_refusals_and_searches_are_recorded() {
    let mut server = TestServer::start(Setup::default()).await;
    let audit_dir = server.dir.path().join("warden-audit");
    let response = server
        .client
        .post(server.url("/v1/authenticate"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, _) = server
        .pep_post("/access/v1/search/resource", &json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document"}}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .pep_post("/access/v1/search/subject", &json!({"subject": {"type": "User"}, "action": {"name": "delete"}, "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .pep_post("/access/v1/search/action", &json!({"subject": {"type": "User", "id": "acme/bob"}, "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .await;
    assert_eq!(status, 200);
    server
        .server
        .take()
        .unwrap()
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();

    let all = records(&audit_dir);
    let refusal: Vec<_> = all
        .iter()
        .filter(|r| r.record.entry.as_deref() == Some("authenticate"))
        .collect();
    assert_eq!(refusal.len(), 1);
    assert_eq!(refusal[0].record.reason.as_deref(), Some("token_malformed"));
    assert_eq!(refusal[0].record.decision.as_deref(), Some("deny"));
    let resource_search: Vec<_> = all
        .iter()
        .filter(|r| r.record.entry.as_deref() == Some("authzen.search.resource"))
        .collect();
    assert_eq!(resource_search.len(), 1);
    let explanation = resource_search[0].record.explanation.as_ref().unwrap();
    assert_eq!(
        explanation.details,
        ["acme/nda", "acme/roadmap", "public/handbook"],
        "{explanation:?}"
    );
    assert_eq!(
        resource_search[0].record.principal.as_ref().unwrap().id,
        "acme/carol"
    );
    assert_eq!(count(&all, "authzen.search.subject"), 1);
    assert_eq!(count(&all, "authzen.search.action"), 1);
}

/// Issue #18 review: an admin write's record names the tenant the call acted on, decoded as
/// the authorization decoded it (a percent-encoded `%61cme` is `acme`), so the tenant's own
/// admins find it.
#[tokio::test]
async fn an_admin_record_names_the_tenant_as_authorized() {
    let mut server = TestServer::start(Setup {
        storage: Some(String::new()),
        ..Setup::default()
    })
    .await;
    let audit_dir = server.dir.path().join("warden-audit");
    let (status, body) = server
        .admin(
            reqwest::Method::POST,
            "/v1/admin/tenants/%61cme/roles/grant",
            Some(ADMIN_SECRET),
            Some(&json!({"principal": "User::\"carol\"", "role": "Role::\"admin\"", "reason": "incident 3"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server
        .server
        .take()
        .unwrap()
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
    let admin_records: Vec<_> = records(&audit_dir)
        .into_iter()
        .filter(|r| r.record.kind == Kind::Admin)
        .collect();
    assert_eq!(admin_records.len(), 1);
    assert_eq!(admin_records[0].record.tenant(), Some("acme"));
}
