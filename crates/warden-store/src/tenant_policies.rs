//! Tenant-managed policies (issue #19): Cedar text per tenant and name, written and deleted a
//! policy at a time, audited, and carried to replicas by the change feed (kind `policy`).
//! The store keeps text only; validating it against the pack is the caller's job, before it
//! writes. Tests: `tests/store/suite.rs`.

use crate::changes::{Change, ChangeKind};
use crate::{BeginWrite, Store, StoreError, TenantId};

/// One stored tenant policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantPolicyRecord {
    /// The tenant that owns it.
    pub tenant: String,
    /// Its name, unique within the tenant.
    pub name: String,
    /// The Cedar text, as accepted.
    pub text: String,
    /// When it was last written (Unix seconds).
    pub updated_at: i64,
    /// Who wrote it.
    pub updated_by: String,
}

pub(crate) type TenantPolicyRow = (String, String, String, i64, String);

pub(crate) fn policy_from_row(row: TenantPolicyRow) -> TenantPolicyRecord {
    let (tenant, name, text, updated_at, updated_by) = row;
    TenantPolicyRecord {
        tenant,
        name,
        text,
        updated_at,
        updated_by,
    }
}

/// The change rows of tenant policies have no entity type.
pub(crate) const POLICY_CHANGE_TYPE: &str = "";

impl Store {
    /// Writes (creates or replaces) a tenant's policy, audited; returns whether it replaced
    /// one. A new policy beyond `max_per_tenant` is refused.
    pub async fn put_tenant_policy(
        &self,
        tenant: &TenantId,
        name: &str,
        text: &str,
        actor: &str,
        now: i64,
        max_per_tenant: usize,
    ) -> Result<bool, StoreError> {
        let tenant = tenant.as_str();
        let result: Result<bool, StoreError> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let existed: Option<(String,)> = sqlx::query_as(
                "SELECT name FROM tenant_policies WHERE tenant = $1 AND name = $2",
            )
            .bind(tenant)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            if existed.is_none() {
                // The version row's lock orders writers, so two puts cannot both pass the count.
                sqlx::query("UPDATE store_version SET version = version WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                let (held,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tenant_policies WHERE tenant = $1")
                    .bind(tenant)
                    .fetch_one(&mut *tx)
                    .await?;
                if usize::try_from(held).unwrap_or(usize::MAX) >= max_per_tenant {
                    tx.rollback().await?;
                    return Err(StoreError::Refused(format!(
                        "tenant `{tenant}` already has {held} policies, the most one tenant may keep"
                    )));
                }
            }
            sqlx::query(
                "INSERT INTO tenant_policies (tenant, name, text, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant, name) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )
            .bind(tenant)
            .bind(name)
            .bind(text)
            .bind(now)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
            let detail = serde_json::json!({"policy": name, "replaced": existed.is_some(), "text": text}).to_string();
            let changes = [Change::new(ChangeKind::Policy, tenant, POLICY_CHANGE_TYPE, name)];
            finish_write!(tx, now, actor, "policy.put", tenant, detail, changes: &changes);
            Ok(existed.is_some())
        });
        let replaced = result?;
        self.notify_changed().await;
        Ok(replaced)
    }

    /// Deletes a tenant's policy, audited; `NotFound` when there is none of that name.
    pub async fn delete_tenant_policy(
        &self,
        tenant: &TenantId,
        name: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str();
        let result: Result<(), StoreError> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let deleted = sqlx::query("DELETE FROM tenant_policies WHERE tenant = $1 AND name = $2")
                .bind(tenant)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                tx.rollback().await?;
                return Err(StoreError::NotFound(format!(
                    "no policy `{name}` in tenant `{tenant}`"
                )));
            }
            let detail = serde_json::json!({"policy": name}).to_string();
            let changes = [Change::new(ChangeKind::Policy, tenant, POLICY_CHANGE_TYPE, name)];
            finish_write!(tx, now, actor, "policy.delete", tenant, detail, changes: &changes);
            Ok(())
        });
        result?;
        self.notify_changed().await;
        Ok(())
    }

    /// One tenant's policies, by name.
    pub async fn tenant_policies_of(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<TenantPolicyRecord>, StoreError> {
        let tenant = tenant.as_str();
        let rows: Vec<TenantPolicyRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT tenant, name, text, updated_at, updated_by FROM tenant_policies WHERE tenant = $1 ORDER BY name",
        ).bind(tenant).fetch_all(pool).await?);
        Ok(rows.into_iter().map(policy_from_row).collect())
    }

    /// Every tenant's policies, by tenant and name.
    pub async fn all_tenant_policies(&self) -> Result<Vec<TenantPolicyRecord>, StoreError> {
        let rows: Vec<TenantPolicyRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT tenant, name, text, updated_at, updated_by FROM tenant_policies ORDER BY tenant, name",
        ).fetch_all(pool).await?);
        Ok(rows.into_iter().map(policy_from_row).collect())
    }
}
