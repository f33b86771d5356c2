//! AuthZEN search: which subjects, resources or actions the policies allow, answered from the
//! policy pack and the entities the service knows, by deciding each candidate. Paged with an
//! opaque `next_token` (an offset into the sorted candidates). Every search call is one
//! decision-log record (what was asked, what the page found); a search whose record cannot be
//! kept answers nothing.

use std::time::Instant;

use axum::extract::State;
use serde_json::{Value, json};

use crate::decision_log::{self, Caller, Search};
use crate::engine::{DecisionScope, Refusal};
use crate::json::Json;
use crate::origin::Origin;
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

/// One page of results, and the ids (or action names) it holds, for the decision log.
struct Page {
    body: Value,
    found: Vec<String>,
}

/// Walks candidates from the page token on, keeping those `allowed` says yes to.
fn page<T: AsRef<str>>(
    candidates: &[T],
    page: Option<&PageRequest>,
    mut allowed: impl FnMut(&T) -> Option<Value>,
) -> Result<Page, ApiError> {
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
    let mut found = Vec::new();
    let mut next = None;
    for (position, candidate) in candidates.iter().enumerate().skip(start) {
        if results.len() == limit {
            next = Some(position);
            break;
        }
        if let Some(result) = allowed(candidate) {
            results.push(result);
            found.push(candidate.as_ref().to_owned());
        }
    }
    Ok(Page {
        body: json!({
            "page": {"next_token": next.map(|n| n.to_string()).unwrap_or_default(), "count": results.len()},
            "results": results,
        }),
        found,
    })
}

/// Records the search and answers its page, or an empty page when the record cannot be kept.
async fn answer(
    state: &AppState,
    caller: &Caller,
    search: Search<'_>,
    body: Value,
    request: Option<&PageRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    match decision_log::record_search(state.decision_log.as_ref(), caller, search).await {
        Ok(()) => Ok(axum::Json(body)),
        Err(unavailable) => {
            tracing::error!(error = %unavailable, "a search answers nothing: its decision-log record was not kept");
            nothing(request)
        }
    }
}

fn caller(
    entry: &'static str,
    pep: crate::pep_auth::Pep,
    origin: Option<std::net::SocketAddr>,
) -> Caller {
    Caller {
        entry,
        label: Some(pep.label()),
        origin,
        started: Instant::now(),
    }
}

fn logged(entity: &EntityRef) -> warden_audit::EntityRef {
    warden_audit::EntityRef {
        entity_type: entity.entity_type.clone(),
        id: entity.id.clone(),
        tenant: None,
    }
}

fn any_of(entity_type: &str) -> warden_audit::EntityRef {
    warden_audit::EntityRef {
        entity_type: entity_type.to_owned(),
        id: "*".to_owned(),
        tenant: None,
    }
}

/// Whether one candidate is allowed: the same evaluation as `POST /access/v1/evaluation`.
/// Candidates are not decision-log records of their own (a search is a question about many
/// requests, not an access); the search is one record.
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
    AuthenticatedPep(pep): AuthenticatedPep,
    Origin(origin): Origin,
    Json(request): Json<SubjectSearch>,
) -> Result<axum::Json<Value>, ApiError> {
    let caller = caller("authzen.search.subject", pep, origin);
    let snapshot = super::snapshot(&state)?;
    let candidates = ids_of_type(&snapshot.snapshot, &request.subject.entity_type);
    let Page { body, found } = page(&candidates, request.page.as_ref(), |id| {
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
    let search = Search {
        kind: "subject",
        subject: any_of(&request.subject.entity_type),
        action: Some(request.action.name.clone()),
        resource: logged(&request.resource),
        found: &found,
        refusal: None,
    };
    answer(&state, &caller, search, body, request.page.as_ref()).await
}

/// The subject to search for, or the refusal its forwarded token or account state calls for
/// (then the search finds nothing).
fn screened(state: &AppState, subject: &EntityRef) -> Result<EntityRef, Refusal> {
    match state.screen(subject.into()) {
        (_, Some(refusal)) => {
            tracing::debug!(reason = refusal.reason.as_str(), detail = ?refusal.detail, "search subject refused");
            Err(refusal)
        }
        (input, None) => Ok(EntityRef {
            entity_type: input.entity_type,
            id: input.id,
            properties: input.properties,
        }),
    }
}

/// An empty page of results.
fn nothing(request: Option<&PageRequest>) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(
        page(&Vec::<String>::new(), request, |_| None::<Value>)?.body,
    ))
}

/// Records a search whose subject was refused; it finds nothing.
async fn refused(
    state: &AppState,
    caller: &Caller,
    search: Search<'_>,
    request: Option<&PageRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let empty = page(&Vec::<String>::new(), request, |_| None::<Value>)?;
    answer(state, caller, search, empty.body, request).await
}

pub async fn resources(
    State(state): State<AppState>,
    AuthenticatedPep(pep): AuthenticatedPep,
    Origin(origin): Origin,
    Json(request): Json<ResourceSearch>,
) -> Result<axum::Json<Value>, ApiError> {
    let caller = caller("authzen.search.resource", pep, origin);
    let snapshot = super::snapshot(&state)?;
    let subject = match screened(&state, &request.subject) {
        Ok(subject) => subject,
        Err(refusal) => {
            let search = Search {
                kind: "resource",
                subject: logged(&request.subject),
                action: Some(request.action.name.clone()),
                resource: any_of(&request.resource.entity_type),
                found: &[],
                refusal: Some(&refusal),
            };
            return refused(&state, &caller, search, request.page.as_ref()).await;
        }
    };
    let candidates = ids_of_type(&snapshot.snapshot, &request.resource.entity_type);
    let Page { body, found } = page(&candidates, request.page.as_ref(), |id| {
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
    let search = Search {
        kind: "resource",
        subject: logged(&subject),
        action: Some(request.action.name.clone()),
        resource: any_of(&request.resource.entity_type),
        found: &found,
        refusal: None,
    };
    answer(&state, &caller, search, body, request.page.as_ref()).await
}

pub async fn actions(
    State(state): State<AppState>,
    AuthenticatedPep(pep): AuthenticatedPep,
    Origin(origin): Origin,
    Json(request): Json<ActionSearch>,
) -> Result<axum::Json<Value>, ApiError> {
    let caller = caller("authzen.search.action", pep, origin);
    let snapshot = super::snapshot(&state)?;
    let subject = match screened(&state, &request.subject) {
        Ok(subject) => subject,
        Err(refusal) => {
            let search = Search {
                kind: "action",
                subject: logged(&request.subject),
                action: None,
                resource: logged(&request.resource),
                found: &[],
                refusal: Some(&refusal),
            };
            return refused(&state, &caller, search, request.page.as_ref()).await;
        }
    };
    let candidates = action_names(&snapshot.snapshot);
    let Page { body, found } = page(&candidates, request.page.as_ref(), |name| {
        allowed(
            &snapshot,
            &subject,
            name,
            &request.resource,
            request.context.clone(),
        )
        .then(|| json!({"name": name}))
    })?;
    let search = Search {
        kind: "action",
        subject: logged(&subject),
        action: None,
        resource: logged(&request.resource),
        found: &found,
        refusal: None,
    };
    answer(&state, &caller, search, body, request.page.as_ref()).await
}
