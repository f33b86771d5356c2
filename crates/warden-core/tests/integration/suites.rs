//! Policy regression suites (#11): expectations, generated adversarial cases, coverage.
//!
//! The broken packs below have no hand-written case for their bug: the generated cases of an
//! ordinary expected allow must catch it.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use warden_core::decision::Outcome;
use warden_core::suite::{
    self, Attack, Case, Expectation, GeneratedStatus, PackDecider, RunReport, Suite,
};
use warden_core::{Pack, parse_uid};

use crate::support::{example_pack, pack_from};

const SCHEMA: &str = r#"
entity Tenant;
entity Role;
entity User in [Role] { tenant: Tenant, status?: String };
entity ServiceAccount in [Role] { tenant: Tenant, scopes: Set<String>, owner?: User, status?: String };
entity Document { tenant: Tenant };
action read appliesTo { principal: [User, ServiceAccount], resource: [Document] };
"#;
const MANIFEST: &str =
    "[tenancy]\nattribute = \"tenant\"\n[lifecycle]\nstatus_attribute = \"status\"\n";
const INACTIVE: &str = r#"@id("inactive") forbid (principal, action, resource) when { principal has status && principal.status != "active" };"#;

fn entities() -> Vec<Value> {
    let tenant = |id: &str| json!({"__entity": {"type": "Tenant", "id": id}});
    vec![
        json!({"uid": {"type": "Tenant", "id": "acme"}, "attrs": {}, "parents": []}),
        json!({"uid": {"type": "Tenant", "id": "globex"}, "attrs": {}, "parents": []}),
        json!({"uid": {"type": "Role", "id": "viewer"}, "attrs": {}, "parents": []}),
        json!({"uid": {"type": "Role", "id": "admin"}, "attrs": {}, "parents": []}),
        json!({"uid": {"type": "User", "id": "acme/carol"}, "attrs": {"tenant": tenant("acme")},
               "parents": [{"type": "Role", "id": "viewer"}]}),
        json!({"uid": {"type": "User", "id": "acme/alice"}, "attrs": {"tenant": tenant("acme")},
               "parents": [{"type": "Role", "id": "admin"}]}),
        json!({"uid": {"type": "ServiceAccount", "id": "acme/ops"},
               "attrs": {"tenant": tenant("acme"), "scopes": [], "owner": {"__entity": {"type": "User", "id": "acme/alice"}}},
               "parents": [{"type": "Role", "id": "admin"}]}),
        json!({"uid": {"type": "ServiceAccount", "id": "acme/indexer"},
               "attrs": {"tenant": tenant("acme"), "scopes": ["documents:read"]}, "parents": []}),
        json!({"uid": {"type": "Document", "id": "acme/roadmap"}, "attrs": {"tenant": tenant("acme")}, "parents": []}),
        json!({"uid": {"type": "Document", "id": "globex/roadmap"}, "attrs": {"tenant": tenant("globex")}, "parents": []}),
    ]
}

fn case(name: &str, principal: &str, resource: &str, outcome: Outcome) -> Case {
    Case {
        name: name.to_owned(),
        line: 7,
        principal: parse_uid(principal).unwrap(),
        action: parse_uid(r#"Action::"read""#).unwrap(),
        resource: parse_uid(resource).unwrap(),
        context: None,
        principal_properties: None,
        resource_properties: None,
        token_claims: None,
        expect: Expectation {
            outcome,
            policies: None,
            reason: None,
        },
        skip: BTreeSet::new(),
        skip_reason: None,
    }
}

fn carol_reads_roadmap() -> Case {
    case(
        "a viewer reads",
        r#"User::"acme/carol""#,
        r#"Document::"acme/roadmap""#,
        Outcome::Allow,
    )
}

fn run(policies: &str, cases: Vec<Case>) -> RunReport {
    let pack = pack_from(Some(SCHEMA), Some(MANIFEST), &[("p.cedar", policies)]).unwrap();
    run_pack(&pack, cases)
}

fn run_pack(pack: &Pack, cases: Vec<Case>) -> RunReport {
    let suite = Suite {
        name: "t.yaml".to_owned(),
        entities: entities(),
        entities_line: 1,
        statuses: Vec::new(),
        cases,
    };
    suite::run(pack, &[suite], &PackDecider(pack)).unwrap()
}

/// The generated cases of the first case, as (attack, variant, failed?).
fn generated(report: &RunReport) -> Vec<(Attack, String, bool)> {
    report.suites[0].cases[0]
        .generated
        .iter()
        .map(|g| (g.attack, g.variant.clone(), g.status.is_failure()))
        .collect()
}

fn failures_of(report: &RunReport, attack: Attack) -> Vec<String> {
    report.suites[0].cases[0]
        .generated
        .iter()
        .filter(|g| g.attack == attack)
        .filter_map(|g| match &g.status {
            GeneratedStatus::Failed(failure) => Some(format!(
                "{} | {}",
                failure.problems.join("; "),
                failure.explanation.summary
            )),
            _ => None,
        })
        .collect()
}

const GOOD: &str = r#"
@id("viewers-read") permit (principal in Role::"viewer", action, resource)
when { resource.tenant == principal.tenant };
"#;

#[test]
fn a_correct_pack_passes_every_generated_case() {
    let report = run(&format!("{GOOD}{INACTIVE}"), vec![carol_reads_roadmap()]);
    assert!(report.all_passed(), "{report:#?}");
    let kinds: Vec<(Attack, String, bool)> = generated(&report);
    assert_eq!(
        kinds,
        [
            (
                Attack::OtherTenant,
                "resource Document::\"acme~other/roadmap\" of Tenant::\"acme~other\"".to_owned(),
                false
            ),
            (
                Attack::RoleDrift,
                "without Role::\"viewer\"".to_owned(),
                false
            ),
            (Attack::Disabled, "status = \"disabled\"".to_owned(), false),
            (
                Attack::Deleted,
                "User::\"acme/carol\" removed from the entity data".to_owned(),
                false
            ),
            (Attack::ScopeDrift, String::new(), false),
        ]
    );
}

#[test]
fn a_wrong_expectation_fails_with_the_explanation() {
    let mut wrong = case(
        "carol reads globex",
        r#"User::"acme/carol""#,
        r#"Document::"globex/roadmap""#,
        Outcome::Allow,
    );
    wrong.expect.policies = Some(BTreeSet::from(["viewers-read".to_owned()]));
    let report = run(GOOD, vec![wrong]);
    assert!(!report.all_passed());
    let failure = report.suites[0].cases[0].failure.as_ref().unwrap();
    assert_eq!(
        failure.problems,
        [
            "expected allow, got deny (no_permit)",
            "expected determining policies [viewers-read], got []"
        ]
    );
    assert!(
        failure
            .explanation
            .summary
            .starts_with("DENY: no policy permits")
    );
    assert!(
        failure.explanation.details[0].contains("near miss: `viewers-read`"),
        "{:?}",
        failure.explanation
    );
    // A case that did not allow generates nothing.
    assert!(report.suites[0].cases[0].generated.is_empty());
}

#[test]
fn a_permit_that_forgets_the_tenant_is_caught_though_the_guard_denies() {
    let report = run(
        &format!(
            r#"@id("viewers-read") permit (principal in Role::"viewer", action, resource);{INACTIVE}"#
        ),
        vec![carol_reads_roadmap()],
    );
    assert!(!report.all_passed());
    let failures = failures_of(&report, Attack::OtherTenant);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].starts_with(
            "denied only by the tenant guard (tenant_boundary): the policies permit it through `viewers-read`"
        ),
        "{failures:?}"
    );
    assert!(
        failures[0].contains("DENY: tenant boundary"),
        "{failures:?}"
    );
    // Nothing else is wrong with the pack.
    for attack in [Attack::RoleDrift, Attack::Disabled, Attack::Deleted] {
        assert!(failures_of(&report, attack).is_empty(), "{attack:?}");
    }
}

#[test]
fn a_role_check_on_the_wrong_role_is_caught_by_role_drift() {
    // Meant to be "viewers read", written as "anyone with any role reads": the viewer role is
    // not what grants it, so removing it does not deny.
    let policies = format!(
        r#"@id("viewers-read") permit (principal, action, resource)
        when {{ principal is User && resource.tenant == principal.tenant }};{INACTIVE}"#
    );
    let report = run(&policies, vec![carol_reads_roadmap()]);
    let failures = failures_of(&report, Attack::RoleDrift);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .starts_with("expected deny, got allow (permitted): without any one of its roles"),
        "{failures:?}"
    );

    // The wrong role: the account owner's admin role checked instead of the account's own.
    let policies = format!(
        r#"@id("admin-accounts-read") permit (principal is ServiceAccount, action, resource)
        when {{ principal has owner && principal.owner in Role::"admin" && resource.tenant == principal.tenant }};{INACTIVE}"#
    );
    let ops_case = case(
        "an admin service account reads",
        r#"ServiceAccount::"acme/ops""#,
        r#"Document::"acme/roadmap""#,
        Outcome::Allow,
    );
    let report = run(&policies, vec![ops_case.clone()]);
    let failures = failures_of(&report, Attack::RoleDrift);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("ALLOW"), "{failures:?}");
    let fixed = format!(
        r#"@id("admin-accounts-read") permit (principal is ServiceAccount in Role::"admin", action, resource)
        when {{ resource.tenant == principal.tenant }};{INACTIVE}"#
    );
    assert!(run(&fixed, vec![ops_case]).all_passed());
}

#[test]
fn a_disabled_or_deleted_principal_must_be_denied() {
    // Without the lifecycle forbid, the disabled principal still reads.
    let report = run(GOOD, vec![carol_reads_roadmap()]);
    let failures = failures_of(&report, Attack::Disabled);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("a disabled principal is denied does not hold"));

    // A permit that never looks at the principal lets a deleted one through Cedar; the tenant
    // guard still denies (the principal has no tenant), and that counts as denied.
    let report = run(
        &format!(
            r#"@id("open") permit (principal, action, resource) when {{ resource.tenant == Tenant::"acme" }};{INACTIVE}"#
        ),
        vec![carol_reads_roadmap()],
    );
    assert!(failures_of(&report, Attack::Deleted).is_empty());
    assert_eq!(failures_of(&report, Attack::RoleDrift).len(), 1);
}

#[test]
fn each_scope_is_removed_in_turn() {
    let policies = format!(
        r#"@id("sa-read") permit (principal is ServiceAccount, action, resource)
        when {{ resource.tenant == principal.tenant }};{INACTIVE}"#
    );
    let sa_case = case(
        "indexer reads",
        r#"ServiceAccount::"acme/indexer""#,
        r#"Document::"acme/roadmap""#,
        Outcome::Allow,
    );
    let report = run(&policies, vec![sa_case.clone()]);
    let failures = failures_of(&report, Attack::ScopeDrift);
    assert_eq!(failures.len(), 1, "{failures:?}");
    let variants: Vec<String> = generated(&report)
        .into_iter()
        .filter(|(attack, _, _)| *attack == Attack::ScopeDrift)
        .map(|(_, variant, _)| variant)
        .collect();
    assert_eq!(variants, ["without scope \"documents:read\""]);

    let fixed = format!(
        r#"@id("sa-read") permit (principal is ServiceAccount, action, resource)
        when {{ principal.scopes.contains("documents:read") && resource.tenant == principal.tenant }};{INACTIVE}"#
    );
    assert!(run(&fixed, vec![sa_case]).all_passed());
}

#[test]
fn opting_out_skips_with_the_reason() {
    let mut skipping = carol_reads_roadmap();
    skipping.skip = BTreeSet::from([Attack::Disabled]);
    skipping.skip_reason = Some("tested elsewhere".to_owned());
    let report = run(GOOD, vec![skipping]);
    assert!(report.all_passed());
    let skipped: Vec<&GeneratedStatus> = report.suites[0].cases[0]
        .generated
        .iter()
        .filter(|g| g.attack == Attack::Disabled)
        .map(|g| &g.status)
        .collect();
    assert!(
        matches!(skipped[..], [GeneratedStatus::Skipped { reason }] if reason == "tested elsewhere")
    );
}

#[test]
fn coverage_lists_policies_never_determining_and_actions_never_exercised() {
    let report = run(&format!("{GOOD}{INACTIVE}"), vec![carol_reads_roadmap()]);
    let uncovered: Vec<String> = report
        .coverage
        .uncovered_policies()
        .map(|info| info.id.to_string())
        .collect();
    assert_eq!(uncovered, ["inactive"]);
    assert!((report.coverage.policy_percent() - 50.0).abs() < 1e-9);
    assert!((report.coverage.action_percent() - 100.0).abs() < 1e-9);

    let pack = example_pack();
    let empty = Suite {
        name: "empty.yaml".to_owned(),
        entities: Vec::new(),
        entities_line: 0,
        statuses: Vec::new(),
        cases: Vec::new(),
    };
    let report = suite::run(&pack, &[empty], &PackDecider(&pack)).unwrap();
    assert_eq!(report.coverage.policy_percent(), 0.0);
    assert_eq!(report.coverage.uncovered_actions().count(), 5);
}

#[test]
fn a_request_the_schema_refuses_is_an_invalid_suite_at_the_case_line() {
    let pack = pack_from(Some(SCHEMA), Some(MANIFEST), &[("p.cedar", GOOD)]).unwrap();
    let mut bad = carol_reads_roadmap();
    bad.action = parse_uid(r#"Action::"fly""#).unwrap();
    let suite = Suite {
        name: "t.yaml".to_owned(),
        entities: entities(),
        entities_line: 1,
        statuses: Vec::new(),
        cases: vec![bad],
    };
    let error = suite::run(&pack, &[suite], &PackDecider(&pack)).unwrap_err();
    assert_eq!(error.line, 7);
    assert!(
        error
            .to_string()
            .starts_with("t.yaml:7: case `a viewer reads`: invalid"),
        "{error}"
    );

    let suite = Suite {
        name: "t.yaml".to_owned(),
        entities: vec![json!({"uid": {"type": "Nope", "id": "x"}, "attrs": {}, "parents": []})],
        entities_line: 3,
        statuses: Vec::new(),
        cases: vec![carol_reads_roadmap()],
    };
    let error = suite::run(&pack, &[suite], &PackDecider(&pack)).unwrap_err();
    assert!(
        error.to_string().starts_with("t.yaml:3: entities:"),
        "{error}"
    );
}

#[test]
fn the_lifecycle_attribute_must_be_declared_and_optional() {
    let manifest = "[lifecycle]\nstatus_attribute = \"state\"\n";
    let error = pack_from(Some(SCHEMA), Some(manifest), &[("p.cedar", GOOD)]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("[lifecycle] status_attribute `state` is not declared on any entity type"),
        "{error}"
    );
    let required = SCHEMA.replace("status?: String", "status: String");
    let sources = warden_core::pack::PackSources {
        policy_files: vec![warden_core::pack::SourceFile::new("p.cedar", GOOD)],
        schema: Some(warden_core::pack::SchemaSource {
            file: warden_core::pack::SourceFile::new("schema.cedarschema", required),
            format: warden_core::pack::SchemaFormat::CedarSchema,
        }),
        manifest: Some(warden_core::pack::SourceFile::new("pack.toml", MANIFEST)),
    };
    let compiled = Pack::compile(&sources).unwrap();
    assert!(
        compiled
            .warnings
            .iter()
            .any(|w| w.message.contains("declare it optional")),
        "{:?}",
        compiled.warnings
    );
    assert_eq!(
        compiled.pack.lifecycle().unwrap().status_attribute,
        "status"
    );
}
