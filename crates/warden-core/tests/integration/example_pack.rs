//! The example pack decides the documents SaaS the way its policies say, in both look-alike
//! tenants. One row per behaviour; the reason code and determining policies are checked too.

use serde_json::json;
use warden_core::ReasonCode::{self, *};

use crate::support::{decide, example_entities, example_pack};

struct Case {
    principal: &'static str,
    action: &'static str,
    resource: &'static str,
    context: Option<serde_json::Value>,
    reason: ReasonCode,
    policies: &'static [&'static str],
}

fn case(
    principal: &'static str,
    action: &'static str,
    resource: &'static str,
    reason: ReasonCode,
    policies: &'static [&'static str],
) -> Case {
    Case {
        principal,
        action,
        resource,
        context: None,
        reason,
        policies,
    }
}

fn check(cases: Vec<Case>) {
    let pack = example_pack();
    let entities = example_entities(&pack);
    let mut failures = Vec::new();
    for case in cases {
        let principal = format!("User::\"{}\"", case.principal);
        let principal = if case.principal.contains("indexer") || case.principal.contains("sync") {
            format!("ServiceAccount::\"{}\"", case.principal)
        } else {
            principal
        };
        let action = format!("Action::\"{}\"", case.action);
        let decision = decide(
            &pack,
            &entities,
            &principal,
            &action,
            case.resource,
            case.context.clone(),
        );
        let policies: Vec<String> = decision
            .determining
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        let expected_allow = matches!(case.reason, Permitted | PermittedCrossTenant);
        if decision.reason != case.reason
            || decision.is_allowed() != expected_allow
            || policies != case.policies
        {
            failures.push(format!(
                "{principal} {action} {}: got {:?} {policies:?}, expected {:?} {:?}",
                case.resource, decision.reason, case.reason, case.policies
            ));
        }
        assert_eq!(decision.revision, *pack.revision());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn roles_follow_the_hierarchy_in_each_tenant() {
    let mut cases = Vec::new();
    for tenant in ["acme", "globex"] {
        let doc: &'static str =
            Box::leak(format!("Document::\"{tenant}/roadmap\"").into_boxed_str());
        let user =
            |name: &str| -> &'static str { Box::leak(format!("{tenant}/{name}").into_boxed_str()) };
        cases.extend([
            case(user("carol"), "read", doc, Permitted, &["viewers-read"]),
            case(user("bob"), "read", doc, Permitted, &["viewers-read"]),
            case(user("alice"), "read", doc, Permitted, &["viewers-read"]),
            case(user("erin"), "read", doc, NoPermit, &[]),
            case(user("carol"), "edit", doc, NoPermit, &[]),
            case(user("alice"), "delete", doc, Permitted, &["admins-manage"]),
            case(user("carol"), "delete", doc, NoPermit, &[]),
        ]);
    }
    check(cases);
}

#[test]
fn owners_edit_and_delete_their_own_documents() {
    check(vec![
        // bob owns acme/roadmap and is an editor: two permits hold.
        case(
            "acme/bob",
            "edit",
            "Document::\"acme/roadmap\"",
            Permitted,
            &["editors-edit", "owners-edit-delete"],
        ),
        case(
            "acme/bob",
            "delete",
            "Document::\"acme/roadmap\"",
            Permitted,
            &["owners-edit-delete"],
        ),
        // bob does not own the NDA.
        case(
            "acme/bob",
            "delete",
            "Document::\"acme/nda\"",
            NoPermit,
            &[],
        ),
    ]);
}

#[test]
fn restricted_documents_need_admin() {
    check(vec![
        case(
            "acme/bob",
            "read",
            "Document::\"acme/salaries\"",
            Forbidden,
            &["restricted-needs-admin"],
        ),
        case(
            "acme/carol",
            "read",
            "Document::\"acme/salaries\"",
            Forbidden,
            &["restricted-needs-admin"],
        ),
        case(
            "acme/alice",
            "read",
            "Document::\"acme/salaries\"",
            Permitted,
            &["viewers-read"],
        ),
        case(
            "acme/indexer",
            "read",
            "Document::\"acme/salaries\"",
            Forbidden,
            &["restricted-needs-admin"],
        ),
    ]);
}

#[test]
fn sharing_depends_on_the_plan() {
    check(vec![
        // acme is on pro: its admin shares, its editor shares what he owns.
        case(
            "acme/alice",
            "share",
            "Document::\"acme/roadmap\"",
            Permitted,
            &["admins-manage"],
        ),
        case(
            "acme/bob",
            "share",
            "Document::\"acme/roadmap\"",
            Permitted,
            &["owners-share"],
        ),
        case(
            "acme/carol",
            "share",
            "Document::\"acme/roadmap\"",
            NoPermit,
            &[],
        ),
        // globex is on free: the same roles cannot share.
        case(
            "globex/alice",
            "share",
            "Document::\"globex/roadmap\"",
            Forbidden,
            &["sharing-needs-paid-plan"],
        ),
        case(
            "globex/bob",
            "share",
            "Document::\"globex/roadmap\"",
            Forbidden,
            &["sharing-needs-paid-plan"],
        ),
    ]);
}

#[test]
fn service_accounts_are_limited_by_scopes() {
    check(vec![
        case(
            "acme/indexer",
            "read",
            "Document::\"acme/roadmap\"",
            Permitted,
            &["service-accounts-read"],
        ),
        case(
            "acme/indexer",
            "list",
            "Tenant::\"acme\"",
            Permitted,
            &["service-accounts-list"],
        ),
        case(
            "acme/indexer",
            "edit",
            "Document::\"acme/roadmap\"",
            NoPermit,
            &[],
        ),
        case(
            "acme/sync",
            "edit",
            "Document::\"acme/roadmap\"",
            Permitted,
            &["service-accounts-write"],
        ),
        case(
            "acme/sync",
            "delete",
            "Document::\"acme/roadmap\"",
            Forbidden,
            &["service-accounts-never-delete-or-share"],
        ),
        case(
            "acme/indexer",
            "read",
            "Document::\"globex/roadmap\"",
            NoPermit,
            &[],
        ),
    ]);
}

#[test]
fn folders_form_a_hierarchy_for_tenant_policies() {
    check(vec![
        // dave is in acme's legal group; the NDA is in contracts/2026, inside contracts.
        case(
            "acme/dave",
            "edit",
            "Document::\"acme/nda\"",
            Permitted,
            &["acme-legal-contracts"],
        ),
        // The roadmap is not in the contracts tree.
        case(
            "acme/dave",
            "edit",
            "Document::\"acme/roadmap\"",
            NoPermit,
            &[],
        ),
        // globex's dave is in globex's legal group, which acme's policy does not name.
        case(
            "globex/dave",
            "edit",
            "Document::\"globex/nda\"",
            NoPermit,
            &[],
        ),
    ]);
}

#[test]
fn listing_is_scoped_to_the_own_tenant() {
    check(vec![
        case(
            "acme/carol",
            "list",
            "Tenant::\"acme\"",
            Permitted,
            &["members-list"],
        ),
        case("acme/carol", "list", "Tenant::\"globex\"", NoPermit, &[]),
        case("acme/erin", "list", "Tenant::\"acme\"", NoPermit, &[]),
    ]);
}

#[test]
fn same_local_id_in_another_tenant_is_another_document() {
    check(vec![
        case(
            "acme/alice",
            "read",
            "Document::\"globex/roadmap\"",
            NoPermit,
            &[],
        ),
        case(
            "acme/alice",
            "delete",
            "Document::\"globex/roadmap\"",
            NoPermit,
            &[],
        ),
        case(
            "globex/alice",
            "read",
            "Document::\"acme/roadmap\"",
            NoPermit,
            &[],
        ),
        case(
            "globex/bob",
            "edit",
            "Document::\"acme/roadmap\"",
            NoPermit,
            &[],
        ),
    ]);
}

#[test]
fn cross_tenant_support_needs_a_ticket_and_is_reported() {
    let ticket = Some(json!({"support_ticket": "SUP-4711"}));
    check(vec![
        Case {
            principal: "operator/sam",
            action: "read",
            resource: "Document::\"acme/roadmap\"",
            context: ticket.clone(),
            reason: PermittedCrossTenant,
            policies: &["support-read-with-ticket"],
        },
        case(
            "operator/sam",
            "read",
            "Document::\"acme/roadmap\"",
            NoPermit,
            &[],
        ),
        Case {
            principal: "operator/sam",
            action: "read",
            resource: "Document::\"acme/salaries\"",
            context: ticket.clone(),
            reason: Forbidden,
            policies: &["restricted-needs-admin"],
        },
        Case {
            principal: "operator/sam",
            action: "edit",
            resource: "Document::\"acme/roadmap\"",
            context: ticket,
            reason: NoPermit,
            policies: &[],
        },
    ]);
    let pack = example_pack();
    let entities = example_entities(&pack);
    let decision = decide(
        &pack,
        &entities,
        "User::\"operator/sam\"",
        "Action::\"read\"",
        "Document::\"globex/roadmap\"",
        Some(json!({"support_ticket": "SUP-1"})),
    );
    let grant = decision
        .cross_tenant
        .expect("a cross-tenant grant is reported");
    assert_eq!(grant.principal_tenant.to_string(), "Tenant::\"operator\"");
    assert_eq!(grant.resource_tenant.to_string(), "Tenant::\"globex\"");
    assert_eq!(&*grant.grants[0].1, "vendor support under an open ticket");
}

#[test]
fn public_documents_are_reached_through_a_marked_permit() {
    check(vec![
        case(
            "acme/erin",
            "read",
            "Document::\"public/handbook\"",
            PermittedCrossTenant,
            &["public-documents-read"],
        ),
        case(
            "globex/carol",
            "read",
            "Document::\"public/handbook\"",
            PermittedCrossTenant,
            &["public-documents-read"],
        ),
        case(
            "acme/alice",
            "edit",
            "Document::\"public/handbook\"",
            NoPermit,
            &[],
        ),
    ]);
}

#[test]
fn unknown_principals_are_denied() {
    check(vec![case(
        "acme/mallory",
        "read",
        "Document::\"acme/roadmap\"",
        NoPermit,
        &[],
    )]);
}
