//! Keeping the in-memory snapshot in step with the store.
//!
//! The decision path reads memory only. A background task reads the store's change counter
//! every `storage.poll_interval_ms`; when it moved (a write on any replica) or when a time-bound
//! grant expired, it reads the store and rebuilds the snapshot. This is the change feed between
//! replicas: a write on one replica is visible on every other within one poll interval. A
//! replica that cannot read the store for `storage.max_staleness_seconds` stops trusting its
//! snapshot: every decision is a deny with reason `store_unavailable` and `/readyz` says why.

use std::sync::Arc;
use std::time::Duration;

use warden_store::{Store, StoreError};

use crate::clock::unix_now;
use crate::issuer::TokenIssuer;
use crate::revocation::RevocationSet;
use crate::snapshot::{PolicyHolder, StoreFreshness, StoreView};

/// Warden's issuer and the verifier its keys are installed into, kept in step with the store.
#[derive(Clone)]
pub struct IssuerSync {
    /// The issuer state.
    pub issuer: Arc<TokenIssuer>,
    /// The verifier.
    pub verifier: Arc<warden_token::Verifier>,
}

/// Every 10 seconds writes the batched uses of service accounts; every minute re-reads keys and
/// accounts (so a due key rotation happens even when nothing else changes).
pub fn spawn_issuer_tasks(
    store: Store,
    sync: IssuerSync,
    holder: Arc<PolicyHolder>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks: u64 = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            ticks += 1;
            let pack = holder.current().map(|snapshot| Arc::clone(&snapshot.pack));
            let scopes_of_policy = |id: &str| -> Vec<String> {
                pack.as_ref()
                    .and_then(|pack| {
                        pack.policy(&warden_core::cedar_policy::PolicyId::new(id))
                            .map(ToString::to_string)
                    })
                    .map(|text| crate::issuer::string_literals(&text))
                    .unwrap_or_default()
            };
            if let Err(error) = sync.issuer.flush_uses(&store, &scopes_of_policy).await {
                tracing::warn!(%error, "recording service-account use failed; it is counted again on the next use");
            }
            if ticks.is_multiple_of(6)
                && let Err(error) = sync.issuer.sync(&store, &sync.verifier, unix_now()).await
            {
                tracing::warn!(%error, "re-reading signing keys and service accounts failed");
            }
        }
    })
}

/// Reads everything the snapshot needs from the store, in one transaction.
pub async fn read_view(store: &Store) -> Result<StoreView, StoreError> {
    store.read_state(unix_now()).await
}

/// Why the store could not be brought into memory; the snapshot in force keeps serving within
/// the staleness bound.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Warden's keys or accounts could not be read or unsealed.
    #[error(transparent)]
    Issuer(#[from] crate::issuer::IssuerSyncError),
    /// The store's state does not compose with the pack.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

/// Reads the store and installs the result; used at start and right after an admin write.
/// Revocations: only what is new since the last store version seen.
pub async fn refresh(
    store: &Store,
    holder: &PolicyHolder,
    freshness: &StoreFreshness,
    revocations: &RevocationSet,
    issuer: Option<&IssuerSync>,
) -> Result<(), SyncError> {
    if let Some(sync) = issuer
        && let Err(error) = sync.issuer.sync(store, &sync.verifier, unix_now()).await
    {
        freshness.mark_error(error.to_string());
        return Err(error.into());
    }
    // The view reads the change counter first; revocations are read after it, so every
    // revocation at or below the version the snapshot records is in memory before it is
    // installed (a later one is read again on the next change).
    let view = read_view(store).await;
    if view.is_ok() {
        match store
            .revocations_since(
                revocations.seen_version(),
                unix_now()
                    .saturating_sub(crate::revocation::EXPIRY_MARGIN_SECONDS)
                    .saturating_sub(1),
            )
            .await
        {
            Ok(new) => revocations.apply(&new),
            Err(error) => {
                freshness.mark_error(error.to_string());
                return Err(error.into());
            }
        }
    }
    match view {
        Ok(view) => match holder.set_store_view(view) {
            // Fresh only once the store's state is what decides: a view that cannot be
            // composed leaves the replica to fail closed when the staleness bound passes. A
            // view older than the one in force changes nothing, and the store was read.
            Ok(_) => {
                freshness.mark_ok();
                Ok(())
            }
            Err(error) => {
                freshness.mark_error(error.to_string());
                Err(error.into())
            }
        },
        Err(error) => {
            freshness.mark_error(error.to_string());
            Err(error.into())
        }
    }
}

/// Polls the change counter until aborted.
pub fn spawn_poller(
    store: Store,
    holder: Arc<PolicyHolder>,
    freshness: Arc<StoreFreshness>,
    revocations: Arc<RevocationSet>,
    issuer: Option<IssuerSync>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let seen = holder.current().and_then(|snapshot| snapshot.store_version);
            let next_expiry = holder.current().and_then(|snapshot| snapshot.next_expiry);
            match store.version().await {
                Ok(version) => {
                    if let Some(seen) = seen
                        && version < seen
                    {
                        // The counter only grows; going back means another database (a
                        // restore, a replacement). Versions no longer order anything: read
                        // it all again, snapshot and revocations, keeping every revocation.
                        tracing::error!(
                            seen,
                            version,
                            "the store's change counter went back (a restored or replaced database?): reading everything again"
                        );
                        holder.forget_store_view();
                        revocations.rewind();
                    }
                    let expired = next_expiry.is_some_and(|at| at <= unix_now());
                    if seen == Some(version) && !expired {
                        freshness.mark_ok();
                    }
                    if (seen != Some(version) || expired)
                        && let Err(error) =
                            refresh(&store, &holder, &freshness, &revocations, issuer.as_ref())
                                .await
                    {
                        tracing::error!(error = %error, "rebuilding from the store failed; the last snapshot keeps serving within the staleness bound");
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "reading the store's change counter failed");
                    freshness.mark_error(error.to_string());
                }
            }
        }
    })
}

/// Every minute, deletes lapsed revocations from the store and from memory. A revocation lapses
/// at the expiry it was given plus a margin longer than any clock leeway; give it the `exp` of
/// the last token it covers, and cleaning up never lets a token back in.
pub fn spawn_revocation_cleaner(
    store: Store,
    revocations: Arc<RevocationSet>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let now = unix_now();
            revocations.purge(now);
            let lapsed_before = now
                .saturating_sub(crate::revocation::EXPIRY_MARGIN_SECONDS)
                .saturating_sub(1);
            match store.purge_expired_revocations(lapsed_before).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "lapsed revocations deleted"),
                Err(error) => {
                    tracing::warn!(%error, "deleting lapsed revocations failed; retrying in a minute")
                }
            }
        }
    })
}
