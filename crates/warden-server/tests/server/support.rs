//! Starting a real server from a written `warden.toml` and talking to it over HTTP.

use std::path::{Path, PathBuf};

use serde_json::Value;
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
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            pack: "examples/saas",
            extra: "",
            pep_auth: true,
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
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
        let digest = hex(&Sha256::digest(PEP_SECRET.as_bytes()));
        let peps = if setup.pep_auth {
            format!("[peps]\ncredentials = [\"sha256:{digest}\"]\n")
        } else {
            "[peps]\nallow_unauthenticated = true\n".to_owned()
        };
        let config_text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nmax_batch_size = 50\nmax_body_bytes = 16384\n[policy]\ndir = \"pack\"\nentities_file = \"pack/entities.json\"\n{peps}\n[[issuers]]\nissuer = {ISSUER:?}\naudiences = [\"warden\"]\njwks_file = \"jwks.json\"\nalgorithms = [\"RS256\"]\n[issuers.claims]\ntenant = \"org_id\"\nroles = \"roles\"\n{}",
            setup.extra
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

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
