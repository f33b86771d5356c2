//! AuthZEN search: which subjects, resources or actions the policies allow, answered from the
//! policy pack and the entities the service knows, by deciding each candidate. Paged with an
//! opaque `next_token` (an offset into the sorted candidates).

use axum::extract::State;
use serde_json::{Value, json};

use crate::engine::DecisionScope;
use crate::json::Json;
use crate::pep_auth::AuthenticatedPep;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::wire::{ActionSearch, EntityRef, PageRequest, ResourceSearch, SubjectSearch};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

/// Ids of the known entities of one type, sorted.
fn ids_of_type(snapshot: &crate::snapshot::Snapshot, entity_type: &str) -> Vec<String> {
    let mut ids: Vec<String> = snapshot
        .entities
        .iter()
        .map(|entity| entity.uid())
        .filter(|uid| uid.type_name().to_string() == entity_type)
        .map(|uid| uid.id().unescaped().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Action names of the schema (or of the entity data without one), sorted.
fn action_names(snapshot: &crate::snapshot::Snapshot) -> Vec<String> {
    let mut names: Vec<String> = match snapshot.pack.schema() {
        Some(schema) => schema
            .actions()
            .map(|uid| uid.id().unescaped().to_owned())
            .collect(),
        None => ids_of_type(snapshot, "Action"),
    };
    names.sort();
    names.dedup();
    names
}

/// Walks candidates from the page token on, keeping those `allowed` says yes to.
fn page<T>(
    candidates: &[T],
    page: Option<&PageRequest>,
    mut allowed: impl FnMut(&T) -> Option<Value>,
) -> Result<Value, ApiError> {
    let start = match page
        .and_then(|p| p.token.as_deref())
        .filter(|t| !t.is_empty())
    {
        None => 0,
        Some(token) => token.parse::<usize>().map_err(|_| {
            ApiError::BadRequest("page.token is not a token this PDP issued".to_owned())
        })?,
    };
    let limit = page
        .and_then(|p| p.limit)
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let mut results = Vec::new();
    let mut next = None;
    for (position, candidate) in candidates.iter().enumerate().skip(start) {
        if results.len() == limit {
            next = Some(position);
            break;
        }
        if let Some(result) = allowed(candidate) {
            results.push(result);
        }
    }
    Ok(json!({
        "page": {"next_token": next.map(|n| n.to_string()).unwrap_or_default(), "count": results.len()},
        "results": results,
    }))
}

/// Whether one candidate is allowed: the same evaluation as `POST /access/v1/evaluation`.
/// Candidates are not decision-log records (a search is a question about many requests, not
/// an access); the search itself is logged at debug level.
fn allowed(
    snapshot: &DecisionScope,
    subject: &EntityRef,
    action: &str,
    resource: &EntityRef,
    context: Option<Value>,
) -> bool {
    crate::engine::decide(
        snapshot,
        &crate::engine::DecisionInput {
            principal: crate::engine::PrincipalInput::Named(subject.into()),
            action: action.to_owned(),
            resource: resource.into(),
            context,
        },
    )
    .allowed()
}

pub async fn subjects(
    State(state): State<AppState>,
    AuthenticatedPep(_pep): AuthenticatedPep,
    Json(request): Json<SubjectSearch>,
) -> Result<axum::Json<Value>, ApiError> {
    let snapshot = super::snapshot(&state)?;
    let candidates = ids_of_type(&snapshot.snapshot, &request.subject.entity_type);
    let body = page(&candidates, request.page.as_ref(), |id| {
        let subject = EntityRef {
            entity_type: request.subject.entity_type.clone(),
            id: id.clone(),
            properties: None,
        };
        allowed(
            &snapshot,
            &subject,
            &request.action.name,
            &request.resource,
            request.context.clone(),
        )
        .then(|| json!({"type": request.subject.entity_type, "id": id}))
    })?;
    Ok(axum::Json(body))
}

/// The subject to search for, or `None` (the reason logged) when its forwarded token or account
/// state refuses it: then the search finds nothing.
fn screened(state: &AppState, subject: &EntityRef) -> Option<EntityRef> {
    super::authzen::screen_subject(state, subject)
        .inspect_err(|refusal| {
            tracing::debug!(reason = refusal.reason, detail = %refusal.detail, "search subject refused");
        })
        .ok()
}

/// An empty page of results.
fn nothing(request: Option<&PageRequest>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(page(&Vec::<String>::new(), request, |_| {
        None::<Value>
    })?))
}

pub async fn resources(
    State(state): State<AppState>,
    AuthenticatedPep(_pep): AuthenticatedPep,
    Json(request): Json<ResourceSearch>,
) -> Result<axum::Json<Value>, ApiError> {
    let snapshot = super::snapshot(&state)?;
    let Some(subject) = screened(&state, &request.subject) else {
        return nothing(request.page.as_ref());
    };
    let candidates = ids_of_type(&snapshot.snapshot, &request.resource.entity_type);
    let body = page(&candidates, request.page.as_ref(), |id| {
        let resource = EntityRef {
            entity_type: request.resource.entity_type.clone(),
            id: id.clone(),
            properties: None,
        };
        allowed(
            &snapshot,
            &subject,
            &request.action.name,
            &resource,
            request.context.clone(),
        )
        .then(|| json!({"type": request.resource.entity_type, "id": id}))
    })?;
    Ok(axum::Json(body))
}

pub async fn actions(
    State(state): State<AppState>,
    AuthenticatedPep(_pep): AuthenticatedPep,
    Json(request): Json<ActionSearch>,
) -> Result<axum::Json<Value>, ApiError> {
    let snapshot = super::snapshot(&state)?;
    let Some(subject) = screened(&state, &request.subject) else {
        return nothing(request.page.as_ref());
    };
    let candidates = action_names(&snapshot.snapshot);
    let body = page(&candidates, request.page.as_ref(), |name| {
        allowed(
            &snapshot,
            &subject,
            name,
            &request.resource,
            request.context.clone(),
        )
        .then(|| json!({"name": name}))
    })?;
    Ok(axum::Json(body))
}
