//! `warden token verify`: exit 0 valid (prints the principal), 1 refused (prints the reason
//! code), 2 bad usage or configuration.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::json;
use warden_testkit::{TestKey, claims_at, jwks};

use crate::support::warden;

const ISSUER: &str = "https://idp.test";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Setup {
    dir: tempfile::TempDir,
    key: TestKey,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::rsa("k1");
        std::fs::write(dir.path().join("jwks.json"), jwks(&[&key])).unwrap();
        std::fs::write(
            dir.path().join("warden.toml"),
            format!(
                "[[issuers]]\nissuer = {ISSUER:?}\naudiences = [\"warden\"]\njwks_file = \"jwks.json\"\nalgorithms = [\"RS256\"]\n[issuers.claims]\ntenant = \"org_id\"\nroles = \"roles\"\n"
            ),
        )
        .unwrap();
        Self { dir, key }
    }

    fn config(&self) -> String {
        self.dir.path().join("warden.toml").display().to_string()
    }

    fn token(&self, exp: i64) -> String {
        let mut claims = claims_at(ISSUER, now());
        claims["exp"] = json!(exp);
        self.key.token(&claims)
    }
}

#[test]
fn a_valid_token_prints_the_principal() {
    let setup = Setup::new();
    let token = setup.token(now() + 600);
    let run = warden(&["token", "verify", "--config", &setup.config(), &token]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("valid: User::\"acme/alice\" from https://idp.test\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("roles: editor"));
    let json_run = warden(&[
        "token",
        "verify",
        "--config",
        &setup.config(),
        "--json",
        &token,
    ]);
    let report: serde_json::Value = serde_json::from_str(&json_run.stdout).unwrap();
    assert_eq!(report["principal"]["tenant"], "acme");
}

#[test]
fn a_token_can_come_from_stdin() {
    let setup = Setup::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["token", "verify", "--config", &setup.config()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(
        child.stdin.take().unwrap(),
        "Bearer {}",
        setup.token(now() + 600)
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn refused_tokens_exit_1_with_the_reason_code() {
    let setup = Setup::new();
    let expired = setup.token(now() - 3600);
    let run = warden(&["token", "verify", "--config", &setup.config(), &expired]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "refused: token_expired\n");
    let forged = TestKey::rsa("k1").token(&claims_at(ISSUER, now()));
    let run = warden(&[
        "token",
        "verify",
        "--config",
        &setup.config(),
        "--json",
        &forged,
    ]);
    assert_eq!(run.code, 1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["reason"], "token_signature_invalid");
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let setup = Setup::new();
    let path = setup.dir.path().join("bad.toml");
    std::fs::write(&path, "[[issuers]]\nissuer = \"x\"\naudiences = [\"a\"]\njwks_file = \"j\"\nalgorithms = [\"RS256\"]\nleway_seconds = 3\n").unwrap();
    let run = warden(&["token", "verify", "--config", path.to_str().unwrap(), "abc"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("leway_seconds"), "{}", run.stderr);
    let none_alg = setup.dir.path().join("none.toml");
    std::fs::write(&none_alg, "[[issuers]]\nissuer = \"x\"\naudiences = [\"a\"]\njwks_file = \"j\"\nalgorithms = [\"none\"]\n").unwrap();
    let run = warden(&[
        "token",
        "verify",
        "--config",
        none_alg.to_str().unwrap(),
        "abc",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("algorithm `none` is not supported"),
        "{}",
        run.stderr
    );
}
