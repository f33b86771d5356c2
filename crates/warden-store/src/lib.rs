//! Warden's state on SQLite (the embedded default) or PostgreSQL (many replicas), with sqlx.
//!
//! Everything is tenant-scoped: every read and write names the tenant, and the same entity id
//! in two tenants is two rows. Stored: entities (Cedar entity JSON parts: attributes and
//! parents, plus a principal status), role assignments (optionally time-bound, with reason and
//! grantor), admin credentials (SHA-256 digests only), the admin audit trail, and a version
//! counter bumped by every write in the same transaction, which is how replicas notice change.
//! Both back ends run the same SQL (positional `$N` parameters, portable types). Migrations are
//! versioned per back end in `migrations/` and applied at connect. Tests: `tests/store/`, run on
//! SQLite always and on PostgreSQL when `WARDEN_TEST_POSTGRES_URL` is set.

use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A store operation that failed. Messages name what was involved, never secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite://…` nor `postgres://…`.
    #[error("storage url `{0}` is not sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The operation is refused (e.g. an admin credential already exists).
    #[error("{0}")]
    Refused(String),
    /// Nothing matched.
    #[error("{0}")]
    NotFound(String),
    /// The write conflicts with the state it found (e.g. an item already decided).
    #[error("{0}")]
    Conflict(String),
}

/// A principal's lifecycle status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalStatus {
    /// May act.
    Active,
    /// Suspended: every decision for it is a deny.
    Disabled,
    /// Gone: every decision for it is a deny.
    Deleted,
}

impl PrincipalStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalStatus::Active => "active",
            PrincipalStatus::Disabled => "disabled",
            PrincipalStatus::Deleted => "deleted",
        }
    }
}

impl FromStr for PrincipalStatus {
    type Err = StoreError;
    fn from_str(text: &str) -> Result<Self, StoreError> {
        match text {
            "active" => Ok(PrincipalStatus::Active),
            "disabled" => Ok(PrincipalStatus::Disabled),
            "deleted" => Ok(PrincipalStatus::Deleted),
            other => Err(StoreError::Corrupt(format!("unknown status `{other}`"))),
        }
    }
}

/// One entity, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityRecord {
    /// The tenant it belongs to.
    pub tenant: String,
    /// Cedar entity type.
    pub entity_type: String,
    /// Cedar entity id (for tenant-scoped types `<tenant>/<local id>`).
    pub entity_id: String,
    /// Cedar entity JSON `attrs`.
    pub attrs: Value,
    /// Cedar entity JSON `parents` (`[{"type", "id"}]`).
    pub parents: Value,
    /// When `attrs` and `parents` are Cedar's own JSON of the entity after a schema validated
    /// it (what imports write): the pack's data fingerprint (schema and manifest) of that
    /// schema. A replica on the same fingerprint takes the row without validating it again.
    pub canonical_for: Option<String>,
}

/// A principal's lifecycle status, kept apart from any entity data: a principal known only
/// from tokens can be disabled, and setting a status never writes an entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRecord {
    /// The tenant.
    pub tenant: String,
    /// The principal's Cedar entity type.
    pub principal_type: String,
    /// The principal's Cedar entity id.
    pub principal_id: String,
    /// Its status.
    pub status: PrincipalStatus,
}

/// Everything the decision snapshot needs, read in one transaction, so the version names
/// exactly the data read with it.
#[derive(Clone, Debug, Default)]
pub struct StoreState {
    /// The change counter the data is at.
    pub version: i64,
    /// The time (Unix seconds) time-bound grants were judged at.
    pub read_at: i64,
    /// Every stored entity.
    pub entities: Vec<EntityRecord>,
    /// Grants in force at `read_at`.
    pub assignments: Vec<RoleAssignment>,
    /// Principals that are not active.
    pub statuses: Vec<StatusRecord>,
    /// Every tenant-managed policy, by tenant and name.
    pub policies: Vec<TenantPolicyRecord>,
    /// The next grant expiry after `read_at`.
    pub next_expiry: Option<i64>,
}

/// A role held by a principal in a tenant, possibly until a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleAssignment {
    /// The tenant.
    pub tenant: String,
    /// The principal's type.
    pub principal_type: String,
    /// The principal's id.
    pub principal_id: String,
    /// The role's type (e.g. `Role`).
    pub role_type: String,
    /// The role's id.
    pub role_id: String,
    /// Unix seconds after which the grant no longer counts.
    pub expires_at: Option<i64>,
    /// Why it was granted.
    pub reason: String,
    /// Who granted it.
    pub granted_by: String,
    /// When.
    pub granted_at: i64,
}

/// An admin credential (its digest only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminCredential {
    /// Public id, shown in audit records.
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub digest_hex: String,
    /// `None` for all tenants, or the one tenant it may administer.
    pub tenant_scope: Option<String>,
}

/// One admin audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Order of writing.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who (an admin credential id).
    pub actor: String,
    /// What (e.g. `role.grant`).
    pub action: String,
    /// Which tenant.
    pub tenant: Option<String>,
    /// Details as JSON text.
    pub detail: String,
}

/// The store: one of the two back ends.
#[derive(Clone, Debug)]
pub enum Store {
    /// Embedded SQLite (WAL, synchronous=FULL: an acknowledged write survives a crash).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs the same code on either pool.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// Starts a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock is
/// taken at the start, so two writers queue on the busy timeout instead of both reading under a
/// shared lock and one failing with "database is locked" when it upgrades (SQLite cannot wait
/// there without deadlocking). PostgreSQL's row locks already queue, so it begins as usual.
pub(crate) trait BeginWrite {
    /// The pool's database.
    type Db: sqlx::Database;
    /// Begins the write transaction.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

mod migrate;

/// Ends a write: its audit record, the change-counter bump every replica watches, the keys it
/// changed (the change feed replicas apply row by row, at the version the write commits at),
/// and the commit, all in the write's own transaction (so none can be lost without the others).
/// The version row's lock is held until the commit, so versions commit in order.
macro_rules! finish_write {
    ($tx:ident, $at:expr, $actor:expr, $action:expr, $tenant:expr, $detail:expr) => {
        finish_write!($tx, $at, $actor, $action, $tenant, $detail, changes: &[])
    };
    ($tx:ident, $at:expr, $actor:expr, $action:expr, $tenant:expr, $detail:expr, changes: $changes:expr) => {{
        let at: i64 = $at;
        sqlx::query("INSERT INTO admin_audit (at, actor, action, tenant, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(at)
            .bind($actor)
            .bind($action)
            .bind($tenant)
            .bind($detail)
            .execute(&mut *$tx)
            .await?;
        let (version,): (i64,) = sqlx::query_as(
            "UPDATE store_version SET version = version + 1 WHERE id = 1 RETURNING version",
        )
        .fetch_one(&mut *$tx)
        .await?;
        let changes: &[$crate::changes::Change<'_>] = $changes;
        // Many rows per statement: an import of thousands of entities is a few round trips.
        for chunk in changes.chunks($crate::ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO changes (version, kind, tenant, entity_type, entity_id, at) ",
            );
            insert.push_values(chunk, |mut row, change| {
                row.push_bind(version)
                    .push_bind(change.kind.as_str())
                    .push_bind(change.tenant)
                    .push_bind(change.entity_type)
                    .push_bind(change.entity_id)
                    .push_bind(at);
            });
            insert.build().execute(&mut *$tx).await?;
        }
        $tx.commit().await?;
    }};
}

/// Inside a write's transaction: bumps the store version first (the version row's lock orders
/// writers, so versions commit in order) and inserts the revocation at that version; evaluates
/// to `(id, version)`. Replicas read revocations by the version they were written at.
macro_rules! insert_revocation {
    ($tx:ident, $revocation:expr) => {{
        let revocation: &Revocation = $revocation;
        let (version,): (i64,) = sqlx::query_as(
            "UPDATE store_version SET version = version + 1 WHERE id = 1 RETURNING version",
        )
        .fetch_one(&mut *$tx)
        .await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO revocations (version, kind, issuer, value, revoked_at, expires_at, reason, actor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(version)
        .bind(revocation.kind.as_str())
        .bind(&revocation.issuer)
        .bind(&revocation.value)
        .bind(revocation.revoked_at)
        .bind(revocation.expires_at)
        .bind(&revocation.reason)
        .bind(&revocation.actor)
        .fetch_one(&mut *$tx)
        .await?;
        (id, version)
    }};
}

mod admin_credentials;
pub use admin_credentials::{AdminCredentialRecord, NewAdminCredential};
mod changes;
use changes::Change;
pub use changes::{
    CHANGES_CHANNEL, ChangeKind, ChangeListener, ChangeRead, EntityKey, StoreChanges,
};
mod ids;
pub use ids::{ClientId, IdError, TenantId};
mod reviews;
pub use reviews::{
    Campaign, CampaignCounts, EntitlementUse, ItemDecision, ItemKind, ReviewDecision, ReviewItem,
    ReviewScope,
};
mod revocations;
pub use revocations::{Revocation, RevocationKind};
mod service_accounts;
pub use service_accounts::{
    AccountStatus, Credential, CredentialSecret, Offboarding, ServiceAccount,
};
mod signing_keys;
pub use signing_keys::SigningKeyRecord;
mod tenant_policies;
pub use tenant_policies::TenantPolicyRecord;

type EntityRow = (String, String, String, String, String, Option<String>);

/// Rows per page when everything is read.
pub const READ_PAGE: i64 = 5000;

/// Rows per multi-row `INSERT` (7 values each: well under SQLite's 32,766 parameters).
pub const ROWS_PER_STATEMENT: usize = 1000;
type StatusRow = (String, String, String, String);
pub(crate) type AssignmentRow = (
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    String,
    String,
    i64,
);

fn entity_from_row(row: EntityRow) -> Result<EntityRecord, StoreError> {
    let (tenant, entity_type, entity_id, attrs, parents, canonical_for) = row;
    Ok(EntityRecord {
        canonical_for,
        attrs: serde_json::from_str(&attrs).map_err(|e| {
            StoreError::Corrupt(format!("attrs of {entity_type}::{entity_id}: {e}"))
        })?,
        parents: serde_json::from_str(&parents).map_err(|e| {
            StoreError::Corrupt(format!("parents of {entity_type}::{entity_id}: {e}"))
        })?,
        tenant,
        entity_type,
        entity_id,
    })
}

fn status_from_row(row: StatusRow) -> Result<StatusRecord, StoreError> {
    let (tenant, principal_type, principal_id, status) = row;
    Ok(StatusRecord {
        status: status.parse()?,
        tenant,
        principal_type,
        principal_id,
    })
}

pub(crate) fn assignment_from_row(row: AssignmentRow) -> RoleAssignment {
    let (
        tenant,
        principal_type,
        principal_id,
        role_type,
        role_id,
        expires_at,
        reason,
        granted_by,
        granted_at,
    ) = row;
    RoleAssignment {
        tenant,
        principal_type,
        principal_id,
        role_type,
        role_id,
        expires_at,
        reason,
        granted_by,
        granted_at,
    }
}

impl Store {
    /// Connects and applies pending migrations. `sqlite://path` creates the file if needed.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            Store::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await?,
            )
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Store::Postgres(
                PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await?,
            )
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        migrate::apply(&store).await?;
        Ok(store)
    }

    /// Which back end, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// The change counter: every write bumps it in its own transaction.
    pub async fn version(&self) -> Result<i64, StoreError> {
        let version: (i64,) = on_pool!(self, pool => sqlx::query_as("SELECT version FROM store_version WHERE id = 1").fetch_one(pool).await?);
        Ok(version.0)
    }

    /// Inserts or replaces entities of one tenant, atomically, and records who did it.
    pub async fn upsert_entities(
        &self,
        tenant: &TenantId,
        entities: &[EntityRecord],
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str();
        let result: Result<(), StoreError> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for entity in entities {
                if entity.tenant != tenant {
                    return Err(StoreError::Refused(format!(
                        "entity {}::{} names tenant `{}`, not `{tenant}`",
                        entity.entity_type, entity.entity_id, entity.tenant
                    )));
                }
            }
            // The last of several writes of one key wins (one statement may not write a row twice).
            let mut last: std::collections::HashMap<(&str, &str), usize> = std::collections::HashMap::new();
            for (position, entity) in entities.iter().enumerate() {
                last.insert((&entity.entity_type, &entity.entity_id), position);
            }
            let unique: Vec<&EntityRecord> = entities
                .iter()
                .enumerate()
                .filter(|(position, entity)| last.get(&(entity.entity_type.as_str(), entity.entity_id.as_str())) == Some(position))
                .map(|(_, entity)| entity)
                .collect();
            for chunk in unique.chunks(ROWS_PER_STATEMENT) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO entities (tenant, entity_type, entity_id, attrs, parents, updated_at, canonical_for) ",
                );
                insert.push_values(chunk, |mut row, entity| {
                    row.push_bind(tenant)
                        .push_bind(&entity.entity_type)
                        .push_bind(&entity.entity_id)
                        .push_bind(entity.attrs.to_string())
                        .push_bind(entity.parents.to_string())
                        .push_bind(now)
                        .push_bind(&entity.canonical_for);
                });
                insert.push(
                    " ON CONFLICT (tenant, entity_type, entity_id) DO UPDATE SET attrs = excluded.attrs, parents = excluded.parents, updated_at = excluded.updated_at, canonical_for = excluded.canonical_for",
                );
                insert.build().execute(&mut *tx).await?;
            }
            let detail = serde_json::json!({"entities": entities.len()}).to_string();
            let changes: Vec<Change<'_>> = entities
                .iter()
                .map(|entity| Change::new(ChangeKind::Entity, tenant, &entity.entity_type, &entity.entity_id))
                .collect();
            finish_write!(tx, now, actor, "entity.upsert", tenant, detail, changes: &changes);
            Ok(())
        });
        result?;
        self.notify_changed().await;
        Ok(())
    }

    /// Deletes one entity of a tenant (and its role assignments).
    pub async fn delete_entity(
        &self,
        tenant: &TenantId,
        entity_type: &str,
        entity_id: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str();
        let result: Result<(), StoreError> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let deleted = sqlx::query("DELETE FROM entities WHERE tenant = $1 AND entity_type = $2 AND entity_id = $3")
                .bind(tenant).bind(entity_type).bind(entity_id)
                .execute(&mut *tx).await?.rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound(format!("no entity {entity_type}::{entity_id:?} in tenant `{tenant}`")));
            }
            sqlx::query("DELETE FROM role_assignments WHERE tenant = $1 AND principal_type = $2 AND principal_id = $3")
                .bind(tenant).bind(entity_type).bind(entity_id)
                .execute(&mut *tx).await?;
            let detail = serde_json::json!({"entity": format!("{entity_type}::{entity_id:?}")}).to_string();
            let changes = [
                Change::new(ChangeKind::Entity, tenant, entity_type, entity_id),
                Change::new(ChangeKind::Grant, tenant, entity_type, entity_id),
            ];
            finish_write!(tx, now, actor, "entity.delete", tenant, detail, changes: &changes);
            Ok(())
        });
        result?;
        self.notify_changed().await;
        Ok(())
    }

    /// The entities of one tenant.
    pub async fn entities_of(&self, tenant: &TenantId) -> Result<Vec<EntityRecord>, StoreError> {
        let tenant = tenant.as_str();
        let rows: Vec<EntityRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT tenant, entity_type, entity_id, attrs, parents, canonical_for FROM entities WHERE tenant = $1 ORDER BY entity_type, entity_id",
        ).bind(tenant).fetch_all(pool).await?);
        rows.into_iter().map(entity_from_row).collect()
    }

    /// Every entity of every tenant, every grant in force at `now` and every principal status,
    /// read in one transaction (repeatable read on PostgreSQL, one read snapshot on SQLite), so
    /// `version` is exactly the version of the data: a view can be ordered by it.
    pub async fn read_state(&self, now: i64) -> Result<StoreState, StoreError> {
        let mut entities = Vec::new();
        let mut state = self
            .read_state_with(now, |record| {
                entities.push(record);
                Ok::<(), StoreError>(())
            })
            .await?;
        state.entities = entities;
        Ok(state)
    }

    /// [`Store::read_state`], handing each entity to `on_entity` as it is read (pages of
    /// [`READ_PAGE`] rows, in key order, inside the one transaction) instead of collecting them:
    /// a million entities are never all held as rows at once. The answer's `entities` is empty.
    pub async fn read_state_with<E: From<StoreError>>(
        &self,
        now: i64,
        mut on_entity: impl FnMut(EntityRecord) -> Result<(), E>,
    ) -> Result<StoreState, E> {
        let postgres = matches!(self, Store::Postgres(_));
        let result: Result<Result<StoreState, E>, StoreError> = on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut *tx)
                    .await?;
            }
            let (version,): (i64,) = sqlx::query_as("SELECT version FROM store_version WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            let mut after = (String::new(), String::new(), String::new());
            loop {
                let page: Vec<EntityRow> = sqlx::query_as(
                    "SELECT tenant, entity_type, entity_id, attrs, parents, canonical_for FROM entities \
                     WHERE (tenant, entity_type, entity_id) > ($1, $2, $3) \
                     ORDER BY tenant, entity_type, entity_id LIMIT $4",
                )
                .bind(&after.0)
                .bind(&after.1)
                .bind(&after.2)
                .bind(READ_PAGE)
                .fetch_all(&mut *tx)
                .await?;
                let full = page.len() == usize::try_from(READ_PAGE).unwrap_or(usize::MAX);
                for row in page {
                    after = (row.0.clone(), row.1.clone(), row.2.clone());
                    if let Err(error) = entity_from_row(row).map_err(E::from).and_then(&mut on_entity) {
                        return Ok(Err(error));
                    }
                }
                if !full {
                    break;
                }
            }
            let assignment_rows: Vec<AssignmentRow> = sqlx::query_as(
                "SELECT tenant, principal_type, principal_id, role_type, role_id, expires_at, reason, granted_by, granted_at FROM role_assignments \
                 WHERE expires_at IS NULL OR expires_at > $1 ORDER BY tenant, principal_type, principal_id, role_type, role_id",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let status_rows: Vec<StatusRow> = sqlx::query_as(
                "SELECT tenant, principal_type, principal_id, status FROM principal_status WHERE status <> 'active' \
                 ORDER BY tenant, principal_type, principal_id",
            )
            .fetch_all(&mut *tx)
            .await?;
            let (next_expiry,): (Option<i64>,) =
                sqlx::query_as("SELECT MIN(expires_at) FROM role_assignments WHERE expires_at > $1")
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
            let policy_rows: Vec<tenant_policies::TenantPolicyRow> = sqlx::query_as(
                "SELECT tenant, name, text, updated_at, updated_by FROM tenant_policies ORDER BY tenant, name",
            )
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let statuses = match status_rows.into_iter().map(status_from_row).collect::<Result<_, _>>() {
                Ok(statuses) => statuses,
                Err(error) => return Ok(Err(E::from(error))),
            };
            Ok(Ok(StoreState {
                version,
                read_at: now,
                entities: Vec::new(),
                assignments: assignment_rows.into_iter().map(assignment_from_row).collect(),
                statuses,
                policies: policy_rows.into_iter().map(tenant_policies::policy_from_row).collect(),
                next_expiry,
            }))
        }.await);
        result.map_err(E::from)?
    }

    /// Sets a principal's status in a tenant. The status is kept on its own: no entity is read
    /// or written, so it holds for principals known only from tokens, and it never copies role
    /// grants or entity-file data into the store.
    pub async fn set_status(
        &self,
        tenant: &TenantId,
        entity_type: &str,
        entity_id: &str,
        status: PrincipalStatus,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str();
        let result: Result<(), StoreError> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO principal_status (tenant, principal_type, principal_id, status, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant, principal_type, principal_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
            )
            .bind(tenant).bind(entity_type).bind(entity_id).bind(status.as_str()).bind(now)
            .execute(&mut *tx).await?;
            let detail = serde_json::json!({"principal": format!("{entity_type}::{entity_id:?}"), "status": status.as_str()}).to_string();
            let changes = [Change::new(ChangeKind::Status, tenant, entity_type, entity_id)];
            finish_write!(tx, now, actor, "principal.status", tenant, detail, changes: &changes);
            Ok(())
        });
        result?;
        self.notify_changed().await;
        Ok(())
    }

    /// The statuses of one tenant's principals that are not active.
    pub async fn statuses_of(&self, tenant: &TenantId) -> Result<Vec<StatusRecord>, StoreError> {
        let tenant = tenant.as_str();
        let rows: Vec<StatusRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT tenant, principal_type, principal_id, status FROM principal_status WHERE tenant = $1 AND status <> 'active' ORDER BY principal_type, principal_id",
        ).bind(tenant).fetch_all(pool).await?);
        rows.into_iter().map(status_from_row).collect()
    }

    /// Grants a role (replacing an earlier grant of the same role), audited.
    pub async fn grant_role(&self, grant: &RoleAssignment) -> Result<(), StoreError> {
        let result: Result<(), StoreError> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO role_assignments (tenant, principal_type, principal_id, role_type, role_id, expires_at, reason, granted_by, granted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (tenant, principal_type, principal_id, role_type, role_id) DO UPDATE SET expires_at = excluded.expires_at, reason = excluded.reason, granted_by = excluded.granted_by, granted_at = excluded.granted_at",
            )
            .bind(&grant.tenant).bind(&grant.principal_type).bind(&grant.principal_id).bind(&grant.role_type).bind(&grant.role_id)
            .bind(grant.expires_at).bind(&grant.reason).bind(&grant.granted_by).bind(grant.granted_at)
            .execute(&mut *tx).await?;
            let detail = serde_json::json!({
                "principal": format!("{}::{:?}", grant.principal_type, grant.principal_id),
                "role": format!("{}::{:?}", grant.role_type, grant.role_id),
                "expires_at": grant.expires_at,
                "reason": grant.reason,
            }).to_string();
            let changes = [Change::new(ChangeKind::Grant, &grant.tenant, &grant.principal_type, &grant.principal_id)];
            finish_write!(tx, grant.granted_at, &grant.granted_by, "role.grant", &grant.tenant, detail, changes: &changes);
            Ok(())
        });
        result?;
        self.notify_changed().await;
        Ok(())
    }

    /// Revokes a role, audited with the reason: the grant, and the role among the parents of
    /// the principal's stored entity (an imported entity's roles are parents), whichever hold
    /// it. Not found when neither does.
    #[allow(
        clippy::too_many_arguments,
        reason = "each part of a grant is named on purpose"
    )]
    pub async fn revoke_role(
        &self,
        tenant: &TenantId,
        principal: (&str, &str),
        role: (&str, &str),
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str();
        let result: Result<(), StoreError> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // The parents are read, changed and written back: the version row's lock, taken
            // first, keeps a concurrent edit of the same entity from writing over this one.
            sqlx::query("UPDATE store_version SET version = version WHERE id = 1").execute(&mut *tx).await?;
            let deleted = sqlx::query("DELETE FROM role_assignments WHERE tenant = $1 AND principal_type = $2 AND principal_id = $3 AND role_type = $4 AND role_id = $5")
                .bind(tenant).bind(principal.0).bind(principal.1).bind(role.0).bind(role.1)
                .execute(&mut *tx).await?.rows_affected();
            let stored: Option<(String,)> = sqlx::query_as("SELECT parents FROM entities WHERE tenant = $1 AND entity_type = $2 AND entity_id = $3")
                .bind(tenant).bind(principal.0).bind(principal.1)
                .fetch_optional(&mut *tx).await?;
            let mut from_parents = false;
            if let Some((parents,)) = stored {
                let (kept, removed) = without_parents(&parents, &[role])?;
                if removed > 0 {
                    sqlx::query("UPDATE entities SET parents = $1, updated_at = $2, canonical_for = NULL WHERE tenant = $3 AND entity_type = $4 AND entity_id = $5")
                        .bind(kept).bind(now).bind(tenant).bind(principal.0).bind(principal.1)
                        .execute(&mut *tx).await?;
                    from_parents = true;
                }
            }
            if deleted == 0 && !from_parents {
                return Err(StoreError::NotFound(format!(
                    "{}::{:?} holds no grant of {}::{:?} in tenant `{tenant}`, and its stored entity does not have it as a parent",
                    principal.0, principal.1, role.0, role.1
                )));
            }
            let detail = serde_json::json!({
                "principal": format!("{}::{:?}", principal.0, principal.1),
                "role": format!("{}::{:?}", role.0, role.1),
                "reason": reason,
                "grant": deleted > 0,
                "parent": from_parents,
            }).to_string();
            let changes = [
                Change::new(ChangeKind::Grant, tenant, principal.0, principal.1),
                Change::new(ChangeKind::Entity, tenant, principal.0, principal.1),
            ];
            finish_write!(tx, now, actor, "role.revoke", tenant, detail, changes: &changes);
            Ok(())
        });
        result?;
        self.notify_changed().await;
        Ok(())
    }

    /// Adds and removes parents (roles, groups) of a stored entity, whatever wrote them,
    /// audited with the reason; returns the parents it has after. Not found without a stored
    /// entity.
    #[allow(
        clippy::too_many_arguments,
        reason = "each part of the edit is named on purpose"
    )]
    pub async fn edit_parents(
        &self,
        tenant: &TenantId,
        entity: (&str, &str),
        add: &[(&str, &str)],
        remove: &[(&str, &str)],
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<serde_json::Value, StoreError> {
        let tenant = tenant.as_str();
        let result: Result<serde_json::Value, StoreError> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Read, changed, written back: the version row's lock, taken first, serialises
            // edits (a concurrent revocation must not be written over).
            sqlx::query("UPDATE store_version SET version = version WHERE id = 1").execute(&mut *tx).await?;
            let stored: Option<(String,)> = sqlx::query_as("SELECT parents FROM entities WHERE tenant = $1 AND entity_type = $2 AND entity_id = $3")
                .bind(tenant).bind(entity.0).bind(entity.1)
                .fetch_optional(&mut *tx).await?;
            let Some((parents,)) = stored else {
                return Err(StoreError::NotFound(format!(
                    "no entity {}::{:?} in tenant `{tenant}`", entity.0, entity.1
                )));
            };
            let (kept, _) = without_parents(&parents, remove)?;
            let mut list: Vec<serde_json::Value> = serde_json::from_str(&kept)
                .map_err(|error| StoreError::Corrupt(format!("parents of {}::{}: {error}", entity.0, entity.1)))?;
            for (parent_type, parent_id) in add {
                let parent = serde_json::json!({"type": parent_type, "id": parent_id});
                if !list.contains(&parent) {
                    list.push(parent);
                }
            }
            let after = serde_json::Value::Array(list);
            sqlx::query("UPDATE entities SET parents = $1, updated_at = $2, canonical_for = NULL WHERE tenant = $3 AND entity_type = $4 AND entity_id = $5")
                .bind(after.to_string()).bind(now).bind(tenant).bind(entity.0).bind(entity.1)
                .execute(&mut *tx).await?;
            let uid_text = |(t, i): &(&str, &str)| format!("{t}::{i:?}");
            let detail = serde_json::json!({
                "entity": uid_text(&entity),
                "add": add.iter().map(uid_text).collect::<Vec<_>>(),
                "remove": remove.iter().map(uid_text).collect::<Vec<_>>(),
                "reason": reason,
            }).to_string();
            let changes = [Change::new(ChangeKind::Entity, tenant, entity.0, entity.1)];
            finish_write!(tx, now, actor, "entity.parents", tenant, detail, changes: &changes);
            Ok(after)
        });
        let after = result?;
        self.notify_changed().await;
        Ok(after)
    }

    /// Deletes entities of one tenant (and their role grants) in one transaction; returns how
    /// many existed. Keys that do not exist are skipped.
    pub async fn delete_entities(
        &self,
        tenant: &TenantId,
        keys: &[(String, String)],
        actor: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let tenant = tenant.as_str();
        let result: Result<u64, StoreError> = on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let mut deleted = 0;
            for (entity_type, entity_id) in keys {
                deleted += sqlx::query("DELETE FROM entities WHERE tenant = $1 AND entity_type = $2 AND entity_id = $3")
                    .bind(tenant).bind(entity_type).bind(entity_id)
                    .execute(&mut *tx).await?.rows_affected();
                sqlx::query("DELETE FROM role_assignments WHERE tenant = $1 AND principal_type = $2 AND principal_id = $3")
                    .bind(tenant).bind(entity_type).bind(entity_id)
                    .execute(&mut *tx).await?;
            }
            let detail = serde_json::json!({"entities": deleted}).to_string();
            let mut changes = Vec::with_capacity(keys.len() * 2);
            for (entity_type, entity_id) in keys {
                changes.push(Change::new(ChangeKind::Entity, tenant, entity_type, entity_id));
                changes.push(Change::new(ChangeKind::Grant, tenant, entity_type, entity_id));
            }
            finish_write!(tx, now, actor, "entity.delete", tenant, detail, changes: &changes);
            Ok(deleted)
        });
        let deleted = result?;
        self.notify_changed().await;
        Ok(deleted)
    }

    /// The `(type, id)` of every stored entity of one tenant, sorted, a page at a time: those
    /// after `after`, at most `limit`.
    pub async fn entity_keys_of(
        &self,
        tenant: &TenantId,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let tenant = tenant.as_str();
        let (after_type, after_id) = after.unwrap_or(("", ""));
        let rows: Vec<(String, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT entity_type, entity_id FROM entities WHERE tenant = $1 AND (entity_type > $2 OR (entity_type = $2 AND entity_id > $3)) \
             ORDER BY entity_type, entity_id LIMIT $4",
        ).bind(tenant).bind(after_type).bind(after_id).bind(limit).fetch_all(pool).await?);
        Ok(rows)
    }

    /// Creates an admin credential directly on the store (`warden admin init`): the first one,
    /// or the way back in when no usable credential for all tenants is left (all revoked or
    /// expired). Refused while one is usable: then the admin API makes credentials.
    pub async fn create_first_admin(
        &self,
        credential: &AdminCredential,
        now: i64,
    ) -> Result<(), StoreError> {
        self.create_admin_directly(credential, now, false).await
    }

    /// As [`Store::create_first_admin`]; with `force`, also while a usable credential for all
    /// tenants exists (its secret lost): audited `admin.init.force`, and the lost one should
    /// then be revoked through the admin API with the new one.
    pub async fn create_admin_directly(
        &self,
        credential: &AdminCredential,
        now: i64,
        force: bool,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE store_version SET version = version WHERE id = 1").execute(&mut *tx).await?;
            let existing: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM admin_credentials WHERE tenant_scope IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)")
                .bind(now).fetch_one(&mut *tx).await?;
            if existing.0 > 0 && !force {
                return Err(StoreError::Refused("a usable admin credential for all tenants already exists; `admin init` only creates the first one (make more with `warden admin create`)".to_owned()));
            }
            sqlx::query("INSERT INTO admin_credentials (id, digest, tenant_scope, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&credential.id).bind(&credential.digest_hex).bind(&credential.tenant_scope).bind(now)
                .execute(&mut *tx).await?;
            sqlx::query("INSERT INTO admin_audit (at, actor, action, tenant, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(now).bind("warden admin init").bind(if force { "admin.init.force" } else { "admin.init" }).bind(Option::<String>::None)
                .bind(serde_json::json!({"credential": credential.id}).to_string())
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every admin credential (digests only), for constant-time matching.
    pub async fn admin_credentials(&self) -> Result<Vec<AdminCredential>, StoreError> {
        let rows: Vec<(String, String, Option<String>)> = on_pool!(self, pool => sqlx::query_as("SELECT id, digest, tenant_scope FROM admin_credentials ORDER BY id").fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(id, digest_hex, tenant_scope)| AdminCredential {
                id,
                digest_hex,
                tenant_scope,
            })
            .collect())
    }

    /// The admin audit trail, oldest first.
    pub async fn audit_trail(&self) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<(i64, i64, String, String, Option<String>, String)> = on_pool!(self, pool => sqlx::query_as("SELECT seq, at, actor, action, tenant, detail FROM admin_audit ORDER BY seq").fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(seq, at, actor, action, tenant, detail)| AuditRecord {
                seq,
                at,
                actor,
                action,
                tenant,
                detail,
            })
            .collect())
    }
}

/// A stored parents list without the given `(type, id)`s: the list as text, and how many went.
fn without_parents(parents: &str, remove: &[(&str, &str)]) -> Result<(String, usize), StoreError> {
    let list: Vec<Value> = serde_json::from_str(parents)
        .map_err(|error| StoreError::Corrupt(format!("stored parents: {error}")))?;
    let before = list.len();
    let kept: Vec<Value> = list
        .into_iter()
        .filter(|parent| {
            let parent = parent.get("__entity").unwrap_or(parent);
            let (Some(parent_type), Some(parent_id)) = (
                parent.get("type").and_then(Value::as_str),
                parent.get("id").and_then(Value::as_str),
            ) else {
                return true;
            };
            !remove
                .iter()
                .any(|(t, i)| *t == parent_type && *i == parent_id)
        })
        .collect();
    let removed = before - kept.len();
    Ok((Value::Array(kept).to_string(), removed))
}
