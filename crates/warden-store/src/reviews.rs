//! Entitlement review campaigns (issue #24): a campaign, its items (who held what when it was
//! created), their decisions, and the usage evidence of entitlements (when a parent a policy
//! names last helped allow a decision for a principal).
//!
//! A decision is claimed first (`decision` set, conditionally on none being set, audited in the
//! same transaction), and a revoke is applied through the normal revoke path after it; only then
//! is `applied_at` set. A revoke a crash left unapplied is found by [`Store::unapplied_revokes`]
//! and completed by the sweep, so an acknowledged revoke is never lost.
//! Tests: `tests/store/reviews.rs`.

use std::str::FromStr;

use crate::{BeginWrite, Store, StoreError, TenantId};

/// What a campaign reviews.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewScope {
    /// Role grants and role memberships of stored principals.
    Roles,
    /// Service accounts.
    ServiceAccounts,
    /// Both.
    Both,
}

impl ReviewScope {
    /// As stored and as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewScope::Roles => "roles",
            ReviewScope::ServiceAccounts => "service_accounts",
            ReviewScope::Both => "both",
        }
    }

    /// Whether role items are in scope.
    pub fn roles(self) -> bool {
        matches!(self, ReviewScope::Roles | ReviewScope::Both)
    }

    /// Whether service-account items are in scope.
    pub fn service_accounts(self) -> bool {
        matches!(self, ReviewScope::ServiceAccounts | ReviewScope::Both)
    }
}

impl FromStr for ReviewScope {
    type Err = StoreError;
    fn from_str(text: &str) -> Result<Self, StoreError> {
        match text {
            "roles" => Ok(ReviewScope::Roles),
            "service_accounts" => Ok(ReviewScope::ServiceAccounts),
            "both" => Ok(ReviewScope::Both),
            other => Err(StoreError::Refused(format!(
                "scope `{other}` is not roles, service_accounts or both"
            ))),
        }
    }
}

/// A reviewer's decision on an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewDecision {
    /// The entitlement stays.
    Keep,
    /// The entitlement is taken away.
    Revoke,
}

impl ReviewDecision {
    /// As stored and as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::Keep => "keep",
            ReviewDecision::Revoke => "revoke",
        }
    }
}

impl FromStr for ReviewDecision {
    type Err = StoreError;
    fn from_str(text: &str) -> Result<Self, StoreError> {
        match text {
            "keep" => Ok(ReviewDecision::Keep),
            "revoke" => Ok(ReviewDecision::Revoke),
            other => Err(StoreError::Refused(format!(
                "decision `{other}` is not keep or revoke"
            ))),
        }
    }
}

/// What an item is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// A principal's membership of a role (a grant, or a parent in its stored entity).
    Role,
    /// A service account (its scopes).
    ServiceAccount,
}

impl ItemKind {
    /// As stored and as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Role => "role",
            ItemKind::ServiceAccount => "service_account",
        }
    }
}

impl FromStr for ItemKind {
    type Err = StoreError;
    fn from_str(text: &str) -> Result<Self, StoreError> {
        match text {
            "role" => Ok(ItemKind::Role),
            "service_account" => Ok(ItemKind::ServiceAccount),
            other => Err(StoreError::Corrupt(format!(
                "unknown review item kind `{other}`"
            ))),
        }
    }
}

/// A review campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    /// `rc_…`.
    pub id: String,
    /// The tenant reviewed.
    pub tenant: String,
    /// A name for people.
    pub name: String,
    /// What it reviews.
    pub scope: ReviewScope,
    /// `owner` (each item's owner: a service account's owner, a grant's grantor) or a
    /// principal's uid text.
    pub reviewer: String,
    /// Unix seconds.
    pub due_at: i64,
    /// Whether items still undecided when it is due are revoked.
    pub auto_revoke_overdue: bool,
    /// An entitlement not used for this many days is flagged unused.
    pub unused_days: i64,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: i64,
}

/// A decision made on an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemDecision {
    /// Keep or revoke.
    pub decision: ReviewDecision,
    /// Who decided (`admin:…`, or `warden:overdue` for the automatic revoke).
    pub decided_by: String,
    /// When.
    pub decided_at: i64,
    /// The reviewer's note.
    pub note: String,
    /// When the decision took effect (a revoke: once the entitlement was taken away).
    pub applied_at: Option<i64>,
}

/// One entitlement under review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewItem {
    /// The campaign.
    pub campaign_id: String,
    /// Its id within the campaign (`1`, `2`, …).
    pub item_id: String,
    /// Role or service account.
    pub kind: ItemKind,
    /// Who holds it (for a service account: the account's own principal).
    pub principal_type: String,
    /// Who holds it.
    pub principal_id: String,
    /// The role held (role items).
    pub role: Option<(String, String)>,
    /// The account (service-account items).
    pub client_id: Option<String>,
    /// Details as JSON text (a service account's name and scopes; where a role came from).
    pub detail: String,
    /// Who granted it (for a role in imported entity data: `entity data`).
    pub granted_by: String,
    /// When.
    pub granted_at: i64,
    /// Why it was granted.
    pub grant_reason: String,
    /// When the grant lapses by itself.
    pub expires_at: Option<i64>,
    /// Who is to review it.
    pub reviewer: String,
    /// The decision, once made.
    pub decision: Option<ItemDecision>,
}

/// Campaign counts by decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CampaignCounts {
    /// Items.
    pub total: i64,
    /// Not decided.
    pub pending: i64,
    /// Kept.
    pub kept: i64,
    /// Revoked (or being revoked).
    pub revoked: i64,
}

impl CampaignCounts {
    /// Counts `count` items with `decision` (`None`: undecided).
    pub fn add(&mut self, decision: Option<ReviewDecision>, count: i64) {
        self.total += count;
        match decision {
            None => self.pending += count,
            Some(ReviewDecision::Keep) => self.kept += count,
            Some(ReviewDecision::Revoke) => self.revoked += count,
        }
    }

    /// The counts of these items.
    pub fn of(items: &[ReviewItem]) -> CampaignCounts {
        let mut counts = CampaignCounts::default();
        for item in items {
            counts.add(item.decision.as_ref().map(|made| made.decision), 1);
        }
        counts
    }
}

/// One row of usage evidence: `principal` was allowed a decision that a policy naming
/// `entity` determined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntitlementUse {
    /// The principal's `(type, id)`.
    pub principal: (String, String),
    /// The entity the policy names (a role, a group).
    pub entity: (String, String),
    /// When (Unix seconds).
    pub last_allowed_at: i64,
    /// The decision's id.
    pub decision_id: String,
}

type CampaignRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    i64,
);

macro_rules! campaign_columns {
    () => {
        "id, tenant, name, scope, reviewer, due_at, auto_revoke_overdue, unused_days, created_by, created_at"
    };
}

fn campaign_from_row(row: CampaignRow) -> Result<Campaign, StoreError> {
    let (
        id,
        tenant,
        name,
        scope,
        reviewer,
        due_at,
        auto_revoke_overdue,
        unused_days,
        created_by,
        created_at,
    ) = row;
    Ok(Campaign {
        scope: scope
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("campaign {id} has scope `{scope}`")))?,
        id,
        tenant,
        name,
        reviewer,
        due_at,
        auto_revoke_overdue: auto_revoke_overdue != 0,
        unused_days,
        created_by,
        created_at,
    })
}

/// The item columns in [`FlatItemRow`] order, of table alias `i` (the decision's five last).
macro_rules! item_columns {
    () => {
        "i.campaign_id, i.item_id, i.kind, i.principal_type, i.principal_id, i.role_type, i.role_id, i.client_id, i.detail, i.granted_by, i.granted_at, i.grant_reason, i.expires_at, i.reviewer, i.decision, i.decided_by, i.decided_at, i.note, i.applied_at"
    };
}

/// A campaign's columns (alias `c`) then an item's (alias `i`).
macro_rules! joined_columns {
    () => {
        concat!(
            "c.id, c.tenant, c.name, c.scope, c.reviewer, c.due_at, c.auto_revoke_overdue, c.unused_days, c.created_by, c.created_at, ",
            item_columns!()
        )
    };
}

type FlatItemRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    String,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

/// Reads a [`CampaignRow`] from the first 10 columns of `$row` (of [`joined_columns`]).
macro_rules! campaign_row {
    ($row:expr) => {{
        let row = $row;
        let campaign: CampaignRow = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            row.try_get(6)?,
            row.try_get(7)?,
            row.try_get(8)?,
            row.try_get(9)?,
        );
        campaign
    }};
}

/// Reads a [`FlatItemRow`] from `$row` starting at column `$at` (19 columns: more than sqlx
/// decodes into one tuple, so they are read one by one).
macro_rules! item_row {
    ($row:expr, $at:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        let at: usize = $at;
        let flat: FlatItemRow = (
            row.try_get(at)?,
            row.try_get(at + 1)?,
            row.try_get(at + 2)?,
            row.try_get(at + 3)?,
            row.try_get(at + 4)?,
            row.try_get(at + 5)?,
            row.try_get(at + 6)?,
            row.try_get(at + 7)?,
            row.try_get(at + 8)?,
            row.try_get(at + 9)?,
            row.try_get(at + 10)?,
            row.try_get(at + 11)?,
            row.try_get(at + 12)?,
            row.try_get(at + 13)?,
            row.try_get(at + 14)?,
            row.try_get(at + 15)?,
            row.try_get(at + 16)?,
            row.try_get(at + 17)?,
            row.try_get(at + 18)?,
        );
        flat
    }};
}

fn item_from_row(row: FlatItemRow) -> Result<ReviewItem, StoreError> {
    let (
        campaign_id,
        item_id,
        kind,
        principal_type,
        principal_id,
        role_type,
        role_id,
        client_id,
        detail,
        granted_by,
        granted_at,
        grant_reason,
        expires_at,
        reviewer,
        decision,
        decided_by,
        decided_at,
        note,
        applied_at,
    ) = row;
    let decision = match (decision, decided_by, decided_at) {
        (Some(decision), Some(decided_by), Some(decided_at)) => Some(ItemDecision {
            decision: decision.parse().map_err(|_| {
                StoreError::Corrupt(format!("review item {campaign_id}/{item_id}: `{decision}`"))
            })?,
            decided_by,
            decided_at,
            note: note.unwrap_or_default(),
            applied_at,
        }),
        _ => None,
    };
    Ok(ReviewItem {
        kind: kind.parse()?,
        role: role_type.zip(role_id),
        campaign_id,
        item_id,
        principal_type,
        principal_id,
        client_id,
        detail,
        granted_by,
        granted_at,
        grant_reason,
        expires_at,
        reviewer,
        decision,
    })
}

/// A parameter of [`Store::items_with_campaigns`]'s query.
enum Bind<'a> {
    Int(i64),
    Text(&'a str),
}

/// The most items one statement inserts.
const ITEMS_PER_STATEMENT: usize = 500;

impl Store {
    /// Creates a campaign with its items, audited (`review.create`), in one transaction.
    pub async fn create_review_campaign(
        &self,
        campaign: &Campaign,
        items: &[ReviewItem],
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(concat!("INSERT INTO review_campaigns (", campaign_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"))
                .bind(&campaign.id).bind(&campaign.tenant).bind(&campaign.name).bind(campaign.scope.as_str())
                .bind(&campaign.reviewer).bind(campaign.due_at).bind(i64::from(campaign.auto_revoke_overdue))
                .bind(campaign.unused_days).bind(&campaign.created_by).bind(campaign.created_at)
                .execute(&mut *tx).await?;
            for chunk in items.chunks(ITEMS_PER_STATEMENT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO review_items (campaign_id, item_id, kind, principal_type, principal_id, role_type, role_id, client_id, detail, granted_by, granted_at, grant_reason, expires_at, reviewer) ",
                );
                insert.push_values(chunk, |mut row, item| {
                    row.push_bind(&campaign.id)
                        .push_bind(&item.item_id)
                        .push_bind(item.kind.as_str())
                        .push_bind(&item.principal_type)
                        .push_bind(&item.principal_id)
                        .push_bind(item.role.as_ref().map(|role| role.0.clone()))
                        .push_bind(item.role.as_ref().map(|role| role.1.clone()))
                        .push_bind(&item.client_id)
                        .push_bind(&item.detail)
                        .push_bind(&item.granted_by)
                        .push_bind(item.granted_at)
                        .push_bind(&item.grant_reason)
                        .push_bind(item.expires_at)
                        .push_bind(&item.reviewer);
                });
                insert.build().execute(&mut *tx).await?;
            }
            let detail = serde_json::json!({
                "campaign": campaign.id,
                "name": campaign.name,
                "scope": campaign.scope.as_str(),
                "reviewer": campaign.reviewer,
                "due_at": campaign.due_at,
                "auto_revoke_overdue": campaign.auto_revoke_overdue,
                "items": items.len(),
            }).to_string();
            finish_write!(tx, campaign.created_at, &campaign.created_by, "review.create", &campaign.tenant, detail);
            Ok(())
        })
    }

    /// A tenant's campaigns, newest first, at most `limit`.
    pub async fn review_campaigns(
        &self,
        tenant: &TenantId,
        limit: i64,
    ) -> Result<Vec<Campaign>, StoreError> {
        let rows: Vec<CampaignRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", campaign_columns!(), " FROM review_campaigns WHERE tenant = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        )).bind(tenant.as_str()).bind(limit).fetch_all(pool).await?);
        rows.into_iter().map(campaign_from_row).collect()
    }

    /// One campaign of a tenant (another tenant's is not found).
    pub async fn review_campaign(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Campaign, StoreError> {
        let row: Option<CampaignRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", campaign_columns!(), " FROM review_campaigns WHERE tenant = $1 AND id = $2"
        )).bind(tenant.as_str()).bind(id).fetch_optional(pool).await?);
        row.map(campaign_from_row).transpose()?.ok_or_else(|| {
            StoreError::NotFound(format!("no review campaign `{id}` in tenant `{tenant}`"))
        })
    }

    /// The counts of each campaign named, by decision.
    pub async fn review_counts(
        &self,
        campaign_ids: &[String],
    ) -> Result<std::collections::HashMap<String, CampaignCounts>, StoreError> {
        let mut counts: std::collections::HashMap<String, CampaignCounts> =
            std::collections::HashMap::new();
        for chunk in campaign_ids.chunks(ITEMS_PER_STATEMENT) {
            let rows: Vec<(String, Option<String>, i64)> = on_pool!(self, pool => {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT campaign_id, decision, COUNT(*) FROM review_items WHERE campaign_id IN (",
                );
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id);
                }
                query.push(") GROUP BY campaign_id, decision");
                query.build_query_as().fetch_all(pool).await?
            });
            for (campaign, decision, count) in rows {
                let entry = counts.entry(campaign).or_default();
                let decision = decision.map(|text| text.parse()).transpose()?;
                entry.add(decision, count);
            }
        }
        Ok(counts)
    }

    /// A campaign's items, in item order.
    pub async fn review_items(&self, campaign_id: &str) -> Result<Vec<ReviewItem>, StoreError> {
        let rows: Vec<FlatItemRow> = on_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", item_columns!(), " FROM review_items i WHERE i.campaign_id = $1 ORDER BY LENGTH(i.item_id), i.item_id"
            )).bind(campaign_id).fetch_all(pool).await?;
            rows.iter().map(|row| Ok::<_, sqlx::Error>(item_row!(row, 0))).collect::<Result<Vec<_>, _>>()?
        });
        rows.into_iter().map(item_from_row).collect()
    }

    /// A page of a campaign's items in item order: those numbered after `after`, at most
    /// `limit`.
    pub async fn review_items_page(
        &self,
        campaign_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let rows: Vec<FlatItemRow> = on_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", item_columns!(), " FROM review_items i WHERE i.campaign_id = $1 AND CAST(i.item_id AS BIGINT) > $2 \
                 ORDER BY CAST(i.item_id AS BIGINT) LIMIT $3"
            )).bind(campaign_id).bind(after).bind(limit).fetch_all(pool).await?;
            rows.iter().map(|row| Ok::<_, sqlx::Error>(item_row!(row, 0))).collect::<Result<Vec<_>, _>>()?
        });
        rows.into_iter().map(item_from_row).collect()
    }

    /// One item of a campaign.
    pub async fn review_item(
        &self,
        campaign_id: &str,
        item_id: &str,
    ) -> Result<ReviewItem, StoreError> {
        let row: Option<FlatItemRow> = on_pool!(self, pool => {
            let row = sqlx::query(concat!(
                "SELECT ", item_columns!(), " FROM review_items i WHERE i.campaign_id = $1 AND i.item_id = $2"
            )).bind(campaign_id).bind(item_id).fetch_optional(pool).await?;
            match row {
                Some(row) => Some(item_row!(&row, 0)),
                None => None,
            }
        });
        row.map(item_from_row).transpose()?.ok_or_else(|| {
            StoreError::NotFound(format!("campaign `{campaign_id}` has no item `{item_id}`"))
        })
    }

    /// Records a decision on an undecided item, audited (`review.keep` / `review.revoke`). A
    /// keep takes effect at once; a revoke is applied by the caller after
    /// ([`Store::mark_review_applied`]). Refused (conflict) when the item was decided already.
    pub async fn decide_review_item(
        &self,
        campaign: &Campaign,
        item_id: &str,
        decision: &ItemDecision,
    ) -> Result<ReviewItem, StoreError> {
        let applied_at = match decision.decision {
            ReviewDecision::Keep => Some(decision.decided_at),
            ReviewDecision::Revoke => None,
        };
        let claimed = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let claimed = sqlx::query(
                "UPDATE review_items SET decision = $1, decided_by = $2, decided_at = $3, note = $4, applied_at = $5 \
                 WHERE campaign_id = $6 AND item_id = $7 AND decision IS NULL",
            )
            .bind(decision.decision.as_str()).bind(&decision.decided_by).bind(decision.decided_at)
            .bind(&decision.note).bind(applied_at).bind(&campaign.id).bind(item_id)
            .execute(&mut *tx).await?.rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                false
            } else {
                let detail = serde_json::json!({
                    "campaign": campaign.id,
                    "item": item_id,
                    "note": decision.note,
                }).to_string();
                let action = match decision.decision {
                    ReviewDecision::Keep => "review.keep",
                    ReviewDecision::Revoke => "review.revoke",
                };
                finish_write!(tx, decision.decided_at, &decision.decided_by, action, &campaign.tenant, detail);
                true
            }
        });
        let item = self.review_item(&campaign.id, item_id).await?;
        if claimed {
            Ok(item)
        } else {
            let by = item
                .decision
                .as_ref()
                .map(|made| format!("{} by {}", made.decision.as_str(), made.decided_by))
                .unwrap_or_default();
            Err(StoreError::Conflict(format!(
                "item `{item_id}` of campaign `{}` is already decided ({by})",
                campaign.id
            )))
        }
    }

    /// Marks a revoke as applied (the entitlement is gone).
    pub async fn mark_review_applied(
        &self,
        campaign_id: &str,
        item_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE review_items SET applied_at = $1 WHERE campaign_id = $2 AND item_id = $3 AND applied_at IS NULL",
        ).bind(now).bind(campaign_id).bind(item_id).execute(pool).await.map(|_| ())?);
        Ok(())
    }

    /// Revokes recorded but not yet applied (a crash or a failed store write came between),
    /// with their campaigns, at most `limit`.
    pub async fn unapplied_revokes(
        &self,
        limit: i64,
    ) -> Result<Vec<(Campaign, ReviewItem)>, StoreError> {
        self.items_with_campaigns(
            concat!(
                "SELECT ",
                joined_columns!(),
                " FROM review_items i JOIN review_campaigns c ON c.id = i.campaign_id",
                " WHERE i.decision = 'revoke' AND i.applied_at IS NULL AND i.decided_at <= $1",
                " ORDER BY i.decided_at, i.campaign_id LIMIT $2"
            ),
            &[Bind::Int(i64::MAX), Bind::Int(limit)],
        )
        .await
    }

    /// Campaigns due by `now` that revoke what is left undecided and still have undecided
    /// items, taking turns by tenant (each tenant's earliest due first), at most `limit`.
    pub async fn overdue_campaigns(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<Campaign>, StoreError> {
        // Each tenant's earliest-due campaign first, then each one's second, …: one tenant's
        // many campaigns do not hold back another tenant's.
        let rows: Vec<CampaignRow> = on_pool!(self, pool => sqlx::query_as(concat!(
            "SELECT ", campaign_columns!(), " FROM (SELECT c.*, ROW_NUMBER() OVER (PARTITION BY c.tenant ORDER BY c.due_at, c.id) AS turn \
             FROM review_campaigns c WHERE c.auto_revoke_overdue = 1 AND c.due_at <= $1 \
             AND EXISTS (SELECT 1 FROM review_items i WHERE i.campaign_id = c.id AND i.decision IS NULL)) ranked \
             ORDER BY turn, due_at, id LIMIT $2"
        )).bind(now).bind(limit).fetch_all(pool).await?);
        rows.into_iter().map(campaign_from_row).collect()
    }

    /// Undecided items of a campaign, at most `limit`.
    pub async fn undecided_review_items(
        &self,
        campaign_id: &str,
        limit: i64,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let rows: Vec<FlatItemRow> = on_pool!(self, pool => {
            let rows = sqlx::query(concat!(
                "SELECT ", item_columns!(), " FROM review_items i WHERE i.campaign_id = $1 AND i.decision IS NULL ORDER BY i.item_id LIMIT $2"
            )).bind(campaign_id).bind(limit).fetch_all(pool).await?;
            rows.iter().map(|row| Ok::<_, sqlx::Error>(item_row!(row, 0))).collect::<Result<Vec<_>, _>>()?
        });
        rows.into_iter().map(item_from_row).collect()
    }

    /// How many campaigns a tenant has.
    pub async fn count_review_campaigns(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let (count,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM review_campaigns WHERE tenant = $1",
        ).bind(tenant.as_str()).fetch_one(pool).await?);
        Ok(count)
    }

    /// Items with their campaigns, by a query selecting [`joined_columns`] with `binds`.
    async fn items_with_campaigns(
        &self,
        sql: &'static str,
        binds: &[Bind<'_>],
    ) -> Result<Vec<(Campaign, ReviewItem)>, StoreError> {
        let rows: Vec<(CampaignRow, FlatItemRow)> = on_pool!(self, pool => {
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = match bind {
                    Bind::Int(value) => query.bind(*value),
                    Bind::Text(value) => query.bind(*value),
                };
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(|row| {
                use sqlx::Row as _;
                let campaign = campaign_row!(row);
                let item = item_row!(row, 10);
                Ok::<_, sqlx::Error>((campaign, item))
            }).collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        rows.into_iter()
            .map(|(campaign, item)| Ok((campaign_from_row(campaign)?, item_from_row(item)?)))
            .collect()
    }

    /// Undecided items a reviewer (a principal's uid text) is named on, in a tenant's campaigns,
    /// with their campaigns, at most `limit`.
    pub async fn items_for_reviewer(
        &self,
        tenant: &TenantId,
        reviewer: &str,
        limit: i64,
    ) -> Result<Vec<(Campaign, ReviewItem)>, StoreError> {
        self.items_with_campaigns(
            concat!(
                "SELECT ",
                joined_columns!(),
                " FROM review_items i JOIN review_campaigns c ON c.id = i.campaign_id",
                " WHERE c.tenant = $1 AND i.reviewer = $2 AND i.decision IS NULL",
                " ORDER BY c.due_at, i.campaign_id LIMIT $3"
            ),
            &[
                Bind::Text(tenant.as_str()),
                Bind::Text(reviewer),
                Bind::Int(limit),
            ],
        )
        .await
    }

    /// Records usage evidence, keeping the latest per principal and entity.
    pub async fn record_entitlement_usage(
        &self,
        uses: &[EntitlementUse],
    ) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for chunk in uses.chunks(ITEMS_PER_STATEMENT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO entitlement_usage (principal_type, principal_id, entity_type, entity_id, last_allowed_at, decision_id) ",
                );
                insert.push_values(chunk, |mut row, used| {
                    row.push_bind(&used.principal.0)
                        .push_bind(&used.principal.1)
                        .push_bind(&used.entity.0)
                        .push_bind(&used.entity.1)
                        .push_bind(used.last_allowed_at)
                        .push_bind(&used.decision_id);
                });
                insert.push(
                    " ON CONFLICT (principal_type, principal_id, entity_type, entity_id) DO UPDATE SET \
                     last_allowed_at = excluded.last_allowed_at, decision_id = excluded.decision_id \
                     WHERE entitlement_usage.last_allowed_at <= excluded.last_allowed_at",
                );
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The usage evidence of the principals named.
    pub async fn entitlement_usage(
        &self,
        principals: &[(String, String)],
    ) -> Result<Vec<EntitlementUse>, StoreError> {
        let mut found = Vec::new();
        for chunk in principals.chunks(ITEMS_PER_STATEMENT) {
            let rows: Vec<(String, String, String, String, i64, String)> = on_pool!(self, pool => {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT principal_type, principal_id, entity_type, entity_id, last_allowed_at, decision_id FROM entitlement_usage WHERE (principal_type, principal_id) IN (",
                );
                let mut list = query.separated(", ");
                for (principal_type, principal_id) in chunk {
                    list.push("(");
                    list.push_bind_unseparated(principal_type);
                    list.push_unseparated(", ");
                    list.push_bind_unseparated(principal_id);
                    list.push_unseparated(")");
                }
                query.push(")");
                query.build_query_as().fetch_all(pool).await?
            });
            found.extend(rows.into_iter().map(
                |(
                    principal_type,
                    principal_id,
                    entity_type,
                    entity_id,
                    last_allowed_at,
                    decision_id,
                )| {
                    EntitlementUse {
                        principal: (principal_type, principal_id),
                        entity: (entity_type, entity_id),
                        last_allowed_at,
                        decision_id,
                    }
                },
            ));
        }
        Ok(found)
    }

    /// A tenant's role grants in force at `now`, in principal order.
    pub async fn role_assignments_of(
        &self,
        tenant: &TenantId,
        now: i64,
    ) -> Result<Vec<crate::RoleAssignment>, StoreError> {
        let rows: Vec<crate::AssignmentRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT tenant, principal_type, principal_id, role_type, role_id, expires_at, reason, granted_by, granted_at FROM role_assignments \
             WHERE tenant = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY principal_type, principal_id, role_type, role_id",
        ).bind(tenant.as_str()).bind(now).fetch_all(pool).await?);
        Ok(rows.into_iter().map(crate::assignment_from_row).collect())
    }

    /// The parents of a tenant's stored entities of the types named (principals), with when
    /// each entity was last written: `(type, id, parents JSON, updated_at)`.
    pub async fn entity_parents_of(
        &self,
        tenant: &TenantId,
        types: &[String],
    ) -> Result<Vec<(String, String, serde_json::Value, i64)>, StoreError> {
        if types.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, String, String, i64)> = on_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT entity_type, entity_id, parents, updated_at FROM entities WHERE tenant = ",
            );
            query.push_bind(tenant.as_str());
            query.push(" AND entity_type IN (");
            let mut list = query.separated(", ");
            for entity_type in types {
                list.push_bind(entity_type);
            }
            query.push(") AND parents <> '[]' ORDER BY entity_type, entity_id");
            query.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|(entity_type, entity_id, parents, updated_at)| {
                let parents = serde_json::from_str(&parents).map_err(|error| {
                    StoreError::Corrupt(format!("parents of {entity_type}::{entity_id:?}: {error}"))
                })?;
                Ok((entity_type, entity_id, parents, updated_at))
            })
            .collect()
    }

    /// The latest time any scope of each account named helped allow a decision.
    pub async fn last_scope_use(
        &self,
        client_ids: &[String],
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        let mut found = std::collections::HashMap::new();
        for chunk in client_ids.chunks(ITEMS_PER_STATEMENT) {
            let rows: Vec<(String, i64)> = on_pool!(self, pool => {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT client_id, MAX(last_used_at) FROM service_account_scope_usage WHERE client_id IN (",
                );
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id);
                }
                query.push(") GROUP BY client_id");
                query.build_query_as().fetch_all(pool).await?
            });
            found.extend(rows);
        }
        Ok(found)
    }

    /// Opens a console session: the digest of its secret, for an admin credential (its id and
    /// current digest), until `expires_at`. Expired sessions are deleted on the way.
    pub async fn open_console_session(
        &self,
        digest_hex: &str,
        credential: (&str, &str),
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO console_sessions (digest, credential_id, credential_digest, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(digest_hex).bind(credential.0).bind(credential.1).bind(now).bind(expires_at)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The admin credential (id, digest when the session opened) and expiry of a live console
    /// session.
    pub async fn console_session(
        &self,
        digest_hex: &str,
        now: i64,
    ) -> Result<Option<(String, String, i64)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT credential_id, credential_digest, expires_at FROM console_sessions WHERE digest = $1 AND expires_at > $2",
        ).bind(digest_hex).bind(now).fetch_optional(pool).await?))
    }

    /// Ends a console session.
    pub async fn close_console_session(&self, digest_hex: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM console_sessions WHERE digest = $1")
            .bind(digest_hex).execute(pool).await.map(|_| ())?);
        Ok(())
    }
}
