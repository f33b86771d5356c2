//! Admin API for service accounts and Warden's signing keys: create, list, show, credentials
//! (add, rotate with overlap, retire), scopes, ownership, disable, delete, the inventory report,
//! and key rotation. Thin: parse, check, call the store, answer. Every write is audited in the
//! store (with before and after where something changes) and becomes a decision-log record
//! through the admin middleware; the replica re-reads the store before answering.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use warden_config::ServiceAccountSettings;
use warden_core::cedar_policy::EntityUid;
use warden_issuer::credentials;
use warden_issuer::delegation;
use warden_issuer::report::{self, AccountLine, Thresholds};
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
use crate::wire::{
    AccountChangeAnswer, AddedCredentialAnswer, CreatedAccountAnswer, KeyRotatedAnswer, KeysAnswer,
    OffboardedAnswer, ReportAnswer, RetiredCredentialAnswer, RotatedCredentialAnswer,
    ServiceAccountJson, ServiceAccountsAnswer, SigningKeyJson, json_response, json_response_with,
};

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
    let graph = snapshot.entities();
    match graph.status(uid) {
        Some(status) => status.as_str().to_owned(),
        None if graph.contains(uid) => "active".to_owned(),
        None => "unknown".to_owned(),
    }
}

/// The owner of a new account or an ownership transfer as stored (Cedar's text of its uid):
/// a principal of the tenant that Warden knows and that is active. `who` names it in the
/// refusal (`owner`, `the new owner`).
fn active_owner(
    state: &AppState,
    tenant: &TenantId,
    owner: &str,
    who: &str,
) -> Result<String, ApiError> {
    let owner = owner_uid(tenant.as_str(), owner)?;
    let status = uid_status(state, &owner);
    if status != "active" {
        return Err(ApiError::BadRequest(format!(
            "{who} {owner} must be an active principal Warden knows (it is {status})"
        )));
    }
    Ok(owner.to_string())
}

/// An account as the admin API shows it, with its owner's status now.
fn account_json<'a>(state: &AppState, account: &'a ServiceAccount) -> ServiceAccountJson<'a> {
    ServiceAccountJson::of(account, owner_status(state, &account.owner))
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

/// A new account as a request asks for it, with its first secret: every field checked, the
/// owner an active principal of the tenant, the lifetimes within the configured limits.
fn new_account(
    state: &AppState,
    issuer: &TokenIssuer,
    admin: &Admin,
    tenant: &TenantId,
    request: CreateRequest,
    now: i64,
) -> Result<(ServiceAccount, String), ApiError> {
    text("name", &request.name)?;
    text("purpose", &request.purpose)?;
    text("owner", &request.owner)?;
    credentials::check_scopes(&request.scopes)
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let owner = active_owner(state, tenant, &request.owner, "owner")?;
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
        owner,
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
    Ok((account, secret))
}

/// `POST /v1/admin/tenants/{tenant}/service-accounts`.
pub async fn create(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Json(request): Json<CreateRequest>,
) -> Result<Response, ApiError> {
    admin.require_credential(
        "creating a service account (its secret is a lasting credential) needs",
    )?;
    let (store, issuer) = parts(&state)?;
    let (account, secret) = new_account(&state, issuer, &admin, &tenant, request, unix_now())?;
    store
        .create_service_account(&account)
        .await
        .map_err(store_error)?;
    // A secret is shown once: the answer goes out even if this replica cannot read the
    // change back yet (the account is saved; other replicas read it on their next poll).
    let _not_yet_in_force = refresh(&state, store).await;
    let answer = CreatedAccountAnswer::of(account_json(&state, &account), &secret);
    Ok(json_response_with(StatusCode::CREATED, &answer))
}

/// `GET /v1/admin/tenants/{tenant}/service-accounts`.
pub async fn list(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
) -> Result<Response, ApiError> {
    let (store, _) = parts(&state)?;
    let accounts = store
        .service_accounts(Some(tenant.as_str()), false)
        .await
        .map_err(store_error)?;
    Ok(json_response(&ServiceAccountsAnswer {
        service_accounts: accounts
            .iter()
            .map(|account| account_json(&state, account))
            .collect(),
    }))
}

/// `GET /v1/admin/tenants/{tenant}/service-accounts/{client_id}`.
pub async fn show(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let (store, _) = parts(&state)?;
    let account = live(store, &tenant, &client_id).await?;
    Ok(json_response(&account_json(&state, &account)))
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

/// A new credential of an account expiring at `account_expires_at` as a request asks for it,
/// with its secret when it is one (a public key has none).
fn new_credential(
    issuer: &TokenIssuer,
    request: AddCredentialRequest,
    account_expires_at: i64,
    now: i64,
) -> Result<(Credential, Option<String>), ApiError> {
    let expires_at =
        credential_expiry(issuer, request.expires_in_seconds, now)?.min(account_expires_at);
    match (request.kind.as_str(), request.jwk) {
        ("secret", None) => {
            let (credential, secret) = new_secret_credential(expires_at, now)?;
            Ok((credential, Some(secret)))
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
            let credential = Credential {
                id: credentials::new_credential_id()
                    .map_err(|error| ApiError::Internal(error.to_string()))?,
                secret: CredentialSecret::PublicKey(text),
                created_at: now,
                expires_at,
                retired_at: None,
            };
            Ok((credential, None))
        }
        _ => Err(ApiError::BadRequest(
            "give {\"kind\": \"secret\"} or {\"kind\": \"public_key\", \"jwk\": {…}}".to_owned(),
        )),
    }
}

/// `POST …/service-accounts/{client_id}/credentials`.
pub async fn add_credential(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
    Json(request): Json<AddCredentialRequest>,
) -> Result<Response, ApiError> {
    admin.require_credential("adding a service-account credential needs")?;
    let client_id = client_id_of(&client_id)?;
    let (store, issuer) = parts(&state)?;
    let account = live(store, &tenant, &client_id).await?;
    let (credential, secret) = new_credential(issuer, request, account.expires_at, unix_now())?;
    store
        .add_credential(&tenant, &client_id, &credential, None, &admin.actor())
        .await
        .map_err(store_error)?;
    // A secret is shown once: the answer goes out even if this replica cannot read the
    // change back yet (the account is saved; other replicas read it on their next poll).
    let _not_yet_in_force = refresh(&state, store).await;
    let answer = AddedCredentialAnswer::of(&credential, secret.as_deref());
    Ok(json_response_with(StatusCode::CREATED, &answer))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    #[serde(default)]
    overlap_seconds: Option<i64>,
    #[serde(default)]
    expires_in_seconds: Option<i64>,
}

/// A rotation as a request asks for it: the new secret credential of an account expiring at
/// `account_expires_at`, its secret, and when the older secrets stop working.
fn rotation(
    issuer: &TokenIssuer,
    request: &RotateRequest,
    account_expires_at: i64,
    now: i64,
) -> Result<(Credential, String, i64), ApiError> {
    let overlap = request
        .overlap_seconds
        .unwrap_or(i64::try_from(issuer.accounts_settings.secret_overlap_seconds).unwrap_or(DAY));
    if overlap < 0 {
        return Err(ApiError::BadRequest(
            "overlap_seconds must not be negative".to_owned(),
        ));
    }
    let expires_at =
        credential_expiry(issuer, request.expires_in_seconds, now)?.min(account_expires_at);
    let (credential, secret) = new_secret_credential(expires_at, now)?;
    Ok((credential, secret, now.saturating_add(overlap)))
}

/// `POST …/service-accounts/{client_id}/credentials/rotate`: a new secret; the older secrets
/// keep working until the overlap ends.
pub async fn rotate_credential(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
    Json(request): Json<RotateRequest>,
) -> Result<Response, ApiError> {
    admin.require_credential("rotating a service-account credential needs")?;
    let client_id = client_id_of(&client_id)?;
    let (store, issuer) = parts(&state)?;
    let account = live(store, &tenant, &client_id).await?;
    let (credential, secret, old_until) =
        rotation(issuer, &request, account.expires_at, unix_now())?;
    let actor = admin.actor();
    store
        .add_credential(&tenant, &client_id, &credential, Some(old_until), &actor)
        .await
        .map_err(store_error)?;
    // A secret is shown once: the answer goes out even if this replica cannot read the
    // change back yet (the account is saved; other replicas read it on their next poll).
    let _not_yet_in_force = refresh(&state, store).await;
    let answer = RotatedCredentialAnswer::of(&credential, &secret, old_until);
    Ok(json_response_with(StatusCode::CREATED, &answer))
}

/// `POST …/service-accounts/{client_id}/credentials/{credential_id}/retire`.
pub async fn retire_credential(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id, credential_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let (store, _) = parts(&state)?;
    let now = unix_now();
    store
        .retire_credential(&tenant, &client_id, &credential_id, &admin.actor(), now)
        .await
        .map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(json_response(&RetiredCredentialAnswer {
        credential_id: &credential_id,
        retired_at: now,
    }))
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
) -> Result<Response, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let (store, _) = parts(&state)?;
    text("reason", &request.reason)?;
    credentials::check_scopes(&request.scopes)
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    // Acting for people is lasting power: only an admin credential gives it, never a console
    // session or an operator's short-lived delegated token.
    // Read from the store, not this replica's copy, which may not have seen a removal yet.
    let held: Vec<String> = if admin.via_session || admin.operator.is_some() {
        store
            .service_account(&client_id)
            .await
            .map_err(store_error)?
            .filter(|account| account.tenant == tenant.as_str())
            .map(|account| account.scopes)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    if request.scopes.iter().any(|scope| {
        [delegation::ADMIN_SCOPE, delegation::EXCHANGE_SCOPE].contains(&scope.as_str())
            && !held.contains(scope)
    }) {
        admin.require_credential(
            "giving an account `warden:admin` or `warden:token-exchange` needs",
        )?;
    }
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
    let answer = AccountChangeAnswer::of(client_id.as_str(), &before, &request.scopes);
    Ok(json_response(&answer))
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
) -> Result<Response, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let (store, _) = parts(&state)?;
    text("reason", &request.reason)?;
    admin.require_credential("transferring a service account needs")?;
    let owner = active_owner(&state, &tenant, &request.owner, "the new owner")?;
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
    let answer = AccountChangeAnswer::of(client_id.as_str(), &before, &owner);
    Ok(json_response(&answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    reason: String,
}

/// Disables or deletes an account, in force here before it returns: its credentials stop
/// working and every token issued up to now is revoked (the first second not revoked is
/// returned).
async fn offboard(
    state: &AppState,
    admin: &Admin,
    tenant: &TenantId,
    client_id: &ClientId,
    status: AccountStatus,
    reason: &str,
) -> Result<i64, ApiError> {
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
    Ok(now + 1)
}

/// `POST …/service-accounts/{client_id}/disable`: every outstanding token is denied at once.
pub async fn disable(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, client_id)): Path<(String, String)>,
    Json(request): Json<ReasonRequest>,
) -> Result<Response, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let status = AccountStatus::Disabled;
    let revoked_before =
        offboard(&state, &admin, &tenant, &client_id, status, &request.reason).await?;
    Ok(json_response(&OffboardedAnswer {
        client_id: client_id.as_str(),
        status: status.as_str(),
        tokens_revoked_before: revoked_before,
    }))
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
) -> Result<Response, ApiError> {
    let client_id = client_id_of(&client_id)?;
    let reason = query.reason.unwrap_or_else(|| "deleted".to_owned());
    let status = AccountStatus::Deleted;
    let revoked_before = offboard(&state, &admin, &tenant, &client_id, status, &reason).await?;
    Ok(json_response(&OffboardedAnswer {
        client_id: client_id.as_str(),
        status: status.as_str(),
        tokens_revoked_before: revoked_before,
    }))
}

/// The inventory report's lines on one tenant's accounts (`None`: every tenant's), with the
/// moment they were made as of.
async fn report_lines(
    state: &AppState,
    store: &Store,
    settings: &ServiceAccountSettings,
    tenant: Option<&str>,
) -> Result<(i64, Vec<AccountLine>), ApiError> {
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
    Ok((now, lines))
}

async fn report_for(state: &AppState, tenant: Option<&str>) -> Result<Response, ApiError> {
    let (store, issuer) = parts(state)?;
    let settings = &issuer.accounts_settings;
    let (now, lines) = report_lines(state, store, settings, tenant).await?;
    Ok(json_response(&ReportAnswer::of(now, settings, &lines)))
}

/// `GET /v1/admin/tenants/{tenant}/service-accounts/report`.
pub async fn tenant_report(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
) -> Result<Response, ApiError> {
    report_for(&state, Some(tenant.as_str())).await
}

/// `GET /v1/admin/service-accounts/report` (every tenant).
pub async fn full_report(
    State(state): State<AppState>,
    _admin: GlobalAdmin,
) -> Result<Response, ApiError> {
    report_for(&state, None).await
}

/// `POST /v1/admin/keys/rotate`: a new signing key now; the previous one stays published until
/// every token it signed has expired.
pub async fn rotate_key(
    State(state): State<AppState>,
    GlobalAdmin(admin): GlobalAdmin,
) -> Result<Response, ApiError> {
    admin.require_credential("rotating Warden's signing key needs")?;
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
    Ok(json_response(&KeyRotatedAnswer {
        kid: &kid,
        previous_kid: previous.as_deref(),
    }))
}

/// `GET /v1/admin/keys`: the published keys (never a private half).
pub async fn list_keys(
    State(state): State<AppState>,
    _admin: GlobalAdmin,
) -> Result<Response, ApiError> {
    let (store, _) = parts(&state)?;
    let keys = store.signing_keys(unix_now()).await.map_err(store_error)?;
    Ok(json_response(&KeysAnswer {
        keys: keys.iter().map(SigningKeyJson::of).collect(),
    }))
}
