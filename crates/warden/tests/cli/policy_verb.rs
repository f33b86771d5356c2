//! Issue #19: `warden policy put|delete|list --tenant T` against a running server, refusals
//! printed at `file:line:column` with exit 1, `warden validate --store` listing the stored
//! policies with the pack, and `warden test --store` deciding with them.

use std::process::Command;

use crate::support::{Run, admin_init, serve_example, warden};

fn policy(port: u16, secret: &str, args: &[&str]) -> Run {
    let server = format!("http://127.0.0.1:{port}");
    let mut all = vec!["policy"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--server", &server]);
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(&all)
        .env("WARDEN_ADMIN_TOKEN", secret)
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn policies_are_put_listed_refused_and_deleted_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let storage = format!("[storage]\nurl = \"sqlite://{}\"\n", db.display());
    let served = serve_example(dir.path(), "warden", &storage);
    let secret = admin_init(&served.config);

    let good = dir.path().join("legal-read.cedar");
    std::fs::write(
        &good,
        "permit (principal, action == Action::\"read\", resource in Folder::\"acme/contracts\");\n",
    )
    .unwrap();
    let file = good.display().to_string();
    let run = policy(served.port, &secret, &["put", "--tenant", "acme", &file]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("tenant/acme/legal-read"),
        "{}",
        run.stdout
    );

    let bad = dir.path().join("typo.cedar");
    std::fs::write(
        &bad,
        "permit (principal, action, resource)\nwhen { resource.clasification == \"public\" };\n",
    )
    .unwrap();
    let file = bad.display().to_string();
    let run = policy(served.port, &secret, &["put", "--tenant", "acme", &file]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("tenant/acme/typo.cedar:2:"),
        "{}",
        run.stdout
    );

    let run = policy(served.port, &secret, &["list", "--tenant", "acme"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("tenant/acme/legal-read"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("typo"), "{}", run.stdout);
    assert!(
        run.stdout.contains("1 policies in tenant acme"),
        "{}",
        run.stdout
    );

    // `warden validate --store` lists the stored policies with the pack.
    let url = format!("sqlite://{}", db.display());
    let run = warden(&["validate", "--policies", "examples/saas", "--store", &url]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("tenant policies: 1 in 1 tenant(s), 0 refused"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("tenant/acme/legal-read"),
        "{}",
        run.stdout
    );

    // `warden test --store` decides with the stored policy, as the server does: erin has no
    // role, so only acme's own policy lets her read a contract.
    let suite_dir = dir.path().join("suite");
    std::fs::create_dir_all(suite_dir.join("tests")).unwrap();
    let entities = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/saas/entities.json")
        .canonicalize()
        .unwrap();
    std::fs::write(
        suite_dir.join("tests/tenant.yaml"),
        format!(
            "description: acme's own policy\nentities:\n  - {}\ncases:\n  - name: erin reads a contract through acme's policy\n    principal: User::\"acme/erin\"\n    action: Action::\"read\"\n    resource: Document::\"acme/nda\"\n    expect: allow\n    policies: [tenant/acme/legal-read]\n",
            entities.display()
        ),
    )
    .unwrap();
    let suite = suite_dir.display().to_string();
    let run = warden(&["test", &suite, "--policies", "examples/saas"]);
    assert_eq!(
        run.code, 1,
        "without the store the case fails: {}{}",
        run.stdout, run.stderr
    );
    let run = warden(&[
        "test",
        &suite,
        "--policies",
        "examples/saas",
        "--store",
        &url,
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("tenant policies from the store: 1 in 1 tenant(s)\n  tenant/acme/legal-read"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ok    erin reads a contract through acme's policy"),
        "{}",
        run.stdout
    );

    let run = policy(
        served.port,
        &secret,
        &["delete", "--tenant", "acme", "--name", "legal-read"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run = policy(
        served.port,
        &secret,
        &["delete", "--tenant", "acme", "--name", "legal-read"],
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
}
