//! `GET|POST /v1/forward-auth`: the HTTP forward-auth of nginx `auth_request`, Caddy
//! `forward_auth` and Traefik ForwardAuth. The gateway forwards the original request's method
//! (`X-Forwarded-Method`, or `X-Original-Method`), path (`X-Forwarded-Uri`, or `X-Original-URI`)
//! and `Authorization`; the route table turns method and path into an action on a resource, and
//! the end user's bearer token is decided on exactly as `/v1/check` decides it (same token path,
//! snapshot, revocations, decision log, entry `forward_auth`). 200 lets the request through, 401
//! and 403 refuse it; a 403 names the reason code and the decision id, never a policy.
//!
//! Like `/v1/check`, the endpoint answers only for the bearer of the token: a caller learns
//! nothing it could not learn by sending the request itself.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use warden_config::UnmatchedRoute;
use warden_service::decision_log::{self, Caller, Unrouted};
use warden_service::engine::EntityInput;
use warden_service::pipeline::{self, Attempt};

use super::check::bearer_token;
use crate::origin::Origin;
use crate::problem::ApiError;
use crate::state::AppState;

/// The first of `names` the request carries, as text.
fn forwarded<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// `GET|POST /v1/forward-auth`.
pub async fn forward_auth(
    State(state): State<AppState>,
    Origin(origin): Origin,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = Caller {
        entry: "forward_auth",
        // Not the forwarded host: the record's caller names a credential, and the host is
        // whatever the end user wrote.
        label: None,
        origin,
        started: Instant::now(),
    };
    let (Some(method), Some(uri)) = (
        forwarded(&headers, &["x-forwarded-method", "x-original-method"]),
        forwarded(&headers, &["x-forwarded-uri", "x-original-uri"]),
    ) else {
        return Err(ApiError::BadRequest(
            "forward-auth needs X-Forwarded-Method (or X-Original-Method) and X-Forwarded-Uri (or X-Original-URI) from the gateway".to_owned(),
        ));
    };
    let method = method.to_ascii_uppercase();
    let matched = match state.routes.find(&method, uri) {
        Ok(Some(matched)) => matched,
        Ok(None) if state.routes.unmatched() == UnmatchedRoute::Allow => {
            decision_log::record_unrouted(
                state.decision_log.as_ref(),
                &caller,
                format!("{method} {uri}"),
                Unrouted::Allowed,
            )
            .await
            .map_err(|unavailable| {
                ApiError::Unavailable(format!(
                    "the decision log cannot record the request: {unavailable}"
                ))
            })?;
            return Ok(StatusCode::OK.into_response());
        }
        Ok(None) => {
            let _recorded = decision_log::record_unrouted(
                state.decision_log.as_ref(),
                &caller,
                format!("{method} {uri}"),
                Unrouted::Denied,
            )
            .await;
            return Err(ApiError::Denied {
                reason: "no_route",
                decision_id: None,
            });
        }
        Err(refused) => {
            let _recorded = decision_log::record_unrouted(
                state.decision_log.as_ref(),
                &caller,
                format!("{method} {uri}: {refused}"),
                Unrouted::PathRefused,
            )
            .await;
            return Err(ApiError::Denied {
                reason: "path_refused",
                decision_id: None,
            });
        }
    };
    let resource = EntityInput {
        entity_type: matched.resource_type.to_owned(),
        id: matched.resource_id.clone(),
        properties: None,
    };
    let bearer = match bearer_token(headers.get(axum::http::header::AUTHORIZATION)) {
        Ok(token) => state.authenticate(token).await,
        Err(error) => Err(error),
    };
    let bearer = match bearer {
        Ok(bearer) => bearer,
        Err(error) => {
            let attempt = Attempt {
                action: matched.action.to_owned(),
                resource: warden_audit::EntityRef {
                    entity_type: resource.entity_type.clone(),
                    id: resource.id.clone(),
                    tenant: None,
                },
            };
            state.refuse_token(&caller, Some(attempt), &error).await;
            return Err(ApiError::InvalidToken(error));
        }
    };
    let scope = super::snapshot(&state)?;
    let outcome = state
        .check(
            &scope,
            &caller,
            &bearer,
            pipeline::CheckRequest {
                action: matched.action.to_owned(),
                resource,
                context: None,
            },
        )
        .await;
    if !outcome.allowed() {
        return Err(ApiError::Denied {
            reason: outcome.reason(),
            decision_id: Some(outcome.decision_id.clone()),
        });
    }
    let mut response = StatusCode::OK.into_response();
    let principal = bearer.principal();
    for (name, value) in [
        ("x-decision-id", outcome.decision_id.as_str()),
        ("x-warden-principal-type", principal.entity_type.as_str()),
        ("x-warden-principal", principal.id.as_str()),
        (
            "x-warden-tenant",
            principal.tenant.as_deref().unwrap_or_default(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(value)
            && !value.is_empty()
        {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}
