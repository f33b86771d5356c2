//! `/v1/admin/credentials`: admin credentials as a lifecycle. SECURITY-SENSITIVE.
//!
//! Creating and listing need a credential for all tenants. Rotating and revoking need one for
//! all tenants, or the credential itself (an automation rotates its own secret). A secret is
//! answered once, at creation or rotation, and never logged; the store keeps its digest.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use warden_store::{AdminCredential, AdminCredentialRecord, NewAdminCredential, StoreError};

use crate::admin_auth::{AnyAdmin, GlobalAdmin};
use crate::clock::unix_now;
use crate::json::Json;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::wire::{json_response, json_response_with};

/// The longest label.
const MAX_LABEL_BYTES: usize = 256;
/// The longest reason.
const MAX_REASON_BYTES: usize = 1024;
/// The furthest expiry: ten years.
const MAX_LIFETIME_SECONDS: u64 = 10 * 365 * 86_400;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// One tenant, or none for all tenants.
    #[serde(default)]
    tenant: Option<String>,
    /// Seconds from now until it expires.
    #[serde(default)]
    expires_in_seconds: Option<u64>,
    #[serde(default)]
    label: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Checked after authorization, so a caller without the right learns nothing more.
    #[serde(default)]
    reason: String,
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {}

/// A credential as answered (never its digest).
#[derive(Debug, Serialize)]
pub struct CredentialJson {
    id: String,
    tenant: Option<String>,
    label: String,
    status: &'static str,
    created_at: i64,
    created_by: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    rotated_at: Option<i64>,
    /// Only in the answer that made it (creation, rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl CredentialJson {
    fn of(record: AdminCredentialRecord, now: i64, secret: Option<String>) -> Self {
        CredentialJson {
            status: record.status(now),
            id: record.id,
            tenant: record.tenant_scope,
            label: record.label,
            created_at: record.created_at,
            created_by: record.created_by,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
            rotated_at: record.rotated_at,
            secret,
        }
    }
}

#[derive(Debug, Serialize)]
struct CredentialList {
    credentials: Vec<CredentialJson>,
}

fn store(state: &AppState) -> Result<&warden_store::Store, ApiError> {
    state
        .store
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("the admin API needs [storage]".to_owned()))
}

fn store_failed(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound(message) => ApiError::NotFound(message),
        StoreError::Conflict(message) => ApiError::Conflict(message),
        StoreError::Refused(message) => ApiError::Conflict(message),
        other => ApiError::Unavailable(format!("the store failed: {other}")),
    }
}

fn crypto_failed(error: warden_issuer::IssuerError) -> ApiError {
    ApiError::Internal(format!("making a secret: {error}"))
}

/// 403 unless the caller holds a credential for all tenants or is the credential `id` itself.
fn may_manage(admin: &AnyAdmin, id: &str) -> Result<(), ApiError> {
    admin
        .0
        .require_credential("managing admin credentials needs")?;
    if admin.0.tenant_scope.is_none() || admin.0.credential_id == id {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "admin credential {} may manage only itself; `{id}` needs a credential for all tenants",
            admin.0.credential_id
        )))
    }
}

pub async fn create(
    State(state): State<AppState>,
    GlobalAdmin(admin): GlobalAdmin,
    Json(request): Json<CreateRequest>,
) -> Result<Response, ApiError> {
    admin.require_credential("creating an admin credential needs")?;
    let store = store(&state)?;
    let tenant = request
        .tenant
        .as_deref()
        .map(warden_store::TenantId::parse)
        .transpose()
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    if request.label.len() > MAX_LABEL_BYTES || request.label.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "label must be at most {MAX_LABEL_BYTES} bytes of printable text"
        )));
    }
    let now = unix_now();
    let expires_at = match request.expires_in_seconds {
        None => None,
        Some(0) => {
            return Err(ApiError::BadRequest(
                "expires_in_seconds must be > 0".into(),
            ));
        }
        Some(seconds) if seconds > MAX_LIFETIME_SECONDS => {
            return Err(ApiError::BadRequest(format!(
                "expires_in_seconds must be at most {MAX_LIFETIME_SECONDS} (ten years)"
            )));
        }
        Some(seconds) => Some(now.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX))),
    };
    let (id, secret, digest_hex) =
        warden_issuer::credentials::new_admin_credential().map_err(crypto_failed)?;
    let new = NewAdminCredential {
        credential: AdminCredential {
            id,
            digest_hex,
            tenant_scope: tenant.map(|tenant| tenant.to_string()),
        },
        label: request.label,
        expires_at,
    };
    let record = store
        .create_admin_credential(&new, &admin.actor(), now)
        .await
        .map_err(store_failed)?;
    tracing::info!(credential = %record.id, actor = %admin.actor(), "admin credential created");
    Ok(json_response_with(
        StatusCode::CREATED,
        &CredentialJson::of(record, now, Some(secret)),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    _admin: GlobalAdmin,
) -> Result<Response, ApiError> {
    let now = unix_now();
    let records = store(&state)?
        .list_admin_credentials()
        .await
        .map_err(store_failed)?;
    Ok(json_response(&CredentialList {
        credentials: records
            .into_iter()
            .map(|record| CredentialJson::of(record, now, None))
            .collect(),
    }))
}

pub async fn rotate(
    State(state): State<AppState>,
    admin: AnyAdmin,
    Path(id): Path<String>,
    Json(_request): Json<RotateRequest>,
) -> Result<Response, ApiError> {
    may_manage(&admin, &id)?;
    let (secret, digest_hex) =
        warden_issuer::credentials::new_admin_secret().map_err(crypto_failed)?;
    let now = unix_now();
    let record = store(&state)?
        .rotate_admin_credential(&id, &digest_hex, &admin.0.actor(), now)
        .await
        .map_err(store_failed)?;
    tracing::info!(credential = %record.id, actor = %admin.0.actor(), "admin credential rotated");
    Ok(json_response(&CredentialJson::of(
        record,
        now,
        Some(secret),
    )))
}

pub async fn revoke(
    State(state): State<AppState>,
    admin: AnyAdmin,
    Path(id): Path<String>,
    Json(request): Json<RevokeRequest>,
) -> Result<Response, ApiError> {
    may_manage(&admin, &id)?;
    if request.reason.trim().is_empty() || request.reason.len() > MAX_REASON_BYTES {
        return Err(ApiError::BadRequest(format!(
            "a revocation needs a reason of 1 to {MAX_REASON_BYTES} bytes"
        )));
    }
    let now = unix_now();
    let record = store(&state)?
        .revoke_admin_credential(&id, &request.reason, request.force, &admin.0.actor(), now)
        .await
        .map_err(store_failed)?;
    tracing::info!(credential = %record.id, actor = %admin.0.actor(), force = request.force, "admin credential revoked");
    Ok(json_response(&CredentialJson::of(record, now, None)))
}
