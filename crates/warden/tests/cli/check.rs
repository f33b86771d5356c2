//! `warden check`: exit 0 allow, 1 deny, 2 bad usage or input; `--json`; `--requests`.

use crate::support::{check_example, example, warden};

#[test]
fn an_allow_exits_0_and_explains() {
    let run = check_example(
        r#"User::"acme/carol""#,
        r#"Action::"read""#,
        r#"Document::"acme/roadmap""#,
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with(
        "ALLOW: User::\"acme/carol\" may perform Action::\"read\" on Document::\"acme/roadmap\".\n"
    ));
    assert!(run.stdout.contains("permitted by `viewers-read`"));
}

#[test]
fn a_deny_exits_1_and_explains() {
    let run = check_example(
        r#"User::"acme/carol""#,
        r#"Action::"read""#,
        r#"Document::"globex/roadmap""#,
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.starts_with("DENY: no policy permits"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("near miss: `viewers-read`"),
        "{}",
        run.stdout
    );
}

#[test]
fn json_has_the_contract_fields() {
    let run = check_example(
        r#"User::"operator/sam""#,
        r#"Action::"read""#,
        r#"Document::"acme/roadmap""#,
        &["--context", r#"{"support_ticket": "SUP-1"}"#, "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decision: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(decision["decision"], "allow");
    assert_eq!(decision["reason"], "permitted_cross_tenant");
    assert_eq!(decision["reasons"][0]["policy"], "support-read-with-ticket");
    assert!(
        decision["reasons"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("Operator support staff")
    );
    assert_eq!(decision["errors"], serde_json::json!([]));
    assert_eq!(decision["policy_revision"].as_str().unwrap().len(), 16);
    assert_eq!(
        decision["cross_tenant"]["grants"][0]["reason"],
        "vendor support under an open ticket"
    );

    let deny = check_example(
        r#"User::"acme/bob""#,
        r#"Action::"read""#,
        r#"Document::"acme/salaries""#,
        &["--json"],
    );
    assert_eq!(deny.code, 1);
    let decision: serde_json::Value = serde_json::from_str(&deny.stdout).unwrap();
    assert_eq!(decision["decision"], "deny");
    assert_eq!(decision["reason"], "forbidden");
    assert_eq!(decision["reasons"][0]["policy"], "restricted-needs-admin");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--principal", "alice"],
            "error: --principal: `alice` is not an entity UID",
        ),
        (
            &["--context", "{not json"],
            "error: --context: malformed JSON",
        ),
        (
            &["--context", "[1]"],
            "error: invalid context: the context must be a JSON object",
        ),
        (
            &["--action", r#"Action::"fly""#],
            "error: invalid request: request's action `Action::\"fly\"` is not declared in the schema",
        ),
    ];
    for (overrides, expected) in cases {
        let mut principal = r#"User::"acme/bob""#;
        let mut action = r#"Action::"read""#;
        let mut extra: Vec<&str> = Vec::new();
        let mut args = overrides.iter();
        while let Some(flag) = args.next() {
            let value = args.next().unwrap();
            match *flag {
                "--principal" => principal = value,
                "--action" => action = value,
                _ => extra.extend([*flag, *value]),
            }
        }
        let run = check_example(principal, action, r#"Document::"acme/roadmap""#, &extra);
        assert_eq!(run.code, 2, "{overrides:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with(expected),
            "{overrides:?}: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(!run.stderr.contains("panicked"));
    }
}

#[test]
fn missing_and_malformed_files_exit_2() {
    let policies = example("");
    let run = warden(&[
        "check",
        "--policies",
        &policies,
        "--entities",
        "nope.json",
        "--principal",
        r#"User::"a""#,
        "--action",
        r#"Action::"read""#,
        "--resource",
        r#"Document::"d""#,
    ]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr, "error: nope.json: no such file or directory\n");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[{\"uid\": 1}]").unwrap();
    let run = warden(&[
        "check",
        "--policies",
        &policies,
        "--entities",
        bad.to_str().unwrap(),
        "--principal",
        r#"User::"a""#,
        "--action",
        r#"Action::"read""#,
        "--resource",
        r#"Document::"d""#,
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with(&format!("error: {}: ", bad.display())),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1);
}

#[test]
fn a_single_cedar_file_with_a_schema_validates_requests() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.cedar");
    std::fs::write(
        &policy,
        "@id(\"p\") permit (principal, action == Action::\"read\", resource);",
    )
    .unwrap();
    let schema = dir.path().join("s.cedarschema");
    std::fs::write(
        &schema,
        "entity User; entity Doc; action read appliesTo { principal: User, resource: Doc };",
    )
    .unwrap();
    let base = ["check", "--policies", policy.to_str().unwrap()];
    let allowed = warden(
        &[
            &base[..],
            &[
                "--principal",
                r#"User::"a""#,
                "--action",
                r#"Action::"read""#,
                "--resource",
                r#"Doc::"d""#,
            ],
        ]
        .concat(),
    );
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    let with_schema = [&base[..], &["--schema", schema.to_str().unwrap()]].concat();
    let wrong_type = warden(
        &[
            &with_schema[..],
            &[
                "--principal",
                r#"Doc::"a""#,
                "--action",
                r#"Action::"read""#,
                "--resource",
                r#"Doc::"d""#,
            ],
        ]
        .concat(),
    );
    assert_eq!(wrong_type.code, 2, "{}", wrong_type.stdout);
    assert!(
        wrong_type.stderr.starts_with("error: invalid request:"),
        "{}",
        wrong_type.stderr
    );
}

#[test]
fn requests_file_answers_each_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let requests = dir.path().join("requests.jsonl");
    std::fs::write(
        &requests,
        [
            r#"{"principal": {"type": "User", "id": "acme/carol"}, "action": {"type": "Action", "id": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}}"#,
            r#"{"principal": "User::\"acme/carol\"", "action": "Action::\"read\"", "resource": "Document::\"globex/roadmap\""}"#,
            r#"{"principal": "User::\"operator/sam\"", "action": "Action::\"read\"", "resource": "Document::\"acme/roadmap\"", "context": {"support_ticket": "SUP-2"}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let run = warden(&[
        "check",
        "--policies",
        &example(""),
        "--entities",
        &example("entities.json"),
        "--requests",
        requests.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let decisions: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcomes: Vec<&str> = decisions
        .iter()
        .map(|d| d["decision"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["allow", "deny", "allow"]);

    std::fs::write(
        &requests,
        "{\"principal\": \"User::\\\"acme/carol\\\"\"}\nnot json\n",
    )
    .unwrap();
    let run = warden(&[
        "check",
        "--policies",
        &example(""),
        "--requests",
        requests.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["line"], 1);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("missing field `action`")
    );
    assert_eq!(lines[1]["line"], 2);
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON")
    );
}
