//! `POST /v1/filter`: the data-filter plan for one action and resource type. The caller
//! forwards the end user's bearer token (as for `/v1/check`), or, naming a `subject`, calls as
//! a policy enforcement point with its PEP credential. The answer is `always_allowed`,
//! `always_denied`, or `conditional` with a condition over the resource's fields; a policy
//! that cannot be written as a filter is a 422 naming it, never a broader filter.

use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::{Value, json};
use warden_core::filter::{FilterError, PlanOutcome};
use warden_service::filter::{FilterFailure, FilterOutcome};
use warden_service::pipeline::FilterAsker;

use crate::decision_log::Caller;
use crate::json::Json;
use crate::origin::Origin;
use crate::problem::ApiError;
use crate::routes::check::{Authorization, bearer_token};
use crate::state::AppState;
use crate::wire::{FilterRequest, condition_json, json_response};

fn caller(
    entry: &'static str,
    label: Option<String>,
    origin: Option<std::net::SocketAddr>,
) -> Caller {
    Caller {
        entry,
        label,
        origin,
        started: Instant::now(),
    }
}

/// `POST /v1/filter`.
pub async fn filter(
    State(state): State<AppState>,
    Origin(origin): Origin,
    Authorization(authorization): Authorization,
    certificate: Option<axum::Extension<crate::tls::ClientCertificate>>,
    caller_key: Option<axum::Extension<crate::rate_limit::CallerKey>>,
    Json(body): Json<FilterRequest>,
) -> Result<Response, ApiError> {
    let FilterRequest {
        subject,
        action,
        resource_type,
        context,
    } = body;
    let action = action.name().to_owned();
    let bearer;
    let (caller, asker, principal_json) = match subject {
        Some(subject) => {
            let pep = crate::pep_auth::authenticate(
                authorization.as_ref(),
                certificate
                    .as_ref()
                    .map(|axum::Extension(certificate)| certificate),
                caller_key.as_ref().map(|axum::Extension(key)| key),
                &state,
            )?;
            let principal = json!({"type": subject.entity_type, "id": subject.id});
            (
                caller("filter.pep", Some(pep.label()), origin),
                FilterAsker::Subject((&subject).into()),
                principal,
            )
        }
        None => {
            let caller = caller("filter", None, origin);
            let authenticated = match bearer_token(authorization.as_ref()) {
                Ok(token) => state.authenticate(token).await,
                Err(error) => Err(error),
            };
            bearer = match authenticated {
                Ok(bearer) => bearer,
                Err(error) => {
                    state.refuse_token(&caller, None, &error).await;
                    return Err(ApiError::InvalidToken(error));
                }
            };
            let principal = bearer.principal();
            let principal_json = json!({
                "type": principal.entity_type,
                "id": principal.id,
                "tenant": principal.tenant,
            });
            (caller, FilterAsker::Bearer(&bearer), principal_json)
        }
    };
    let scope = super::snapshot(&state)?;
    let outcome = state
        .filter(
            &scope,
            &caller,
            asker,
            action.clone(),
            resource_type.clone(),
            context,
        )
        .await
        .map_err(failure)?;
    let mut response = json_response(&answer(
        &outcome,
        &action,
        &resource_type,
        principal_json,
        scope.snapshot.pack.revision().as_str(),
    ));
    if let Ok(value) = HeaderValue::from_str(&outcome.decision_id) {
        response.headers_mut().insert("x-decision-id", value);
    }
    Ok(response)
}

fn failure(failure: FilterFailure) -> ApiError {
    let unsupported = |error: FilterError, decision_id: Option<String>| {
        let policy = match &error {
            FilterError::Unsupported { policy, .. } => Some(policy.clone()),
            _ => None,
        };
        ApiError::FilterUnsupported {
            detail: error.to_string(),
            policy,
            decision_id,
        }
    };
    match failure {
        FilterFailure::Invalid(detail) => ApiError::BadRequest(detail),
        FilterFailure::Unsupported(error) => unsupported(error, None),
        FilterFailure::Unfilterable { error, decision_id } => unsupported(error, Some(decision_id)),
    }
}

fn answer(
    outcome: &FilterOutcome,
    action: &str,
    resource_type: &str,
    mut principal: Value,
    revision: &str,
) -> Value {
    let (decision, condition) = match outcome.outcome() {
        PlanOutcome::AlwaysAllowed => ("always_allowed", Value::Null),
        PlanOutcome::AlwaysDenied => ("always_denied", Value::Null),
        PlanOutcome::Conditional(condition) => ("conditional", condition_json(condition)),
    };
    let plan = outcome.plan.as_ref();
    let tenant = plan.and_then(|plan| plan.tenant.as_ref()).map(
        |tenant| json!({"type": tenant.type_name().to_string(), "id": tenant.id().unescaped()}),
    );
    if let (Some(object), Some(tenant)) = (principal.as_object_mut(), &tenant)
        && object.get("tenant").is_none_or(Value::is_null)
    {
        object.insert("tenant".to_owned(), tenant["id"].clone());
    }
    let mut body = json!({
        "decision": decision,
        "action": action,
        "resource_type": resource_type,
        "principal": principal,
        "tenant": tenant,
        "policies": plan.map(|plan| plan.policies.iter().map(|id| id.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
        "policy_revision": revision,
        "decision_id": outcome.decision_id,
        "reason": outcome.reason(),
    });
    if !condition.is_null()
        && let Some(object) = body.as_object_mut()
    {
        object.insert("condition".to_owned(), condition);
    }
    body
}
