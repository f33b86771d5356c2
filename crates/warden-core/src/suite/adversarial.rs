//! The adversarial cases generated from a case expected to allow.
//!
//! Security matters here in spirit: these cases are how a policy author learns that a policy
//! forgot the tenant, trusts a role it should not, or lets a disabled or deleted principal in.
//! Each variant changes one thing in the entity data (or the resource) and must be denied:
//!
//! - `other_tenant`: the resource moved to another tenant with the same local id. The moved copy
//!   gets the id `<other>/<local id>` (the id convention makes `<tenant>/` part of every
//!   tenant-scoped id, so the same local id in another tenant is another entity) and its tenant
//!   attribute names `<other>`; every other attribute and parent is kept, so the tenant is the
//!   only difference. `<other>` is a synthetic tenant, a copy of the resource's tenant (same
//!   plan and attributes) under the id `<tenant>~other`, so no attribute of a real tenant (a
//!   free plan, say) can deny in the policies' stead. The original resource stays in the data.
//!   Keeping the id and flipping only the attribute was rejected: it builds an entity whose id
//!   and attribute disagree, which the id convention rules out, and Cedar policies cannot read
//!   ids, so it checks nothing the moved copy does not. This case passes only when the
//!   policies deny: a deny by the tenant guard alone fails it, because it means a permit would
//!   cross tenants but for the guard.
//! - `role_drift`: each direct parent of a type named `Role` removed, one at a time.
//! - `disabled`: the pack's `[lifecycle] status_attribute` set to `"disabled"` on the principal,
//!   with its roles kept (so only the status can deny).
//! - `deleted`: the principal removed from the entity data.
//! - `scope_drift`: each string of the principal's `scopes` set removed, one at a time.

use cedar_policy::{EntityId, EntityUid};
use serde_json::{Map, Value, json};

use crate::decision::{Outcome, ReasonCode};
use crate::pack::Pack;
use crate::uid::parse_uid_json;

use super::{Case, Decided};

/// The basename of the entity type whose direct membership `role_drift` removes.
pub const ROLE_TYPE: &str = "Role";
/// The `Set<String>` attribute whose elements `scope_drift` removes.
pub const SCOPES_ATTRIBUTE: &str = "scopes";
/// The status `disabled` gives the principal.
pub const DISABLED_STATUS: &str = "disabled";

/// An invariant checked by generated cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attack {
    /// The resource moved to another tenant with the same local id.
    OtherTenant,
    /// One of the principal's roles removed.
    RoleDrift,
    /// The principal disabled.
    Disabled,
    /// The principal deleted.
    Deleted,
    /// One of the principal's scopes removed.
    ScopeDrift,
}

impl Attack {
    /// Every attack, in the order they are generated and reported.
    pub const ALL: [Attack; 5] = [
        Attack::OtherTenant,
        Attack::RoleDrift,
        Attack::Disabled,
        Attack::Deleted,
        Attack::ScopeDrift,
    ];

    /// The name used in suites (`adversarial: {skip: [...]}`) and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Attack::OtherTenant => "other_tenant",
            Attack::RoleDrift => "role_drift",
            Attack::Disabled => "disabled",
            Attack::Deleted => "deleted",
            Attack::ScopeDrift => "scope_drift",
        }
    }

    /// The name as [`Attack::as_str`] gives it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|attack| attack.as_str() == text)
    }

    /// The invariant, in one sentence.
    pub fn invariant(self) -> &'static str {
        match self {
            Attack::OtherTenant => {
                "another tenant's resource with the same local id is denied by the policies"
            }
            Attack::RoleDrift => "without any one of its roles, the principal is denied",
            Attack::Disabled => "a disabled principal is denied",
            Attack::Deleted => "a principal deleted from the entity data is denied",
            Attack::ScopeDrift => "without any one of its scopes, the principal is denied",
        }
    }
}

/// One generated request: the resource (moved, for `other_tenant`) and the changed entities.
#[derive(Clone, Debug)]
pub(crate) struct Variant {
    pub label: String,
    pub resource: EntityUid,
    pub entities: Vec<Value>,
}

/// The variants of `case` for `attack`; `Err` says why there are none.
pub(crate) fn variants(
    pack: &Pack,
    entities: &[Value],
    case: &Case,
    attack: Attack,
) -> Result<Vec<Variant>, String> {
    match attack {
        Attack::OtherTenant => other_tenant(pack, entities, &case.resource).map(|v| vec![v]),
        Attack::RoleDrift => role_drift(entities, case),
        Attack::Disabled => disabled(pack, entities, case).map(|v| vec![v]),
        Attack::Deleted => deleted(entities, case).map(|v| vec![v]),
        Attack::ScopeDrift => scope_drift(entities, case),
    }
}

/// `None` when the generated case passed, else the problem in one sentence.
pub(crate) fn judge(attack: Attack, decided: &Decided) -> Option<String> {
    match (decided.outcome, decided.decision.as_ref()) {
        (Outcome::Allow, _) => Some(format!(
            "expected deny, got allow ({}): {} does not hold",
            decided.reason,
            attack.invariant()
        )),
        (Outcome::Deny, Some(decision))
            if attack == Attack::OtherTenant
                && matches!(
                    decision.reason,
                    ReasonCode::TenantBoundary | ReasonCode::TenantMissing
                ) =>
        {
            let permits: Vec<String> = decision
                .determining
                .iter()
                .map(|policy| format!("`{}`", policy.id))
                .collect();
            Some(format!(
                "denied only by the tenant guard ({}): the policies permit it through {}, which do not compare the tenants (e.g. `resource.tenant == principal.tenant`)",
                decision.reason.as_str(),
                permits.join(", ")
            ))
        }
        (Outcome::Deny, _) => None,
    }
}

fn other_tenant(pack: &Pack, entities: &[Value], resource: &EntityUid) -> Result<Variant, String> {
    let tenancy = pack
        .tenancy()
        .ok_or_else(|| "the pack has no [tenancy]".to_owned())?;
    let mut list = entities.to_vec();
    let resource_entity = if resource.type_name() == &tenancy.tenant_type {
        None
    } else {
        let entity = find(&list, resource)
            .ok_or_else(|| "the resource is not in the entity data".to_owned())?;
        Some(entity.clone())
    };
    let tenant = match &resource_entity {
        None => resource.clone(),
        Some(entity) => entity
            .get("attrs")
            .and_then(|attrs| attrs.get(&tenancy.attribute))
            .and_then(|value| parse_uid_json(value).ok())
            .filter(|tenant| tenant.type_name() == &tenancy.tenant_type)
            .ok_or_else(|| {
                format!(
                    "the resource has no `{}` attribute naming a tenant",
                    tenancy.attribute
                )
            })?,
    };
    let tenant_id = tenant.id().unescaped().to_owned();
    let resource_id = resource.id().unescaped();
    let local_id = resource_id
        .strip_prefix(&format!("{tenant_id}/"))
        .unwrap_or(resource_id);
    // A tenant id no entity uses, for the tenant and for the moved resource.
    let (other_tenant, moved) = (0u32..)
        .map(|n| {
            let other_id = match n {
                0 => format!("{tenant_id}~other"),
                n => format!("{tenant_id}~other{n}"),
            };
            let other_tenant = uid(&tenancy.tenant_type, &other_id);
            let moved = uid(resource.type_name(), &format!("{other_id}/{local_id}"));
            (other_tenant, moved)
        })
        .find(|(other_tenant, moved)| {
            find(&list, other_tenant).is_none() && find(&list, moved).is_none()
        })
        .ok_or_else(|| "no free tenant id".to_owned())?;

    // The other tenant is a copy of the resource's tenant: only its identity differs.
    let mut other_tenant_entity = find(&list, &tenant)
        .cloned()
        .unwrap_or_else(|| json!({"attrs": {}, "parents": []}));
    set_field(&mut other_tenant_entity, "uid", uid_json(&other_tenant));
    list.push(other_tenant_entity);

    let new_resource = match resource_entity {
        None => other_tenant.clone(),
        Some(mut entity) => {
            set_field(&mut entity, "uid", uid_json(&moved));
            if let Some(attrs) = attrs_mut(&mut entity) {
                attrs.insert(
                    tenancy.attribute.clone(),
                    json!({"__entity": uid_json(&other_tenant)}),
                );
            }
            list.push(entity);
            moved
        }
    };
    Ok(Variant {
        label: format!("resource {new_resource} of {other_tenant}"),
        resource: new_resource,
        entities: list,
    })
}

fn role_drift(entities: &[Value], case: &Case) -> Result<Vec<Variant>, String> {
    let principal = find(entities, &case.principal)
        .ok_or_else(|| "the principal is not in the entity data".to_owned())?;
    let roles: Vec<(usize, EntityUid)> = principal
        .get("parents")
        .and_then(Value::as_array)
        .map(|parents| {
            parents
                .iter()
                .enumerate()
                .filter_map(|(index, parent)| {
                    parse_uid_json(parent)
                        .ok()
                        .filter(|parent| parent.type_name().basename() == ROLE_TYPE)
                        .map(|parent| (index, parent))
                })
                .collect()
        })
        .unwrap_or_default();
    if roles.is_empty() {
        return Err(format!(
            "the principal has no direct parent of type {ROLE_TYPE}"
        ));
    }
    Ok(roles
        .into_iter()
        .map(|(index, role)| {
            let mut list = entities.to_vec();
            if let Some(parents) = find_mut(&mut list, &case.principal)
                .and_then(|principal| principal.get_mut("parents"))
                .and_then(Value::as_array_mut)
                && index < parents.len()
            {
                parents.remove(index);
            }
            Variant {
                label: format!("without {role}"),
                resource: case.resource.clone(),
                entities: list,
            }
        })
        .collect())
}

fn disabled(pack: &Pack, entities: &[Value], case: &Case) -> Result<Variant, String> {
    let lifecycle = pack
        .lifecycle()
        .ok_or_else(|| "pack.toml has no [lifecycle] status_attribute".to_owned())?;
    let mut list = entities.to_vec();
    let principal = find_mut(&mut list, &case.principal)
        .ok_or_else(|| "the principal is not in the entity data".to_owned())?;
    attrs_mut(principal)
        .ok_or_else(|| "the principal's entity data is not an object".to_owned())?
        .insert(
            lifecycle.status_attribute.clone(),
            Value::String(DISABLED_STATUS.to_owned()),
        );
    Ok(Variant {
        label: format!("{} = \"{DISABLED_STATUS}\"", lifecycle.status_attribute),
        resource: case.resource.clone(),
        entities: list,
    })
}

fn deleted(entities: &[Value], case: &Case) -> Result<Variant, String> {
    let before = entities.len();
    let list: Vec<Value> = entities
        .iter()
        .filter(|entity| entity_uid(entity).as_ref() != Some(&case.principal))
        .cloned()
        .collect();
    if list.len() == before {
        return Err("the principal is not in the entity data".to_owned());
    }
    Ok(Variant {
        label: format!("{} removed from the entity data", case.principal),
        resource: case.resource.clone(),
        entities: list,
    })
}

fn scope_drift(entities: &[Value], case: &Case) -> Result<Vec<Variant>, String> {
    let principal = find(entities, &case.principal)
        .ok_or_else(|| "the principal is not in the entity data".to_owned())?;
    let scopes: Vec<Value> = principal
        .get("attrs")
        .and_then(|attrs| attrs.get(SCOPES_ATTRIBUTE))
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| format!("the principal has no `{SCOPES_ATTRIBUTE}` attribute"))?;
    if scopes.is_empty() {
        return Err("the principal has no scopes".to_owned());
    }
    Ok(scopes
        .iter()
        .enumerate()
        .map(|(index, scope)| {
            let mut list = entities.to_vec();
            if let Some(set) = find_mut(&mut list, &case.principal)
                .and_then(|principal| principal.get_mut("attrs"))
                .and_then(|attrs| attrs.get_mut(SCOPES_ATTRIBUTE))
                .and_then(Value::as_array_mut)
                && index < set.len()
            {
                set.remove(index);
            }
            Variant {
                label: format!("without scope {scope}"),
                resource: case.resource.clone(),
                entities: list,
            }
        })
        .collect())
}

fn entity_uid(entity: &Value) -> Option<EntityUid> {
    entity.get("uid").and_then(|uid| parse_uid_json(uid).ok())
}

fn find<'a>(entities: &'a [Value], uid: &EntityUid) -> Option<&'a Value> {
    entities
        .iter()
        .find(|entity| entity_uid(entity).as_ref() == Some(uid))
}

fn find_mut<'a>(entities: &'a mut [Value], uid: &EntityUid) -> Option<&'a mut Value> {
    entities
        .iter_mut()
        .find(|entity| entity_uid(entity).as_ref() == Some(uid))
}

fn uid(type_name: &cedar_policy::EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

fn uid_json(uid: &EntityUid) -> Value {
    json!({"type": uid.type_name().to_string(), "id": uid.id().unescaped()})
}

fn set_field(entity: &mut Value, key: &str, value: Value) {
    if let Some(object) = entity.as_object_mut() {
        object.insert(key.to_owned(), value);
    }
}

/// The entity's `attrs` object, created when absent; `None` only for a non-object entity.
fn attrs_mut(entity: &mut Value) -> Option<&mut Map<String, Value>> {
    let attrs = entity
        .as_object_mut()?
        .entry("attrs")
        .or_insert_with(|| Value::Object(Map::new()));
    if !attrs.is_object() {
        *attrs = Value::Object(Map::new());
    }
    attrs.as_object_mut()
}
