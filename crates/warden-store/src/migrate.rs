//! Versioned migrations, per back end, applied in order at connect, each in its own transaction
//! together with its row in `warden_migrations`. Adding a migration: a new file in both
//! `migrations/sqlite` and `migrations/postgres`, and a line in each list below.

use crate::{BeginWrite, Store, StoreError};

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_revocations.sql")),
    (
        3,
        include_str!("../migrations/sqlite/0003_service_accounts.sql"),
    ),
    (
        4,
        include_str!("../migrations/sqlite/0004_principal_status.sql"),
    ),
    (5, include_str!("../migrations/sqlite/0005_change_feed.sql")),
    (
        6,
        include_str!("../migrations/sqlite/0006_tenant_policies.sql"),
    ),
    (
        7,
        include_str!("../migrations/sqlite/0007_admin_credential_lifecycle.sql"),
    ),
    (8, include_str!("../migrations/sqlite/0008_reviews.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_revocations.sql"),
    ),
    (
        3,
        include_str!("../migrations/postgres/0003_service_accounts.sql"),
    ),
    (
        4,
        include_str!("../migrations/postgres/0004_principal_status.sql"),
    ),
    (
        5,
        include_str!("../migrations/postgres/0005_change_feed.sql"),
    ),
    (
        6,
        include_str!("../migrations/postgres/0006_tenant_policies.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_admin_credential_lifecycle.sql"),
    ),
    (8, include_str!("../migrations/postgres/0008_reviews.sql")),
];

pub(crate) async fn apply(store: &Store) -> Result<(), StoreError> {
    let (migrations, create) = match store {
        Store::Sqlite(_) => (
            SQLITE,
            "CREATE TABLE IF NOT EXISTS warden_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        ),
        Store::Postgres(_) => (
            POSTGRES,
            "CREATE TABLE IF NOT EXISTS warden_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        ),
    };
    on_pool!(store, pool => {
        sqlx::query(create).execute(pool).await?;
        for (version, sql) in migrations {
            let mut tx = pool.begin_write().await?;
            // Serialise concurrent replicas migrating the same database.
            if matches!(store, Store::Postgres(_)) {
                sqlx::query("LOCK TABLE warden_migrations IN EXCLUSIVE MODE").execute(&mut *tx).await?;
            }
            let applied: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM warden_migrations WHERE version = $1").bind(*version).fetch_one(&mut *tx).await?;
            if applied.0 == 0 {
                sqlx::raw_sql(*sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO warden_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(*version)
                    .bind(unix_now())
                    .execute(&mut *tx)
                    .await?;
                tracing::info!(version, "store migration applied");
            }
            tx.commit().await?;
        }
        // A store migrated by a newer Warden holds state this binary cannot read right (a
        // rollback after migration 4 would see every principal active): refuse to start.
        let (newest,): (Option<i64>,) = sqlx::query_as("SELECT MAX(version) FROM warden_migrations")
            .fetch_one(pool)
            .await?;
        let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
        if let Some(newest) = newest.filter(|newest| *newest > known) {
            return Err(StoreError::Refused(format!(
                "the store was migrated by a newer Warden (migration {newest}); this binary knows migrations up to {known}: run the newer version"
            )));
        }
        Ok(())
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
