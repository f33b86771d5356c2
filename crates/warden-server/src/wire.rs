//! Wire types of the HTTP API (JSON in, JSON out) and their mapping to the engine's inputs.
//! Unknown fields in AuthZEN requests are ignored, as the spec requires.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warden_core::cedar_policy::PolicyId;

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
}
