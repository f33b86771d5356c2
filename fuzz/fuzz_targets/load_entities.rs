//! Arbitrary bytes as the entity file (`[policy] entities_file`) of the example pack: loading
//! must never panic, and a decision on the slice the entity graph assembles must be the
//! decision on the whole data.
//!
//! Calls `PolicyHolder::set_pack` (what `warden serve` runs on a load or reload: the entity
//! graph built by `EntityGraph::of_file`, the file's whole Cedar store prepared), then decides
//! up to 15 requests through `engine::decide` (principals, documents and tenants the loaded
//! data holds, named as an AuthZEN subject without properties) and, where the whole file also
//! parses as Cedar entities (`Pack::parse_entities`), holds each decision to
//! `Pack::decide_with_every_policy` on the whole data (the invariant of `entity_graph.rs`,
//! also tested by `crates/warden-service/tests/entity_slices.rs`).
//! Seeds: `fuzz/corpus/load_entities/`. Run: `scripts/fuzz.sh` or
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none load_entities`.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use warden_core::Decision;
use warden_service::engine::{self, DecisionInput, DecisionScope, EntityInput, PrincipalInput};
use warden_service::snapshot::PolicyHolder;

fn ids(decision: &Decision) -> Vec<String> {
    decision
        .determining
        .iter()
        .map(|policy| policy.id.to_string())
        .collect()
}

fn entity(entity_type: &str, id: &str) -> EntityInput {
    EntityInput {
        entity_type: entity_type.to_owned(),
        id: id.to_owned(),
        properties: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let saas = warden_fuzz::saas();
    let text = warden_fuzz::text(data);
    let holder = PolicyHolder::default();
    if let Err(error) = holder.set_pack(Arc::clone(&saas.pack), Some(text.clone())) {
        // The message a refused reload logs.
        drop(error.to_string());
        return;
    }
    let Some(snapshot) = holder.current() else {
        return;
    };
    let whole = saas.pack.parse_entities(&text).ok();
    let of_type = |entity_type: &str, limit: usize| -> Vec<String> {
        match saas.pack.type_name(entity_type) {
            Some(type_name) => snapshot.entities().ids_of_type(&type_name, None, limit),
            None => Vec::new(),
        }
    };
    let mut principals: Vec<EntityInput> = of_type("User", 2)
        .iter()
        .map(|id| entity("User", id))
        .collect();
    principals.extend(
        of_type("ServiceAccount", 1)
            .iter()
            .map(|id| entity("ServiceAccount", id)),
    );
    let mut asks: Vec<(&str, EntityInput)> = Vec::new();
    for id in of_type("Document", 2) {
        asks.push(("read", entity("Document", &id)));
        asks.push(("edit", entity("Document", &id)));
    }
    for id in of_type("Tenant", 1) {
        asks.push(("list", entity("Tenant", &id)));
    }
    let scope = DecisionScope {
        snapshot: Arc::clone(&snapshot),
        stale: None,
        claim_attributes: Arc::new(Vec::new()),
        audit_down: None,
    };
    for principal in &principals {
        for (action, resource) in &asks {
            let outcome = engine::decide(
                &scope,
                &DecisionInput {
                    principal: PrincipalInput::Named(principal.clone()),
                    action: (*action).to_owned(),
                    resource: resource.clone(),
                    context: None,
                },
            );
            let (Some(entry), Some(whole)) = (outcome.evaluated.as_deref(), whole.as_ref()) else {
                continue;
            };
            let reference = saas.pack.decide_with_every_policy(&entry.request, whole);
            let decision = &entry.decision;
            assert_eq!(
                (decision.outcome, decision.reason, ids(decision)),
                (reference.outcome, reference.reason, ids(&reference)),
                "the slice decided {} unlike the whole entity data",
                entry.request
            );
        }
    }
});
