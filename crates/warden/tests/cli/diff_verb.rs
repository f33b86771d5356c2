//! `warden diff` (issue #24): a decision log seeded through the real server, then replayed
//! against a candidate pack that drops a permit. Exactly the decisions that permit allowed
//! change (allow-to-deny, grouped by the policy and tenant), and none else; `--expect` covers
//! them or not; an unchanged candidate changes nothing; a broken one is bad input.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{copy_pack, free_port, repo_root, wait_ready, warden};

struct Served {
    child: std::process::Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A configuration on the example pack with a durable decision log in `dir/audit`.
fn write_config(dir: &Path, port: u16) -> String {
    let pack = repo_root().join("examples/saas");
    let config = dir.join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[policy]\ndir = {:?}\nentities_file = {:?}\nwatch = false\n[peps]\nallow_unauthenticated = true\n[audit]\ndir = {:?}\ndurability = \"durable\"\n",
            pack.display().to_string(),
            pack.join("entities.json").display().to_string(),
            dir.join("audit").display().to_string()
        ),
    )
    .unwrap();
    config.display().to_string()
}

/// Decisions through AuthZEN (and one refused token through /v1/check); the server is
/// stopped before the diff reads the log.
fn seed(config: &str, port: u16) {
    let server = Served {
        child: std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve", "--config", config])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    };
    wait_ready(port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for (subject, action, resource, allowed) in [
            ("acme/carol", "read", "acme/roadmap", true),
            ("acme/carol", "read", "acme/roadmap", true),
            ("acme/carol", "read", "acme/roadmap", true),
            ("acme/alice", "read", "acme/roadmap", true),
            ("acme/bob", "edit", "acme/roadmap", true),
            ("acme/carol", "delete", "acme/roadmap", false),
            ("globex/carol", "read", "globex/roadmap", true),
            ("acme/carol", "read", "acme/salaries", false),
            ("acme/alice", "delete", "acme/nda", true),
        ] {
            let answer: Value = client
                .post(format!("http://127.0.0.1:{port}/access/v1/evaluation"))
                .json(&json!({"subject": {"type": "User", "id": subject}, "action": {"name": action}, "resource": {"type": "Document", "id": resource}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(answer["decision"], allowed, "{subject} {action} {resource}: {answer}");
        }
        let refused = client
            .post(format!("http://127.0.0.1:{port}/v1/check"))
            .bearer_auth("not-a-token")
            .json(&json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
    });
    drop(server);
}

/// The recorded decisions as (id, action, decision, principal id).
fn recorded(dir: &Path) -> Vec<(String, String, String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir.join("audit")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            if record["kind"] == "decision" && record["principal"].is_object() {
                found.push((
                    record["id"].as_str().unwrap().to_owned(),
                    record["action"].as_str().unwrap_or_default().to_owned(),
                    record["decision"].as_str().unwrap_or_default().to_owned(),
                    record["principal"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
            }
        }
    }
    found
}

/// The example pack without the `viewers-read` permit.
fn without_viewers_read(dir: &Path) -> String {
    let candidate = dir.join("candidate");
    copy_pack(&repo_root().join("examples/saas"), &candidate);
    let documents = candidate.join("documents.cedar");
    let text = std::fs::read_to_string(&documents).unwrap();
    let start = text.find("@id(\"viewers-read\")").unwrap();
    let end = text[start..].find("};").unwrap() + start + 2;
    std::fs::write(&documents, format!("{}{}", &text[..start], &text[end..])).unwrap();
    candidate.display().to_string()
}

#[test]
fn a_candidate_that_drops_a_permit_lists_exactly_the_decisions_that_change() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    seed(&config, port);
    let candidate = without_viewers_read(dir.path());

    let run = warden(&[
        "diff",
        "--config",
        &config,
        "--policies",
        &candidate,
        "--json",
    ]);
    assert_eq!(
        run.code, 1,
        "changes beyond --expect: {}{}",
        run.stdout, run.stderr
    );
    let answer: Value = serde_json::from_str(&run.stdout).unwrap();
    let report = &answer["report"];
    assert_eq!(answer["entity_state"], "today");
    assert_eq!(report["drift"], 0, "the data has not changed: {report}");
    assert_eq!(report["replayed"], 9);
    // The refused token (its reason depends on the verifier: no issuer is configured here).
    let not_replayed = report["not_replayed"].as_object().unwrap();
    assert_eq!(not_replayed.len(), 1, "{report}");
    assert!(
        not_replayed
            .keys()
            .all(|reason| reason.starts_with("token_")),
        "{report}"
    );
    // Exactly the reads the permit allowed: carol three times, alice, globex's carol.
    let mut expected: Vec<String> = recorded(dir.path())
        .into_iter()
        .filter(|(_, action, decision, _)| action == "read" && decision == "allow")
        .map(|(id, ..)| id)
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 5);
    let mut changed: Vec<String> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| {
            assert_eq!(change["direction"], "allow_to_deny", "{change}");
            assert!(
                change["policies"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("viewers-read")),
                "{change}"
            );
            change["decision_id"].as_str().unwrap().to_owned()
        })
        .collect();
    changed.sort();
    assert_eq!(
        changed, expected,
        "the changes are the permit's reads and nothing else"
    );
    // Grouped by policy and tenant, largest first.
    let groups: Vec<(String, String, u64)> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["policy"].as_str().unwrap().to_owned(),
                g["tenant"].as_str().unwrap().to_owned(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("viewers-read".to_owned(), "acme".to_owned(), 4),
            ("viewers-read".to_owned(), "globex".to_owned(), 1)
        ]
    );
    assert_eq!(
        report["distinct_requests"], 7,
        "repeated requests are decided once"
    );

    // The text report says the same in words, and which entity state it used.
    let run = warden(&["diff", "--config", &config, "--policies", &candidate]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("entity state: today's"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("4 allow-to-deny, policy viewers-read, tenant acme:"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("changes: 5 (allow-to-deny 5, deny-to-allow 0)"),
        "{}",
        run.stdout
    );

    // Expected changes: exit 0; an expectation narrower than the change: exit 1.
    let run = warden(&[
        "diff",
        "--config",
        &config,
        "--policies",
        &candidate,
        "--expect",
        "allow-to-deny:viewers-read",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run = warden(&[
        "diff",
        "--config",
        &config,
        "--policies",
        &candidate,
        "--expect",
        "allow-to-deny:viewers-read@acme",
    ]);
    assert_eq!(
        run.code, 1,
        "globex's change is not expected: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("1 change(s) not covered by --expect"),
        "{}",
        run.stdout
    );

    // The pack in force as the candidate: nothing changes.
    let same = repo_root().join("examples/saas").display().to_string();
    let run = warden(&["diff", "--config", &config, "--policies", &same]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("changes: 0"), "{}", run.stdout);

    // Only recent decisions: none are in the future.
    let run = warden(&[
        "diff",
        "--config",
        &config,
        "--policies",
        &candidate,
        "--since",
        "2999-01-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let answer: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(answer["report"]["read"], 0);
    let run = warden(&[
        "diff",
        "--config",
        &config,
        "--policies",
        &candidate,
        "--since",
        "7d",
    ]);
    assert_eq!(run.code, 1, "the seeded decisions are within a week");

    // Bad input: a broken candidate, a bad --expect or --since.
    let broken = dir.path().join("broken");
    copy_pack(&repo_root().join("examples/saas"), &broken);
    std::fs::write(
        broken.join("documents.cedar"),
        "permit (principal, action, resource) when {",
    )
    .unwrap();
    let broken = broken.display().to_string();
    let run = warden(&["diff", "--config", &config, "--policies", &broken]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("invalid"), "{}", run.stderr);
    for (flag, value) in [
        ("--expect", "sideways"),
        ("--since", "a week"),
        ("--since", "7日"),
    ] {
        let run = warden(&[
            "diff",
            "--config",
            &config,
            "--policies",
            &candidate,
            flag,
            value,
        ]);
        assert_eq!(run.code, 2, "{flag} {value}: {}", run.stderr);
    }
}
