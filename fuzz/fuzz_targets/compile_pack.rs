//! Arbitrary bytes as a policy pack: compiling must never panic, and a pack that compiles
//! decides the same through its policy index as with every policy.
//!
//! Input: `schema \0 policies \0 pack.toml`. Without a NUL byte the whole input is one `.cedar`
//! file (a pack without schema or manifest, as `warden check --policies file.cedar` reads it).
//! The schema is the JSON syntax when it starts with `{`, the Cedar syntax otherwise; an empty
//! schema is no schema. `\x01` separates policy files (`p0.cedar`, `p1.cedar`, …), so ids
//! defaulted from file names and duplicates across files are reached. A third part, even
//! empty, is a `pack.toml`.
//!
//! Calls `warden_core::Pack::compile` (what `warden serve`, `warden check` and reloads run on
//! the text `warden-packdir` reads), then, for a pack that compiles, up to 24 requests built
//! from the schema's actions and the policies' scope literals, each decided by `Pack::decide`
//! (the index) and `Pack::decide_with_every_policy` (the reference): the two must agree.
//! Seeds: `fuzz/corpus/compile_pack/`. Run: `scripts/fuzz.sh` or
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none compile_pack`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::cedar_policy::{
    ActionConstraint, EntityId, EntityTypeName, EntityUid, PrincipalConstraint, ResourceConstraint,
};
use warden_core::pack::{PackSources, SchemaFormat, SchemaSource, SourceFile};
use warden_core::{Decision, Pack};

/// At most this many requests are decided per input (each twice).
const MAX_REQUESTS: usize = 24;
/// At most this many candidates per request part.
const MAX_CANDIDATES: usize = 4;

fn sources(data: &[u8]) -> PackSources {
    let mut parts = data.splitn(3, |byte| *byte == 0);
    let first = parts.next().unwrap_or_default();
    let Some(policies) = parts.next() else {
        return PackSources::from_policy_text("policy.cedar", warden_fuzz::text(first));
    };
    let manifest = parts
        .next()
        .map(|text| SourceFile::new("pack.toml", warden_fuzz::text(text)));
    let schema_text = warden_fuzz::text(first);
    let schema = (!schema_text.is_empty()).then(|| {
        let json = schema_text.trim_start().starts_with('{');
        SchemaSource {
            file: SourceFile::new(
                if json {
                    "schema.cedarschema.json"
                } else {
                    "schema.cedarschema"
                },
                schema_text,
            ),
            format: if json {
                SchemaFormat::Json
            } else {
                SchemaFormat::CedarSchema
            },
        }
    });
    let policy_files = policies
        .split(|byte| *byte == 1)
        .enumerate()
        .map(|(n, text)| SourceFile::new(format!("p{n}.cedar"), warden_fuzz::text(text)))
        .collect();
    PackSources {
        policy_files,
        schema,
        manifest,
    }
}

fn push(into: &mut Vec<EntityUid>, uid: EntityUid) {
    if into.len() < MAX_CANDIDATES && !into.contains(&uid) {
        into.push(uid);
    }
}

fn fresh(type_name: &EntityTypeName) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new("fuzz"))
}

/// Principals, actions and resources worth asking about: the policies' scope literals and,
/// with a schema, a fresh entity of each type an action applies to.
fn candidates(pack: &Pack) -> (Vec<EntityUid>, Vec<EntityUid>, Vec<EntityUid>) {
    let (mut principals, mut actions, mut resources) = (Vec::new(), Vec::new(), Vec::new());
    for policy in pack.policy_set().policies() {
        match policy.principal_constraint() {
            PrincipalConstraint::Any => {}
            PrincipalConstraint::In(uid) | PrincipalConstraint::Eq(uid) => {
                push(&mut principals, uid)
            }
            PrincipalConstraint::Is(type_name) => push(&mut principals, fresh(&type_name)),
            PrincipalConstraint::IsIn(type_name, uid) => {
                push(&mut principals, uid);
                push(&mut principals, fresh(&type_name));
            }
        }
        match policy.action_constraint() {
            ActionConstraint::Any => {}
            ActionConstraint::Eq(uid) => push(&mut actions, uid),
            ActionConstraint::In(uids) => uids.into_iter().for_each(|uid| push(&mut actions, uid)),
        }
        match policy.resource_constraint() {
            ResourceConstraint::Any => {}
            ResourceConstraint::In(uid) | ResourceConstraint::Eq(uid) => push(&mut resources, uid),
            ResourceConstraint::Is(type_name) => push(&mut resources, fresh(&type_name)),
            ResourceConstraint::IsIn(type_name, uid) => {
                push(&mut resources, uid);
                push(&mut resources, fresh(&type_name));
            }
        }
    }
    if let Some(schema) = pack.schema() {
        for action in schema.actions().take(MAX_CANDIDATES) {
            push(&mut actions, action.clone());
            for type_name in schema.principals_for_action(action).into_iter().flatten() {
                push(&mut principals, fresh(type_name));
            }
            for type_name in schema.resources_for_action(action).into_iter().flatten() {
                push(&mut resources, fresh(type_name));
            }
        }
    }
    (principals, actions, resources)
}

fn ids(decision: &Decision) -> Vec<String> {
    decision
        .determining
        .iter()
        .map(|policy| policy.id.to_string())
        .collect()
}

fn decide_both_ways(pack: &Pack) {
    let Ok(entities) = pack.parse_entities("[]") else {
        return;
    };
    let (principals, actions, resources) = candidates(pack);
    let mut asked = 0;
    for action in &actions {
        for principal in &principals {
            for resource in &resources {
                if asked == MAX_REQUESTS {
                    return;
                }
                asked += 1;
                let Ok(request) =
                    pack.request(principal.clone(), action.clone(), resource.clone(), None)
                else {
                    continue;
                };
                let indexed = pack.decide(&request, &entities);
                let reference = pack.decide_with_every_policy(&request, &entities);
                assert_eq!(
                    (indexed.outcome, indexed.reason, ids(&indexed)),
                    (reference.outcome, reference.reason, ids(&reference)),
                    "the policy index decided {principal} {action} {resource} unlike every policy"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match Pack::compile(&sources(data)) {
        Ok(compiled) => {
            // What `warden policy check` prints and `/readyz` reports.
            compiled
                .warnings
                .iter()
                .for_each(|warning| drop(warning.to_string()));
            let pack = compiled.pack;
            let _ = pack.policies();
            let _ = warden_service::entity_graph::PackRoots::of(&pack);
            decide_both_ways(&pack);
        }
        // The message a refused reload logs and `warden policy check` prints.
        Err(error) => drop(error.to_string()),
    }
});
