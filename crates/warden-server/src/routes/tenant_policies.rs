//! Tenant-managed policies: `PUT`, `DELETE` and `GET` under
//! `/v1/admin/tenants/{tenant}/policies`. A policy is checked against the pack in force before
//! it is stored (a refused policy changes nothing, and the answer lists every problem with
//! `file:line:column`), written with its audit record, and in force on this replica before the
//! answer (on the others with their next change-feed read, at once on PostgreSQL).

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use warden_core::tenant_policies::{MAX_POLICIES_PER_TENANT, TenantPolicyError, tenant_policy_id};

use crate::admin_auth::TenantAdmin;
use crate::clock::unix_now;
use crate::json::Json;
use crate::problem::{ApiError, PolicyProblem};
use crate::routes::admin::{refresh, store, store_error};
use crate::state::AppState;
use crate::wire::{
    TenantPoliciesAnswer, TenantPolicyDeletedAnswer, TenantPolicyJson, TenantPolicyPutAnswer,
    json_response,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutPolicyRequest {
    /// The Cedar text of one policy.
    policy: String,
}

fn refused(error: TenantPolicyError) -> ApiError {
    match error {
        TenantPolicyError::Invalid(diagnostics) => ApiError::InvalidPolicy {
            detail: TenantPolicyError::Invalid(diagnostics.clone()).to_string(),
            problems: diagnostics
                .into_iter()
                .filter(|d| d.is_error())
                .map(|d| PolicyProblem {
                    file: d.file.unwrap_or_default(),
                    line: d.line,
                    column: d.column,
                    message: d.message,
                })
                .collect(),
        },
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// Creates or replaces the tenant's policy `name`.
pub async fn put(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, name)): Path<(String, String)>,
    Json(request): Json<PutPolicyRequest>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    // A permit that can reach a workload is lasting power, as a role grant to one is: not from
    // a console session or an operator's delegated token (over-cautious by design: any permit
    // that names the type).
    if request.policy.contains("permit") && request.policy.contains("ServiceAccount") {
        admin.require_credential("a permit naming service accounts needs")?;
    }
    state
        .policy
        .check_tenant_policy(tenant.as_str(), &name, &request.policy)
        .map_err(refused)?;
    let replaced = store
        .put_tenant_policy(
            &tenant,
            &name,
            &request.policy,
            &admin.actor(),
            unix_now(),
            MAX_POLICIES_PER_TENANT,
        )
        .await
        .map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(json_response(&TenantPolicyPutAnswer {
        tenant: tenant.as_str(),
        name: &name,
        id: tenant_policy_id(tenant.as_str(), &name).to_string(),
        replaced,
    }))
}

/// Deletes the tenant's policy `name`.
pub async fn delete(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    store
        .delete_tenant_policy(&tenant, &name, &admin.actor(), unix_now())
        .await
        .map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(json_response(&TenantPolicyDeletedAnswer {
        tenant: tenant.as_str(),
        name: &name,
        deleted: true,
    }))
}

/// The tenant's policies as stored, by name.
pub async fn list(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
) -> Result<Response, ApiError> {
    let records = store(&state)?
        .tenant_policies_of(&tenant)
        .await
        .map_err(store_error)?;
    Ok(json_response(&TenantPoliciesAnswer {
        tenant: tenant.as_str(),
        policies: records
            .iter()
            .map(|record| TenantPolicyJson {
                id: tenant_policy_id(&record.tenant, &record.name).to_string(),
                name: &record.name,
                policy: &record.text,
                updated_at: record.updated_at,
                updated_by: &record.updated_by,
            })
            .collect(),
    }))
}
