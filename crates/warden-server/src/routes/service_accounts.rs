//! Admin API for service accounts and Warden's signing keys: create, list, show, credentials
//! (add, rotate with overlap, retire), scopes, ownership, disable, delete, the inventory report,
//! and key rotation. Thin: parse, check, call the store, answer. Every write is audited in the
//! store (with before and after where something changes) and becomes a decision-log record
//! through the admin middleware; the replica re-reads the store before answering.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::cedar_policy::EntityUid;
use warden_issuer::credentials;
use warden_issuer::report::{self, Thresholds};
use warden_store::{
    AccountStatus, ClientId, Credential, CredentialSecret, Offboarding, ServiceAccount, Store,
    TenantId,
};

use crate::admin_auth::{Admin, GlobalAdmin, TenantAdmin};
use crate::clock::unix_now;
use crate::issuer::TokenIssuer;
use crate::json::Json;
use crate::problem::ApiError;
use crate::routes::admin::{refresh, store_error};
use crate::state::AppState;

const DAY: i64 = 86_400;

/// A configured number of days, as a count that fits in seconds.
fn days(value: u64) -> i64 {
    i64::try_from(value)
        .unwrap_or(i64::MAX / DAY)
        .min(i64::MAX / DAY)
}
/// The longest name, purpose, reason or owner accepted.
const MAX_TEXT_BYTES: usize = 1024;

fn parts(state: &AppState) -> Result<(&Store, &TokenIssuer), ApiError> {
    match (&state.store, &state.token_issuer) {
        (Some(store), Some(issuer)) => Ok((store, issuer)),
        _ => Err(ApiError::Unavailable(
            "service accounts need [storage] and [tokens]".to_owned(),
        )),
    }
}

fn text(name: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.len() > MAX_TEXT_BYTES {
        return Err(ApiError::BadRequest(format!(
            "`{name}` must be 1 to {MAX_TEXT_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The owner as a Cedar uid of the tenant: `User::"acme/alice"`, or a bare local id `alice`.
fn owner_uid(tenant: &str, owner: &str) -> Result<EntityUid, ApiError> {
    let uid: EntityUid = if owner.contains("::") {
        owner.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "owner {owner:?} is not an entity uid (User::\"{tenant}/alice\") or a local id"
            ))
        })?
    } else {
        // Built from the type and the id, never by formatting and re-parsing text.
        let user = "User"
            .parse()
            .map_err(|_| ApiError::Internal("`User` is not a type name".to_owned()))?;
        EntityUid::from_type_name_and_id(
            user,
            warden_core::cedar_policy::EntityId::new(format!("{tenant}/{owner}")),
        )
    };
    if !uid.id().unescaped().starts_with(&format!("{tenant}/")) {
        return Err(ApiError::BadRequest(format!(
            "owner {uid} is not a principal of tenant `{tenant}`"
        )));
    }
    Ok(uid)
}

/// `active`, `disabled`, `deleted` (the store says so) or `unknown` (Warden does not know it)
/// of an owner as stored (Cedar's own text of the uid); `invalid` when it does not parse.
fn owner_status(state: &AppState, owner: &str) -> String {
    match owner.parse::<EntityUid>() {
        Ok(uid) => uid_status(state, &uid),
        Err(_) => "invalid".to_owned(),
    }
}

/// The status of a principal, as [`owner_status`] names it.
fn uid_status(state: &AppState, uid: &EntityUid) -> String {
    let Some(snapshot) = state.policy.current() else {
        return "unknown".to_owned();
    };
    match snapshot.statuses.get(uid) {
        Some(status) => status.as_str().to_owned(),
        None if snapshot.entities.get(uid).is_some() => "active".to_owned(),
        None => "unknown".to_owned(),
    }
}

fn credential_json(credential: &Credential) -> Value {
    let kid = match &credential.secret {
        CredentialSecret::PublicKey(jwk) => serde_json::from_str::<Value>(jwk)
            .ok()
            .and_then(|jwk| jwk.get("kid").cloned()),
        CredentialSecret::SecretDigest(_) => None,
    };
    json!({
        "id": credential.id,
        "kind": credential.kind(),
        "created_at": credential.created_at,
        "expires_at": credential.expires_at,
        "retired_at": credential.retired_at,
        "kid": kid,
    })
}

fn account_json(state: &AppState, account: &ServiceAccount) -> Value {
    let owner_status = owner_status(state, &account.owner);
    json!({
        "client_id": account.client_id,
        "tenant": account.tenant,
        "name": account.name,
        "owner": account.owner,
        "owner_status": owner_status,
        "flagged": owner_status != "active",
        "purpose": account.purpose,
        "scopes": account.scopes,
        "token_ttl_seconds": account.token_ttl_seconds,
        "created_at": account.created_at,
        "created_by": account.created_by,
        "expires_at": account.expires_at,
        "status": account.status.as_str(),
        "last_used_at": account.last_used_at,
        "credentials": account.credentials.iter().map(credential_json).collect::<Vec<_>>(),
    })
}

/// A client id from the path; one that cannot be a client id names no account (404).
fn client_id_of(text: &str) -> Result<ClientId, ApiError> {
    ClientId::parse(text).map_err(|error| ApiError::NotFound(error.to_string()))
}

/// A live account of the tenant, or 404.
async fn live(
    store: &Store,
    tenant: &TenantId,
    client_id: &ClientId,
) -> Result<ServiceAccount, ApiError> {
    store
        .service_account(client_id)
        .await
        .map_err(store_error)?
        .filter(|account| {
            account.tenant == tenant.as_str() && account.status != AccountStatus::Deleted
        })
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no service account `{client_id}` in tenant `{tenant}`"
            ))
        })
}

/// The expiry of a credential: asked for (at most the maximum) or the maximum.
fn credential_expiry(
    issuer: &TokenIssuer,
    expires_in_seconds: Option<i64>,
    now: i64,
) -> Result<i64, ApiError> {
    let max = days(issuer.accounts_settings.max_credential_lifetime_days) * DAY;
    match expires_in_seconds {
        None => Ok(now + max),
        Some(seconds) if seconds > 0 && seconds <= max => Ok(now + seconds),
        Some(_) => Err(ApiError::BadRequest(format!(
            "a credential expires within 1 second to {} days (service_accounts.max_credential_lifetime_days)",
            issuer.accounts_settings.max_credential_lifetime_days
        ))),
    }
}

fn new_secret_credential(expires_at: i64, now: i64) -> Result<(Credential, String), ApiError> {
    let internal = |error: warden_issuer::IssuerError| ApiError::Internal(error.to_string());
    let (secret, digest) = credentials::new_secret().map_err(internal)?;
    Ok((
        Credential {
            id: credentials::new_credential_id().map_err(internal)?,
            secret: CredentialSecret::SecretDigest(digest),
            created_at: now,
            expires_at,
            retired_at: None,
        },
        secret,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    name: String,
    owner: String,
    purpose: String,
    scopes: Vec<String>,
    #[serde(default)]
    expires_in_seconds: Option<i64>,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    token_ttl_seconds: Option<i64>,
}

/// `POST /v1/admin/tenants/{tenant}/service-accounts`.
pub async fn create(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Json(request): Json<CreateRequest>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let (store, issuer) = parts(&state)?;
    text("name", &request.name)?;
    text("purpose", &request.purpose)?;
    text("owner", &request.owner)?;
    credentials::check_scopes(&request.scopes).map_err(ApiError::BadRequest)?;
    let owner = owner_uid(tenant.as_str(), &request.owner)?;
    let owner_text = owner.to_string();
    let status = uid_status(&state, &owner);
    if status != "active" {
        return Err(ApiError::BadRequest(format!(
            "owner {owner_text} must be an active principal Warden knows (it is {status})"
        )));
    }
    let now = unix_now();
    let max_lifetime = days(issuer.accounts_settings.max_lifetime_days) * DAY;
    let expires_at = match (request.expires_in_seconds, request.expires_at) {
        (Some(seconds), None) => now.saturating_add(seconds),
        (None, Some(at)) => at,
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of expires_in_seconds or expires_at (a service account must expire)"
                    .to_owned(),
            ));
        }
    };
    if expires_at <= now || expires_at > now + max_lifetime {
        return Err(ApiError::BadRequest(format!(
            "the account must expire in the future and within {} days (service_accounts.max_lifetime_days)",
            issuer.accounts_settings.max_lifetime_days
        )));
    }
    let token_ttl_seconds = request
        .token_ttl_seconds
        .unwrap_or(issuer.settings.default_ttl_seconds);
    if token_ttl_seconds < 1 || token_ttl_seconds > issuer.settings.max_ttl_seconds {
        return Err(ApiError::BadRequest(format!(
            "token_ttl_seconds must be 1 to {} (tokens.max_ttl_seconds)",
            issuer.settings.max_ttl_seconds
        )));
    }
    let credential_expires = credential_expiry(issuer, None, now)?.min(expires_at);
    let (credential, secret) = new_secret_credential(credential_expires, now)?;
    let account = ServiceAccount {
        client_id: credentials::new_client_id()
            .map_err(|error| ApiError::Internal(error.to_string()))?,
        tenant: tenant.to_string(),
        name: request.name,
        owner: owner_text,
        purpose: request.purpose,
        scopes: request.scopes,
        token_ttl_seconds,
        created_at: now,
        created_by: admin.actor(),
        expires_at,
        status: AccountStatus::Active,
        last_used_at: None,
        credentials: vec![credential],
    };
    store
        .create_service_account(&account)
        .await
        .map_err(store_error)?;
    // A secret is shown once: the answer goes out even if this replica cannot read the
    // change back yet (the account is saved; other replicas read it on their next poll).
    let _not_yet_in_force = refresh(&state, store).await;
    let credential_id = account
        .credentials
        .first()
        .map(|credential| credential.id.clone());
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "service_account": account_json(&state, &account),
            "client_id": account.client_id,
            "credential_id": credential_id,
            "client_secret": secret,
        })),
    ))
}

/// `GET /v1/admin/tenants/{tenant}/service-accounts`.
pub async fn list(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
) -> Result<axum::Json<Value>, ApiError> {
    let (store, _) = parts(&state)?;
    let accounts = store
        .service_accounts(Some(tenant.as_str()), false)
        .await
        .map_err(store_error)?;
    Ok(axum::Json(json!({
        "service_accounts": accounts.iter().map(|account| account_json(&state, account)).collect::<Vec<_>>(),
    })))
}

/// `GET /v1/admin/tenants/{tenant}/service-accounts/{client_id}`.
pub async fn show(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let (store, _) = parts(&state)?;
    let account = live(store, &tenant, &client_id).await?;
    Ok(axum::Json(account_json(&state, &account)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddCredentialRequest {
    kind: String,
    #[serde(default)]
    jwk: Option<Value>,
    #[serde(default)]
    expires_in_seconds: Option<i64>,
}

/// `POST …/service-accounts/{client_id}/credentials`.
pub async fn add_credential(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
    Json(request): Json<AddCredentialRequest>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let client_id = client_id_of(&client_id)?;
    let (store, issuer) = parts(&state)?;
    let account = live(store, &tenant, &client_id).await?;
    let now = unix_now();
    let expires_at =
        credential_expiry(issuer, request.expires_in_seconds, now)?.min(account.expires_at);
    let (credential, secret) = match (request.kind.as_str(), request.jwk) {
        ("secret", None) => {
            let (credential, secret) = new_secret_credential(expires_at, now)?;
            (credential, Some(secret))
        }
        ("public_key", Some(jwk)) => {
            let text = jwk.to_string();
            let key = warden_token::keys::parse_public_jwk(text.as_bytes())
                .map_err(|why| ApiError::BadRequest(format!("the JWK is refused: {why}")))?;
            if key.kid.is_none() {
                return Err(ApiError::BadRequest(
                    "the JWK needs a `kid` (assertions name the key they were signed with)"
                        .to_owned(),
                ));
            }
            (
                Credential {
                    id: credentials::new_credential_id()
                        .map_err(|error| ApiError::Internal(error.to_string()))?,
                    secret: CredentialSecret::PublicKey(text),
                    created_at: now,
                    expires_at,
                    retired_at: None,
                },
                None,
            )
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give {\"kind\": \"secret\"} or {\"kind\": \"public_key\", \"jwk\": {…}}"
                    .to_owned(),
            ));
        }
    };
    store
        .add_credential(&tenant, &client_id, &credential, None, &admin.actor())
        .await
        .map_err(store_error)?;
    // A secret is shown once: the answer goes out even if this replica cannot read the
    // change back yet (the account is saved; other replicas read it on their next poll).
    let _not_yet_in_force = refresh(&state, store).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "credential_id": credential.id,
            "kind": credential.kind(),
            "expires_at": credential.expires_at,
            "client_secret": secret,
        })),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    #[serde(default)]
    overlap_seconds: Option<i64>,
    #[serde(default)]
    expires_in_seconds: Option<i64>,
}

/// `POST …/service-accounts/{client_id}/credentials/rotate`: a new secret; the older secrets
/// keep working until the overlap ends.
pub async fn rotate_credential(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
    Json(request): Json<RotateRequest>,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let client_id = client_id_of(&client_id)?;
    let (store, issuer) = parts(&state)?;
    let account = live(store, &tenant, &client_id).await?;
    let now = unix_now();
    let overlap = request
        .overlap_seconds
        .unwrap_or(i64::try_from(issuer.accounts_settings.secret_overlap_seconds).unwrap_or(DAY));
    if overlap < 0 {
        return Err(ApiError::BadRequest(
            "overlap_seconds must not be negative".to_owned(),
        ));
    }
    let expires_at =
        credential_expiry(issuer, request.expires_in_seconds, now)?.min(account.expires_at);
    let (credential, secret) = new_secret_credential(expires_at, now)?;
    let old_until = now.saturating_add(overlap);
    store
        .add_credential(
            &tenant,
            &client_id,
            &credential,
            Some(old_until),
            &admin.actor(),
        )
        .await
        .map_err(store_error)?;
    // A secret is shown once: the answer goes out even if this replica cannot read the
    // change back yet (the account is saved; other replicas read it on their next poll).
    let _not_yet_in_force = refresh(&state, store).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "credential_id": credential.id,
            "client_secret": secret,
            "expires_at": credential.expires_at,
            "old_credentials_expire_at": old_until,
        })),
    ))
}

/// `POST …/service-accounts/{client_id}/credentials/{credential_id}/retire`.
pub async fn retire_credential(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id, credential_id)): Path<(String, String, String)>,
) -> Result<axum::Json<Value>, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let (store, _) = parts(&state)?;
    let now = unix_now();
    store
        .retire_credential(&tenant, &client_id, &credential_id, &admin.actor(), now)
        .await
        .map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(axum::Json(
        json!({"credential_id": credential_id, "retired_at": now}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopesRequest {
    scopes: Vec<String>,
    reason: String,
}

/// `POST …/service-accounts/{client_id}/scopes`: audited with before and after. Removed scopes
/// stop counting at once, in tokens already issued too.
pub async fn set_scopes(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
    Json(request): Json<ScopesRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let (store, _) = parts(&state)?;
    text("reason", &request.reason)?;
    credentials::check_scopes(&request.scopes).map_err(ApiError::BadRequest)?;
    let before = store
        .set_service_account_scopes(
            &tenant,
            &client_id,
            &request.scopes,
            &request.reason,
            &admin.actor(),
            unix_now(),
        )
        .await
        .map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(axum::Json(
        json!({"client_id": client_id.as_str(), "before": before, "after": request.scopes}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerRequest {
    owner: String,
    reason: String,
}

/// `POST …/service-accounts/{client_id}/owner`: transfer ownership, audited.
pub async fn transfer(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
    Json(request): Json<OwnerRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let (store, _) = parts(&state)?;
    text("reason", &request.reason)?;
    let owner_uid = owner_uid(tenant.as_str(), &request.owner)?;
    let status = uid_status(&state, &owner_uid);
    let owner = owner_uid.to_string();
    if status != "active" {
        return Err(ApiError::BadRequest(format!(
            "the new owner {owner} must be an active principal Warden knows (it is {status})"
        )));
    }
    let before = store
        .set_service_account_owner(
            &tenant,
            &client_id,
            &owner,
            &request.reason,
            &admin.actor(),
            unix_now(),
        )
        .await
        .map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(axum::Json(
        json!({"client_id": client_id.as_str(), "before": before, "after": owner}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    reason: String,
}

async fn offboard(
    state: &AppState,
    admin: &Admin,
    tenant: &TenantId,
    client_id: &ClientId,
    status: AccountStatus,
    reason: &str,
) -> Result<axum::Json<Value>, ApiError> {
    let (store, issuer) = parts(state)?;
    text("reason", reason)?;
    let now = unix_now();
    let actor = admin.actor();
    // Every token issued up to and including this second dies; no new one can be issued.
    let offboarding = Offboarding {
        reason,
        actor: &actor,
        now,
        revoke_before: now + 1,
        revocation_expires_at: now
            + issuer.settings.max_ttl_seconds
            + issuer.settings.leeway_seconds,
    };
    store
        .offboard_service_account(tenant, client_id, status, &offboarding)
        .await
        .map_err(store_error)?;
    refresh(state, store).await?;
    Ok(axum::Json(
        json!({"client_id": client_id.as_str(), "status": status.as_str(), "tokens_revoked_before": now + 1}),
    ))
}

/// `POST …/service-accounts/{client_id}/disable`: every outstanding token is denied at once.
pub async fn disable(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
    Json(request): Json<ReasonRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let client_id = client_id_of(&client_id)?;
    offboard(
        &state,
        &admin,
        &tenant,
        &client_id,
        AccountStatus::Disabled,
        &request.reason,
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    reason: Option<String>,
}

/// `DELETE …/service-accounts/{client_id}?reason=…`: credentials retired, tokens revoked; the
/// row stays (status `deleted`) for the record.
pub async fn delete(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
    axum::extract::Query(query): axum::extract::Query<DeleteQuery>,
) -> Result<axum::Json<Value>, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let reason = query.reason.unwrap_or_else(|| "deleted".to_owned());
    offboard(
        &state,
        &admin,
        &tenant,
        &client_id,
        AccountStatus::Deleted,
        &reason,
    )
    .await
}

async fn report_for(state: &AppState, tenant: Option<&str>) -> Result<axum::Json<Value>, ApiError> {
    let (store, issuer) = parts(state)?;
    let accounts = store
        .service_accounts(tenant, false)
        .await
        .map_err(store_error)?;
    let usage: HashMap<(String, String), i64> = store
        .scope_usage()
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|(client_id, scope, at)| ((client_id, scope), at))
        .collect();
    let settings = &issuer.accounts_settings;
    let now = unix_now();
    let lines = report::build(
        &accounts,
        &|account: &ServiceAccount| owner_status(state, &account.owner),
        &usage,
        Thresholds {
            stale_after_days: days(settings.stale_after_days),
            expiring_within_days: days(settings.expiring_within_days),
            credential_max_age_days: days(settings.credential_max_age_days),
            unused_scope_days: days(settings.unused_scope_days),
        },
        now,
    );
    Ok(axum::Json(json!({
        "generated_at": now,
        "thresholds": {
            "stale_after_days": settings.stale_after_days,
            "expiring_within_days": settings.expiring_within_days,
            "credential_max_age_days": settings.credential_max_age_days,
            "unused_scope_days": settings.unused_scope_days,
        },
        "accounts": lines,
    })))
}

/// `GET /v1/admin/tenants/{tenant}/service-accounts/report`.
pub async fn tenant_report(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
) -> Result<axum::Json<Value>, ApiError> {
    report_for(&state, Some(tenant.as_str())).await
}

/// `GET /v1/admin/service-accounts/report` (every tenant).
pub async fn full_report(
    State(state): State<AppState>,
    _admin: GlobalAdmin,
) -> Result<axum::Json<Value>, ApiError> {
    report_for(&state, None).await
}

/// `POST /v1/admin/keys/rotate`: a new signing key now; the previous one stays published until
/// every token it signed has expired.
pub async fn rotate_key(
    State(state): State<AppState>,
    GlobalAdmin(admin): GlobalAdmin,
) -> Result<axum::Json<Value>, ApiError> {
    let (store, issuer) = parts(&state)?;
    let previous = issuer.signing_key().map(|key| key.kid.clone());
    let kid = issuer
        .rotate(store, previous.as_deref(), &admin.actor(), unix_now())
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))?
        .ok_or_else(|| {
            ApiError::BadRequest(
                "another replica rotated the key at the same moment; list the keys and retry if needed"
                    .to_owned(),
            )
        })?;
    refresh(&state, store).await?;
    Ok(axum::Json(json!({"kid": kid, "previous_kid": previous})))
}

/// `GET /v1/admin/keys`: the published keys (never a private half).
pub async fn list_keys(
    State(state): State<AppState>,
    _admin: GlobalAdmin,
) -> Result<axum::Json<Value>, ApiError> {
    let (store, _) = parts(&state)?;
    let keys = store.signing_keys(unix_now()).await.map_err(store_error)?;
    Ok(axum::Json(json!({
        "keys": keys.iter().map(|key| json!({
            "kid": key.kid,
            "algorithm": key.algorithm,
            "created_at": key.created_at,
            "status": if key.retired_at.is_none() { "active" } else { "retiring" },
            "retired_at": key.retired_at,
            "published_until": key.publish_until,
        })).collect::<Vec<_>>(),
    })))
}
