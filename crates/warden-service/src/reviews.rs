//! Entitlement review campaigns (issue #24): what a campaign holds, how a decision takes
//! effect, the usage evidence of each item, and the sweep that finishes interrupted revokes and
//! revokes what an overdue campaign left undecided.
//!
//! A campaign snapshots, for one tenant, the role grants in force and the role memberships of
//! the stored principals (scope `roles`), and the live service accounts (scope
//! `service_accounts`). A revoke goes through the normal revoke paths of the store (a role:
//! `revoke_role`, as `POST …/roles/revoke`; a service account: disabled with its tokens
//! revoked, as `POST …/service-accounts/{id}/disable`), audited there; the decision itself is
//! audited as `review.keep` / `review.revoke`.
//!
//! Tests: `crates/warden-server/tests/server/reviews.rs` (through the API, on SQLite and
//! PostgreSQL).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};
use warden_core::cedar_policy::EntityUid;
use warden_store::{
    AccountStatus, Campaign, ClientId, ItemDecision, ItemKind, Offboarding, ReviewDecision,
    ReviewItem, ReviewScope, Store, StoreError, TenantId,
};

use crate::issuer::TokenIssuer;
use crate::pipeline::Service;

/// The most items one campaign may hold (a bigger tenant is reviewed in narrower campaigns).
pub const MAX_ITEMS: usize = 50_000;
/// The entity type of a service account's principal.
const SERVICE_ACCOUNT_TYPE: &str = "ServiceAccount";
/// The actor of automatic revokes.
pub const OVERDUE_ACTOR: &str = "warden:overdue";
/// How many interrupted revokes one sweep completes.
const SWEEP_BATCH: i64 = 200;
/// How many overdue campaigns one sweep round visits.
const SWEEP_CAMPAIGNS: i64 = 50;
/// How many items of each overdue campaign one round revokes.
const SWEEP_PER_CAMPAIGN: i64 = 20;
/// How long one sweep goes on while there is work.
const SWEEP_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);
/// The most campaigns one tenant may have.
pub const MAX_CAMPAIGNS_PER_TENANT: i64 = 1000;

/// Why a review operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The request does not make sense (400).
    #[error("{0}")]
    Invalid(String),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The decision is recorded but its revoke could not be applied yet (the sweep retries).
    #[error("the revoke is recorded but not yet applied ({0}); it is retried within a minute")]
    NotApplied(String),
}

/// What a new campaign asks for.
#[derive(Clone, Debug)]
pub struct NewCampaign {
    /// A name for people.
    pub name: String,
    /// What it reviews.
    pub scope: ReviewScope,
    /// `owner` or a principal's uid text (`User::"acme/alice"`).
    pub reviewer: String,
    /// Unix seconds.
    pub due_at: i64,
    /// Whether undecided items are revoked once it is due.
    pub auto_revoke_overdue: bool,
    /// Days without use after which an entitlement is flagged.
    pub unused_days: i64,
}

/// Creates a campaign: the items are who holds what in `tenant` now.
pub async fn create(
    service: &Service,
    store: &Store,
    tenant: &TenantId,
    new: NewCampaign,
    actor: &str,
    now: i64,
) -> Result<(Campaign, usize), ReviewError> {
    if new.name.trim().is_empty() || new.name.len() > 200 {
        return Err(ReviewError::Invalid(
            "a campaign needs a name of 1 to 200 bytes".to_owned(),
        ));
    }
    if new.due_at <= now {
        return Err(ReviewError::Invalid("due_at is in the past".to_owned()));
    }
    if !(1..=3650).contains(&new.unused_days) {
        return Err(ReviewError::Invalid(
            "unused_days must be 1 to 3650".to_owned(),
        ));
    }
    if new.reviewer != "owner" {
        warden_core::parse_uid(&new.reviewer).map_err(|error| {
            ReviewError::Invalid(format!(
                "reviewer is `owner` or a principal's uid (User::\"alice\"): {error}"
            ))
        })?;
    }
    if store.count_review_campaigns(tenant).await? >= MAX_CAMPAIGNS_PER_TENANT {
        return Err(ReviewError::Invalid(format!(
            "tenant `{tenant}` already has {MAX_CAMPAIGNS_PER_TENANT} campaigns, the most one tenant may keep"
        )));
    }
    let id = warden_issuer::credentials::new_review_campaign_id()
        .map_err(|error| ReviewError::Invalid(error.to_string()))?;
    let campaign = Campaign {
        id,
        tenant: tenant.to_string(),
        name: new.name.trim().to_owned(),
        scope: new.scope,
        reviewer: new.reviewer,
        due_at: new.due_at,
        auto_revoke_overdue: new.auto_revoke_overdue,
        unused_days: new.unused_days,
        created_by: actor.to_owned(),
        created_at: now,
    };
    let mut items = Vec::new();
    if campaign.scope.roles() {
        role_items(service, store, tenant, &campaign, now, &mut items).await?;
    }
    if campaign.scope.service_accounts() {
        account_items(service, store, tenant, &campaign, &mut items).await?;
    }
    if items.len() > MAX_ITEMS {
        return Err(ReviewError::Invalid(format!(
            "tenant `{tenant}` holds {} entitlements in this scope, more than one campaign reviews ({MAX_ITEMS}): narrow the scope",
            items.len()
        )));
    }
    for (index, item) in items.iter_mut().enumerate() {
        item.item_id = (index + 1).to_string();
        item.campaign_id.clone_from(&campaign.id);
    }
    store.create_review_campaign(&campaign, &items).await?;
    Ok((campaign, items.len()))
}

fn reviewer_of(campaign: &Campaign, owner: &str) -> String {
    if campaign.reviewer == "owner" {
        owner.to_owned()
    } else {
        campaign.reviewer.clone()
    }
}

fn blank_item(campaign: &Campaign, kind: ItemKind, principal: (String, String)) -> ReviewItem {
    ReviewItem {
        campaign_id: String::new(),
        item_id: String::new(),
        kind,
        principal_type: principal.0,
        principal_id: principal.1,
        role: None,
        client_id: None,
        detail: "{}".to_owned(),
        granted_by: String::new(),
        granted_at: 0,
        grant_reason: String::new(),
        expires_at: None,
        reviewer: campaign.reviewer.clone(),
        decision: None,
    }
}

/// Role grants in force, then the parents of stored principals (imported role memberships)
/// that no grant already covers.
async fn role_items(
    service: &Service,
    store: &Store,
    tenant: &TenantId,
    campaign: &Campaign,
    now: i64,
    items: &mut Vec<ReviewItem>,
) -> Result<(), ReviewError> {
    let Some(snapshot) = service.policy.current() else {
        return Err(ReviewError::Invalid(
            "no policy pack is loaded: a campaign's items are checked against it".to_owned(),
        ));
    };
    let pack = &snapshot.pack;
    // A principal of a shared type (a role that is a member of another role) holds its grants
    // in every tenant: taking one away is for an admin of all tenants, not a tenant's review.
    let tenant_owned = |principal_type: &str| {
        pack.tenancy().is_none() || crate::entity_graph::tenant_scoped(pack, principal_type)
    };
    let mut seen = HashSet::new();
    for grant in store.role_assignments_of(tenant, now).await? {
        if !tenant_owned(&grant.principal_type) {
            continue;
        }
        let principal = (grant.principal_type.clone(), grant.principal_id.clone());
        let role = (grant.role_type.clone(), grant.role_id.clone());
        seen.insert((principal.clone(), role.clone()));
        let mut item = blank_item(campaign, ItemKind::Role, principal);
        item.role = Some(role);
        item.detail = json!({"source": "grant"}).to_string();
        item.reviewer = reviewer_of(campaign, &grant.granted_by);
        item.granted_by = grant.granted_by;
        item.granted_at = grant.granted_at;
        item.grant_reason = grant.reason;
        item.expires_at = grant.expires_at;
        items.push(item);
    }
    let principal_types: Vec<String> = match pack.schema() {
        Some(schema) => schema
            .principals()
            .map(ToString::to_string)
            .filter(|principal_type| tenant_owned(principal_type))
            .collect(),
        None => Vec::new(),
    };
    let tenant_type = pack
        .tenancy()
        .map(|tenancy| tenancy.tenant_type.to_string());
    for (entity_type, entity_id, parents, updated_at) in
        store.entity_parents_of(tenant, &principal_types).await?
    {
        for parent in parents.as_array().into_iter().flatten() {
            let (Some(parent_type), Some(parent_id)) = (
                parent.get("type").and_then(Value::as_str),
                parent.get("id").and_then(Value::as_str),
            ) else {
                continue;
            };
            if tenant_type.as_deref() == Some(parent_type) {
                continue;
            }
            let principal = (entity_type.clone(), entity_id.clone());
            let role = (parent_type.to_owned(), parent_id.to_owned());
            if !seen.insert((principal.clone(), role.clone())) {
                continue;
            }
            let mut item = blank_item(campaign, ItemKind::Role, principal);
            item.role = Some(role);
            item.detail = json!({"source": "entity data"}).to_string();
            item.granted_by = "entity data".to_owned();
            item.granted_at = updated_at;
            item.grant_reason = "a parent in the principal's stored entity".to_owned();
            item.reviewer = reviewer_of(campaign, "entity data");
            items.push(item);
        }
    }
    Ok(())
}

/// The tenant's live service accounts.
async fn account_items(
    service: &Service,
    store: &Store,
    tenant: &TenantId,
    campaign: &Campaign,
    items: &mut Vec<ReviewItem>,
) -> Result<(), ReviewError> {
    let pack = service
        .policy
        .current()
        .map(|snapshot| Arc::clone(&snapshot.pack));
    for account in store.service_accounts(Some(tenant.as_str()), false).await? {
        if account.status != AccountStatus::Active {
            continue;
        }
        // The account's principal as its decisions name it (ids of tenant-scoped types carry
        // the tenant), so the reviewer checks and the reports match the decision log.
        let principal_id = match &pack {
            Some(pack)
                if pack.tenancy().is_some()
                    && crate::entity_graph::tenant_scoped(pack, SERVICE_ACCOUNT_TYPE) =>
            {
                format!("{tenant}/{}", account.client_id)
            }
            _ => account.client_id.clone(),
        };
        let mut item = blank_item(
            campaign,
            ItemKind::ServiceAccount,
            (SERVICE_ACCOUNT_TYPE.to_owned(), principal_id),
        );
        item.detail = json!({
            "name": account.name,
            "owner": account.owner,
            "purpose": account.purpose,
            "scopes": account.scopes,
        })
        .to_string();
        item.reviewer = reviewer_of(campaign, &account.owner);
        item.client_id = Some(account.client_id);
        item.granted_by = account.created_by;
        item.granted_at = account.created_at;
        item.grant_reason = account.purpose;
        item.expires_at = Some(account.expires_at);
        items.push(item);
    }
    Ok(())
}

/// Records a reviewer's decision and, for a revoke, takes the entitlement away through the
/// normal revoke path before answering.
pub async fn decide(
    service: &Service,
    store: &Store,
    campaign: &Campaign,
    item_id: &str,
    made: ItemDecision,
) -> Result<ReviewItem, ReviewError> {
    let (decision, note, now) = (made.decision, made.note.as_str(), made.decided_at);
    if note.len() > 2000 {
        return Err(ReviewError::Invalid(
            "a note is at most 2000 bytes".to_owned(),
        ));
    }
    if decision == ReviewDecision::Revoke && note.trim().is_empty() {
        return Err(ReviewError::Invalid("a revoke needs a note".to_owned()));
    }
    let item = store.decide_review_item(campaign, item_id, &made).await?;
    if decision == ReviewDecision::Keep {
        return Ok(item);
    }
    apply_revoke(service.token_issuer.as_deref(), store, campaign, &item, now)
        .await
        .map_err(|error| ReviewError::NotApplied(error.to_string()))?;
    Ok(store.review_item(&campaign.id, item_id).await?)
}

/// Takes away what a revoked item names and marks it applied. Already gone counts as done.
async fn apply_revoke(
    issuer: Option<&TokenIssuer>,
    store: &Store,
    campaign: &Campaign,
    item: &ReviewItem,
    now: i64,
) -> Result<(), StoreError> {
    let tenant = TenantId::parse(&campaign.tenant)
        .map_err(|error| StoreError::Corrupt(error.to_string()))?;
    let made = item.decision.as_ref();
    let actor = made.map_or(OVERDUE_ACTOR, |made| made.decided_by.as_str());
    let reason = format!(
        "review {} item {}: {}",
        campaign.id,
        item.item_id,
        made.map_or("", |made| made.note.as_str())
    );
    let result = match (item.kind, &item.role, &item.client_id) {
        (ItemKind::Role, Some(role), _) => {
            store
                .revoke_role(
                    &tenant,
                    (&item.principal_type, &item.principal_id),
                    (&role.0, &role.1),
                    &reason,
                    actor,
                    now,
                )
                .await
        }
        (ItemKind::ServiceAccount, _, Some(client_id)) => {
            let client_id = ClientId::parse(client_id)
                .map_err(|error| StoreError::Corrupt(error.to_string()))?;
            let (max_ttl, leeway) = issuer.map_or((3600, 60), |issuer| {
                (
                    issuer.settings.max_ttl_seconds,
                    issuer.settings.leeway_seconds,
                )
            });
            let offboarding = Offboarding {
                reason: &reason,
                actor,
                now,
                revoke_before: now + 1,
                revocation_expires_at: now + max_ttl + leeway,
            };
            store
                .offboard_service_account(
                    &tenant,
                    &client_id,
                    AccountStatus::Disabled,
                    &offboarding,
                )
                .await
        }
        _ => Err(StoreError::Corrupt(format!(
            "review item {}/{} names nothing to revoke",
            campaign.id, item.item_id
        ))),
    };
    // Already gone counts as done: a grant or parent no longer held (not found), an account
    // already disabled (refused: the only refusal offboarding to `disabled` can give).
    let done = matches!(
        (&result, item.kind),
        (Ok(()) | Err(StoreError::NotFound(_)), _)
            | (Err(StoreError::Refused(_)), ItemKind::ServiceAccount)
    );
    if done {
        store
            .mark_review_applied(&campaign.id, &item.item_id, now)
            .await
    } else {
        result
    }
}

/// Revokes one undecided item of an overdue campaign (decided by `warden:overdue`).
async fn revoke_overdue(
    issuer: Option<&TokenIssuer>,
    store: &Store,
    campaign: &Campaign,
    item: ReviewItem,
    now: i64,
    swept: &mut Swept,
) -> Result<(), StoreError> {
    let made = ItemDecision {
        decision: ReviewDecision::Revoke,
        decided_by: OVERDUE_ACTOR.to_owned(),
        decided_at: now,
        note: format!(
            "not reviewed by the campaign's due date ({})",
            campaign.due_at
        ),
        applied_at: None,
    };
    let item = match store
        .decide_review_item(campaign, &item.item_id, &made)
        .await
    {
        Ok(item) => item,
        // A reviewer decided it in the meantime.
        Err(StoreError::Conflict(_)) => return Ok(()),
        Err(error) => return Err(error),
    };
    match apply_revoke(issuer, store, campaign, &item, now).await {
        Ok(()) => swept.overdue_revoked += 1,
        Err(error) => {
            swept.failed += 1;
            tracing::warn!(campaign = %campaign.id, item = %item.item_id, %error, "an overdue revoke failed; retrying");
        }
    }
    Ok(())
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Interrupted revokes completed.
    pub completed: usize,
    /// Undecided items of overdue campaigns revoked.
    pub overdue_revoked: usize,
    /// Revokes that failed (retried on the next pass).
    pub failed: usize,
}

/// One sweep at `now`: completes recorded revokes not yet applied, then revokes the undecided
/// items of overdue campaigns that ask for it (decided by `warden:overdue`).
pub async fn sweep(
    issuer: Option<&TokenIssuer>,
    store: &Store,
    now: i64,
) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    for (campaign, item) in store.unapplied_revokes(SWEEP_BATCH).await? {
        match apply_revoke(issuer, store, &campaign, &item, now).await {
            Ok(()) => swept.completed += 1,
            Err(error) => {
                swept.failed += 1;
                tracing::warn!(campaign = %campaign.id, item = %item.item_id, %error, "applying a review revoke failed; retrying");
            }
        }
    }
    // Overdue campaigns take turns, a few items each per round, so one tenant's large campaign
    // does not hold back another's; rounds go on while there is work, within a time budget.
    let started = std::time::Instant::now();
    while started.elapsed() < SWEEP_BUDGET {
        let campaigns = store.overdue_campaigns(now, SWEEP_CAMPAIGNS).await?;
        let mut handled = 0usize;
        for campaign in &campaigns {
            for item in store
                .undecided_review_items(&campaign.id, SWEEP_PER_CAMPAIGN)
                .await?
            {
                handled += 1;
                revoke_overdue(issuer, store, campaign, item, now, &mut swept).await?;
            }
        }
        if handled == 0 {
            break;
        }
    }
    if swept.completed + swept.overdue_revoked > 0 {
        tracing::info!(
            completed = swept.completed,
            overdue_revoked = swept.overdue_revoked,
            "review sweep revoked entitlements"
        );
    }
    Ok(swept)
}

/// The usage evidence of one item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// The last allow that needed it (Unix seconds).
    pub last_allowed_at: Option<i64>,
    /// That decision's id, when known.
    pub last_decision_id: Option<String>,
    /// The entity the policy of that allow named (`Type::"id"`): the role itself, or one it
    /// includes through the hierarchy (a lesser role might do).
    pub used_through: Option<String>,
    /// Whole days since that allow (or since the grant, when never used).
    pub unused_days: Option<i64>,
    /// Unused for at least the campaign's `unused_days`.
    pub unused: bool,
}

/// The usage evidence of a campaign's items, in item order. This replica's uses noted since
/// its last flush are written first, so what a reviewer sees is current here.
pub async fn evidence(
    service: &Service,
    store: &Store,
    campaign: &Campaign,
    items: &[ReviewItem],
    now: i64,
) -> Result<Vec<Usage>, StoreError> {
    if let (Some(usage), Some(snapshot)) = (&service.entitlement_usage, service.policy.current())
        && let Err(error) = usage.flush(store, &snapshot).await
    {
        tracing::warn!(%error, "recording entitlement usage failed; the evidence shown may be older");
    }
    let principals: Vec<(String, String)> = items
        .iter()
        .filter(|item| item.kind == ItemKind::Role)
        .map(|item| (item.principal_type.clone(), item.principal_id.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut uses: HashMap<(String, String), Vec<warden_store::EntitlementUse>> = HashMap::new();
    for used in store.entitlement_usage(&principals).await? {
        uses.entry(used.principal.clone()).or_default().push(used);
    }
    let clients: Vec<String> = items
        .iter()
        .filter_map(|item| item.client_id.clone())
        .collect();
    let account_use = store.last_scope_use(&clients).await?;
    let snapshot = service.policy.current();
    let mut above: HashMap<(String, String), HashSet<(String, String)>> = HashMap::new();
    Ok(items
        .iter()
        .map(|item| {
            let mut used_through = None;
            let last: Option<(i64, Option<String>)> = match (&item.role, &item.client_id) {
                (Some(role), _) => {
                    let named = above
                        .entry(role.clone())
                        .or_insert_with(|| role_and_ancestors(snapshot.as_deref(), role));
                    uses.get(&(item.principal_type.clone(), item.principal_id.clone()))
                        .into_iter()
                        .flatten()
                        .filter(|used| named.contains(&used.entity))
                        .max_by_key(|used| used.last_allowed_at)
                        .map(|used| {
                            used_through = Some(format!(
                                "{}::{}",
                                used.entity.0,
                                Value::String(used.entity.1.clone())
                            ));
                            (used.last_allowed_at, Some(used.decision_id.clone()))
                        })
                }
                (None, Some(client_id)) => account_use.get(client_id).map(|at| (*at, None)),
                (None, None) => None,
            };
            let since = last.as_ref().map_or(item.granted_at, |(at, _)| *at);
            let unused_days = (since > 0).then(|| now.saturating_sub(since).max(0) / 86_400);
            Usage {
                unused: unused_days.is_some_and(|days| days >= campaign.unused_days),
                unused_days,
                last_allowed_at: last.as_ref().map(|(at, _)| *at),
                last_decision_id: last.and_then(|(_, id)| id),
                used_through,
            }
        })
        .collect())
}

/// A role and every entity above it in the data in force (bounded walk).
fn role_and_ancestors(
    snapshot: Option<&crate::snapshot::Snapshot>,
    role: &(String, String),
) -> HashSet<(String, String)> {
    let mut found = HashSet::from([role.clone()]);
    let Some(snapshot) = snapshot else {
        return found;
    };
    let graph = snapshot.entities();
    let mut queue = vec![role.clone()];
    while let Some((entity_type, entity_id)) = queue.pop() {
        if found.len() > 256 {
            break;
        }
        let Ok(uid) = warden_core::parse_uid(&format!(
            "{entity_type}::{}",
            Value::String(entity_id.clone())
        )) else {
            continue;
        };
        let Some(entity) = graph.get(&uid) else {
            continue;
        };
        let (_, _, parents) = entity.into_inner();
        for parent in parents {
            let key = uid_key(&parent);
            if found.insert(key.clone()) {
                queue.push(key);
            }
        }
    }
    found
}

fn uid_key(uid: &EntityUid) -> (String, String) {
    (uid.type_name().to_string(), uid.id().unescaped().to_owned())
}
