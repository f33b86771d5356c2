//! `warden token verify`: verify one token exactly as the server would, and say why not.
//! `warden token mint`: a development token of an HS256 issuer. `warden token exchange`: a
//! person's token exchanged for a delegated one at the server (RFC 8693).

use std::io::Read as _;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use warden_token::Verifier;

use super::{Verdict, unix_now};
use crate::cli::{TokenExchangeArgs, TokenMintArgs, TokenVerifyArgs};
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
        let now = unix_now();
        // Warden's own tokens: their public keys are in the store (no key-encryption key is
        // needed to verify).
        if let (Some(tokens), Some(storage)) = (&config.tokens, &config.storage)
            && let Some(own) = verifier.issuer(&tokens.issuer)
        {
            let store = warden_store::Store::connect(&storage.url).await?;
            let published = store.signing_keys(now).await?;
            let jwks = warden_issuer::signing::jwks(&published);
            let (set, _) = warden_token::keys::KeySet::from_jwks(jwks.to_string().as_bytes())?;
            own.keys.install(set);
        }
        match verifier.verify(token, now).await {
            Ok(verified) => {
                let principal = &verified.principal;
                let attributes: serde_json::Map<String, Value> = principal
                    .attributes
                    .iter()
                    .map(|(name, value)| (name.clone(), value.to_json()))
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
                    "jti": verified.jti.as_ref().map(ToString::to_string),
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

pub fn mint(args: &TokenMintArgs) -> anyhow::Result<Verdict> {
    let config = config_loading::load(Some(&args.config))?;
    let issuer = config
        .issuers
        .iter()
        .find(|issuer| issuer.issuer == args.issuer)
        .ok_or_else(|| anyhow!("{}: no issuer `{}`", args.config.display(), args.issuer))?;
    let warden_token::settings::KeySourceConfig::Secret(secret) = &issuer.keys else {
        bail!(
            "issuer `{}` does not use HS256: mint its tokens where its keys are",
            args.issuer
        );
    };
    let now = unix_now();
    let mut claims = serde_json::Map::new();
    claims.insert("iss".into(), json!(issuer.issuer));
    claims.insert("sub".into(), json!(args.sub));
    claims.insert("aud".into(), json!(issuer.audiences.first()));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert(
        "exp".into(),
        json!(now.saturating_add(i64::try_from(args.ttl).unwrap_or(600))),
    );
    claims.insert(
        "jti".into(),
        json!(format!("dev-{now}-{}", std::process::id())),
    );
    for pair in &args.claims {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--claim {pair}: expected KEY=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        claims.insert(key.to_owned(), value);
    }
    warden_token::install_crypto_provider();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.expose()),
    )
    .context("signing the token")?;
    println!("{token}");
    Ok(Verdict::Success)
}

/// The RFC 8693 names the exchange sends.
const EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub fn exchange(args: &TokenExchangeArgs) -> anyhow::Result<Verdict> {
    let secret = std::env::var("WARDEN_CLIENT_SECRET")
        .map_err(|_| anyhow!("WARDEN_CLIENT_SECRET is not set (the service account's secret)"))?;
    let subject = match args.subject_token_file.as_deref() {
        Some(path) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut text)
                .context("reading the subject token from standard input")?;
            text
        }
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --subject-token-file {}", path.display()))?,
        None => std::env::var("WARDEN_SUBJECT_TOKEN").map_err(|_| {
            anyhow!(
                "give --subject-token-file FILE or set WARDEN_SUBJECT_TOKEN (the person's token)"
            )
        })?,
    };
    let subject = subject.trim();
    let subject = subject.strip_prefix("Bearer ").unwrap_or(subject).trim();
    if subject.is_empty() {
        bail!("the subject token is empty");
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", EXCHANGE_GRANT)
        .append_pair("subject_token", subject)
        .append_pair("subject_token_type", ACCESS_TOKEN_TYPE);
    if let Some(scope) = &args.scope {
        form.append_pair("scope", scope);
    }
    if let Some(audience) = &args.audience {
        form.append_pair("audience", audience);
    }
    let body = form.finish();
    let url = format!("{}/oauth2/token", super::admin::base_url(&args.server)?);
    // The person's token crosses the wire: in the clear only to this machine.
    let parsed = reqwest::Url::parse(&url).with_context(|| format!("the server URL {url}"))?;
    let loopback = parsed.host_str().is_some_and(|host| {
        host == "localhost"
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|address| address.is_loopback())
    });
    if parsed.scheme() != "https" && !loopback {
        bail!("{url}: a person's token is sent only over https (or to this machine over http)");
    }
    let client = super::admin::http_client(&args.server, std::time::Duration::from_secs(30))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (status, answer) = runtime.block_on(async {
        let response = client
            .post(&url)
            .basic_auth(&args.client_id, Some(secret.trim()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .with_context(|| format!("reaching {url}"))?;
        let status = response.status();
        anyhow::Ok((
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        ))
    })?;
    let token = answer.get("access_token").and_then(Value::as_str);
    match (status.is_success(), token) {
        (true, Some(token)) => {
            if args.json {
                println!("{answer}");
            } else {
                println!("{token}");
            }
            Ok(Verdict::Success)
        }
        _ => {
            let code = answer.get("error").and_then(Value::as_str);
            let why = answer
                .get("error_description")
                .or_else(|| answer.get("detail"))
                .and_then(Value::as_str)
                .unwrap_or("no description");
            eprintln!(
                "refused ({}{}): {why}",
                status.as_u16(),
                code.map(|code| format!(", {code}")).unwrap_or_default()
            );
            Ok(Verdict::Negative)
        }
    }
}
