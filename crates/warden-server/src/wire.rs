//! Wire types of the HTTP API (JSON in, JSON out) and their mapping to the engine's inputs.
//! Unknown fields in AuthZEN requests are ignored, as the spec requires.

use serde::Deserialize;
use serde_json::{Map, Value, json};

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

/// The determining policies of an outcome as `[{policy, description}]`.
pub fn reasons_json(outcome: &DecisionOutcome) -> Value {
    match &outcome.decision {
        Some(decision) => Value::Array(
            decision
                .determining
                .iter()
                .map(|p| json!({"policy": p.id.to_string(), "description": p.description.as_deref()}))
                .collect(),
        ),
        None => json!([]),
    }
}

/// Evaluation errors of an outcome.
pub fn errors_json(outcome: &DecisionOutcome) -> Value {
    match &outcome.decision {
        Some(decision) => Value::Array(
            decision
                .errors
                .iter()
                .map(|e| json!({"policy": e.policy.to_string(), "message": e.message}))
                .collect(),
        ),
        None => {
            json!([{"policy": null, "message": outcome.refusal.as_ref().map(|r| r.detail.clone())}])
        }
    }
}

/// The AuthZEN response context: decision id, reason code, policies, revision.
pub fn authzen_context(outcome: &DecisionOutcome) -> Value {
    let mut context = json!({
        "decision_id": outcome.decision_id,
        "reason": outcome.reason(),
        "policies": reasons_json(outcome),
        "policy_revision": outcome.decision.as_ref().map(|d| d.revision.as_str().to_owned()),
    });
    if let (Some(refusal), Some(object)) = (&outcome.refusal, context.as_object_mut()) {
        object.insert("reason_admin".to_owned(), json!({"en": refusal.detail}));
    }
    context
}
