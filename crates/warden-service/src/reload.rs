//! Loading the policy pack and its entities, and reloading them: on SIGHUP and when the files
//! change (polled), the new pack is compiled and validated, then swapped in atomically. A
//! broken pack never replaces a good one: the last good snapshot keeps serving, and the failure
//! shows in the log, in `warden_policy_reloads_total{result="error"}` and in `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use warden_config::PolicySettings;
use warden_core::Pack;
use warden_core::pack::PackSources;

use crate::snapshot::{PolicyHolder, SnapshotError};

/// How often the pack directory is checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The files a snapshot is made of, for change detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFiles {
    pack: PackSources,
    entities: Option<String>,
}

/// Why a pack (or its entity file) cannot be loaded; the last good one keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A file cannot be read.
    #[error(transparent)]
    Read(#[from] warden_packdir::PackDirError),
    /// The pack does not compile; every problem, with `file:line:column`.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The pack and the entity data do not compose.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Reads the pack and the entity file.
pub fn read_sources(settings: &PolicySettings) -> Result<SourceFiles, ReloadError> {
    let pack = warden_packdir::read_pack(&settings.dir)?;
    let entities = match &settings.entities_file {
        Some(path) => Some(warden_packdir::read_text(path)?),
        None => None,
    };
    Ok(SourceFiles { pack, entities })
}

/// Compiles the pack of the files; the error lists every problem.
pub fn compile(files: &SourceFiles) -> Result<Arc<Pack>, ReloadError> {
    let compiled = Pack::compile(&files.pack)
        .map_err(|error| ReloadError::Invalid(error.errors().map(ToString::to_string).collect()))?;
    Ok(Arc::new(compiled.pack))
}

/// Compiles the files and installs them (composed with the store view), recording the outcome.
pub fn install(files: &SourceFiles, holder: &PolicyHolder) -> Result<(), ReloadError> {
    let pack = compile(files)?;
    holder.set_pack(Arc::clone(&pack), files.entities.clone())?;
    tracing::info!(revision = %pack.revision(), policies = pack.policies().len(), "policy pack loaded");
    metrics::gauge!("warden_policy_info", "revision" => pack.revision().to_string()).set(1.0);
    Ok(())
}

/// Loads once, recording the outcome. Returns whether a new snapshot was installed.
pub fn reload(settings: &PolicySettings, holder: &PolicyHolder) -> bool {
    let result = read_sources(settings).and_then(|files| install(&files, holder));
    record(result, holder)
}

fn record(result: Result<(), ReloadError>, holder: &PolicyHolder) -> bool {
    match result {
        Ok(()) => {
            metrics::counter!("warden_policy_reloads_total", "result" => "ok").increment(1);
            true
        }
        Err(error) => {
            tracing::error!(error = %error, "policy reload failed; the last good pack keeps serving");
            metrics::counter!("warden_policy_reloads_total", "result" => "error").increment(1);
            holder.record_error(error.to_string());
            false
        }
    }
}

/// Watches the files and listens for SIGHUP until the task is aborted.
pub fn spawn_watcher(
    settings: PolicySettings,
    holder: Arc<PolicyHolder>,
    watch_files: bool,
    installed: SourceFiles,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Compare against what was installed, not what is on disk when this task first runs:
        // a change made in between must not be missed.
        let mut last_seen = Some(installed);
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let signalled = {
                let hangup_received = async {
                    match hangup.as_mut() {
                        Some(signal) => signal.recv().await.is_some(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    received = hangup_received => received,
                    () = tokio::time::sleep(WATCH_INTERVAL) => false,
                }
            };
            #[cfg(not(unix))]
            let signalled = {
                tokio::time::sleep(WATCH_INTERVAL).await;
                false
            };
            if signalled {
                tracing::info!("SIGHUP: reloading the policy pack");
                last_seen = read_sources(&settings).ok();
                reload(&settings, &holder);
                continue;
            }
            if !watch_files {
                continue;
            }
            let current = read_sources(&settings);
            let changed = match (&current, &last_seen) {
                (Ok(now), Some(before)) => now != before,
                (Ok(_), None) => true,
                (Err(_), _) => true,
            };
            if changed {
                // A broken pack is reported once, not every second.
                let (result, files) = match current {
                    Ok(files) => {
                        let outcome = match compile(&files) {
                            Err(error)
                                if holder.last_error().as_deref()
                                    == Some(error.to_string().as_str()) =>
                            {
                                Err(error)
                            }
                            _ => install(&files, &holder),
                        };
                        (outcome, Some(files))
                    }
                    Err(error) => (Err(error), None),
                };
                let repeated = matches!((&result, holder.last_error()), (Err(now), Some(before)) if now.to_string() == before);
                if !repeated {
                    record(result, &holder);
                }
                last_seen = files;
            }
        }
    })
}
