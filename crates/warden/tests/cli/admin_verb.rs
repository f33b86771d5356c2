//! `warden admin create|list|rotate|revoke` against a real `warden serve` with a store: the
//! secret is printed once, the list never shows one, rotation retires the old secret, and the
//! last credential for all tenants is not revoked without `--force` (exit 1, nothing changed).

use std::process::Command;

use serde_json::Value;

use crate::support::{Served, admin_init, serve_example};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn admin(served: &Served, secret: &str, args: &[&str]) -> Out {
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("admin")
        .args(args)
        .args(["--config", &served.config])
        .env_remove("WARDEN_SERVER")
        .env("WARDEN_ADMIN_TOKEN", secret)
        .output()
        .unwrap();
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn json(out: &Out) -> Value {
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    serde_json::from_str(out.stdout.trim()).unwrap()
}

#[test]
fn admin_credential_verbs_create_list_rotate_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve_example(
        dir.path(),
        "admin",
        &format!(
            "[storage]\nurl = \"sqlite://{}\"\n[peps]\nallow_unauthenticated = true\n[audit]\ndir = \"audit-admin\"\n",
            dir.path().join("warden.db").display()
        ),
    );
    let first = admin_init(&served.config);
    // A second init is refused while the first is usable.
    let again = crate::support::warden(&["admin", "init", "--config", &served.config]);
    assert_eq!(again.code, 1, "{}{}", again.stdout, again.stderr);

    let created = json(&admin(
        &served,
        &first,
        &[
            "create",
            "--tenant",
            "acme",
            "--expires-in",
            "30d",
            "--label",
            "ci",
        ],
    ));
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["tenant"], "acme");

    let listed = admin(&served, &first, &["list"]);
    let list = json(&listed);
    assert_eq!(list["credentials"].as_array().unwrap().len(), 2);
    assert!(!listed.stdout.contains(&secret) && !listed.stdout.contains("wdn_admin_"));

    let rotated = json(&admin(&served, &secret, &["rotate", &id]));
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    let stale = admin(&served, &secret, &["rotate", &id]);
    assert_eq!(
        stale.code, 1,
        "the rotated-out secret: {}{}",
        stale.stdout, stale.stderr
    );
    assert!(stale.stdout.contains("401"), "{}", stale.stdout);

    let revoked = json(&admin(
        &served,
        &first,
        &["revoke", &id, "--reason", "pipeline retired"],
    ));
    assert_eq!(revoked["status"], "revoked");
    let refused = admin(&served, &new_secret, &["list"]);
    assert_eq!(refused.code, 1);

    // The last credential for all tenants: refused, then forced.
    let first_id = list["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tenant"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = admin(&served, &first, &["revoke", &first_id, "--reason", "oops"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("409") && out.stdout.contains("last usable"),
        "{}",
        out.stdout
    );
    assert_eq!(
        admin(&served, &first, &["list"]).code,
        0,
        "the refused revocation changed something"
    );
    let out = admin(
        &served,
        &first,
        &["revoke", &first_id, "--reason", "decommission", "--force"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(admin(&served, &first, &["list"]).code, 1);
    // The way back: `admin init` on the store.
    let back = admin_init(&served.config);
    assert_eq!(admin(&served, &back, &["list"]).code, 0);
    // A lost secret of a usable credential: `admin init --force` makes another, which revokes
    // the lost one.
    let lost_id = json(&admin(&served, &back, &["list"]))["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "active")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let forced = crate::support::warden(&["admin", "init", "--config", &served.config, "--force"]);
    assert_eq!(forced.code, 0, "{}{}", forced.stdout, forced.stderr);
    let replacement = forced
        .stdout
        .lines()
        .find(|line| line.starts_with("wdn_admin_"))
        .unwrap()
        .to_owned();
    let out = admin(
        &served,
        &replacement,
        &["revoke", &lost_id, "--reason", "secret lost"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(admin(&served, &back, &["list"]).code, 1);
    let back = replacement;

    // Bad usage is exit 2 and reaches nothing.
    let out = admin(&served, &back, &["create", "--expires-in", "soon"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
}
