//! Fresh stores of both kinds.

use warden_store::Store;

/// A store and what keeps it alive.
pub struct TestStore {
    pub name: &'static str,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

pub use warden_testkit::fresh_postgres_url;

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

/// A tenant id of the tests.
pub fn tenant(id: &str) -> warden_store::TenantId {
    warden_store::TenantId::parse(id).unwrap()
}

/// A client id of the tests.
pub fn client(id: &str) -> warden_store::ClientId {
    warden_store::ClientId::parse(id).unwrap()
}
