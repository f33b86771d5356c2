//! The decision path of the service, free of HTTP: assemble the request's entities, build the
//! Cedar request, decide, and count it.
//!
//! SECURITY-SENSITIVE: which facts a decision trusts (known data over claims and properties) is decided here.
//!
//! Entities come from the snapshot's entity data (known facts) plus, for a principal or
//! resource the data does not know, an entity built from the verified token or from the
//! caller's `properties`. Known facts always win: properties of a known entity are ignored, so
//! a caller cannot change a user's roles or a resource's tenant by sending them. Anything
//! invalid (an unknown action, a type the schema does not allow, properties that do not fit the
//! schema) is a deny with reason `invalid_request`, never an error response and never an allow.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde_json::{Map, Value, json};
use warden_core::cedar_policy::{Entities, EntityId, EntityTypeName, EntityUid};

use crate::entity_graph::{EntityGraph, Node};
use warden_core::{Decision, Pack};
use warden_token::Principal;

use crate::decision_cache::Entry;
pub use crate::reason::RefusalReason;
use crate::snapshot::Snapshot;

/// An entity as a caller names it: type, id, and optional properties.
#[derive(Debug, Clone)]
pub struct EntityInput {
    /// The Cedar entity type, e.g. `Document`.
    pub entity_type: String,
    /// The entity id, e.g. `acme/roadmap`.
    pub id: String,
    /// Attributes to use when the entity data does not know the entity.
    pub properties: Option<Map<String, Value>>,
}

/// Who is asking.
#[derive(Debug, Clone)]
pub enum PrincipalInput<'a> {
    /// A principal from a verified token.
    Token(&'a Principal),
    /// A subject named by a policy enforcement point (AuthZEN).
    Named(EntityInput),
}

/// One request to decide.
#[derive(Debug, Clone)]
pub struct DecisionInput<'a> {
    /// The principal.
    pub principal: PrincipalInput<'a>,
    /// The action name (`read` becomes `Action::"read"`).
    pub action: String,
    /// The resource.
    pub resource: EntityInput,
    /// The context object.
    pub context: Option<Value>,
}

/// A deny decided before the policies were consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
    /// Why, for operators.
    pub detail: String,
}

/// The answer, with everything a response and a log line need.
#[derive(Debug)]
pub struct DecisionOutcome {
    /// A fresh UUIDv7.
    pub decision_id: String,
    /// What the policies decided (with the Cedar request, which the decision log explains
    /// from), when they were consulted; shared with the decision cache.
    pub evaluated: Option<Arc<Entry>>,
    /// Why the policies were not consulted (always a deny).
    pub refusal: Option<Refusal>,
}

impl DecisionOutcome {
    /// The core decision, when the policies were consulted.
    pub fn decision(&self) -> Option<&Decision> {
        self.evaluated.as_deref().map(|entry| &entry.decision)
    }

    /// Allowed?
    pub fn allowed(&self) -> bool {
        self.refusal.is_none() && self.decision().is_some_and(Decision::is_allowed)
    }

    /// Why, as one reason.
    pub fn why(&self) -> crate::reason::Reason {
        use crate::reason::Reason;
        match (&self.refusal, self.decision()) {
            (Some(refusal), _) => Reason::Refused(refusal.reason),
            (None, Some(decision)) => Reason::Decision(decision.reason),
            (None, None) => Reason::Refused(RefusalReason::InvalidRequest),
        }
    }

    /// The reason code.
    pub fn reason(&self) -> &'static str {
        self.why().as_str()
    }
}

/// A snapshot and whether it may be trusted now.
#[derive(Debug, Clone)]
pub struct DecisionScope {
    /// The snapshot to decide against.
    pub snapshot: std::sync::Arc<Snapshot>,
    /// Set when the store has not been read within the bound: every decision is a deny.
    pub stale: Option<String>,
    /// Attributes a token states authoritatively even for a known principal.
    pub claim_attributes: std::sync::Arc<Vec<String>>,
    /// Set when the decision log is failing in the fail-closed mode: every decision is a deny.
    pub audit_down: Option<String>,
}

/// A deny without consulting the policies (e.g. a revoked forwarded token), counted and logged
/// like any decision.
pub fn refused(input: &DecisionInput<'_>, refusal: Refusal) -> DecisionOutcome {
    let outcome = DecisionOutcome {
        decision_id: uuid::Uuid::now_v7().to_string(),
        evaluated: None,
        refusal: Some(refusal),
    };
    crate::decision_metrics::count_decision(false, outcome.reason());
    trace(input, &outcome);
    outcome
}

/// Decides one request.
pub fn decide(scope: &DecisionScope, input: &DecisionInput<'_>) -> DecisionOutcome {
    let started = Instant::now();
    let decision_id = uuid::Uuid::now_v7().to_string();
    let result = match (&scope.stale, &scope.audit_down) {
        (Some(why), _) => Err(Refusal {
            reason: RefusalReason::StoreUnavailable,
            detail: why.clone(),
        }),
        (None, Some(why)) => Err(Refusal {
            reason: RefusalReason::AuditUnavailable,
            detail: why.clone(),
        }),
        (None, None) => cached_evaluate(scope, input),
    };
    let (evaluated, refusal) = match result {
        Ok(entry) => (Some(entry), None),
        Err(refusal) => (None, Some(refusal)),
    };
    let outcome = DecisionOutcome {
        decision_id,
        evaluated,
        refusal,
    };
    crate::decision_metrics::count_decision(outcome.allowed(), outcome.reason());
    crate::decision_metrics::record_duration(started.elapsed().as_secs_f64());
    trace(input, &outcome);
    outcome
}

/// The decision as a debug event (every decision is a record of the decision log, not an
/// activity line; its fields are only written when debug events are on).
fn trace(input: &DecisionInput<'_>, outcome: &DecisionOutcome) {
    tracing::debug!(
        decision_id = %outcome.decision_id,
        principal = %principal_text(input),
        action = %input.action,
        resource_type = %input.resource.entity_type,
        resource_id = %input.resource.id,
        decision = if outcome.allowed() { "allow" } else { "deny" },
        reason = outcome.reason(),
        "decision"
    );
}

/// [`evaluate`], answered from the snapshot's decision cache when this exact input was decided
/// against this exact snapshot before (Cedar is deterministic in policies, entities and
/// request, all of which the snapshot and the input fix). Refusals are not cached.
fn cached_evaluate(
    scope: &DecisionScope,
    input: &DecisionInput<'_>,
) -> Result<Arc<Entry>, Refusal> {
    let fresh = || {
        evaluate(&scope.snapshot, &scope.claim_attributes, input).map(
            |(decision, request, entities)| {
                Arc::new(Entry {
                    decision,
                    request,
                    entities,
                    explanation: OnceLock::new(),
                })
            },
        )
    };
    let Some(key) = cache_key(input) else {
        return fresh();
    };
    let cache = &scope.snapshot.decisions;
    if let Some(hit) = cache.get(&key) {
        return Ok(hit);
    }
    let entry = fresh()?;
    cache.insert(key, Arc::clone(&entry));
    Ok(entry)
}

fn uid(pack: &Pack, entity_type: &str, id: &str) -> Result<EntityUid, String> {
    let type_name: EntityTypeName = pack
        .type_name(entity_type)
        .ok_or_else(|| format!("`{entity_type}` is not a valid entity type name"))?;
    Ok(EntityUid::from_type_name_and_id(
        type_name,
        EntityId::new(id),
    ))
}

fn principal_text(input: &DecisionInput<'_>) -> String {
    match &input.principal {
        PrincipalInput::Token(principal) => principal.uid_string(),
        PrincipalInput::Named(subject) => format!(
            "{}::{}",
            subject.entity_type,
            Value::String(subject.id.clone())
        ),
    }
}

fn invalid(detail: String) -> Refusal {
    Refusal {
        reason: RefusalReason::InvalidRequest,
        detail,
    }
}

/// The principal's uid and the entities the request supplies for it (its entity built from the
/// token or the caller's properties when the data does not know it; the token's authoritative
/// claims over a known one), or the refusal its state calls for (disabled, deleted, in a
/// tenant this replica does not serve).
pub(crate) fn principal_facts(
    snapshot: &Snapshot,
    graph: &EntityGraph,
    claim_attributes: &[String],
    principal: &PrincipalInput<'_>,
) -> Result<(EntityUid, Vec<Node>), Refusal> {
    let pack = &snapshot.pack;
    let (principal_uid, principal_entity) = match principal {
        PrincipalInput::Token(principal) => {
            let principal_uid =
                uid(pack, &principal.entity_type, &principal.id).map_err(invalid)?;
            (principal_uid, token_entity(pack, principal))
        }
        PrincipalInput::Named(subject) => {
            let principal_uid = uid(pack, &subject.entity_type, &subject.id).map_err(invalid)?;
            if let Some(properties) = &subject.properties {
                check_tenant_prefix(pack, subject, properties).map_err(invalid)?;
            }
            let entity = subject
                .properties
                .as_ref()
                .map(|properties| entity_json(subject, properties));
            (principal_uid, entity)
        }
    };
    // The store's lifecycle status stands outside every policy: a disabled or deleted
    // principal is denied whatever the policies and the token say.
    match graph.status(&principal_uid) {
        Some(warden_store::PrincipalStatus::Disabled) => {
            return Err(Refusal {
                reason: RefusalReason::PrincipalDisabled,
                detail: format!("{principal_uid} is disabled"),
            });
        }
        Some(warden_store::PrincipalStatus::Deleted) => {
            return Err(Refusal {
                reason: RefusalReason::PrincipalDeleted,
                detail: format!("{principal_uid} is deleted"),
            });
        }
        _ => {}
    }
    let (principal_type, principal_id) = match principal {
        PrincipalInput::Token(principal) => (&principal.entity_type, &principal.id),
        PrincipalInput::Named(subject) => (&subject.entity_type, &subject.id),
    };
    if let Some(tenant) = graph.unserved_tenant(pack, principal_type, principal_id) {
        return Err(not_served(&tenant));
    }
    let mut extra = Vec::new();
    if let Some(entity) = principal_entity
        && !graph.contains(&principal_uid)
    {
        extra.push(from_request(pack, entity)?);
    }
    if let PrincipalInput::Token(principal) = principal
        && let Some(overridden) =
            claimed_overrides(graph, pack, claim_attributes, &principal_uid, principal)
                .map_err(invalid)?
    {
        extra.push(overridden);
    }
    Ok((principal_uid, extra))
}

fn not_served(tenant: &str) -> Refusal {
    Refusal {
        reason: RefusalReason::TenantNotServed,
        detail: format!("tenant `{tenant}` is not served by this replica ([storage] tenants)"),
    }
}

fn from_request(pack: &Pack, value: Value) -> Result<Node, Refusal> {
    Node::parse(pack, value).map_err(|error| {
        invalid(format!(
            "entity data from the request does not fit the schema: {}",
            one_line(&error)
        ))
    })
}

/// A slice of the graph for a decision, its failures as refusals.
pub(crate) fn slice_for(
    snapshot: &Snapshot,
    graph: &EntityGraph,
    roots: &[EntityUid],
    extra: &[Node],
) -> Result<Arc<Entities>, Refusal> {
    graph
        .slice(&snapshot.pack, &snapshot.roots, roots, extra)
        .map_err(|error| match error {
            crate::entity_graph::SliceError::NotServed(_) => Refusal {
                reason: RefusalReason::TenantNotServed,
                detail: error.to_string(),
            },
            crate::entity_graph::SliceError::Entities(detail) => invalid(format!(
                "the request's entities do not fit together: {detail}"
            )),
        })
}

fn evaluate(
    snapshot: &Snapshot,
    claim_attributes: &[String],
    input: &DecisionInput<'_>,
) -> Result<(Decision, warden_core::cedar_policy::Request, Arc<Entities>), Refusal> {
    let pack = &snapshot.pack;
    let graph = snapshot.entities();
    let (principal_uid, mut extra) =
        principal_facts(snapshot, &graph, claim_attributes, &input.principal)?;
    let resource_uid =
        uid(pack, &input.resource.entity_type, &input.resource.id).map_err(invalid)?;
    let action_uid = uid(pack, "Action", &input.action).map_err(invalid)?;
    // A replica that serves some tenants (`[storage] tenants`) holds no data of the others: it
    // must not decide about them from what it does not have.
    if let Some(tenant) =
        graph.unserved_tenant(pack, &input.resource.entity_type, &input.resource.id)
    {
        return Err(not_served(&tenant));
    }
    if let Some(properties) = &input.resource.properties
        && !graph.contains(&resource_uid)
        && resource_uid != principal_uid
    {
        check_tenant_prefix(pack, &input.resource, properties).map_err(invalid)?;
        extra.push(from_request(
            pack,
            entity_json(&input.resource, properties),
        )?);
    }
    let mut roots = vec![
        principal_uid.clone(),
        action_uid.clone(),
        resource_uid.clone(),
    ];
    if let Some(context) = &input.context {
        crate::entity_graph::references_in(context, &mut roots);
    }
    roots.extend(pack.open_literals(&action_uid).iter().cloned());
    let request = pack
        .request(
            principal_uid,
            action_uid,
            resource_uid,
            input.context.clone(),
        )
        .map_err(|error| invalid(error.to_string()))?;
    let slice =
        |graph: &EntityGraph, roots: &[EntityUid]| slice_for(snapshot, graph, roots, &extra);
    // The selected policies' condition literals join the entities; the selection depends only
    // on the principal's and resource's ancestors, which the first slice already holds whole,
    // so one more slice is enough (a second is checked, never assumed).
    let tenant_policies = snapshot.tenant_policies();
    let mut entities = slice(&graph, &roots)?;
    for _ in 0..2 {
        let mut selection = pack.select(&request, &entities);
        tenant_policies.select_into(pack, &request, &entities, &mut selection);
        let mut missing: Vec<EntityUid> = Vec::new();
        if selection.literals().next().is_some() {
            let literals = selection.literals();
            let known: HashSet<&EntityUid> = roots.iter().collect();
            let mut added: HashSet<&EntityUid> = HashSet::new();
            for uid in literals {
                if !known.contains(uid) && added.insert(uid) {
                    missing.push(uid.clone());
                }
            }
        }
        if missing.is_empty() {
            drop(graph);
            let decision = pack.decide_selected(&request, &selection, &entities);
            return Ok((decision, request, entities));
        }
        drop(selection);
        roots.extend(missing);
        roots.sort();
        roots.dedup();
        entities = slice(&graph, &roots)?;
    }
    Err(invalid(
        "the entities of the selected policies did not settle".to_owned(),
    ))
}

/// A known principal with the token's authoritative attributes (`[principals] claim_attributes`)
/// written over the known ones; `None` when there is nothing to override.
fn claimed_overrides(
    graph: &EntityGraph,
    pack: &Pack,
    claim_attributes: &[String],
    uid: &EntityUid,
    principal: &Principal,
) -> Result<Option<Node>, String> {
    if claim_attributes.is_empty() {
        return Ok(None);
    }
    let Some(known) = graph.get(uid) else {
        return Ok(None);
    };
    let mut entity = known.to_json_value().map_err(|error| one_line(&error))?;
    let Some(attrs) = entity.get_mut("attrs").and_then(Value::as_object_mut) else {
        return Ok(None);
    };
    let mut changed = false;
    for name in claim_attributes {
        if let Some(value) = principal.attributes.get(name) {
            attrs.insert(name.clone(), value.to_json());
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    Node::parse(pack, entity).map(Some).map_err(|error| {
        format!(
            "the token's attributes do not fit the schema: {}",
            one_line(&error)
        )
    })
}

fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().replace('\n', " ")
}

/// For an entity named `<tenant>/<id>`, caller properties may not claim another tenant.
fn check_tenant_prefix(
    pack: &Pack,
    input: &EntityInput,
    properties: &Map<String, Value>,
) -> Result<(), String> {
    let (Some(tenancy), Some((prefix, _))) = (pack.tenancy(), input.id.split_once('/')) else {
        return Ok(());
    };
    let Some(claimed) = properties.get(&tenancy.attribute) else {
        return Ok(());
    };
    let claimed = claimed.get("__entity").unwrap_or(claimed);
    if claimed.get("id").and_then(Value::as_str) == Some(prefix) {
        Ok(())
    } else {
        Err(format!(
            "{}::{:?} is in tenant `{prefix}`, but its properties name {claimed}",
            input.entity_type, input.id
        ))
    }
}

fn entity_json(input: &EntityInput, properties: &Map<String, Value>) -> Value {
    json!({
        "uid": {"type": input.entity_type, "id": input.id},
        "attrs": properties,
        "parents": [],
    })
}

/// The entity of a token's principal: tenant, roles as parents, scopes and declared
/// attributes, each only where the schema declares it for the principal's type.
fn token_entity(pack: &Pack, principal: &Principal) -> Option<Value> {
    let shape = pack.entity_shape(&principal.entity_type);
    let declares =
        |attribute: &str| shape.is_none_or(|shape| shape.attributes.contains_key(attribute));
    let mut attrs = Map::new();
    if let (Some(tenancy), Some(tenant)) = (pack.tenancy(), &principal.tenant)
        && declares(&tenancy.attribute)
    {
        attrs.insert(
            tenancy.attribute.clone(),
            json!({"__entity": {"type": tenancy.tenant_type.to_string(), "id": tenant}}),
        );
    }
    if !principal.scopes.is_empty() && declares("scopes") {
        attrs.insert("scopes".to_owned(), json!(principal.scopes));
    }
    for (name, value) in &principal.attributes {
        if declares(name) {
            attrs.insert(name.clone(), value.to_json());
        }
    }
    let role_type = "Role";
    let may_have_roles = shape.is_none_or(|shape| shape.member_of.contains(role_type));
    let parents: Vec<Value> = if may_have_roles {
        principal
            .roles
            .iter()
            .map(|role| json!({"type": role_type, "id": role}))
            .collect()
    } else {
        Vec::new()
    };
    Some(json!({
        "uid": {"type": principal.entity_type, "id": principal.id},
        "attrs": attrs,
        "parents": parents,
    }))
}

/// The decision cache's key: every part of the input, each written with its length first (JSON
/// values as `serde_json` writes them), so two different inputs never share a key. The input
/// types are taken apart field by field without `..`: a field added to any of them does not
/// compile until it is part of the key. `None` for an input longer than the cache keeps.
fn cache_key(input: &DecisionInput<'_>) -> Option<Vec<u8>> {
    let DecisionInput {
        principal,
        action,
        resource,
        context,
    } = input;
    let mut key = KeyWriter {
        bytes: Vec::with_capacity(256),
        failed: false,
    };
    match principal {
        PrincipalInput::Token(principal) => {
            let Principal {
                entity_type,
                id,
                subject,
                tenant,
                roles,
                scopes,
                attributes,
            } = principal;
            key.tag(b'T');
            key.text(entity_type);
            key.text(id);
            key.text(subject);
            key.optional(tenant.as_deref(), KeyWriter::text);
            key.texts(roles);
            key.texts(scopes);
            key.count(attributes.len());
            for (name, value) in attributes {
                key.text(name);
                key.attribute(value);
            }
        }
        PrincipalInput::Named(subject) => {
            key.tag(b'N');
            key.entity(subject)?;
        }
    }
    key.text(action);
    key.entity(resource)?;
    key.optional(context.as_ref(), KeyWriter::json);
    (!key.failed && key.bytes.len() <= crate::decision_cache::MAX_KEY_BYTES).then_some(key.bytes)
}

/// Writes a cache key; `failed` when a part could not be written (such an input is not cached).
struct KeyWriter {
    bytes: Vec<u8>,
    failed: bool,
}

impl KeyWriter {
    fn tag(&mut self, tag: u8) {
        self.bytes.push(tag);
    }

    fn count(&mut self, count: usize) {
        self.bytes.extend_from_slice(&(count as u64).to_le_bytes());
    }

    fn text(&mut self, text: &str) {
        self.count(text.len());
        self.bytes.extend_from_slice(text.as_bytes());
    }

    fn texts(&mut self, texts: &[String]) {
        self.count(texts.len());
        for text in texts {
            self.text(text);
        }
    }

    fn optional<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.tag(0),
            Some(value) => {
                self.tag(1);
                write(self, value);
            }
        }
    }

    /// A JSON value, length first.
    fn json<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        let at = self.bytes.len();
        self.count(0);
        let start = self.bytes.len();
        if serde_json::to_writer(&mut self.bytes, value).is_err() {
            self.failed = true;
            return;
        }
        let length = (self.bytes.len() - start) as u64;
        if let Some(slot) = self.bytes.get_mut(at..start) {
            slot.copy_from_slice(&length.to_le_bytes());
        }
    }

    fn attribute(&mut self, value: &warden_token::AttributeValue) {
        use warden_token::AttributeValue;
        match value {
            AttributeValue::String(text) => {
                self.tag(b's');
                self.text(text);
            }
            AttributeValue::Long(number) => {
                self.tag(b'l');
                self.bytes.extend_from_slice(&number.to_le_bytes());
            }
            AttributeValue::Bool(flag) => {
                self.tag(b'b');
                self.tag(u8::from(*flag));
            }
            AttributeValue::StringSet(items) => {
                self.tag(b'S');
                self.texts(items);
            }
        }
    }

    /// Stops early (`None`) once the key is past the longest cached.
    fn entity(&mut self, entity: &EntityInput) -> Option<()> {
        let EntityInput {
            entity_type,
            id,
            properties,
        } = entity;
        self.text(entity_type);
        self.text(id);
        self.optional(properties.as_ref(), KeyWriter::json);
        (self.bytes.len() <= crate::decision_cache::MAX_KEY_BYTES).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(entity_type: &str, id: &str, properties: Option<Value>) -> EntityInput {
        EntityInput {
            entity_type: entity_type.to_owned(),
            id: id.to_owned(),
            properties: properties.and_then(|value| value.as_object().cloned()),
        }
    }

    fn named<'a>(
        subject: EntityInput,
        action: &str,
        resource: EntityInput,
        context: Option<Value>,
    ) -> DecisionInput<'a> {
        DecisionInput {
            principal: PrincipalInput::Named(subject),
            action: action.to_owned(),
            resource,
            context,
        }
    }

    fn key(input: &DecisionInput<'_>) -> Vec<u8> {
        cache_key(input).unwrap_or_default()
    }

    #[test]
    fn equal_inputs_share_a_key_and_different_ones_never_do() {
        let base = || {
            named(
                entity("User", "acme/carol", None),
                "read",
                entity("Document", "acme/roadmap", None),
                None,
            )
        };
        assert_eq!(key(&base()), key(&base()));
        assert!(!key(&base()).is_empty());
        let different = [
            // The same characters with the boundary between two parts moved.
            named(
                entity("Use", "racme/carol", None),
                "read",
                entity("Document", "acme/roadmap", None),
                None,
            ),
            named(
                entity("User", "acme/caro", None),
                "lread",
                entity("Document", "acme/roadmap", None),
                None,
            ),
            named(
                entity("User", "acme/carol", None),
                "readD",
                entity("ocument", "acme/roadmap", None),
                None,
            ),
            // Properties on one side or the other, or in the context instead.
            named(
                entity("User", "acme/carol", Some(json!({"a": 1}))),
                "read",
                entity("Document", "acme/roadmap", None),
                None,
            ),
            named(
                entity("User", "acme/carol", None),
                "read",
                entity("Document", "acme/roadmap", Some(json!({"a": 1}))),
                None,
            ),
            named(
                entity("User", "acme/carol", None),
                "read",
                entity("Document", "acme/roadmap", None),
                Some(json!({"a": 1})),
            ),
            // An empty object is not the absence of one.
            named(
                entity("User", "acme/carol", None),
                "read",
                entity("Document", "acme/roadmap", None),
                Some(json!({})),
            ),
            named(
                entity("User", "acme/carol", None),
                "read",
                entity("Document", "acme/roadmap", None),
                Some(json!({"a": "1"})),
            ),
        ];
        let mut keys: Vec<Vec<u8>> = different.iter().map(key).collect();
        keys.push(key(&base()));
        let count = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), count, "two different inputs shared a key");
    }

    #[test]
    fn every_claim_of_a_token_principal_is_part_of_the_key() {
        let carol = Principal {
            entity_type: "User".to_owned(),
            id: "acme/carol".to_owned(),
            subject: "carol".to_owned(),
            tenant: Some("acme".to_owned()),
            roles: vec!["viewer".to_owned()],
            scopes: vec![],
            attributes: std::collections::BTreeMap::new(),
        };
        let mut variants = vec![carol.clone()];
        let mut with = |change: &dyn Fn(&mut Principal)| {
            let mut principal = carol.clone();
            change(&mut principal);
            variants.push(principal);
        };
        with(&|p| p.roles = vec!["admin".to_owned()]);
        with(&|p| p.roles = vec!["viewer".to_owned(), "admin".to_owned()]);
        with(&|p| p.scopes = vec!["documents:read".to_owned()]);
        with(&|p| p.tenant = None);
        with(&|p| p.subject = "carol2".to_owned());
        with(&|p| {
            p.attributes
                .insert("mfa".to_owned(), warden_token::AttributeValue::Bool(true));
        });
        with(&|p| {
            p.attributes.insert(
                "mfa".to_owned(),
                warden_token::AttributeValue::String("true".to_owned()),
            );
        });
        let keys: Vec<Vec<u8>> = variants
            .iter()
            .map(|principal| {
                key(&DecisionInput {
                    principal: PrincipalInput::Token(principal),
                    action: "read".to_owned(),
                    resource: entity("Document", "acme/roadmap", None),
                    context: None,
                })
            })
            .collect();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "two principals shared a key");
        // A token principal and a named subject with the same type and id differ too.
        let named_carol = key(&named(
            entity("User", "acme/carol", None),
            "read",
            entity("Document", "acme/roadmap", None),
            None,
        ));
        assert!(!keys.contains(&named_carol));
    }

    #[test]
    fn inputs_longer_than_the_cache_keeps_get_no_key() {
        let long = "x".repeat(crate::decision_cache::MAX_KEY_BYTES);
        let input = named(
            entity("User", "acme/carol", None),
            "read",
            entity("Document", &long, None),
            None,
        );
        assert!(cache_key(&input).is_none());
    }
}
