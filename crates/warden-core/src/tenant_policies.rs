//! Tenant-managed policies: Cedar policies a tenant's administrator writes, checked against the
//! pack before they are accepted, and held per tenant in policy indexes.
//!
//! SECURITY-SENSITIVE. A tenant's policy:
//! - is one static policy, validated against the pack's schema in strict mode;
//! - names only its own tenant's entities: ids `<tenant>/…`, the tenant entity itself, and
//!   actions (an entity of another tenant, or of no tenant, is refused);
//! - cannot cross tenants (`@cross_tenant` is refused, and the guard treats its permits as
//!   unmarked);
//! - takes part only in decisions about its tenant: all of its policies when the principal and
//!   the resource are both in the tenant; only its forbids when the resource is in the tenant
//!   and the principal in another (the data owner's protections hold against cross-tenant
//!   grants; a tenant's policies never read another tenant's resources);
//! - fails closed: a tenant forbid that cannot be evaluated denies (where Cedar would skip it),
//!   so a schema change that breaks it cannot open what it closed;
//! - is bounded: [`MAX_TEXT_BYTES`], [`MAX_LITERALS`], [`MAX_NESTING`], and
//!   [`MAX_POLICIES_PER_TENANT`] (enforced by the store write);
//! - has the id `tenant/<tenant>/<name>`, which no pack policy may take.
//!
//! Tests: the unit tests below, and `crates/warden-server/tests/server/tenant_policies.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use cedar_policy::{
    Effect, Entities, EntityUid, Policy, PolicyId, PolicySet, PrincipalConstraint, Request,
    ResourceConstraint, ValidationMode, Validator,
};

use crate::pack::diagnostics::flatten_miette;
use crate::pack::index::{IndexedPolicy, PolicyIndex};
use crate::pack::{Pack, PackDiagnostic, Selection, Severity};
use crate::tenant_guard::tenant_of;

/// The prefix of every tenant policy's id.
pub const TENANT_POLICY_PREFIX: &str = "tenant/";

/// The longest policy name accepted.
pub const MAX_NAME_CHARS: usize = 128;
/// The largest policy text accepted (bytes). A decision that selects a tenant policy copies
/// its text into the set it evaluates, so this bounds what one policy costs a request.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;
/// The most entity literals one policy may name (each is a root of the decision's entities).
pub const MAX_LITERALS: usize = 100;
/// The most policies one tenant may keep.
pub const MAX_POLICIES_PER_TENANT: usize = 1000;
/// The deepest nesting of brackets, and the longest run of unary operators or `if`s, accepted:
/// Cedar's parser converts nesting recursively, without a limit of its own, and a stack
/// overflow would end the process rather than refuse the policy.
pub const MAX_NESTING: usize = 32;

/// A tenant policy that was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantPolicyError {
    /// The pack has no `[tenancy]` or no schema: tenant policies cannot be scoped or checked.
    #[error("{0}")]
    Unsupported(String),
    /// The name is not 1 to 128 characters of `A-Z a-z 0-9 . _ -`.
    #[error("`{0}` is not a policy name (1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `-`)")]
    Name(String),
    /// The text does not parse, is not one static policy, names another tenant's entities,
    /// or does not validate against the schema: every problem, with `file:line:column`.
    #[error("the policy is invalid: {}", first(.0))]
    Invalid(Vec<PackDiagnostic>),
}

fn first(diagnostics: &[PackDiagnostic]) -> String {
    diagnostics
        .iter()
        .find(|d| d.is_error())
        .map_or_else(|| "unknown".to_owned(), ToString::to_string)
}

/// The id a tenant policy decides under.
pub fn tenant_policy_id(tenant: &str, name: &str) -> PolicyId {
    PolicyId::new(format!("{TENANT_POLICY_PREFIX}{tenant}/{name}"))
}

/// A checked tenant policy, ready to be indexed.
#[derive(Debug, Clone)]
pub struct TenantPolicy {
    tenant: Arc<str>,
    name: Arc<str>,
    text: Arc<str>,
    indexed: Arc<IndexedPolicy>,
}

impl TenantPolicy {
    /// Checks `text` as tenant `tenant`'s policy `name` against the pack.
    pub fn check(
        pack: &Pack,
        tenant: &str,
        name: &str,
        text: &str,
    ) -> Result<TenantPolicy, TenantPolicyError> {
        let policy = parse_checked(pack, tenant, name, text, true)?;
        Ok(TenantPolicy::from_policy(tenant, name, text, policy))
    }

    /// A stored policy, read again (after a restart or a pack reload): parsed and scoped as
    /// when it was accepted, but not refused for a schema change since (a policy that no
    /// longer fits the schema fails at evaluation, as a pack policy would; `warden validate`
    /// reports it).
    pub fn reload(
        pack: &Pack,
        tenant: &str,
        name: &str,
        text: &str,
    ) -> Result<TenantPolicy, TenantPolicyError> {
        let policy = parse_checked(pack, tenant, name, text, false)?;
        Ok(TenantPolicy::from_policy(tenant, name, text, policy))
    }

    fn from_policy(tenant: &str, name: &str, text: &str, policy: Policy) -> TenantPolicy {
        TenantPolicy {
            tenant: Arc::from(tenant),
            name: Arc::from(name),
            text: Arc::from(text),
            indexed: Arc::new(IndexedPolicy::new(policy)),
        }
    }

    /// The tenant that owns it.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Its name within the tenant.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Cedar text as accepted.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The entities the policy's condition names.
    pub fn literals(&self) -> &[cedar_policy::EntityUid] {
        self.indexed.literals()
    }

    /// The Cedar policy (its id is [`tenant_policy_id`]).
    pub fn policy(&self) -> &Policy {
        self.indexed.policy()
    }
}

/// The file name problems of a tenant policy are reported under.
pub fn tenant_policy_file(tenant: &str, name: &str) -> String {
    format!("{TENANT_POLICY_PREFIX}{tenant}/{name}.cedar")
}

fn parse_checked(
    pack: &Pack,
    tenant: &str,
    name: &str,
    text: &str,
    validate: bool,
) -> Result<Policy, TenantPolicyError> {
    let Some(tenancy) = pack.tenancy() else {
        return Err(TenantPolicyError::Unsupported(
            "the pack has no [tenancy]: tenant policies cannot be scoped to a tenant".to_owned(),
        ));
    };
    let Some(schema) = pack.schema() else {
        return Err(TenantPolicyError::Unsupported(
            "the pack has no schema: tenant policies cannot be validated".to_owned(),
        ));
    };
    let name_fits = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_fits {
        return Err(TenantPolicyError::Name(name.escape_debug().to_string()));
    }
    let file = tenant_policy_file(tenant, name);
    let error_at = |offset: Option<usize>, message: String| {
        PackDiagnostic::at_offset(Severity::Error, &file, text, offset, message)
    };
    if text.len() > MAX_TEXT_BYTES {
        return Err(TenantPolicyError::Invalid(vec![error_at(
            None,
            format!(
                "the policy is {} bytes; at most {MAX_TEXT_BYTES} are accepted",
                text.len()
            ),
        )]));
    }
    if let Some(problem) = nesting_problem(text) {
        return Err(TenantPolicyError::Invalid(vec![error_at(None, problem)]));
    }
    let id = tenant_policy_id(tenant, name);
    let policy = match Policy::parse(Some(id.clone()), text) {
        Ok(policy) => policy,
        Err(error) => {
            let diagnostics = flatten_miette(&error)
                .into_iter()
                .map(|(message, offset)| error_at(offset, message))
                .collect();
            return Err(TenantPolicyError::Invalid(diagnostics));
        }
    };
    let mut problems = Vec::new();
    for forbidden in ["cross_tenant", "id"] {
        if policy.annotation(forbidden).is_some() {
            problems.push(error_at(
                None,
                format!("@{forbidden} is not allowed in a tenant policy (its id is `{id}`, and it cannot cross tenants)"),
            ));
        }
    }
    let action_type = |uid: &EntityUid| {
        let type_name = uid.type_name().to_string();
        type_name == "Action" || type_name.ends_with("::Action")
    };
    let own = |uid: &EntityUid| {
        if action_type(uid) {
            return true;
        }
        let id = uid.id().unescaped();
        if uid.type_name() == &tenancy.tenant_type {
            return id == tenant;
        }
        id.strip_prefix(tenant)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    let mut named: Vec<EntityUid> = Vec::new();
    match policy.principal_constraint() {
        PrincipalConstraint::Eq(uid) | PrincipalConstraint::In(uid) => named.push(uid),
        PrincipalConstraint::IsIn(_, uid) => named.push(uid),
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => {}
    }
    match policy.resource_constraint() {
        ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid) => named.push(uid),
        ResourceConstraint::IsIn(_, uid) => named.push(uid),
        ResourceConstraint::Any | ResourceConstraint::Is(_) => {}
    }
    let indexed = IndexedPolicy::new(policy.clone());
    if indexed.literals().len() > MAX_LITERALS {
        problems.push(error_at(
            None,
            format!(
                "the policy names {} entities; at most {MAX_LITERALS} are accepted",
                indexed.literals().len()
            ),
        ));
    }
    named.extend(indexed.literals().iter().cloned());
    for uid in named.iter().filter(|uid| !own(uid)) {
        problems.push(error_at(
            None,
            format!(
                "{uid} is not an entity of tenant `{tenant}`: a tenant policy may name only its own tenant's entities (ids `{tenant}/…`), the tenant itself, and actions"
            ),
        ));
    }
    if validate {
        let mut set = PolicySet::new();
        if let Err(error) = set.add(policy.clone()) {
            problems.push(error_at(None, error.to_string()));
        } else {
            let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
            for error in result.validation_errors() {
                for (message, offset) in flatten_miette(error) {
                    problems.push(error_at(offset, message));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(policy)
    } else {
        Err(TenantPolicyError::Invalid(problems))
    }
}

/// Refuses text nested deeper than [`MAX_NESTING`] before Cedar parses it: brackets, runs of
/// unary `!` and `-`, and `if`s (each nests the expression after it). Strings and comments
/// are skipped. Any policy text from a request goes through it (tenant policies, the candidate
/// of `POST /v1/admin/diff`): a stack overflow in Cedar's parser ends the process.
pub fn nesting_problem(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let (mut depth, mut unary_run, mut ifs) = (0usize, 0usize, 0usize);
    let mut position = 0;
    while let Some(&byte) = bytes.get(position) {
        match byte {
            b'"' => {
                position += 1;
                while let Some(&inner) = bytes.get(position) {
                    match inner {
                        b'\\' => position += 1,
                        b'"' => break,
                        _ => {}
                    }
                    position += 1;
                }
            }
            b'/' if bytes.get(position + 1) == Some(&b'/') => {
                while bytes.get(position).is_some_and(|&inner| inner != b'\n') {
                    position += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(format!(
                        "the policy nests brackets deeper than {MAX_NESTING}"
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'!' | b'-' if bytes.get(position + 1) != Some(&b'=') => {
                unary_run += 1;
                if unary_run > MAX_NESTING {
                    return Some(format!(
                        "the policy chains more than {MAX_NESTING} `!` or `-` operators"
                    ));
                }
            }
            b'i' if bytes.get(position + 1) == Some(&b'f')
                && !bytes
                    .get(position + 2)
                    .is_some_and(|next| next.is_ascii_alphanumeric() || *next == b'_')
                && !position
                    .checked_sub(1)
                    .and_then(|before| bytes.get(before))
                    .is_some_and(|before| before.is_ascii_alphanumeric() || *before == b'_') =>
            {
                ifs += 1;
                if ifs > MAX_NESTING {
                    return Some(format!(
                        "the policy has more than {MAX_NESTING} `if` expressions"
                    ));
                }
            }
            byte if byte.is_ascii_whitespace() => {}
            _ => unary_run = 0,
        }
        if !matches!(byte, b'!' | b'-') && !byte.is_ascii_whitespace() {
            unary_run = 0;
        }
        position += 1;
    }
    None
}

/// One tenant's policies, filed by effect: permits apply inside the tenant only, forbids
/// whenever either side is in it.
#[derive(Debug, Default, Clone)]
struct TenantIndex {
    permits: PolicyIndex,
    forbids: PolicyIndex,
    by_name: HashMap<Arc<str>, TenantPolicy>,
}

/// Every tenant's policies, changed a policy at a time; a decision looks up only the tenants
/// of its principal and resource.
#[derive(Debug, Default, Clone)]
pub struct TenantPolicies {
    tenants: HashMap<Arc<str>, TenantIndex>,
    /// The tenants that have at least one forbid (a cross-tenant data filter writes them out).
    forbidding: std::collections::BTreeSet<Arc<str>>,
    len: usize,
}

impl TenantPolicies {
    /// Adds or replaces a policy (by tenant and name).
    pub fn put(&mut self, pack: &Pack, policy: TenantPolicy) {
        self.remove(pack, &policy.tenant.clone(), &policy.name.clone());
        let index = self.tenants.entry(Arc::clone(&policy.tenant)).or_default();
        let filed = match policy.policy().effect() {
            Effect::Permit => &mut index.permits,
            Effect::Forbid => {
                self.forbidding.insert(Arc::clone(&policy.tenant));
                &mut index.forbids
            }
        };
        filed.insert(pack.action_map(), Arc::clone(&policy.indexed));
        index.by_name.insert(Arc::clone(&policy.name), policy);
        self.len += 1;
    }

    /// Removes a policy; false when there was none.
    pub fn remove(&mut self, pack: &Pack, tenant: &str, name: &str) -> bool {
        let Some(index) = self.tenants.get_mut(tenant) else {
            return false;
        };
        let Some(policy) = index.by_name.remove(name) else {
            return false;
        };
        let filed = match policy.policy().effect() {
            Effect::Permit => &mut index.permits,
            Effect::Forbid => &mut index.forbids,
        };
        filed.remove(pack.action_map(), &policy.indexed);
        if index.forbids.is_empty() {
            self.forbidding.remove(tenant);
        }
        if index.by_name.is_empty() {
            self.tenants.remove(tenant);
        }
        self.len = self.len.saturating_sub(1);
        true
    }

    /// How many policies are held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when none are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A tenant's policies (of one effect, or both) that can apply to `principal` doing
    /// `action` on some resource of `resource_type` (for a data-filter plan).
    #[allow(
        clippy::too_many_arguments,
        reason = "the question's parts, each needed by the index"
    )]
    pub fn select_for_resource_type<'a>(
        &'a self,
        pack: &Pack,
        tenant: &str,
        effect: Option<Effect>,
        principal: &cedar_policy::EntityUid,
        action: &cedar_policy::EntityUid,
        resource_type: &cedar_policy::EntityTypeName,
        entities: &Entities,
    ) -> Vec<&'a Arc<IndexedPolicy>> {
        let mut into = Vec::new();
        if let Some(index) = self.tenants.get(tenant) {
            for (filed, filed_effect) in [
                (&index.permits, Effect::Permit),
                (&index.forbids, Effect::Forbid),
            ] {
                if effect.is_none_or(|effect| effect == filed_effect) {
                    filed.select_for_resource_type(
                        pack.action_map(),
                        principal,
                        action,
                        resource_type,
                        entities,
                        &mut into,
                    );
                }
            }
        }
        into
    }

    /// The tenants that have forbids of their own, in order.
    pub fn tenants_with_forbids(&self) -> impl Iterator<Item = &str> {
        self.forbidding.iter().map(|tenant| tenant.as_ref())
    }

    /// A tenant's policies, by name.
    pub fn of_tenant(&self, tenant: &str) -> Vec<&TenantPolicy> {
        let mut policies: Vec<&TenantPolicy> = self
            .tenants
            .get(tenant)
            .map(|index| index.by_name.values().collect())
            .unwrap_or_default();
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        policies
    }

    /// Every policy, by tenant and name.
    pub fn all(&self) -> Vec<&TenantPolicy> {
        let mut policies: Vec<&TenantPolicy> = self
            .tenants
            .values()
            .flat_map(|index| index.by_name.values())
            .collect();
        policies.sort_by(|a, b| (&a.tenant, &a.name).cmp(&(&b.tenant, &b.name)));
        policies
    }

    /// The same policies filed for another pack (after a reload): checked again against it,
    /// schema validation included; a policy that no longer fits is left out and returned (the
    /// caller refuses the pack).
    pub fn refiled(&self, pack: &Pack) -> (TenantPolicies, Vec<(TenantPolicy, TenantPolicyError)>) {
        let mut refiled = TenantPolicies::default();
        let mut dropped = Vec::new();
        for policy in self.all() {
            match TenantPolicy::check(pack, &policy.tenant, &policy.name, &policy.text) {
                Ok(again) => refiled.put(pack, again),
                Err(error) => dropped.push((policy.clone(), error)),
            }
        }
        (refiled, dropped)
    }

    /// Adds the tenant policies that can apply to the request to `selection`.
    pub fn select_into<'a>(
        &'a self,
        pack: &Pack,
        request: &Request,
        entities: &Entities,
        selection: &mut Selection<'a>,
    ) {
        if self.tenants.is_empty() {
            return;
        }
        let Some(tenancy) = pack.tenancy() else {
            return;
        };
        let tenant_id = |uid: Option<&EntityUid>| {
            uid.and_then(|uid| tenant_of(tenancy, uid, entities).ok())
                .map(|tenant| tenant.id().unescaped().to_owned())
        };
        let principal_tenant = tenant_id(request.principal());
        let resource_tenant = tenant_id(request.resource());
        let actions = pack.action_map();
        if let (Some(principal), Some(resource)) = (&principal_tenant, &resource_tenant)
            && principal == resource
        {
            if let Some(index) = self.tenants.get(principal.as_str()) {
                selection.add_from(&index.permits, actions, request, entities);
                selection.add_from(&index.forbids, actions, request, entities);
            }
            return;
        }
        if let Some(index) = resource_tenant
            .as_deref()
            .and_then(|tenant| self.tenants.get(tenant))
        {
            selection.add_from(&index.forbids, actions, request, entities);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_bounded_before_cedar_parses() {
        let deep = format!(
            "permit (principal, action, resource) when {{ {}true{} }};",
            "(".repeat(40),
            ")".repeat(40)
        );
        assert!(nesting_problem(&deep).is_some());
        let negations = format!(
            "permit (principal, action, resource) when {{ {}true }};",
            "! ".repeat(40)
        );
        assert!(nesting_problem(&negations).is_some());
        let ifs = format!(
            "permit (principal, action, resource) when {{ {} true }};",
            "if true then true else ".repeat(40)
        );
        assert!(nesting_problem(&ifs).is_some());
        // Brackets and `if` inside strings and comments, `!=`, and names with `if` are not
        // nesting.
        let fine = format!(
            "// {}\npermit (principal, action, resource) when {{ resource.name != \"{}\" && principal.gift == \"if\" && ((1 - 2) < -1) }};",
            "(".repeat(100),
            "[".repeat(100)
        );
        assert_eq!(nesting_problem(&fine), None);
    }
}
