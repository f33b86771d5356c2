//! Issue #26: one set of requests through `warden serve`, `warden check` and `warden test`
//! gets identical decisions and reasons, because all three run the service's one pipeline.
//! The requests cover what once only the server knew: a principal the data does not know
//! (with properties), a principal the store disabled, a resource whose properties name another
//! tenant than its id, and a token attribute that overrides known data (`claim_attributes`).

use std::path::Path;
use std::time::SystemTime;

use serde_json::{Value, json};
use warden_testkit::{TestKey, claims_at, jwks};

use crate::support::{Served, admin_init, copy_pack, free_port, repo_root, wait_ready, warden};

const ISSUER: &str = "https://idp.test";

/// One request as each entry point takes it.
struct Request {
    name: &'static str,
    /// `Some` for a token principal (claims), else the named principal.
    claims: Option<Value>,
    principal: &'static str,
    principal_properties: Option<Value>,
    action: &'static str,
    resource: &'static str,
    resource_properties: Option<Value>,
}

fn requests() -> Vec<Request> {
    let named = |name, principal, action, resource| Request {
        name,
        claims: None,
        principal,
        principal_properties: None,
        action,
        resource,
        resource_properties: None,
    };
    vec![
        named("a viewer reads", "acme/carol", "read", "acme/roadmap"),
        named(
            "another tenant's document",
            "acme/carol",
            "read",
            "globex/roadmap",
        ),
        named("a disabled principal", "acme/bob", "read", "acme/roadmap"),
        Request {
            principal_properties: Some(
                json!({"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}),
            ),
            ..named("an unknown principal", "acme/zed", "read", "acme/roadmap")
        },
        Request {
            resource_properties: Some(json!({
                "tenant": {"__entity": {"type": "Tenant", "id": "globex"}},
                "owner": {"__entity": {"type": "User", "id": "acme/carol"}},
                "classification": "internal",
            })),
            ..named(
                "a tenant prefix mismatch",
                "acme/carol",
                "read",
                "acme/draft",
            )
        },
        Request {
            claims: Some(
                json!({"sub": "alice", "org_id": "acme", "email": "alice@blocked.example"}),
            ),
            ..named("a claim override", "acme/alice", "share", "acme/roadmap")
        },
        Request {
            claims: Some(json!({"sub": "alice", "org_id": "acme", "email": "alice@acme.example"})),
            ..named(
                "the same token without the blocked address",
                "acme/alice",
                "share",
                "acme/roadmap",
            )
        },
    ]
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(key: &TestKey, claims: &Value) -> String {
    let mut full = claims_at(ISSUER, now());
    for (name, value) in claims.as_object().unwrap() {
        full[name] = value.clone();
    }
    key.token(&full)
}

/// POSTs JSON to the server on loopback; returns the status and the body.
fn post(url: &str, bearer: Option<&str>, body: &Value) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new().post(url).json(body);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// The server's answer: `(decision, reason)`.
fn ask_server(port: u16, key: &TestKey, request: &Request) -> (String, String) {
    match &request.claims {
        Some(claims) => {
            let (_, body) = post(
                &format!("http://127.0.0.1:{port}/v1/check"),
                Some(&token(key, claims)),
                &json!({"action": request.action, "resource": {"type": "Document", "id": request.resource}}),
            );
            (
                body["decision"].as_str().unwrap().to_owned(),
                body["reason"].as_str().unwrap().to_owned(),
            )
        }
        None => {
            let mut subject = json!({"type": "User", "id": request.principal});
            if let Some(properties) = &request.principal_properties {
                subject["properties"] = properties.clone();
            }
            let mut resource = json!({"type": "Document", "id": request.resource});
            if let Some(properties) = &request.resource_properties {
                resource["properties"] = properties.clone();
            }
            let (_, body) = post(
                &format!("http://127.0.0.1:{port}/access/v1/evaluation"),
                None,
                &json!({"subject": subject, "action": {"name": request.action}, "resource": resource}),
            );
            (
                if body["decision"] == true {
                    "allow"
                } else {
                    "deny"
                }
                .to_owned(),
                body["context"]["reason"].as_str().unwrap().to_owned(),
            )
        }
    }
}

/// `warden check --config … --requests`: one JSON line per request.
fn ask_check(config: &str, key: &TestKey, dir: &Path) -> Vec<(String, String)> {
    let lines: Vec<String> = requests()
        .iter()
        .map(|request| {
            let mut line = json!({
                "action": format!("Action::\"{}\"", request.action),
                "resource": {"type": "Document", "id": request.resource},
            });
            match &request.claims {
                Some(claims) => line["token"] = json!(token(key, claims)),
                None => line["principal"] = json!({"type": "User", "id": request.principal}),
            }
            if let Some(properties) = &request.principal_properties {
                line["principal_properties"] = properties.clone();
            }
            if let Some(properties) = &request.resource_properties {
                line["resource_properties"] = properties.clone();
            }
            line.to_string()
        })
        .collect();
    let file = dir.join("requests.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let run = warden(&[
        "check",
        "--config",
        config,
        "--requests",
        file.to_str().unwrap(),
    ]);
    run.stdout
        .lines()
        .map(|line| {
            let answer: Value = serde_json::from_str(line).unwrap();
            let decision = answer["decision"].as_str().unwrap_or("deny").to_owned();
            (decision, answer["reason"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// A suite whose cases expect what the server answered; `warden test` passes only if it
/// decides every case the same way, reason included.
fn suite_text(answers: &[(String, String)]) -> String {
    let mut text = String::from(
        "entities:\n  - ../entities.json\nstatuses:\n  'User::\"acme/bob\"': disabled\ncases:\n",
    );
    for (request, (decision, reason)) in requests().iter().zip(answers) {
        text.push_str(&format!("  - name: {}\n", request.name));
        text.push_str(&format!(
            "    principal: 'User::\"{}\"'\n    action: 'Action::\"{}\"'\n    resource: 'Document::\"{}\"'\n",
            request.principal, request.action, request.resource
        ));
        if let Some(claims) = &request.claims {
            let mut full = claims.clone();
            full["iss"] = json!(ISSUER);
            text.push_str(&format!("    token_claims: {full}\n"));
        }
        if let Some(properties) = &request.principal_properties {
            text.push_str(&format!("    principal_properties: {properties}\n"));
        }
        if let Some(properties) = &request.resource_properties {
            text.push_str(&format!("    resource_properties: {properties}\n"));
        }
        text.push_str(&format!("    expect: {decision}\n    reason: {reason}\n"));
        if decision == "allow" {
            text.push_str("    adversarial:\n      skip: [other_tenant, role_drift, disabled, deleted, scope_drift]\n      reason: this suite compares entry points, the example suites cover the invariants\n");
        }
    }
    text
}

#[test]
fn serve_check_and_test_decide_alike() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    copy_pack(&repo_root().join("examples/saas"), &pack);
    std::fs::remove_dir_all(pack.join("tests")).unwrap();
    std::fs::create_dir(pack.join("tests")).unwrap();
    std::fs::write(
        pack.join("blocked.cedar"),
        "@id(\"blocked-domain\")\n@description(\"Nobody with an address at blocked.example shares\")\nforbid (principal is User, action == Action::\"share\", resource) when { principal has email && principal.email like \"*@blocked.example\" };\n",
    )
    .unwrap();
    let key = TestKey::rsa("k1");
    std::fs::write(dir.path().join("jwks.json"), jwks(&[&key])).unwrap();
    let port = free_port();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[policy]\ndir = \"pack\"\nentities_file = \"pack/entities.json\"\nwatch = false\n[storage]\nurl = \"sqlite://warden.db\"\n[peps]\nallow_unauthenticated = true\n[principals]\nclaim_attributes = [\"email\"]\n[[issuers]]\nissuer = {ISSUER:?}\naudiences = [\"warden\"]\njwks_file = \"jwks.json\"\nalgorithms = [\"RS256\"]\n[issuers.claims]\ntenant = \"org_id\"\nroles = \"roles\"\n[issuers.claims.attributes]\nemail = {{ claim = \"email\", type = \"string\" }}\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let secret = admin_init(&config);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--config", &config])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _served = Served {
        child,
        port,
        config: config.clone(),
    };
    wait_ready(port);
    let (status, body) = post(
        &format!("http://127.0.0.1:{port}/v1/admin/tenants/acme/principals/status"),
        Some(&secret),
        &json!({"principal": "User::\"bob\"", "status": "disabled"}),
    );
    assert_eq!(status, 200, "{body}");

    let served: Vec<(String, String)> = requests()
        .iter()
        .map(|request| ask_server(port, &key, request))
        .collect();
    // The requests are chosen so that each rule shows.
    let reasons: Vec<&str> = served.iter().map(|(_, reason)| reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "permitted",
            "no_permit",
            "principal_disabled",
            "no_permit",
            "invalid_request",
            "forbidden",
            "permitted"
        ],
        "{served:?}"
    );

    let checked = ask_check(&config, &key, dir.path());
    assert_eq!(checked, served, "warden check decides as the server does");

    std::fs::write(pack.join("tests/same.yaml"), suite_text(&served)).unwrap();
    let run = warden(&["test", pack.to_str().unwrap(), "--config", &config]);
    assert_eq!(
        run.code, 0,
        "warden test decides as the server does:\n{}{}",
        run.stdout, run.stderr
    );
}
