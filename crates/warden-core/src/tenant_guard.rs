//! The tenant guard: an invariant that sits outside every policy.
//!
//! SECURITY-SENSITIVE. After Cedar allows, a pack with `[tenancy]` also requires that the
//! principal and the resource carry the tenant attribute (a reference to a tenant entity), and
//! that both name the same tenant, unless every permit that determined the allow is marked
//! `@cross_tenant("reason")`. The guard only ever turns an allow into a deny. An entity of the
//! tenant type is its own tenant, so `Tenant::"acme"` as a resource belongs to `acme`.
//! Tests: `tests/tenant_guard.rs`.

use std::sync::Arc;

use cedar_policy::{Entities, EntityUid, EvalResult, PolicyId};

use crate::pack::{Pack, Tenancy};

/// Which side of the request a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The principal.
    Principal,
    /// The resource.
    Resource,
}

impl Side {
    /// `principal` or `resource`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Principal => "principal",
            Side::Resource => "resource",
        }
    }
}

/// Why an entity has no usable tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissingTenant {
    /// The entity is not in the entity data at all.
    UnknownEntity,
    /// The entity has no tenant attribute.
    NoAttribute,
    /// The attribute is there but is not a reference to a tenant entity.
    NotATenant(String),
}

/// The guard turned an allow into a deny.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantViolation {
    /// The principal or the resource has no tenant.
    Missing {
        /// Which side.
        side: Side,
        /// The entity without a tenant.
        entity: EntityUid,
        /// What is wrong with it.
        problem: MissingTenant,
    },
    /// Different tenants, and some determining permit is not marked `@cross_tenant`.
    Boundary {
        /// The principal's tenant.
        principal_tenant: EntityUid,
        /// The resource's tenant.
        resource_tenant: EntityUid,
        /// The determining permits without `@cross_tenant`.
        unmarked_permits: Vec<PolicyId>,
    },
    /// The request has no concrete principal or resource (never built by Warden itself).
    PartialRequest,
}

/// An allowed cross-tenant access: always reported with the reasons of the grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossTenantGrant {
    /// The principal's tenant.
    pub principal_tenant: EntityUid,
    /// The resource's tenant.
    pub resource_tenant: EntityUid,
    /// Each determining permit and its `@cross_tenant` reason.
    pub grants: Vec<(PolicyId, Arc<str>)>,
}

/// The guard's verdict on an allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GuardVerdict {
    SameTenant,
    CrossTenant(CrossTenantGrant),
    Violation(TenantViolation),
}

/// The tenant of an entity: its tenant attribute, or itself for an entity of the tenant type.
pub fn tenant_of(
    tenancy: &Tenancy,
    uid: &EntityUid,
    entities: &Entities,
) -> Result<EntityUid, MissingTenant> {
    if uid.type_name() == &tenancy.tenant_type {
        return Ok(uid.clone());
    }
    let entity = entities.get(uid).ok_or(MissingTenant::UnknownEntity)?;
    match entity.attr(&tenancy.attribute) {
        None => Err(MissingTenant::NoAttribute),
        Some(Ok(EvalResult::EntityUid(tenant))) if tenant.type_name() == &tenancy.tenant_type => {
            Ok(tenant)
        }
        Some(Ok(other)) => Err(MissingTenant::NotATenant(other.to_string())),
        Some(Err(_)) => Err(MissingTenant::NotATenant("an unknown value".to_owned())),
    }
}

pub(crate) fn check(
    tenancy: &Tenancy,
    pack: &Pack,
    principal: &EntityUid,
    resource: &EntityUid,
    entities: &Entities,
    determining_permits: &[PolicyId],
) -> GuardVerdict {
    let principal_tenant = match tenant_of(tenancy, principal, entities) {
        Ok(tenant) => tenant,
        Err(problem) => {
            return GuardVerdict::Violation(TenantViolation::Missing {
                side: Side::Principal,
                entity: principal.clone(),
                problem,
            });
        }
    };
    let resource_tenant = match tenant_of(tenancy, resource, entities) {
        Ok(tenant) => tenant,
        Err(problem) => {
            return GuardVerdict::Violation(TenantViolation::Missing {
                side: Side::Resource,
                entity: resource.clone(),
                problem,
            });
        }
    };
    if principal_tenant == resource_tenant {
        return GuardVerdict::SameTenant;
    }
    let mut grants = Vec::with_capacity(determining_permits.len());
    let mut unmarked_permits = Vec::new();
    for policy_id in determining_permits {
        match pack
            .policy_info(policy_id)
            .and_then(|info| info.cross_tenant.clone())
        {
            Some(reason) => grants.push((policy_id.clone(), reason)),
            None => unmarked_permits.push(policy_id.clone()),
        }
    }
    if unmarked_permits.is_empty() && !grants.is_empty() {
        GuardVerdict::CrossTenant(CrossTenantGrant {
            principal_tenant,
            resource_tenant,
            grants,
        })
    } else {
        GuardVerdict::Violation(TenantViolation::Boundary {
            principal_tenant,
            resource_tenant,
            unmarked_permits,
        })
    }
}
