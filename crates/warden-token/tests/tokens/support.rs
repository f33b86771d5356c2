//! Test keys, token minting with raw header and payload text, JWKS documents and verifiers.

use std::path::Path;

pub use warden_testkit::*;
use warden_token::{IssuerSettings, Verifier};

pub fn settings(toml_text: &str) -> IssuerSettings {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

pub fn install() {
    warden_token::install_crypto_provider();
}

/// A verifier over issuers written as TOML tables, with JWKS files in `dir`.
pub async fn verifier(
    dir: &Path,
    issuers: &[(&str, &str, Option<&str>)],
    env: &[(&str, &str)],
) -> Verifier {
    install();
    let mut configs = Vec::new();
    for (index, (issuer, extra, jwks_text)) in issuers.iter().enumerate() {
        let jwks_line = match jwks_text {
            Some(text) => {
                let path = dir.join(format!("jwks-{index}.json"));
                std::fs::write(&path, text).unwrap();
                format!("jwks_file = {:?}\n", path.display().to_string())
            }
            None => String::new(),
        };
        let text = format!("issuer = {issuer:?}\naudiences = [\"warden\"]\n{jwks_line}{extra}");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let read_env =
            move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        configs.push(settings(&text).check(&read_env).unwrap());
    }
    let verifier = Verifier::new(configs, 1000).unwrap();
    let failures = verifier.load_keys().await;
    assert!(failures.is_empty(), "{failures:?}");
    verifier
}
