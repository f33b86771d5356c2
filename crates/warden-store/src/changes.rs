//! The change feed: which keys each write changed, at the version it committed at, so replicas
//! apply changes row by row (issue #20) instead of re-reading the whole store on every write.
//!
//! A write records one row per key it touched (`changes`, written by `finish_write!` in the
//! write's own transaction). A replica at version `v` reads the keys changed after `v` and the
//! current rows of exactly those keys, in one read transaction, so the result is the state of
//! those keys at the version it reports. Old changes are pruned; `change_floor` says up to which
//! version, and a replica that saw less reads everything again ([`ChangeRead::TooFar`]).

use std::collections::BTreeMap;

use crate::tenant_policies::{TenantPolicyRecord, policy_from_row};
use crate::{
    AssignmentRow, BeginWrite, EntityRecord, PrincipalStatus, RoleAssignment, Store, StoreError,
    entity_from_row,
};

/// What a change row is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// An entity row (written or deleted).
    Entity,
    /// The role grants of a principal.
    Grant,
    /// The lifecycle status of a principal.
    Status,
    /// A tenant-managed policy (the key's entity id is the policy's name).
    Policy,
}

impl ChangeKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Entity => "entity",
            ChangeKind::Grant => "grant",
            ChangeKind::Status => "status",
            ChangeKind::Policy => "policy",
        }
    }
}

/// One key a write changed (inside the write's transaction).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Change<'a> {
    pub(crate) kind: ChangeKind,
    pub(crate) tenant: &'a str,
    pub(crate) entity_type: &'a str,
    pub(crate) entity_id: &'a str,
}

impl<'a> Change<'a> {
    pub(crate) fn new(
        kind: ChangeKind,
        tenant: &'a str,
        entity_type: &'a str,
        entity_id: &'a str,
    ) -> Self {
        Change {
            kind,
            tenant,
            entity_type,
            entity_id,
        }
    }
}

/// A stored key: tenant, entity type, entity id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityKey {
    /// The tenant.
    pub tenant: String,
    /// The entity type.
    pub entity_type: String,
    /// The entity id.
    pub entity_id: String,
}

/// The current state of every key changed after `since`, as of `version`.
#[derive(Clone, Debug, Default)]
pub struct StoreChanges {
    /// The version the reader had.
    pub since: i64,
    /// The last version this read covers (the reader's position after it).
    pub version: i64,
    /// The store's version when it was read (beyond `version` when there was more to read).
    pub latest: i64,
    /// The time (Unix seconds) grants were judged at.
    pub read_at: i64,
    /// Each changed entity: its row, or `None` when it was deleted.
    pub entities: Vec<(EntityKey, Option<EntityRecord>)>,
    /// Each principal whose grants changed: every grant it holds in force at `read_at`.
    pub grants: Vec<(EntityKey, Vec<RoleAssignment>)>,
    /// Each principal whose status changed: its status now.
    pub statuses: Vec<(EntityKey, PrincipalStatus)>,
    /// Each tenant policy changed, by tenant and name: its row, or `None` when it was deleted.
    pub policies: Vec<((String, String), Option<TenantPolicyRecord>)>,
}

/// What [`Store::read_changes`] found.
#[derive(Clone, Debug)]
pub enum ChangeRead {
    /// The changes since the reader's version.
    Changes(StoreChanges),
    /// The reader is behind the pruned changes: read everything instead.
    TooFar,
}

type KeyedEntityRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);
type KeyedGrantRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);
type KeyedStatusRow = (String, String, String, Option<String>);
type KeyedPolicyRow = (String, String, Option<String>, Option<i64>, Option<String>);

fn key(tenant: String, entity_type: String, entity_id: String) -> EntityKey {
    EntityKey {
        tenant,
        entity_type,
        entity_id,
    }
}

impl Store {
    /// The current state of the keys changed after `since`, in one read transaction
    /// (repeatable read on PostgreSQL): those of the first versions after `since` whose change
    /// rows number at most `max_changes` (all of them when fewer are pending; one version
    /// whole when it alone has more). The answer's `version` is the last version it covers; a
    /// reader at it reads on from there. [`ChangeRead::TooFar`] when `since` is below the
    /// pruned floor.
    pub async fn read_changes(
        &self,
        since: i64,
        now: i64,
        max_changes: i64,
    ) -> Result<ChangeRead, StoreError> {
        let postgres = matches!(self, Store::Postgres(_));
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                // Prepared statements switch to a generic plan after a few runs, and a generic
                // plan of `version > $1` guesses a third of the table: a scan of every change
                // ever kept, on every read. Plans made for the actual version use the index.
                sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
                    .execute(&mut *tx)
                    .await?;
            }
            let (version,): (i64,) = sqlx::query_as("SELECT version FROM store_version WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            let (floor,): (i64,) = sqlx::query_as("SELECT version FROM change_floor WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            if since < floor || since > version {
                return Ok(ChangeRead::TooFar);
            }
            // At most `max_changes` change rows per read, whole versions at a time: a replica far
            // behind catches up in steps instead of reading everything again and again.
            let cut: Option<(i64,)> = sqlx::query_as(
                "SELECT version FROM changes WHERE version > $1 ORDER BY version LIMIT 1 OFFSET $2",
            )
            .bind(since)
            .bind(max_changes)
            .fetch_optional(&mut *tx)
            .await?;
            let upto = match cut {
                None => version,
                Some((first_left_out,)) if first_left_out - 1 > since => first_left_out - 1,
                Some((one_big_version,)) => one_big_version,
            };
            let entity_rows: Vec<KeyedEntityRow> = sqlx::query_as(
                "SELECT c.tenant, c.entity_type, c.entity_id, e.attrs, e.parents, e.canonical_for FROM \
                 (SELECT DISTINCT tenant, entity_type, entity_id FROM changes WHERE version > $1 AND version <= $2 AND kind = 'entity') c \
                 LEFT JOIN entities e ON e.tenant = c.tenant AND e.entity_type = c.entity_type AND e.entity_id = c.entity_id \
                 ORDER BY c.tenant, c.entity_type, c.entity_id",
            )
            .bind(since)
            .bind(upto)
            .fetch_all(&mut *tx)
            .await?;
            let grant_rows: Vec<KeyedGrantRow> = sqlx::query_as(
                "SELECT c.tenant, c.entity_type, c.entity_id, r.role_type, r.role_id, r.expires_at, r.reason, r.granted_by, r.granted_at FROM \
                 (SELECT DISTINCT tenant, entity_type, entity_id FROM changes WHERE version > $1 AND version <= $3 AND kind = 'grant') c \
                 LEFT JOIN role_assignments r ON r.tenant = c.tenant AND r.principal_type = c.entity_type AND r.principal_id = c.entity_id \
                 AND (r.expires_at IS NULL OR r.expires_at > $2) \
                 ORDER BY c.tenant, c.entity_type, c.entity_id, r.role_type, r.role_id",
            )
            .bind(since)
            .bind(now)
            .bind(upto)
            .fetch_all(&mut *tx)
            .await?;
            let status_rows: Vec<KeyedStatusRow> = sqlx::query_as(
                "SELECT c.tenant, c.entity_type, c.entity_id, s.status FROM \
                 (SELECT DISTINCT tenant, entity_type, entity_id FROM changes WHERE version > $1 AND version <= $2 AND kind = 'status') c \
                 LEFT JOIN principal_status s ON s.tenant = c.tenant AND s.principal_type = c.entity_type AND s.principal_id = c.entity_id \
                 ORDER BY c.tenant, c.entity_type, c.entity_id",
            )
            .bind(since)
            .bind(upto)
            .fetch_all(&mut *tx)
            .await?;
            let policy_rows: Vec<KeyedPolicyRow> = sqlx::query_as(
                "SELECT c.tenant, c.entity_id, p.text, p.updated_at, p.updated_by FROM \
                 (SELECT DISTINCT tenant, entity_id FROM changes WHERE version > $1 AND version <= $2 AND kind = 'policy') c \
                 LEFT JOIN tenant_policies p ON p.tenant = c.tenant AND p.name = c.entity_id \
                 ORDER BY c.tenant, c.entity_id",
            )
            .bind(since)
            .bind(upto)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let policies = policy_rows
                .into_iter()
                .map(|(tenant, name, text, updated_at, updated_by)| {
                    let record = match (text, updated_at, updated_by) {
                        (Some(text), Some(updated_at), Some(updated_by)) => Some(policy_from_row((
                            tenant.clone(),
                            name.clone(),
                            text,
                            updated_at,
                            updated_by,
                        ))),
                        _ => None,
                    };
                    ((tenant, name), record)
                })
                .collect();
            let mut entities = Vec::with_capacity(entity_rows.len());
            for (tenant, entity_type, entity_id, attrs, parents, canonical_for) in entity_rows {
                let record = match (attrs, parents) {
                    (Some(attrs), Some(parents)) => Some(entity_from_row((
                        tenant.clone(),
                        entity_type.clone(),
                        entity_id.clone(),
                        attrs,
                        parents,
                        canonical_for,
                    ))?),
                    _ => None,
                };
                entities.push((key(tenant, entity_type, entity_id), record));
            }
            let mut grants: BTreeMap<EntityKey, Vec<RoleAssignment>> = BTreeMap::new();
            for (tenant, entity_type, entity_id, role_type, role_id, expires_at, reason, granted_by, granted_at) in grant_rows {
                let held = grants
                    .entry(key(tenant.clone(), entity_type.clone(), entity_id.clone()))
                    .or_default();
                if let (Some(role_type), Some(role_id), Some(reason), Some(granted_by), Some(granted_at)) =
                    (role_type, role_id, reason, granted_by, granted_at)
                {
                    let row: AssignmentRow = (
                        tenant, entity_type, entity_id, role_type, role_id, expires_at, reason,
                        granted_by, granted_at,
                    );
                    held.push(crate::assignment_from_row(row));
                }
            }
            let mut statuses = Vec::with_capacity(status_rows.len());
            for (tenant, entity_type, entity_id, status) in status_rows {
                let status = match status {
                    Some(text) => text.parse()?,
                    None => PrincipalStatus::Active,
                };
                statuses.push((key(tenant, entity_type, entity_id), status));
            }
            Ok(ChangeRead::Changes(StoreChanges {
                since,
                version: upto,
                latest: version,
                read_at: now,
                entities,
                grants: grants.into_iter().collect(),
                statuses,
                policies,
            }))
        })
    }

    /// Deletes change rows written before `before` (Unix seconds) and raises the floor to the
    /// newest version deleted; returns how many rows went. Replicas behind the floor read
    /// everything again.
    pub async fn prune_changes(&self, before: i64) -> Result<u64, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (newest,): (Option<i64>,) = sqlx::query_as("SELECT MAX(version) FROM changes WHERE at < $1")
                .bind(before)
                .fetch_one(&mut *tx)
                .await?;
            let Some(newest) = newest else {
                return Ok(0);
            };
            let deleted = sqlx::query("DELETE FROM changes WHERE version <= $1")
                .bind(newest)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("UPDATE change_floor SET version = $1 WHERE id = 1 AND version < $1")
                .bind(newest)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(deleted)
        })
    }

    /// Wakes the other replicas after a write (PostgreSQL `NOTIFY`; nothing on SQLite, where
    /// every replica shares one file and polls). Best effort: the version poll is the truth.
    pub(crate) async fn notify_changed(&self) {
        if let Store::Postgres(pool) = self
            && let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANGES_CHANNEL)
                .execute(pool)
                .await
        {
            tracing::debug!(%error, "waking the other replicas failed; they see the change at their next poll");
        }
    }
}

/// The PostgreSQL channel writes notify on.
pub const CHANGES_CHANNEL: &str = "warden_changes";

/// A PostgreSQL connection listening for other replicas' writes.
#[derive(Debug)]
pub struct ChangeListener(sqlx::postgres::PgListener);

impl ChangeListener {
    /// Waits for the next notification.
    pub async fn recv(&mut self) -> Result<(), StoreError> {
        self.0.recv().await?;
        Ok(())
    }
}

impl Store {
    /// Listens for writes on PostgreSQL (refused on SQLite, which has no notifications).
    pub async fn listen_for_changes(&self) -> Result<ChangeListener, StoreError> {
        match self {
            Store::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(CHANGES_CHANNEL).await?;
                Ok(ChangeListener(listener))
            }
            Store::Sqlite(_) => Err(StoreError::Refused(
                "SQLite has no change notifications".to_owned(),
            )),
        }
    }
}
