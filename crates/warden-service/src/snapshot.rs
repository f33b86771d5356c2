//! What decisions are made against, and how fresh it is.
//!
//! SECURITY-SENSITIVE: a stale or wrongly composed snapshot would decide on the wrong facts.
//!
//! A [`Snapshot`] is the pack plus the entity data (an [`EntityGraph`]: the entity file, then
//! the store's entities and role grants on top, the store winning) at one store version. The
//! graph is shared by successive snapshots and changed in place, a record at a time, as the
//! store's change feed is applied (issue #20): nothing grows with the whole store per write or
//! per request. A new snapshot object (with a new, empty decision cache) is swapped in after
//! every change, so a cached decision never outlives the data it was made on.

use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant, SystemTime};

use warden_core::Pack;
use warden_core::cedar_policy::{EntityId, EntityUid};
use warden_core::tenant_policies::{TenantPolicies, TenantPolicy};
use warden_store::{RoleAssignment, StoreChanges, TenantPolicyRecord};

use crate::entity_graph::{EntityGraph, GraphError, PackRoots};

/// A pack and its entities, swapped together.
#[derive(Debug)]
pub struct Snapshot {
    /// The compiled pack.
    pub pack: Arc<Pack>,
    /// What the pack adds to every entity slice.
    pub roots: Arc<PackRoots>,
    /// The entity data (shared with the snapshots before and after this one).
    pub graph: Arc<RwLock<EntityGraph>>,
    /// The tenants' own policies from the store (shared like the graph).
    pub policies: Arc<RwLock<TenantPolicies>>,
    /// A short hash of the entity file and the store version, so a reload of data alone is
    /// visible in `/readyz`.
    pub entities_revision: String,
    /// The store version the snapshot reflects, when there is a store.
    pub store_version: Option<i64>,
    /// The next time-bound grant expiry (Unix seconds), when grants must be dropped.
    pub next_expiry: Option<i64>,
    /// When it was built.
    pub loaded_at: SystemTime,
    /// Decisions already made against exactly this snapshot (see [`crate::decision_cache`]).
    pub decisions: crate::decision_cache::DecisionCache,
}

impl Snapshot {
    /// Whether the entity data (the file's and the store's) knows `entity_type::id`.
    pub fn knows(&self, entity_type: &str, id: &str) -> bool {
        let Some(type_name) = self.pack.type_name(entity_type) else {
            return false;
        };
        let uid = EntityUid::from_type_name_and_id(type_name, EntityId::new(id));
        self.graph
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&uid)
    }

    /// A snapshot of given entity data, without a store (policy suites decide against their
    /// own data).
    pub fn of(pack: Arc<Pack>, graph: EntityGraph) -> Snapshot {
        Snapshot {
            roots: Arc::new(PackRoots::of(&pack)),
            pack,
            graph: Arc::new(RwLock::new(graph)),
            policies: Arc::default(),
            entities_revision: String::new(),
            store_version: None,
            next_expiry: None,
            loaded_at: SystemTime::now(),
            decisions: crate::decision_cache::DecisionCache::default(),
        }
    }

    /// The same snapshot with these tenant policies in force (a suite run with a store's).
    pub fn with_tenant_policies(mut self, policies: Arc<RwLock<TenantPolicies>>) -> Snapshot {
        self.policies = policies;
        self
    }

    /// The entity data, for reading.
    pub fn entities(&self) -> RwLockReadGuard<'_, EntityGraph> {
        self.graph.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tenants' policies, for reading.
    pub fn tenant_policies(&self) -> RwLockReadGuard<'_, TenantPolicies> {
        self.policies.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The stored tenant policies, read again against a pack; the first that does not fit is an
/// error (a policy left out could be a forbid, so nothing is decided without it).
pub fn tenant_policies_of(
    pack: &Pack,
    records: &[TenantPolicyRecord],
) -> Result<TenantPolicies, SnapshotError> {
    let mut policies = TenantPolicies::default();
    for record in records {
        let policy = TenantPolicy::reload(pack, &record.tenant, &record.name, &record.text)
            .map_err(|error| policy_error(&record.tenant, &record.name, &error))?;
        policies.put(pack, policy);
    }
    Ok(policies)
}

fn policy_error(tenant: &str, name: &str, error: &dyn std::fmt::Display) -> SnapshotError {
    SnapshotError::TenantPolicy(format!(
        "tenant `{tenant}` policy `{name}`: {}",
        error.to_string().replace('\n', " ")
    ))
}

#[derive(Debug, Default)]
struct Inputs {
    pack: Option<Arc<Pack>>,
    roots: Arc<PackRoots>,
    entities_text: Option<String>,
    graph: Option<Arc<RwLock<EntityGraph>>>,
    policies: Arc<RwLock<TenantPolicies>>,
    /// The store version and read time the graph holds, when it holds the store's data.
    store_at: Option<(i64, i64)>,
    /// `[storage] tenants`.
    served: Option<Arc<std::collections::BTreeSet<String>>>,
}

/// Why a snapshot cannot be made (the one in force keeps serving).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// No pack has loaded yet.
    #[error("no policy pack is loaded")]
    NoPack,
    /// The entity data (the file's and the store's together) does not parse or fit the schema.
    #[error("entities: {0}")]
    Entities(String),
    /// A grant names a principal the data does not have, of a type a grant cannot make.
    #[error(
        "{0} is not in the entity data, and its type needs attributes a role grant cannot give it: import the entity first"
    )]
    GrantWithoutEntity(String),
    /// A stored tenant policy does not fit the pack in force.
    #[error("{0}")]
    TenantPolicy(String),
    /// A principal status names a type that is not an entity type name.
    #[error("principal status: `{principal_type}` is not an entity type name (tenant `{tenant}`)")]
    StatusType {
        /// The type as stored.
        principal_type: String,
        /// The tenant of the status.
        tenant: String,
    },
}

impl From<GraphError> for SnapshotError {
    fn from(error: GraphError) -> Self {
        match error {
            GraphError::TypeName {
                entity_type,
                tenant,
            } => SnapshotError::StatusType {
                principal_type: entity_type,
                tenant,
            },
            other => SnapshotError::Entities(other.to_string()),
        }
    }
}

/// What [`PolicyHolder::install_store`] or [`PolicyHolder::apply_changes`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// It is in force now.
    Installed,
    /// A newer state was already in force; this one was dropped.
    Older,
}

/// What a full read of the store is parsed against: the pack and entity file in force when
/// it started.
#[derive(Debug, Clone)]
pub struct DataInputs {
    /// The pack.
    pub pack: Arc<Pack>,
    /// The entity file's text.
    pub entities_text: Option<String>,
    /// The tenants served (`[storage] tenants`; all when `None`).
    pub served: Option<Arc<std::collections::BTreeSet<String>>>,
}

/// A full read of the store, parsed into a graph.
#[derive(Debug)]
pub struct LoadedStore {
    /// What it was parsed against.
    pub inputs: DataInputs,
    /// The graph (file and store).
    pub graph: EntityGraph,
    /// The tenants' policies, as stored.
    pub policies: Vec<TenantPolicyRecord>,
    /// The store version read.
    pub version: i64,
    /// When grants were judged.
    pub read_at: i64,
}

/// The current snapshot, what it is built from, and the outcome of the last reload.
#[derive(Debug, Default)]
pub struct PolicyHolder {
    current: RwLock<Option<Arc<Snapshot>>>,
    inputs: Mutex<Inputs>,
    last_error: RwLock<Option<String>>,
    /// Held while the store is read and applied, so reads are applied one at a time, in order.
    pub refresh_lock: tokio::sync::Mutex<()>,
}

fn now() -> i64 {
    crate::clock::unix_now()
}

impl PolicyHolder {
    /// The snapshot requests decide against; `None` until the first successful load.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A new pack and entity file: the entity data kept when the schema, manifest and file are
    /// the same (a policy-only reload), re-read against the new ones otherwise.
    pub fn set_pack(
        &self,
        pack: Arc<Pack>,
        entities_text: Option<String>,
    ) -> Result<(), SnapshotError> {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        let graph = match (&inputs.pack, &inputs.graph) {
            (Some(old), Some(graph))
                if old.data_fingerprint() == pack.data_fingerprint()
                    && inputs.entities_text == entities_text =>
            {
                Arc::clone(graph)
            }
            (_, Some(graph)) => {
                let rebuilt = graph
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .reparsed(&pack, entities_text.as_deref(), now())?;
                Arc::new(RwLock::new(rebuilt))
            }
            (_, None) => {
                let mut graph = EntityGraph::of_file(&pack, entities_text.as_deref())?;
                graph.serve_only(inputs.served.clone());
                Arc::new(RwLock::new(graph))
            }
        };
        let keeps_index = inputs
            .pack
            .as_ref()
            .is_some_and(|old| old.data_fingerprint() == pack.data_fingerprint());
        if !keeps_index {
            // The index depends on the schema's actions: file the policies again for the new
            // pack, refusing the pack when one no longer fits (the old pack keeps serving).
            let (refiled, dropped) = inputs
                .policies
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .refiled(&pack);
            if let Some((policy, error)) = dropped.first() {
                return Err(policy_error(policy.tenant(), policy.name(), error));
            }
            inputs.policies = Arc::new(RwLock::new(refiled));
        }
        inputs.roots = Arc::new(PackRoots::of(&pack));
        inputs.pack = Some(pack);
        inputs.entities_text = entities_text;
        inputs.graph = Some(graph);
        self.install(&inputs);
        // Only a pack that loaded clears a reload error: a store write installs a snapshot
        // too, and must not hide that the files on disk are broken and not in force.
        *self
            .last_error
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }

    /// What a full read of the store must be parsed against.
    pub fn data_inputs(&self) -> Result<DataInputs, SnapshotError> {
        let inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(DataInputs {
            pack: inputs.pack.clone().ok_or(SnapshotError::NoPack)?,
            entities_text: inputs.entities_text.clone(),
            served: inputs.served.clone(),
        })
    }

    /// Serves only these tenants (`[storage] tenants`), before the store is first read.
    pub fn serve_only(&self, tenants: Option<Arc<std::collections::BTreeSet<String>>>) {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(graph) = &inputs.graph {
            graph
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .serve_only(tenants.clone());
        }
        inputs.served = tenants;
    }

    /// The store version (and read time) the data in force holds; `None` before the first
    /// full read, or after [`PolicyHolder::forget_store_view`].
    pub fn store_position(&self) -> Option<(i64, i64)> {
        self.inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .store_at
    }

    /// Installs a full read of the store, unless the state in force is newer (a later store
    /// version, or the same version judged at a later time). Reads finish in any order: without
    /// this rule a slow, older read installed last would undo a write already answered. A read
    /// parsed against a pack that was replaced meanwhile is parsed again against the new one.
    pub fn install_store(&self, loaded: LoadedStore) -> Result<Freshness, SnapshotError> {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(installed) = inputs.store_at
            && installed > (loaded.version, loaded.read_at)
        {
            return Ok(Freshness::Older);
        }
        let Some(pack) = inputs.pack.clone() else {
            return Err(SnapshotError::NoPack);
        };
        let graph = if loaded.inputs.pack.data_fingerprint() == pack.data_fingerprint()
            && loaded.inputs.entities_text == inputs.entities_text
        {
            loaded.graph
        } else {
            loaded
                .graph
                .reparsed(&pack, inputs.entities_text.as_deref(), now())?
        };
        let policies = tenant_policies_of(&pack, &loaded.policies)?;
        inputs.graph = Some(Arc::new(RwLock::new(graph)));
        inputs.policies = Arc::new(RwLock::new(policies));
        inputs.store_at = Some((loaded.version, loaded.read_at));
        self.install(&inputs);
        Ok(Freshness::Installed)
    }

    /// Applies the keys the store's change feed found changed since the version in force.
    /// Dropped when the state in force is already as new. On a failure part of the changes
    /// may be applied: the position is forgotten, so the next read is a full one.
    pub fn apply_changes(&self, changes: &StoreChanges) -> Result<Freshness, SnapshotError> {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(installed) = inputs.store_at else {
            return Ok(Freshness::Older);
        };
        if installed >= (changes.version, changes.read_at) || changes.since > installed.0 {
            return Ok(Freshness::Older);
        }
        let (Some(pack), Some(graph)) = (inputs.pack.clone(), inputs.graph.clone()) else {
            return Err(SnapshotError::NoPack);
        };
        let applied = graph
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(&pack, changes, changes.read_at.max(now()))
            .map_err(SnapshotError::from)
            .and_then(|()| apply_policy_changes(&pack, &inputs.policies, changes));
        match applied {
            Ok(()) => {
                inputs.store_at = Some((changes.version, changes.read_at));
                self.install(&inputs);
                Ok(Freshness::Installed)
            }
            Err(error) => {
                inputs.store_at = None;
                Err(error)
            }
        }
    }

    /// Drops the role grants that lapsed by `now` and, when any did, swaps in a snapshot with
    /// an empty decision cache.
    pub fn expire_grants(&self, now: i64) -> Result<(), SnapshotError> {
        let inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        let (Some(pack), Some(graph)) = (inputs.pack.clone(), inputs.graph.clone()) else {
            return Ok(());
        };
        let expired = graph
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .expire(&pack, now)?;
        if expired {
            self.install(&inputs);
        }
        Ok(())
    }

    /// Forgets which store version is in force, so the next read is a full one installed
    /// whatever its version: for a store whose change counter went back (a restored or
    /// replaced database), where "newer" can no longer be told by the version. The snapshot
    /// in force keeps serving.
    pub fn forget_store_view(&self) {
        self.inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .store_at = None;
    }

    /// Checks that a role grant can be applied: the principal is in the data, or its type
    /// needs nothing a grant cannot give; and the entity with the role fits the schema.
    pub fn validate_grant(&self, grant: &RoleAssignment) -> Result<(), SnapshotError> {
        let (pack, graph) = {
            let inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
            match (inputs.pack.clone(), inputs.graph.clone()) {
                (Some(pack), Some(graph)) => (pack, graph),
                _ => return Err(SnapshotError::NoPack),
            }
        };
        let type_name =
            pack.type_name(&grant.principal_type)
                .ok_or_else(|| SnapshotError::StatusType {
                    principal_type: grant.principal_type.clone(),
                    tenant: grant.tenant.clone(),
                })?;
        let uid = EntityUid::from_type_name_and_id(type_name, EntityId::new(&grant.principal_id));
        let graph = graph.read().unwrap_or_else(PoisonError::into_inner);
        let mut probe = EntityGraph::default();
        if let Some(entity) = graph.get(&uid) {
            let json = entity
                .to_json_value()
                .map_err(|error| SnapshotError::Entities(error.to_string()))?;
            probe = EntityGraph::of_values(&pack, vec![json])?;
        }
        drop(graph);
        probe.set_grants(
            &pack,
            &grant.tenant,
            (&grant.principal_type, &grant.principal_id),
            std::slice::from_ref(grant),
            now().min(grant.granted_at),
        )?;
        if !probe.contains(&uid) {
            return Err(SnapshotError::GrantWithoutEntity(uid.to_string()));
        }
        Ok(())
    }

    /// Checks a tenant policy against the pack in force, without storing it.
    pub fn check_tenant_policy(
        &self,
        tenant: &str,
        name: &str,
        text: &str,
    ) -> Result<(), warden_core::tenant_policies::TenantPolicyError> {
        let pack = self
            .inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pack
            .clone();
        let Some(pack) = pack else {
            return Err(
                warden_core::tenant_policies::TenantPolicyError::Unsupported(
                    "no policy pack is loaded".to_owned(),
                ),
            );
        };
        TenantPolicy::check(&pack, tenant, name, text).map(drop)
    }

    /// Swaps in a snapshot of the inputs (a new object: a new, empty decision cache).
    fn install(&self, inputs: &Inputs) {
        let (Some(pack), Some(graph)) = (&inputs.pack, &inputs.graph) else {
            return;
        };
        let next_expiry = {
            let graph = graph.read().unwrap_or_else(PoisonError::into_inner);
            // Built here, off the request path (once per graph).
            graph.prepare_file_store(&inputs.roots);
            graph.next_expiry()
        };
        let store_version = inputs.store_at.map(|(version, _)| version);
        let digest = sha2::Digest::finalize(sha2::Digest::chain_update(
            sha2::Digest::chain_update(
                sha2::Sha256::default(),
                inputs
                    .entities_text
                    .as_deref()
                    .unwrap_or_default()
                    .as_bytes(),
            ),
            store_version.unwrap_or(-1).to_be_bytes(),
        ));
        let snapshot = Snapshot {
            pack: Arc::clone(pack),
            roots: Arc::clone(&inputs.roots),
            graph: Arc::clone(graph),
            policies: Arc::clone(&inputs.policies),
            entities_revision: hex::encode(digest.get(..8).unwrap_or_default()),
            store_version,
            next_expiry,
            loaded_at: SystemTime::now(),
            decisions: crate::decision_cache::DecisionCache::default(),
        };
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(snapshot));
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
    /// Largest body of a bulk admin call (entity import and delete).
    pub max_import_bytes: usize,
    /// How long one page of a search may spend deciding candidates (half the request
    /// timeout): past it, the page ends early with a token to go on from.
    pub search_budget: Duration,
}

/// When the store was last read successfully; past the bound, decisions fail closed.
#[derive(Debug)]
pub struct StoreFreshness {
    last_ok: Mutex<Instant>,
    last_error: Mutex<Option<String>>,
    /// Set when store data was only partly applied: the data in force is a state the store
    /// never held, so nothing is decided on it until a read succeeds (whatever its age).
    broken: Mutex<Option<String>>,
    max_staleness: Duration,
}

impl StoreFreshness {
    /// Fresh now.
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            last_ok: Mutex::new(Instant::now()),
            last_error: Mutex::new(None),
            broken: Mutex::new(None),
            max_staleness,
        }
    }

    /// Store data was only partly applied: deny until the next successful read.
    pub fn mark_broken(&self, error: String) {
        *self.broken.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
        self.mark_error(error);
    }

    /// A successful read.
    pub fn mark_ok(&self) {
        *self.broken.lock().unwrap_or_else(PoisonError::into_inner) = None;
        *self.last_ok.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// A failed read.
    pub fn mark_error(&self, error: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// Why decisions must not be trusted now, if they must not.
    pub fn stale_reason(&self) -> Option<String> {
        if let Some(why) = self
            .broken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Some(format!(
                "the store's changes were only partly applied ({why}); reading everything again"
            ));
        }
        let age = self
            .last_ok
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed();
        (age > self.max_staleness).then(|| {
            let error = self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            format!(
                "the store has not been read for {}s (bound {}s){}",
                age.as_secs(),
                self.max_staleness.as_secs(),
                error.map(|e| format!(": {e}")).unwrap_or_default()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;
    use warden_core::PackSources;
    use warden_store::{PrincipalStatus, StatusRecord};

    fn holder() -> PolicyHolder {
        let sources = PackSources::from_policy_text(
            "p.cedar",
            "permit (principal, action, resource) when { principal in Role::\"admin\" };",
        );
        let pack = Pack::compile(&sources).unwrap().pack;
        let holder = PolicyHolder::default();
        holder.set_pack(Arc::new(pack), None).unwrap();
        holder
    }

    fn view(holder: &PolicyHolder, version: i64, read_at: i64, disabled: &[&str]) -> LoadedStore {
        let inputs = holder.data_inputs().unwrap();
        let mut graph = EntityGraph::of_file(&inputs.pack, None).unwrap();
        for id in disabled {
            graph
                .set_status(
                    &inputs.pack,
                    &StatusRecord {
                        tenant: "acme".into(),
                        principal_type: "User".into(),
                        principal_id: (*id).into(),
                        status: PrincipalStatus::Disabled,
                    },
                )
                .unwrap();
        }
        LoadedStore {
            policies: Vec::new(),
            inputs,
            graph,
            version,
            read_at,
        }
    }

    fn installed(holder: &PolicyHolder) -> (Option<i64>, usize) {
        let snapshot = holder.current().unwrap();
        let disabled = ["a", "b"]
            .iter()
            .filter(|id| {
                let uid = EntityUid::from_type_name_and_id(
                    snapshot.pack.type_name("User").unwrap(),
                    EntityId::new(**id),
                );
                snapshot.entities().status(&uid).is_some()
            })
            .count();
        (snapshot.store_version, disabled)
    }

    /// Issue #18: reads of the store finish in any order; the one that finishes last must not
    /// replace a newer view (which would undo a write already answered).
    #[test]
    fn an_older_store_view_never_replaces_a_newer_one() {
        let holder = holder();
        assert_eq!(
            holder
                .install_store(view(&holder, 7, 100, &["a", "b"]))
                .unwrap(),
            Freshness::Installed
        );
        assert_eq!(
            holder.install_store(view(&holder, 6, 101, &["a"])).unwrap(),
            Freshness::Older
        );
        assert_eq!(installed(&holder), (Some(7), 2));
        // The same version judged later (a grant expired meanwhile) is newer.
        assert_eq!(
            holder
                .install_store(view(&holder, 7, 130, &["a", "b"]))
                .unwrap(),
            Freshness::Installed
        );
        assert_eq!(
            holder.install_store(view(&holder, 7, 120, &["a"])).unwrap(),
            Freshness::Older
        );
        assert_eq!(
            holder.install_store(view(&holder, 8, 90, &[])).unwrap(),
            Freshness::Installed
        );
        assert_eq!(installed(&holder), (Some(8), 0));
    }

    /// A status is keyed by the uid built from its type and id as they are: an id with control
    /// characters keeps its status.
    #[test]
    fn a_status_is_keyed_by_the_typed_uid() {
        let holder = holder();
        holder
            .install_store(view(
                &holder,
                1,
                1,
                &["acme/ctl\u{8}back", "acme/ctl\u{c}feed"],
            ))
            .unwrap();
        let snapshot = holder.current().unwrap();
        for id in ["acme/ctl\u{8}back", "acme/ctl\u{c}feed"] {
            let uid = EntityUid::from_type_name_and_id(
                snapshot.pack.type_name("User").unwrap(),
                EntityId::new(id),
            );
            assert_eq!(
                snapshot.entities().status(&uid),
                Some(PrincipalStatus::Disabled)
            );
        }
    }
}

#[cfg(test)]
mod freshness_tests {
    use super::*;

    /// Partly applied store data is never decided on, however recent the last read.
    #[test]
    fn broken_data_is_stale_at_once_until_a_read_succeeds() {
        let freshness = StoreFreshness::new(Duration::from_secs(3600));
        assert_eq!(freshness.stale_reason(), None);
        freshness.mark_broken("a row does not fit".to_owned());
        assert!(
            freshness
                .stale_reason()
                .is_some_and(|why| why.contains("only partly applied"))
        );
        freshness.mark_ok();
        assert_eq!(freshness.stale_reason(), None);
    }
}

/// Applies the tenant policies the change feed found changed, a policy at a time.
fn apply_policy_changes(
    pack: &Pack,
    policies: &RwLock<TenantPolicies>,
    changes: &StoreChanges,
) -> Result<(), SnapshotError> {
    if changes.policies.is_empty() {
        return Ok(());
    }
    let mut policies = policies.write().unwrap_or_else(PoisonError::into_inner);
    for ((tenant, name), record) in &changes.policies {
        match record {
            Some(record) => {
                let policy = TenantPolicy::reload(pack, tenant, name, &record.text)
                    .map_err(|error| policy_error(tenant, name, &error))?;
                policies.put(pack, policy);
            }
            None => {
                policies.remove(pack, tenant, name);
            }
        }
    }
    Ok(())
}
