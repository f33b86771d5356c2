//! Building a [`Service`] from the checked configuration: load the pack and the entity file,
//! open the store and read it, set up Warden's issuer and the verifier, open the decision log,
//! and start what keeps them current (store poller, revocation cleaner, issuer tasks, key
//! refreshers, the pack watcher).
//!
//! Three ways: [`start`] for `warden serve` (everything, background tasks included);
//! [`open_offline`] for the command line with a configuration (`warden check --config`): the
//! same pack, entity file, store state, issuers and claim settings, read once, with no
//! background task and no decision log, so a command decides exactly as a server on the same
//! configuration; and [`local`] for a pack and an entity file alone.

use std::sync::Arc;
use std::time::Duration;

use warden_config::Config;
use warden_token::Verifier;

use crate::clock::unix_now;
use crate::decision_log;
use crate::issuer::{IssuerSyncError, TokenIssuer};
use crate::pipeline::Service;
use crate::reload;
use crate::revocation::RevocationSet;
use crate::snapshot::{PolicyHolder, StoreFreshness};
use crate::store_sync::{self, IssuerSync};

/// A service that could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `[policy]` is missing.
    #[error("the configuration has no [policy] section: nothing to decide with")]
    NoPolicy,
    /// The first policy load failed.
    #[error("the policy pack cannot be loaded: {0}")]
    Policy(#[from] reload::ReloadError),
    /// The first read of the store, or its composition with the pack, failed.
    #[error("the store's state cannot be loaded: {0}")]
    Sync(#[from] store_sync::SyncError),
    /// A pack given directly does not compose with its entity data.
    #[error("the policy pack cannot be loaded: {0}")]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// The store could not be opened.
    #[error("the store cannot be opened: {0}")]
    Store(#[from] warden_store::StoreError),
    /// Keys could not be set up.
    #[error(transparent)]
    Keys(#[from] warden_token::key_source::KeySourceError),
    /// The decision log could not be opened.
    #[error("the decision log cannot be opened: {0}")]
    Audit(#[from] decision_log::OpenError),
    /// Warden's signing keys could not be loaded (e.g. a wrong key-encryption key).
    #[error("Warden cannot issue tokens: {0}")]
    Issuer(#[from] IssuerSyncError),
    /// `[storage] tenants` names something that is not a tenant id.
    #[error("[storage] tenants: {0}")]
    Tenants(#[from] warden_store::IdError),
}

/// What keeps a started service current, and the decision log's writer to join at shutdown.
pub struct Background {
    /// Tasks to abort at shutdown.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The decision log's writer thread.
    pub audit_writer: Option<warden_audit::WriterHandle>,
}

/// The parts both ways share: the pack loaded, the issuer and the verifier made, the store
/// opened and read once.
struct Opened {
    service: Service,
    files: reload::SourceFiles,
    issuer_sync: Option<IssuerSync>,
}

async fn open(config: &Config) -> Result<Opened, StartError> {
    warden_token::install_crypto_provider();
    let policy_settings = config.policy.as_ref().ok_or(StartError::NoPolicy)?;
    let holder = Arc::new(PolicyHolder::default());
    let files = reload::read_sources(policy_settings)?;
    reload::install(&files, &holder)?;
    let revocations = Arc::new(RevocationSet::default());
    let verifier = Arc::new(Verifier::new(
        config.issuers.clone(),
        warden_token::verify::DEFAULT_CACHE_CAPACITY,
    )?);
    let token_issuer = config
        .tokens
        .clone()
        .map(|tokens| Arc::new(TokenIssuer::new(tokens, config.service_accounts.clone())));
    let issuer_sync = token_issuer.as_ref().map(|issuer| IssuerSync {
        issuer: Arc::clone(issuer),
        verifier: Arc::clone(&verifier),
    });
    let (store, store_freshness) = match &config.storage {
        Some(storage) => {
            if let Some(tenants) = &storage.tenants {
                let mut served = std::collections::BTreeSet::new();
                for tenant in tenants {
                    served.insert(warden_store::TenantId::parse(tenant)?.to_string());
                }
                holder.serve_only(Some(Arc::new(served)));
                tracing::info!(
                    tenants = tenants.len(),
                    "serving only the tenants of [storage] tenants"
                );
            }
            let store = warden_store::Store::connect(&storage.url).await?;
            let freshness = Arc::new(StoreFreshness::new(Duration::from_secs(
                storage.max_staleness_seconds,
            )));
            if let Some(sync) = &issuer_sync {
                // Alone first, so that a wrong key-encryption key is named as such.
                sync.issuer.sync(&store, &sync.verifier, unix_now()).await?;
            }
            store_sync::refresh(
                &store,
                &holder,
                &freshness,
                &revocations,
                issuer_sync.as_ref(),
            )
            .await?;
            tracing::info!(backend = store.backend(), "store opened");
            (Some(store), Some(freshness))
        }
        None => (None, None),
    };
    for failure in verifier.load_keys().await {
        tracing::warn!(error = %failure, "issuer keys not loaded yet; retrying in the background");
    }
    Ok(Opened {
        service: Service {
            policy: holder,
            verifier,
            store,
            store_freshness,
            claim_attributes: Arc::new(config.claim_attributes.clone()),
            revocations,
            decision_log: None,
            token_issuer,
            // Set by `start` only: the command line's decisions are not use.
            entitlement_usage: None,
        },
        files,
        issuer_sync,
    })
}

/// The service `warden serve` runs, with its background tasks started and the decision log
/// open.
pub async fn start(config: &Config) -> Result<(Service, Background), StartError> {
    let Opened {
        mut service,
        files,
        issuer_sync,
    } = open(config).await?;
    metrics::counter!("warden_policy_reloads_total", "result" => "ok").increment(1);
    let mut tasks = Vec::new();
    if let (Some(store), Some(storage), Some(freshness)) =
        (&service.store, &config.storage, &service.store_freshness)
    {
        if let Some(sync) = &issuer_sync {
            tasks.push(store_sync::spawn_issuer_tasks(
                store.clone(),
                sync.clone(),
                Arc::clone(&service.policy),
            ));
        }
        tasks.push(store_sync::spawn_revocation_cleaner(
            store.clone(),
            Arc::clone(&service.revocations),
        ));
        tasks.push(store_sync::spawn_review_sweep(
            store.clone(),
            service.token_issuer.clone(),
        ));
        let usage = Arc::new(crate::entitlement_usage::EntitlementUsage::default());
        tasks.push(store_sync::spawn_usage_flush(
            store.clone(),
            Arc::clone(&usage),
            Arc::clone(&service.policy),
        ));
        service.entitlement_usage = Some(usage);
        tasks.push(store_sync::spawn_poller(
            store.clone(),
            Arc::clone(&service.policy),
            Arc::clone(freshness),
            Arc::clone(&service.revocations),
            issuer_sync.clone(),
            Duration::from_millis(storage.poll_interval_ms.max(10)),
        ));
    }
    tasks.extend(service.verifier.spawn_refreshers());
    if let Some(policy_settings) = &config.policy {
        tasks.push(reload::spawn_watcher(
            policy_settings.clone(),
            Arc::clone(&service.policy),
            policy_settings.watch,
            files,
        ));
    }
    let audit_writer = match decision_log::open(
        &config.audit,
        config.storage.as_ref().map(|storage| storage.url.as_str()),
    )
    .await?
    {
        Some((log, writer)) => {
            service.decision_log = Some(log);
            Some(writer)
        }
        None => None,
    };
    Ok((
        service,
        Background {
            tasks,
            audit_writer,
        },
    ))
}

/// The service the command line decides with: the same configuration read once, no background
/// task, no decision log (a command's decisions are printed, not recorded).
pub async fn open_offline(config: &Config) -> Result<Service, StartError> {
    Ok(open(config).await?.service)
}

/// A service over a pack and an entity file alone (`warden check --policies`): no store, no
/// issuers, no decision log.
pub fn local(
    pack: Arc<warden_core::Pack>,
    entities_text: Option<String>,
) -> Result<Service, StartError> {
    let policy = Arc::new(PolicyHolder::default());
    policy.set_pack(pack, entities_text)?;
    Ok(Service {
        policy,
        verifier: Arc::new(Verifier::new(Vec::new(), 0)?),
        store: None,
        store_freshness: None,
        claim_attributes: Arc::new(Vec::new()),
        revocations: Arc::new(RevocationSet::default()),
        decision_log: None,
        token_issuer: None,
        entitlement_usage: None,
    })
}
