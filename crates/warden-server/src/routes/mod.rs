//! HTTP handlers, one module per area. Each handler extracts, calls the engine, maps the result.

pub mod authzen;
pub mod check;
pub mod ops;
pub mod search;

pub mod admin;
pub mod oauth;
pub mod revocations;
pub mod service_accounts;

use crate::engine::DecisionScope;
use crate::problem::ApiError;
use crate::state::AppState;

/// The current snapshot and its freshness, or 503 before the first load (fail closed).
pub(crate) fn snapshot(state: &AppState) -> Result<DecisionScope, ApiError> {
    let snapshot = state
        .policy
        .current()
        .ok_or_else(|| ApiError::Unavailable("no policy pack is loaded".to_owned()))?;
    let stale = state
        .store_freshness
        .as_ref()
        .and_then(|freshness| freshness.stale_reason());
    Ok(DecisionScope {
        snapshot,
        stale,
        claim_attributes: std::sync::Arc::clone(&state.claim_attributes),
        audit_down: state
            .decision_log
            .as_ref()
            .and_then(|log| log.log.refuses_new_decisions())
            .map(|unavailable| unavailable.0),
    })
}
