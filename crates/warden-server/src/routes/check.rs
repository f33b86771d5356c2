//! `POST /v1/check`: the caller forwards the end user's bearer token; Warden verifies it, builds
//! the principal, decides, and answers with the decision, its id, the principal and the reasons.

use std::time::Instant;

use crate::clock::unix_now;

use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use warden_token::{TokenError, TokenReason};

use crate::decision_log::{self, Caller};
use crate::engine::{self, DecisionInput, PrincipalInput};
use crate::json::Json;
use crate::origin::Origin;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::wire::{
    CheckAnswer, CheckRequest, CheckResult, ChecksAnswer, ChecksRequest, PrincipalJson,
    errors_json, json_response, reasons_json,
};

/// The request's `Authorization` header alone (axum's `HeaderMap` extractor copies every
/// header of every request).
pub struct Authorization(pub Option<HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for Authorization {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Authorization(
            parts.headers.get(header::AUTHORIZATION).cloned(),
        ))
    }
}

/// The bearer token of `Authorization`, or the reason it is missing.
pub(crate) fn bearer_token(authorization: Option<&HeaderValue>) -> Result<&str, TokenError> {
    let value = authorization
        .ok_or_else(|| TokenError::new(TokenReason::Missing))?
        .to_str()
        .map_err(|_| {
            TokenError::with(
                TokenReason::Malformed,
                "the Authorization header is not text",
            )
        })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::with(
            TokenReason::Missing,
            "the Authorization scheme is not Bearer",
        ));
    }
    Ok(token.trim())
}

/// A verified bearer token and the principal it stands for now.
pub(crate) struct Bearer {
    /// The token.
    pub token: std::sync::Arc<warden_token::VerifiedToken>,
    /// For one of Warden's own tokens, the principal with only the scopes the service account
    /// still holds, when that is fewer than the token names.
    narrowed: Option<warden_token::Principal>,
}

impl Bearer {
    /// The principal decisions are made for.
    pub fn principal(&self) -> &warden_token::Principal {
        self.narrowed.as_ref().unwrap_or(&self.token.principal)
    }
}

/// The request's bearer token, verified and checked against the revocations (after the
/// signature, cached tokens included) and, for Warden's own tokens, against the service
/// account's current state (disabled, deleted or expired: refused; scopes: narrowed).
pub(crate) async fn verified_bearer(
    state: &AppState,
    authorization: Option<&HeaderValue>,
) -> Result<Bearer, TokenError> {
    let token = bearer_token(authorization)?;
    let now = unix_now();

    let verified = match state.verifier.verify(token, now).await {
        // A key another replica made since this one last read the store: read it now (at most
        // once a second) and verify again.
        Err(error) if error.reason == TokenReason::KeyUnknown && catch_up(state, now).await => {
            state.verifier.verify(token, now).await?
        }
        other => other?,
    };
    if let Some(revoked) = state.revocations.check(&verified, now) {
        return Err(TokenError::with(
            TokenReason::Revoked,
            format!("the token is revoked (by {})", revoked.kind.as_str()),
        ));
    }
    let narrowed = match &state.token_issuer {
        Some(issuer) if issuer.issued(&verified.issuer) => {
            let client_id = verified
                .claims
                .get("client_id")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            let checked = match issuer.check_account(client_id, &verified.principal, now) {
                // An account another replica created since this one last read the store.
                Err(crate::issuer::AccountRefusal::Unknown) if catch_up(state, now).await => {
                    issuer.check_account(client_id, &verified.principal, now)
                }
                other => other,
            };
            checked.map_err(|refusal| TokenError::with(TokenReason::Revoked, refusal.why()))?
        }
        _ => None,
    };
    Ok(Bearer {
        token: verified,
        narrowed,
    })
}

/// Reads Warden's keys and accounts out of turn; `false` without `[tokens]` or a store.
async fn catch_up(state: &AppState, now: i64) -> bool {
    match (&state.token_issuer, &state.store) {
        (Some(issuer), Some(store)) => issuer.catch_up(store, &state.verifier, now).await,
        _ => false,
    }
}

pub async fn check(
    State(state): State<AppState>,
    Origin(origin): Origin,
    Authorization(authorization): Authorization,
    Json(body): Json<CheckRequest>,
) -> Result<Response, ApiError> {
    let caller = Caller {
        entry: "check",
        label: None,
        origin,
        started: Instant::now(),
    };
    let bearer = match verified_bearer(&state, authorization.as_ref()).await {
        Ok(bearer) => bearer,
        Err(error) => {
            refused_token(&state, &caller, Some(&body), &error).await;
            return Err(ApiError::InvalidToken(error));
        }
    };
    let snapshot = super::snapshot(&state)?;
    let outcome = decide_for(&state, &caller, &snapshot, &bearer, body).await;
    let principal = bearer.principal();
    let mut http_response = json_response(&CheckAnswer {
        decision: if outcome.allowed() { "allow" } else { "deny" },
        decision_id: &outcome.decision_id,
        reason: outcome.reason(),
        reasons: reasons_json(&outcome),
        errors: errors_json(&outcome),
        principal: PrincipalJson {
            entity_type: &principal.entity_type,
            id: &principal.id,
            tenant: principal.tenant.as_deref(),
        },
        policy_revision: snapshot.snapshot.pack.revision().as_str(),
    });
    if let Ok(value) = HeaderValue::from_str(&outcome.decision_id) {
        http_response.headers_mut().insert("x-decision-id", value);
    }
    Ok(http_response)
}

/// Decides one check for a verified bearer and records it.
async fn decide_for(
    state: &AppState,
    caller: &Caller,
    snapshot: &engine::DecisionScope,
    bearer: &Bearer,
    body: CheckRequest,
) -> engine::DecisionOutcome {
    let verified = &bearer.token;
    let principal = bearer.principal();
    let input = DecisionInput {
        principal: PrincipalInput::Token(principal),
        action: body.action.name().to_owned(),
        resource: (&body.resource).into(),
        context: body.context,
    };
    let mut outcome = engine::decide(snapshot, &input);
    if let (Some(issuer), Some(decision)) = (&state.token_issuer, outcome.decision())
        && outcome.refusal.is_none()
        && decision.is_allowed()
        && issuer.issued(&verified.issuer)
    {
        // Which policies allowed a service account's request: the inventory report's
        // "unused scopes" finding is built from this (batched, off the request path).
        issuer.note_allowed(
            &principal.subject,
            decision
                .determining
                .iter()
                .map(|policy| policy.id.to_string()),
            unix_now(),
        );
    }
    decision_log::record_decision(
        state.decision_log.as_ref(),
        caller,
        snapshot,
        &input,
        Some(warden_audit::TokenRef {
            issuer: Some(verified.issuer.clone()),
            jti: verified.jti.clone(),
            subject: Some(principal.subject.clone()),
        }),
        &mut outcome,
    )
    .await;
    outcome
}

/// `POST /v1/checks`: several checks for one forwarded bearer token (e.g. filtering a list by
/// per-item decisions). The token is verified once; every check is decided and recorded as
/// `/v1/check` would, and the answer has exactly one result per check, in order.
pub async fn checks(
    State(state): State<AppState>,
    Origin(origin): Origin,
    Authorization(authorization): Authorization,
    Json(body): Json<ChecksRequest>,
) -> Result<Response, ApiError> {
    let caller = Caller {
        entry: "checks",
        label: None,
        origin,
        started: Instant::now(),
    };
    if body.checks.len() > state.limits.max_batch_size {
        return Err(ApiError::BadRequest(format!(
            "{} checks in one request; the limit is {}",
            body.checks.len(),
            state.limits.max_batch_size
        )));
    }
    let bearer = match verified_bearer(&state, authorization.as_ref()).await {
        Ok(bearer) => bearer,
        Err(error) => {
            refused_token(&state, &caller, None, &error).await;
            return Err(ApiError::InvalidToken(error));
        }
    };
    let snapshot = super::snapshot(&state)?;
    let mut outcomes = Vec::with_capacity(body.checks.len());
    for item in body.checks {
        outcomes.push(decide_for(&state, &caller, &snapshot, &bearer, item).await);
    }
    let principal = bearer.principal();
    Ok(json_response(&ChecksAnswer {
        principal: PrincipalJson {
            entity_type: &principal.entity_type,
            id: &principal.id,
            tenant: principal.tenant.as_deref(),
        },
        policy_revision: snapshot.snapshot.pack.revision().as_str(),
        results: outcomes
            .iter()
            .map(|outcome| CheckResult {
                decision: if outcome.allowed() { "allow" } else { "deny" },
                decision_id: &outcome.decision_id,
                reason: outcome.reason(),
                reasons: reasons_json(outcome),
                errors: errors_json(outcome),
            })
            .collect(),
    }))
}

/// Counts, logs and records a refused bearer token (the caller answers 401).
async fn refused_token(
    state: &AppState,
    caller: &Caller,
    attempted: Option<&CheckRequest>,
    error: &TokenError,
) {
    metrics::counter!("warden_token_failures_total", "reason" => error.reason.as_str())
        .increment(1);
    tracing::info!(reason = error.reason.as_str(), detail = ?error.detail, "bearer token refused");
    decision_log::record_token_refusal(
        state.decision_log.as_ref(),
        caller,
        attempted.map(|body| body.action.name().to_owned()),
        attempted.map(|body| warden_audit::EntityRef {
            entity_type: body.resource.entity_type.clone(),
            id: body.resource.id.clone(),
            tenant: None,
        }),
        error.reason.as_str(),
        error.detail.clone(),
        None,
    )
    .await;
}

/// Why a principal the store disabled or deleted is refused, if it is.
fn inactive_principal(state: &AppState, principal: &warden_token::Principal) -> Option<String> {
    let snapshot = state.policy.current()?;
    let type_name = snapshot.pack.type_name(&principal.entity_type)?;
    let uid = warden_core::cedar_policy::EntityUid::from_type_name_and_id(
        type_name,
        warden_core::cedar_policy::EntityId::new(&principal.id),
    );
    match snapshot.statuses.get(&uid)? {
        warden_store::PrincipalStatus::Disabled => Some(format!("{uid} is disabled")),
        warden_store::PrincipalStatus::Deleted => Some(format!("{uid} is deleted")),
        _ => None,
    }
}

/// `POST /v1/authenticate`: verify the forwarded bearer token and return the principal, without
/// a decision (for SDK dependencies that need the caller's identity on a route with no check).
pub async fn authenticate(
    State(state): State<AppState>,
    Origin(origin): Origin,
    Authorization(authorization): Authorization,
) -> Result<Response, ApiError> {
    let caller = Caller {
        entry: "authenticate",
        label: None,
        origin,
        started: Instant::now(),
    };
    // A replica that cannot see the store cannot see new revocations either: it vouches for
    // no identity until it can (decisions deny with `store_unavailable` on their own).
    if let Some(why) = state
        .store_freshness
        .as_ref()
        .and_then(|freshness| freshness.stale_reason())
    {
        return Err(ApiError::Unavailable(format!(
            "revocations cannot be checked: {why}"
        )));
    }
    let checked = verified_bearer(&state, authorization.as_ref())
        .await
        .and_then(
            |bearer| match inactive_principal(&state, bearer.principal()) {
                // A disabled or deleted principal has no identity to vouch for either, as a
                // disabled service account's tokens are refused.
                Some(why) => Err(TokenError::with(TokenReason::Revoked, why)),
                None => Ok(bearer),
            },
        );
    let bearer = match checked {
        Ok(bearer) => bearer,
        Err(error) => {
            refused_token(&state, &caller, None, &error).await;
            return Err(ApiError::InvalidToken(error));
        }
    };
    let verified = &bearer.token;
    let principal = bearer.principal();
    Ok(axum::Json(json!({
        "principal": {
            "type": principal.entity_type,
            "id": principal.id,
            "tenant": principal.tenant,
            "subject": principal.subject,
            "roles": principal.roles,
            "scopes": principal.scopes,
        },
        "issuer": verified.issuer,
        "expires_at": verified.expires_at,
    }))
    .into_response())
}
