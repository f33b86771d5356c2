//! Warden decides exactly as Cedar does on a pack without tenancy.
//!
//! The corpus under `tests/fixtures/corpus/` is written in the shape of Cedar's own integration
//! tests (a schema, policies, entities, and requests with the expected decision, determining
//! policies and erroring policies). Each request is checked three ways: Warden's decision
//! against the expectation, and Warden against `cedar_policy::Authorizer` called directly on
//! the same text, so a drift between the two shows even where the expectation is wrong.

use std::collections::BTreeSet;
use std::str::FromStr;

use serde_json::Value;
use warden_core::cedar_policy::{
    self, Authorizer, Context, Entities, EntityUid, PolicySet, Request, Schema,
};
use warden_core::pack::{PackSources, SchemaFormat, SchemaSource, SourceFile};
use warden_core::{Outcome, Pack, parse_uid_json};

use crate::support::fixture;

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture("corpus").join(name)).unwrap()
}

fn ids<'a>(values: impl Iterator<Item = &'a Value>) -> BTreeSet<String> {
    values.map(|v| v.as_str().unwrap().to_owned()).collect()
}

fn run_corpus_file(name: &str) -> usize {
    let test: Value = serde_json::from_str(&read(name)).unwrap();
    let policy_text = read(test["policies"].as_str().unwrap());
    let schema_text = test["schema"].as_str().map(read);
    let entities_text = read(test["entities"].as_str().unwrap());

    // Warden: the same text as a one-file pack, no manifest (so no tenancy).
    let sources = PackSources {
        policy_files: vec![SourceFile::new("policies.cedar", policy_text.clone())],
        schema: schema_text.clone().map(|text| SchemaSource {
            file: SourceFile::new("schema.cedarschema", text),
            format: SchemaFormat::CedarSchema,
        }),
        manifest: None,
    };
    let compiled = Pack::compile(&sources);
    assert_eq!(
        compiled.is_ok(),
        test["shouldValidate"].as_bool().unwrap() || schema_text.is_none(),
        "{name}: {compiled:?}"
    );
    let pack = compiled.unwrap().pack;
    let entities = pack.parse_entities(&entities_text).unwrap();

    // Cedar, called directly.
    let cedar_policies = PolicySet::from_str(&policy_text).unwrap();
    let cedar_schema = schema_text
        .as_deref()
        .map(|text| Schema::from_cedarschema_str(text).unwrap().0);
    let cedar_entities = Entities::from_json_str(&entities_text, cedar_schema.as_ref()).unwrap();

    let requests = test["requests"].as_array().unwrap();
    for case in requests {
        let description = case["description"].as_str().unwrap();
        let principal = parse_uid_json(&case["principal"]).unwrap();
        let action = parse_uid_json(&case["action"]).unwrap();
        let resource = parse_uid_json(&case["resource"]).unwrap();
        let context = case["context"].clone();

        let request = pack
            .request(
                principal.clone(),
                action.clone(),
                resource.clone(),
                Some(context.clone()),
            )
            .unwrap_or_else(|e| panic!("{name}: {description}: {e}"));
        let decision = pack.decide(&request, &entities);
        let warden_reason: BTreeSet<String> = decision
            .determining
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        let warden_errors: BTreeSet<String> = decision
            .errors
            .iter()
            .map(|e| e.policy.to_string())
            .collect();
        let warden_allow = decision.outcome == Outcome::Allow;

        let cedar_response = cedar_decide(
            &cedar_policies,
            cedar_schema.as_ref(),
            &cedar_entities,
            principal,
            action,
            resource,
            context,
        );
        let cedar_allow = cedar_response.decision() == cedar_policy::Decision::Allow;
        let cedar_reason: BTreeSet<String> = cedar_response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        let cedar_errors: BTreeSet<String> = cedar_response
            .diagnostics()
            .errors()
            .map(
                |cedar_policy::AuthorizationError::PolicyEvaluationError(e)| {
                    e.policy_id().to_string()
                },
            )
            .collect();

        assert_eq!(
            (warden_allow, &warden_reason, &warden_errors),
            (cedar_allow, &cedar_reason, &cedar_errors),
            "{name}: {description}: Warden and Cedar disagree"
        );
        let expected_allow = case["decision"].as_str().unwrap() == "allow";
        let expected_reason = ids(case["reason"].as_array().unwrap().iter());
        let expected_errors = ids(case["errors"].as_array().unwrap().iter());
        assert_eq!(
            (warden_allow, warden_reason, warden_errors),
            (expected_allow, expected_reason, expected_errors),
            "{name}: {description}"
        );
    }
    requests.len()
}

fn cedar_decide(
    policies: &PolicySet,
    schema: Option<&Schema>,
    entities: &Entities,
    principal: EntityUid,
    action: EntityUid,
    resource: EntityUid,
    context: Value,
) -> cedar_policy::Response {
    let context = Context::from_json_value(context, schema.map(|s| (s, &action))).unwrap();
    let request = Request::new(principal, action, resource, context, schema).unwrap();
    Authorizer::new().is_authorized(&request, policies, entities)
}

#[test]
fn photos_hierarchy_and_attributes() {
    assert_eq!(run_corpus_file("photos.json"), 15);
}

#[test]
fn network_extensions_and_context() {
    assert_eq!(run_corpus_file("network.json"), 14);
}

#[test]
fn runtime_errors_are_skipped_as_cedar_skips_them() {
    assert_eq!(run_corpus_file("errors.json"), 6);
}

/// Warden evaluates only the policies whose action scope can match (per-action slices); that
/// must never change a decision, a reason or an error. Every principal × action × resource of
/// the example data is decided both ways.
#[test]
fn action_slices_decide_exactly_as_the_whole_policy_set() {
    let pack = crate::support::example_pack();
    let entities = crate::support::example_entities(&pack);
    let uids: Vec<EntityUid> = entities.iter().map(|entity| entity.uid()).collect();
    let principals: Vec<&EntityUid> = uids
        .iter()
        .filter(|u| ["User", "ServiceAccount"].contains(&u.type_name().to_string().as_str()))
        .collect();
    let resources: Vec<&EntityUid> = uids
        .iter()
        .filter(|u| ["Document", "Tenant"].contains(&u.type_name().to_string().as_str()))
        .collect();
    let actions: Vec<EntityUid> = pack.schema().unwrap().actions().cloned().collect();
    let mut compared = 0;
    for principal in &principals {
        for action in &actions {
            for resource in &resources {
                for context in [None, Some(serde_json::json!({"support_ticket": "SUP-1"}))] {
                    let Ok(request) = pack.request(
                        (*principal).clone(),
                        action.clone(),
                        (*resource).clone(),
                        context,
                    ) else {
                        continue; // not a valid request for this action
                    };
                    let sliced = pack.decide(&request, &entities);
                    let whole =
                        Authorizer::new().is_authorized(&request, pack.policy_set(), &entities);
                    let whole_reason: BTreeSet<String> = whole
                        .diagnostics()
                        .reason()
                        .map(ToString::to_string)
                        .collect();
                    let sliced_reason: BTreeSet<String> = sliced
                        .determining
                        .iter()
                        .map(|p| p.id.to_string())
                        .collect();
                    let whole_errors = whole.diagnostics().errors().count();
                    assert_eq!(
                        sliced_reason, whole_reason,
                        "{principal} {action} {resource}"
                    );
                    assert_eq!(
                        sliced.errors.len(),
                        whole_errors,
                        "{principal} {action} {resource}"
                    );
                    if pack.tenancy().is_none() || whole.decision() == cedar_policy::Decision::Deny
                    {
                        assert_eq!(
                            sliced.is_allowed(),
                            whole.decision() == cedar_policy::Decision::Allow
                        );
                    }
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 500, "only {compared} requests compared");
}
