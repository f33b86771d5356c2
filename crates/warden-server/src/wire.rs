//! Wire types of the HTTP API (JSON in, JSON out) and their mapping to the engine's inputs.
//! Unknown fields in AuthZEN requests are ignored, as the spec requires.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warden_audit::{Record, StoredRecord};
use warden_config::ServiceAccountSettings;
use warden_core::cedar_policy::PolicyId;
use warden_issuer::report::AccountLine;
use warden_store::{
    AuditRecord, Credential, CredentialSecret, EntityRecord, PrincipalStatus, Revocation,
    RoleAssignment, ServiceAccount, SigningKeyRecord, StatusRecord,
};

use crate::engine::{DecisionOutcome, EntityInput};

/// An AuthZEN subject or resource: `type`, `id`, optional `properties`.
#[derive(Debug, Clone, Deserialize)]
pub struct EntityRef {
    /// The Cedar entity type.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// The id.
    pub id: String,
    /// Attributes for an entity the PDP does not know.
    #[serde(default)]
    pub properties: Option<Map<String, Value>>,
}

impl From<&EntityRef> for EntityInput {
    fn from(entity: &EntityRef) -> Self {
        EntityInput {
            entity_type: entity.entity_type.clone(),
            id: entity.id.clone(),
            properties: entity.properties.clone(),
        }
    }
}

/// An AuthZEN action: `name`, optional `properties` (unused by Cedar).
#[derive(Debug, Clone, Deserialize)]
pub struct ActionRef {
    /// The action name; `read` is `Action::"read"`.
    pub name: String,
}

/// `POST /access/v1/evaluation`.
#[derive(Debug, Clone, Deserialize)]
pub struct EvaluationRequest {
    /// Who.
    pub subject: EntityRef,
    /// Does what.
    pub action: ActionRef,
    /// To what.
    pub resource: EntityRef,
    /// In which context.
    #[serde(default)]
    pub context: Option<Value>,
}

/// An entity in a batch item: any part may be left to the top-level default.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct PartialEntityRef {
    /// The type, or the default's.
    #[serde(rename = "type", default)]
    pub entity_type: Option<String>,
    /// The id, or the default's.
    #[serde(default)]
    pub id: Option<String>,
    /// Properties (replace the default's).
    #[serde(default)]
    pub properties: Option<Map<String, Value>>,
}

impl PartialEntityRef {
    /// This item's entity over the top-level default: the item's own parts win, and a
    /// missing `type` or `id` falls back to the default's (AuthZEN certification, c-3-2-7).
    pub fn over(item: Option<&PartialEntityRef>, default: Option<&EntityRef>) -> Option<EntityRef> {
        let Some(item) = item else {
            return default.cloned();
        };
        Some(EntityRef {
            entity_type: item
                .entity_type
                .clone()
                .or_else(|| default.map(|d| d.entity_type.clone()))?,
            id: item.id.clone().or_else(|| default.map(|d| d.id.clone()))?,
            properties: item
                .properties
                .clone()
                .or_else(|| default.and_then(|d| d.properties.clone())),
        })
    }
}

/// One item of a batch: every part optional, defaulting to the top level.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct EvaluationItem {
    /// Who (overrides the default).
    #[serde(default)]
    pub subject: Option<PartialEntityRef>,
    /// Does what (overrides the default).
    #[serde(default)]
    pub action: Option<ActionRef>,
    /// To what (overrides the default).
    #[serde(default)]
    pub resource: Option<PartialEntityRef>,
    /// Context (replaces the default).
    #[serde(default)]
    pub context: Option<Value>,
}

/// `options` of a batch.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct EvaluationsOptions {
    /// `execute_all` (default), `deny_on_first_deny` or `permit_on_first_permit`.
    #[serde(default)]
    pub evaluations_semantic: Option<String>,
}

/// `POST /access/v1/evaluations`.
#[derive(Debug, Clone, Deserialize)]
pub struct EvaluationsRequest {
    /// Default subject.
    #[serde(default)]
    pub subject: Option<EntityRef>,
    /// Default action.
    #[serde(default)]
    pub action: Option<ActionRef>,
    /// Default resource.
    #[serde(default)]
    pub resource: Option<EntityRef>,
    /// Default context.
    #[serde(default)]
    pub context: Option<Value>,
    /// The evaluations.
    #[serde(default)]
    pub evaluations: Option<Vec<EvaluationItem>>,
    /// Options.
    #[serde(default)]
    pub options: Option<EvaluationsOptions>,
}

/// A type to search for (`id` is absent in searches).
#[derive(Debug, Clone, Deserialize)]
pub struct TypeRef {
    /// The entity type.
    #[serde(rename = "type")]
    pub entity_type: String,
}

/// Paging of a search request.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct PageRequest {
    /// The `next_token` of the previous page.
    #[serde(default)]
    pub token: Option<String>,
    /// Most results per page (default 50, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `POST /access/v1/search/subject`.
#[derive(Debug, Clone, Deserialize)]
pub struct SubjectSearch {
    /// The subject type.
    pub subject: TypeRef,
    /// The action.
    pub action: ActionRef,
    /// The resource.
    pub resource: EntityRef,
    /// Context.
    #[serde(default)]
    pub context: Option<Value>,
    /// Paging.
    #[serde(default)]
    pub page: Option<PageRequest>,
}

/// `POST /access/v1/search/resource`.
#[derive(Debug, Clone, Deserialize)]
pub struct ResourceSearch {
    /// The subject.
    pub subject: EntityRef,
    /// The action.
    pub action: ActionRef,
    /// The resource type.
    pub resource: TypeRef,
    /// Context.
    #[serde(default)]
    pub context: Option<Value>,
    /// Paging.
    #[serde(default)]
    pub page: Option<PageRequest>,
}

/// `POST /access/v1/search/action`.
#[derive(Debug, Clone, Deserialize)]
pub struct ActionSearch {
    /// The subject.
    pub subject: EntityRef,
    /// The resource.
    pub resource: EntityRef,
    /// Context.
    #[serde(default)]
    pub context: Option<Value>,
    /// Paging.
    #[serde(default)]
    pub page: Option<PageRequest>,
}

/// `POST /v1/check`: the action as a name or `{"name": …}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CheckAction {
    /// `"read"`.
    Name(String),
    /// `{"name": "read"}`.
    Object(ActionRef),
}

impl CheckAction {
    /// The name.
    pub fn name(&self) -> &str {
        match self {
            CheckAction::Name(name) => name,
            CheckAction::Object(action) => &action.name,
        }
    }
}

/// `POST /v1/check`.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckRequest {
    /// What the user wants to do.
    pub action: CheckAction,
    /// To what.
    pub resource: EntityRef,
    /// Context.
    #[serde(default)]
    pub context: Option<Value>,
}

/// The body of `POST /v1/checks`: several `/v1/check` bodies for one bearer token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksRequest {
    /// The checks, answered in order.
    pub checks: Vec<CheckRequest>,
}

/// A determining policy as responses name it.
#[derive(Debug, Serialize)]
pub struct PolicyJson<'a> {
    /// The policy id, as Cedar writes it (the decision log names it the same way).
    #[serde(serialize_with = "as_displayed")]
    pub policy: &'a PolicyId,
    /// Its `@description`.
    pub description: Option<&'a str>,
}

/// An evaluation error as responses name it (`policy` is null for a refusal).
#[derive(Debug, Serialize)]
pub struct ErrorJson<'a> {
    /// The policy that failed, as Cedar writes it.
    #[serde(serialize_with = "as_displayed_or_null")]
    pub policy: Option<&'a PolicyId>,
    /// What went wrong.
    pub message: Option<&'a str>,
}

/// A policy id as Cedar's `Display` writes it (`escape_debug` of the id). Ids of printable ASCII
/// without quotes or backslashes, the usual kind, are written as they are: the same text,
/// without formatting it character by character.
fn as_displayed<S: serde::Serializer>(value: &&PolicyId, serializer: S) -> Result<S::Ok, S::Error> {
    let raw: &str = value.as_ref();
    let unchanged_by_display = raw
        .bytes()
        .all(|b| (b.is_ascii_graphic() || b == b' ') && !matches!(b, b'\\' | b'\'' | b'"'));
    if unchanged_by_display {
        serializer.serialize_str(raw)
    } else {
        serializer.collect_str(value)
    }
}

fn as_displayed_or_null<S: serde::Serializer>(
    value: &Option<&PolicyId>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(id) => as_displayed(id, serializer),
        None => serializer.serialize_none(),
    }
}

/// The determining policies of an outcome.
pub fn reasons_json(outcome: &DecisionOutcome) -> Vec<PolicyJson<'_>> {
    outcome
        .decision()
        .map(|decision| {
            decision
                .determining
                .iter()
                .map(|policy| PolicyJson {
                    policy: &policy.id,
                    description: policy.description.as_deref(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Evaluation errors of an outcome (a refusal is one error without a policy).
pub fn errors_json(outcome: &DecisionOutcome) -> Vec<ErrorJson<'_>> {
    match outcome.decision() {
        Some(decision) => decision
            .errors
            .iter()
            .map(|error| ErrorJson {
                policy: Some(&error.policy),
                message: Some(&error.message),
            })
            .collect(),
        None => vec![ErrorJson {
            policy: None,
            message: outcome
                .refusal
                .as_ref()
                .map(|refusal| refusal.detail.as_str()),
        }],
    }
}

/// `reason_admin` of an AuthZEN answer: the refusal's detail in English.
#[derive(Debug, Serialize)]
pub struct ReasonAdmin<'a> {
    /// The detail.
    pub en: &'a str,
}

/// The AuthZEN response context: decision id, reason code, policies, revision, and for a
/// refusal its detail.
#[derive(Debug, Serialize)]
pub struct AuthzenContext<'a> {
    /// The decision id.
    pub decision_id: &'a str,
    /// The reason code.
    pub reason: &'a str,
    /// The determining policies.
    pub policies: Vec<PolicyJson<'a>>,
    /// The pack revision, when the policies were consulted.
    pub policy_revision: Option<&'a str>,
    /// Why the policies were not consulted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_admin: Option<ReasonAdmin<'a>>,
}

/// One AuthZEN decision: `{"decision": bool, "context": {...}}`.
#[derive(Debug, Serialize)]
pub struct AuthzenDecision<'a> {
    /// Allowed?
    pub decision: bool,
    /// Why, with the decision id.
    pub context: AuthzenContext<'a>,
}

impl<'a> AuthzenDecision<'a> {
    /// The answer for an outcome.
    pub fn of(outcome: &'a DecisionOutcome) -> Self {
        AuthzenDecision {
            decision: outcome.allowed(),
            context: AuthzenContext {
                decision_id: &outcome.decision_id,
                reason: outcome.reason(),
                policies: reasons_json(outcome),
                policy_revision: outcome
                    .decision()
                    .map(|decision| decision.revision.as_str()),
                reason_admin: outcome.refusal.as_ref().map(|refusal| ReasonAdmin {
                    en: &refusal.detail,
                }),
            },
        }
    }
}

/// A JSON response written straight from a serializable value (no `Value` tree in between).
pub fn json_response<T: Serialize>(value: &T) -> axum::response::Response {
    use axum::response::IntoResponse;
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(error) => crate::problem::ApiError::Internal(format!(
            "the response could not be written: {error}"
        ))
        .into_response(),
    }
}

/// The principal a `/v1/check` answer names.
#[derive(Debug, Serialize)]
pub struct PrincipalJson<'a> {
    /// The entity type.
    #[serde(rename = "type")]
    pub entity_type: &'a str,
    /// The entity id.
    pub id: &'a str,
    /// The tenant.
    pub tenant: Option<&'a str>,
}

/// The answer of `POST /v1/check`.
#[derive(Debug, Serialize)]
pub struct CheckAnswer<'a> {
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// The decision id.
    pub decision_id: &'a str,
    /// The reason code.
    pub reason: &'a str,
    /// The determining policies.
    pub reasons: Vec<PolicyJson<'a>>,
    /// Evaluation errors.
    pub errors: Vec<ErrorJson<'a>>,
    /// Who asked.
    pub principal: PrincipalJson<'a>,
    /// The pack revision.
    pub policy_revision: &'a str,
}

/// One result of `POST /v1/checks`: a `/v1/check` answer without the shared parts.
#[derive(Debug, Serialize)]
pub struct CheckResult<'a> {
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// The decision id.
    pub decision_id: &'a str,
    /// The reason code.
    pub reason: &'a str,
    /// The determining policies.
    pub reasons: Vec<PolicyJson<'a>>,
    /// Evaluation errors.
    pub errors: Vec<ErrorJson<'a>>,
}

/// The answer of `POST /v1/checks`.
#[derive(Debug, Serialize)]
pub struct ChecksAnswer<'a> {
    /// Who asked.
    pub principal: PrincipalJson<'a>,
    /// The pack revision.
    pub policy_revision: &'a str,
    /// One result per check, in order.
    pub results: Vec<CheckResult<'a>>,
}

/// A JSON response with another status than 200, such as 201 for something created. An
/// answer that cannot be written is a 500, whatever `status` says.
pub fn json_response_with<T: Serialize>(
    status: axum::http::StatusCode,
    value: &T,
) -> axum::response::Response {
    let mut response = json_response(value);
    if response.status().is_success() {
        *response.status_mut() = status;
    }
    response
}

// Answers of the admin API (`routes/admin.rs`, `routes/revocations.rs`,
// `routes/service_accounts.rs`). Fields are written in the order they are declared here.

/// An entity uid as admin answers write it: `Type::"id"`, the id escaped as a JSON string is
/// (not as Cedar's `Display` escapes it).
#[derive(Debug, Clone, Copy)]
pub struct UidText<'a> {
    /// The entity type.
    pub entity_type: &'a str,
    /// The id, unescaped.
    pub id: &'a str,
}

impl<'a> UidText<'a> {
    /// The uid of a `(type, id)` pair.
    pub fn of((entity_type, id): &'a (String, String)) -> Self {
        UidText { entity_type, id }
    }
}

impl std::fmt::Display for UidText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = serde_json::to_string(self.id).map_err(|_| std::fmt::Error)?;
        write!(f, "{}::{id}", self.entity_type)
    }
}

impl Serialize for UidText<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An entity uid as an object: `{"type": …, "id": …}`.
#[derive(Debug, Serialize)]
pub struct UidJson<'a> {
    /// The entity type.
    #[serde(rename = "type")]
    pub entity_type: &'a str,
    /// The id.
    pub id: &'a str,
}

/// The answer of `POST /v1/admin/tenants/{tenant}/entities`.
#[derive(Debug, Serialize)]
pub struct ImportedAnswer<'a> {
    /// The tenant written to.
    pub tenant: &'a str,
    /// How many entities were written.
    pub imported: usize,
    /// The `[type, id]` of each, ids qualified with the tenant (what `--replace` keeps).
    pub keys: Vec<[&'a str; 2]>,
}

/// The stored keys of a tenant, a page at a time.
#[derive(Debug, Serialize)]
pub struct EntityKeysAnswer<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// `[type, id]` of each stored entity, in order.
    pub keys: Vec<[&'a str; 2]>,
    /// The query that reads the next page, when there may be one.
    pub next: Option<String>,
}

/// Entities deleted at once.
#[derive(Debug, Serialize)]
pub struct DeletedManyAnswer<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// How many existed and were deleted.
    pub deleted: u64,
}

/// An entity's parents after an edit.
#[derive(Debug, Serialize)]
pub struct ParentsAnswer<'a> {
    /// The entity.
    pub entity: UidText<'a>,
    /// Its stored parents now.
    pub parents: &'a Value,
}

/// One entity of a tenant, with its principal status.
#[derive(Debug, Serialize)]
pub struct EntityJson<'a> {
    /// The uid.
    pub uid: UidJson<'a>,
    /// The attributes, as stored.
    pub attrs: &'a Value,
    /// The parents, as stored.
    pub parents: &'a Value,
    /// `active` (also when no status is stored), `disabled` or `deleted`.
    pub status: &'static str,
}

impl<'a> EntityJson<'a> {
    /// The answer for a stored entity and its status.
    pub fn of(record: &'a EntityRecord, status: PrincipalStatus) -> Self {
        EntityJson {
            uid: UidJson {
                entity_type: &record.entity_type,
                id: &record.entity_id,
            },
            attrs: &record.attrs,
            parents: &record.parents,
            status: status.as_str(),
        }
    }
}

/// A stored principal status (the principal need not be an entity Warden knows).
#[derive(Debug, Serialize)]
pub struct StatusJson<'a> {
    /// The principal.
    pub principal: UidJson<'a>,
    /// `active`, `disabled` or `deleted`.
    pub status: &'static str,
}

impl<'a> StatusJson<'a> {
    /// The answer for a stored status.
    pub fn of(record: &'a StatusRecord) -> Self {
        StatusJson {
            principal: UidJson {
                entity_type: &record.principal_type,
                id: &record.principal_id,
            },
            status: record.status.as_str(),
        }
    }
}

/// The answer of `GET /v1/admin/tenants/{tenant}/entities`.
#[derive(Debug, Serialize)]
pub struct EntitiesAnswer<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// Its entities in the store.
    pub entities: Vec<EntityJson<'a>>,
    /// Its stored principal statuses.
    pub statuses: Vec<StatusJson<'a>>,
}

/// The answer of `DELETE /v1/admin/tenants/{tenant}/entities/{entity_type}/{id}`.
#[derive(Debug, Serialize)]
pub struct DeletedAnswer<'a> {
    /// The entity deleted.
    pub deleted: UidText<'a>,
}

/// A role grant as `POST …/roles/grant` answers it.
#[derive(Debug, Serialize)]
pub struct GrantJson<'a> {
    /// Who was granted the role.
    pub principal: UidText<'a>,
    /// The role.
    pub role: UidText<'a>,
    /// When the grant lapses (null: never).
    pub expires_at: Option<i64>,
}

/// The answer of `POST /v1/admin/tenants/{tenant}/roles/grant`.
#[derive(Debug, Serialize)]
pub struct GrantedAnswer<'a> {
    /// The grant made.
    pub granted: GrantJson<'a>,
}

impl<'a> GrantedAnswer<'a> {
    /// The answer for a grant.
    pub fn of(grant: &'a RoleAssignment) -> Self {
        GrantedAnswer {
            granted: GrantJson {
                principal: UidText {
                    entity_type: &grant.principal_type,
                    id: &grant.principal_id,
                },
                role: UidText {
                    entity_type: &grant.role_type,
                    id: &grant.role_id,
                },
                expires_at: grant.expires_at,
            },
        }
    }
}

/// A revoked role grant as `POST …/roles/revoke` answers it.
#[derive(Debug, Serialize)]
pub struct RoleJson<'a> {
    /// Who held the role.
    pub principal: UidText<'a>,
    /// The role.
    pub role: UidText<'a>,
}

/// The answer of `POST /v1/admin/tenants/{tenant}/roles/revoke`.
#[derive(Debug, Serialize)]
pub struct RevokedRoleAnswer<'a> {
    /// The grant revoked.
    pub revoked: RoleJson<'a>,
}

/// The answer of `POST /v1/admin/tenants/{tenant}/principals/status`.
#[derive(Debug, Serialize)]
pub struct StatusAnswer<'a> {
    /// The principal.
    pub principal: UidText<'a>,
    /// Its status now.
    pub status: &'static str,
}

/// One record of the store's admin audit trail.
#[derive(Debug, Serialize)]
pub struct AuditRecordJson<'a> {
    /// Its position in the trail.
    pub seq: i64,
    /// When, in Unix seconds.
    pub at: i64,
    /// Who (`admin:<credential id>`).
    pub actor: &'a str,
    /// What was done.
    pub action: &'a str,
    /// The tenant it concerns, if one.
    pub tenant: Option<&'a str>,
    /// The details as JSON (null when the stored text is not JSON).
    pub detail: Value,
}

impl<'a> AuditRecordJson<'a> {
    /// The answer for a stored audit record.
    pub fn of(record: &'a AuditRecord) -> Self {
        AuditRecordJson {
            seq: record.seq,
            at: record.at,
            actor: &record.actor,
            action: &record.action,
            tenant: record.tenant.as_deref(),
            detail: serde_json::from_str(&record.detail).unwrap_or(Value::Null),
        }
    }
}

/// The answer of `GET /v1/admin/audit`.
#[derive(Debug, Serialize)]
pub struct AuditAnswer<'a> {
    /// The records the admin may see, in order.
    pub records: Vec<AuditRecordJson<'a>>,
}

/// The answer of `GET /v1/decisions/{id}`: the record as the decision log holds it (without
/// `prev`), then its `seq` and `hash`.
#[derive(Debug, Serialize)]
pub struct DecisionAnswer<'a> {
    /// The record's own fields.
    #[serde(flatten)]
    pub record: &'a Record,
    /// Its position in the chain.
    pub seq: u64,
    /// Its hash.
    pub hash: &'a str,
}

impl<'a> DecisionAnswer<'a> {
    /// The answer for a record read back from the log.
    pub fn of(stored: &'a StoredRecord) -> Self {
        DecisionAnswer {
            record: &stored.record,
            seq: stored.seq,
            hash: &stored.hash,
        }
    }
}

/// A revocation as the revocation admin API answers it.
#[derive(Debug, Serialize)]
pub struct RevocationJson<'a> {
    /// Its id in the store.
    pub id: i64,
    /// `token`, `session`, `subject`, `client` or `key`.
    pub kind: &'static str,
    /// The issuer it is scoped to (null for a revocation across issuers).
    pub issuer: Option<&'a str>,
    /// What it names (a jti, sid, sub, client id or kid).
    pub value: &'a str,
    /// When it was made.
    pub revoked_at: i64,
    /// When it lapses (null: never).
    pub expires_at: Option<i64>,
    /// Why.
    pub reason: &'a str,
    /// Who made it.
    pub actor: &'a str,
}

impl<'a> RevocationJson<'a> {
    /// The answer for a stored revocation.
    pub fn of(revocation: &'a Revocation) -> Self {
        RevocationJson {
            id: revocation.id,
            kind: revocation.kind.as_str(),
            issuer: Some(revocation.issuer.as_str()).filter(|issuer| !issuer.is_empty()),
            value: &revocation.value,
            revoked_at: revocation.revoked_at,
            expires_at: revocation.expires_at,
            reason: &revocation.reason,
            actor: &revocation.actor,
        }
    }
}

/// The answer of `GET /v1/admin/revocations`.
#[derive(Debug, Serialize)]
pub struct RevocationsAnswer<'a> {
    /// The stored revocations not lapsed, newest first (at most `limit`).
    pub revocations: Vec<RevocationJson<'a>>,
    /// How many revocations this replica holds in memory.
    pub in_memory: usize,
}

/// A credential of a service account (never its secret).
#[derive(Debug, Serialize)]
pub struct CredentialJson<'a> {
    /// The credential id.
    pub id: &'a str,
    /// `secret` or `public_key`.
    pub kind: &'static str,
    /// When it was made.
    pub created_at: i64,
    /// When it expires.
    pub expires_at: i64,
    /// When it was retired (null: in use).
    pub retired_at: Option<i64>,
    /// The `kid` of a public key, as its JWK writes it (null for a secret).
    pub kid: Option<Value>,
}

impl<'a> CredentialJson<'a> {
    /// The answer for a stored credential.
    pub fn of(credential: &'a Credential) -> Self {
        let kid = match &credential.secret {
            CredentialSecret::PublicKey(jwk) => serde_json::from_str::<Value>(jwk)
                .ok()
                .and_then(|jwk| jwk.get("kid").cloned()),
            CredentialSecret::SecretDigest(_) => None,
        };
        CredentialJson {
            id: &credential.id,
            kind: credential.kind(),
            created_at: credential.created_at,
            expires_at: credential.expires_at,
            retired_at: credential.retired_at,
            kid,
        }
    }
}

/// A service account as the admin API shows it.
#[derive(Debug, Serialize)]
pub struct ServiceAccountJson<'a> {
    /// The client id.
    pub client_id: &'a str,
    /// Its tenant.
    pub tenant: &'a str,
    /// Its name.
    pub name: &'a str,
    /// The owner's uid, as stored.
    pub owner: &'a str,
    /// `active`, `disabled`, `deleted`, `unknown` or `invalid`.
    pub owner_status: String,
    /// Whether the owner is anything but `active`.
    pub flagged: bool,
    /// What it is for.
    pub purpose: &'a str,
    /// The scopes it may be issued.
    pub scopes: &'a [String],
    /// The lifetime of its tokens.
    pub token_ttl_seconds: i64,
    /// When it was made.
    pub created_at: i64,
    /// Who made it.
    pub created_by: &'a str,
    /// When it expires.
    pub expires_at: i64,
    /// `active`, `disabled` or `deleted`.
    pub status: &'static str,
    /// When a token was last issued to it (null: never).
    pub last_used_at: Option<i64>,
    /// Its credentials, retired ones too.
    pub credentials: Vec<CredentialJson<'a>>,
}

impl<'a> ServiceAccountJson<'a> {
    /// The answer for a stored account whose owner has `owner_status`.
    pub fn of(account: &'a ServiceAccount, owner_status: String) -> Self {
        ServiceAccountJson {
            client_id: &account.client_id,
            tenant: &account.tenant,
            name: &account.name,
            owner: &account.owner,
            flagged: owner_status != "active",
            owner_status,
            purpose: &account.purpose,
            scopes: &account.scopes,
            token_ttl_seconds: account.token_ttl_seconds,
            created_at: account.created_at,
            created_by: &account.created_by,
            expires_at: account.expires_at,
            status: account.status.as_str(),
            last_used_at: account.last_used_at,
            credentials: account.credentials.iter().map(CredentialJson::of).collect(),
        }
    }
}

/// The answer of `POST /v1/admin/tenants/{tenant}/service-accounts` (201): the one time the
/// secret is shown.
#[derive(Debug, Serialize)]
pub struct CreatedAccountAnswer<'a> {
    /// The account.
    pub service_account: ServiceAccountJson<'a>,
    /// Its client id.
    pub client_id: &'a str,
    /// The id of its first credential.
    pub credential_id: Option<&'a str>,
    /// That credential's secret.
    pub client_secret: &'a str,
}

impl<'a> CreatedAccountAnswer<'a> {
    /// The answer for a new account and the secret of its first credential.
    pub fn of(service_account: ServiceAccountJson<'a>, secret: &'a str) -> Self {
        CreatedAccountAnswer {
            client_id: service_account.client_id,
            credential_id: service_account
                .credentials
                .first()
                .map(|credential| credential.id),
            service_account,
            client_secret: secret,
        }
    }
}

/// The answer of `GET /v1/admin/tenants/{tenant}/service-accounts`.
#[derive(Debug, Serialize)]
pub struct ServiceAccountsAnswer<'a> {
    /// The tenant's accounts.
    pub service_accounts: Vec<ServiceAccountJson<'a>>,
}

/// The answer of `POST …/service-accounts/{client_id}/credentials` (201).
#[derive(Debug, Serialize)]
pub struct AddedCredentialAnswer<'a> {
    /// The new credential's id.
    pub credential_id: &'a str,
    /// `secret` or `public_key`.
    pub kind: &'static str,
    /// When it expires.
    pub expires_at: i64,
    /// The secret, shown this once (null for a public key).
    pub client_secret: Option<&'a str>,
}

impl<'a> AddedCredentialAnswer<'a> {
    /// The answer for a new credential and its secret, if it is one.
    pub fn of(credential: &'a Credential, secret: Option<&'a str>) -> Self {
        AddedCredentialAnswer {
            credential_id: &credential.id,
            kind: credential.kind(),
            expires_at: credential.expires_at,
            client_secret: secret,
        }
    }
}

/// The answer of `POST …/service-accounts/{client_id}/credentials/rotate` (201).
#[derive(Debug, Serialize)]
pub struct RotatedCredentialAnswer<'a> {
    /// The new credential's id.
    pub credential_id: &'a str,
    /// Its secret, shown this once.
    pub client_secret: &'a str,
    /// When it expires.
    pub expires_at: i64,
    /// When the older secrets stop working.
    pub old_credentials_expire_at: i64,
}

impl<'a> RotatedCredentialAnswer<'a> {
    /// The answer for a new secret credential, its secret, and the end of the overlap.
    pub fn of(credential: &'a Credential, secret: &'a str, old_until: i64) -> Self {
        RotatedCredentialAnswer {
            credential_id: &credential.id,
            client_secret: secret,
            expires_at: credential.expires_at,
            old_credentials_expire_at: old_until,
        }
    }
}

/// The answer of `POST …/service-accounts/{client_id}/credentials/{credential_id}/retire`.
#[derive(Debug, Serialize)]
pub struct RetiredCredentialAnswer<'a> {
    /// The credential retired.
    pub credential_id: &'a str,
    /// When.
    pub retired_at: i64,
}

/// The answer of a change to a service account: its scopes or its owner, before and after.
#[derive(Debug, Serialize)]
pub struct AccountChangeAnswer<'a, T: Serialize + ?Sized> {
    /// The account.
    pub client_id: &'a str,
    /// The value before the change.
    pub before: &'a T,
    /// The value after it.
    pub after: &'a T,
}

impl<'a, T: Serialize + ?Sized> AccountChangeAnswer<'a, T> {
    /// The answer for a change to the account `client_id`.
    pub fn of(client_id: &'a str, before: &'a T, after: &'a T) -> Self {
        AccountChangeAnswer {
            client_id,
            before,
            after,
        }
    }
}

/// The answer of disabling or deleting a service account.
#[derive(Debug, Serialize)]
pub struct OffboardedAnswer<'a> {
    /// The account.
    pub client_id: &'a str,
    /// `disabled` or `deleted`.
    pub status: &'static str,
    /// Every token issued before this second is revoked.
    pub tokens_revoked_before: i64,
}

/// The thresholds a service-account report was made with, in days.
#[derive(Debug, Serialize)]
pub struct ReportThresholds {
    /// Unused for this long is `stale`.
    pub stale_after_days: u64,
    /// Expiring within this is `expiring_soon`.
    pub expiring_within_days: u64,
    /// A credential older than this is `credential_too_old`.
    pub credential_max_age_days: u64,
    /// A scope unused this long is unused.
    pub unused_scope_days: u64,
}

/// The answer of the service-account reports (one tenant's, or every tenant's).
#[derive(Debug, Serialize)]
pub struct ReportAnswer<'a> {
    /// When the report was made.
    pub generated_at: i64,
    /// With which thresholds.
    pub thresholds: ReportThresholds,
    /// One line per account not deleted.
    pub accounts: &'a [AccountLine],
}

impl<'a> ReportAnswer<'a> {
    /// The answer for report lines made at `now` with `settings`.
    pub fn of(now: i64, settings: &ServiceAccountSettings, accounts: &'a [AccountLine]) -> Self {
        ReportAnswer {
            generated_at: now,
            thresholds: ReportThresholds {
                stale_after_days: settings.stale_after_days,
                expiring_within_days: settings.expiring_within_days,
                credential_max_age_days: settings.credential_max_age_days,
                unused_scope_days: settings.unused_scope_days,
            },
            accounts,
        }
    }
}

/// The answer of `POST /v1/admin/keys/rotate`.
#[derive(Debug, Serialize)]
pub struct KeyRotatedAnswer<'a> {
    /// The new signing key.
    pub kid: &'a str,
    /// The key it replaced (null: there was none).
    pub previous_kid: Option<&'a str>,
}

/// One of Warden's signing keys (never its private half).
#[derive(Debug, Serialize)]
pub struct SigningKeyJson<'a> {
    /// Its key id.
    pub kid: &'a str,
    /// Its JWS algorithm.
    pub algorithm: &'a str,
    /// When it was made.
    pub created_at: i64,
    /// `active` (signing) or `retiring` (published until its tokens expire).
    pub status: &'static str,
    /// When it stopped signing (null: it signs).
    pub retired_at: Option<i64>,
    /// Until when it is published.
    pub published_until: Option<i64>,
}

impl<'a> SigningKeyJson<'a> {
    /// The answer for a stored key.
    pub fn of(key: &'a SigningKeyRecord) -> Self {
        SigningKeyJson {
            kid: &key.kid,
            algorithm: &key.algorithm,
            created_at: key.created_at,
            status: if key.retired_at.is_none() {
                "active"
            } else {
                "retiring"
            },
            retired_at: key.retired_at,
            published_until: key.publish_until,
        }
    }
}

/// The answer of `GET /v1/admin/keys`.
#[derive(Debug, Serialize)]
pub struct KeysAnswer<'a> {
    /// The published keys.
    pub keys: Vec<SigningKeyJson<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_ids_are_written_as_cedar_writes_them_as_the_decision_log_does() {
        for text in [
            "viewers-read",
            "policy0",
            "with space:and/punctuation_~!",
            "don't",
            "a\"b\\c",
            "tab\there",
            "é-unicode",
            "bell\u{7}",
        ] {
            let id = PolicyId::new(text);
            let answer = serde_json::to_value(PolicyJson {
                policy: &id,
                description: None,
            })
            .unwrap_or_default();
            assert_eq!(answer["policy"], Value::String(id.to_string()), "{text}");
            let error = serde_json::to_value(ErrorJson {
                policy: Some(&id),
                message: None,
            })
            .unwrap_or_default();
            assert_eq!(error["policy"], Value::String(id.to_string()), "{text}");
        }
        let refusal = serde_json::to_value(ErrorJson {
            policy: None,
            message: Some("why"),
        })
        .unwrap_or_default();
        assert_eq!(
            refusal,
            serde_json::json!({"policy": null, "message": "why"})
        );
    }

    #[test]
    fn admin_answers_write_uids_with_the_id_as_a_json_string() {
        for id in ["acme/alice", "acme/a\"b\\c", "é\u{1}"] {
            let uid = ("User".to_owned(), id.to_owned());
            let answer = serde_json::to_value(DeletedAnswer {
                deleted: UidText::of(&uid),
            })
            .unwrap_or_default();
            let expected = format!("User::{}", Value::String(id.to_owned()));
            assert_eq!(answer["deleted"], Value::String(expected), "{id}");
        }
    }

    #[test]
    fn a_recorded_decision_is_its_record_then_seq_and_hash() {
        let stored = StoredRecord {
            seq: 7,
            prev: "p".to_owned(),
            hash: "h".to_owned(),
            record: Record::new(warden_audit::Kind::Decision, "d-1"),
        };
        let text = serde_json::to_string(&DecisionAnswer::of(&stored)).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"kind":"decision","id":"d-1","time":"","seq":7,"hash":"h"}"#
        );
    }
}

/// The answer of `PUT /v1/admin/tenants/{tenant}/policies/{name}`.
#[derive(Debug, Serialize)]
pub struct TenantPolicyPutAnswer<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The policy's name.
    pub name: &'a str,
    /// The id decisions name it by: `tenant/<tenant>/<name>`.
    pub id: String,
    /// True when it replaced a policy of the same name.
    pub replaced: bool,
}

/// The answer of `DELETE /v1/admin/tenants/{tenant}/policies/{name}`.
#[derive(Debug, Serialize)]
pub struct TenantPolicyDeletedAnswer<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The policy's name.
    pub name: &'a str,
    /// Always true (a missing policy is a 404).
    pub deleted: bool,
}

/// One stored tenant policy.
#[derive(Debug, Serialize)]
pub struct TenantPolicyJson<'a> {
    /// Its name.
    pub name: &'a str,
    /// The id decisions name it by.
    pub id: String,
    /// The Cedar text.
    pub policy: &'a str,
    /// When it was last written (Unix seconds).
    pub updated_at: i64,
    /// Who wrote it.
    pub updated_by: &'a str,
}

/// The answer of `GET /v1/admin/tenants/{tenant}/policies`.
#[derive(Debug, Serialize)]
pub struct TenantPoliciesAnswer<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// Its policies, by name.
    pub policies: Vec<TenantPolicyJson<'a>>,
}

/// `POST /v1/filter`: the plan for one action and resource type, for the bearer token's user
/// or, as a policy enforcement point, for a named subject.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterRequest {
    /// The subject, when a PEP asks (then the bearer is a PEP credential).
    #[serde(default)]
    pub subject: Option<EntityRef>,
    /// The action, as a name or `{"name": …}`.
    pub action: CheckAction,
    /// The resource type the list is of.
    pub resource_type: String,
    /// Context.
    #[serde(default)]
    pub context: Option<Value>,
}

/// A filter value: a primitive, or an entity reference `{"type", "id"}`.
pub fn filter_value_json(value: &warden_core::filter::FilterValue) -> Value {
    use warden_core::filter::FilterValue;
    match value {
        FilterValue::Bool(b) => Value::Bool(*b),
        FilterValue::Long(n) => Value::from(*n),
        FilterValue::String(s) => Value::String(s.clone()),
        FilterValue::Entity(uid) => serde_json::json!({
            "type": uid.type_name().to_string(),
            "id": uid.id().unescaped(),
        }),
    }
}

/// A plan's condition tree as JSON, each node tagged by `op` (see docs/filtering.md).
pub fn condition_json(condition: &warden_core::filter::Condition) -> Value {
    use serde_json::json;
    use warden_core::filter::Condition;
    let values = |values: &[warden_core::filter::FilterValue]| -> Vec<Value> {
        values.iter().map(filter_value_json).collect()
    };
    match condition {
        Condition::Const(b) => json!({"op": if *b { "true" } else { "false" }}),
        Condition::And(parts) => {
            json!({"op": "and", "args": parts.iter().map(condition_json).collect::<Vec<_>>()})
        }
        Condition::Or(parts) => {
            json!({"op": "or", "args": parts.iter().map(condition_json).collect::<Vec<_>>()})
        }
        Condition::Not(inner) => json!({"op": "not", "arg": condition_json(inner)}),
        Condition::Compare { field, op, value } => {
            json!({"op": op.as_str(), "field": field, "value": filter_value_json(value)})
        }
        Condition::InSet { field, values: set } => {
            json!({"op": "in_set", "field": field, "values": values(set)})
        }
        Condition::Contains { field, value } => {
            json!({"op": "contains", "field": field, "value": filter_value_json(value)})
        }
        Condition::ContainsAny { field, values: set } => {
            json!({"op": "contains_any", "field": field, "values": values(set)})
        }
        Condition::ContainsAll { field, values: set } => {
            json!({"op": "contains_all", "field": field, "values": values(set)})
        }
        Condition::Has { field } => json!({"op": "has", "field": field}),
        Condition::IdIn { ids } => json!({"op": "id_in", "ids": ids}),
        Condition::MemberOf { entity } => json!({
            "op": "member_of",
            "entity": {"type": entity.type_name().to_string(), "id": entity.id().unescaped()},
        }),
    }
}
