//! One gateway decision, whichever gateway asks: HTTP forward-auth (nginx, Caddy, Traefik) and
//! Envoy `ext_authz` over gRPC hand the original request's method, target and `Authorization`
//! here, and get back either the headers to add upstream or the refusal to answer with. Both
//! therefore decide through the same route table, token path, snapshot, revocations and decision
//! log (each record marked with its entry point, `forward_auth` or `ext_authz`).
//!
//! SECURITY-SENSITIVE. Refused before any decision, each recorded with its own reason: a
//! method-override header (`method_override`: the upstream could run another method than the one
//! decided on), a path that is not plain segments (`path_refused`), no route (`no_route`, unless
//! the table lets unmatched requests through), a resource the entity data does not know
//! (`resource_unknown`, unless `[forward_auth] unknown_resources = "decide"`). A denial names the
//! reason code and the decision id, never a policy. On allow, the identity headers (percent-encoded
//! past ASCII) and, with `[context_token]`, a context token signed by Warden for the route's
//! upstream.

use axum::http::HeaderValue;
use warden_config::{ContextTokenSettings, UnknownResources, UnmatchedRoute};
use warden_issuer::context_token::{self, ContextClaims, ContextResource};
use warden_service::clock::unix_now;
use warden_service::decision_log::{self, Caller, Unrouted};
use warden_service::engine::EntityInput;
use warden_service::pipeline::{self, Attempt, Bearer};
use warden_service::routes::RouteMatch;

use crate::problem::ApiError;
use crate::routes::check::bearer_token;
use crate::state::AppState;

/// The headers a gateway sets upstream on allow. A gateway removes those it does not set, so
/// a client cannot send its own.
pub const IDENTITY_HEADERS: [&str; 5] = [
    "x-decision-id",
    "x-warden-principal-type",
    "x-warden-principal",
    "x-warden-tenant",
    CONTEXT_HEADER,
];

/// The header carrying the context token upstream.
pub const CONTEXT_HEADER: &str = "x-warden-context";

/// Headers with which an upstream framework may run another method than the one decided on.
pub const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The query parameter with which Symfony, Laravel and Express's `methodOverride('_method')` run
/// another method than the one decided on.
const METHOD_OVERRIDE_PARAMETER: &str = "_method";

/// A header of the original request that refuses it before any route is tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screened {
    /// A method-override header, in any spelling (`X-HTTP-Method-Override`,
    /// `x_http_method_override`).
    MethodOverride(String),
    /// One of Warden's identity headers spelled with `_` (`x_warden_tenant`): a gateway
    /// overwrites or removes only the `-` spelling, and an upstream that reads headers CGI-style
    /// (`HTTP_X_WARDEN_TENANT`) takes both for the same.
    IdentityLookalike(String),
}

/// Whether header `name` is `target` once `_` is read as `-`, case aside.
fn folds_to(name: &str, target: &str) -> bool {
    name.len() == target.len()
        && name.bytes().zip(target.bytes()).all(|(a, b)| {
            let a = if a == b'_' {
                b'-'
            } else {
                a.to_ascii_lowercase()
            };
            a == b
        })
}

/// The first header name of the original request that refuses it, if any.
pub fn screen_headers<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Screened> {
    for name in names {
        if METHOD_OVERRIDES.iter().any(|target| folds_to(name, target)) {
            return Some(Screened::MethodOverride(name.to_owned()));
        }
        if name.contains('_') && IDENTITY_HEADERS.iter().any(|target| folds_to(name, target)) {
            return Some(Screened::IdentityLookalike(name.to_owned()));
        }
    }
    None
}

/// Whether `target`'s query holds a `_method` parameter (its name percent-decoded).
fn overrides_method_in_query(target: &str) -> bool {
    let Some((_, query)) = target.split_once('?') else {
        return false;
    };
    form_urlencoded::parse(query.as_bytes())
        .any(|(name, _)| name.trim().eq_ignore_ascii_case(METHOD_OVERRIDE_PARAMETER))
}

/// A header value an upstream reads as Latin-1 text: controls, non-ASCII and `%` itself are
/// percent-encoded (so `café` arrives as `caf%C3%A9`, and decodes back).
const HEADER_UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// The original request, as the gateway forwarded it.
#[derive(Debug, Clone)]
pub struct EdgeRequest<'a> {
    /// The method, upper case.
    pub method: &'a str,
    /// The request target: the path, with its query if any, as the client sent it.
    pub target: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a HeaderValue>,
    /// What [`screen_headers`] found in the original request's header names.
    pub screened: Option<Screened>,
}

/// What the upstream gets on allow: the identity headers, already encoded. Empty when an
/// unmatched request is let through (`[forward_auth] default = "allow"`): nobody was decided on.
#[derive(Debug, Default)]
pub struct EdgeAllow {
    /// `(name, value)` pairs, names from [`IDENTITY_HEADERS`].
    pub headers: Vec<(&'static str, HeaderValue)>,
}

/// `METHOD /path` for a record: the query is left out (it may hold secrets).
fn recorded(method: &str, target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    format!("{method} {path}")
}

/// Records a request refused before any decision and answers 403 with `reason`.
async fn refuse(
    state: &AppState,
    caller: &Caller,
    what: String,
    unrouted: Unrouted,
    reason: &'static str,
) -> ApiError {
    let id = decision_log::new_record_id();
    let _recorded = decision_log::record_unrouted(
        state.decision_log.as_ref(),
        caller,
        id.clone(),
        what,
        unrouted,
    )
    .await;
    ApiError::Denied {
        reason,
        decision_id: Some(id),
    }
}

/// A gateway's request Warden cannot read (a header missing, twice, not text): recorded as a
/// denial of the entry point, answered 400 with `message`.
pub async fn refuse_malformed(state: &AppState, caller: &Caller, message: String) -> ApiError {
    let _recorded = decision_log::record_unrouted(
        state.decision_log.as_ref(),
        caller,
        decision_log::new_record_id(),
        message.clone(),
        Unrouted::Malformed,
    )
    .await;
    ApiError::BadRequest(message)
}

/// A gateway's request larger than Warden reads: recorded, answered 403 `request_too_large`.
pub async fn refuse_too_large(state: &AppState, caller: &Caller, what: String) -> ApiError {
    refuse(state, caller, what, Unrouted::TooLarge, "request_too_large").await
}

/// Decides `request` for the gateway that `caller` names. A 503's details (a file path, an OS
/// error) go to the log, not to the end user the gateway passes the answer to.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    request: EdgeRequest<'_>,
) -> Result<EdgeAllow, ApiError> {
    decide_inner(state, caller, request)
        .await
        .map_err(|error| match error {
            ApiError::Unavailable(detail) => {
                tracing::warn!(entry = caller.entry, %detail, "a gateway request was not decided");
                ApiError::Unavailable(
                    "authorization is unavailable; the request was not decided".to_owned(),
                )
            }
            other => other,
        })
}

async fn decide_inner(
    state: &AppState,
    caller: &Caller,
    request: EdgeRequest<'_>,
) -> Result<EdgeAllow, ApiError> {
    let EdgeRequest {
        method,
        target,
        authorization,
        screened,
    } = request;
    match screened {
        Some(Screened::MethodOverride(name)) => {
            let what = format!("{}: {name}", recorded(method, target));
            return Err(refuse(
                state,
                caller,
                what,
                Unrouted::MethodOverride,
                "method_override",
            )
            .await);
        }
        Some(Screened::IdentityLookalike(name)) => {
            let what = format!("{}: {name}", recorded(method, target));
            return Err(refuse(
                state,
                caller,
                what,
                Unrouted::IdentityHeader,
                "identity_header_refused",
            )
            .await);
        }
        None => {}
    }
    if overrides_method_in_query(target) {
        let what = format!(
            "{}: ?{METHOD_OVERRIDE_PARAMETER}=",
            recorded(method, target)
        );
        return Err(refuse(
            state,
            caller,
            what,
            Unrouted::MethodOverride,
            "method_override",
        )
        .await);
    }
    let matched = match state.routes.find(method, target) {
        Ok(Some(matched)) => matched,
        Ok(None) if state.routes.unmatched() == UnmatchedRoute::Allow => {
            decision_log::record_unrouted(
                state.decision_log.as_ref(),
                caller,
                decision_log::new_record_id(),
                recorded(method, target),
                Unrouted::Allowed,
            )
            .await
            .map_err(|unavailable| {
                ApiError::Unavailable(format!(
                    "the decision log cannot record the request: {unavailable}"
                ))
            })?;
            return Ok(EdgeAllow::default());
        }
        Ok(None) => {
            let what = recorded(method, target);
            return Err(refuse(state, caller, what, Unrouted::Denied, "no_route").await);
        }
        Err(refused) => {
            let what = format!("{}: {refused}", recorded(method, target));
            return Err(refuse(state, caller, what, Unrouted::PathRefused, "path_refused").await);
        }
    };
    let resource = EntityInput {
        entity_type: matched.resource_type.to_owned(),
        id: matched.resource_id.clone(),
        properties: None,
    };
    let bearer = match bearer_token(authorization) {
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
            state.refuse_token(caller, Some(attempt), &error).await;
            return Err(ApiError::InvalidToken(error));
        }
    };
    let scope = crate::routes::snapshot(state)?;
    // Without a signing key an allow could not carry its context token: 503 before deciding,
    // so the log never holds an allow the gateway did not get.
    if state.context_token.is_some()
        && state
            .token_issuer
            .as_ref()
            .and_then(|issuer| issuer.signing_key())
            .is_none()
    {
        return Err(ApiError::Unavailable(
            "no context token: the signing key is not loaded yet".to_owned(),
        ));
    }
    if state.unknown_resources == UnknownResources::Deny
        && !scope.snapshot.knows(&resource.entity_type, &resource.id)
    {
        let what = format!(
            "{}: {}::{:?}",
            recorded(method, target),
            resource.entity_type,
            resource.id
        );
        return Err(refuse(
            state,
            caller,
            what,
            Unrouted::UnknownResource,
            "resource_unknown",
        )
        .await);
    }
    let outcome = state
        .check(
            &scope,
            caller,
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
    let context = match &state.context_token {
        Some(settings) => Some(sign_context(
            state,
            settings,
            &bearer,
            &matched,
            &outcome.decision_id,
        )?),
        None => None,
    };
    let principal = bearer.principal();
    let mut headers = Vec::with_capacity(IDENTITY_HEADERS.len());
    for (name, value) in [
        ("x-decision-id", outcome.decision_id.as_str()),
        ("x-warden-principal-type", principal.entity_type.as_str()),
        ("x-warden-principal", principal.id.as_str()),
        (
            "x-warden-tenant",
            principal.tenant.as_deref().unwrap_or_default(),
        ),
        (CONTEXT_HEADER, context.as_deref().unwrap_or_default()),
    ] {
        if value.is_empty() {
            continue;
        }
        let encoded = percent_encoding::utf8_percent_encode(value, HEADER_UNSAFE).to_string();
        match HeaderValue::from_str(&encoded) {
            Ok(value) => headers.push((name, value)),
            // Encoded, every value is visible ASCII; should one still not fit, the request
            // does not go on without the identity the upstream expects.
            Err(_) => {
                return Err(ApiError::Unavailable(format!(
                    "the {name} header cannot carry the principal"
                )));
            }
        }
    }
    Ok(EdgeAllow { headers })
}

/// The context token for an allowed request: Warden's signed statement of the decision, for the
/// route's upstream. No signing key yet (the store has not been read): 503, the request does not
/// go on without it.
fn sign_context(
    state: &AppState,
    settings: &ContextTokenSettings,
    bearer: &Bearer,
    matched: &RouteMatch<'_>,
    decision_id: &str,
) -> Result<String, ApiError> {
    let unavailable = |why: &str| ApiError::Unavailable(format!("no context token: {why}"));
    let issuer = state
        .token_issuer
        .as_ref()
        .ok_or_else(|| unavailable("Warden issues no tokens"))?;
    let key = issuer
        .signing_key()
        .ok_or_else(|| unavailable("the signing key is not loaded yet"))?;
    let jti =
        warden_issuer::credentials::new_jti().map_err(|error| unavailable(&error.to_string()))?;
    let principal = bearer.principal();
    let now = unix_now();
    let ttl = i64::try_from(settings.ttl_seconds).unwrap_or(i64::MAX);
    let claims = ContextClaims {
        iss: issuer.settings.issuer.clone(),
        sub: principal.id.clone(),
        aud: matched
            .audience
            .unwrap_or(settings.audience.as_str())
            .to_owned(),
        exp: now.saturating_add(ttl),
        iat: now,
        nbf: now,
        jti,
        principal_type: principal.entity_type.clone(),
        tenant: principal.tenant.clone(),
        decision_id: decision_id.to_owned(),
        original_jti: bearer.token.jti.as_ref().map(ToString::to_string),
        action: matched.action.to_owned(),
        resource: ContextResource {
            entity_type: matched.resource_type.to_owned(),
            id: matched.resource_id.clone(),
        },
    };
    context_token::mint(&key, &claims).map_err(|error| unavailable(&error.to_string()))
}
