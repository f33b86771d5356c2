//! The OpenID AuthZEN Authorization API 1.0: single and batch evaluation, and the metadata.
//! Callers are policy enforcement points and authenticate with a PEP credential.

use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use crate::decision_log::Caller;
use crate::engine::{DecisionOutcome, DecisionScope};
use crate::json::Json;
use crate::origin::Origin;
use crate::pep_auth::AuthenticatedPep;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::wire::{
    AuthzenDecision, EntityRef, EvaluationRequest, EvaluationsRequest, PartialEntityRef,
    json_response,
};

/// One AuthZEN evaluation through the pipeline (screen, decide, record).
pub(crate) async fn evaluate(
    state: &AppState,
    caller: &Caller,
    scope: &DecisionScope,
    subject: &EntityRef,
    action: &str,
    resource: &EntityRef,
    context: Option<Value>,
) -> DecisionOutcome {
    state
        .evaluate(
            scope,
            caller,
            subject.into(),
            action.to_owned(),
            resource.into(),
            context,
        )
        .await
}

fn decision_json(outcome: &DecisionOutcome) -> Value {
    serde_json::to_value(AuthzenDecision::of(outcome)).unwrap_or_else(|error| {
        json!({"decision": false, "context": {"decision_id": outcome.decision_id, "reason": "internal_error", "reason_admin": {"en": error.to_string()}}})
    })
}

pub async fn evaluation(
    State(state): State<AppState>,
    AuthenticatedPep(pep): AuthenticatedPep,
    Origin(origin): Origin,
    Json(request): Json<EvaluationRequest>,
) -> Result<Response, ApiError> {
    let caller = Caller {
        entry: "authzen.evaluation",
        label: Some(pep.label()),
        origin,
        started: Instant::now(),
    };
    let snapshot = super::snapshot(&state)?;
    let outcome = evaluate(
        &state,
        &caller,
        &snapshot,
        &request.subject,
        &request.action.name,
        &request.resource,
        request.context,
    )
    .await;
    Ok(json_response(&AuthzenDecision::of(&outcome)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

pub async fn evaluations(
    State(state): State<AppState>,
    AuthenticatedPep(pep): AuthenticatedPep,
    Origin(origin): Origin,
    Json(request): Json<EvaluationsRequest>,
) -> Result<Response, ApiError> {
    let caller = Caller {
        entry: "authzen.evaluations",
        label: Some(pep.label()),
        origin,
        started: Instant::now(),
    };
    let semantic = match request
        .options
        .as_ref()
        .and_then(|o| o.evaluations_semantic.as_deref())
    {
        None | Some("execute_all") => Semantic::ExecuteAll,
        Some("deny_on_first_deny") => Semantic::DenyOnFirstDeny,
        Some("permit_on_first_permit") => Semantic::PermitOnFirstPermit,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "options.evaluations_semantic `{other}` is not one of execute_all, deny_on_first_deny, permit_on_first_permit"
            )));
        }
    };
    let items = request.evaluations.clone().unwrap_or_default();
    if items.len() > state.limits.max_batch_size {
        return Err(ApiError::BadRequest(format!(
            "{} evaluations in one request; the limit is {}",
            items.len(),
            state.limits.max_batch_size
        )));
    }
    let snapshot = super::snapshot(&state)?;
    if items.is_empty() {
        // Without evaluations, the request is a single evaluation of the defaults.
        let (Some(subject), Some(action), Some(resource)) =
            (&request.subject, &request.action, &request.resource)
        else {
            return Err(ApiError::BadRequest(
                "subject, action and resource are required when evaluations is empty".to_owned(),
            ));
        };
        let outcome = evaluate(
            &state,
            &caller,
            &snapshot,
            subject,
            &action.name,
            resource,
            request.context.clone(),
        )
        .await;
        return Ok(json_response(&AuthzenDecision::of(&outcome)));
    }
    let mut results = Vec::with_capacity(items.len());
    for item in &items {
        let subject = PartialEntityRef::over(item.subject.as_ref(), request.subject.as_ref());
        let action = item.action.as_ref().or(request.action.as_ref());
        let resource = PartialEntityRef::over(item.resource.as_ref(), request.resource.as_ref());
        let context = item.context.clone().or_else(|| request.context.clone());
        let (result, allowed) = match (subject, action, resource) {
            (Some(subject), Some(action), Some(resource)) => {
                let outcome = evaluate(
                    &state,
                    &caller,
                    &snapshot,
                    &subject,
                    &action.name,
                    &resource,
                    context,
                )
                .await;
                (decision_json(&outcome), outcome.allowed())
            }
            _ => (
                json!({"decision": false, "context": {"reason": "invalid_request", "reason_admin": {"en": "subject, action and resource are required (here or at the top level)"}}}),
                false,
            ),
        };
        results.push(result);
        let stop = match semantic {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !allowed,
            Semantic::PermitOnFirstPermit => allowed,
        };
        if stop {
            break;
        }
    }
    Ok(json_response(&json!({"evaluations": results})))
}

pub async fn metadata(State(state): State<AppState>) -> axum::Json<Value> {
    let base = state.public_url.trim_end_matches('/');
    axum::Json(json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
        "search_subject_endpoint": format!("{base}/access/v1/search/subject"),
        "search_resource_endpoint": format!("{base}/access/v1/search/resource"),
        "search_action_endpoint": format!("{base}/access/v1/search/action"),
    }))
}
