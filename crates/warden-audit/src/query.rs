//! Finding records: filters for `warden audit query`, and lookups by id for
//! `GET /v1/decisions/{id}`, over a log directory or the PostgreSQL table.

use std::path::Path;

use crate::file_sink::log_files;
use crate::record::{EntityRef, Kind, StoredRecord, decode, parse_time_ms};

/// What to look for; every set field must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// The record's tenant (the resource's, else the principal's).
    pub tenant: Option<String>,
    /// `Type::"id"` or the bare id.
    pub principal: Option<String>,
    /// `Type::"id"` or the bare id.
    pub resource: Option<String>,
    /// Any actor of a delegated token's chain (`actors`): `Type::"id"` or the bare id.
    pub actor: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
    /// Reason code.
    pub reason: Option<String>,
    /// Unix milliseconds, inclusive.
    pub since_ms: Option<i128>,
    /// Unix milliseconds, exclusive.
    pub until_ms: Option<i128>,
    /// Include admin records and checkpoints (decisions only by default).
    pub all_kinds: bool,
}

impl Filter {
    /// Does `stored` match?
    pub fn matches(&self, stored: &StoredRecord) -> bool {
        let record = &stored.record;
        if !self.all_kinds && record.kind != Kind::Decision {
            return false;
        }
        let same = |wanted: &Option<String>, actual: Option<&str>| {
            wanted.as_deref().is_none_or(|w| actual == Some(w))
        };
        let entity = |wanted: &Option<String>, actual: Option<&EntityRef>| {
            wanted.as_deref().is_none_or(|w| {
                actual.is_some_and(|e| {
                    e.id == w
                        || format!(
                            "{}::{}",
                            e.entity_type,
                            serde_json::Value::String(e.id.clone())
                        ) == w
                })
            })
        };
        let time = parse_time_ms(&record.time);
        same(&self.tenant, record.tenant())
            && entity(&self.principal, record.principal.as_ref())
            && entity(&self.resource, record.resource.as_ref())
            && (self.actor.is_none()
                || record
                    .actors
                    .iter()
                    .any(|actor| entity(&self.actor, Some(actor))))
            && same(&self.decision, record.decision.as_deref())
            && same(&self.reason, record.reason.as_deref())
            && self
                .since_ms
                .is_none_or(|since| time.is_some_and(|t| t >= since))
            && self
                .until_ms
                .is_none_or(|until| time.is_some_and(|t| t < until))
    }
}

/// Why a log could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct ReadError {
    /// The file.
    pub path: String,
    /// The cause.
    pub source: std::io::Error,
}

/// Every record of a log directory (or one file) that matches, in chain order, at most `limit`
/// (the newest `limit` when `newest` is set). Lines that do not verify are skipped here;
/// `warden audit verify` is the tool that reports them.
pub fn query_path(
    path: &Path,
    filter: &Filter,
    limit: usize,
    newest: bool,
) -> Result<Vec<StoredRecord>, ReadError> {
    let files = if path.is_dir() {
        log_files(path).map_err(|source| ReadError {
            path: path.display().to_string(),
            source,
        })?
    } else {
        vec![path.to_path_buf()]
    };
    let mut found = std::collections::VecDeque::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| ReadError {
            path: file.display().to_string(),
            source,
        })?;
        for line in text.lines() {
            let Ok(stored) = decode(line) else { continue };
            if filter.matches(&stored) {
                found.push_back(stored);
                if found.len() > limit {
                    if newest {
                        found.pop_front();
                    } else {
                        found.pop_back();
                        return Ok(found.into());
                    }
                }
            }
        }
    }
    Ok(found.into())
}

/// The newest `limit` records of one log file that match, in chain order, and how many
/// records the file held.
pub fn query_file_counted(
    file: &Path,
    filter: &Filter,
    limit: usize,
) -> Result<(Vec<StoredRecord>, usize), ReadError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        // Rotated away between listing and reading.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), 0));
        }
        Err(source) => {
            return Err(ReadError {
                path: file.display().to_string(),
                source,
            });
        }
    };
    let mut found = std::collections::VecDeque::new();
    let mut read = 0usize;
    for line in text.lines() {
        read += 1;
        let Ok(stored) = decode(line) else { continue };
        if filter.matches(&stored) {
            found.push_back(stored);
            if found.len() > limit {
                found.pop_front();
            }
        }
    }
    Ok((found.into(), read))
}

/// The record `id` in a log directory, newest file first.
pub fn find_in_dir(dir: &Path, id: &str) -> Result<Option<StoredRecord>, ReadError> {
    let files = log_files(dir).map_err(|source| ReadError {
        path: dir.display().to_string(),
        source,
    })?;
    let needle = format!("\"id\":{}", serde_json::Value::String(id.to_owned()));
    for file in files.iter().rev() {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ReadError {
                    path: file.display().to_string(),
                    source,
                });
            }
        };
        for line in text.lines().rev() {
            if line.contains(&needle)
                && let Ok(stored) = decode(line)
                && stored.record.id == id
            {
                return Ok(Some(stored));
            }
        }
    }
    Ok(None)
}
