//! The decision log through the binary: records acknowledged in the durable mode survive a
//! SIGKILL, `warden audit verify` passes on the log and fails (exit 1, with the line) on a
//! flipped byte, `warden audit query` finds decisions, and the fail-closed mode denies while the
//! log directory is read-only and recovers when it is writable again.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{free_port, repo_root, wait_ready, warden};

struct Served {
    child: Child,
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, port: u16, audit: &str) -> String {
    let pack = repo_root().join("examples/saas");
    let config = dir.join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[policy]\ndir = {:?}\nentities_file = {:?}\nwatch = false\n[peps]\nallow_unauthenticated = true\n[audit]\n{audit}\n",
            pack.display().to_string(),
            pack.join("entities.json").display().to_string()
        ),
    )
    .unwrap();
    config.display().to_string()
}

fn serve(prefix: &[&str], config: &str, port: u16) -> Served {
    let mut command = match prefix.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(env!("CARGO_BIN_EXE_warden"));
            command
        }
        None => Command::new(env!("CARGO_BIN_EXE_warden")),
    };
    let child = command
        .args(["serve", "--config", config])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port);
    Served { child, port }
}

async fn evaluate(client: &reqwest::Client, port: u16, document: &str) -> Value {
    client
        .post(format!("http://127.0.0.1:{port}/access/v1/evaluation"))
        .json(&json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": document}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[test]
fn durable_records_survive_sigkill_and_verify_finds_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        port,
        "durability = \"durable\"\ncheckpoint_every = 7",
    );
    let mut server = serve(&[], &config, port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let acknowledged: Vec<String> = runtime.block_on(async {
        let mut ids = Vec::new();
        for n in 0..30 {
            let document = if n % 2 == 0 {
                "acme/roadmap"
            } else {
                "globex/roadmap"
            };
            let answer = evaluate(&client, port, document).await;
            ids.push(
                answer["context"]["decision_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        ids
    });
    server.child.kill().unwrap(); // SIGKILL: no shutdown, no final checkpoint
    server.child.wait().unwrap();

    let log_dir = dir.path().join("warden-audit");
    let text = std::fs::read_to_string(log_dir.join("decisions.jsonl")).unwrap();
    for id in &acknowledged {
        assert!(
            text.contains(id.as_str()),
            "acknowledged decision {id} is in the log"
        );
    }
    let log = log_dir.display().to_string();
    let verified = warden(&["audit", "verify", &log]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    assert!(verified.stdout.starts_with("ok: "), "{}", verified.stdout);
    let by_config = warden(&["audit", "verify", "--config", &config]);
    assert_eq!(
        by_config.code, 0,
        "{}{}",
        by_config.stdout, by_config.stderr
    );

    let denied = warden(&[
        "audit",
        "query",
        &log,
        "--decision",
        "deny",
        "--format",
        "json",
    ]);
    assert_eq!(denied.code, 0, "{}", denied.stderr);
    let rows: Vec<Value> = denied
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 15);
    assert!(
        rows.iter().all(|r| r["reason"] == "no_permit"),
        "{}",
        denied.stdout
    );
    let none = warden(&["audit", "query", &log, "--tenant", "nobody"]);
    assert_eq!(none.code, 1, "no match is exit 1");
    let bad = warden(&["audit", "query", &log, "--since", "yesterday"]);
    assert_eq!(bad.code, 2, "a bad time is bad usage");

    // The signed head deleted: the log has checkpoints, so its absence is a break.
    let head = std::fs::read(log_dir.join("decisions.head")).unwrap();
    std::fs::remove_file(log_dir.join("decisions.head")).unwrap();
    let headless = warden(&["audit", "verify", &log]);
    assert_eq!(headless.code, 1, "{}", headless.stdout);
    assert!(
        headless.stdout.contains("signed head is missing"),
        "{}",
        headless.stdout
    );
    std::fs::write(log_dir.join("decisions.head"), head).unwrap();

    // Flip one byte of the third record.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replacen("acme/carol", "acme/carok", 1);
    std::fs::write(log_dir.join("decisions.jsonl"), lines.join("\n") + "\n").unwrap();
    let broken = warden(&["audit", "verify", &log]);
    assert_eq!(broken.code, 1, "{}{}", broken.stdout, broken.stderr);
    assert!(
        broken.stdout.contains("decisions.jsonl:3"),
        "{}",
        broken.stdout
    );
    assert!(broken.stdout.contains("edited"), "{}", broken.stdout);
    let missing = warden(&["audit", "verify", "/no/such/log"]);
    assert_eq!(missing.code, 2);
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn fail_closed_denies_while_the_log_directory_is_read_only() {
    // Root ignores permissions; the server then runs without the capabilities that let it.
    let prefix: &[&str] = if running_as_root() {
        if Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("SKIPPED: running as root and setpriv is not installed");
            return;
        }
        &[
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--",
        ]
    } else {
        &[]
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        port,
        "on_failure = \"deny\"\nretry_interval_ms = 50",
    );
    let server = serve(prefix, &config, port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let log_dir = dir.path().join("warden-audit");
    let log_file = log_dir.join("decisions.jsonl");
    runtime.block_on(async {
        let before = evaluate(&client, server.port, "acme/roadmap").await;
        assert_eq!(before["decision"], true, "{before}");

        std::fs::set_permissions(&log_file, std::fs::Permissions::from_mode(0o444)).unwrap();
        std::fs::set_permissions(&log_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        for _ in 0..3 {
            let answer = evaluate(&client, server.port, "acme/roadmap").await;
            assert_eq!(answer["decision"], false, "{answer}");
            assert_eq!(answer["context"]["reason"], "audit_unavailable", "{answer}");
        }

        std::fs::set_permissions(&log_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&log_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut recovered = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if evaluate(&client, server.port, "acme/roadmap").await["decision"] == true {
                recovered = true;
                break;
            }
        }
        assert!(recovered, "allowed again once the directory is writable");
    });
    drop(server);
    let log = log_dir.display().to_string();
    let verified = warden(&["audit", "verify", &log]);
    assert_eq!(
        verified.code, 0,
        "the chain survived the outage: {}",
        verified.stdout
    );
}

/// The PostgreSQL sink: two replicas on one database write one chain (each batch takes the
/// head row's lock), `warden audit verify --config` checks it and `warden audit query --config`
/// reads it. Skipped, and says so, without `WARDEN_TEST_POSTGRES_URL`.
#[test]
fn the_postgres_sink_keeps_one_chain_across_replicas() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = runtime.block_on(warden_testkit::fresh_postgres_url()) else {
        eprintln!("note: WARDEN_TEST_POSTGRES_URL is not set; the PostgreSQL sink test is skipped");
        return;
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut configs = Vec::new();
    let mut servers = Vec::new();
    for dir in &dirs {
        let port = free_port();
        let config = write_config(
            dir.path(),
            port,
            &format!(
                "sink = \"postgres\"\ncheckpoint_every = 5\nsigning_key_file = {:?}\n[storage]\nurl = {url:?}",
                dirs[0].path().join("audit.key").display().to_string()
            ),
        );
        servers.push(serve(&[], &config, port));
        configs.push(config);
    }
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    runtime.block_on(async {
        for n in 0..20 {
            let server = &servers[n % 2];
            let answer = evaluate(&client, server.port, "acme/roadmap").await;
            assert_eq!(answer["decision"], true, "{answer}");
            ids.push(
                answer["context"]["decision_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    });
    drop(servers);
    for config in &configs {
        let verified = warden(&["audit", "verify", "--config", config]);
        assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
        assert!(
            verified.stdout.contains("checkpoints verified"),
            "{}",
            verified.stdout
        );
        assert!(
            !verified.stdout.contains(" 0 checkpoints verified"),
            "both writers signed checkpoints into the one chain: {}",
            verified.stdout
        );
    }
    let found = warden(&[
        "audit",
        "query",
        "--config",
        &configs[1],
        "--format",
        "json",
        "--limit",
        "100",
    ]);
    assert_eq!(found.code, 0, "{}", found.stderr);
    for id in &ids {
        assert!(
            found.stdout.contains(id.as_str()),
            "decision {id} is in the table"
        );
    }
}
