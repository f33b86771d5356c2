//! `warden test` (#11): exit 0 all passed, 1 a failure or low coverage, 2 an invalid suite with
//! its file and line; text and JUnit output.

use std::path::Path;

use crate::support::{example, warden};

const SCHEMA: &str = r#"
entity Tenant;
entity Role;
entity User in [Role] { tenant: Tenant, status?: String };
entity Document { tenant: Tenant };
action read appliesTo { principal: [User], resource: [Document] };
"#;
const MANIFEST: &str =
    "[tenancy]\nattribute = \"tenant\"\n[lifecycle]\nstatus_attribute = \"status\"\n";
const INACTIVE: &str = "@id(\"inactive\")\nforbid (principal, action, resource) when { principal has status && principal.status != \"active\" };\n";
const ENTITIES: &str = r#"[
  {"uid": {"type": "Tenant", "id": "acme"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Role", "id": "viewer"}, "attrs": {}, "parents": []},
  {"uid": {"type": "User", "id": "acme/carol"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}, "parents": [{"type": "Role", "id": "viewer"}]},
  {"uid": {"type": "Document", "id": "acme/roadmap"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}, "parents": []}
]"#;
const SUITE: &str = r#"entities: ../entities.json
cases:
  - name: a viewer reads
    principal: User::"acme/carol"
    action: Action::"read"
    resource: Document::"acme/roadmap"
    expect: allow
"#;
const GOOD_POLICY: &str = "@id(\"viewers-read\")\npermit (principal in Role::\"viewer\", action, resource) when { resource.tenant == principal.tenant };\n";

/// A pack directory with the small schema, the given policy and suite files.
fn pack_dir(policy: &str, suites: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("schema.cedarschema", SCHEMA);
    write("pack.toml", MANIFEST);
    write("policies.cedar", &format!("{policy}{INACTIVE}"));
    write("entities.json", ENTITIES);
    for (name, text) in suites {
        write(&format!("tests/{name}"), text);
    }
    dir
}

fn test_dir(dir: &Path, extra: &[&str]) -> crate::support::Run {
    let path = dir.display().to_string();
    let mut args = vec!["test", path.as_str()];
    args.extend_from_slice(extra);
    warden(&args)
}

#[test]
fn the_example_suite_passes_with_full_coverage() {
    let run = warden(&["test", &example(""), "--min-coverage", "100"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("policies made determining: 16/16 (100.0%)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("schema actions exercised: 5/5 (100.0%)")
    );
    assert!(
        run.stdout
            .contains("test result: ok. cases: 21 passed, 0 failed")
    );
    assert!(
        run.stdout
            .contains("vendor support crosses into every tenant by design")
    );
}

#[test]
fn a_passing_suite_exits_0() {
    let dir = pack_dir(GOOD_POLICY, &[("reads.yaml", SUITE)]);
    let run = test_dir(dir.path(), &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("  ok    a viewer reads\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("  other_tenant: another tenant's resource")
    );
}

#[test]
fn a_wrong_expectation_fails_with_the_explanation() {
    let suite = SUITE.replace("expect: allow", "expect: deny\n    reason: forbidden");
    let dir = pack_dir(GOOD_POLICY, &[("reads.yaml", &suite)]);
    let run = test_dir(dir.path(), &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("  FAIL  a viewer reads (") && run.stdout.contains("reads.yaml:3)\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("        expected deny, got allow (permitted)\n")
    );
    assert!(
        run.stdout
            .contains("        expected reason forbidden, got permitted\n")
    );
    assert!(run.stdout.contains(
        "        ALLOW: User::\"acme/carol\" may perform Action::\"read\" on Document::\"acme/roadmap\".\n          - permitted by `viewers-read`"
    ), "{}", run.stdout);
    assert!(run.stdout.contains("test result: FAILED."));
}

#[test]
fn a_permit_that_forgets_the_tenant_fails_through_a_generated_case() {
    let forgetful =
        "@id(\"viewers-read\")\npermit (principal in Role::\"viewer\", action, resource);\n";
    let dir = pack_dir(forgetful, &[("reads.yaml", SUITE)]);
    let run = test_dir(dir.path(), &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    // The hand-written case passes; the generated one fails and says why.
    assert!(
        run.stdout.contains("  ok    a viewer reads\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(
        "    FAIL  a viewer reads: resource Document::\"acme~other/roadmap\" of Tenant::\"acme~other\""
    ), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("denied only by the tenant guard (tenant_boundary)")
    );
    assert!(run.stdout.contains("DENY: tenant boundary"));
}

#[test]
fn junit_reports_generated_failures() {
    let forgetful =
        "@id(\"viewers-read\")\npermit (principal in Role::\"viewer\", action, resource);\n";
    let dir = pack_dir(forgetful, &[("reads.yaml", SUITE)]);
    let run = test_dir(dir.path(), &["--format", "junit", "--min-coverage", "100"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"warden test\""
    ));
    assert!(
        run.stdout.contains("reads.yaml (adversarial)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("name=\"a viewer reads / other_tenant: resource Document::&quot;acme~other/roadmap&quot;"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("<failure message=\"denied only by the tenant guard")
    );
    // `inactive` is never determining in a hand-written case: coverage 50%.
    assert!(
        run.stdout.contains(
            "<failure message=\"policy coverage 50.0% is below 100.0%\">never determining: inactive"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn coverage_below_the_minimum_fails() {
    let dir = pack_dir(GOOD_POLICY, &[("reads.yaml", SUITE)]);
    let run = test_dir(dir.path(), &["--min-coverage", "75"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("    never determining: `inactive` (policies.cedar:"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("  minimum 75.0%: NOT MET"));
    assert_eq!(test_dir(dir.path(), &["--min-coverage", "50"]).code, 0);
}

#[test]
fn malformed_suites_are_reported_with_file_and_line() {
    let cases = [
        (
            SUITE.replace(
                "    expect: allow",
                "    expect: allow\n    expected: allow",
            ),
            "tests/bad.yaml:8:5: unknown key `expected` in a case",
        ),
        (
            SUITE.replace("User::\"acme/carol\"", "acme/carol"),
            "tests/bad.yaml:4:16: `principal`: `acme/carol` is not an entity UID",
        ),
        (
            SUITE.replace("cases:", "cases: [").to_owned(),
            "tests/bad.yaml:",
        ),
        (
            SUITE.replace("Action::\"read\"", "Action::\"fly\""),
            "tests/bad.yaml:3: case `a viewer reads`: invalid",
        ),
        (
            SUITE.replace("../entities.json", "../missing.json"),
            "tests/bad.yaml:1:11: ",
        ),
    ];
    for (suite, expected) in cases {
        let dir = pack_dir(GOOD_POLICY, &[("bad.yaml", &suite)]);
        let run = test_dir(dir.path(), &[]);
        assert_eq!(run.code, 2, "{suite}\n{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
}

#[test]
fn a_directory_without_suites_is_bad_usage() {
    let dir = pack_dir(GOOD_POLICY, &[]);
    let run = test_dir(dir.path(), &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no test suites"), "{}", run.stderr);
}

#[test]
fn policies_may_live_apart_from_the_suites() {
    let pack = pack_dir(GOOD_POLICY, &[]);
    let suites = tempfile::tempdir().unwrap();
    std::fs::create_dir(suites.path().join("tests")).unwrap();
    let entities = pack.path().join("entities.json").display().to_string();
    std::fs::write(
        suites.path().join("tests/reads.yml"),
        SUITE.replace("../entities.json", &entities),
    )
    .unwrap();
    let policies = pack.path().display().to_string();
    let run = test_dir(suites.path(), &["--policies", &policies]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("reads.yml\n  ok    a viewer reads\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn inline_entities_are_checked_where_they_are_written() {
    let suite = SUITE.replace(
        "entities: ../entities.json\n",
        "entities:\n  - ../entities.json\n  - uid: frank\n    attrs: {}\n",
    );
    let dir = pack_dir(GOOD_POLICY, &[("bad.yaml", &suite)]);
    let run = test_dir(dir.path(), &[]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("tests/bad.yaml:3:5: an inline entity needs a `uid`"),
        "{}",
        run.stderr
    );
}

/// Compares output people read with `tests/cli/snapshots/NAME`; `UPDATE_EXPECT=1 cargo test -p
/// warden --test cli` rewrites the snapshots; review the diff.
fn check_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cli/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(actual, expected, "run with UPDATE_EXPECT=1 to accept");
}

/// The first line names the revision, which changes with every edit of the pack.
fn without_revision(stdout: &str) -> String {
    let first = stdout.lines().next().unwrap();
    let name = first.split(", revision ").next().unwrap();
    stdout.replacen(first, &format!("{name}, revision <revision>"), 1)
}

#[test]
fn the_example_report_matches_its_snapshot() {
    let run = warden(&["test", "examples/saas"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    check_snapshot("test_example.txt", &without_revision(&run.stdout));
}

#[test]
fn a_failing_report_matches_its_snapshot() {
    let forgetful =
        "@id(\"viewers-read\")\npermit (principal in Role::\"viewer\", action, resource);\n";
    let suite = format!(
        "{SUITE}  - name: a viewer is refused\n    principal: User::\"acme/carol\"\n    action: Action::\"read\"\n    resource: Document::\"acme/roadmap\"\n    expect: deny\n"
    );
    let dir = pack_dir(forgetful, &[("reads.yaml", &suite)]);
    let run = test_dir(dir.path(), &["--min-coverage", "100"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let shown = without_revision(&run.stdout).replace(&dir.path().display().to_string(), "<dir>");
    check_snapshot("test_failing.txt", &shown);
}
