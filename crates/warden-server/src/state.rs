//! What every handler shares: the current policy snapshot, the token verifier, limits, PEP
//! credential digests and the metrics handle. Cheap to clone (all `Arc`s).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use metrics_exporter_prometheus::PrometheusHandle;
use warden_core::Pack;
use warden_core::cedar_policy::Entities;
use warden_token::Verifier;

/// A pack and its entities, loaded together and swapped together.
#[derive(Debug)]
pub struct Snapshot {
    /// The compiled pack.
    pub pack: Pack,
    /// The entity data from `[policy] entities_file` (empty if none).
    pub entities: Entities,
    /// When it was loaded.
    pub loaded_at: SystemTime,
}

/// The current snapshot and the outcome of the last reload.
#[derive(Debug, Default)]
pub struct PolicyHolder {
    current: RwLock<Option<Arc<Snapshot>>>,
    last_error: RwLock<Option<String>>,
}

impl PolicyHolder {
    /// The snapshot requests decide against; `None` until the first successful load.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Swaps in a new snapshot atomically and clears the last error.
    pub fn install(&self, snapshot: Snapshot) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(snapshot));
        *self
            .last_error
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Records a failed reload; the current snapshot keeps serving.
    pub fn record_error(&self, error: String) {
        *self
            .last_error
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// The last reload error, if the last reload failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body.
    pub max_body_bytes: usize,
    /// Most evaluations per batch.
    pub max_batch_size: usize,
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The policy snapshot.
    pub policy: Arc<PolicyHolder>,
    /// The token verifier.
    pub verifier: Arc<Verifier>,
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
}
