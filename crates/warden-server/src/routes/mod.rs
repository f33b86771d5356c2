//! HTTP handlers, one module per area. Each handler extracts, calls the engine, maps the result.

pub mod authzen;
pub mod check;
pub mod ops;
pub mod search;

use crate::problem::ApiError;
use crate::state::{AppState, Snapshot};

/// The current snapshot, or 503 before the first successful load (fail closed).
pub(crate) fn snapshot(state: &AppState) -> Result<std::sync::Arc<Snapshot>, ApiError> {
    state
        .policy
        .current()
        .ok_or_else(|| ApiError::Unavailable("no policy pack is loaded".to_owned()))
}
