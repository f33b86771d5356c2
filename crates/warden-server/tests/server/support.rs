//! Starting a real server from a written `warden.toml` and talking to it over HTTP.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_server::Server;
use warden_testkit::{TestKey, jwks};

pub const ISSUER: &str = "https://idp.test";
pub const PEP_SECRET: &str = "pep-secret-for-the-tests-0123456789";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub key: TestKey,
}

/// What to serve.
pub struct Setup<'a> {
    /// A pack directory (copied into the temp dir so tests can break it).
    pub pack: &'a str,
    /// Extra TOML after the generated sections.
    pub extra: &'a str,
    /// PEPs need a credential.
    pub pep_auth: bool,
    /// A storage URL (`sqlite://…` or `postgres://…`); `Some("")` means a fresh SQLite file.
    pub storage: Option<String>,
    /// `storage.max_staleness_seconds`.
    pub max_staleness_seconds: u64,
    /// `storage.poll_interval_ms`.
    pub poll_interval_ms: u64,
    /// More `[storage]` keys.
    pub storage_extra: &'a str,
    /// More `[server]` keys.
    pub server_extra: &'a str,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            pack: "examples/saas",
            extra: "",
            pep_auth: true,
            storage: None,
            max_staleness_seconds: 5,
            poll_interval_ms: 100,
            storage_extra: "",
            server_extra: "",
        }
    }
}

pub const ADMIN_SECRET: &str = "wdn_admin_test-secret-for-the-store-tests";
pub const SCOPED_ADMIN_SECRET: &str = "wdn_admin_scoped-to-globex-only";

pub use warden_testkit::fresh_postgres_url;

/// Puts the test admin credentials (all tenants, and one for globex only) into a store.
pub async fn seed_admins(url: &str) {
    let store = warden_store::Store::connect(url).await.unwrap();
    if !store.admin_credentials().await.unwrap().is_empty() {
        return; // a second replica on the same database
    }
    let digest = |secret: &str| hex::encode(Sha256::digest(secret.as_bytes()));
    let all = warden_store::AdminCredential {
        id: "adm_test".into(),
        digest_hex: digest(ADMIN_SECRET),
        tenant_scope: None,
    };
    store.create_first_admin(&all, 1).await.unwrap();
    let insert = "INSERT INTO admin_credentials (id, digest, tenant_scope, created_at) VALUES ($1, $2, $3, 1)";
    match &store {
        warden_store::Store::Sqlite(pool) => {
            sqlx::query(insert)
                .bind("adm_globex")
                .bind(digest(SCOPED_ADMIN_SECRET))
                .bind("globex")
                .execute(pool)
                .await
                .unwrap();
        }
        warden_store::Store::Postgres(pool) => {
            sqlx::query(insert)
                .bind("adm_globex")
                .bind(digest(SCOPED_ADMIN_SECRET))
                .bind("globex")
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl TestServer {
    pub async fn start(setup: Setup<'_>) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo_root().join(setup.pack), &dir.path().join("pack"));
        let key = TestKey::rsa("k1");
        std::fs::write(dir.path().join("jwks.json"), jwks(&[&key])).unwrap();
        let digest = hex::encode(Sha256::digest(PEP_SECRET.as_bytes()));
        let peps = if setup.pep_auth {
            format!("[peps]\ncredentials = [\"sha256:{digest}\"]\n")
        } else {
            "[peps]\nallow_unauthenticated = true\n".to_owned()
        };
        let storage = match setup.storage.as_deref() {
            None => String::new(),
            Some(url) => {
                let url = if url.is_empty() {
                    format!("sqlite://{}", dir.path().join("warden.db").display())
                } else {
                    url.to_owned()
                };
                seed_admins(&url).await;
                format!(
                    "[storage]\nurl = {url:?}\npoll_interval_ms = {}\nmax_staleness_seconds = {}\n{}\n",
                    setup.poll_interval_ms, setup.max_staleness_seconds, setup.storage_extra
                )
            }
        };
        let config_text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nmax_batch_size = 50\nmax_body_bytes = 16384\n{}\n[policy]\ndir = \"pack\"\nentities_file = \"pack/entities.json\"\n{storage}{peps}\n[[issuers]]\nissuer = {ISSUER:?}\naudiences = [\"warden\"]\njwks_file = \"jwks.json\"\nalgorithms = [\"RS256\"]\n[issuers.claims]\ntenant = \"org_id\"\nroles = \"roles\"\n{}",
            setup.server_extra, setup.extra
        );
        let config_path = dir.path().join("warden.toml");
        std::fs::write(&config_path, config_text).unwrap();
        let config = warden_config::load(Some(&config_path), &[]).unwrap();
        let server = Server::start(config).await.unwrap();
        let base = format!("http://{}", server.address());
        TestServer {
            server: Some(server),
            base,
            client: reqwest::Client::new(),
            dir,
            key,
        }
    }

    pub fn pack_dir(&self) -> PathBuf {
        self.dir.path().join("pack")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST JSON as an authenticated PEP.
    pub async fn pep_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(PEP_SECRET)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A call to the admin API with a credential.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        secret: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(secret) = secret {
            request = request.bearer_auth(secret);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// A `[tokens]` table making Warden the issuer `issuer`, with its key-encryption key in a
/// temporary file: keep the file until the server has started (it reads the key at start).
pub fn tokens_section(issuer: &str) -> (tempfile::NamedTempFile, String) {
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), "5f".repeat(32)).unwrap();
    let section = format!(
        "[tokens]\nissuer = {issuer:?}\nkey_encryption_key_file = {:?}\n",
        key_file.path().display().to_string()
    );
    (key_file, section)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A server on a fresh SQLite file, then one on a fresh PostgreSQL database when
/// `WARDEN_TEST_POSTGRES_URL` is set (said when it is not), each named by its back end.
pub async fn servers_with_a_store() -> Vec<(&'static str, TestServer)> {
    let mut servers = vec![(
        "sqlite",
        TestServer::start(Setup {
            storage: Some(String::new()),
            ..Setup::default()
        })
        .await,
    )];
    match fresh_postgres_url().await {
        Some(url) => servers.push((
            "postgres",
            TestServer::start(Setup {
                storage: Some(url),
                ..Setup::default()
            })
            .await,
        )),
        None => eprintln!(
            "note: WARDEN_TEST_POSTGRES_URL is not set; the PostgreSQL half of this test is skipped"
        ),
    }
    servers
}

/// A bearer token of the test issuer for `sub` in tenant `org` with `roles`.
pub fn user_token(server: &TestServer, sub: &str, org: &str, roles: &[&str]) -> String {
    let mut claims = warden_testkit::claims_at(ISSUER, now());
    claims["sub"] = json!(sub);
    claims["org_id"] = json!(org);
    claims["roles"] = json!(roles);
    server.key.token(&claims)
}

/// `POST /v1/check` of `action` on `Document::"<document>"` with a bearer token; the answer.
pub async fn check_document(
    server: &TestServer,
    token: &str,
    action: &str,
    document: &str,
) -> Value {
    let response = server
        .client
        .post(server.url("/v1/check"))
        .bearer_auth(token)
        .json(&json!({"action": action, "resource": {"type": "Document", "id": document}}))
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}
