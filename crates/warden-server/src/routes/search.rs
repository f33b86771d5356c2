//! AuthZEN search: which subjects, resources or actions the policies allow, answered from the
//! policy pack and the entities the service knows. The subject and resource searches make one
//! data-filter plan (`warden_service::filter`) and test each candidate against its condition;
//! when the policies cannot be written as a filter, and for actions, each candidate is
//! decided. Paged with an opaque `next_token` (where the scan stopped: the candidates come in
//! id order from the entity data's index, so a page costs what it scans, not what the store
//! holds). One page decides at most [`MAX_SCAN`] candidates (tests at most [`PLANNED_SCAN`]
//! against a plan) and spends at most half the request timeout, on a
//! blocking thread so the async workers keep serving; a page cut short says where to go on.
//! Every search call is one decision-log record (what was asked, what the page found); a search
//! whose record cannot be kept answers nothing.

use std::time::{Duration, Instant};

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
/// The most candidates one page decides.
pub const MAX_SCAN: usize = 10_000;
/// The most candidates one page tests against a data-filter plan (a condition over fields
/// costs a fraction of a decision).
pub const PLANNED_SCAN: usize = 200_000;
/// Candidates fetched from the index at a time.
const CHUNK: usize = 256;

/// Action names of the schema (or of the entity data without one), sorted.
fn action_names(snapshot: &crate::snapshot::Snapshot) -> Vec<String> {
    let mut names: Vec<String> = match snapshot.pack.schema() {
        Some(schema) => schema
            .actions()
            .map(|uid| uid.id().unescaped().to_owned())
            .collect(),
        None => match snapshot.pack.type_name("Action") {
            Some(action) => snapshot.entities().ids_of_type(&action, None, usize::MAX),
            None => Vec::new(),
        },
    };
    names.sort();
    names.dedup();
    names
}

/// Candidate ids after a cursor, in order.
trait Candidates: Send + 'static {
    fn after(&self, cursor: Option<&str>, limit: usize) -> Vec<String>;
}

/// Known entities of one type, from the entity data's index.
struct OfType {
    snapshot: std::sync::Arc<crate::snapshot::Snapshot>,
    entity_type: Option<warden_core::cedar_policy::EntityTypeName>,
}

impl Candidates for OfType {
    fn after(&self, cursor: Option<&str>, limit: usize) -> Vec<String> {
        match &self.entity_type {
            Some(entity_type) => self
                .snapshot
                .entities()
                .ids_of_type(entity_type, cursor, limit),
            None => Vec::new(),
        }
    }
}

/// A sorted list (action names).
struct Listed(Vec<String>);

impl Candidates for Listed {
    fn after(&self, cursor: Option<&str>, limit: usize) -> Vec<String> {
        let start = match cursor {
            Some(cursor) => self.0.partition_point(|name| name.as_str() <= cursor),
            None => 0,
        };
        self.0.iter().skip(start).take(limit).cloned().collect()
    }
}

/// One page of results, and the ids (or action names) it holds, for the decision log.
struct Page {
    body: Value,
    found: Vec<String>,
}

/// The cursor a page token carries: the last candidate scanned, hex-encoded.
fn cursor_of(page: Option<&PageRequest>) -> Result<Option<String>, ApiError> {
    match page
        .and_then(|p| p.token.as_deref())
        .filter(|t| !t.is_empty())
    {
        None => Ok(None),
        Some(token) => hex::decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::BadRequest("page.token is not a token this PDP issued".to_owned())
            }),
    }
}

/// Walks candidates from the page token on, keeping those `allowed` says yes to, within the
/// page's limits (results, candidates scanned, time), on a blocking thread.
async fn page(
    candidates: impl Candidates,
    page: Option<&PageRequest>,
    max_scan: usize,
    budget: Duration,
    allowed: impl Fn(&str) -> Option<Value> + Send + 'static,
) -> Result<Page, ApiError> {
    let cursor = cursor_of(page)?;
    // Zero asks for nothing and is refused; above the maximum a page holds the maximum (the
    // PDP may return fewer than asked, and `next_token` says there is more).
    let limit = match page.and_then(|p| p.limit) {
        Some(0) => {
            return Err(ApiError::BadRequest(
                "page.limit must be at least 1".to_owned(),
            ));
        }
        Some(limit) => limit.min(MAX_LIMIT),
        None => DEFAULT_LIMIT,
    };
    let scan = move || {
        let started = Instant::now();
        let mut cursor = cursor;
        let mut results = Vec::new();
        let mut found = Vec::new();
        let mut scanned = 0usize;
        let mut more = false;
        'scan: loop {
            let chunk = candidates.after(cursor.as_deref(), CHUNK);
            if chunk.is_empty() {
                break;
            }
            for candidate in chunk {
                if results.len() == limit || scanned == max_scan || started.elapsed() > budget {
                    more = true;
                    break 'scan;
                }
                scanned += 1;
                if let Some(result) = allowed(&candidate) {
                    results.push(result);
                    found.push(candidate.clone());
                }
                cursor = Some(candidate);
            }
        }
        let next = match (more, cursor) {
            (true, Some(cursor)) => hex::encode(cursor.as_bytes()),
            _ => String::new(),
        };
        Page {
            body: json!({
                "page": {"next_token": next, "count": results.len()},
                "results": results,
            }),
            found,
        }
    };
    tokio::task::spawn_blocking(scan)
        .await
        .map_err(|error| ApiError::Internal(format!("a search page failed: {error}")))
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

/// A page of the candidates of `entity_type` that `admits` says a plan admits.
async fn plan_page(
    candidates: OfType,
    page_request: Option<&PageRequest>,
    budget: Duration,
    held: std::sync::Arc<crate::snapshot::Snapshot>,
    entity_type: String,
    plan: warden_core::filter::PlanOutcome,
    admits: fn(
        &crate::snapshot::Snapshot,
        &warden_core::filter::PlanOutcome,
        &warden_core::cedar_policy::EntityUid,
    ) -> bool,
) -> Result<Page, ApiError> {
    let type_name = held.pack.type_name(&entity_type);
    page(candidates, page_request, PLANNED_SCAN, budget, move |id| {
        let uid = warden_core::cedar_policy::EntityUid::from_type_name_and_id(
            type_name.clone()?,
            warden_core::cedar_policy::EntityId::new(id),
        );
        admits(&held, &plan, &uid).then(|| json!({"type": entity_type, "id": id}))
    })
    .await
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
    context: Option<&Value>,
) -> bool {
    crate::engine::decide(
        snapshot,
        &crate::engine::DecisionInput {
            principal: crate::engine::PrincipalInput::Named(subject.into()),
            action: action.to_owned(),
            resource: resource.into(),
            context: context.cloned(),
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
    let candidates = OfType {
        entity_type: snapshot
            .snapshot
            .pack
            .type_name(&request.subject.entity_type),
        snapshot: std::sync::Arc::clone(&snapshot.snapshot),
    };
    // One subject plan, then each candidate is a condition over its fields (and its store
    // status); a question the plan cannot answer decides each candidate.
    let plan = warden_service::filter::subject_plan(
        &snapshot,
        &request.subject.entity_type,
        &request.action.name,
        &(&request.resource).into(),
        request.context.as_ref(),
    );
    let Page { body, found } = match plan {
        Some(plan) => {
            plan_page(
                candidates,
                request.page.as_ref(),
                state.limits.search_budget,
                std::sync::Arc::clone(&snapshot.snapshot),
                request.subject.entity_type.clone(),
                plan,
                warden_service::filter::admits_subject,
            )
            .await?
        }
        None => {
            let (scope, subject_type, action, resource, context) = (
                snapshot.clone(),
                request.subject.entity_type.clone(),
                request.action.name.clone(),
                request.resource.clone(),
                request.context.clone(),
            );
            page(
                candidates,
                request.page.as_ref(),
                MAX_SCAN,
                state.limits.search_budget,
                move |id| {
                    let subject = EntityRef {
                        entity_type: subject_type.clone(),
                        id: id.to_owned(),
                        properties: None,
                    };
                    allowed(&scope, &subject, &action, &resource, context.as_ref())
                        .then(|| json!({"type": subject_type, "id": id}))
                },
            )
            .await?
        }
    };
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
    cursor_of(request)?;
    Ok(axum::Json(empty_page()))
}

fn empty_page() -> Value {
    json!({"page": {"next_token": "", "count": 0}, "results": []})
}

/// Records a search whose subject was refused; it finds nothing.
async fn refused(
    state: &AppState,
    caller: &Caller,
    search: Search<'_>,
    request: Option<&PageRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    cursor_of(request)?;
    answer(state, caller, search, empty_page(), request).await
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
    let candidates = OfType {
        entity_type: snapshot
            .snapshot
            .pack
            .type_name(&request.resource.entity_type),
        snapshot: std::sync::Arc::clone(&snapshot.snapshot),
    };
    // One data-filter plan for the search, then each candidate is a condition over its fields
    // (no decision per candidate). Policies that cannot be written as a filter fall back to
    // deciding each candidate, within the page's budget; a refusal finds nothing.
    let planned = warden_service::filter::plan(
        &snapshot,
        &warden_service::filter::FilterInput {
            principal: crate::engine::PrincipalInput::Named((&subject).into()),
            action: request.action.name.clone(),
            resource_type: request.resource.entity_type.clone(),
            context: request.context.clone(),
        },
    );
    let plan = match planned {
        Ok(outcome) => match outcome.refusal {
            Some(refusal) => {
                let search = Search {
                    kind: "resource",
                    subject: logged(&subject),
                    action: Some(request.action.name.clone()),
                    resource: any_of(&request.resource.entity_type),
                    found: &[],
                    refusal: Some(&refusal),
                };
                return refused(&state, &caller, search, request.page.as_ref()).await;
            }
            None => outcome.plan.map(|plan| plan.outcome),
        },
        Err(warden_service::filter::FilterFailure::Invalid(detail)) => {
            tracing::debug!(%detail, "resource search: the question does not fit the pack");
            None
        }
        Err(
            warden_service::filter::FilterFailure::Unsupported(error)
            | warden_service::filter::FilterFailure::Unfilterable { error, .. },
        ) => {
            tracing::debug!(%error, "resource search: deciding each candidate");
            None
        }
    };
    let Page { body, found } = match plan {
        Some(plan) => {
            plan_page(
                candidates,
                request.page.as_ref(),
                state.limits.search_budget,
                std::sync::Arc::clone(&snapshot.snapshot),
                request.resource.entity_type.clone(),
                plan,
                warden_service::filter::admits,
            )
            .await?
        }
        None => {
            let (scope, subject, action, resource_type, context) = (
                snapshot.clone(),
                subject.clone(),
                request.action.name.clone(),
                request.resource.entity_type.clone(),
                request.context.clone(),
            );
            page(
                candidates,
                request.page.as_ref(),
                MAX_SCAN,
                state.limits.search_budget,
                move |id| {
                    let resource = EntityRef {
                        entity_type: resource_type.clone(),
                        id: id.to_owned(),
                        properties: None,
                    };
                    allowed(&scope, &subject, &action, &resource, context.as_ref())
                        .then(|| json!({"type": resource_type, "id": id}))
                },
            )
            .await?
        }
    };
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
    let candidates = Listed(action_names(&snapshot.snapshot));
    let Page { body, found } = {
        let (scope, subject, resource, context) = (
            snapshot.clone(),
            subject.clone(),
            request.resource.clone(),
            request.context.clone(),
        );
        page(
            candidates,
            request.page.as_ref(),
            MAX_SCAN,
            state.limits.search_budget,
            move |name| {
                allowed(&scope, &subject, name, &resource, context.as_ref())
                    .then(|| json!({"name": name}))
            },
        )
        .await?
    };
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
