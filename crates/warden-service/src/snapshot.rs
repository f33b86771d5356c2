//! What decisions are made against, and how fresh it is.
//!
//! SECURITY-SENSITIVE: a stale or wrongly composed snapshot would decide on the wrong facts.
//!
//! A [`Snapshot`] is the pack plus every entity the decisions need (the entity file, then the
//! store's entities and role grants on top: the store wins), built off the request path and
//! swapped in atomically whenever the pack, the file or the store changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};
use warden_core::Pack;
use warden_core::cedar_policy::{Entities, EntityId, EntityUid};
use warden_store::{EntityRecord, PrincipalStatus, RoleAssignment};

/// A pack and its entities, swapped together.
#[derive(Debug)]
pub struct Snapshot {
    /// The compiled pack.
    pub pack: Arc<Pack>,
    /// Entities: the file's, then the store's (which win), with role grants as parents.
    pub entities: Entities,
    /// Principals the store marks disabled or deleted.
    pub statuses: HashMap<EntityUid, PrincipalStatus>,
    /// A short hash of the entity data, so a reload of data alone is visible in `/readyz`.
    pub entities_revision: String,
    /// The store version the snapshot reflects, when there is a store.
    pub store_version: Option<i64>,
    /// The next time-bound grant expiry (Unix seconds), when the snapshot must be rebuilt.
    pub next_expiry: Option<i64>,
    /// When it was built.
    pub loaded_at: SystemTime,
    /// Decisions already made against exactly this snapshot (see [`crate::decision_cache`]).
    pub decisions: crate::decision_cache::DecisionCache,
}

impl Snapshot {
    /// A snapshot of given entities and principal statuses, without a store (policy suites
    /// decide against their own data).
    pub fn of(
        pack: Arc<Pack>,
        entities: Entities,
        statuses: HashMap<EntityUid, PrincipalStatus>,
    ) -> Snapshot {
        Snapshot {
            pack,
            entities,
            statuses,
            entities_revision: String::new(),
            store_version: None,
            next_expiry: None,
            loaded_at: SystemTime::now(),
            decisions: crate::decision_cache::DecisionCache::default(),
        }
    }
}

/// What the store held at one version, read in one transaction.
pub type StoreView = warden_store::StoreState;

#[derive(Debug, Default)]
struct Inputs {
    pack: Option<Arc<Pack>>,
    entities_text: Option<String>,
    store: Option<Arc<StoreView>>,
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
    /// A principal status names a type that is not an entity type name.
    #[error("principal status: `{principal_type}` is not an entity type name (tenant `{tenant}`)")]
    StatusType {
        /// The type as stored.
        principal_type: String,
        /// The tenant of the status.
        tenant: String,
    },
}

/// What [`PolicyHolder::set_store_view`] did with a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// It is in force now.
    Installed,
    /// A newer view was already in force; this one was dropped.
    Older,
}

/// The current snapshot, what it is built from, and the outcome of the last reload.
#[derive(Debug, Default)]
pub struct PolicyHolder {
    current: RwLock<Option<Arc<Snapshot>>>,
    inputs: Mutex<Inputs>,
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

    /// A new pack and entity file: composed with the last store view and swapped in.
    pub fn set_pack(
        &self,
        pack: Arc<Pack>,
        entities_text: Option<String>,
    ) -> Result<(), SnapshotError> {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        let snapshot = compose(&pack, entities_text.as_deref(), inputs.store.as_deref())?;
        inputs.pack = Some(pack);
        inputs.entities_text = entities_text;
        self.install(snapshot);
        Ok(())
    }

    /// A new store view: composed with the current pack and swapped in, unless the view in
    /// force is newer (a later store version, or the same version judged at a later time).
    /// Reads finish in any order (a poll and the refresh after an admin write race): without
    /// this rule a slow, older read installed last would undo a write already answered.
    pub fn set_store_view(&self, view: StoreView) -> Result<Freshness, SnapshotError> {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(installed) = &inputs.store
            && (installed.version, installed.read_at) > (view.version, view.read_at)
        {
            return Ok(Freshness::Older);
        }
        if let Some(pack) = &inputs.pack {
            let snapshot = compose(pack, inputs.entities_text.as_deref(), Some(&view))?;
            self.install(snapshot);
        }
        inputs.store = Some(Arc::new(view));
        Ok(Freshness::Installed)
    }

    /// Forgets which store view is in force, so the next one installs whatever its version:
    /// for a store whose change counter went back (a restored or replaced database), where
    /// "newer" can no longer be told by the version. The snapshot in force keeps serving.
    pub fn forget_store_view(&self) {
        self.inputs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .store = None;
    }

    /// Checks that extra store entities would fit the schema with everything else, without
    /// changing anything (admin writes are validated before they are made).
    pub fn validate_with(&self, extra: &[EntityRecord]) -> Result<(), SnapshotError> {
        let inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(pack) = &inputs.pack else {
            return Err(SnapshotError::NoPack);
        };
        let mut view = inputs.store.as_deref().cloned().unwrap_or_default();
        view.entities
            .retain(|old| !extra.iter().any(|new| same_entity(old, new)));
        view.entities.extend(extra.iter().cloned());
        compose(pack, inputs.entities_text.as_deref(), Some(&view)).map(|_| ())
    }

    /// Checks that a role grant would compose with everything else, without changing anything.
    pub fn validate_grant(&self, grant: &RoleAssignment) -> Result<(), SnapshotError> {
        let inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(pack) = &inputs.pack else {
            return Err(SnapshotError::NoPack);
        };
        let mut view = inputs.store.as_deref().cloned().unwrap_or_default();
        view.assignments.push(grant.clone());
        let composed = compose(pack, inputs.entities_text.as_deref(), Some(&view))?;
        let type_name =
            pack.type_name(&grant.principal_type)
                .ok_or_else(|| SnapshotError::StatusType {
                    principal_type: grant.principal_type.clone(),
                    tenant: grant.tenant.clone(),
                })?;
        let uid = EntityUid::from_type_name_and_id(type_name, EntityId::new(&grant.principal_id));
        if composed.entities.get(&uid).is_none() {
            return Err(SnapshotError::GrantWithoutEntity(uid.to_string()));
        }
        Ok(())
    }

    fn install(&self, snapshot: Snapshot) {
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

fn same_entity(a: &EntityRecord, b: &EntityRecord) -> bool {
    a.tenant == b.tenant && a.entity_type == b.entity_type && a.entity_id == b.entity_id
}

fn uid_json(entity_type: &str, id: &str) -> Value {
    json!({"type": entity_type, "id": id})
}

/// Whether an entity of `entity_type` made from a grant alone (the tenant, if the type has
/// one, and the role as a parent) fits the schema: no other attribute is required.
fn stub_fits(pack: &Pack, entity_type: &str) -> bool {
    pack.entity_shape(entity_type).is_none_or(|shape| {
        shape.attributes.iter().all(|(name, required)| {
            !required
                || pack
                    .tenancy()
                    .is_some_and(|tenancy| *name == tenancy.attribute)
        })
    })
}

/// Builds the entities of a snapshot: the file's, the store's on top, grants as parents.
fn compose(
    pack: &Arc<Pack>,
    entities_text: Option<&str>,
    store: Option<&StoreView>,
) -> Result<Snapshot, SnapshotError> {
    let mut statuses = HashMap::new();
    let file_entities: Vec<Value> = match entities_text {
        Some(text) => serde_json::from_str(text)
            .map_err(|error| SnapshotError::Entities(error.to_string()))?,
        None => Vec::new(),
    };
    let mut by_uid: Vec<((String, String), Value)> = Vec::with_capacity(file_entities.len());
    let key_of = |entity: &Value| -> Option<(String, String)> {
        let uid = entity.get("uid")?;
        let uid = uid.get("__entity").unwrap_or(uid);
        Some((
            uid.get("type")?.as_str()?.to_owned(),
            uid.get("id")?.as_str()?.to_owned(),
        ))
    };
    for entity in file_entities {
        let key = key_of(&entity).ok_or_else(|| {
            SnapshotError::Entities("an entity without a {type, id} uid".to_owned())
        })?;
        by_uid.push((key, entity));
    }
    let mut index: HashMap<(String, String), usize> = by_uid
        .iter()
        .enumerate()
        .map(|(i, (key, _))| (key.clone(), i))
        .collect();
    if let Some(view) = store {
        for record in &view.entities {
            let key = (record.entity_type.clone(), record.entity_id.clone());
            let entity = json!({"uid": uid_json(&record.entity_type, &record.entity_id), "attrs": record.attrs, "parents": record.parents});
            match index.get(&key) {
                Some(&position) => {
                    if let Some(slot) = by_uid.get_mut(position) {
                        slot.1 = entity;
                    }
                }
                None => {
                    index.insert(key.clone(), by_uid.len());
                    by_uid.push((key, entity));
                }
            }
        }
        for status in &view.statuses {
            // Built from the type and the id as they are, never by formatting and re-parsing
            // text (an id with control characters would not parse, and its status be lost).
            let type_name = pack.type_name(&status.principal_type).ok_or_else(|| {
                SnapshotError::StatusType {
                    principal_type: status.principal_type.clone(),
                    tenant: status.tenant.clone(),
                }
            })?;
            let uid =
                EntityUid::from_type_name_and_id(type_name, EntityId::new(&status.principal_id));
            statuses.insert(uid, status.status);
        }
        for grant in &view.assignments {
            let key = (grant.principal_type.clone(), grant.principal_id.clone());
            let position = match index.get(&key) {
                Some(&position) => position,
                None if !stub_fits(pack, &grant.principal_type) => {
                    // A grant to a principal the data does not list, of a type whose entities
                    // need attributes a grant cannot give (writes refuse such a grant; this one
                    // raced with a delete). Skipped: the grant adds access, so leaving it out
                    // fails closed, and one such row must not stop every replica's rebuild.
                    tracing::warn!(
                        principal_type = %grant.principal_type,
                        principal_id = ?grant.principal_id,
                        role = ?grant.role_id,
                        "a role grant names a principal the entity data does not have; it is not applied"
                    );
                    continue;
                }
                None => {
                    // A grant to a principal the data does not list: the store now knows it.
                    let mut attrs = Map::new();
                    let scoped = pack
                        .entity_shape(&grant.principal_type)
                        .is_none_or(|shape| {
                            pack.tenancy().is_some_and(|tenancy| {
                                shape.attributes.contains_key(&tenancy.attribute)
                            })
                        });
                    if let (Some(tenancy), true) = (pack.tenancy(), scoped) {
                        attrs.insert(tenancy.attribute.clone(), json!({"__entity": {"type": tenancy.tenant_type.to_string(), "id": grant.tenant}}));
                    }
                    let stub = json!({"uid": uid_json(&grant.principal_type, &grant.principal_id), "attrs": attrs, "parents": []});
                    index.insert(key.clone(), by_uid.len());
                    by_uid.push((key, stub));
                    by_uid.len() - 1
                }
            };
            if let Some(Some(parents)) = by_uid
                .get_mut(position)
                .map(|slot| slot.1.get_mut("parents").and_then(Value::as_array_mut))
            {
                let role = uid_json(&grant.role_type, &grant.role_id);
                if !parents.contains(&role) {
                    parents.push(role);
                }
            }
        }
    }
    let all = Value::Array(by_uid.into_iter().map(|(_, entity)| entity).collect());
    let text = all.to_string();
    let entities = pack
        .parse_entities(&text)
        .map_err(|error| SnapshotError::Entities(error.to_string()))?;
    let digest = sha2::Digest::finalize(sha2::Digest::chain_update(
        sha2::Sha256::default(),
        text.as_bytes(),
    ));
    let entities_revision = hex::encode(digest.get(..8).unwrap_or_default());
    Ok(Snapshot {
        pack: Arc::clone(pack),
        entities,
        statuses,
        entities_revision,
        store_version: store.map(|view| view.version),
        next_expiry: store.and_then(|view| view.next_expiry),
        loaded_at: SystemTime::now(),
        decisions: crate::decision_cache::DecisionCache::default(),
    })
}

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body.
    pub max_body_bytes: usize,
    /// Most evaluations per batch.
    pub max_batch_size: usize,
}

/// When the store was last read successfully; past the bound, decisions fail closed.
#[derive(Debug)]
pub struct StoreFreshness {
    last_ok: Mutex<Instant>,
    last_error: Mutex<Option<String>>,
    max_staleness: Duration,
}

impl StoreFreshness {
    /// Fresh now.
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            last_ok: Mutex::new(Instant::now()),
            last_error: Mutex::new(None),
            max_staleness,
        }
    }

    /// A successful read.
    pub fn mark_ok(&self) {
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
    use warden_store::StatusRecord;

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

    fn view(version: i64, read_at: i64, disabled: &[&str]) -> StoreView {
        StoreView {
            version,
            read_at,
            statuses: disabled
                .iter()
                .map(|id| StatusRecord {
                    tenant: "acme".into(),
                    principal_type: "User".into(),
                    principal_id: (*id).into(),
                    status: PrincipalStatus::Disabled,
                })
                .collect(),
            ..StoreView::default()
        }
    }

    fn installed(holder: &PolicyHolder) -> (Option<i64>, usize) {
        let snapshot = holder.current().unwrap();
        (snapshot.store_version, snapshot.statuses.len())
    }

    /// Issue #18: reads of the store finish in any order; the one that finishes last must not
    /// replace a newer view (which would undo a write already answered).
    #[test]
    fn an_older_store_view_never_replaces_a_newer_one() {
        let holder = holder();
        assert_eq!(
            holder.set_store_view(view(7, 100, &["a", "b"])).unwrap(),
            Freshness::Installed
        );
        assert_eq!(
            holder.set_store_view(view(6, 101, &["a"])).unwrap(),
            Freshness::Older
        );
        assert_eq!(installed(&holder), (Some(7), 2));
        // The same version judged later (a grant expired meanwhile) is newer.
        assert_eq!(
            holder.set_store_view(view(7, 130, &["a", "b"])).unwrap(),
            Freshness::Installed
        );
        assert_eq!(
            holder.set_store_view(view(7, 120, &["a"])).unwrap(),
            Freshness::Older
        );
        assert_eq!(
            holder.set_store_view(view(8, 90, &[])).unwrap(),
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
            .set_store_view(view(1, 1, &["acme/ctl\u{8}back", "acme/ctl\u{c}feed"]))
            .unwrap();
        let snapshot = holder.current().unwrap();
        for id in ["acme/ctl\u{8}back", "acme/ctl\u{c}feed"] {
            let uid = EntityUid::from_type_name_and_id(
                snapshot.pack.type_name("User").unwrap(),
                EntityId::new(id),
            );
            assert_eq!(
                snapshot.statuses.get(&uid),
                Some(&PrincipalStatus::Disabled)
            );
        }
    }
}
