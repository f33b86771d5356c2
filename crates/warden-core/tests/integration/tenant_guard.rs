//! The tenant guard holds outside every policy: a sloppy permit cannot cross tenants, a
//! missing tenant is a deny, only `@cross_tenant` permits cross, and a pack without tenancy
//! is plain Cedar.

use warden_core::ReasonCode;
use warden_core::cedar_policy::Entities;
use warden_core::tenant_guard::{MissingTenant, Side, TenantViolation};

use crate::support::{decide, pack_from};

const SCHEMA: &str = r#"
entity Tenant;
entity Role;
entity User in [Role] { tenant: Tenant };
entity Doc { tenant: Tenant };
action read, write appliesTo { principal: [User], resource: [Doc, Tenant] };
"#;

const TENANCY: &str = "[tenancy]\nattribute = \"tenant\"\n";

/// A permit that forgets the tenant condition entirely.
const SLOPPY: &str = r#"
@id("sloppy-read")
permit (principal in Role::"reader", action == Action::"read", resource);
"#;

const ENTITIES: &str = r#"[
  {"uid": {"type": "Tenant", "id": "acme"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Tenant", "id": "globex"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Role", "id": "reader"}, "attrs": {}, "parents": []},
  {"uid": {"type": "User", "id": "acme/alice"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}, "parents": [{"type": "Role", "id": "reader"}]},
  {"uid": {"type": "Doc", "id": "acme/d1"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}, "parents": []},
  {"uid": {"type": "Doc", "id": "globex/d1"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "globex"}}}, "parents": []}
]"#;

fn guarded(policies: &str) -> (warden_core::Pack, Entities) {
    let pack = pack_from(Some(SCHEMA), Some(TENANCY), &[("p.cedar", policies)]).unwrap();
    let entities = pack.parse_entities(ENTITIES).unwrap();
    (pack, entities)
}

#[test]
fn a_permit_that_forgets_the_tenant_cannot_cross_it() {
    let (pack, entities) = guarded(SLOPPY);
    let own = decide(
        &pack,
        &entities,
        r#"User::"acme/alice""#,
        r#"Action::"read""#,
        r#"Doc::"acme/d1""#,
        None,
    );
    assert!(own.is_allowed());
    assert_eq!(own.reason, ReasonCode::Permitted);

    let other = decide(
        &pack,
        &entities,
        r#"User::"acme/alice""#,
        r#"Action::"read""#,
        r#"Doc::"globex/d1""#,
        None,
    );
    assert!(!other.is_allowed());
    assert_eq!(other.reason, ReasonCode::TenantBoundary);
    // The permit Cedar used is still reported, so the author can fix it.
    assert_eq!(other.determining[0].id.to_string(), "sloppy-read");
    match other.tenant_violation {
        Some(TenantViolation::Boundary {
            principal_tenant,
            resource_tenant,
            unmarked_permits,
        }) => {
            assert_eq!(principal_tenant.to_string(), r#"Tenant::"acme""#);
            assert_eq!(resource_tenant.to_string(), r#"Tenant::"globex""#);
            assert_eq!(unmarked_permits.len(), 1);
        }
        other => panic!("expected a boundary violation, got {other:?}"),
    }
}

#[test]
fn a_tenant_entity_is_its_own_tenant() {
    let (pack, entities) = guarded(SLOPPY);
    let own = decide(
        &pack,
        &entities,
        r#"User::"acme/alice""#,
        r#"Action::"read""#,
        r#"Tenant::"acme""#,
        None,
    );
    assert_eq!(own.reason, ReasonCode::Permitted);
    let other = decide(
        &pack,
        &entities,
        r#"User::"acme/alice""#,
        r#"Action::"read""#,
        r#"Tenant::"globex""#,
        None,
    );
    assert_eq!(other.reason, ReasonCode::TenantBoundary);
}

#[test]
fn only_cross_tenant_permits_cross_and_every_one_must_be_marked() {
    let marked = r#"
        @id("support")
        @cross_tenant("vendor support")
        permit (principal in Role::"reader", action == Action::"read", resource);
    "#;
    let (pack, entities) = guarded(marked);
    let decision = decide(
        &pack,
        &entities,
        r#"User::"acme/alice""#,
        r#"Action::"read""#,
        r#"Doc::"globex/d1""#,
        None,
    );
    assert!(decision.is_allowed());
    assert_eq!(decision.reason, ReasonCode::PermittedCrossTenant);
    let grant = decision.cross_tenant.unwrap();
    assert_eq!(grant.grants[0].0.to_string(), "support");
    assert_eq!(&*grant.grants[0].1, "vendor support");

    // A marked and an unmarked permit both hold: the unmarked one taints the allow.
    let both = format!("{marked}\n{SLOPPY}");
    let (pack, entities) = guarded(&both);
    let decision = decide(
        &pack,
        &entities,
        r#"User::"acme/alice""#,
        r#"Action::"read""#,
        r#"Doc::"globex/d1""#,
        None,
    );
    assert_eq!(decision.reason, ReasonCode::TenantBoundary);
    match decision.tenant_violation {
        Some(TenantViolation::Boundary {
            unmarked_permits, ..
        }) => {
            assert_eq!(
                unmarked_permits
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
                ["sloppy-read"]
            );
        }
        other => panic!("expected a boundary violation, got {other:?}"),
    }
}

#[test]
fn the_guard_never_turns_a_deny_into_an_allow() {
    let policies = r#"
        @id("support") @cross_tenant("vendor support")
        permit (principal in Role::"reader", action, resource);
        @id("no-writes") forbid (principal, action == Action::"write", resource);
    "#;
    let (pack, entities) = guarded(policies);
    let decision = decide(
        &pack,
        &entities,
        r#"User::"acme/alice""#,
        r#"Action::"write""#,
        r#"Doc::"globex/d1""#,
        None,
    );
    assert_eq!(decision.reason, ReasonCode::Forbidden);
    let decision = decide(
        &pack,
        &entities,
        r#"User::"acme/alice""#,
        r#"Action::"write""#,
        r#"Doc::"acme/d1""#,
        None,
    );
    assert_eq!(decision.reason, ReasonCode::Forbidden);
}

#[test]
fn a_pack_without_tenancy_is_plain_cedar() {
    let pack = pack_from(Some(SCHEMA), None, &[("p.cedar", SLOPPY)]).unwrap();
    let entities = pack.parse_entities(ENTITIES).unwrap();
    assert!(pack.tenancy().is_none());
    let decision = decide(
        &pack,
        &entities,
        r#"User::"acme/alice""#,
        r#"Action::"read""#,
        r#"Doc::"globex/d1""#,
        None,
    );
    assert!(
        decision.is_allowed(),
        "without [tenancy] the pack decides exactly as Cedar"
    );
}

/// Without a schema, entities may lack the attribute or carry the wrong type: both deny.
#[test]
fn a_missing_or_malformed_tenant_is_a_deny() {
    let pack = pack_from(
        None,
        Some(TENANCY),
        &[(
            "p.cedar",
            "@id(\"open\") permit (principal, action, resource);",
        )],
    )
    .unwrap();
    let entities = pack
        .parse_entities(
            r#"[
            {"uid": {"type": "User", "id": "alice"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}, "parents": []},
            {"uid": {"type": "User", "id": "stringly"}, "attrs": {"tenant": "acme"}, "parents": []},
            {"uid": {"type": "Doc", "id": "orphan"}, "attrs": {}, "parents": []},
            {"uid": {"type": "Doc", "id": "d1"}, "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": "acme"}}}, "parents": []}
        ]"#,
        )
        .unwrap();
    let cases = [
        (
            r#"User::"alice""#,
            r#"Doc::"orphan""#,
            Side::Resource,
            MissingTenant::NoAttribute,
        ),
        (
            r#"User::"stringly""#,
            r#"Doc::"d1""#,
            Side::Principal,
            MissingTenant::NotATenant("\"acme\"".into()),
        ),
        (
            r#"User::"ghost""#,
            r#"Doc::"d1""#,
            Side::Principal,
            MissingTenant::UnknownEntity,
        ),
        (
            r#"User::"alice""#,
            r#"Doc::"ghost""#,
            Side::Resource,
            MissingTenant::UnknownEntity,
        ),
    ];
    for (principal, resource, side, problem) in cases {
        let decision = decide(
            &pack,
            &entities,
            principal,
            r#"Action::"read""#,
            resource,
            None,
        );
        assert!(!decision.is_allowed(), "{principal} -> {resource}");
        assert_eq!(decision.reason, ReasonCode::TenantMissing);
        match decision.tenant_violation {
            Some(TenantViolation::Missing {
                side: got_side,
                problem: got_problem,
                ..
            }) => {
                assert_eq!(
                    (got_side, got_problem),
                    (side, problem),
                    "{principal} -> {resource}"
                );
            }
            other => panic!("expected a missing tenant, got {other:?}"),
        }
    }
    let fine = decide(
        &pack,
        &entities,
        r#"User::"alice""#,
        r#"Action::"read""#,
        r#"Doc::"d1""#,
        None,
    );
    assert!(fine.is_allowed());
}

#[test]
fn tenancy_requires_the_attribute_on_every_principal_and_resource_type() {
    let schema = r#"
        entity Tenant;
        entity User { tenant: Tenant };
        entity Doc { owner: User };
        entity Note { tenant?: Tenant };
        action read appliesTo { principal: [User], resource: [Doc, Note] };
    "#;
    let error = pack_from(
        Some(schema),
        Some(TENANCY),
        &[(
            "p.cedar",
            "@id(\"x\") permit (principal, action, resource);",
        )],
    )
    .unwrap_err();
    let messages: Vec<String> = error.diagnostics.iter().map(ToString::to_string).collect();
    assert!(
        messages.iter().any(|m| m.contains("error")
            && m.contains("`Doc`")
            && m.contains("no `tenant: Tenant` attribute")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("warning") && m.contains("`Note`") && m.contains("optional")),
        "{messages:#?}"
    );
}
