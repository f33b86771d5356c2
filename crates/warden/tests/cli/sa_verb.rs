//! `warden sa …` and `warden keys …` against a real `warden serve` with a store and `[tokens]`:
//! create prints the client id and the secret once (or JSON), the secret gets a token that
//! `/v1/check` accepts, list/report/keys work, disable kills the token; exit codes 0, 1 and 2.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Served, admin_init, serve_example};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn sa(served: &Served, secret: Option<&str>, args: &[&str]) -> Out {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command.args(args).args(["--config", &served.config]);
    command
        .env_remove("WARDEN_ADMIN_TOKEN")
        .env_remove("WARDEN_SERVER");
    if let Some(secret) = secret {
        command.env("WARDEN_ADMIN_TOKEN", secret);
    }
    let output = command.output().unwrap();
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn token(served: &Served, client_id: &str, secret: &str) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/oauth2/token", served.port))
            .basic_auth(client_id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

fn check(served: &Served, token: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/v1/check", served.port))
            .bearer_auth(token)
            .json(
                &json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}),
            )
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn service_account_verbs_create_report_rotate_and_disable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kek"), "3c".repeat(32)).unwrap();
    let served = serve_example(
        dir.path(),
        "sa",
        &format!(
            "[storage]\nurl = \"sqlite://{}\"\n[peps]\nallow_unauthenticated = true\n[audit]\ndir = \"audit-sa\"\n[tokens]\nissuer = \"http://127.0.0.1:8180\"\nkey_encryption_key_file = \"kek\"\n",
            dir.path().join("warden.db").display()
        ),
    );
    let admin = admin_init(&served.config);
    let create = [
        "sa",
        "create",
        "--tenant",
        "acme",
        "--name",
        "nightly-indexer",
        "--owner",
        "alice",
        "--purpose",
        "search indexing",
        "--scopes",
        "documents:read",
        "--expires",
        "90d",
    ];

    // No admin credential: bad usage, nothing created.
    let out = sa(&served, None, &create);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("WARDEN_ADMIN_TOKEN"), "{}", out.stderr);

    let out = sa(&served, Some(&admin), &create);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let line = |prefix: &str| {
        out.stdout
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap()
            .trim()
            .to_owned()
    };
    let (client_id, secret) = (line("client_id:"), line("client_secret:"));
    assert!(
        client_id.starts_with("sa_") && secret.starts_with("wsa_"),
        "{}",
        out.stdout
    );

    // The same name again is refused by the server: exit 1.
    let out = sa(&served, Some(&admin), &create);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    // A duration the CLI cannot read: exit 2.
    let mut bad = create.to_vec();
    bad[13] = "9 weeks";
    assert_eq!(sa(&served, Some(&admin), &bad).code, 2);

    let mut as_json = create.to_vec();
    as_json[5] = "exporter";
    as_json.push("--json");
    let out = sa(&served, Some(&admin), &as_json);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let answer: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        answer["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("wsa_")
    );

    let (status, body) = token(&served, &client_id, &secret);
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(check(&served, &access), 200);
    // `warden token verify` verifies Warden's own tokens with the keys in the store.
    let out = sa(&served, None, &["token", "verify", &access]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("ServiceAccount::\"acme/{client_id}\"")),
        "{}",
        out.stdout
    );

    let out = sa(&served, Some(&admin), &["sa", "list", "--tenant", "acme"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains(&client_id) && out.stdout.contains("exporter"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("wsa_"), "a secret was listed");
    let out = sa(
        &served,
        Some(&admin),
        &["sa", "report", "--tenant", "acme", "--json"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["accounts"].as_array().unwrap().len(), 2);
    let out = sa(&served, Some(&admin), &["sa", "report"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("2 account(s)"), "{}", out.stdout);

    let out = sa(
        &served,
        Some(&admin),
        &[
            "sa",
            "credential",
            "rotate",
            "--tenant",
            "acme",
            &client_id,
            "--overlap",
            "1h",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("client_secret: wsa_"), "{}", out.stdout);
    let out = sa(&served, Some(&admin), &["keys", "rotate"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = sa(&served, Some(&admin), &["keys", "list"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("retiring"), "{}", out.stdout);
    // The token signed before the rotation still verifies.
    assert_eq!(check(&served, &access), 200);

    let disable = [
        "sa",
        "disable",
        "--tenant",
        "acme",
        &client_id,
        "--reason",
        "job retired",
    ];
    let out = sa(&served, Some(&admin), &disable);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(check(&served, &access), 401);
    assert_eq!(token(&served, &client_id, &secret).0, 401);
    // Disabling twice is refused: exit 1.
    assert_eq!(sa(&served, Some(&admin), &disable).code, 1);
}
