//! The policy index decides exactly as the whole policy set: on random packs (scopes with `in`,
//! `==`, `is`, `is … in`, action groups, hierarchies, forbids, erroring conditions, condition
//! literals, `@cross_tenant` permits, the tenant guard), random entities and random requests,
//! `Pack::decide` (indexed) and `Pack::decide_with_every_policy` give the same outcome, reason,
//! determining policies, errors and tenant findings.

use proptest::prelude::*;
use serde_json::{Value, json};
use warden_core::pack::{PackSources, SchemaFormat, SchemaSource, SourceFile};
use warden_core::{Decision, Pack, parse_uid};

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

const MANIFEST: &str =
    "name = \"random\"\n[tenancy]\nattribute = \"tenant\"\ntenant_type = \"Tenant\"\n";

const GROUPS: usize = 4;
const FOLDERS: usize = 4;
const USERS: usize = 5;
const DOCUMENTS: usize = 5;

fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        (0..USERS + 1).prop_map(|u| format!("principal == User::\"u{u}\"")),
        (0..GROUPS).prop_map(|g| format!("principal == Group::\"g{g}\"")),
        (0..GROUPS).prop_map(|g| format!("principal in Group::\"g{g}\"")),
        (0..USERS).prop_map(|u| format!("principal in User::\"u{u}\"")),
        Just("principal is User".to_owned()),
        Just("principal is Group".to_owned()),
        (0..GROUPS).prop_map(|g| format!("principal is User in Group::\"g{g}\"")),
        (0..GROUPS).prop_map(|g| format!("principal is Group in Group::\"g{g}\"")),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_owned()),
        Just("action == Action::\"read\"".to_owned()),
        Just("action == Action::\"delete\"".to_owned()),
        Just("action in Action::\"write\"".to_owned()),
        Just("action in [Action::\"read\", Action::\"edit\"]".to_owned()),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_owned()),
        (0..DOCUMENTS + 1).prop_map(|d| format!("resource == Document::\"d{d}\"")),
        (0..FOLDERS).prop_map(|f| format!("resource == Folder::\"f{f}\"")),
        (0..FOLDERS).prop_map(|f| format!("resource in Folder::\"f{f}\"")),
        Just("resource is Document".to_owned()),
        Just("resource is Folder".to_owned()),
        (0..FOLDERS).prop_map(|f| format!("resource is Document in Folder::\"f{f}\"")),
        (0..FOLDERS).prop_map(|f| format!("resource is Folder in Folder::\"f{f}\"")),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        1 => (0..5i64).prop_map(|n| format!(" when {{ context.n > {n} }}")),
        1 => (0..GROUPS).prop_map(|g| format!(" when {{ principal in Group::\"g{g}\" }}")),
        1 => (0..FOLDERS).prop_map(|f| format!(" unless {{ resource in Folder::\"f{f}\" }}")),
        1 => Just(" when { principal.tenant == resource.tenant }".to_owned()),
        1 => (0..2usize).prop_map(|t| format!(" when {{ resource.tenant == Tenant::\"t{t}\" }}")),
        // A literal whose ancestors the condition reads.
        1 => (0..GROUPS, 0..GROUPS)
            .prop_map(|(a, b)| format!(" when {{ Group::\"g{a}\" in Group::\"g{b}\" }}")),
        // Overflows (an evaluation error) when n > 0.
        1 => Just(" when { context.n + 9223372036854775807 > 0 }".to_owned()),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    (
        prop_oneof![3 => Just("permit"), 1 => Just("forbid")],
        prop::bool::weighted(0.15),
        principal_scope(),
        action_scope(),
        resource_scope(),
        condition(),
    )
        .prop_map(|(effect, cross, principal, action, resource, condition)| {
            let annotation = if cross && effect == "permit" {
                "@cross_tenant(\"vendor support\")\n"
            } else {
                ""
            };
            format!("{annotation}{effect} ({principal}, {action}, {resource}){condition};")
        })
}

/// Parents within one kind form a forest: each may point only to a later one.
fn parents(count: usize) -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(prop::collection::vec(0..count, 0..3), count)
}

#[derive(Debug, Clone)]
struct World {
    policies: Vec<String>,
    group_parents: Vec<Vec<usize>>,
    user_groups: Vec<Vec<usize>>,
    folder_parents: Vec<Vec<usize>>,
    document_folders: Vec<Vec<usize>>,
    tenants: Vec<usize>,
    requests: Vec<(usize, usize, usize, i64)>,
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(policy(), 1..25),
        parents(GROUPS),
        prop::collection::vec(prop::collection::vec(0..GROUPS, 0..3), USERS),
        parents(FOLDERS),
        prop::collection::vec(prop::collection::vec(0..FOLDERS, 0..2), DOCUMENTS),
        prop::collection::vec(0..2usize, GROUPS + USERS + FOLDERS + DOCUMENTS),
        prop::collection::vec(
            (
                0..USERS + GROUPS + 1,
                0..3usize,
                0..DOCUMENTS + FOLDERS + 1,
                -1..3i64,
            ),
            1..12,
        ),
    )
        .prop_map(
            |(
                policies,
                group_parents,
                user_groups,
                folder_parents,
                document_folders,
                tenants,
                requests,
            )| World {
                policies,
                group_parents,
                user_groups,
                folder_parents,
                document_folders,
                tenants,
                requests,
            },
        )
}

fn entity(kind: &str, id: String, tenant: usize, parents: Vec<Value>) -> Value {
    json!({
        "uid": {"type": kind, "id": id},
        "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": format!("t{tenant}")}}},
        "parents": parents,
    })
}

fn uid_json(kind: &str, id: String) -> Value {
    json!({"type": kind, "id": id})
}

impl World {
    fn entities_json(&self) -> Value {
        let tenant = |i: usize| self.tenants.get(i).copied().unwrap_or(0);
        let mut all = vec![
            json!({"uid": {"type": "Tenant", "id": "t0"}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "Tenant", "id": "t1"}, "attrs": {}, "parents": []}),
        ];
        for (g, parents) in self.group_parents.iter().enumerate() {
            let parents = parents
                .iter()
                .filter(|p| **p > g)
                .map(|p| uid_json("Group", format!("g{p}")))
                .collect();
            all.push(entity("Group", format!("g{g}"), tenant(g), parents));
        }
        for (u, groups) in self.user_groups.iter().enumerate() {
            let parents = groups
                .iter()
                .map(|g| uid_json("Group", format!("g{g}")))
                .collect();
            all.push(entity("User", format!("u{u}"), tenant(GROUPS + u), parents));
        }
        for (f, parents) in self.folder_parents.iter().enumerate() {
            let parents = parents
                .iter()
                .filter(|p| **p > f)
                .map(|p| uid_json("Folder", format!("f{p}")))
                .collect();
            all.push(entity(
                "Folder",
                format!("f{f}"),
                tenant(GROUPS + USERS + f),
                parents,
            ));
        }
        for (d, folders) in self.document_folders.iter().enumerate() {
            let parents = folders
                .iter()
                .map(|f| uid_json("Folder", format!("f{f}")))
                .collect();
            all.push(entity(
                "Document",
                format!("d{d}"),
                tenant(GROUPS + USERS + FOLDERS + d),
                parents,
            ));
        }
        Value::Array(all)
    }
}

/// Principal `i`: a user, a group, or (the last) a user the data does not have.
fn principal_text(i: usize) -> String {
    if i < USERS {
        format!("User::\"u{i}\"")
    } else if i < USERS + GROUPS {
        format!("Group::\"g{}\"", i - USERS)
    } else {
        format!("User::\"u{USERS}\"")
    }
}

fn resource_text(i: usize) -> String {
    if i < DOCUMENTS {
        format!("Document::\"d{i}\"")
    } else if i < DOCUMENTS + FOLDERS {
        format!("Folder::\"f{}\"", i - DOCUMENTS)
    } else {
        format!("Document::\"d{DOCUMENTS}\"")
    }
}

fn comparable(decision: &Decision) -> String {
    format!(
        "{:?} {:?} determining={:?} errors={:?} cross={:?} violation={:?} revision={}",
        decision.outcome,
        decision.reason,
        decision.determining,
        decision.errors,
        decision.cross_tenant,
        decision.tenant_violation,
        decision.revision
    )
}

fn compile(policies: &[String]) -> Pack {
    let text: String = policies
        .iter()
        .enumerate()
        .map(|(i, policy)| format!("@id(\"p{i}\")\n{policy}\n"))
        .collect();
    let sources = PackSources {
        policy_files: vec![SourceFile::new("policies.cedar", text)],
        schema: Some(SchemaSource {
            file: SourceFile::new("schema.cedarschema", SCHEMA.to_owned()),
            format: SchemaFormat::CedarSchema,
        }),
        manifest: Some(SourceFile::new("pack.toml", MANIFEST.to_owned())),
    };
    match Pack::compile(&sources) {
        Ok(compiled) => compiled.pack,
        Err(error) => panic!("the generated pack does not compile: {error:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn indexed_and_unindexed_decisions_agree(world in world()) {
        let pack = compile(&world.policies);
        let entities = pack
            .parse_entities(&world.entities_json().to_string())
            .unwrap();
        let actions = ["read", "edit", "delete"];
        for (principal, action, resource, n) in &world.requests {
            let request = pack
                .request(
                    parse_uid(&principal_text(*principal)).unwrap(),
                    parse_uid(&format!("Action::\"{}\"", actions[*action])).unwrap(),
                    parse_uid(&resource_text(*resource)).unwrap(),
                    Some(json!({"n": n})),
                )
                .unwrap();
            let indexed = pack.decide(&request, &entities);
            let whole = pack.decide_with_every_policy(&request, &entities);
            prop_assert_eq!(
                comparable(&indexed),
                comparable(&whole),
                "request {} {} {} n={}",
                principal_text(*principal),
                actions[*action],
                resource_text(*resource),
                n
            );
        }
    }
}

/// The index does select: a request evaluates its own tenant's policies and not the others'.
#[test]
fn a_request_evaluates_only_the_policies_its_scope_can_match() {
    let mut policies = vec!["permit (principal, action == Action::\"read\", resource);".to_owned()];
    for g in 0..GROUPS {
        policies.push(format!(
            "permit (principal in Group::\"g{g}\", action in Action::\"write\", resource);"
        ));
    }
    let pack = compile(&policies);
    let world = World {
        policies: Vec::new(),
        group_parents: vec![vec![1], vec![], vec![], vec![]],
        user_groups: vec![vec![0], vec![], vec![], vec![], vec![]],
        folder_parents: vec![vec![]; FOLDERS],
        document_folders: vec![vec![]; DOCUMENTS],
        tenants: vec![0; GROUPS + USERS + FOLDERS + DOCUMENTS],
        requests: Vec::new(),
    };
    let entities = pack
        .parse_entities(&world.entities_json().to_string())
        .unwrap();
    let request = |action: &str| {
        pack.request(
            parse_uid("User::\"u0\"").unwrap(),
            parse_uid(&format!("Action::\"{action}\"")).unwrap(),
            parse_uid("Document::\"d0\"").unwrap(),
            Some(json!({"n": 0})),
        )
        .unwrap()
    };
    // u0 is in g0, which is in g1: the policies of g0 and g1, none of the read policy.
    let edit = request("edit");
    assert_eq!(pack.select(&edit, &entities).len(), 2);
    // read: only the open read policy.
    let read = request("read");
    assert_eq!(pack.select(&read, &entities).len(), 1);
    assert!(pack.decide(&edit, &entities).is_allowed());
}
