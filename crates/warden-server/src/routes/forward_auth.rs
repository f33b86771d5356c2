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
//! The decision itself is `crate::edge` (shared with Envoy `ext_authz`); this handler reads the
//! forwarded headers, refusing one sent twice or in both forms (400), and maps the answer: 200
//! with the identity headers (and the context token) to copy upstream.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use warden_service::decision_log::Caller;

use crate::edge::{self, EdgeRequest};
use crate::origin::Origin;
use crate::problem::ApiError;
use crate::state::AppState;

/// The value of one of the header pair `names` (`X-Forwarded-…`, `X-Original-…`). More than
/// one value, or both names, is an error (the message): which one the upstream reads is not
/// known (a proxy that appends puts the client's value first), so Warden will not pick.
fn forwarded<'a>(headers: &'a HeaderMap, names: [&str; 2]) -> Result<Option<&'a str>, String> {
    let mut values = names.iter().flat_map(|name| headers.get_all(*name).iter());
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(format!(
            "{} appear more than once between them: the gateway must send exactly one",
            names.join(" and ")
        ));
    }
    let text = value.to_str().map_err(|_| {
        format!(
            "{} is not ASCII text (a gateway forwards the request line as the client sent it, percent-encoded)",
            names.join(" or ")
        )
    })?;
    Ok(Some(text.trim()).filter(|value| !value.is_empty()))
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
    let forwarded_pair =
        forwarded(&headers, ["x-forwarded-method", "x-original-method"]).and_then(|method| {
            Ok((
                method,
                forwarded(&headers, ["x-forwarded-uri", "x-original-uri"])?,
            ))
        });
    let (method, target) = match forwarded_pair {
        Ok((Some(method), Some(target))) => (method, target),
        Ok(_) => {
            return Err(edge::refuse_malformed(
                &state,
                &caller,
                "forward-auth needs X-Forwarded-Method (or X-Original-Method) and X-Forwarded-Uri (or X-Original-URI) from the gateway".to_owned(),
            )
            .await);
        }
        Err(message) => return Err(edge::refuse_malformed(&state, &caller, message).await),
    };
    let method = method.to_ascii_uppercase();
    let request = EdgeRequest {
        method: &method,
        target,
        authorization: headers.get(axum::http::header::AUTHORIZATION),
        screened: edge::screen_headers(headers.keys().map(|name| name.as_str())),
    };
    let allow = edge::decide(&state, &caller, request).await?;
    let mut response = StatusCode::OK.into_response();
    for (name, value) in allow.headers {
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}
