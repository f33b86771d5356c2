//! `GET /v1/admin/decisions`: searching the decision log (the console's decision search), newest
//! first. A tenant-scoped admin sees its tenant's decisions only. The search is bounded: at
//! most `limit` records (≤ 200) are returned; files are read newest first and the search stops
//! when it has them, skips files last written before `since` (default 24h), and stops at half
//! the request timeout; at most [`MAX_SCANNED`] records are read from PostgreSQL; `truncated`
//! says when a bound cut it short. At most [`MAX_SEARCHES`] run at once per replica (409 past
//! that).

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use warden_audit::query::Filter;
use warden_audit::record::{StoredRecord, decode};

use crate::admin_auth::AnyAdmin;
use crate::decision_log::LogSource;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::wire::{DecisionAnswer, json_response};

/// The most records one search reads from the PostgreSQL log.
pub const MAX_SCANNED: usize = 200_000;
/// The most records one search returns.
pub const MAX_LIMIT: usize = 200;
/// The most searches running at once on a replica.
pub const MAX_SEARCHES: usize = 2;

/// Held by the search itself (moved into its blocking task): a client that hangs up does not
/// free its slot while the files are still being read.
static SEARCHES: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_SEARCHES)));
/// A file last written this long before `since` is skipped unread (clocks and file systems
/// disagree a little).
const MTIME_SLACK_MS: i128 = 5 * 60 * 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

fn given(value: Option<String>) -> Option<String> {
    value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// `GET /v1/admin/decisions?tenant=&principal=&resource=&actor=&decision=&reason=&since=&limit=`.
pub async fn search(
    State(state): State<AppState>,
    admin: AnyAdmin,
    Query(query): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let decision = given(query.decision);
    if let Some(decision) = &decision
        && decision != "allow"
        && decision != "deny"
    {
        return Err(ApiError::BadRequest(format!(
            "decision `{decision}` is not allow or deny"
        )));
    }
    let mut tenant = given(query.tenant);
    if let Some(scope) = &admin.0.tenant_scope {
        match &tenant {
            Some(asked) if asked != scope => {
                return Err(ApiError::Forbidden(format!(
                    "admin credential {} may not read tenant `{asked}`'s decisions",
                    admin.0.credential_id
                )));
            }
            _ => tenant = Some(scope.clone()),
        }
    }
    let since = given(query.since).unwrap_or_else(|| "24h".to_owned());
    let since_ms = warden_service::policy_diff::since_ms(&since, crate::clock::unix_now())
        .map_err(ApiError::BadRequest)?;
    let (principal, resource, actor, reason) = (
        given(query.principal),
        given(query.resource),
        given(query.actor),
        given(query.reason),
    );
    for (name, value) in [
        ("tenant", &tenant),
        ("principal", &principal),
        ("resource", &resource),
        ("actor", &actor),
        ("reason", &reason),
    ] {
        if value.as_ref().is_some_and(|value| value.len() > 512) {
            return Err(ApiError::BadRequest(format!("{name} is at most 512 bytes")));
        }
    }
    let filter = Filter {
        tenant,
        principal,
        resource,
        actor,
        decision,
        reason,
        since_ms: Some(since_ms),
        until_ms: None,
        all_kinds: false,
    };
    let log = state.decision_log.as_ref().ok_or_else(|| {
        ApiError::NotFound("the decision log is disabled ([audit] enabled = false)".to_owned())
    })?;
    let Ok(searching) = std::sync::Arc::clone(&SEARCHES).try_acquire_owned() else {
        return Err(ApiError::Conflict(format!(
            "{MAX_SEARCHES} decision searches are running on this replica; try again when one is done"
        )));
    };
    let (found, scanned, truncated) = match &log.source {
        LogSource::Dir(dir) => {
            let dir = dir.clone();
            let deadline = std::time::Instant::now() + state.limits.search_budget;
            let hung_up = HungUp::default();
            let cancelled = std::sync::Arc::clone(&hung_up.0);
            let (found, scanned, truncated) = tokio::task::spawn_blocking(move || {
                let _searching = searching;
                search_dir(&dir, &filter, limit, since_ms, deadline, &cancelled)
            })
            .await
            .map_err(|error| unreadable(&error))?
            .map_err(|error| unreadable(&error))?;
            (found, Some(scanned), truncated)
        }
        LogSource::Postgres(table) => {
            let _searching = searching;
            let mut found = Vec::new();
            let mut scanned = 0usize;
            let mut before = None;
            let mut truncated = false;
            'pages: loop {
                let page = table
                    .lines_newest_first(before, 2_000)
                    .await
                    .map_err(|error| unreadable(&error))?;
                if page.is_empty() {
                    break;
                }
                let previous = before;
                for line in page {
                    scanned += 1;
                    let Ok(stored) = decode(&line) else { continue };
                    before = Some(stored.seq);
                    let time = warden_audit::record::parse_time_ms(&stored.record.time);
                    if time.is_some_and(|time| time < since_ms) {
                        break 'pages;
                    }
                    if filter.matches(&stored) {
                        found.push(stored);
                        if found.len() >= limit {
                            break 'pages;
                        }
                    }
                    if scanned >= MAX_SCANNED {
                        truncated = true;
                        break 'pages;
                    }
                }
                if before == previous {
                    return Err(unreadable(
                        &"a page of the decision-log table has no row that decodes (run `warden audit verify`)",
                    ));
                }
            }
            (found, Some(scanned), truncated)
        }
    };
    let decisions: Vec<DecisionAnswer<'_>> = found.iter().map(DecisionAnswer::of).collect();
    Ok(json_response(&serde_json::json!({
        "decisions": decisions,
        "scanned": scanned,
        "truncated": truncated,
    })))
}

/// The newest `limit` matches of a log directory: files newest first, a file last written
/// well before `since_ms` skipped unread (its records are all older), stopping once `limit` are
/// found, or past `deadline` or when `cancelled` (then `truncated`). Returns the matches newest first and how many
/// records were read.
fn search_dir(
    dir: &std::path::Path,
    filter: &Filter,
    limit: usize,
    since_ms: i128,
    deadline: std::time::Instant,
    cancelled: &std::sync::atomic::AtomicBool,
) -> Result<(Vec<StoredRecord>, usize, bool), warden_audit::query::ReadError> {
    let files = warden_audit::file_sink::log_files(dir).map_err(|source| {
        warden_audit::query::ReadError {
            path: dir.display().to_string(),
            source,
        }
    })?;
    let mut found: Vec<StoredRecord> = Vec::new();
    let mut scanned = 0usize;
    for file in files.iter().rev() {
        if std::time::Instant::now() > deadline
            || cancelled.load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok((found, scanned, true));
        }
        let written_ms = std::fs::metadata(file)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|since_epoch| i128::try_from(since_epoch.as_millis()).unwrap_or(i128::MAX));
        // Only this file: another may have been written later (copied, restored, touched).
        if written_ms.is_some_and(|written| written < since_ms.saturating_sub(MTIME_SLACK_MS)) {
            continue;
        }
        let wanted = limit.saturating_sub(found.len());
        let (mut newest, read) = warden_audit::query::query_file_counted(file, filter, wanted)?;
        scanned += read;
        newest.reverse();
        found.extend(newest);
        if found.len() >= limit {
            break;
        }
    }
    Ok((found, scanned, false))
}

/// Set when the request is dropped (the client hung up, or the timeout answered): the search's
/// blocking task stops at its next file.
#[derive(Default)]
struct HungUp(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for HungUp {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn unreadable(error: &dyn std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("the decision log cannot be read: {error}"))
}
