//! The entities decisions are made against, kept as one record per entity and changed one
//! record at a time; each decision assembles only the entities it can reach.
//!
//! SECURITY-SENSITIVE: the slice a decision sees must decide exactly as the whole data would.
//!
//! Layers, the first that has an entity wins: principals with role grants (their entity with
//! each grant in force added as a parent), the store's entities, the entity file's. A principal
//! with grants and no entity gets one made from the grant (its tenant, the roles as parents)
//! when its type needs no other attribute.
//!
//! Why a slice decides as the whole data: Cedar reads an entity only by following a reference
//! it already holds — the request's principal, action and resource, entity values in the
//! context, entity literals in policy conditions, and entity values in the attributes, tags and
//! ancestors of entities it read. [`EntityGraph::slice`] starts from exactly those roots and
//! follows every parent and every entity value in attributes and tags, so every entity an
//! evaluation can read is in the slice with all its ancestors (whose closure Cedar computes over
//! the slice as it would over everything). Scope constraints (`principal in Group::"g"`) need
//! only the request entity's ancestors, so scope literals are not roots. The differential tests
//! (`tests/entity_slices.rs`) hold slice decisions to whole-data decisions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use cedar_policy_core::ast::Entity as CoreEntity;
use foldhash::fast::RandomState;
use ref_cast::RefCast;
use serde_json::{Map, Value, json};
use warden_core::Pack;
use warden_core::cedar_policy::{Entities, Entity, EntityId, EntityTypeName, EntityUid};
use warden_store::{EntityRecord, PrincipalStatus, RoleAssignment, StatusRecord, StoreChanges};

use crate::compact_entity::{Compact, Key, Names};

/// Why entity data cannot be taken in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// An entity does not parse or does not fit the schema.
    #[error("entity {uid}: {message}")]
    Entity {
        /// The entity, as written.
        uid: String,
        /// What is wrong.
        message: String,
    },
    /// A type named by stored data is not an entity type name.
    #[error("`{entity_type}` is not an entity type name (tenant `{tenant}`)")]
    TypeName {
        /// The type as stored.
        entity_type: String,
        /// The tenant of the row.
        tenant: String,
    },
    /// The entity file is not a JSON array of entities.
    #[error("entity file: {0}")]
    File(String),
}

/// One entity, parsed against the schema, with every entity it refers to (its parents and the
/// entity values in its attributes and tags), found once when it is taken in.
#[derive(Debug, Clone)]
pub struct Node {
    /// Shared with every slice that includes it (Cedar's store keeps entities behind `Arc`).
    entity: Arc<CoreEntity>,
    refs: Box<[EntityUid]>,
}

impl Node {
    /// Parses Cedar entity JSON (`{"uid", "attrs", "parents"[, "tags"]}`) against the schema.
    pub fn parse(pack: &Pack, value: Value) -> Result<Node, GraphError> {
        let label = uid_label(&value);
        let entity =
            Entity::from_json_value(value, pack.schema()).map_err(|error| GraphError::Entity {
                uid: label.clone(),
                message: error.to_string().replace('\n', " "),
            })?;
        Node::of(entity).map_err(|message| GraphError::Entity {
            uid: label,
            message,
        })
    }

    /// The node of a parsed entity.
    pub fn of(entity: Entity) -> Result<Node, String> {
        // Cedar writes entity values as `{"__entity": …}` and parents as `{type, id}`.
        let json = entity.to_json_value().map_err(|error| error.to_string())?;
        let mut refs = Vec::new();
        if let Some(parents) = json.get("parents").and_then(Value::as_array) {
            for parent in parents {
                if let Some(uid) = uid_of(parent.get("__entity").unwrap_or(parent)) {
                    refs.push(uid);
                }
            }
        }
        for part in ["attrs", "tags"] {
            if let Some(values) = json.get(part) {
                collect_entity_values(values, &mut refs);
            }
        }
        refs.sort();
        refs.dedup();
        Ok(Node {
            entity: Arc::new(core_entity(entity)),
            refs: refs.into_boxed_slice(),
        })
    }

    /// The entity.
    pub fn entity(&self) -> &Entity {
        Entity::ref_cast(&self.entity)
    }
}

/// The core entity under cedar-policy's (a transparent wrapper).
fn core_entity(entity: Entity) -> CoreEntity {
    AsRef::<CoreEntity>::as_ref(&entity).clone()
}

/// Parses Cedar entity JSON against the schema (without finding its references).
pub fn parse_entity(pack: &Pack, value: Value) -> Result<Entity, GraphError> {
    let label = uid_label(&value);
    Entity::from_json_value(value, pack.schema()).map_err(|error| GraphError::Entity {
        uid: label,
        message: error.to_string().replace('\n', " "),
    })
}

/// `Type::"id"` of entity JSON as written, for messages (the id escaped as a JSON string).
pub fn uid_label(value: &Value) -> String {
    value
        .get("uid")
        .map(|uid| uid.get("__entity").unwrap_or(uid))
        .and_then(|uid| Some((uid.get("type")?.as_str()?, uid.get("id")?.as_str()?)))
        .map_or_else(
            || "(without a {type, id} uid)".to_owned(),
            |(entity_type, id)| format!("{entity_type}::{}", Value::String(id.to_owned())),
        )
}

fn uid_of(value: &Value) -> Option<EntityUid> {
    let entity_type: EntityTypeName = value.get("type")?.as_str()?.parse().ok()?;
    Some(EntityUid::from_type_name_and_id(
        entity_type,
        EntityId::new(value.get("id")?.as_str()?),
    ))
}

/// Every `{"__entity": {type, id}}` inside a JSON value.
fn collect_entity_values(value: &Value, into: &mut Vec<EntityUid>) {
    match value {
        Value::Object(map) => {
            if let Some(uid) = map.get("__entity").and_then(uid_of) {
                into.push(uid);
                return;
            }
            for inner in map.values() {
                collect_entity_values(inner, into);
            }
        }
        Value::Array(items) => {
            for inner in items {
                collect_entity_values(inner, into);
            }
        }
        _ => {}
    }
}

/// Entity references a caller's JSON may hold (a context): `{"__entity": …}` and, where a schema
/// types a value as an entity, a plain `{"type", "id"}`. Taking more than Cedar reads only makes
/// a slice larger, never wrong.
pub fn references_in(value: &Value, into: &mut Vec<EntityUid>) {
    match value {
        Value::Object(map) => {
            let target = map.get("__entity").unwrap_or(value);
            if let Some(uid) = uid_of(target) {
                into.push(uid);
            }
            for inner in map.values() {
                references_in(inner, into);
            }
        }
        Value::Array(items) => {
            for inner in items {
                references_in(inner, into);
            }
        }
        _ => {}
    }
}

/// What a pack adds to a slice: for each of the schema's actions, its entity and those of the
/// action groups it is in (their parents already hold every ancestor). A slice takes the
/// actions it reaches (the request's, and any a condition or the context names), not all of
/// them: Cedar's entity store computes the transitive closure of every entity it is given, per
/// request. (The entities policy conditions name come with the policies a decision selects:
/// `Pack::open_literals` and `Selection::literals`.)
#[derive(Debug, Default)]
pub struct PackRoots {
    actions: HashMap<EntityUid, Vec<Arc<CoreEntity>>, RandomState>,
}

impl PackRoots {
    /// Found once per pack.
    pub fn of(pack: &Pack) -> PackRoots {
        let Some(entities) = pack
            .schema()
            .and_then(|schema| schema.action_entities().ok())
        else {
            return PackRoots::default();
        };
        let actions = entities
            .iter()
            .map(|action| {
                let mut closure = vec![Arc::new(core_entity(action.clone()))];
                if let Some(ancestors) = entities.ancestors(&action.uid()) {
                    closure.extend(
                        ancestors
                            .filter_map(|uid| entities.get(uid))
                            .map(|entity| Arc::new(core_entity(entity.clone()))),
                    );
                }
                (action.uid(), closure)
            })
            .collect();
        PackRoots { actions }
    }
}

/// A role grant as a parent edge.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GrantEdge {
    tenant: String,
    role_type: String,
    role_id: String,
    expires_at: Option<i64>,
}

impl GrantEdge {
    fn in_force(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// A stored entity: its tenant and the entity, compact when it can be (see
/// [`crate::compact_entity`]), parsed otherwise.
#[derive(Debug, Clone)]
struct Stored {
    tenant: Arc<str>,
    form: Form,
}

#[derive(Debug, Clone)]
enum Form {
    Compact(Compact),
    /// Rare (values the compact form does not keep): boxed, so that every compact entry is
    /// not the size of a parsed one.
    Parsed(Box<Node>),
}

/// An entity found in the data, in the form it is kept in.
#[derive(Debug, Clone, Copy)]
enum Found<'a> {
    /// A grant-derived, stored (parsed) or request entity.
    Node(&'a Node),
    /// An entity of the entity file (no other layer has one for its uid).
    File(&'a Node),
    Compact(&'a Compact),
}

/// Every entity the service knows, with role grants and principal statuses.
#[derive(Debug, Default)]
pub struct EntityGraph {
    file: HashMap<EntityUid, Node, RandomState>,
    stored: HashMap<Key, Stored, RandomState>,
    names: Names,
    grants: HashMap<EntityUid, Vec<GrantEdge>, RandomState>,
    granted: HashMap<EntityUid, Node, RandomState>,
    /// Rows of the same uid stored under other tenants than the one in force (the row of the
    /// greatest tenant name is in force, as when everything is read in tenant order).
    shadowed: HashMap<Key, Vec<Stored>, RandomState>,
    /// Statuses by principal, one per tenant that set one (the strictest applies).
    statuses: HashMap<EntityUid, Vec<(Arc<str>, PrincipalStatus)>, RandomState>,
    ids_by_type: HashMap<EntityTypeName, BTreeSet<String>, RandomState>,
    expiries: BTreeMap<i64, HashSet<EntityUid, RandomState>>,
    /// `[storage] tenants`: the tenants whose tenant-scoped data this replica holds (all
    /// when `None`).
    served: Option<Arc<BTreeSet<String>>>,
    /// Cedar's store of the entity file's entities and the schema's actions, built on first use
    /// (neither changes during a graph's life): a decision whose slice holds nothing else
    /// decides on it as it would on its own slice (Cedar reads only what it can reach), without
    /// assembling one. `None` when the file is too large to keep twice or does not assemble.
    file_store: OnceLock<Option<Arc<Entities>>>,
}

/// The largest entity file kept as one Cedar store too (entities whose closure adds ancestors
/// are held twice).
const FILE_STORE_MAX_ENTITIES: usize = 100_000;

/// Whether entities of this type belong to one tenant (they carry the tenant attribute, and
/// their ids are written `<tenant>/<id>`).
pub fn tenant_scoped(pack: &Pack, entity_type: &str) -> bool {
    match (pack.tenancy(), pack.entity_shape(entity_type)) {
        (Some(tenancy), Some(shape)) => shape.attributes.contains_key(&tenancy.attribute),
        (Some(tenancy), None) => entity_type != tenancy.tenant_type.to_string(),
        (None, _) => false,
    }
}

fn typed_uid(
    pack: &Pack,
    tenant: &str,
    entity_type: &str,
    id: &str,
) -> Result<EntityUid, GraphError> {
    let type_name = pack
        .type_name(entity_type)
        .ok_or_else(|| GraphError::TypeName {
            entity_type: entity_type.to_owned(),
            tenant: tenant.to_owned(),
        })?;
    Ok(EntityUid::from_type_name_and_id(
        type_name,
        EntityId::new(id),
    ))
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

impl EntityGraph {
    /// The graph of an entity file (a JSON array of Cedar entities), nothing stored.
    pub fn of_file(pack: &Pack, text: Option<&str>) -> Result<EntityGraph, GraphError> {
        let values: Vec<Value> = match text {
            Some(text) => {
                serde_json::from_str(text).map_err(|error| GraphError::File(error.to_string()))?
            }
            None => Vec::new(),
        };
        EntityGraph::of_values(pack, values)
    }

    /// The graph of entity JSON values (a suite's, a file's), nothing stored.
    pub fn of_values(pack: &Pack, values: Vec<Value>) -> Result<EntityGraph, GraphError> {
        let mut graph = EntityGraph::default();
        for value in values {
            let node = Node::parse(pack, value)?;
            let uid = node.entity().uid();
            if graph.file.insert(uid.clone(), node).is_some() {
                return Err(GraphError::Entity {
                    uid: uid.to_string(),
                    message: "listed twice".to_owned(),
                });
            }
            graph.reindex(&uid);
        }
        Ok(graph)
    }

    /// Holds only these tenants' tenant-scoped data from now on (`[storage] tenants`); set
    /// before anything is stored.
    pub fn serve_only(&mut self, tenants: Option<Arc<BTreeSet<String>>>) {
        self.served = tenants;
    }

    /// Whether a stored row of `tenant` of this type is held here.
    fn holds(&self, pack: &Pack, tenant: &str, entity_type: &str) -> bool {
        self.served
            .as_ref()
            .is_none_or(|served| served.contains(tenant) || !tenant_scoped(pack, entity_type))
    }

    /// The tenant this replica does not serve that an entity belongs to, if any: for a
    /// tenant-scoped type the prefix of its id (`acme/…`), for the tenant type itself its id.
    pub fn unserved_tenant(&self, pack: &Pack, entity_type: &str, id: &str) -> Option<String> {
        let served = self.served.as_ref()?;
        let tenant = match pack.tenancy() {
            Some(tenancy) if tenancy.tenant_type.to_string() == entity_type => id,
            Some(_) if tenant_scoped(pack, entity_type) => {
                id.split_once('/').map_or(id, |(tenant, _)| tenant)
            }
            _ => return None,
        };
        (!served.contains(tenant)).then(|| tenant.to_owned())
    }

    /// The tenant whose data this replica does not hold that an entity belongs to: for a
    /// tenant-scoped type, the prefix of its id when that tenant is not served (shared types,
    /// the tenant type among them, are held whoever stored them).
    fn not_held(&self, pack: &Pack, uid: &EntityUid) -> Option<String> {
        let served = self.served.as_ref()?;
        let entity_type = uid.type_name().to_string();
        if !tenant_scoped(pack, &entity_type) {
            return None;
        }
        let id = uid.id().unescaped();
        let tenant = id.split_once('/').map_or(id, |(tenant, _)| tenant);
        (!served.contains(tenant)).then(|| tenant.to_owned())
    }

    /// The same data parsed against another pack's schema (a pack reload that changed it).
    pub fn reparsed(
        &self,
        pack: &Pack,
        file_text: Option<&str>,
        now: i64,
    ) -> Result<EntityGraph, GraphError> {
        let mut graph = EntityGraph::of_file(pack, file_text)?;
        graph.served = self.served.clone();
        let shadowed = self
            .shadowed
            .iter()
            .flat_map(|(key, rows)| rows.iter().map(move |row| (key, row)));
        for (key, stored) in self.stored.iter().chain(shadowed) {
            let Some(uid) = self.names.uid(key) else {
                continue;
            };
            let entity =
                self.entity_of(&uid, self.form_of(stored))
                    .ok_or_else(|| GraphError::Entity {
                        uid: uid.to_string(),
                        message: "cannot be rebuilt".to_owned(),
                    })?;
            let json = entity.to_json_value().map_err(|error| GraphError::Entity {
                uid: uid.to_string(),
                message: error.to_string(),
            })?;
            let tenant = Arc::clone(&stored.tenant);
            graph.insert_stored(tenant, parse_entity(pack, json)?)?;
        }
        for (uid, edges) in &self.grants {
            graph.grants.insert(uid.clone(), edges.clone());
            for at in edges.iter().filter_map(|edge| edge.expires_at) {
                graph.expiries.entry(at).or_default().insert(uid.clone());
            }
        }
        graph.statuses = self.statuses.clone();
        let granted: Vec<EntityUid> = graph.grants.keys().cloned().collect();
        for uid in granted {
            graph.derive(pack, &uid, now)?;
        }
        Ok(graph)
    }

    fn insert_stored(&mut self, tenant: Arc<str>, entity: Entity) -> Result<(), GraphError> {
        let uid = entity.uid();
        let key = self.names.key(&uid);
        let form = self.form_of_entity(entity)?;
        self.place_stored(key, Stored { tenant, form });
        self.reindex(&uid);
        Ok(())
    }

    /// How a validated entity is kept: compact when it can be, parsed otherwise.
    fn form_of_entity(&mut self, entity: Entity) -> Result<Form, GraphError> {
        if let Some(compact) = self.names.compact(&entity) {
            return Ok(Form::Compact(compact));
        }
        let uid = entity.uid().to_string();
        let node = Node::of(entity).map_err(|message| GraphError::Entity { uid, message })?;
        Ok(Form::Parsed(Box::new(node)))
    }

    /// Puts a tenant's row of a uid in its place: in force when its tenant is the greatest
    /// holding the uid, shadowed otherwise.
    fn place_stored(&mut self, key: Key, row: Stored) {
        match self.stored.get(&key) {
            Some(current) if current.tenant != row.tenant => {
                if row.tenant > current.tenant {
                    if let Some(previous) = self.stored.insert(key.clone(), row) {
                        self.shadow(key, previous);
                    }
                } else {
                    self.shadow(key, row);
                }
            }
            _ => {
                self.stored.insert(key, row);
            }
        }
    }

    fn shadow(&mut self, key: Key, row: Stored) {
        let rows = self.shadowed.entry(key).or_default();
        rows.retain(|other| other.tenant != row.tenant);
        rows.push(row);
    }

    /// Removes a tenant's row of a uid; the greatest other tenant's row, if any, comes in force.
    fn unplace_stored(&mut self, key: &Key, tenant: &str) {
        if self
            .stored
            .get(key)
            .is_some_and(|current| &*current.tenant == tenant)
        {
            self.stored.remove(key);
            if let Some(rows) = self.shadowed.get_mut(key) {
                let greatest = rows
                    .iter()
                    .enumerate()
                    .max_by(|(_, a), (_, b)| a.tenant.cmp(&b.tenant))
                    .map(|(index, _)| index);
                if let Some(index) = greatest {
                    let promoted = rows.swap_remove(index);
                    self.stored.insert(key.clone(), promoted);
                }
            }
        } else if let Some(rows) = self.shadowed.get_mut(key) {
            rows.retain(|other| &*other.tenant != tenant);
        }
        if self.shadowed.get(key).is_some_and(Vec::is_empty) {
            self.shadowed.remove(key);
        }
    }

    fn form_of<'a>(&self, stored: &'a Stored) -> Found<'a> {
        match &stored.form {
            Form::Compact(compact) => Found::Compact(compact),
            Form::Parsed(node) => Found::Node(node),
        }
    }

    fn stored_of(&self, uid: &EntityUid) -> Option<&Stored> {
        self.stored.get(&self.names.find(uid)?)
    }

    /// The entity the data has for a uid, in the form it is kept in.
    fn find(&self, uid: &EntityUid) -> Option<Found<'_>> {
        self.granted
            .get(uid)
            .map(Found::Node)
            .or_else(|| self.stored_of(uid).map(|stored| self.form_of(stored)))
            .or_else(|| self.file.get(uid).map(Found::File))
    }

    fn entity_of(&self, uid: &EntityUid, found: Found<'_>) -> Option<Entity> {
        match found {
            Found::Node(node) | Found::File(node) => Some(node.entity().clone()),
            Found::Compact(compact) => self.names.rebuild(uid, compact),
        }
    }

    /// Takes in one stored entity (a full read, or a change).
    pub fn put_stored(
        &mut self,
        pack: &Pack,
        record: &EntityRecord,
        now: i64,
    ) -> Result<(), GraphError> {
        if !self.holds(pack, &record.tenant, &record.entity_type) {
            return Ok(());
        }
        let uid = typed_uid(pack, &record.tenant, &record.entity_type, &record.entity_id)?;
        // A row an import wrote as Cedar's own JSON, validated against this very schema: taken
        // as it is (a parse against the schema is most of an import's cost, on every replica).
        let canonical = (record.canonical_for.as_deref() == Some(pack.data_fingerprint().as_str()))
            .then(|| {
                self.names
                    .compact_json(&json!({"attrs": record.attrs, "parents": record.parents}))
            })
            .flatten();
        let form = match canonical {
            Some(compact) => Form::Compact(compact),
            None => self.form_of_entity(parse_entity(
                pack,
                json!({
                    "uid": {"type": record.entity_type, "id": record.entity_id},
                    "attrs": record.attrs,
                    "parents": record.parents,
                }),
            )?)?,
        };
        let tenant = self.names.intern_tenant(&record.tenant);
        let key = self.names.key(&uid);
        self.place_stored(key, Stored { tenant, form });
        self.reindex(&uid);
        if self.grants.contains_key(&uid) {
            self.derive(pack, &uid, now)?;
        }
        Ok(())
    }

    /// Forgets one stored entity of a tenant (the file's, if it has one, shows again).
    pub fn remove_stored(
        &mut self,
        pack: &Pack,
        tenant: &str,
        entity_type: &str,
        id: &str,
        now: i64,
    ) -> Result<(), GraphError> {
        if !self.holds(pack, tenant, entity_type) || pack.type_name(entity_type).is_none() {
            // Nothing of a type that is no entity type name is held: nothing to remove (a
            // change row of a delete that named one must not stop the change feed).
            return Ok(());
        }
        let uid = typed_uid(pack, tenant, entity_type, id)?;
        if let Some(key) = self.names.find(&uid) {
            self.unplace_stored(&key, tenant);
        }
        if self.grants.contains_key(&uid) {
            self.derive(pack, &uid, now)?;
        }
        self.reindex(&uid);
        Ok(())
    }

    /// Replaces the grants one tenant gives a principal with `grants` (all of them); the
    /// grants other tenants give it stay.
    pub fn set_grants(
        &mut self,
        pack: &Pack,
        tenant: &str,
        principal: (&str, &str),
        grants: &[RoleAssignment],
        now: i64,
    ) -> Result<(), GraphError> {
        if !self.holds(pack, tenant, principal.0)
            || (grants.is_empty() && pack.type_name(principal.0).is_none())
        {
            // No grants of a type that is no entity type name are held: none to take away.
            return Ok(());
        }
        let uid = typed_uid(pack, tenant, principal.0, principal.1)?;
        let mut kept = Vec::new();
        if let Some(old) = self.grants.remove(&uid) {
            for at in old.iter().filter_map(|edge| edge.expires_at) {
                if let Some(set) = self.expiries.get_mut(&at) {
                    set.remove(&uid);
                    if set.is_empty() {
                        self.expiries.remove(&at);
                    }
                }
            }
            kept = old
                .into_iter()
                .filter(|edge| edge.tenant != tenant)
                .collect();
        }
        let mut edges: Vec<GrantEdge> = grants
            .iter()
            .map(|grant| GrantEdge {
                tenant: grant.tenant.clone(),
                role_type: grant.role_type.clone(),
                role_id: grant.role_id.clone(),
                expires_at: grant.expires_at,
            })
            .filter(|edge| edge.in_force(now))
            .collect();
        edges.extend(kept);
        if !edges.is_empty() {
            for at in edges.iter().filter_map(|edge| edge.expires_at) {
                self.expiries.entry(at).or_default().insert(uid.clone());
            }
            self.grants.insert(uid.clone(), edges);
        }
        self.derive(pack, &uid, now)
    }

    /// Every grant of a full read, grouped by principal.
    pub fn set_all_grants(
        &mut self,
        pack: &Pack,
        grants: &[RoleAssignment],
        now: i64,
    ) -> Result<(), GraphError> {
        let mut by_principal: BTreeMap<(&str, &str, &str), Vec<RoleAssignment>> = BTreeMap::new();
        for grant in grants {
            by_principal
                .entry((&grant.tenant, &grant.principal_type, &grant.principal_id))
                .or_default()
                .push(grant.clone());
        }
        for ((tenant, principal_type, principal_id), held) in by_principal {
            self.set_grants(pack, tenant, (principal_type, principal_id), &held, now)?;
        }
        Ok(())
    }

    /// Sets one principal's status (`Active` forgets it).
    pub fn set_status(&mut self, pack: &Pack, status: &StatusRecord) -> Result<(), GraphError> {
        if !self.holds(pack, &status.tenant, &status.principal_type)
            || (status.status == PrincipalStatus::Active
                && pack.type_name(&status.principal_type).is_none())
        {
            // `Active` forgets a status, and none is held for a type that is no type name.
            return Ok(());
        }
        // Built from the type and the id as they are, never by formatting and re-parsing text
        // (an id with control characters would not parse, and its status be lost).
        let uid = typed_uid(
            pack,
            &status.tenant,
            &status.principal_type,
            &status.principal_id,
        )?;
        let tenant = self.names.intern_tenant(&status.tenant);
        let held = self.statuses.entry(uid.clone()).or_default();
        held.retain(|(other, _)| *other != tenant);
        if status.status != PrincipalStatus::Active {
            held.push((tenant, status.status));
        }
        if held.is_empty() {
            self.statuses.remove(&uid);
        }
        Ok(())
    }

    /// Applies the state of the keys a store read found changed.
    pub fn apply(
        &mut self,
        pack: &Pack,
        changes: &StoreChanges,
        now: i64,
    ) -> Result<(), GraphError> {
        for (key, record) in &changes.entities {
            match record {
                Some(record) => self.put_stored(pack, record, now)?,
                None => {
                    self.remove_stored(pack, &key.tenant, &key.entity_type, &key.entity_id, now)?
                }
            }
        }
        for (key, grants) in &changes.grants {
            self.set_grants(
                pack,
                &key.tenant,
                (&key.entity_type, &key.entity_id),
                grants,
                now,
            )?;
        }
        for (key, status) in &changes.statuses {
            self.set_status(
                pack,
                &StatusRecord {
                    tenant: key.tenant.clone(),
                    principal_type: key.entity_type.clone(),
                    principal_id: key.entity_id.clone(),
                    status: *status,
                },
            )?;
        }
        Ok(())
    }

    /// Drops the grants that lapsed by `now`; returns whether any did.
    pub fn expire(&mut self, pack: &Pack, now: i64) -> Result<bool, GraphError> {
        let later = self.expiries.split_off(&now.saturating_add(1));
        let lapsed = std::mem::replace(&mut self.expiries, later);
        let mut any = false;
        for uid in lapsed.into_values().flatten() {
            if let Some(edges) = self.grants.get_mut(&uid) {
                edges.retain(|edge| edge.in_force(now));
                if edges.is_empty() {
                    self.grants.remove(&uid);
                }
            }
            self.derive(pack, &uid, now)?;
            any = true;
        }
        Ok(any)
    }

    /// The next grant expiry this graph holds.
    pub fn next_expiry(&self) -> Option<i64> {
        self.expiries.keys().next().copied()
    }

    /// Rebuilds the entity of one principal with its grants in force as parents.
    fn derive(&mut self, pack: &Pack, uid: &EntityUid, now: i64) -> Result<(), GraphError> {
        self.granted.remove(uid);
        let live: Vec<&GrantEdge> = self
            .grants
            .get(uid)
            .map(|edges| edges.iter().filter(|edge| edge.in_force(now)).collect())
            .unwrap_or_default();
        if let Some(first) = live.first() {
            let base = self
                .stored_of(uid)
                .map(|stored| self.form_of(stored))
                .or_else(|| self.file.get(uid).map(Found::Node))
                .map(|found| {
                    self.entity_of(uid, found)
                        .ok_or_else(|| GraphError::Entity {
                            uid: uid.to_string(),
                            message: "cannot be rebuilt".to_owned(),
                        })
                })
                .transpose()?;
            let entity_type = uid.type_name().to_string();
            let mut json = match base {
                Some(entity) => entity.to_json_value().map_err(|error| GraphError::Entity {
                    uid: uid.to_string(),
                    message: error.to_string(),
                })?,
                None if !stub_fits(pack, &entity_type) => {
                    // A grant to a principal the data does not list, of a type whose entities
                    // need attributes a grant cannot give (writes refuse such a grant; this one
                    // raced with a delete). Not applied: the grant adds access, so leaving it
                    // out fails closed, and one such row must not stop every replica.
                    tracing::warn!(
                        principal = %uid,
                        "a role grant names a principal the entity data does not have; it is not applied"
                    );
                    self.reindex(uid);
                    return Ok(());
                }
                None => stub_json(pack, uid, &entity_type, &first.tenant),
            };
            if let Some(parents) = json.get_mut("parents").and_then(Value::as_array_mut) {
                for edge in &live {
                    let role = json!({"type": edge.role_type, "id": edge.role_id});
                    if !parents.contains(&role) {
                        parents.push(role);
                    }
                }
            }
            let node = Node::parse(pack, json)?;
            self.granted.insert(uid.clone(), node);
        }
        self.reindex(uid);
        Ok(())
    }

    fn reindex(&mut self, uid: &EntityUid) {
        let known = self.contains(uid);
        let id = uid.id().unescaped();
        let ids = self.ids_by_type.entry(uid.type_name().clone()).or_default();
        if known {
            if !ids.contains(id) {
                ids.insert(id.to_owned());
            }
        } else {
            ids.remove(id);
        }
    }

    /// The entity the data has for a uid (rebuilt when it is kept compact).
    pub fn get(&self, uid: &EntityUid) -> Option<Entity> {
        self.entity_of(uid, self.find(uid)?)
    }

    /// Whether the data knows the entity.
    pub fn contains(&self, uid: &EntityUid) -> bool {
        self.find(uid).is_some()
    }

    /// A principal's status, when it is not active.
    pub fn status(&self, uid: &EntityUid) -> Option<PrincipalStatus> {
        let held = self.statuses.get(uid)?;
        if held
            .iter()
            .any(|(_, status)| *status == PrincipalStatus::Deleted)
        {
            Some(PrincipalStatus::Deleted)
        } else {
            held.first().map(|(_, status)| *status)
        }
    }

    /// How many entities the data knows.
    pub fn len(&self) -> usize {
        self.ids_by_type.values().map(BTreeSet::len).sum()
    }

    /// Whether the data knows no entity.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of known entities of one type after `after` (in order), at most `limit`.
    pub fn ids_of_type(
        &self,
        entity_type: &EntityTypeName,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<String> {
        let Some(ids) = self.ids_by_type.get(entity_type) else {
            return Vec::new();
        };
        let range = match after {
            Some(after) => {
                ids.range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            }
            None => ids.range::<str, _>(..),
        };
        range.take(limit).cloned().collect()
    }

    /// The entities a decision can read: everything reachable from `roots` (the request's
    /// entities and the selected policies' condition literals) and the request's own entities
    /// (`extra`, which take the place of what the data has for the same uid), plus the
    /// schema's actions. When everything reachable comes from the entity file, the file's whole
    /// store (shared, built once) stands for the slice.
    pub fn slice(
        &self,
        pack: &Pack,
        pack_roots: &PackRoots,
        roots: &[EntityUid],
        extra: &[Node],
    ) -> Result<Arc<Entities>, SliceError> {
        self.slice_with(pack, pack_roots, roots, extra, true)
    }

    /// Exactly what is reachable from `roots` (and `extra`, and the schema's actions), never
    /// the entity file's whole store: for a data-filter plan, whose partial evaluation reads
    /// and checks every entity it is given.
    pub fn slice_reachable(
        &self,
        pack: &Pack,
        pack_roots: &PackRoots,
        roots: &[EntityUid],
        extra: &[Node],
    ) -> Result<Arc<Entities>, SliceError> {
        self.slice_with(pack, pack_roots, roots, extra, false)
    }

    /// The tenants this replica serves (`[storage] tenants`), or `None` for all.
    pub fn served_tenants(&self) -> Option<&Arc<BTreeSet<String>>> {
        self.served.as_ref()
    }

    fn slice_with(
        &self,
        pack: &Pack,
        pack_roots: &PackRoots,
        roots: &[EntityUid],
        extra: &[Node],
        file_store: bool,
    ) -> Result<Arc<Entities>, SliceError> {
        if file_store
            && extra.is_empty()
            && self.stored.is_empty()
            && self.granted.is_empty()
            && self.served.is_none()
            && let Some(store) = self.file_store(pack_roots)
        {
            return Ok(store);
        }
        let extra: HashMap<EntityUid, &Node, RandomState> = extra
            .iter()
            .map(|node| (node.entity().uid(), node))
            .collect();
        let mut seen: HashSet<EntityUid, RandomState> = HashSet::default();
        let mut queue: Vec<EntityUid> = Vec::with_capacity(roots.len() + 8);
        queue.extend(roots.iter().cloned());
        let mut out: Vec<Arc<CoreEntity>> = Vec::with_capacity(queue.len() + 4);
        let mut only_file = true;
        while let Some(uid) = queue.pop() {
            if let Some(closure) = pack_roots.actions.get(&uid) {
                for action in closure {
                    if seen.insert(Entity::ref_cast(action).uid()) {
                        out.push(Arc::clone(action));
                    }
                }
                continue;
            }
            if !seen.insert(uid.clone()) {
                continue;
            }
            // A replica serving some tenants holds none of the others' entities: a decision
            // that can reach one cannot be made here (without it, a forbid that reads it would
            // error and be skipped, and `has` would be false).
            if let Some(tenant) = self.not_held(pack, &uid) {
                return Err(SliceError::NotServed(tenant));
            }
            let found = match extra.get(&uid) {
                Some(node) => Some(Found::Node(node)),
                None => self.find(&uid),
            };
            let Some(found) = found else {
                continue;
            };
            match found {
                Found::Node(node) | Found::File(node) => {
                    only_file &= matches!(found, Found::File(_));
                    out.push(Arc::clone(&node.entity));
                    queue.extend(node.refs.iter().filter(|r| !seen.contains(*r)).cloned());
                }
                Found::Compact(compact) => {
                    only_file = false;
                    let entity = self
                        .names
                        .rebuild(&uid, compact)
                        .ok_or_else(|| SliceError::Entities(format!("{uid} cannot be rebuilt")))?;
                    out.push(Arc::new(core_entity(entity)));
                    self.names.refs(compact, &mut queue);
                }
            }
        }
        if file_store
            && only_file
            && let Some(store) = self.file_store(pack_roots)
        {
            return Ok(store);
        }
        crate::slice_store::assemble(out)
            .map(Arc::new)
            .map_err(|error| SliceError::Entities(error.to_string()))
    }

    /// Builds the entity file's whole store now, so that the first decision does not.
    pub fn prepare_file_store(&self, pack_roots: &PackRoots) {
        let _ = self.file_store(pack_roots);
    }

    /// The entity file's whole store (see `file_store`).
    fn file_store(&self, pack_roots: &PackRoots) -> Option<Arc<Entities>> {
        self.file_store
            .get_or_init(|| {
                if self.file.len() > FILE_STORE_MAX_ENTITIES {
                    return None;
                }
                let mut seen: HashSet<&cedar_policy_core::ast::EntityUID, RandomState> =
                    HashSet::default();
                let mut all: Vec<Arc<CoreEntity>> = Vec::with_capacity(self.file.len());
                for node in self.file.values() {
                    all.push(Arc::clone(&node.entity));
                }
                for closure in pack_roots.actions.values() {
                    for action in closure {
                        if seen.insert(action.uid()) {
                            all.push(Arc::clone(action));
                        }
                    }
                }
                crate::slice_store::assemble_shallow(all)
                    .ok()
                    .flatten()
                    .map(Arc::new)
            })
            .clone()
    }
}

/// Why a decision's entities cannot be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SliceError {
    /// The decision reaches an entity of a tenant this replica does not serve.
    #[error("tenant `{0}` is not served by this replica ([storage] tenants)")]
    NotServed(String),
    /// The entities do not fit together.
    #[error("{0}")]
    Entities(String),
}

/// The entity made for a principal known only from its grants: its tenant, where its type has
/// the tenant attribute.
fn stub_json(pack: &Pack, uid: &EntityUid, entity_type: &str, tenant: &str) -> Value {
    let mut attrs = Map::new();
    let scoped = pack.entity_shape(entity_type).is_none_or(|shape| {
        pack.tenancy()
            .is_some_and(|tenancy| shape.attributes.contains_key(&tenancy.attribute))
    });
    if let (Some(tenancy), true) = (pack.tenancy(), scoped) {
        attrs.insert(
            tenancy.attribute.clone(),
            json!({"__entity": {"type": tenancy.tenant_type.to_string(), "id": tenant}}),
        );
    }
    json!({"uid": {"type": entity_type, "id": uid.id().unescaped()}, "attrs": attrs, "parents": []})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;
    use warden_core::PackSources;

    fn pack() -> Pack {
        let sources = PackSources::from_policy_text(
            "p.cedar",
            "permit (principal, action, resource) when { principal in Role::\"admin\" };",
        );
        Pack::compile(&sources).unwrap().pack
    }

    fn uid(entity_type: &str, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(entity_type.parse().unwrap(), EntityId::new(id))
    }

    fn status(tenant: &str, id: &str, status: PrincipalStatus) -> StatusRecord {
        StatusRecord {
            tenant: tenant.into(),
            principal_type: "User".into(),
            principal_id: id.into(),
            status,
        }
    }

    fn grant(tenant: &str, id: &str, role: &str) -> RoleAssignment {
        RoleAssignment {
            tenant: tenant.into(),
            principal_type: "User".into(),
            principal_id: id.into(),
            role_type: "Role".into(),
            role_id: role.into(),
            expires_at: None,
            reason: "r".into(),
            granted_by: "t".into(),
            granted_at: 0,
        }
    }

    fn parents_of(graph: &EntityGraph, entity: &EntityUid) -> Vec<String> {
        let json = graph.get(entity).unwrap().to_json_value().unwrap();
        let mut parents: Vec<String> = json["parents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|parent| parent["id"].as_str().unwrap().to_owned())
            .collect();
        parents.sort();
        parents
    }

    /// One tenant's "active" must not clear what another tenant set (the store keeps a row per
    /// tenant; a full read keeps every non-active one): the strictest status applies.
    #[test]
    fn a_status_set_in_one_tenant_does_not_clear_another_tenants() {
        let pack = pack();
        let mut graph = EntityGraph::default();
        let alice = uid("User", "alice");
        graph
            .set_status(&pack, &status("acme", "alice", PrincipalStatus::Disabled))
            .unwrap();
        graph
            .set_status(&pack, &status("evil", "alice", PrincipalStatus::Active))
            .unwrap();
        assert_eq!(graph.status(&alice), Some(PrincipalStatus::Disabled));
        graph
            .set_status(&pack, &status("evil", "alice", PrincipalStatus::Deleted))
            .unwrap();
        assert_eq!(graph.status(&alice), Some(PrincipalStatus::Deleted));
        graph
            .set_status(&pack, &status("evil", "alice", PrincipalStatus::Active))
            .unwrap();
        graph
            .set_status(&pack, &status("acme", "alice", PrincipalStatus::Active))
            .unwrap();
        assert_eq!(graph.status(&alice), None);
    }

    /// Grants are replaced per tenant: one tenant's change leaves the others' grants.
    #[test]
    fn grants_from_two_tenants_are_kept_apart() {
        let pack = pack();
        let mut graph = EntityGraph::default();
        let alice = uid("User", "alice");
        graph
            .set_grants(
                &pack,
                "acme",
                ("User", "alice"),
                &[grant("acme", "alice", "admin")],
                0,
            )
            .unwrap();
        graph
            .set_grants(
                &pack,
                "evil",
                ("User", "alice"),
                &[grant("evil", "alice", "viewer")],
                0,
            )
            .unwrap();
        assert_eq!(parents_of(&graph, &alice), ["admin", "viewer"]);
        graph
            .set_grants(&pack, "evil", ("User", "alice"), &[], 0)
            .unwrap();
        assert_eq!(parents_of(&graph, &alice), ["admin"]);
    }

    /// The same uid stored under two tenants: the greatest tenant's row is in force (as in a
    /// full read in tenant order), and deleting it brings the other back.
    #[test]
    fn a_uid_stored_under_two_tenants_follows_the_full_read_order() {
        let pack = pack();
        let mut graph = EntityGraph::default();
        let group = uid("Group", "g");
        let row = |tenant: &str, parent: &str| EntityRecord {
            tenant: tenant.into(),
            entity_type: "Group".into(),
            entity_id: "g".into(),
            attrs: json!({}),
            parents: json!([{"type": "Role", "id": parent}]),
            canonical_for: None,
        };
        graph.put_stored(&pack, &row("zeta", "z"), 0).unwrap();
        graph.put_stored(&pack, &row("acme", "a"), 0).unwrap();
        assert_eq!(parents_of(&graph, &group), ["z"]);
        graph.remove_stored(&pack, "zeta", "Group", "g", 0).unwrap();
        assert_eq!(parents_of(&graph, &group), ["a"]);
        graph.remove_stored(&pack, "acme", "Group", "g", 0).unwrap();
        assert!(!graph.contains(&group));
    }
}
