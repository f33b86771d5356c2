//! Arbitrary bytes as the JSON body of a decision endpoint: reading it and deciding it must
//! never panic, whatever the body.
//!
//! Each input is read as every body type the server reads for these routes, the way its
//! `Json` extractor reads them (`serde_json::from_slice`, then `axum::Json::from_bytes` for the
//! error message when that fails): `EvaluationRequest` (`/access/v1/evaluation`),
//! `EvaluationsRequest` (`/access/v1/evaluations`), `SubjectSearch`, `ResourceSearch` and
//! `ActionSearch` (`/access/v1/search/*`), `CheckRequest` (`/v1/check`) and `ChecksRequest`
//! (`/v1/checks`). A body that reads is then taken through what the handler does after the
//! extractor, without HTTP, against `examples/saas` and its entity file
//! (`warden_service::start::local`): `Service::evaluate` (screen, decide) for evaluations,
//! with the batch's defaults and semantics as `routes/authzen.rs` applies them; the plans of
//! `warden_service::filter` and a few candidate decisions for searches; `engine::decide` for a
//! check, with a fixed principal standing in for the verified token's. The HTTP layer itself
//! (content type, body limits, the batch limit's 400) is the server's tests' business.
//! Seeds: `fuzz/corpus/authzen_body/`. Run: `scripts/fuzz.sh` or
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none authzen_body`.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde_json::Value;
use warden_server::wire::{
    ActionSearch, CheckRequest, ChecksRequest, EntityRef, EvaluationRequest, EvaluationsRequest,
    PartialEntityRef, ResourceSearch, SubjectSearch,
};
use warden_service::Service;
use warden_service::decision_log::Caller;
use warden_service::engine::{self, DecisionInput, DecisionScope, PrincipalInput};
use warden_service::filter::{self, FilterInput};

/// Candidates a search tries per input (the server's page scans up to 10,000; a few reach
/// the same code).
const SEARCH_CANDIDATES: usize = 4;

struct Fixture {
    service: Service,
    principal: warden_token::Principal,
    max_batch_size: usize,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let saas = warden_fuzz::saas();
        let service =
            warden_service::start::local(Arc::clone(&saas.pack), Some(saas.entities_text.clone()))
                .expect("examples/saas loads as a service");
        Fixture {
            service,
            principal: warden_token::Principal {
                entity_type: "User".to_owned(),
                id: "acme/carol".to_owned(),
                subject: "carol".to_owned(),
                tenant: Some("acme".to_owned()),
                roles: vec!["viewer".to_owned()],
                scopes: Vec::new(),
                attributes: Default::default(),
            },
            max_batch_size: warden_config::ServerSettings::default().max_batch_size,
        }
    })
}

fn caller(entry: &'static str) -> Caller {
    Caller {
        entry,
        label: Some("fuzz".to_owned()),
        origin: None,
        started: Instant::now(),
    }
}

/// The body as the server's `Json` extractor reads it.
fn read<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    match serde_json::from_slice::<T>(data) {
        Ok(value) => Some(value),
        Err(_) => match axum::Json::<T>::from_bytes(data) {
            Ok(axum::Json(value)) => Some(value),
            Err(rejection) => {
                drop(axum::response::IntoResponse::into_response(rejection));
                None
            }
        },
    }
}

fn evaluate(
    scope: &DecisionScope,
    entry: &'static str,
    subject: &EntityRef,
    action: &str,
    resource: &EntityRef,
    context: Option<Value>,
) -> bool {
    let fixture = fixture();
    let outcome = warden_fuzz::runtime().block_on(fixture.service.evaluate(
        scope,
        &caller(entry),
        subject.into(),
        action.to_owned(),
        resource.into(),
        context,
    ));
    let _ = warden_server::wire::AuthzenDecision::of(&outcome);
    explain(scope, &outcome);
    outcome.allowed()
}

/// The explanation the decision log's writer makes for each decision (`warden check` prints
/// the same).
fn explain(scope: &DecisionScope, outcome: &engine::DecisionOutcome) {
    if let Some(entry) = outcome.evaluated.as_deref() {
        let explanation = warden_core::explain(
            &scope.snapshot.pack,
            &entry.request,
            &entry.entities,
            &entry.decision,
        );
        drop(explanation.to_string());
    }
}

fn decide(
    scope: &DecisionScope,
    subject: &EntityRef,
    action: &str,
    resource: &EntityRef,
    context: Option<&Value>,
) -> bool {
    engine::decide(
        scope,
        &DecisionInput {
            principal: PrincipalInput::Named(subject.into()),
            action: action.to_owned(),
            resource: resource.into(),
            context: context.cloned(),
        },
    )
    .allowed()
}

/// `routes/authzen.rs` `evaluations`, without HTTP.
fn evaluations(scope: &DecisionScope, request: EvaluationsRequest) {
    let semantic = match request
        .options
        .as_ref()
        .and_then(|o| o.evaluations_semantic.as_deref())
    {
        None | Some("execute_all") => None,
        Some("deny_on_first_deny") => Some(false),
        Some("permit_on_first_permit") => Some(true),
        Some(_) => return,
    };
    let items = request.evaluations.clone().unwrap_or_default();
    if items.len() > fixture().max_batch_size {
        return;
    }
    if items.is_empty() {
        if let (Some(subject), Some(action), Some(resource)) =
            (&request.subject, &request.action, &request.resource)
        {
            evaluate(
                scope,
                "authzen.evaluations",
                subject,
                &action.name,
                resource,
                request.context.clone(),
            );
        }
        return;
    }
    for item in &items {
        let subject = PartialEntityRef::over(item.subject.as_ref(), request.subject.as_ref());
        let action = item.action.as_ref().or(request.action.as_ref());
        let resource = PartialEntityRef::over(item.resource.as_ref(), request.resource.as_ref());
        let context = item.context.clone().or_else(|| request.context.clone());
        let allowed = match (subject, action, resource) {
            (Some(subject), Some(action), Some(resource)) => evaluate(
                scope,
                "authzen.evaluations",
                &subject,
                &action.name,
                &resource,
                context,
            ),
            _ => false,
        };
        if semantic == Some(allowed) {
            break;
        }
    }
}

fn candidates(scope: &DecisionScope, entity_type: &str) -> Vec<String> {
    match scope.snapshot.pack.type_name(entity_type) {
        Some(type_name) => {
            scope
                .snapshot
                .entities()
                .ids_of_type(&type_name, None, SEARCH_CANDIDATES)
        }
        None => Vec::new(),
    }
}

/// `routes/search.rs` `subjects`, without paging or HTTP.
fn subject_search(scope: &DecisionScope, request: &SubjectSearch) {
    let subject_type = &request.subject.entity_type;
    let plan = filter::subject_plan(
        scope,
        subject_type,
        &request.action.name,
        &(&request.resource).into(),
        request.context.as_ref(),
    );
    for id in candidates(scope, subject_type) {
        let subject = EntityRef {
            entity_type: subject_type.clone(),
            id,
            properties: None,
        };
        match &plan {
            Some(plan) => {
                if let Some(uid) = warden_fuzz::uid(&scope.snapshot.pack, subject_type, &subject.id)
                {
                    filter::admits_subject(&scope.snapshot, plan, &uid);
                }
            }
            None => {
                decide(
                    scope,
                    &subject,
                    &request.action.name,
                    &request.resource,
                    request.context.as_ref(),
                );
            }
        }
    }
}

/// `routes/search.rs` `resources`, without paging or HTTP.
fn resource_search(scope: &DecisionScope, request: &ResourceSearch) {
    let (subject, refusal) = fixture().service.screen((&request.subject).into());
    if refusal.is_some() {
        return;
    }
    let subject = EntityRef {
        entity_type: subject.entity_type,
        id: subject.id,
        properties: subject.properties,
    };
    let resource_type = &request.resource.entity_type;
    let planned = filter::plan(
        scope,
        &FilterInput {
            principal: PrincipalInput::Named((&subject).into()),
            action: request.action.name.clone(),
            resource_type: resource_type.clone(),
            context: request.context.clone(),
        },
    );
    let plan = match planned {
        Ok(outcome) if outcome.refusal.is_some() => return,
        Ok(outcome) => outcome.plan.map(|plan| plan.outcome),
        Err(failure) => {
            drop(failure.to_string());
            None
        }
    };
    for id in candidates(scope, resource_type) {
        let resource = EntityRef {
            entity_type: resource_type.clone(),
            id,
            properties: None,
        };
        match &plan {
            Some(plan) => {
                if let Some(uid) =
                    warden_fuzz::uid(&scope.snapshot.pack, resource_type, &resource.id)
                {
                    filter::admits(&scope.snapshot, plan, &uid);
                }
            }
            None => {
                decide(
                    scope,
                    &subject,
                    &request.action.name,
                    &resource,
                    request.context.as_ref(),
                );
            }
        }
    }
}

/// `routes/search.rs` `actions`, without paging or HTTP.
fn action_search(scope: &DecisionScope, request: &ActionSearch) {
    let (subject, refusal) = fixture().service.screen((&request.subject).into());
    if refusal.is_some() {
        return;
    }
    let subject = EntityRef {
        entity_type: subject.entity_type,
        id: subject.id,
        properties: subject.properties,
    };
    let Some(schema) = scope.snapshot.pack.schema() else {
        return;
    };
    let mut names: Vec<String> = schema
        .actions()
        .map(|uid| uid.id().unescaped().to_owned())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        decide(
            scope,
            &subject,
            &name,
            &request.resource,
            request.context.as_ref(),
        );
    }
}

/// `routes/check.rs` `check` after the token is verified: the body as the pipeline's request,
/// decided for the token's principal.
fn check(scope: &DecisionScope, body: CheckRequest) {
    let outcome = engine::decide(
        scope,
        &DecisionInput {
            principal: PrincipalInput::Token(&fixture().principal),
            action: body.action.name().to_owned(),
            resource: (&body.resource).into(),
            context: body.context,
        },
    );
    let _ = warden_server::wire::reasons_json(&outcome);
    let _ = warden_server::wire::errors_json(&outcome);
    explain(scope, &outcome);
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Ok(scope) = fixture.service.scope() else {
        return;
    };
    if let Some(request) = read::<EvaluationRequest>(data) {
        evaluate(
            &scope,
            "authzen.evaluation",
            &request.subject,
            &request.action.name,
            &request.resource,
            request.context,
        );
    }
    if let Some(request) = read::<EvaluationsRequest>(data) {
        evaluations(&scope, request);
    }
    if let Some(request) = read::<SubjectSearch>(data) {
        subject_search(&scope, &request);
    }
    if let Some(request) = read::<ResourceSearch>(data) {
        resource_search(&scope, &request);
    }
    if let Some(request) = read::<ActionSearch>(data) {
        action_search(&scope, &request);
    }
    if let Some(body) = read::<CheckRequest>(data) {
        check(&scope, body);
    }
    if let Some(body) = read::<ChecksRequest>(data) {
        for item in body.checks.into_iter().take(fixture.max_batch_size) {
            check(&scope, item);
        }
    }
});
