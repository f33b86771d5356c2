//! Keeping the in-memory snapshot in step with the store.
//!
//! The decision path reads memory only. A background task reads the store's change counter
//! every `storage.poll_interval_ms` (and at once when PostgreSQL notifies that another replica
//! wrote); when it moved, it reads the change feed: the current rows of exactly the keys
//! written since the version in force, applied record by record (issue #20). Only at start, after
//! the feed was pruned past this replica, or after a failed apply, is the whole store read
//! (in pages, parsed as it streams). When a time-bound grant lapses, the grant is dropped in
//! memory. A write on one replica is in force on every other within one poll interval. A
//! replica that cannot read the store for `storage.max_staleness_seconds` stops trusting its
//! snapshot: every decision is a deny with reason `store_unavailable` and `/readyz` says why.

use std::sync::Arc;
use std::time::Duration;

use warden_store::{ChangeRead, Store, StoreError};

use crate::clock::unix_now;
use crate::entity_graph::{EntityGraph, GraphError};
use crate::issuer::TokenIssuer;
use crate::revocation::RevocationSet;
use crate::snapshot::{LoadedStore, PolicyHolder, StoreFreshness};

/// The most change rows one incremental read carries (a replica far behind catches up in
/// steps of this size).
pub const MAX_CHANGES_PER_READ: i64 = 50_000;

/// The most windows one refresh applies (the poll goes on from where it stopped).
const MAX_WINDOWS: usize = 1000;

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

/// Reads the whole store into a new graph (the entity file's, then the store's on top), parsing
/// each entity as its page arrives.
pub async fn read_everything(
    store: &Store,
    holder: &PolicyHolder,
) -> Result<LoadedStore, SyncError> {
    let inputs = holder.data_inputs()?;
    let now = unix_now();
    let pack = Arc::clone(&inputs.pack);
    let mut graph = EntityGraph::of_file(&pack, inputs.entities_text.as_deref())?;
    graph.serve_only(inputs.served.clone());
    let state = store
        .read_state_with(now, |record| {
            graph
                .put_stored(&pack, &record, now)
                .map_err(SyncError::from)
        })
        .await?;
    graph.set_all_grants(&pack, &state.assignments, now)?;
    for status in &state.statuses {
        graph.set_status(&pack, status)?;
    }
    Ok(LoadedStore {
        inputs,
        graph,
        policies: state.policies,
        version: state.version,
        read_at: state.read_at,
    })
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
    /// A stored row does not fit the pack.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Changes were only partly applied (the data in force must not be decided on).
    #[error("applying the store's changes failed part-way: {0}")]
    Applied(crate::snapshot::SnapshotError),
}

/// Brings the data in force up to the store: the change feed since the version in force, or
/// everything when there is no such version (start, a pruned feed, a failed apply); used at
/// start, by the poller, and right after an admin write. One at a time (`refresh_lock`), so
/// reads apply in order. Revocations: only what is new since the last store version seen.
pub async fn refresh(
    store: &Store,
    holder: &PolicyHolder,
    freshness: &StoreFreshness,
    revocations: &RevocationSet,
    issuer: Option<&IssuerSync>,
) -> Result<(), SyncError> {
    let _one_at_a_time = holder.refresh_lock.lock().await;
    let result = refresh_locked(store, holder, revocations, issuer).await;
    match &result {
        // Fresh only once the store's state is what decides: data that cannot be applied
        // leaves the replica to fail closed when the staleness bound passes. Data older than
        // what is in force changes nothing, and the store was read.
        Ok(()) => freshness.mark_ok(),
        Err(error @ SyncError::Applied(_)) => freshness.mark_broken(error.to_string()),
        Err(error) => freshness.mark_error(error.to_string()),
    }
    result
}

async fn refresh_locked(
    store: &Store,
    holder: &PolicyHolder,
    revocations: &RevocationSet,
    issuer: Option<&IssuerSync>,
) -> Result<(), SyncError> {
    if let Some(sync) = issuer {
        sync.issuer.sync(store, &sync.verifier, unix_now()).await?;
    }
    // The data reads the change counter first; revocations are read after it, so every
    // revocation at or below the version installed is in memory before it is installed (a
    // later one is read again on the next change).
    let first = match holder.store_position() {
        Some((version, _)) => {
            match store
                .read_changes(version, unix_now(), MAX_CHANGES_PER_READ)
                .await?
            {
                ChangeRead::Changes(changes) => Some(changes),
                ChangeRead::TooFar => None,
            }
        }
        None => None,
    };
    let loaded = match first {
        Some(_) => None,
        None => Some(read_everything(store, holder).await?),
    };
    let new = store
        .revocations_since(
            revocations.seen_version(),
            unix_now()
                .saturating_sub(crate::revocation::EXPIRY_MARGIN_SECONDS)
                .saturating_sub(1),
        )
        .await?;
    revocations.apply(&new);
    let Some(mut changes) = first else {
        if let Some(loaded) = loaded {
            holder.install_store(loaded)?;
        }
        return Ok(());
    };
    // A replica far behind catches up window by window, up to the version the first read saw
    // (every revocation up to it is in memory).
    let target = changes.latest;
    for _ in 0..MAX_WINDOWS {
        holder.apply_changes(&changes).map_err(SyncError::Applied)?;
        if changes.version >= target {
            break;
        }
        changes = match store
            .read_changes(changes.version, unix_now(), MAX_CHANGES_PER_READ)
            .await?
        {
            ChangeRead::Changes(next) => next,
            ChangeRead::TooFar => {
                holder.install_store(read_everything(store, holder).await?)?;
                break;
            }
        };
    }
    Ok(())
}

/// Polls the change counter until aborted; `wake` cuts a wait short (a PostgreSQL
/// notification that another replica wrote).
pub fn spawn_poller(
    store: Store,
    holder: Arc<PolicyHolder>,
    freshness: Arc<StoreFreshness>,
    revocations: Arc<RevocationSet>,
    issuer: Option<IssuerSync>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    let wake = Arc::new(tokio::sync::Notify::new());
    if let Store::Postgres(_) = &store {
        spawn_listener(store.clone(), Arc::clone(&wake));
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = wake.notified() => {}
            }
            let now = unix_now();
            if holder
                .current()
                .and_then(|snapshot| snapshot.next_expiry)
                .is_some_and(|at| at <= now)
                && let Err(error) = holder.expire_grants(now)
            {
                tracing::error!(%error, "dropping lapsed role grants failed; reading everything again");
                holder.forget_store_view();
                freshness.mark_broken(error.to_string());
            }
            let seen = holder.store_position().map(|(version, _)| version);
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
                    let seen = holder.store_position().map(|(version, _)| version);
                    if seen == Some(version) {
                        freshness.mark_ok();
                    } else if let Err(error) =
                        refresh(&store, &holder, &freshness, &revocations, issuer.as_ref()).await
                    {
                        tracing::error!(error = %error, "reading the store's changes failed; the data in force keeps serving within the staleness bound");
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

/// Listens for other replicas' writes on PostgreSQL and wakes the poller; reconnects after a
/// failure (the poll keeps running meanwhile: the notification only makes it sooner).
fn spawn_listener(store: Store, wake: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        loop {
            match store.listen_for_changes().await {
                Ok(mut listener) => loop {
                    match listener.recv().await {
                        Ok(_) => wake.notify_one(),
                        Err(error) => {
                            tracing::debug!(%error, "the change notification connection dropped; reconnecting");
                            break;
                        }
                    }
                },
                Err(error) => {
                    tracing::debug!(%error, "listening for change notifications failed; polling only");
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Every 10 seconds writes the usage evidence noted on allows (against the pack in force).
pub fn spawn_usage_flush(
    store: Store,
    usage: Arc<crate::entitlement_usage::EntitlementUsage>,
    holder: Arc<PolicyHolder>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let Some(snapshot) = holder.current() else {
                continue;
            };
            if let Err(error) = usage.flush(&store, &snapshot).await {
                tracing::warn!(%error, "recording entitlement usage failed; it is written on the next flush");
            }
        }
    })
}

/// Every 15 seconds, one review sweep ([`crate::reviews::sweep`]): interrupted revokes
/// completed, overdue campaigns' undecided items revoked.
pub fn spawn_review_sweep(
    store: Store,
    issuer: Option<Arc<TokenIssuer>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(15)).await;
            if let Err(error) = crate::reviews::sweep(issuer.as_deref(), &store, unix_now()).await {
                tracing::warn!(%error, "the review sweep failed; retrying");
            }
        }
    })
}

/// Every minute, one [`clean_up`] pass at the current time.
pub fn spawn_revocation_cleaner(
    store: Store,
    revocations: Arc<RevocationSet>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            clean_up(&store, &revocations, unix_now()).await;
        }
    })
}

/// What one [`clean_up`] pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanedUp {
    /// Revocations dropped from memory.
    pub in_memory: usize,
    /// Revocation rows deleted from the store.
    pub in_store: u64,
}

/// Deletes revocations that lapsed by `now` from memory, and from the store those that lapsed
/// before `now` minus a margin longer than any clock leeway (give a revocation the `exp` of
/// the last token it covers, and cleaning up never lets a token back in); prunes change-feed
/// rows older than an hour (a replica away longer reads everything). Failures are logged and
/// retried on the next pass. `now` is a parameter so tests run the real pass at any time.
pub async fn clean_up(store: &Store, revocations: &RevocationSet, now: i64) -> CleanedUp {
    let mut cleaned = CleanedUp {
        in_memory: revocations.purge(now),
        in_store: 0,
    };
    let lapsed_before = now
        .saturating_sub(crate::revocation::EXPIRY_MARGIN_SECONDS)
        .saturating_sub(1);
    if let Err(error) = store.prune_changes(now.saturating_sub(3600)).await {
        tracing::warn!(%error, "pruning the change feed failed; retrying in a minute");
    }
    match store.purge_expired_revocations(lapsed_before).await {
        Ok(0) => {}
        Ok(deleted) => {
            cleaned.in_store = deleted;
            tracing::info!(deleted, "lapsed revocations deleted");
        }
        Err(error) => {
            tracing::warn!(%error, "deleting lapsed revocations failed; retrying in a minute");
        }
    }
    cleaned
}
