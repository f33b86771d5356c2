//! Decisions explained in plain words: the permits of an allow, the forbid of a deny, the
//! tenant guard, near misses of a default deny, and evaluation errors.

use serde_json::json;
use warden_core::{ReasonCode, explain};

use crate::support::{example_entities, example_pack, pack_from, request};

fn explained(
    principal: &str,
    action: &str,
    resource: &str,
    context: Option<serde_json::Value>,
) -> (warden_core::Decision, warden_core::Explanation) {
    let pack = example_pack();
    let entities = example_entities(&pack);
    let request = request(&pack, principal, action, resource, context);
    let decision = pack.decide(&request, &entities);
    let explanation = explain(&pack, &request, &entities, &decision);
    (decision, explanation)
}

#[test]
fn an_allow_names_its_permits() {
    let (_, explanation) = explained(
        r#"User::"acme/carol""#,
        r#"Action::"read""#,
        r#"Document::"acme/roadmap""#,
        None,
    );
    assert_eq!(
        explanation.to_string(),
        "ALLOW: User::\"acme/carol\" may perform Action::\"read\" on Document::\"acme/roadmap\".\n  \
         - permitted by `viewers-read` (Viewers, editors and admins may read their tenant's documents)\n"
    );
}

#[test]
fn a_forbid_is_named() {
    let (_, explanation) = explained(
        r#"User::"acme/bob""#,
        r#"Action::"read""#,
        r#"Document::"acme/salaries""#,
        None,
    );
    assert!(
        explanation
            .summary
            .starts_with("DENY: User::\"acme/bob\" may not perform"),
        "{explanation}"
    );
    assert_eq!(
        explanation.details,
        ["forbidden by `restricted-needs-admin` (Restricted documents are for tenant admins only)"]
    );
}

#[test]
fn a_default_deny_lists_the_near_misses() {
    let (decision, explanation) = explained(
        r#"User::"acme/carol""#,
        r#"Action::"delete""#,
        r#"Document::"acme/roadmap""#,
        None,
    );
    assert_eq!(decision.reason, ReasonCode::NoPermit);
    assert_eq!(
        explanation.summary,
        "DENY: no policy permits Action::\"delete\" on Document::\"acme/roadmap\" for User::\"acme/carol\"."
    );
    let near: Vec<String> = explanation
        .near_misses
        .iter()
        .map(|p| p.id.to_string())
        .collect();
    // carol is a User and the roadmap a Document: the owner rule's scope matched, its
    // condition (owner == principal) did not. admins-manage needs Role::"admin": no match.
    assert_eq!(near, ["owners-edit-delete"]);
}

#[test]
fn a_cross_tenant_grant_is_explained_with_its_reason() {
    let (_, explanation) = explained(
        r#"User::"operator/sam""#,
        r#"Action::"read""#,
        r#"Document::"acme/roadmap""#,
        Some(json!({"support_ticket": "SUP-9"})),
    );
    assert!(
        explanation.details.iter().any(|d| d
            .contains("crosses from Tenant::\"operator\" to Tenant::\"acme\"")
            && d.contains("vendor support under an open ticket")),
        "{explanation}"
    );
}

#[test]
fn a_tenant_boundary_denial_says_so() {
    let pack = pack_from(
        Some("entity Tenant; entity User { tenant: Tenant }; entity Doc { tenant: Tenant }; action read appliesTo { principal: User, resource: Doc };"),
        Some("[tenancy]\nattribute = \"tenant\""),
        &[("p.cedar", "@id(\"sloppy\") @description(\"Anyone reads anything\") permit (principal, action, resource);")],
    )
    .unwrap();
    let entities = pack
        .parse_entities(r#"[
            {"uid": {"type": "User", "id": "acme/a"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}, "parents": []},
            {"uid": {"type": "Doc", "id": "globex/d"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "globex"}}}, "parents": []}
        ]"#)
        .unwrap();
    let request = request(
        &pack,
        r#"User::"acme/a""#,
        r#"Action::"read""#,
        r#"Doc::"globex/d""#,
        None,
    );
    let decision = pack.decide(&request, &entities);
    let explanation = explain(&pack, &request, &entities, &decision);
    assert_eq!(
        explanation.to_string(),
        "DENY: tenant boundary: User::\"acme/a\" of Tenant::\"acme\" may not reach Doc::\"globex/d\" of Tenant::\"globex\".\n  \
         - Cedar alone would permit it through `sloppy` (Anyone reads anything)\n  \
         - policy `sloppy` is not marked @cross_tenant(\"reason\"), so it cannot cross tenants\n"
    );
}

/// Without a schema nothing stops a policy from reading an attribute that is not there; the
/// policy errors, Cedar skips it, and the decision is a deny that lists the error.
#[test]
fn an_evaluation_error_denies_and_is_listed() {
    let pack = pack_from(
        None,
        None,
        &[(
            "p.cedar",
            "@id(\"by-level\") permit (principal, action, resource) when { principal.level > 3 };",
        )],
    )
    .unwrap();
    let entities = pack
        .parse_entities(r#"[{"uid": {"type": "User", "id": "a"}, "attrs": {}, "parents": []}]"#)
        .unwrap();
    let request = request(
        &pack,
        r#"User::"a""#,
        r#"Action::"read""#,
        r#"Doc::"d""#,
        None,
    );
    let decision = pack.decide(&request, &entities);
    assert!(!decision.is_allowed());
    assert_eq!(decision.reason, ReasonCode::EvaluationError);
    assert_eq!(decision.errors.len(), 1);
    assert_eq!(decision.errors[0].policy.to_string(), "by-level");
    assert!(
        decision.errors[0].message.contains("level"),
        "{}",
        decision.errors[0].message
    );
    let explanation = explain(&pack, &request, &entities, &decision);
    assert!(
        explanation
            .details
            .iter()
            .any(|d| d.starts_with("policy `by-level` could not be evaluated and was skipped")),
        "{explanation}"
    );
}
