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

/// A stand-in server: answers every request 200 `{}` and records each request line.
fn recording_server() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = sender.send(line.trim_end().to_owned());
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
            );
        }
    });
    (base, lines)
}

/// Issue #22 review: a credential id is one path segment. `admin rotate ../keys` sent
/// `POST /v1/admin/credentials/../keys/rotate`, which the HTTP client resolves to
/// `/v1/admin/keys/rotate`: rotating Warden's signing key instead.
#[test]
fn a_credential_id_cannot_walk_to_another_admin_route() {
    let (base, lines) = recording_server();
    for (verb, id) in [
        ("rotate", "../keys"),
        ("rotate", ".."),
        ("revoke", "../../revocations?"),
        ("rotate", "adm_1/../../keys"),
        ("rotate", "%2e%2e"),
    ] {
        let mut args = vec!["admin", verb, id, "--server", base.as_str()];
        if verb == "revoke" {
            args.extend(["--reason", "x"]);
        }
        let output = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(&args)
            .env_remove("WARDEN_SERVER")
            .env("WARDEN_ADMIN_TOKEN", "wdn_admin_x")
            .output()
            .unwrap();
        let mut sent = Vec::new();
        while let Ok(line) = lines.recv_timeout(std::time::Duration::from_millis(300)) {
            sent.push(line);
        }
        for line in &sent {
            let target = line.split_whitespace().nth(1).unwrap_or_default();
            let path = target.split('?').next().unwrap_or_default();
            let rest = path
                .strip_prefix("/v1/admin/credentials/")
                .unwrap_or_default();
            let segments: Vec<&str> = rest.split('/').collect();
            assert!(
                segments.len() == 2
                    && segments[1] == verb
                    && !matches!(segments[0], "" | "." | "..")
                    && !segments[0].to_ascii_lowercase().contains("%2e%2e")
                    && !target.contains('?'),
                "`admin {verb} {id}` sent {line:?}"
            );
        }
        assert!(
            !sent.is_empty() || output.status.code() == Some(2),
            "`admin {verb} {id}`: neither sent nor refused as bad usage"
        );
    }
    // A secret pasted where the id goes is never sent (the server would log the path).
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "admin",
            "revoke",
            "wdn_admin_pasted-secret",
            "--reason",
            "x",
            "--server",
            &base,
        ])
        .env_remove("WARDEN_SERVER")
        .env("WARDEN_ADMIN_TOKEN", "wdn_admin_x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        lines
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err(),
        "a pasted secret was sent"
    );
}

/// Admin verbs reach an HTTPS listener whose certificate a private CA signed and which requires
/// a client certificate: `--config` makes the URL https, `--ca-file` trusts the CA,
/// `--client-cert`/`--client-key` present the certificate. Without them the call fails with
/// exit 2 (an error, not a refusal) naming the https URL; nothing is sent in the clear.
#[test]
fn admin_verbs_reach_a_tls_listener_with_a_private_ca_and_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = warden_testkit::pki::Pki::new("Warden CLI test CA");
    let clients = warden_testkit::pki::Pki::new("Warden CLI client CA");
    let (server_cert, server_key) = pki.leaf("warden.test", false);
    let (client_cert, client_key) = clients.leaf("operator", true);
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ca_file = file("ca.pem", &pki.ca_pem);
    let client_cert = file("operator.pem", &client_cert);
    let client_key = file("operator.key", &client_key);
    let served = serve_example(
        dir.path(),
        "tls",
        &format!(
            "[storage]\nurl = \"sqlite://{}\"\n[server.tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\nclient_auth = \"required\"\n",
            dir.path().join("warden.db").display(),
            file("server.pem", &server_cert),
            file("server.key", &server_key),
            file("clients-ca.pem", &clients.ca_pem),
        ),
    );
    let secret = admin_init(&served.config);

    let listed = admin(
        &served,
        &secret,
        &[
            "list",
            "--ca-file",
            &ca_file,
            "--client-cert",
            &client_cert,
            "--client-key",
            &client_key,
        ],
    );
    assert_eq!(json(&listed)["credentials"].as_array().unwrap().len(), 1);

    for (what, args) in [
        ("no client certificate", vec!["list", "--ca-file", &ca_file]),
        (
            "the CA not trusted",
            vec![
                "list",
                "--client-cert",
                &client_cert,
                "--client-key",
                &client_key,
            ],
        ),
    ] {
        let refused = admin(&served, &secret, &args);
        assert_eq!(
            refused.code, 2,
            "{what}: {}{}",
            refused.stdout, refused.stderr
        );
        assert!(
            refused.stderr.contains("https://127.0.0.1"),
            "{what}: the error names the https URL: {}",
            refused.stderr
        );
    }
    let half = admin(&served, &secret, &["list", "--client-cert", &client_cert]);
    assert_eq!(
        half.code, 2,
        "--client-cert without --client-key is a usage error"
    );
}
