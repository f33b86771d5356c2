//! The OpenID AuthZEN Authorization API 1.0: single and batch evaluation, and the metadata.
//! Callers are policy enforcement points and authenticate with a PEP credential.

use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::decision_log::{self, Caller};
use crate::engine::DecisionScope;
use crate::engine::{self, DecisionInput, DecisionOutcome, EntityInput, PrincipalInput, Refusal};
use crate::json::Json;
use crate::origin::Origin;
use crate::pep_auth::AuthenticatedPep;
use crate::problem::ApiError;
use crate::revocation::TokenIds;
use crate::state::AppState;
use crate::wire::{
    AuthzenDecision, EntityRef, EvaluationRequest, EvaluationsRequest, PartialEntityRef,
    json_response,
};

pub(crate) async fn evaluate(
    state: &AppState,
    caller: &Caller,
    snapshot: &DecisionScope,
    subject: &EntityRef,
    action: &str,
    resource: &EntityRef,
    context: Option<Value>,
) -> DecisionOutcome {
    let (subject_input, refusal) = screen(state, subject);
    let input = DecisionInput {
        principal: PrincipalInput::Named(subject_input),
        action: action.to_owned(),
        resource: resource.into(),
        context,
    };
    let mut outcome = match refusal {
        None => engine::decide(snapshot, &input),
        Some(refusal) => engine::refused(&input, refusal),
    };
    decision_log::record_decision(
        state.decision_log.as_ref(),
        caller,
        snapshot,
        &input,
        None,
        &mut outcome,
    )
    .await;
    outcome
}

/// `subject.properties.token`: identifiers of the bearer token the enforcement point verified
/// itself (`iss`, `jti`, `sid`, `sub`, `iat`, `client_id`, `kid`, and `jkt`, the RFC 7638 thumbprint of
/// the key that verified it), so that a revocation in
/// Warden denies on this path too. The name is reserved: it never becomes an attribute.
fn forwarded_token(subject: &mut EntityInput) -> Result<Option<Map<String, Value>>, String> {
    let Some(properties) = subject.properties.as_mut() else {
        return Ok(None);
    };
    let Some(token) = properties.remove("token") else {
        return Ok(None);
    };
    if properties.is_empty() {
        subject.properties = None;
    }
    match token {
        Value::Object(identifiers) => Ok(Some(identifiers)),
        _ => Err("subject.properties.token must be an object of the token's identifiers (iss, jti, sid, sub, iat, client_id, kid)".to_owned()),
    }
}

/// A service account Warden manages (`ServiceAccount::"<tenant>/<client_id>"`) that is disabled,
/// deleted or expired is denied here too, as its tokens are on `/v1/check`.
fn inactive_account(state: &AppState, subject: &EntityRef) -> Option<Refusal> {
    let issuer = state.token_issuer.as_ref()?;
    if subject.entity_type != "ServiceAccount" {
        return None;
    }
    let (tenant, client_id) = subject.id.split_once('/')?;
    let account = issuer.account(client_id)?;
    let now = crate::clock::unix_now();
    let reason = match account.status {
        _ if account.tenant != tenant => return None,
        warden_store::AccountStatus::Active if now < account.expires_at => return None,
        warden_store::AccountStatus::Active => "principal_disabled",
        warden_store::AccountStatus::Disabled => "principal_disabled",
        warden_store::AccountStatus::Deleted => "principal_deleted",
    };
    Some(Refusal {
        reason,
        detail: format!(
            "service account {client_id} is {}",
            if now >= account.expires_at && account.status == warden_store::AccountStatus::Active {
                "expired"
            } else {
                account.status.as_str()
            }
        ),
    })
}

/// The subject without its reserved `token` property, and the refusal its forwarded token or
/// its account state calls for, if any.
fn screen(state: &AppState, subject: &EntityRef) -> (EntityInput, Option<Refusal>) {
    let mut input: EntityInput = subject.into();
    let refusal = match forwarded_token(&mut input) {
        Ok(Some(token)) => revoked(state, &token),
        Ok(None) => None,
        Err(why) => Some(Refusal {
            reason: "invalid_request",
            detail: why,
        }),
    }
    .or_else(|| inactive_account(state, subject));
    (input, refusal)
}

/// A search's subject without its reserved `token` property, or the refusal its forwarded token
/// or its account state calls for (then the search finds nothing).
pub(crate) fn screen_subject(state: &AppState, subject: &EntityRef) -> Result<EntityRef, Refusal> {
    let (input, refusal) = screen(state, subject);
    match refusal {
        Some(refusal) => Err(refusal),
        None => Ok(EntityRef {
            entity_type: input.entity_type,
            id: input.id,
            properties: input.properties,
        }),
    }
}

/// The refusal when the forwarded identifiers are revoked (or malformed: fail closed).
fn revoked(state: &AppState, token: &Map<String, Value>) -> Option<Refusal> {
    let text = |name: &str| -> Result<Option<&str>, String> {
        match token.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.as_str())),
            Some(_) => Err(format!("subject.properties.token.{name} must be a string")),
        }
    };
    let ids =
        (|| -> Result<TokenIds<'_>, String> {
            Ok(TokenIds {
                issuer: text("iss")?,
                jti: text("jti")?,
                sid: text("sid")?,
                subject: text("sub")?,
                issued_at: match token.get("iat") {
                    None | Some(Value::Null) => None,
                    Some(value) => Some(value.as_i64().ok_or_else(|| {
                        "subject.properties.token.iat must be an integer".to_owned()
                    })?),
                },
                client: text("client_id")?.or(text("azp")?),
                kid: text("kid")?,
                key_thumbprint: text("jkt")?,
            })
        })();
    match ids {
        Ok(ids) => state
            .revocations
            .check_ids(&ids, crate::clock::unix_now())
            .map(|hit| Refusal {
                reason: "token_revoked",
                detail: format!("the forwarded token is revoked (by {})", hit.kind.as_str()),
            }),
        Err(why) => Some(Refusal {
            reason: "invalid_request",
            detail: why,
        }),
    }
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
