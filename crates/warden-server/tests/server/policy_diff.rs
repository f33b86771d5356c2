//! Issue #24: `POST /v1/admin/diff`, what a candidate pack would change, from the server's own
//! decision log: a candidate that drops a permit lists exactly the decisions that permit
//! allowed; `expect` covers them; the replay records nothing; only an admin of all tenants may
//! ask; a candidate that does not compile, changes the schema or names other files is refused.

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN_SECRET, SCOPED_ADMIN_SECRET, Setup, TestServer, repo_root};

/// The example pack's files, as the request carries them (relative names).
fn pack_files(dir: &Path, prefix: &str, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            if name != "tests" {
                pack_files(&entry.path(), &format!("{name}/"), files);
            }
        } else if name.ends_with(".cedar") || name.ends_with(".cedarschema") || name == "pack.toml"
        {
            files.insert(name, std::fs::read_to_string(entry.path()).unwrap());
        }
    }
}

fn without_viewers_read() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    pack_files(&repo_root().join("examples/saas"), "", &mut files);
    let documents = files.get_mut("documents.cedar").unwrap();
    let start = documents.find("@id(\"viewers-read\")").unwrap();
    let end = documents[start..].find("};").unwrap() + start + 2;
    documents.replace_range(start..end, "");
    files
}

async fn evaluate(server: &TestServer, subject: &str, action: &str, document: &str) -> bool {
    let (status, answer) = server
        .pep_post(
            "/access/v1/evaluation",
            &json!({"subject": {"type": "User", "id": subject}, "action": {"name": action}, "resource": {"type": "Document", "id": document}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["decision"].as_bool().unwrap()
}

/// Decision records in the log (the diff call itself is an admin record).
fn decision_records(server: &TestServer) -> usize {
    let dir = server.dir.path().join("warden-audit");
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "jsonl"))
        .map(|entry| {
            std::fs::read_to_string(entry.path())
                .unwrap()
                .lines()
                .filter(|line| line.contains("\"kind\":\"decision\""))
                .count()
        })
        .sum()
}

#[tokio::test]
async fn a_candidate_that_drops_a_permit_changes_exactly_its_decisions() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        ..Setup::default()
    })
    .await;
    for (subject, action, document, allowed) in [
        ("acme/carol", "read", "acme/roadmap", true),
        ("acme/carol", "read", "acme/roadmap", true),
        ("acme/bob", "edit", "acme/roadmap", true),
        ("acme/carol", "delete", "acme/roadmap", false),
        ("globex/carol", "read", "globex/roadmap", true),
    ] {
        assert_eq!(evaluate(&server, subject, action, document).await, allowed);
    }
    let body = json!({"files": without_viewers_read()});
    let before = decision_records(&server);
    let (status, answer) = server
        .admin(
            Method::POST,
            "/v1/admin/diff",
            Some(ADMIN_SECRET),
            Some(&body),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let report = &answer["report"];
    assert_eq!(answer["entity_state"], "today");
    assert_eq!(report["drift"], 0, "{report}");
    let changes: Vec<(String, String, String)> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["direction"], "allow_to_deny");
            assert_eq!(c["policies"], json!(["viewers-read"]));
            (
                c["principal"].as_str().unwrap().to_owned(),
                c["action"].as_str().unwrap().to_owned(),
                c["tenant"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "User::\"acme/carol\"".to_owned(),
                "read".to_owned(),
                "acme".to_owned()
            ),
            (
                "User::\"acme/carol\"".to_owned(),
                "read".to_owned(),
                "acme".to_owned()
            ),
            (
                "User::\"globex/carol\"".to_owned(),
                "read".to_owned(),
                "globex".to_owned()
            ),
        ],
        "the permit's reads and nothing else"
    );
    assert_eq!(answer["unexpected"], 3);
    assert_ne!(answer["current_revision"], answer["candidate_revision"]);
    let after = decision_records(&server);
    assert_eq!(after, before, "a replay records nothing");

    let expected =
        json!({"files": without_viewers_read(), "expect": ["allow-to-deny:viewers-read"]});
    let (status, answer) = server
        .admin(
            Method::POST,
            "/v1/admin/diff",
            Some(ADMIN_SECRET),
            Some(&expected),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["unexpected"], 0);

    // Only an admin of all tenants: the log holds every tenant's decisions.
    let (status, _) = server
        .admin(
            Method::POST,
            "/v1/admin/diff",
            Some(SCOPED_ADMIN_SECRET),
            Some(&body),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = server
        .admin(Method::POST, "/v1/admin/diff", None, Some(&body))
        .await;
    assert_eq!(status, 401);

    // A candidate that does not compile: 400 with the problem, file and line.
    let mut broken = without_viewers_read();
    broken.insert(
        "broken.cedar".to_owned(),
        "permit (principal, action, resource) when {".to_owned(),
    );
    let (status, answer) = server
        .admin(
            Method::POST,
            "/v1/admin/diff",
            Some(ADMIN_SECRET),
            Some(&json!({"files": broken})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["errors"][0]["file"], "broken.cedar", "{answer}");

    // A schema change: the entity data would have to be read again.
    let mut schema_changed = without_viewers_read();
    schema_changed
        .get_mut("schema.cedarschema")
        .unwrap()
        .push_str("\nentity Gadget;\n");
    let (status, answer) = server
        .admin(
            Method::POST,
            "/v1/admin/diff",
            Some(ADMIN_SECRET),
            Some(&json!({"files": schema_changed})),
        )
        .await;
    assert_eq!(status, 409, "{answer}");

    // Other files, a bad expectation, a bad span.
    for body in [
        json!({"files": {"notes.txt": "x"}}),
        json!({"files": {}}),
        json!({"files": without_viewers_read(), "expect": ["sideways"]}),
        json!({"files": without_viewers_read(), "since": "a week"}),
        json!({"files": without_viewers_read(), "since": "7日"}),
        json!({"files": without_viewers_read(), "examples": 1000}),
    ] {
        let (status, answer) = server
            .admin(
                Method::POST,
                "/v1/admin/diff",
                Some(ADMIN_SECRET),
                Some(&body),
            )
            .await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    let (status, answer) = server
        .admin(
            Method::POST,
            "/v1/admin/diff",
            Some(ADMIN_SECRET),
            Some(&json!({"files": without_viewers_read(), "since": "2999-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["report"]["read"], 0);
    let _: Value = answer;
}

/// Review #24: a candidate nested deeper than Cedar's recursive parser can take is refused
/// before it is parsed (a stack overflow would end the server), and the server still answers.
#[tokio::test]
async fn a_deeply_nested_candidate_is_refused_before_it_is_parsed() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        ..Setup::default()
    })
    .await;
    let mut files = without_viewers_read();
    let deep = format!(
        "permit (principal, action, resource) when {{ {}true{} }};",
        "(".repeat(30_000),
        ")".repeat(30_000)
    );
    files.insert("deep.cedar".to_owned(), deep);
    let (status, answer) = server
        .admin(
            Method::POST,
            "/v1/admin/diff",
            Some(ADMIN_SECRET),
            Some(&json!({"files": files})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("deep.cedar"),
        "{answer}"
    );
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
}

/// Review #24: with the store view stale every current decision is a deny, so the comparison
/// would be meaningless: 503, not a report.
#[tokio::test]
async fn a_stale_store_view_is_refused() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        max_staleness_seconds: 0,
        ..Setup::default()
    })
    .await;
    let mut stale = false;
    for _ in 0..50 {
        let (status, answer) = server
            .admin(
                Method::POST,
                "/v1/admin/diff",
                Some(ADMIN_SECRET),
                Some(&json!({"files": without_viewers_read()})),
            )
            .await;
        if status == 503 {
            assert!(
                answer["detail"].as_str().unwrap().contains("stale"),
                "{answer}"
            );
            stale = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(stale, "the stale view is refused");
}
