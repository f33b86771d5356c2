//! No acknowledged write is lost on a crash: a server killed with SIGKILL in the middle of a
//! stream of role grants keeps every grant it acknowledged (SQLite always; PostgreSQL when
//! `WARDEN_TEST_POSTGRES_URL` is set). Also exercises `warden admin init` and `warden role grant`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{admin_init, free_port, repo_root, wait_ready, warden};

fn start(config: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--config", config, "--log-format", "text"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn crash_and_recover(storage_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("warden.toml");
    let pack = repo_root().join("examples/saas");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[policy]\ndir = {:?}\nentities_file = {:?}\nwatch = false\n[storage]\nurl = {storage_url:?}\n",
            pack.display().to_string(),
            pack.join("entities.json").display().to_string()
        ),
    )
    .unwrap();
    let config = config.display().to_string();

    let secret = admin_init(&config);
    let again = warden(&["admin", "init", "--config", &config]);
    assert_eq!(again.code, 1, "a second init is refused");

    let mut server = start(&config);
    wait_ready(port);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let acknowledged = Arc::clone(&acknowledged);
        let stop = Arc::clone(&stop);
        let secret = secret.clone();
        let config = config.clone();
        std::thread::spawn(move || {
            for n in 0..400 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let principal = format!("User::\"crash-{n}\"");
                let output = Command::new(env!("CARGO_BIN_EXE_warden"))
                    .args([
                        "role",
                        "grant",
                        "--config",
                        &config,
                        "--tenant",
                        "acme",
                        "--principal",
                        &principal,
                        "--role",
                        "Role::\"viewer\"",
                        "--reason",
                        "crash test",
                    ])
                    .env("WARDEN_ADMIN_TOKEN", &secret)
                    .output()
                    .unwrap();
                if output.status.code() == Some(0) {
                    acknowledged.lock().unwrap().push(format!("acme/crash-{n}"));
                }
            }
        })
    };
    // Let some writes land, then kill the server without warning.
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no writes were acknowledged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();

    // After a restart every acknowledged grant is there.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stored: Vec<String> = runtime.block_on(async {
        let store = warden_store::Store::connect(storage_url).await.unwrap();
        store
            .read_state(0)
            .await
            .unwrap()
            .assignments
            .into_iter()
            .map(|grant| grant.principal_id)
            .collect()
    });
    for principal in &acknowledged {
        assert!(
            stored.contains(principal),
            "acknowledged grant for {principal} was lost"
        );
    }
    let mut restarted = start(&config);
    wait_ready(port);
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}

#[test]
fn acknowledged_writes_survive_sigkill_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    crash_and_recover(&format!(
        "sqlite://{}",
        dir.path().join("crash.db").display()
    ));
}

#[test]
fn acknowledged_writes_survive_sigkill_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(url) = runtime.block_on(warden_testkit::fresh_postgres_url()) else {
        eprintln!(
            "note: WARDEN_TEST_POSTGRES_URL is not set; the PostgreSQL crash test is skipped"
        );
        return;
    };
    crash_and_recover(&url);
}
