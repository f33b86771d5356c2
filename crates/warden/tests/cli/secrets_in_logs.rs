//! Issue #22: no token, secret or key in any log line. The real `warden serve`, logging at
//! debug level, is sent the attack tokens (forged, `alg: none`, key confusion, expired, wrong
//! audience and issuer, unknown key, injected `jku`, garbage, oversized) on every entry point
//! that takes one, and the admin mistakes (a wrong credential, a PEP credential used as an
//! admin one and the other way round, an admin secret sent as a user's token, a client secret
//! sent to the wrong place); it also creates, rotates and uses real credentials. Then every
//! line it wrote (stdout, stderr), every decision-log file and the store's database file are
//! searched for each secret.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use warden_testkit::{TestKey, b64, claims_at, jwks};

use crate::support::{admin_init, free_port, repo_root, wait_ready};

const ISSUER: &str = "https://idp.test";
const PEP_SECRET: &str = "pep-credential-that-must-never-be-logged-4711";
const METRICS_SECRET: &str = "metrics-credential-that-must-never-be-logged-0815";
const KEK_HEX: &str = "9d1c4b7e2f60a8d35e7c91b04f2a6d8c3e5b7091a2c4d6e8f0b1c3d5e7f9a0b2";

fn digest(secret: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

struct Call {
    method: reqwest::Method,
    path: String,
    bearer: Option<String>,
    basic: Option<(String, String)>,
    body: Option<Value>,
    form: Option<String>,
}

fn call(path: &str) -> Call {
    Call {
        method: reqwest::Method::POST,
        path: path.to_owned(),
        bearer: None,
        basic: None,
        body: None,
        form: None,
    }
}

async fn send(client: &reqwest::Client, base: &str, call: Call) -> (u16, Value) {
    let mut request = client.request(call.method, format!("{base}{}", call.path));
    if let Some(bearer) = &call.bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some((user, password)) = &call.basic {
        request = request.basic_auth(user, Some(password));
    }
    if let Some(body) = &call.body {
        request = request.json(body);
    }
    if let Some(form) = call.form {
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The attack tokens: each a string a log must never hold.
fn attack_tokens(key: &TestKey, now: i64) -> Vec<String> {
    let good = claims_at(ISSUER, now);
    let edit = |field: &str, value: Value| {
        let mut claims = good.clone();
        claims[field] = value;
        claims
    };
    let payload = b64(serde_json::to_string(&good).unwrap().as_bytes());
    let other = TestKey::rsa("k1");
    vec![
        key.token(&good),
        other.token(&good),
        key.token(&edit("exp", json!(now - 3600))),
        key.token(&edit("aud", json!("someone-else"))),
        key.token(&edit("iss", json!("https://evil.test"))),
        TestKey::rsa("unknown-kid").token(&good),
        format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#)),
        TestKey::hmac(key.jwk().to_string().as_bytes()).token(&good),
        key.token_raw(
            &b64(br#"{"alg":"RS256","kid":"k1","jku":"https://evil.test/jwks.json"}"#),
            &payload,
        ),
        format!("garbage-token-{}", "z".repeat(40)),
        format!(
            "{}.{payload}.{}",
            b64(br#"{"alg":"RS256"}"#),
            "s".repeat(20_000)
        ),
    ]
}

/// The parts of a token that are secret: the whole token and its signature.
fn secret_parts(token: &str) -> Vec<String> {
    let mut parts = vec![token.to_owned()];
    if let Some(signature) = token.rsplit('.').next().filter(|s| s.len() >= 16) {
        parts.push(signature.to_owned());
    }
    parts
}

fn all_text(dir: &Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
            text.push('\n');
        }
    }
    text
}

#[test]
fn no_token_secret_or_key_reaches_a_log_line_or_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::rsa("k1");
    std::fs::write(dir.path().join("jwks.json"), jwks(&[&key])).unwrap();
    std::fs::write(dir.path().join("kek"), KEK_HEX).unwrap();
    let port = free_port();
    let pack = repo_root().join("examples/saas");
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[policy]\ndir = {:?}\nentities_file = {:?}\nwatch = false\n\
             [storage]\nurl = \"sqlite://{}\"\n[peps]\ncredentials = [\"sha256:{}\"]\n[metrics]\ncredentials = [\"sha256:{}\"]\n\
             [rate_limits]\nfailed_auth_per_minute = 0\n[audit]\ndir = \"audit\"\n\
             [tokens]\nissuer = \"http://127.0.0.1:{port}\"\nkey_encryption_key_file = \"kek\"\n\
             [[issuers]]\nissuer = {ISSUER:?}\naudiences = [\"warden\"]\njwks_file = \"jwks.json\"\nalgorithms = [\"RS256\"]\n\
             [issuers.claims]\ntenant = \"org_id\"\nroles = \"roles\"\n",
            pack.display().to_string(),
            pack.join("entities.json").display().to_string(),
            dir.path().join("warden.db").display(),
            digest(PEP_SECRET),
            digest(METRICS_SECRET),
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let admin_secret = admin_init(&config);
    let stdout = std::fs::File::create(dir.path().join("stdout.log")).unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--config", &config])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    wait_ready(port);
    let base = format!("http://127.0.0.1:{port}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    let mut secrets: Vec<String> = vec![
        PEP_SECRET.into(),
        METRICS_SECRET.into(),
        KEK_HEX.into(),
        admin_secret.clone(),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (credential_id, client_id) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let decision = json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}});
        let evaluation = |token: &str| {
            json!({"subject": {"type": "User", "id": "acme/carol", "properties": {"token": {"iss": ISSUER, "jti": token}}},
                   "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}})
        };
        for token in attack_tokens(&key, now) {
            for path in ["/v1/check", "/v1/authenticate", "/v1/filter"] {
                let body = if path == "/v1/filter" {
                    json!({"action": "read", "resource_type": "Document"})
                } else {
                    decision.clone()
                };
                let (status, answer) = send(&client, &base, Call { bearer: Some(token.clone()), body: Some(body), ..call(path) }).await;
                assert!(status == 401 || status == 200, "{path}: {status} {answer}");
            }
            // An attack token where a PEP or admin credential belongs.
            for path in ["/access/v1/evaluation", "/v1/admin/credentials"] {
                let (status, _) = send(&client, &base, Call { bearer: Some(token.clone()), body: Some(json!({})), ..call(path) }).await;
                assert_eq!(status, 401, "{path}");
            }
            secrets.extend(secret_parts(&token));
        }
        // Admin mistakes.
        for (path, bearer) in [
            ("/v1/admin/credentials", PEP_SECRET),
            ("/v1/admin/credentials", "wdn_admin_a-guess-that-is-not-a-credential"),
            ("/access/v1/evaluation", admin_secret.as_str()),
            ("/v1/check", admin_secret.as_str()),
            ("/v1/check", PEP_SECRET),
        ] {
            let (status, _) = send(&client, &base, Call { bearer: Some(bearer.to_owned()), body: Some(decision.clone()), ..call(path) }).await;
            assert_eq!(status, 401, "{path} with a misplaced credential");
        }
        secrets.push("wdn_admin_a-guess-that-is-not-a-credential".into());
        let (status, _) = send(&client, &base, Call { method: reqwest::Method::GET, bearer: Some(PEP_SECRET.into()), ..call("/metrics") }).await;
        assert_eq!(status, 401);
        let (status, _) = send(&client, &base, Call { method: reqwest::Method::GET, bearer: Some(METRICS_SECRET.into()), ..call("/metrics") }).await;
        assert_eq!(status, 200);

        // Real credentials made, rotated and used.
        let (status, created) = send(&client, &base, Call { bearer: Some(admin_secret.clone()), body: Some(json!({"tenant": "acme", "label": "ci"})), ..call("/v1/admin/credentials") }).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        secrets.push(created["secret"].as_str().unwrap().to_owned());
        let (status, rotated) = send(&client, &base, Call { bearer: Some(admin_secret.clone()), body: Some(json!({})), ..call(&format!("/v1/admin/credentials/{id}/rotate")) }).await;
        assert_eq!(status, 200, "{rotated}");
        secrets.push(rotated["secret"].as_str().unwrap().to_owned());
        let (status, account) = send(&client, &base, Call {
            bearer: Some(admin_secret.clone()),
            body: Some(json!({"name": "indexer", "owner": "alice", "purpose": "search indexing", "scopes": ["documents:read"], "expires_in_seconds": 86_400})),
            ..call("/v1/admin/tenants/acme/service-accounts")
        }).await;
        assert_eq!(status, 201, "{account}");
        let client_id = account["client_id"].as_str().unwrap().to_owned();
        let client_secret = account["client_secret"].as_str().unwrap().to_owned();
        secrets.push(client_secret.clone());
        // A wrong secret, the secret as a form field instead of Basic, then the right way.
        let form = "grant_type=client_credentials".to_owned();
        let (status, _) = send(&client, &base, Call { basic: Some((client_id.clone(), "wsa_wrong-secret-guess".into())), form: Some(form.clone()), ..call("/oauth2/token") }).await;
        assert_eq!(status, 401);
        secrets.push("wsa_wrong-secret-guess".into());
        let (status, _) = send(&client, &base, Call { form: Some(format!("{form}&client_id={client_id}&client_secret={client_secret}&client_secret={client_secret}")), ..call("/oauth2/token") }).await;
        assert_eq!(status, 400, "a repeated parameter");
        let (status, issued) = send(&client, &base, Call { basic: Some((client_id.clone(), client_secret.clone())), form: Some(form.clone()), ..call("/oauth2/token") }).await;
        assert_eq!(status, 200, "{issued}");
        let access_token = issued["access_token"].as_str().unwrap().to_owned();
        secrets.extend(secret_parts(&access_token));
        let (status, _) = send(&client, &base, Call { bearer: Some(access_token.clone()), body: Some(decision.clone()), ..call("/v1/check") }).await;
        assert!(status == 200, "the service account's token: {status}");
        let (status, _) = send(&client, &base, Call { bearer: Some(PEP_SECRET.into()), body: Some(evaluation(&access_token)), ..call("/access/v1/evaluation") }).await;
        assert!(status == 200 || status == 400, "{status}");
        let (status, _) = send(&client, &base, Call { basic: Some((client_id.clone(), client_secret.clone())), form: Some(format!("token={access_token}")), ..call("/oauth2/revoke") }).await;
        assert_eq!(status, 200);
        let (status, _) = send(&client, &base, Call { bearer: Some(access_token.clone()), body: Some(decision.clone()), ..call("/v1/check") }).await;
        assert_eq!(status, 401, "a revoked token");
        (id, client_id)
    });

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();

    let logs = format!(
        "{}\n{}",
        std::fs::read_to_string(dir.path().join("stdout.log")).unwrap(),
        std::fs::read_to_string(dir.path().join("stderr.log")).unwrap()
    );
    assert!(
        logs.lines().count() > 20,
        "the server logged almost nothing at debug: {logs}"
    );
    let decision_log = all_text(&dir.path().join("audit"));
    assert!(
        decision_log.contains("token_"),
        "the decision log holds the refusals"
    );
    // What the search runs over is real: the public ids are there, the secrets are not.
    assert!(
        logs.contains(&credential_id),
        "the log names the credential it made"
    );
    assert!(
        decision_log.contains(&client_id),
        "the decision log names the client"
    );
    // The database and its write-ahead log (recent writes may be only there).
    let store: String = ["warden.db", "warden.db-wal"]
        .iter()
        .filter_map(|name| std::fs::read(dir.path().join(name)).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect();
    assert!(store.contains(&client_id), "the store holds the account");
    for secret in &secrets {
        assert!(secret.len() >= 16, "{secret:?} is too short to search for");
        let shown: String = secret.chars().take(24).collect();
        assert!(
            !logs.contains(secret.as_str()),
            "the server log holds a secret ({shown}…)"
        );
        assert!(
            !decision_log.contains(secret.as_str()),
            "the decision log holds a secret ({shown}…)"
        );
        assert!(
            !store.contains(secret.as_str()),
            "the store holds a secret in clear ({shown}…)"
        );
    }
}
