//! `POST /v1/check`: the caller forwards the end user's bearer token; Warden verifies it, builds
//! the principal, decides, and answers with the decision, its id, the principal and the reasons.

use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use warden_token::{TokenError, TokenReason};

use warden_service::pipeline::{self, Attempt, IdentifyError};

use crate::decision_log::Caller;
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

/// What a `/v1/check` body asks, for the pipeline.
fn request_of(body: CheckRequest) -> pipeline::CheckRequest {
    pipeline::CheckRequest {
        action: body.action.name().to_owned(),
        resource: (&body.resource).into(),
        context: body.context,
    }
}

/// What a refused token was trying to do, for its record.
fn attempt_of(body: &CheckRequest) -> Attempt {
    Attempt {
        action: body.action.name().to_owned(),
        resource: warden_audit::EntityRef {
            entity_type: body.resource.entity_type.clone(),
            id: body.resource.id.clone(),
            tenant: None,
        },
    }
}

pub(crate) fn caller(entry: &'static str, origin: Option<std::net::SocketAddr>) -> Caller {
    Caller {
        entry,
        label: None,
        origin,
        started: Instant::now(),
    }
}

fn principal_json(principal: &warden_token::Principal) -> PrincipalJson<'_> {
    PrincipalJson {
        entity_type: &principal.entity_type,
        id: &principal.id,
        tenant: principal.tenant.as_deref(),
    }
}

/// `POST /v1/check`.
pub async fn check(
    State(state): State<AppState>,
    Origin(origin): Origin,
    Authorization(authorization): Authorization,
    Json(body): Json<CheckRequest>,
) -> Result<Response, ApiError> {
    let caller = caller("check", origin);
    let bearer = match authenticated(&state, authorization.as_ref()).await {
        Ok(bearer) => bearer,
        Err(error) => {
            state
                .refuse_token(&caller, Some(attempt_of(&body)), &error)
                .await;
            return Err(ApiError::InvalidToken(error));
        }
    };
    let scope = super::snapshot(&state)?;
    let outcome = state
        .check(&scope, &caller, &bearer, request_of(body))
        .await;
    let mut response = json_response(&CheckAnswer {
        decision: if outcome.allowed() { "allow" } else { "deny" },
        decision_id: &outcome.decision_id,
        reason: outcome.reason(),
        reasons: reasons_json(&outcome),
        errors: errors_json(&outcome),
        principal: principal_json(bearer.principal()),
        policy_revision: scope.snapshot.pack.revision().as_str(),
    });
    if let Ok(value) = HeaderValue::from_str(&outcome.decision_id) {
        response.headers_mut().insert("x-decision-id", value);
    }
    Ok(response)
}

/// The bearer token of the `Authorization` header, verified by the pipeline.
async fn authenticated(
    state: &AppState,
    authorization: Option<&HeaderValue>,
) -> Result<warden_service::Bearer, TokenError> {
    state.authenticate(bearer_token(authorization)?).await
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
    let caller = caller("checks", origin);
    let bearer = match authenticated(&state, authorization.as_ref()).await {
        Ok(bearer) => bearer,
        Err(error) => {
            state.refuse_token(&caller, None, &error).await;
            return Err(ApiError::InvalidToken(error));
        }
    };
    if body.checks.is_empty() {
        // An empty batch would vouch for the token without a decision; /v1/authenticate is
        // the route for that, with its own checks (store freshness, inactive principals).
        return Err(ApiError::BadRequest(
            "`checks` is empty: give at least one check".to_owned(),
        ));
    }
    if body.checks.len() > state.limits.max_batch_size {
        return Err(ApiError::BadRequest(format!(
            "{} checks in one request; the limit is {}",
            body.checks.len(),
            state.limits.max_batch_size
        )));
    }
    let scope = super::snapshot(&state)?;
    let mut outcomes = Vec::with_capacity(body.checks.len());
    for item in body.checks {
        outcomes.push(
            state
                .check(&scope, &caller, &bearer, request_of(item))
                .await,
        );
    }
    Ok(json_response(&ChecksAnswer {
        principal: principal_json(bearer.principal()),
        policy_revision: scope.snapshot.pack.revision().as_str(),
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

/// The verified, screened bearer of a request that acts as its end user (no decision): a
/// refused token is recorded under `entry` and answered 401; a stale store view is 503.
pub(crate) async fn identified(
    state: &AppState,
    entry: &'static str,
    origin: Option<std::net::SocketAddr>,
    authorization: Option<&HeaderValue>,
) -> Result<warden_service::Bearer, ApiError> {
    let identified = match bearer_token(authorization) {
        Ok(token) => state.identify(token).await,
        Err(error) => Err(IdentifyError::Token(error)),
    };
    match identified {
        Ok(bearer) => Ok(bearer),
        Err(IdentifyError::Stale(why)) => Err(ApiError::Unavailable(format!(
            "revocations cannot be checked: {why}"
        ))),
        Err(IdentifyError::Token(error)) => {
            state
                .refuse_token(&caller(entry, origin), None, &error)
                .await;
            Err(ApiError::InvalidToken(error))
        }
    }
}

/// `POST /v1/authenticate`: verify the forwarded bearer token and return the principal, without
/// a decision (for SDK dependencies that need the caller's identity on a route with no check).
pub async fn authenticate(
    State(state): State<AppState>,
    Origin(origin): Origin,
    Authorization(authorization): Authorization,
) -> Result<Response, ApiError> {
    let bearer = identified(&state, "authenticate", origin, authorization.as_ref()).await?;
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
        "issuer": bearer.token.issuer,
        "expires_at": bearer.token.expires_at,
        // Who acts for the principal (a delegated token), the current actor first.
        "actors": bearer.presented().actors,
    }))
    .into_response())
}
