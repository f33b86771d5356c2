//! `GET /v1/admin/decisions`: searching the decision log (the console's decision search), newest
//! first. A tenant-scoped admin sees its tenant's decisions only. The search is bounded: at
//! most `limit` records (≤ 200) are returned and at most [`MAX_SCANNED`] records read from
//! PostgreSQL per search (`truncated` says so); `since` (default 24h) bounds it in time.

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

/// `GET /v1/admin/decisions?tenant=&principal=&resource=&decision=&reason=&since=&limit=`.
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
    let (principal, resource, reason) = (
        given(query.principal),
        given(query.resource),
        given(query.reason),
    );
    for (name, value) in [
        ("tenant", &tenant),
        ("principal", &principal),
        ("resource", &resource),
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
        decision,
        reason,
        since_ms: Some(since_ms),
        until_ms: None,
        all_kinds: false,
    };
    let log = state.decision_log.as_ref().ok_or_else(|| {
        ApiError::NotFound("the decision log is disabled ([audit] enabled = false)".to_owned())
    })?;
    let (found, scanned, truncated) = match &log.source {
        LogSource::Dir(dir) => {
            let dir = dir.clone();
            let found = tokio::task::spawn_blocking(move || {
                warden_audit::query::query_path(&dir, &filter, limit, true)
            })
            .await
            .map_err(|error| unreadable(&error))?
            .map_err(|error| unreadable(&error))?;
            let mut found: Vec<StoredRecord> = found;
            found.reverse();
            (found, None, false)
        }
        LogSource::Postgres(table) => {
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

fn unreadable(error: &dyn std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("the decision log cannot be read: {error}"))
}
