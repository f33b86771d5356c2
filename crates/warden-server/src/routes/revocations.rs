//! `POST /v1/admin/revocations` and `GET /v1/admin/revocations`: take access away at once.
//! Revocations are global (they name issuers, keys and clients, not tenants), so only an admin
//! credential for all tenants may make or list them. Each is audited in the store and becomes a
//! decision-log record like every admin write; every replica applies it within one poll.

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use warden_store::{Revocation, RevocationKind};

use crate::admin_auth::GlobalAdmin;
use crate::clock::unix_now;
use crate::json::Json;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::wire::{RevocationJson, RevocationsAnswer, json_response};

/// The longest value a revocation may name (a jti, sid, sub, client id or kid).
const MAX_VALUE_BYTES: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    kind: String,
    #[serde(default)]
    issuer: Option<String>,
    value: String,
    reason: String,
    #[serde(default)]
    expires_at: Option<i64>,
}

fn store(state: &AppState) -> Result<&warden_store::Store, ApiError> {
    state
        .store
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("revocations need [storage]".to_owned()))
}

/// Every store failure is a 503 here (a revocation names nothing that could be missing).
fn store_failed(error: warden_store::StoreError) -> ApiError {
    ApiError::Unavailable(format!("the store failed: {error}"))
}

/// The revocation a request asks for, made by `actor` at `now`: every field checked, and an
/// issuer named exactly when the kind is scoped to one, and then only a configured issuer.
fn revocation_of(
    state: &AppState,
    request: RevokeRequest,
    actor: String,
    now: i64,
) -> Result<Revocation, ApiError> {
    let kind = RevocationKind::parse(&request.kind).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "kind `{}` is not one of token, session, subject, client, key",
            request.kind
        ))
    })?;
    if request.value.trim().is_empty() || request.value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::BadRequest(format!(
            "value must be 1 to {MAX_VALUE_BYTES} bytes"
        )));
    }
    if request.reason.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "a revocation needs a reason".to_owned(),
        ));
    }
    if request.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::BadRequest("expires_at is in the past".to_owned()));
    }
    let issuer = match (kind.issuer_scoped(), request.issuer) {
        (true, Some(issuer)) => {
            // A typo would revoke nothing and say nothing: only configured issuers.
            if !state
                .verifier
                .issuers()
                .any(|known| known.config.issuer == issuer)
            {
                return Err(ApiError::BadRequest(format!(
                    "issuer `{issuer}` is not configured, so none of its tokens are accepted"
                )));
            }
            issuer
        }
        (true, None) => {
            return Err(ApiError::BadRequest(format!(
                "a {} revocation names its issuer",
                kind.as_str()
            )));
        }
        (false, Some(_)) => {
            return Err(ApiError::BadRequest(format!(
                "a {} revocation applies across issuers; leave issuer out",
                kind.as_str()
            )));
        }
        (false, None) => String::new(),
    };
    Ok(Revocation {
        id: 0,
        version: 0,
        kind,
        issuer,
        value: request.value,
        // `iat` counts whole seconds: a token issued in this very second is covered too (as
        // service-account offboarding does); one issued from the next second on is not.
        revoked_at: now + 1,
        expires_at: request.expires_at,
        reason: request.reason,
        actor,
    })
}

pub async fn revoke(
    State(state): State<AppState>,
    GlobalAdmin(admin): GlobalAdmin,
    Json(request): Json<RevokeRequest>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let revocation = revocation_of(&state, request, admin.actor(), unix_now())?;
    let stored = store.revoke(&revocation).await.map_err(store_failed)?;
    // In force on this replica before the answer; the others see it within one poll.
    state.revocations.apply_local(&stored);
    tracing::info!(kind = stored.kind.as_str(), id = stored.id, actor = %stored.actor, "revoked");
    Ok(json_response(&RevocationJson::of(&stored)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    _admin: GlobalAdmin,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let limit = query.limit.unwrap_or(1000).clamp(1, 100_000);
    let revocations = store
        .revocations(
            unix_now()
                .saturating_sub(crate::revocation::EXPIRY_MARGIN_SECONDS)
                .saturating_sub(1),
            limit,
        )
        .await
        .map_err(store_failed)?;
    Ok(json_response(&RevocationsAnswer {
        revocations: revocations.iter().map(RevocationJson::of).collect(),
        in_memory: state.revocations.len(),
    }))
}
