//! Two `warden serve` processes on one PostgreSQL database: a role revoked through replica A
//! is denied by replica B within one second (skipped, and says so, without
//! `WARDEN_TEST_POSTGRES_URL`).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Served, admin_init, serve_example};

type Replica = Served;

fn start_replica(dir: &std::path::Path, name: &str, storage_url: &str) -> Replica {
    serve_example(
        dir,
        name,
        &format!("[storage]\nurl = {storage_url:?}\n[peps]\nallow_unauthenticated = true\n"),
    )
}

async fn carol_may_delete(client: &reqwest::Client, replica: &Replica) -> bool {
    let body = json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "delete"}, "resource": {"type": "Document", "id": "acme/roadmap"}});
    let answer: Value = client
        .post(format!(
            "http://127.0.0.1:{}/access/v1/evaluation",
            replica.port
        ))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["decision"].as_bool().unwrap()
}

#[test]
fn a_role_revoked_on_one_replica_is_denied_on_the_other_within_a_second() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(url) = runtime.block_on(warden_testkit::fresh_postgres_url()) else {
        eprintln!(
            "note: WARDEN_TEST_POSTGRES_URL is not set; the two-process replica test is skipped"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = start_replica(dir.path(), "a", &url);
    let b = start_replica(dir.path(), "b", &url);
    let secret = admin_init(&a.config);
    let admin = |verb: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args([
                "role",
                verb,
                "--config",
                &a.config,
                "--tenant",
                "acme",
                "--principal",
                "User::\"carol\"",
                "--role",
                "Role::\"admin\"",
                "--reason",
                "replica test",
            ])
            .env("WARDEN_ADMIN_TOKEN", &secret)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    };
    let client = reqwest::Client::new();
    let wait_on_b = |expected: bool| {
        runtime.block_on(async {
            let started = Instant::now();
            while carol_may_delete(&client, &b).await != expected {
                assert!(
                    started.elapsed() < Duration::from_secs(1),
                    "replica B did not follow replica A within one second"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            started.elapsed()
        })
    };
    admin("grant");
    wait_on_b(true);
    admin("revoke");
    let lag = wait_on_b(false);
    eprintln!("the revocation reached replica B after {lag:?}");
}
