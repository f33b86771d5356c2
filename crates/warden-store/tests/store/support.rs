//! Fresh stores of both kinds.

use warden_store::Store;

/// A store and what keeps it alive.
pub struct TestStore {
    pub name: &'static str,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh PostgreSQL database on the test server; its URL.
pub async fn fresh_postgres_url() -> Option<String> {
    let base = std::env::var("WARDEN_TEST_POSTGRES_URL").ok()?;
    let name = format!("warden_test_{}", uuid::Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("WARDEN_TEST_POSTGRES_URL is reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("a database name in WARDEN_TEST_POSTGRES_URL");
    Some(format!("{prefix}/{name}"))
}

/// Both kinds of store, fresh.
pub async fn stores() -> Vec<TestStore> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    let mut stores = vec![TestStore {
        name: "sqlite",
        store: Store::connect(&url).await.unwrap(),
        _dir: Some(dir),
    }];
    match fresh_postgres_url().await {
        Some(url) => stores.push(TestStore {
            name: "postgres",
            store: Store::connect(&url).await.unwrap(),
            _dir: None,
        }),
        None => {
            eprintln!("note: WARDEN_TEST_POSTGRES_URL is not set; PostgreSQL store tests skipped")
        }
    }
    stores
}
