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

/// A header value an upstream reads as Latin-1 text: controls, non-ASCII and `%` itself are
/// percent-encoded (so `café` arrives as `caf%C3%A9`, and decodes back).
const HEADER_UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// The original request, as the gateway forwarded it.
#[derive(Debug, Clone, Copy)]
pub struct EdgeRequest<'a> {
    /// The method, upper case.
    pub method: &'a str,
    /// The request target: the path, with its query if any, as the client sent it.
    pub target: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a HeaderValue>,
    /// A method-override header the request carries, if any (one of [`METHOD_OVERRIDES`]).
    pub method_override: Option<&'static str>,
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

/// Decides `request` for the gateway that `caller` names.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    request: EdgeRequest<'_>,
) -> Result<EdgeAllow, ApiError> {
    let EdgeRequest {
        method,
        target,
        authorization,
        method_override,
    } = request;
    if let Some(name) = method_override {
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
