//! The policy index: which policies can apply to a request, found from its principal, action
//! and resource instead of by evaluating every policy.
//!
//! SECURITY-SENSITIVE: a policy the index leaves out is never evaluated, so leaving out one
//! that could apply would change decisions. The rule is Cedar's scope semantics and nothing
//! else:
//! - `principal == E` holds only when the principal is `E`;
//! - `principal in E` (and `principal is T in E`) holds only when `E` is the principal or one
//!   of its ancestors in the entities the decision is made against (for an entity missing
//!   from them, only itself);
//! - `principal is T` holds only when the principal's type is `T`;
//! - the same for `resource`; the action scope as in the schema's action hierarchy.
//!
//! Each policy is filed under one anchor its scope requires (an entity of its principal scope,
//! else of its resource scope, else a type of either); a policy with an open scope is filed as
//! open and always taken. A request looks up its principal, the principal's ancestors and
//! type, and the same for its resource: every policy whose scope can hold is found, and a few
//! that turn out not to hold are evaluated and are false, as they would be in the whole set.
//! Scope conditions cannot fail, so a policy left out for its scope would not have reported an
//! error either. The differential tests (`tests/integration/policy_index.rs`) hold this against
//! the whole set on random packs, entities and requests.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Entities, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint,
    Request, ResourceConstraint, Schema,
};

/// A policy with what the index and the entity slicing need to know of it.
#[derive(Debug)]
pub struct IndexedPolicy {
    policy: Policy,
    literals: Box<[EntityUid]>,
}

impl IndexedPolicy {
    /// Reads a policy's condition literals: every entity literal of a policy with a `when` or
    /// `unless` clause (the scope's own literals among them: a condition may name the same
    /// entity), none for a scope-only policy (a scope reads the request's entities, never the
    /// literal's data). Read from the AST: a policy's JSON form would parse its text again.
    pub fn new(policy: Policy) -> IndexedPolicy {
        let mut literals = if policy.has_non_scope_constraint() {
            policy.entity_literals()
        } else {
            Vec::new()
        };
        literals.sort();
        literals.dedup();
        IndexedPolicy {
            policy,
            literals: literals.into_boxed_slice(),
        }
    }

    /// The Cedar policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The entities its conditions name (`User::"alice"` in `when { … }`): an evaluation may
    /// read their attributes or ancestors, so a decision's entities must include them.
    pub fn literals(&self) -> &[EntityUid] {
        &self.literals
    }
}

/// Where a policy is filed: the one scope element every request it applies to must match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Anchor {
    Open,
    Principal(EntityUid),
    Resource(EntityUid),
    PrincipalType(EntityTypeName),
    ResourceType(EntityTypeName),
}

fn anchor_of(policy: &Policy) -> Anchor {
    let principal = policy.principal_constraint();
    let resource = policy.resource_constraint();
    match (principal, resource) {
        (PrincipalConstraint::Eq(uid) | PrincipalConstraint::In(uid), _)
        | (PrincipalConstraint::IsIn(_, uid), _) => Anchor::Principal(uid),
        (_, ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid))
        | (_, ResourceConstraint::IsIn(_, uid)) => Anchor::Resource(uid),
        (PrincipalConstraint::Is(type_name), _) => Anchor::PrincipalType(type_name),
        (_, ResourceConstraint::Is(type_name)) => Anchor::ResourceType(type_name),
        (PrincipalConstraint::Any, ResourceConstraint::Any) => Anchor::Open,
    }
}

/// One action's policies, filed by anchor.
#[derive(Debug, Default, Clone)]
struct Filed {
    open: Vec<Arc<IndexedPolicy>>,
    principal: HashMap<EntityUid, Vec<Arc<IndexedPolicy>>>,
    resource: HashMap<EntityUid, Vec<Arc<IndexedPolicy>>>,
    principal_type: HashMap<EntityTypeName, Vec<Arc<IndexedPolicy>>>,
    resource_type: HashMap<EntityTypeName, Vec<Arc<IndexedPolicy>>>,
}

impl Filed {
    fn insert(&mut self, anchor: &Anchor, policy: Arc<IndexedPolicy>) {
        match anchor {
            Anchor::Open => self.open.push(policy),
            Anchor::Principal(uid) => self.principal.entry(uid.clone()).or_default().push(policy),
            Anchor::Resource(uid) => self.resource.entry(uid.clone()).or_default().push(policy),
            Anchor::PrincipalType(name) => self
                .principal_type
                .entry(name.clone())
                .or_default()
                .push(policy),
            Anchor::ResourceType(name) => self
                .resource_type
                .entry(name.clone())
                .or_default()
                .push(policy),
        }
    }

    fn remove(&mut self, anchor: &Anchor, policy: &Arc<IndexedPolicy>) {
        fn drop_from<K: std::hash::Hash + Eq>(
            map: &mut HashMap<K, Vec<Arc<IndexedPolicy>>>,
            key: &K,
            policy: &Arc<IndexedPolicy>,
        ) {
            if let Some(list) = map.get_mut(key) {
                list.retain(|kept| !Arc::ptr_eq(kept, policy));
                if list.is_empty() {
                    map.remove(key);
                }
            }
        }
        match anchor {
            Anchor::Open => self.open.retain(|kept| !Arc::ptr_eq(kept, policy)),
            Anchor::Principal(uid) => drop_from(&mut self.principal, uid, policy),
            Anchor::Resource(uid) => drop_from(&mut self.resource, uid, policy),
            Anchor::PrincipalType(name) => drop_from(&mut self.principal_type, name, policy),
            Anchor::ResourceType(name) => drop_from(&mut self.resource_type, name, policy),
        }
    }

    fn has_anchored(&self) -> bool {
        !(self.principal.is_empty()
            && self.resource.is_empty()
            && self.principal_type.is_empty()
            && self.resource_type.is_empty())
    }

    /// Every anchored policy whose anchor the request matches, each once.
    fn matching<'a>(
        &'a self,
        request: &Request,
        entities: &Entities,
        into: &mut Vec<&'a Arc<IndexedPolicy>>,
    ) {
        if !self.has_anchored() {
            return;
        }
        let before = into.len();
        if let Some(principal) = request.principal() {
            collect(&self.principal, principal, into);
            if let Some(ancestors) = entities.ancestors(principal) {
                for ancestor in ancestors {
                    collect(&self.principal, ancestor, into);
                }
            }
            collect(&self.principal_type, principal.type_name(), into);
        } else {
            // A partial request (never built by Warden): take every anchored policy.
            into.extend(self.principal.values().flatten());
            into.extend(self.principal_type.values().flatten());
        }
        if let Some(resource) = request.resource() {
            collect(&self.resource, resource, into);
            if let Some(ancestors) = entities.ancestors(resource) {
                for ancestor in ancestors {
                    collect(&self.resource, ancestor, into);
                }
            }
            collect(&self.resource_type, resource.type_name(), into);
        } else {
            into.extend(self.resource.values().flatten());
            into.extend(self.resource_type.values().flatten());
        }
        // An entity that is its own ancestor (a cycle) would find its policies twice.
        if into.len() - before > 1 {
            let mut seen = HashSet::with_capacity(into.len() - before);
            let mut position = before;
            while position < into.len() {
                let Some(policy) = into.get(position) else {
                    break;
                };
                if seen.insert(Arc::as_ptr(policy)) {
                    position += 1;
                } else {
                    into.swap_remove(position);
                }
            }
        }
    }
}

fn collect<'a, K, Q>(
    map: &'a HashMap<K, Vec<Arc<IndexedPolicy>>>,
    key: &Q,
    into: &mut Vec<&'a Arc<IndexedPolicy>>,
) where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(found) = map.get(key) {
        into.extend(found.iter());
    }
}

/// Which of the schema's actions each action constraint can match.
#[derive(Debug, Clone, Default)]
pub struct ActionMap {
    /// Each declared action with its ancestors (the groups it is in), itself included.
    actions: Vec<(EntityUid, HashSet<EntityUid>)>,
}

impl ActionMap {
    /// The schema's actions; empty without a schema (every request then uses the fallback).
    pub fn of(schema: Option<&Schema>) -> ActionMap {
        let Some(schema) = schema else {
            return ActionMap::default();
        };
        let Ok(action_entities) = schema.action_entities() else {
            return ActionMap::default();
        };
        let actions = schema
            .actions()
            .map(|action| {
                let mut groups: HashSet<EntityUid> = action_entities
                    .ancestors(action)
                    .map(|ancestors| ancestors.cloned().collect())
                    .unwrap_or_default();
                groups.insert(action.clone());
                (action.clone(), groups)
            })
            .collect();
        ActionMap { actions }
    }

    /// True for an action of the schema. A request for any other action (or any request
    /// without a schema) is decided against every policy.
    pub(crate) fn declares(&self, action: &EntityUid) -> bool {
        self.actions.iter().any(|(known, _)| known == action)
    }

    fn matching<'a>(&'a self, policy: &Policy) -> impl Iterator<Item = &'a EntityUid> {
        let constraint = policy.action_constraint();
        self.actions.iter().filter_map(move |(action, groups)| {
            let can_match = match &constraint {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(only) => only == action,
                ActionConstraint::In(listed) => listed.iter().any(|group| groups.contains(group)),
            };
            can_match.then_some(action)
        })
    }
}

/// Policies filed by action and anchor. The pack holds one, built once; the tenants' policies
/// are held in one per tenant, changed a policy at a time.
#[derive(Debug, Default, Clone)]
pub struct PolicyIndex {
    by_action: HashMap<EntityUid, Filed>,
    /// For actions the schema does not declare (and packs without a schema): every policy.
    every: Filed,
    len: usize,
}

impl PolicyIndex {
    /// Files a policy under each action it can match.
    pub fn insert(&mut self, actions: &ActionMap, policy: Arc<IndexedPolicy>) {
        let anchor = anchor_of(policy.policy());
        for action in actions.matching(policy.policy()) {
            self.by_action
                .entry(action.clone())
                .or_default()
                .insert(&anchor, Arc::clone(&policy));
        }
        self.every.insert(&anchor, policy);
        self.len += 1;
    }

    /// Removes a policy filed by [`PolicyIndex::insert`] (the same `Arc`).
    pub fn remove(&mut self, actions: &ActionMap, policy: &Arc<IndexedPolicy>) {
        let anchor = anchor_of(policy.policy());
        for action in actions.matching(policy.policy()) {
            if let Some(filed) = self.by_action.get_mut(action) {
                filed.remove(&anchor, policy);
                if filed.open.is_empty() && !filed.has_anchored() {
                    self.by_action.remove(action);
                }
            }
        }
        self.every.remove(&anchor, policy);
        self.len = self.len.saturating_sub(1);
    }

    /// How many policies are filed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no policy is filed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn filed_for(&self, actions: &ActionMap, action: Option<&EntityUid>) -> Option<&Filed> {
        match action {
            Some(action) if actions.declares(action) => self.by_action.get(action),
            _ => Some(&self.every),
        }
    }

    /// Adds to `into` every policy of this index that can apply to the request: the open ones
    /// and those whose anchor the request matches, each once.
    pub fn select<'a>(
        &'a self,
        actions: &ActionMap,
        request: &Request,
        entities: &Entities,
        into: &mut Vec<&'a Arc<IndexedPolicy>>,
    ) {
        if let Some(filed) = self.filed_for(actions, request.action()) {
            into.extend(filed.open.iter());
            filed.matching(request, entities, into);
        }
    }

    /// Adds every policy that can apply to a request of `principal` and `action` on some
    /// resource of `resource_type` (the resource unknown, as for a data-filter plan): the open
    /// ones, those anchored on the principal, its ancestors or its type, every one anchored on a
    /// resource entity (any resource may be in it), and those anchored on `resource_type`.
    pub fn select_for_resource_type<'a>(
        &'a self,
        actions: &ActionMap,
        principal: &EntityUid,
        action: &EntityUid,
        resource_type: &EntityTypeName,
        entities: &Entities,
        into: &mut Vec<&'a Arc<IndexedPolicy>>,
    ) {
        let Some(filed) = self.filed_for(actions, Some(action)) else {
            return;
        };
        let before = into.len();
        into.extend(filed.open.iter());
        collect(&filed.principal, principal, into);
        if let Some(ancestors) = entities.ancestors(principal) {
            for ancestor in ancestors {
                collect(&filed.principal, ancestor, into);
            }
        }
        collect(&filed.principal_type, principal.type_name(), into);
        into.extend(filed.resource.values().flatten());
        collect(&filed.resource_type, resource_type, into);
        let mut seen = HashSet::with_capacity(into.len() - before);
        let mut position = before;
        while position < into.len() {
            let Some(policy) = into.get(position) else {
                break;
            };
            if seen.insert(Arc::as_ptr(policy)) {
                position += 1;
            } else {
                into.swap_remove(position);
            }
        }
    }

    /// Adds the anchored policies only (the pack keeps its open ones as a ready set).
    pub(crate) fn select_anchored<'a>(
        &'a self,
        actions: &ActionMap,
        request: &Request,
        entities: &Entities,
        into: &mut Vec<&'a Arc<IndexedPolicy>>,
    ) {
        if let Some(filed) = self.filed_for(actions, request.action()) {
            filed.matching(request, entities, into);
        }
    }

    /// The open policies of one action, or of the fallback for an undeclared one.
    pub(crate) fn open_for(
        &self,
        actions: &ActionMap,
        action: Option<&EntityUid>,
    ) -> &[Arc<IndexedPolicy>] {
        self.filed_for(actions, action)
            .map_or(&[], |filed| filed.open.as_slice())
    }

    /// Every action the index holds policies for, with its open policies.
    pub(crate) fn open_by_action(
        &self,
    ) -> impl Iterator<Item = (&EntityUid, &[Arc<IndexedPolicy>])> {
        self.by_action
            .iter()
            .map(|(action, filed)| (action, filed.open.as_slice()))
    }
}

/// A policy set of the given policies (ids are unique by construction; a clash would be a
/// bug, and is reported rather than dropped).
pub(crate) fn policy_set_of<'a>(
    policies: impl IntoIterator<Item = &'a Arc<IndexedPolicy>>,
) -> Result<PolicySet, Box<cedar_policy::PolicySetError>> {
    let mut set = PolicySet::new();
    for indexed in policies {
        set.add(indexed.policy().clone()).map_err(Box::new)?;
    }
    Ok(set)
}
