//! `POST /v1/admin/revocations` and `GET /v1/admin/revocations`: take access away at once.
//! Revocations are global (they name issuers, keys and clients, not tenants), so only an admin
//! credential for all tenants may make or list them. Each is audited in the store and becomes a
//! decision-log record like every admin write; every replica applies it within one poll.

use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use warden_store::{Revocation, RevocationKind};

use crate::admin_auth::GlobalAdmin;
use crate::clock::unix_now;
use crate::json::Json;
use crate::problem::ApiError;
use crate::state::AppState;

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

fn to_json(revocation: &Revocation) -> Value {
    json!({
        "id": revocation.id,
        "kind": revocation.kind.as_str(),
        "issuer": if revocation.issuer.is_empty() { None } else { Some(&revocation.issuer) },
        "value": revocation.value,
        "revoked_at": revocation.revoked_at,
        "expires_at": revocation.expires_at,
        "reason": revocation.reason,
        "actor": revocation.actor,
    })
}

pub async fn revoke(
    State(state): State<AppState>,
    GlobalAdmin(admin): GlobalAdmin,
    Json(request): Json<RevokeRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let store = store(&state)?;
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
    let now = unix_now();
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
    let stored = store
        .revoke(&Revocation {
            id: 0,
            version: 0,
            kind,
            issuer,
            value: request.value,
            revoked_at: now,
            expires_at: request.expires_at,
            reason: request.reason,
            actor: admin.actor(),
        })
        .await
        .map_err(|error| ApiError::Unavailable(format!("the store failed: {error}")))?;
    // In force on this replica before the answer; the others see it within one poll.
    state.revocations.apply_local(&stored);
    tracing::info!(kind = stored.kind.as_str(), id = stored.id, actor = %stored.actor, "revoked");
    Ok(axum::Json(to_json(&stored)))
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
) -> Result<axum::Json<Value>, ApiError> {
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
        .map_err(|error| ApiError::Unavailable(format!("the store failed: {error}")))?;
    Ok(axum::Json(json!({
        "revocations": revocations.iter().map(to_json).collect::<Vec<_>>(),
        "in_memory": state.revocations.len(),
    })))
}
