//! What every handler shares: the current snapshot, the token verifier, the store, limits,
//! PEP credential digests and the metrics handle. Cheap to clone (all `Arc`s).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use warden_store::Store;
use warden_token::Verifier;

pub use crate::snapshot::{Limits, PolicyHolder, Snapshot, StoreFreshness, StoreView};

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

/// What [`AppState`] shares.
pub struct Shared {
    /// The snapshot.
    pub policy: Arc<PolicyHolder>,
    /// The token verifier.
    pub verifier: Arc<Verifier>,
    /// The store, when configured.
    pub store: Option<Store>,
    /// How fresh the store view is.
    pub store_freshness: Option<Arc<StoreFreshness>>,
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
    /// Attributes a token states authoritatively even for a known principal.
    pub claim_attributes: Arc<Vec<String>>,
    /// Revoked tokens, sessions, subjects, clients and keys.
    pub revocations: Arc<crate::revocation::RevocationSet>,
    /// The decision log, unless `[audit] enabled = false`.
    pub decision_log: Option<crate::decision_log::DecisionLog>,
    /// Warden as an issuer, when `[tokens]` is configured.
    pub token_issuer: Option<Arc<crate::issuer::TokenIssuer>>,
}

impl AppState {
    /// Warden's issuer with the verifier its keys go into, when `[tokens]` is configured.
    pub(crate) fn issuer_sync(&self) -> Option<crate::store_sync::IssuerSync> {
        self.token_issuer
            .as_ref()
            .map(|issuer| crate::store_sync::IssuerSync {
                issuer: Arc::clone(issuer),
                verifier: Arc::clone(&self.verifier),
            })
    }
}
