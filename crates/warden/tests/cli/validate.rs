//! `warden validate`: exit 0 valid, 1 invalid, 2 usage error.

use crate::support::{example, repo_root, warden};

#[test]
fn the_example_pack_is_valid_and_says_it_is_multi_tenant() {
    let run = warden(&["validate", "--policies", &example("")]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("valid: pack saas-documents, 16 policies, revision "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("tenancy: on"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("lifecycle: a principal whose `status` is not \"active\" is disabled"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_invalid_pack_exits_1_and_lists_every_error() {
    let broken = repo_root().join("crates/warden-core/tests/fixtures/broken_pack");
    let run = warden(&["validate", "--policies", broken.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let errors: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(": error: "))
        .collect();
    assert_eq!(errors.len(), 3, "{}", run.stdout);
    assert!(
        run.stdout.ends_with("invalid: 3 error(s)\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_single_file_without_tenancy_is_plain_cedar() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.cedar");
    std::fs::write(&file, "permit (principal, action, resource);").unwrap();
    let run = warden(&["validate", "--policies", file.to_str().unwrap()]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("one.cedar:1:1: warning: policy has no @id"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("tenancy: off"), "{}", run.stdout);
}

#[test]
fn json_output_lists_policies_and_diagnostics() {
    let run = warden(&["validate", "--policies", &example(""), "--json"]);
    assert_eq!(run.code, 0);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["pack"]["policies"].as_array().unwrap().len(), 16);
    assert_eq!(report["pack"]["tenancy"]["attribute"], "tenant");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(warden(&["validate"]).code, 2);
    let missing = warden(&["validate", "--policies", "does/not/exist"]);
    assert_eq!(missing.code, 2);
    assert_eq!(
        missing.stderr,
        "error: does/not/exist: no such file or directory\n"
    );
    assert_eq!(warden(&["no-such-verb"]).code, 2);
}
