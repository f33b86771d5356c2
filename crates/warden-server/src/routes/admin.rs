//! The admin API under `/v1/admin/…`: entities, role grants, principal status, the audit trail.
//!
//! Every call is authenticated and authorized (the `TenantAdmin` and `AnyAdmin` extractors), every write is validated
//! against the schema together with everything already known before it is made (an invalid
//! write changes nothing), written with its audit record in one transaction, and visible to
//! the next request on this replica at once (and on others within one poll interval).
//! Ids of tenant-scoped entity types are qualified with the tenant: `User::"alice"` in tenant
//! `acme` is `User::"acme/alice"`; an id that names another tenant is refused.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use warden_core::Pack;
use warden_core::cedar_policy::EntityUid;
use warden_store::{
    EntityRecord, PrincipalStatus, RoleAssignment, StatusRecord, Store, StoreError, TenantId,
};

use crate::admin_auth::{Admin, AnyAdmin, TenantAdmin};
use crate::clock::unix_now;
use crate::json::{Json, LargeJson, LargeJsonArray};
use crate::problem::ApiError;
use crate::problem::ItemError;
use crate::state::AppState;
use crate::store_sync;
use crate::wire::{
    AuditAnswer, AuditRecordJson, DecisionAnswer, DeletedAnswer, DeletedManyAnswer, EntitiesAnswer,
    EntityJson, EntityKeysAnswer, GrantedAnswer, ImportedAnswer, ParentsAnswer, RevokedRoleAnswer,
    RoleJson, StatusAnswer, StatusJson, UidText, json_response,
};

pub(crate) fn store(state: &AppState) -> Result<&Store, ApiError> {
    state
        .store
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("the admin API needs [storage]".to_owned()))
}

fn pack(state: &AppState) -> Result<std::sync::Arc<Pack>, ApiError> {
    Ok(std::sync::Arc::clone(
        &super::snapshot(state)?.snapshot.pack,
    ))
}

/// A write that would not compose with what is known: 400, nothing changed (503 before the
/// first pack loads).
fn refused_write(error: warden_service::snapshot::SnapshotError) -> ApiError {
    match error {
        warden_service::snapshot::SnapshotError::NoPack => ApiError::Unavailable(error.to_string()),
        other => ApiError::BadRequest(other.to_string()),
    }
}

pub(crate) fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound(message) => ApiError::NotFound(message),
        StoreError::Conflict(message) => ApiError::Conflict(message),
        StoreError::Refused(message) => ApiError::BadRequest(message),
        other => ApiError::Unavailable(format!("the store failed: {other}")),
    }
}

/// Whether entities of this type carry the tenant (their ids are tenant-qualified).
fn tenant_scoped(pack: &Pack, entity_type: &str) -> bool {
    warden_service::entity_graph::tenant_scoped(pack, entity_type)
}

/// `(type, id)` of a UID within a tenant, qualifying tenant-scoped ids.
fn qualify(
    pack: &Pack,
    tenant: &str,
    entity_type: &str,
    id: &str,
) -> Result<(String, String), ApiError> {
    if pack.type_name(entity_type).is_none() {
        return Err(ApiError::BadRequest(format!(
            "`{entity_type}` is not an entity type name"
        )));
    }
    if !tenant_scoped(pack, entity_type) {
        return Ok((entity_type.to_owned(), id.to_owned()));
    }
    let prefix = format!("{tenant}/");
    if id.starts_with(&prefix) {
        Ok((entity_type.to_owned(), id.to_owned()))
    } else if id.contains('/') {
        Err(ApiError::BadRequest(format!(
            "{entity_type}::{id:?} does not belong to tenant `{tenant}`"
        )))
    } else {
        Ok((entity_type.to_owned(), format!("{prefix}{id}")))
    }
}

pub(crate) fn parse_uid(
    pack: &Pack,
    tenant: &str,
    text: &str,
) -> Result<(String, String), ApiError> {
    let uid: EntityUid =
        warden_core::parse_uid(text).map_err(|error| ApiError::BadRequest(error.to_string()))?;
    qualify(
        pack,
        tenant,
        &uid.type_name().to_string(),
        uid.id().unescaped(),
    )
}

/// With a schema, a status is only for a type some action takes as its principal: a typo
/// (`Usr::"mallory"`) would otherwise be accepted and disable nobody.
fn principal_type_of_schema(pack: &Pack, entity_type: &str) -> Result<(), ApiError> {
    let Some(schema) = pack.schema() else {
        return Ok(());
    };
    if schema
        .principals()
        .any(|principal| principal.to_string() == entity_type)
    {
        Ok(())
    } else {
        let known: Vec<String> = schema.principals().map(ToString::to_string).collect();
        Err(ApiError::BadRequest(format!(
            "`{entity_type}` is not a principal type of the schema (its principals: {})",
            known.join(", ")
        )))
    }
}

/// Entities of shared (not tenant-scoped) types, such as roles and tenants, are seen by every
/// tenant: only an admin credential for all tenants may write them or change their status.
fn authorize_shared(admin: &Admin, pack: &Pack, entity_type: &str) -> Result<(), ApiError> {
    if pack.tenancy().is_some() && !tenant_scoped(pack, entity_type) && admin.tenant_scope.is_some()
    {
        return Err(ApiError::Forbidden(format!(
            "{entity_type} entities are shared by every tenant; admin credential {} is for one tenant only",
            admin.credential_id
        )));
    }
    Ok(())
}

/// Giving a workload roles, parents or attributes is lasting power: a console session or an
/// operator's short-lived delegated token may not (a tool could make its own account an
/// admin that outlives the person); it takes an admin credential.
fn authorize_workload_write(admin: &Admin, entity_type: &str) -> Result<(), ApiError> {
    if entity_type == warden_service::pipeline::SERVICE_ACCOUNT_TYPE {
        admin.require_credential("writing a service account's entity, roles or parents needs")?;
    }
    Ok(())
}

/// Turns Cedar entity JSON into records of one tenant, qualifying ids and setting the tenant.
fn records_from_json(
    pack: &Pack,
    tenant: &str,
    entities: &[Value],
) -> Result<Vec<EntityRecord>, ApiError> {
    let mut records = Vec::with_capacity(entities.len());
    for entity in entities {
        let uid = entity
            .get("uid")
            .ok_or_else(|| ApiError::BadRequest("an entity has no `uid`".to_owned()))?;
        let uid = uid.get("__entity").unwrap_or(uid);
        let (Some(entity_type), Some(id)) = (
            uid.get("type").and_then(Value::as_str),
            uid.get("id").and_then(Value::as_str),
        ) else {
            return Err(ApiError::BadRequest(format!(
                "uid {uid} needs string `type` and `id`"
            )));
        };
        let (entity_type, entity_id) = qualify(pack, tenant, entity_type, id)?;
        let mut attrs = entity.get("attrs").cloned().unwrap_or_else(|| json!({}));
        if let (Some(tenancy), true) = (pack.tenancy(), tenant_scoped(pack, &entity_type)) {
            let ours = json!({"__entity": {"type": tenancy.tenant_type.to_string(), "id": tenant}});
            let object = attrs.as_object_mut().ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{entity_type}::{entity_id:?}: `attrs` is not an object"
                ))
            })?;
            match object.get(&tenancy.attribute) {
                None => {
                    object.insert(tenancy.attribute.clone(), ours);
                }
                Some(given)
                    if given.get("__entity").unwrap_or(given)
                        == ours.get("__entity").unwrap_or(&ours) => {}
                Some(given) => {
                    return Err(ApiError::BadRequest(format!(
                        "{entity_type}::{entity_id:?} names tenant {given}, not `{tenant}`"
                    )));
                }
            }
        }
        let mut parents = Vec::new();
        for parent in entity
            .get("parents")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let parent = parent.get("__entity").cloned().unwrap_or(parent);
            let (Some(parent_type), Some(parent_id)) = (
                parent.get("type").and_then(Value::as_str),
                parent.get("id").and_then(Value::as_str),
            ) else {
                return Err(ApiError::BadRequest(format!(
                    "parent {parent} needs string `type` and `id`"
                )));
            };
            let (parent_type, parent_id) = qualify(pack, tenant, parent_type, parent_id)?;
            parents.push(json!({"type": parent_type, "id": parent_id}));
        }
        records.push(EntityRecord {
            tenant: tenant.to_owned(),
            entity_type,
            entity_id,
            attrs,
            parents: Value::Array(parents),
            canonical_for: None,
        });
    }
    Ok(records)
}

/// Brings this replica up to the store right after a write, so the write is in force here
/// before it is answered. When the store cannot be read back, the write is committed but not
/// yet in force here: the caller is told so (503) rather than told it is done.
pub(crate) async fn refresh(state: &AppState, store: &Store) -> Result<(), ApiError> {
    let Some(freshness) = &state.store_freshness else {
        return Ok(());
    };
    store_sync::refresh(
        store,
        &state.policy,
        freshness,
        &state.revocations,
        state.issuer_sync().as_ref(),
    )
    .await
    .map_err(|error| {
        tracing::error!(error = %error, "refreshing after an admin write failed; the poller will retry");
        ApiError::Unavailable(format!(
            "the change is saved but not yet in force on this replica ({error}); \
             it will be once the store can be read again"
        ))
    })
}

/// 400 unless a reason is given: `missing` says what needs one.
fn reason_given(reason: &str, missing: &str) -> Result<(), ApiError> {
    if reason.trim().is_empty() {
        return Err(ApiError::BadRequest(missing.to_owned()));
    }
    Ok(())
}

pub async fn import_entities(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    LargeJsonArray(entities): LargeJsonArray<Vec<Value>>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let pack = pack(&state)?;
    if entities.len() > MAX_IMPORT_ENTITIES {
        return Err(ApiError::BadRequest(format!(
            "one import takes at most {MAX_IMPORT_ENTITIES} entities; send more in several (warden entity import does)"
        )));
    }
    // Every entity is checked (its ids, its tenant, the schema) before anything is written,
    // and every problem is reported with its position, so a client can fix or drop exactly
    // those and send the rest again.
    let mut records = Vec::with_capacity(entities.len());
    let mut items = Vec::new();
    for (index, entity) in entities.iter().enumerate() {
        let checked = records_from_json(&pack, tenant.as_str(), std::slice::from_ref(entity))
            .and_then(|mut one| {
                let record = one
                    .pop()
                    .ok_or_else(|| ApiError::BadRequest("empty".to_owned()))?;
                authorize_shared(&admin, &pack, &record.entity_type)?;
                authorize_workload_write(&admin, &record.entity_type)?;
                canonical(&pack, record)
            });
        match checked {
            Ok(record) => records.push(record),
            Err(ApiError::Forbidden(message)) if items.is_empty() => {
                return Err(ApiError::Forbidden(message));
            }
            Err(error) => items.push(ItemError {
                index,
                uid: warden_service::entity_graph::uid_label(entity),
                message: error.to_string(),
            }),
        }
    }
    if let Some(first) = items.first() {
        return Err(ApiError::InvalidItems {
            detail: format!(
                "{} of {} entities were refused (nothing was written): first, #{} {}: {}",
                items.len(),
                entities.len(),
                first.index,
                first.uid,
                first.message
            ),
            items,
        });
    }
    store
        .upsert_entities(&tenant, &records, &admin.actor(), unix_now())
        .await
        .map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(json_response(&ImportedAnswer {
        tenant: tenant.as_str(),
        imported: records.len(),
        keys: records
            .iter()
            .map(|record| [record.entity_type.as_str(), record.entity_id.as_str()])
            .collect(),
    }))
}

/// An entity checked against the schema, stored as Cedar's own JSON of it and marked with the
/// pack it was checked against, so replicas on the same pack take it without a second parse.
fn canonical(pack: &Pack, mut record: EntityRecord) -> Result<EntityRecord, ApiError> {
    let entity = warden_service::entity_graph::parse_entity(
        pack,
        json!({
            "uid": {"type": record.entity_type, "id": record.entity_id},
            "attrs": record.attrs,
            "parents": record.parents,
        }),
    )
    .map_err(|error| ApiError::BadRequest(format!("entities: {error}")))?;
    let mut written = entity
        .to_json_value()
        .map_err(|error| ApiError::BadRequest(format!("entities: {error}")))?;
    record.attrs = written
        .get_mut("attrs")
        .map(Value::take)
        .unwrap_or_else(|| json!({}));
    record.parents = written
        .get_mut("parents")
        .map(Value::take)
        .unwrap_or_else(|| json!([]));
    record.canonical_for = Some(pack.data_fingerprint().as_str().to_owned());
    Ok(record)
}

/// The most entities one import call takes.
pub const MAX_IMPORT_ENTITIES: usize = 50_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    #[serde(default)]
    after_type: Option<String>,
    #[serde(default)]
    after_id: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

/// The `(type, id)` of a tenant's stored entities, in order, a page at a time (what
/// `warden entity import --replace` compares the file with).
pub async fn entity_keys(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
    axum::extract::Query(query): axum::extract::Query<KeysQuery>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let limit = query.limit.unwrap_or(10_000).clamp(1, 50_000);
    let after = match (&query.after_type, &query.after_id) {
        (Some(entity_type), Some(id)) => Some((entity_type.as_str(), id.as_str())),
        (None, None) => None,
        _ => {
            return Err(ApiError::BadRequest(
                "give after_type and after_id together".to_owned(),
            ));
        }
    };
    let keys = store
        .entity_keys_of(&tenant, after, limit)
        .await
        .map_err(store_error)?;
    let next = (i64::try_from(keys.len()).unwrap_or(i64::MAX) == limit)
        .then(|| keys.last())
        .flatten()
        .map(|(entity_type, id)| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("after_type", entity_type);
            query.append_pair("after_id", id);
            query.append_pair("limit", &limit.to_string());
            query.finish()
        });
    Ok(json_response(&EntityKeysAnswer {
        tenant: tenant.as_str(),
        keys: keys
            .iter()
            .map(|(entity_type, id)| [entity_type.as_str(), id.as_str()])
            .collect(),
        next,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteManyRequest {
    entities: Vec<TypeAndId>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeAndId {
    #[serde(rename = "type")]
    entity_type: String,
    id: String,
}

/// Deletes many entities of a tenant (and their grants) in one transaction.
pub async fn delete_entities(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    LargeJson(request): LargeJson<DeleteManyRequest>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let pack = pack(&state)?;
    if request.entities.len() > MAX_IMPORT_ENTITIES {
        return Err(ApiError::BadRequest(format!(
            "one delete takes at most {MAX_IMPORT_ENTITIES} entities"
        )));
    }
    let mut keys = Vec::with_capacity(request.entities.len());
    for entity in &request.entities {
        let key = qualify(&pack, tenant.as_str(), &entity.entity_type, &entity.id)?;
        authorize_shared(&admin, &pack, &key.0)?;
        keys.push(key);
    }
    let deleted = store
        .delete_entities(&tenant, &keys, &admin.actor(), unix_now())
        .await
        .map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(json_response(&DeletedManyAnswer {
        tenant: tenant.as_str(),
        deleted,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentsRequest {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    reason: String,
}

/// Adds and removes parents (roles, groups) of a stored entity, whatever wrote them.
pub async fn edit_parents(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, entity_type, id)): Path<(String, String, String)>,
    Json(request): Json<ParentsRequest>,
) -> Result<Response, ApiError> {
    reason_given(&request.reason, "a change of parents needs a reason")?;
    if request.add.is_empty() && request.remove.is_empty() {
        return Err(ApiError::BadRequest(
            "name parents to add or remove".to_owned(),
        ));
    }
    let store = store(&state)?;
    let pack = pack(&state)?;
    let entity = qualify(&pack, tenant.as_str(), &entity_type, &id)?;
    authorize_shared(&admin, &pack, &entity.0)?;
    authorize_workload_write(&admin, &entity.0)?;
    let parse_all = |texts: &[String]| -> Result<Vec<(String, String)>, ApiError> {
        texts
            .iter()
            .map(|text| parse_uid(&pack, tenant.as_str(), text))
            .collect()
    };
    let add = parse_all(&request.add)?;
    let remove = parse_all(&request.remove)?;
    if pack.schema().is_some() {
        for (parent_type, _) in &add {
            let allowed = pack
                .entity_shape(&entity.0)
                .is_some_and(|shape| shape.member_of.contains(parent_type));
            if !allowed {
                return Err(ApiError::BadRequest(format!(
                    "the schema does not let {} be a member of {parent_type}",
                    entity.0
                )));
            }
        }
    }
    fn pairs(list: &[(String, String)]) -> Vec<(&str, &str)> {
        list.iter().map(|(t, i)| (t.as_str(), i.as_str())).collect()
    }
    let parents = store
        .edit_parents(
            &tenant,
            (&entity.0, &entity.1),
            &pairs(&add),
            &pairs(&remove),
            &request.reason,
            &admin.actor(),
            unix_now(),
        )
        .await
        .map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(json_response(&ParentsAnswer {
        entity: UidText::of(&entity),
        parents: &parents,
    }))
}

/// The status of an entity: the one stored for it, else active.
fn status_of(statuses: &[StatusRecord], record: &EntityRecord) -> PrincipalStatus {
    statuses
        .iter()
        .find(|status| {
            status.principal_type == record.entity_type && status.principal_id == record.entity_id
        })
        .map_or(PrincipalStatus::Active, |status| status.status)
}

pub async fn list_entities(
    State(state): State<AppState>,
    TenantAdmin { tenant, .. }: TenantAdmin,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let records = store.entities_of(&tenant).await.map_err(store_error)?;
    let statuses = store.statuses_of(&tenant).await.map_err(store_error)?;
    Ok(json_response(&EntitiesAnswer {
        tenant: tenant.as_str(),
        entities: records
            .iter()
            .map(|record| EntityJson::of(record, status_of(&statuses, record)))
            .collect(),
        statuses: statuses.iter().map(StatusJson::of).collect(),
    }))
}

pub async fn delete_entity(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Path((_, entity_type, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let store = store(&state)?;
    let pack = pack(&state)?;
    let uid = qualify(&pack, tenant.as_str(), &entity_type, &id)?;
    authorize_shared(&admin, &pack, &uid.0)?;
    store
        .delete_entity(&tenant, &uid.0, &uid.1, &admin.actor(), unix_now())
        .await
        .map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(json_response(&DeletedAnswer {
        deleted: UidText::of(&uid),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    principal: String,
    role: String,
    reason: String,
    #[serde(default)]
    ttl_seconds: Option<u64>,
    #[serde(default)]
    expires_at: Option<i64>,
}

/// The grant a request asks for within a tenant: principal and role qualified, the expiry
/// checked. Whether the admin may make it, and whether the schema allows it, are checked after.
fn grant_of(
    pack: &Pack,
    admin: &Admin,
    tenant: &TenantId,
    request: GrantRequest,
    now: i64,
) -> Result<RoleAssignment, ApiError> {
    let (principal_type, principal_id) = parse_uid(pack, tenant.as_str(), &request.principal)?;
    let (role_type, role_id) = parse_uid(pack, tenant.as_str(), &request.role)?;
    let expires_at = match (request.ttl_seconds, request.expires_at) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give ttl_seconds or expires_at, not both".to_owned(),
            ));
        }
        (Some(0), None) => {
            return Err(ApiError::BadRequest(
                "ttl_seconds must be at least 1 (0 would grant a role already lapsed)".to_owned(),
            ));
        }
        (Some(ttl), None) => Some(now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX))),
        (None, Some(at)) if at <= now => {
            return Err(ApiError::BadRequest("expires_at is in the past".to_owned()));
        }
        (None, at) => at,
    };
    Ok(RoleAssignment {
        tenant: tenant.to_string(),
        principal_type,
        principal_id,
        role_type,
        role_id,
        expires_at,
        reason: request.reason,
        granted_by: admin.actor(),
        granted_at: now,
    })
}

/// 400 when the pack has a schema and it does not let the principal be a member of the role.
fn schema_allows(pack: &Pack, grant: &RoleAssignment) -> Result<(), ApiError> {
    if pack.schema().is_some() {
        let allowed = pack
            .entity_shape(&grant.principal_type)
            .is_some_and(|shape| shape.member_of.contains(&grant.role_type));
        if !allowed {
            return Err(ApiError::BadRequest(format!(
                "the schema does not let {} be a member of {}",
                grant.principal_type, grant.role_type
            )));
        }
    }
    Ok(())
}

pub async fn grant_role(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Json(request): Json<GrantRequest>,
) -> Result<Response, ApiError> {
    reason_given(&request.reason, "a grant needs a reason")?;
    let store = store(&state)?;
    let pack = pack(&state)?;
    let grant = grant_of(&pack, &admin, &tenant, request, unix_now())?;
    authorize_shared(&admin, &pack, &grant.principal_type)?;
    authorize_workload_write(&admin, &grant.principal_type)?;
    schema_allows(&pack, &grant)?;
    state.policy.validate_grant(&grant).map_err(refused_write)?;
    store.grant_role(&grant).await.map_err(store_error)?;
    refresh(&state, store).await?;
    Ok(json_response(&GrantedAnswer::of(&grant)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    principal: String,
    role: String,
    reason: String,
}

/// Revokes a role grant of the tenant, in force here before it returns: the principal's and
/// the role's `(type, id)`, qualified.
async fn revoke_grant(
    state: &AppState,
    admin: &Admin,
    tenant: &TenantId,
    request: &RevokeRequest,
) -> Result<((String, String), (String, String)), ApiError> {
    let store = store(state)?;
    let pack = pack(state)?;
    let principal = parse_uid(&pack, tenant.as_str(), &request.principal)?;
    let role = parse_uid(&pack, tenant.as_str(), &request.role)?;
    // As for a grant: a shared principal's grants are for every tenant's admins to leave alone
    // unless the credential is for all tenants.
    authorize_shared(admin, &pack, &principal.0)?;
    store
        .revoke_role(
            tenant,
            (&principal.0, &principal.1),
            (&role.0, &role.1),
            &request.reason,
            &admin.actor(),
            unix_now(),
        )
        .await
        .map_err(store_error)?;
    refresh(state, store).await?;
    Ok((principal, role))
}

pub async fn revoke_role(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Json(request): Json<RevokeRequest>,
) -> Result<Response, ApiError> {
    reason_given(&request.reason, "a revocation needs a reason")?;
    let (principal, role) = revoke_grant(&state, &admin, &tenant, &request).await?;
    Ok(json_response(&RevokedRoleAnswer {
        revoked: RoleJson {
            principal: UidText::of(&principal),
            role: UidText::of(&role),
        },
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    principal: String,
    status: String,
}

/// Sets a principal's status in the tenant, in force here before it returns.
async fn save_status(
    state: &AppState,
    store: &Store,
    admin: &Admin,
    tenant: &TenantId,
    (principal_type, principal_id): &(String, String),
    status: PrincipalStatus,
) -> Result<(), ApiError> {
    // The status is stored on its own: no entity is copied or written (issue #18), so grants
    // stay revocable, the entity file stays in charge of its data, and a principal known
    // only from tokens can be disabled too.
    store
        .set_status(
            tenant,
            principal_type,
            principal_id,
            status,
            &admin.actor(),
            unix_now(),
        )
        .await
        .map_err(store_error)?;
    refresh(state, store).await
}

pub async fn set_status(
    State(state): State<AppState>,
    TenantAdmin { admin, tenant }: TenantAdmin,
    Json(request): Json<StatusRequest>,
) -> Result<Response, ApiError> {
    let status: PrincipalStatus = request.status.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "status `{}` is not active, disabled or deleted",
            request.status
        ))
    })?;
    let store = store(&state)?;
    let pack = pack(&state)?;
    let principal = parse_uid(&pack, tenant.as_str(), &request.principal)?;
    principal_type_of_schema(&pack, &principal.0)?;
    authorize_shared(&admin, &pack, &principal.0)?;
    save_status(&state, store, &admin, &tenant, &principal, status).await?;
    Ok(json_response(&StatusAnswer {
        principal: UidText::of(&principal),
        status: status.as_str(),
    }))
}

pub async fn audit(State(state): State<AppState>, admin: AnyAdmin) -> Result<Response, ApiError> {
    let records = store(&state)?.audit_trail().await.map_err(store_error)?;
    Ok(json_response(&AuditAnswer {
        records: records
            .iter()
            .filter(|record| admin.sees(record.tenant.as_deref()))
            .map(AuditRecordJson::of)
            .collect(),
    }))
}

/// The decision `id` as the decision log holds it, whatever its tenant (`None`: not there).
async fn recorded_decision(
    state: &AppState,
    id: &str,
) -> Result<Option<warden_audit::StoredRecord>, ApiError> {
    use crate::decision_log::LogSource;
    if id.len() > 128 {
        return Err(ApiError::BadRequest(
            "a decision id is at most 128 characters".to_owned(),
        ));
    }
    let log = state.decision_log.as_ref().ok_or_else(|| {
        ApiError::NotFound("the decision log is disabled ([audit] enabled = false)".to_owned())
    })?;
    let unavailable = |error: &dyn std::fmt::Display| {
        ApiError::Unavailable(format!("the decision log cannot be read: {error}"))
    };
    match &log.source {
        LogSource::Dir(dir) => {
            let dir = dir.clone();
            let wanted = id.to_owned();
            tokio::task::spawn_blocking(move || warden_audit::query::find_in_dir(&dir, &wanted))
                .await
                .map_err(|e| unavailable(&e))?
                .map_err(|e| unavailable(&e))
        }
        LogSource::Postgres(pg) => match pg.find(id).await.map_err(|e| unavailable(&e))? {
            Some(line) => Ok(Some(
                warden_audit::record::decode(&line).map_err(|e| unavailable(&e))?,
            )),
            None => Ok(None),
        },
    }
}

/// `GET /v1/decisions/{id}`: one recorded decision with its explanation in plain words.
pub async fn decision(
    State(state): State<AppState>,
    admin: AnyAdmin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let line = recorded_decision(&state, &id).await?;
    // A tenant-scoped admin sees its tenant's records only; others are as if absent.
    let stored = line
        .filter(|stored| admin.sees(stored.record.tenant()))
        .ok_or_else(|| ApiError::NotFound(format!("no decision `{id}` in the decision log")))?;
    Ok(json_response(&DecisionAnswer::of(&stored)))
}
