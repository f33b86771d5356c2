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
//!
//! Refused before any decision, each recorded with its reason: a method-override header
//! (`method_override`: the upstream could run another method than the one decided on), a
//! forwarded header sent twice or in both forms (400), a path that is not plain segments
//! (`path_refused`), a resource the entity data does not know (`resource_unknown`, unless
//! `[forward_auth] unknown_resources = "decide"`). Identity headers are percent-encoded past
//! ASCII.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use warden_config::{UnknownResources, UnmatchedRoute};
use warden_service::decision_log::{self, Caller, Unrouted};
use warden_service::engine::EntityInput;
use warden_service::pipeline::{self, Attempt};

use super::check::bearer_token;
use crate::origin::Origin;
use crate::problem::ApiError;
use crate::state::AppState;

/// The value of one of the header pair `names` (`X-Forwarded-…`, `X-Original-…`). More than
/// one value, or both names, is an error: which one the upstream reads is not known (a proxy
/// that appends puts the client's value first), so Warden will not pick.
fn forwarded<'a>(headers: &'a HeaderMap, names: [&str; 2]) -> Result<Option<&'a str>, ApiError> {
    let mut values = names.iter().flat_map(|name| headers.get_all(*name).iter());
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(format!(
            "{} appear more than once between them: the gateway must send exactly one",
            names.join(" and ")
        )));
    }
    let text = value.to_str().map_err(|_| {
        ApiError::BadRequest(format!(
            "{} is not ASCII text (a gateway forwards the request line as the client sent it, percent-encoded)",
            names.join(" or ")
        ))
    })?;
    Ok(Some(text.trim()).filter(|value| !value.is_empty()))
}

/// Headers with which an upstream framework may run another method than the one decided on.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// A header value an upstream reads as Latin-1 text: controls, non-ASCII and `%` itself are
/// percent-encoded (so `café` arrives as `caf%C3%A9`, and decodes back).
const HEADER_UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// `METHOD /path` for a record: the query is left out (it may hold secrets).
fn recorded(method: &str, uri: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    format!("{method} {path}")
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
        forwarded(&headers, ["x-forwarded-method", "x-original-method"])?,
        forwarded(&headers, ["x-forwarded-uri", "x-original-uri"])?,
    ) else {
        return Err(ApiError::BadRequest(
            "forward-auth needs X-Forwarded-Method (or X-Original-Method) and X-Forwarded-Uri (or X-Original-URI) from the gateway".to_owned(),
        ));
    };
    let method = method.to_ascii_uppercase();
    if let Some(name) = METHOD_OVERRIDES
        .iter()
        .find(|name| headers.contains_key(**name))
    {
        let id = decision_log::new_record_id();
        let _recorded = decision_log::record_unrouted(
            state.decision_log.as_ref(),
            &caller,
            id.clone(),
            format!("{}: {name}", recorded(&method, uri)),
            Unrouted::MethodOverride,
        )
        .await;
        return Err(ApiError::Denied {
            reason: "method_override",
            decision_id: Some(id),
        });
    }
    let matched = match state.routes.find(&method, uri) {
        Ok(Some(matched)) => matched,
        Ok(None) if state.routes.unmatched() == UnmatchedRoute::Allow => {
            decision_log::record_unrouted(
                state.decision_log.as_ref(),
                &caller,
                decision_log::new_record_id(),
                recorded(&method, uri),
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
            let id = decision_log::new_record_id();
            let _recorded = decision_log::record_unrouted(
                state.decision_log.as_ref(),
                &caller,
                id.clone(),
                recorded(&method, uri),
                Unrouted::Denied,
            )
            .await;
            return Err(ApiError::Denied {
                reason: "no_route",
                decision_id: Some(id),
            });
        }
        Err(refused) => {
            let id = decision_log::new_record_id();
            let _recorded = decision_log::record_unrouted(
                state.decision_log.as_ref(),
                &caller,
                id.clone(),
                format!("{}: {refused}", recorded(&method, uri)),
                Unrouted::PathRefused,
            )
            .await;
            return Err(ApiError::Denied {
                reason: "path_refused",
                decision_id: Some(id),
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
    if state.unknown_resources == UnknownResources::Deny
        && !scope.snapshot.knows(&resource.entity_type, &resource.id)
    {
        let id = decision_log::new_record_id();
        let _recorded = decision_log::record_unrouted(
            state.decision_log.as_ref(),
            &caller,
            id.clone(),
            format!(
                "{}: {}::{:?}",
                recorded(&method, uri),
                resource.entity_type,
                resource.id
            ),
            Unrouted::UnknownResource,
        )
        .await;
        return Err(ApiError::Denied {
            reason: "resource_unknown",
            decision_id: Some(id),
        });
    }
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
        if value.is_empty() {
            continue;
        }
        let encoded = percent_encoding::utf8_percent_encode(value, HEADER_UNSAFE).to_string();
        match HeaderValue::from_str(&encoded) {
            Ok(value) => {
                response.headers_mut().insert(name, value);
            }
            // Encoded, every value is visible ASCII; should one still not fit, the request
            // does not go on without the identity the upstream expects.
            Err(_) => {
                return Err(ApiError::Unavailable(format!(
                    "the {name} header cannot carry the principal"
                )));
            }
        }
    }
    Ok(response)
}
