//! HTTP handlers, one module per area. Each handler extracts, calls the engine, maps the result.

pub mod authzen;
pub mod check;
pub mod filter;
pub mod forward_auth;
pub mod ops;
pub mod search;

pub mod admin;
pub mod admin_credentials;
pub mod console;
pub mod decisions;
pub mod oauth;
pub mod policy_diff;
pub mod reviews;
pub mod revocations;
pub mod service_accounts;
pub mod tenant_policies;

use crate::engine::DecisionScope;
use crate::problem::ApiError;
use crate::state::AppState;

/// The current snapshot and its freshness, or 503 before the first load (fail closed).
pub(crate) fn snapshot(state: &AppState) -> Result<DecisionScope, ApiError> {
    state
        .scope()
        .map_err(|not_ready| ApiError::Unavailable(not_ready.to_string()))
}
