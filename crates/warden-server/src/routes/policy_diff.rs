//! `POST /v1/admin/diff`: `warden diff` as an admin call, so CI can gate a policy pull request
//! on the server's own decision log (issue #24). The body carries the candidate pack's files;
//! the server replays its recorded decisions against the pack in force and the candidate, over
//! its current entity data (shared, not copied), records nothing, and answers the report with
//! the number of changes no `expect` covers. For an admin of all tenants only (the log holds
//! every tenant's decisions). A candidate that changes the schema or `pack.toml` is a 409: its
//! entity data would have to be read again, which `warden diff --config` does.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use warden_core::pack::data_fingerprint_of;
use warden_core::pack::{SchemaFormat, SchemaSource, SourceFile};
use warden_core::tenant_policies::nesting_problem;
use warden_core::{Pack, PackSources};
use warden_service::clock::unix_now;
use warden_service::policy_diff::{
    Expectation, Replay, candidate_scope, read_decisions, replay_scope, replay_service, since_ms,
};

use crate::admin_auth::GlobalAdmin;
use crate::json::LargeJson;
use crate::problem::{ApiError, PolicyProblem};
use crate::state::AppState;
use crate::wire::json_response;

/// The request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffRequest {
    /// The candidate pack: file name → text (`*.cedar`, one `*.cedarschema` or
    /// `*.cedarschema.json`, `pack.toml`).
    files: BTreeMap<String, String>,
    /// Only decisions this recent (`7d`, or an RFC 3339 time).
    #[serde(default)]
    since: Option<String>,
    /// Expected changes, `DIRECTION[:POLICY][@TENANT]`.
    #[serde(default)]
    expect: Vec<String>,
    /// Examples per group (default 3, at most 100).
    #[serde(default = "default_examples")]
    examples: usize,
}

fn default_examples() -> usize {
    3
}

/// The candidate pack's sources, or why the file names do not make one.
fn sources(files: BTreeMap<String, String>) -> Result<PackSources, ApiError> {
    let mut sources = PackSources::default();
    for (name, text) in files {
        let schema_format = if name.ends_with(".cedarschema.json") {
            Some(SchemaFormat::Json)
        } else if name.ends_with(".cedarschema") {
            Some(SchemaFormat::CedarSchema)
        } else {
            None
        };
        if name == "pack.toml" {
            sources.manifest = Some(SourceFile::new(name, text));
        } else if let Some(format) = schema_format {
            if sources.schema.is_some() {
                return Err(ApiError::BadRequest(
                    "the candidate has two schema files".to_owned(),
                ));
            }
            sources.schema = Some(SchemaSource {
                file: SourceFile::new(name, text),
                format,
            });
        } else if name.ends_with(".cedar") {
            sources.policy_files.push(SourceFile::new(name, text));
        } else {
            return Err(ApiError::BadRequest(format!(
                "`{name}` is not a pack file (*.cedar, *.cedarschema, *.cedarschema.json, pack.toml)"
            )));
        }
    }
    if sources.policy_files.is_empty() {
        return Err(ApiError::BadRequest(
            "the candidate has no *.cedar file".to_owned(),
        ));
    }
    Ok(sources)
}

/// One diff at a time per replica: a replay holds its worker and the decisions of its window.
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The most `expect` entries.
const MAX_EXPECTATIONS: usize = 1000;

/// `POST /v1/admin/diff`.
pub async fn diff(
    State(state): State<AppState>,
    _admin: GlobalAdmin,
    LargeJson(request): LargeJson<DiffRequest>,
) -> Result<Response, ApiError> {
    if request.examples > 100 || request.expect.len() > MAX_EXPECTATIONS {
        return Err(ApiError::BadRequest(format!(
            "examples is at most 100 and expect has at most {MAX_EXPECTATIONS} entries"
        )));
    }
    let expected: Vec<Expectation> = request
        .expect
        .iter()
        .map(|text| text.parse().map_err(ApiError::BadRequest))
        .collect::<Result<_, _>>()?;
    let since = request
        .since
        .as_deref()
        .map(|text| {
            since_ms(text, unix_now()).map_err(|why| ApiError::BadRequest(format!("since: {why}")))
        })
        .transpose()?;
    let sources = sources(request.files)?;
    let current = crate::routes::snapshot(&state)?;
    // Before anything is parsed: the schema and manifest must be the pack in force's (so they
    // parsed before), and every policy file shallow enough for Cedar's recursive parser.
    if &data_fingerprint_of(&sources) != current.snapshot.pack.data_fingerprint() {
        return Err(ApiError::Conflict(
            "the candidate changes the schema or pack.toml: the entity data would have to be read again against it (run `warden diff --config … --policies …`)"
                .to_owned(),
        ));
    }
    for file in &sources.policy_files {
        if let Some(problem) = nesting_problem(&file.text) {
            return Err(ApiError::BadRequest(format!("{}: {problem}", file.path)));
        }
    }
    let Ok(_running) = RUNNING.try_acquire() else {
        return Err(ApiError::Conflict(
            "another diff is running on this replica; try again when it is done".to_owned(),
        ));
    };
    let candidate = match Pack::compile(&sources) {
        Ok(compiled) => compiled.pack,
        Err(error) => {
            return Err(ApiError::InvalidPolicy {
                detail: "the candidate pack does not compile".to_owned(),
                problems: error
                    .errors()
                    .map(|d| PolicyProblem {
                        file: d.file.clone().unwrap_or_default(),
                        line: d.line,
                        column: d.column,
                        message: d.message.clone(),
                    })
                    .collect(),
            });
        }
    };
    let log = state.decision_log.as_ref().ok_or_else(|| {
        ApiError::Conflict("the decision log is disabled ([audit] enabled = false)".to_owned())
    })?;
    let candidate_revision = candidate.revision().to_string();
    let current = replay_scope(&current, std::sync::Arc::clone(&current.snapshot.pack))
        .map_err(ApiError::Unavailable)?;
    let candidate = candidate_scope(&current, candidate).map_err(ApiError::Conflict)?;
    let records = read_decisions(&log.source, since).await.map_err(|error| {
        ApiError::Unavailable(format!("the decision log cannot be read: {error}"))
    })?;
    let service = replay_service(&state.service);
    let replay = Replay {
        current: (&service, &current),
        candidate: (&service, &candidate),
        examples: request.examples,
        expected,
    };
    let report = replay.run(records).await;
    let surprises = report.unexpected;
    Ok(json_response(&json!({
        "current_revision": current.snapshot.pack.revision().to_string(),
        "candidate_revision": candidate_revision,
        "entity_state": "today",
        "report": report,
        "unexpected": surprises,
    })))
}
