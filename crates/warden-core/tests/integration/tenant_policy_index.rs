//! Tenant policies, indexed per tenant and changed a policy at a time, decide as Cedar does on
//! the whole set of policies that apply by the tenant rule: on random tenant policies (put,
//! replaced and removed), random entities of two tenants and random requests (same tenant and
//! across tenants), the indexed decision agrees with `Authorizer` over the pack's policies plus
//! every tenant policy the rule lets in (all of the tenant's inside it; the resource tenant's
//! forbids across tenants), with the tenant guard and the fail-closed rule for tenant forbids
//! on top.

use std::collections::BTreeSet;
use std::str::FromStr;

use proptest::prelude::*;
use serde_json::{Value, json};
use warden_core::cedar_policy::{Authorizer, Effect, PolicySet};
use warden_core::pack::{PackSources, SchemaFormat, SchemaSource, SourceFile};
use warden_core::tenant_policies::{TenantPolicies, TenantPolicy};
use warden_core::{Pack, ReasonCode, parse_uid};

const SCHEMA: &str = r#"
entity Tenant;
entity Group in [Group] { tenant: Tenant };
entity User in [Group] { tenant: Tenant };
entity Folder in [Folder] { tenant: Tenant };
entity Document in [Folder] { tenant: Tenant };
action "write";
action read appliesTo { principal: [User, Group], resource: [Document, Folder], context: { n: Long } };
action edit, delete in ["write"] appliesTo { principal: [User, Group], resource: [Document, Folder], context: { n: Long } };
"#;

const PACK: &str = r#"
@id("readers")
permit (principal in Group::"t0/g0", action == Action::"read", resource);
@id("support")
@cross_tenant("support")
permit (principal in Group::"t0/g2", action == Action::"read", resource is Document)
when { resource.tenant == Tenant::"t1" };
@id("no-delete-f2")
forbid (principal, action == Action::"delete", resource in Folder::"t1/f2");
"#;

const N: usize = 3;

fn compile() -> Pack {
    let sources = PackSources {
        policy_files: vec![SourceFile::new("pack.cedar", PACK.to_owned())],
        schema: Some(SchemaSource {
            file: SourceFile::new("schema.cedarschema", SCHEMA.to_owned()),
            format: SchemaFormat::CedarSchema,
        }),
        manifest: Some(SourceFile::new(
            "pack.toml",
            "[tenancy]\nattribute = \"tenant\"\ntenant_type = \"Tenant\"\n".to_owned(),
        )),
    };
    Pack::compile(&sources).unwrap().pack
}

/// A policy of tenant `t`, naming only `t`'s entities.
fn tenant_policy(t: usize) -> impl Strategy<Value = String> {
    let principal = prop_oneof![
        Just("principal".to_owned()),
        (0..N).prop_map(move |g| format!("principal in Group::\"t{t}/g{g}\"")),
        (0..N).prop_map(move |u| format!("principal == User::\"t{t}/u{u}\"")),
        Just("principal is User".to_owned()),
    ];
    let action = prop_oneof![
        Just("action".to_owned()),
        Just("action == Action::\"read\"".to_owned()),
        Just("action in Action::\"write\"".to_owned()),
    ];
    let resource = prop_oneof![
        Just("resource".to_owned()),
        (0..N).prop_map(move |f| format!("resource in Folder::\"t{t}/f{f}\"")),
        (0..N).prop_map(move |d| format!("resource == Document::\"t{t}/d{d}\"")),
        Just("resource is Folder".to_owned()),
    ];
    let condition = prop_oneof![
        3 => Just(String::new()),
        1 => (0..4i64).prop_map(|n| format!(" when {{ context.n > {n} }}")),
        1 => (0..N).prop_map(move |g| format!(" when {{ principal in Group::\"t{t}/g{g}\" }}")),
        1 => Just(format!(" unless {{ resource.tenant == Tenant::\"t{t}\" }}")),
        1 => Just(" when { context.n + 9223372036854775807 > 0 }".to_owned()),
    ];
    (
        prop_oneof![2 => Just("permit"), 1 => Just("forbid")],
        principal,
        action,
        resource,
        condition,
    )
        .prop_map(|(effect, principal, action, resource, condition)| {
            format!("{effect} ({principal}, {action}, {resource}){condition};")
        })
}

fn entities_json(parents: &[Vec<usize>]) -> Value {
    let mut all = Vec::new();
    let mut next = parents.iter();
    for t in 0..2 {
        all.push(
            json!({"uid": {"type": "Tenant", "id": format!("t{t}")}, "attrs": {}, "parents": []}),
        );
        let tenant = json!({"__entity": {"type": "Tenant", "id": format!("t{t}")}});
        let mut push = |kind: &str,
                        i: usize,
                        parent_kind: &str,
                        chosen: &[usize],
                        later_only: bool| {
            let parents: Vec<Value> = chosen
                .iter()
                .filter(|p| !later_only || **p > i)
                .map(|p| json!({"type": parent_kind, "id": format!("t{t}/{}{p}", parent_kind.to_lowercase().chars().next().unwrap_or('x'))}))
                .collect();
            all.push(json!({
                "uid": {"type": kind, "id": format!("t{t}/{}{i}", kind.to_lowercase().chars().next().unwrap_or('x'))},
                "attrs": {"tenant": tenant.clone()},
                "parents": parents,
            }));
        };
        for (kind, parent_kind, later_only) in [
            ("Group", "Group", true),
            ("User", "Group", false),
            ("Folder", "Folder", true),
            ("Document", "Folder", false),
        ] {
            for i in 0..N {
                let chosen = next.next().cloned().unwrap_or_default();
                push(kind, i, parent_kind, &chosen, later_only);
            }
        }
    }
    Value::Array(all)
}

#[derive(Debug, Clone)]
struct World {
    policies: Vec<(usize, String)>,
    removed: Vec<bool>,
    parents: Vec<Vec<usize>>,
    requests: Vec<(usize, usize, usize, usize, usize, i64)>,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(
            (0..2usize).prop_flat_map(|t| (Just(t), tenant_policy(t))),
            1..16,
        ),
        prop::collection::vec(prop::bool::weighted(0.25), 16),
        prop::collection::vec(prop::collection::vec(0..N, 0..3), 2 * 4 * N),
        prop::collection::vec(
            (0..2usize, 0..N, 0..3usize, 0..2usize, 0..2 * N, -1..3i64),
            1..10,
        ),
    )
        .prop_map(|(policies, removed, parents, requests)| World {
            policies,
            removed,
            parents,
            requests,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn tenant_policies_decide_as_the_whole_applicable_set(world in world()) {
        let pack = compile();
        let entities = pack.parse_entities(&entities_json(&world.parents).to_string()).unwrap();
        let mut held = TenantPolicies::default();
        let mut kept: Vec<TenantPolicy> = Vec::new();
        for (i, (tenant, text)) in world.policies.iter().enumerate() {
            let tenant = format!("t{tenant}");
            let policy = TenantPolicy::check(&pack, &tenant, &format!("p{i}"), text).unwrap();
            held.put(&pack, policy.clone());
            if world.removed.get(i).copied().unwrap_or(false) {
                let name = format!("p{i}");
                prop_assert!(held.remove(&pack, &tenant, &name));
            } else {
                kept.push(policy);
            }
        }
        prop_assert_eq!(held.len(), kept.len());
        let actions = ["read", "edit", "delete"];
        for (pt, p, action, rt, r, n) in &world.requests {
            let principal = format!("User::\"t{pt}/u{p}\"");
            let resource = if *r < N {
                format!("Document::\"t{rt}/d{r}\"")
            } else {
                format!("Folder::\"t{rt}/f{}\"", r - N)
            };
            let request = pack
                .request(
                    parse_uid(&principal).unwrap(),
                    parse_uid(&format!("Action::\"{}\"", actions[*action])).unwrap(),
                    parse_uid(&resource).unwrap(),
                    Some(json!({"n": n})),
                )
                .unwrap();
            let mut selection = pack.select(&request, &entities);
            held.select_into(&pack, &request, &entities, &mut selection);
            let indexed = pack.decide_selected(&request, &selection, &entities);

            // The reference: the pack and every tenant policy the rule lets in, in one set.
            let mut reference = PolicySet::from_str(PACK).unwrap();
            let mut set = PolicySet::new();
            for policy in reference.policies() {
                let id = policy.annotation("id").unwrap().to_owned();
                set.add(policy.new_id(warden_core::cedar_policy::PolicyId::new(id))).unwrap();
            }
            reference = set;
            let mut tenant_forbids = BTreeSet::new();
            for policy in &kept {
                let same = format!("t{pt}") == format!("t{rt}");
                let applies = if same {
                    policy.tenant() == format!("t{pt}")
                } else {
                    policy.tenant() == format!("t{rt}") && policy.policy().effect() == Effect::Forbid
                };
                if applies {
                    if policy.policy().effect() == Effect::Forbid {
                        tenant_forbids.insert(policy.policy().id().to_string());
                    }
                    reference.add(policy.policy().clone()).unwrap();
                }
            }
            let answer = Authorizer::new().is_authorized(&request, &reference, &entities);
            let mut reasons: Vec<String> = answer.diagnostics().reason().map(ToString::to_string).collect();
            reasons.sort();
            let mut errors: Vec<String> = answer
                .diagnostics()
                .errors()
                .map(|error| match error {
                    warden_core::cedar_policy::AuthorizationError::PolicyEvaluationError(e) => e.policy_id().to_string(),
                })
                .collect();
            errors.sort();
            let indexed_errors: Vec<String> = indexed.errors.iter().map(|e| e.policy.to_string()).collect();
            let indexed_determining: Vec<String> = indexed.determining.iter().map(|p| p.id.to_string()).collect();
            let context = format!("{principal} {} {resource} n={n}: {indexed:?}", actions[*action]);
            prop_assert_eq!(&indexed_errors, &errors, "{}", context);
            let cedar_allowed = answer.decision() == warden_core::cedar_policy::Decision::Allow;
            let forbid_failed = errors.iter().any(|id| tenant_forbids.contains(id));
            match indexed.reason {
                ReasonCode::Permitted | ReasonCode::PermittedCrossTenant
                | ReasonCode::TenantBoundary | ReasonCode::TenantMissing => {
                    prop_assert!(cedar_allowed && !forbid_failed, "{}", context);
                    prop_assert_eq!(&indexed_determining, &reasons, "{}", context);
                }
                ReasonCode::Forbidden => {
                    prop_assert!(!cedar_allowed, "{}", context);
                    prop_assert_eq!(&indexed_determining, &reasons, "{}", context);
                }
                ReasonCode::NoPermit => {
                    prop_assert!(!cedar_allowed && reasons.is_empty(), "{}", context);
                }
                ReasonCode::EvaluationError => {
                    prop_assert!(
                        (!cedar_allowed && reasons.is_empty()) || (cedar_allowed && forbid_failed),
                        "{}",
                        context
                    );
                }
            }
        }
    }
}
