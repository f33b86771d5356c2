//! Usage evidence for entitlement reviews (issue #24): which parents (roles, groups) helped
//! allow a decision for a principal, and when.
//!
//! On the decision path an allow only notes `(principal, determining policy) → (time, decision
//! id)` in a bounded map (one lock, one insert). Every 10 seconds [`EntitlementUsage::flush`]
//! turns each noted policy into the entity literals it names that the principal's type can be a
//! member of (`Role::"editor"` in `principal in Role::"editor"`), and writes the latest use per
//! principal and entity to the store. A review item's evidence is then the latest use of the
//! role it holds, or of any role above it in the hierarchy that a policy named.
//!
//! When more than [`MAX_PENDING`] distinct keys arrive between two flushes, new keys are dropped
//! and counted (`warden_entitlement_usage_dropped_total`): evidence can be missing, never wrong.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use warden_core::Pack;
use warden_core::cedar_policy::{EntityUid, PolicyId};
use warden_core::tenant_policies::TenantPolicies;
use warden_store::{EntitlementUse, Store, StoreError};

use crate::snapshot::Snapshot;

/// The most distinct `(principal, policy)` keys held between two flushes.
pub const MAX_PENDING: usize = 100_000;

type Key = (String, String, String);
/// `(principal, named entity)`, each as `(type, id)`.
type UseKey = ((String, String), (String, String));

/// Allows noted since the last flush.
#[derive(Debug, Default)]
pub struct EntitlementUsage {
    pending: Mutex<HashMap<Key, (i64, String)>>,
}

impl EntitlementUsage {
    /// Notes that `policies` allowed decision `decision_id` for `principal` at `now`.
    pub fn note<'a>(
        &self,
        principal: (&str, &str),
        policies: impl Iterator<Item = &'a PolicyId>,
        decision_id: &str,
        now: i64,
    ) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for policy in policies {
            let key = (
                principal.0.to_owned(),
                principal.1.to_owned(),
                policy.to_string(),
            );
            if let Some(entry) = pending.get_mut(&key) {
                *entry = (now, decision_id.to_owned());
            } else if pending.len() < MAX_PENDING {
                pending.insert(key, (now, decision_id.to_owned()));
            } else {
                metrics::counter!("warden_entitlement_usage_dropped_total").increment(1);
            }
        }
    }

    /// How many keys wait for the next flush.
    pub fn pending(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Writes what was noted to the store, against the pack and tenant policies in force.
    /// What cannot be written is put back for the next flush (newer notes win).
    pub async fn flush(&self, store: &Store, snapshot: &Snapshot) -> Result<usize, StoreError> {
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if pending.is_empty() {
            return Ok(0);
        }
        let uses = uses_of(&pending, &snapshot.pack, &snapshot.tenant_policies());
        match store.record_entitlement_usage(&uses).await {
            Ok(()) => Ok(uses.len()),
            Err(error) => {
                let mut now_pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                for (key, value) in pending {
                    if now_pending.len() >= MAX_PENDING {
                        break;
                    }
                    now_pending.entry(key).or_insert(value);
                }
                Err(error)
            }
        }
    }
}

/// The latest use per principal and named entity.
fn uses_of(
    pending: &HashMap<Key, (i64, String)>,
    pack: &Pack,
    tenant_policies: &TenantPolicies,
) -> Vec<EntitlementUse> {
    let mut literals: HashMap<&str, Vec<EntityUid>> = HashMap::new();
    let mut latest: HashMap<UseKey, (i64, &str)> = HashMap::new();
    for ((principal_type, principal_id, policy), (at, decision_id)) in pending {
        let named = literals
            .entry(policy.as_str())
            .or_insert_with(|| policy_literals(pack, tenant_policies, policy));
        for uid in named.iter() {
            let entity_type = uid.type_name().to_string();
            if !may_hold(pack, principal_type, &entity_type) {
                continue;
            }
            let key = (
                (principal_type.clone(), principal_id.clone()),
                (entity_type, uid.id().unescaped().to_owned()),
            );
            let entry = latest.entry(key).or_insert((*at, decision_id.as_str()));
            if *at > entry.0 {
                *entry = (*at, decision_id.as_str());
            }
        }
    }
    latest
        .into_iter()
        .map(|((principal, entity), (at, decision_id))| EntitlementUse {
            principal,
            entity,
            last_allowed_at: at,
            decision_id: decision_id.to_owned(),
        })
        .collect()
}

/// The entity literals of a pack policy or a tenant policy, by id.
fn policy_literals(pack: &Pack, tenant_policies: &TenantPolicies, id: &str) -> Vec<EntityUid> {
    if let Some(policy) = pack.policy(&PolicyId::new(id)) {
        return policy.entity_literals();
    }
    let Some((tenant, name)) = id
        .strip_prefix(warden_core::tenant_policies::TENANT_POLICY_PREFIX)
        .and_then(|rest| rest.split_once('/'))
    else {
        return Vec::new();
    };
    tenant_policies
        .of_tenant(tenant)
        .into_iter()
        .find(|policy| policy.name() == name)
        .map(|policy| policy.policy().entity_literals())
        .unwrap_or_default()
}

/// Whether a principal of `principal_type` can be a member of `entity_type` (with a schema: its
/// `in [...]`; without one: any type but actions).
fn may_hold(pack: &Pack, principal_type: &str, entity_type: &str) -> bool {
    match pack.schema() {
        Some(_) => pack
            .entity_shape(principal_type)
            .is_some_and(|shape| shape.member_of.contains(entity_type)),
        None => !entity_type.ends_with("Action"),
    }
}
