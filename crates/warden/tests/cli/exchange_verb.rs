//! `warden token exchange` against a real `warden serve` (issue #25): an admin tool's service
//! account exchanges an operator's token, and the admin verbs run with the delegated token act
//! as that person: the write is attributed to `operator:User::"acme/alice" via <tool>`, limited
//! to the person's tenant; a wrong secret is exit 1, missing inputs exit 2.

use std::process::Command;

use serde_json::Value;

use crate::support::{Served, admin_init, serve_example};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(served: &Served, env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command.args(args).args(["--config", &served.config]);
    for name in [
        "WARDEN_ADMIN_TOKEN",
        "WARDEN_SERVER",
        "WARDEN_CLIENT_ID",
        "WARDEN_CLIENT_SECRET",
        "WARDEN_SUBJECT_TOKEN",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A token of the configured HS256 issuer for `sub` of acme with `scope`.
fn person_token(served: &Served, sub: &str, scope: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "token",
            "mint",
            "--config",
            &served.config,
            "--issuer",
            "https://idp.example",
            "--sub",
            sub,
            "--claim",
            "org_id=acme",
            "--claim",
            &format!("scope={scope}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn audit_trail(served: &Served, admin: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let answer: Value = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/v1/admin/audit", served.port))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer.to_string()
    })
}

#[test]
fn an_operator_token_from_token_exchange_drives_the_admin_verbs_as_the_person() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kek"), "3c".repeat(32)).unwrap();
    std::fs::write(dir.path().join("idp-secret"), "4d".repeat(32)).unwrap();
    let served = serve_example(
        dir.path(),
        "exchange",
        &format!(
            "[storage]\nurl = \"sqlite://{}\"\n[peps]\nallow_unauthenticated = true\n[audit]\ndir = \"audit-exchange\"\n[tokens]\nissuer = \"http://127.0.0.1:8180\"\nkey_encryption_key_file = \"kek\"\n[[issuers]]\nissuer = \"https://idp.example\"\naudiences = [\"warden\"]\nalgorithms = [\"HS256\"]\nhs256_secret_file = \"idp-secret\"\n[issuers.claims]\ntenant = \"org_id\"\n",
            dir.path().join("warden.db").display()
        ),
    );
    let admin = admin_init(&served.config);
    let created = run(
        &served,
        &[("WARDEN_ADMIN_TOKEN", &admin)],
        &[
            "sa",
            "create",
            "--tenant",
            "acme",
            "--name",
            "ops-tool",
            "--owner",
            "alice",
            "--purpose",
            "the operators' admin tool",
            "--scopes",
            "warden:token-exchange warden:admin",
            "--expires",
            "30d",
            "--json",
        ],
    );
    assert_eq!(created.code, 0, "{}{}", created.stdout, created.stderr);
    let created: Value = serde_json::from_str(&created.stdout).unwrap();
    let client_id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();

    let alice = person_token(&served, "alice", "warden:admin");
    let token_file = dir.path().join("alice.token");
    std::fs::write(&token_file, &alice).unwrap();
    let token_file = token_file.display().to_string();
    let exchanged = run(
        &served,
        &[
            ("WARDEN_CLIENT_ID", client_id),
            ("WARDEN_CLIENT_SECRET", secret),
        ],
        &[
            "token",
            "exchange",
            "--subject-token-file",
            &token_file,
            "--scope",
            "warden:admin",
        ],
    );
    assert_eq!(
        exchanged.code, 0,
        "{}{}",
        exchanged.stdout, exchanged.stderr
    );
    let operator = exchanged.stdout.trim().to_owned();
    assert_eq!(operator.split('.').count(), 3, "{operator}");

    // The admin verbs with the operator's token act as alice, in her tenant.
    let disabled = run(
        &served,
        &[("WARDEN_ADMIN_TOKEN", &operator)],
        &[
            "principal",
            "disable",
            "--tenant",
            "acme",
            "User::\"acme/erin\"",
        ],
    );
    assert_eq!(disabled.code, 0, "{}{}", disabled.stdout, disabled.stderr);
    let trail = audit_trail(&served, &admin);
    let expected = format!("operator:User::\\\"acme/alice\\\" via {client_id}");
    assert!(trail.contains(&expected), "{expected} in {trail}");
    let elsewhere = run(
        &served,
        &[("WARDEN_ADMIN_TOKEN", &operator)],
        &[
            "principal",
            "disable",
            "--tenant",
            "globex",
            "User::\"globex/erin\"",
        ],
    );
    assert_eq!(
        elsewhere.code, 1,
        "{}{}",
        elsewhere.stdout, elsewhere.stderr
    );

    // A wrong secret is refused by the server (1); missing inputs are bad usage (2).
    let wrong = run(
        &served,
        &[
            ("WARDEN_CLIENT_ID", client_id),
            ("WARDEN_CLIENT_SECRET", "wsa_wrong"),
        ],
        &["token", "exchange", "--subject-token-file", &token_file],
    );
    assert_eq!(wrong.code, 1, "{}{}", wrong.stdout, wrong.stderr);
    assert!(wrong.stderr.contains("invalid_client"), "{}", wrong.stderr);
    assert!(wrong.stdout.is_empty(), "no token on a refusal");
    let no_secret = run(
        &served,
        &[("WARDEN_CLIENT_ID", client_id)],
        &["token", "exchange", "--subject-token-file", &token_file],
    );
    assert_eq!(no_secret.code, 2, "{}", no_secret.stderr);
    let no_subject = run(
        &served,
        &[
            ("WARDEN_CLIENT_ID", client_id),
            ("WARDEN_CLIENT_SECRET", secret),
        ],
        &["token", "exchange"],
    );
    assert_eq!(no_subject.code, 2, "{}", no_subject.stderr);
}
