//! What every handler shares: the [`Service`] that decides, plus limits, PEP credential
//! digests and the metrics handle. Cheap to clone (one `Arc`).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use warden_service::Service;

pub use crate::snapshot::{Limits, PolicyHolder, Snapshot, StoreFreshness};

/// Shared state of all handlers: one `Arc`, so that the per-request clones axum makes (the
/// state extractor, the middleware) are one atomic increment, not one per field.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares: the service that decides, and what only HTTP needs. Derefs to
/// the [`Service`], so handlers call the pipeline as `state.check(…)`.
pub struct Shared {
    /// Everything that decides.
    pub service: Service,
    /// Request limits.
    pub limits: Limits,
    /// SHA-256 digests of PEP credentials.
    pub pep_credentials: Arc<Vec<[u8; 32]>>,
    /// Local development: PEPs need no credential.
    pub allow_unauthenticated_peps: bool,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Base URL for the AuthZEN metadata.
    pub public_url: Arc<str>,
    /// Per-address rate limits.
    pub rate_limits: crate::rate_limit::RateLimits,
    /// SHA-256 digests of the credentials that may read `/metrics` (empty: open).
    pub metrics_credentials: Vec<[u8; 32]>,
    /// Whether a verified TLS client certificate authenticates a PEP.
    pub pep_client_certificates: bool,
    /// The gateways' route table (`[[routes]]`, `[forward_auth]`).
    pub routes: Arc<warden_service::routes::RouteTable>,
    /// `[forward_auth] unknown_resources`.
    pub unknown_resources: warden_config::UnknownResources,
    /// `[context_token]`: identity passed inward on allow.
    pub context_token: Option<warden_config::ContextTokenSettings>,
}

impl std::ops::Deref for Shared {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.service
    }
}
