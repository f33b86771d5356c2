//! Operations endpoints: liveness, readiness (with the reason when not ready), Prometheus
//! metrics, and the OpenAPI document.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::problem::ApiError;
use crate::state::AppState;

/// The OpenAPI document of this API, kept beside the code and checked by the tests.
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.policy.current();
    let reload_error = state.policy.last_error();
    let policy = match &snapshot {
        Some(snapshot) => json!({
            "status": if reload_error.is_some() { "degraded" } else { "ok" },
            "revision": snapshot.pack.revision().as_str(),
            "entities_revision": snapshot.entities_revision,
            "store_version": snapshot.store_version,
            "entities": snapshot.entities().len(),
            "policies": snapshot.pack.policies().len(),
            "last_reload_error": reload_error,
        }),
        None => {
            json!({"status": "down", "error": reload_error.unwrap_or_else(|| "not loaded".to_owned())})
        }
    };
    let mut issuers_ready = true;
    let issuers: Vec<Value> = state
        .verifier
        .issuers()
        .map(|issuer| {
            let status = issuer.keys.status();
            issuers_ready &= status.usable;
            json!({
                "issuer": issuer.config.issuer,
                "status": if status.usable { "ok" } else { "down" },
                "keys": status.n_keys,
                "age_seconds": status.age_seconds,
                "last_error": status.last_error,
            })
        })
        .collect();
    let store = match (&state.store, &state.store_freshness) {
        (Some(store), Some(freshness)) => match freshness.stale_reason() {
            None => json!({"status": "ok", "backend": store.backend()}),
            Some(why) => json!({"status": "down", "backend": store.backend(), "error": why}),
        },
        _ => json!({"status": "none"}),
    };
    let store_ready = store.get("status").and_then(Value::as_str) != Some("down");
    let (audit, audit_ready) = match &state.decision_log {
        None => (json!({"status": "disabled"}), true),
        Some(log) => match log.log.problem() {
            None => (json!({"status": "ok"}), true),
            Some(error) => (json!({"status": "down", "error": error}), false),
        },
    };
    let ready = snapshot.is_some() && issuers_ready && store_ready && audit_ready;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {"policy": policy, "issuers": issuers, "store": store, "audit": audit},
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text; behind a credential when `[metrics] credentials` is set
/// (compared as digests in constant time, like PEP credentials).
pub async fn metrics(
    State(state): State<AppState>,
    caller_key: Option<axum::Extension<crate::rate_limit::CallerKey>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !state.metrics_credentials.is_empty() {
        let presented = crate::pep_auth::bearer(headers.get(header::AUTHORIZATION));
        let matched = presented
            .and_then(|credential| {
                crate::pep_auth::matching_digest(credential, &state.metrics_credentials)
            })
            .is_some();
        let caller_key = caller_key.map(|axum::Extension(key)| key);
        if let Err(refused) =
            crate::rate_limit::settle(&state.rate_limits, caller_key.as_ref(), matched)
        {
            return refused.into_response();
        }
        if !matched {
            return ApiError::MetricsUnauthenticated.into_response();
        }
    }
    for issuer in state.verifier.issuers() {
        let fetches = issuer.keys.fetch_count();
        metrics::gauge!("warden_jwks_fetches", "issuer" => issuer.config.issuer.clone())
            .set(fetches as f64);
    }
    metrics::gauge!("warden_token_cache_entries").set(state.verifier.cache().len() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
