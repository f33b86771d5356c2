//! `warden token verify`: verify one token exactly as the server would, and say why not.

use std::io::Read as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use warden_token::{AttributeValue, Verifier};

use super::Verdict;
use crate::cli::TokenVerifyArgs;
use crate::config_loading;

pub fn verify(args: &TokenVerifyArgs) -> anyhow::Result<Verdict> {
    let config = config_loading::load(Some(&args.config))?;
    if config.issuers.is_empty() {
        bail!("{}: no [[issuers]] are configured", args.config.display());
    }
    let token = match args.token.as_deref() {
        None | Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .take(1024 * 1024)
                .read_to_string(&mut text)
                .context("reading the token from standard input")?;
            text
        }
        Some(token) => token.to_owned(),
    };
    let token = token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    warden_token::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let verifier = Verifier::new(config.issuers.clone(), 0)?;
        for failure in verifier.load_keys().await {
            eprintln!("warning: {failure}");
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or_default();
        match verifier.verify(token, now).await {
            Ok(verified) => {
                let principal = &verified.principal;
                let attributes: serde_json::Map<String, Value> = principal
                    .attributes
                    .iter()
                    .map(|(name, value)| (name.clone(), attribute_json(value)))
                    .collect();
                let report = json!({
                    "valid": true,
                    "issuer": verified.issuer,
                    "principal": {
                        "uid": principal.uid_string(),
                        "type": principal.entity_type,
                        "id": principal.id,
                        "subject": principal.subject,
                        "tenant": principal.tenant,
                        "roles": principal.roles,
                        "scopes": principal.scopes,
                        "attributes": attributes,
                    },
                    "jti": verified.jti,
                    "expires_at": verified.expires_at,
                });
                if args.json {
                    println!("{report:#}");
                } else {
                    println!("valid: {} from {}", principal.uid_string(), verified.issuer);
                    if let Some(tenant) = &principal.tenant {
                        println!("tenant: {tenant}");
                    }
                    println!("roles: {}", principal.roles.join(" "));
                    println!("scopes: {}", principal.scopes.join(" "));
                }
                Ok(Verdict::Success)
            }
            Err(error) => {
                if args.json {
                    println!("{:#}", json!({"valid": false, "reason": error.reason.as_str(), "detail": error.detail}));
                } else {
                    println!("refused: {error}");
                }
                Ok(Verdict::Negative)
            }
        }
    })
}

fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::String(text) => json!(text),
        AttributeValue::Long(number) => json!(number),
        AttributeValue::Bool(flag) => json!(flag),
        AttributeValue::StringSet(items) => json!(items),
    }
}
