//! `warden sa …` and `warden keys …`: service accounts and Warden's signing keys, through a
//! running server's admin API (authenticated by `WARDEN_ADMIN_TOKEN`). Exit 0 done, 1 refused
//! by the server, 2 bad usage or unreachable.

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

use super::Verdict;
use super::admin::{call, parse_duration, refused, send};
use crate::cli::{
    KeysArgs, SaCommand, SaCreateArgs, SaCredentialCommand, SaListArgs, SaReportArgs, SaTargetArgs,
    ServerArgs,
};

fn seconds(text: &str) -> anyhow::Result<i64> {
    i64::try_from(parse_duration(text)?).map_err(|_| anyhow!("{text}: too long"))
}

/// A member of a JSON answer (`null` when absent).
fn field<'a>(value: &'a Value, name: &str) -> &'a Value {
    value.get(name).unwrap_or(&Value::Null)
}

fn scopes(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// The path of one account, with its parts percent-encoded.
fn account_path(target: &SaTargetArgs, rest: &str) -> String {
    format!(
        "/v1/admin/tenants/{}/service-accounts/{}{rest}",
        encode(&target.tenant),
        encode(&target.client_id)
    )
}

fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Runs one `warden sa` verb.
pub fn run(command: &SaCommand) -> anyhow::Result<Verdict> {
    match command {
        SaCommand::Create(args) => create(args),
        SaCommand::List(args) => list(args),
        SaCommand::Show(args) => send(
            &args.server,
            reqwest::Method::GET,
            &account_path(args, ""),
            None,
        ),
        SaCommand::Credential(SaCredentialCommand::Add(args)) => {
            let mut body = match &args.public_key {
                Some(file) => {
                    let text = warden_packdir::read_text(file)?;
                    let jwk: Value = serde_json::from_str(&text)
                        .map_err(|error| anyhow!("{}: not JSON: {error}", file.display()))?;
                    json!({"kind": "public_key", "jwk": jwk})
                }
                None => json!({"kind": "secret"}),
            };
            if let (Some(expires), Some(object)) = (&args.expires, body.as_object_mut()) {
                object.insert("expires_in_seconds".into(), json!(seconds(expires)?));
            }
            secret_answer(
                &args.target.server,
                &account_path(&args.target, "/credentials"),
                body,
                args.json,
            )
        }
        SaCommand::Credential(SaCredentialCommand::Rotate(args)) => {
            let mut body = json!({});
            if let (Some(overlap), Some(object)) = (&args.overlap, body.as_object_mut()) {
                object.insert("overlap_seconds".into(), json!(seconds(overlap)?));
            }
            secret_answer(
                &args.target.server,
                &account_path(&args.target, "/credentials/rotate"),
                body,
                args.json,
            )
        }
        SaCommand::Credential(SaCredentialCommand::Retire(args)) => send(
            &args.target.server,
            reqwest::Method::POST,
            &account_path(
                &args.target,
                &format!("/credentials/{}/retire", encode(&args.credential_id)),
            ),
            None,
        ),
        SaCommand::Scopes(args) => send(
            &args.target.server,
            reqwest::Method::POST,
            &account_path(&args.target, "/scopes"),
            Some(json!({"scopes": scopes(&args.scopes), "reason": args.reason})),
        ),
        SaCommand::Disable(args) => send(
            &args.target.server,
            reqwest::Method::POST,
            &account_path(&args.target, "/disable"),
            Some(json!({"reason": args.reason})),
        ),
        SaCommand::Delete(args) => send(
            &args.target.server,
            reqwest::Method::DELETE,
            &account_path(&args.target, &format!("?reason={}", encode(&args.reason))),
            None,
        ),
        SaCommand::Transfer(args) => send(
            &args.target.server,
            reqwest::Method::POST,
            &account_path(&args.target, "/owner"),
            Some(json!({"owner": args.owner, "reason": args.reason})),
        ),
        SaCommand::Report(args) => report(args),
    }
}

fn create(args: &SaCreateArgs) -> anyhow::Result<Verdict> {
    let mut body = json!({
        "name": args.name,
        "owner": args.owner,
        "purpose": args.purpose,
        "scopes": scopes(&args.scopes),
        "expires_in_seconds": seconds(&args.expires)?,
    });
    if let (Some(ttl), Some(object)) = (&args.token_ttl, body.as_object_mut()) {
        object.insert("token_ttl_seconds".into(), json!(seconds(ttl)?));
    }
    let (status, answer) = call(
        &args.server,
        reqwest::Method::POST,
        &format!(
            "/v1/admin/tenants/{}/service-accounts",
            encode(&args.tenant)
        ),
        Some(body),
    )?;
    if !status.is_success() {
        return Ok(refused(status, &answer));
    }
    if args.json {
        println!("{answer}");
    } else {
        let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
        println!(
            "service account {} created in tenant {} (expires {}).",
            text(field(&answer, "client_id")),
            args.tenant,
            field(field(&answer, "service_account"), "expires_at")
        );
        println!("client_id:     {}", text(field(&answer, "client_id")));
        println!("client_secret: {}", text(field(&answer, "client_secret")));
        println!("The secret is shown only this once; Warden keeps only its SHA-256 digest.");
    }
    Ok(Verdict::Success)
}

/// A credential answer that may carry a secret shown once.
fn secret_answer(
    server: &ServerArgs,
    path: &str,
    body: Value,
    as_json: bool,
) -> anyhow::Result<Verdict> {
    let (status, answer) = call(server, reqwest::Method::POST, path, Some(body))?;
    if !status.is_success() {
        return Ok(refused(status, &answer));
    }
    if as_json {
        println!("{answer}");
        return Ok(Verdict::Success);
    }
    println!(
        "credential:    {}",
        field(&answer, "credential_id").as_str().unwrap_or("-")
    );
    if let Some(secret) = field(&answer, "client_secret").as_str() {
        println!("client_secret: {secret}");
        println!("The secret is shown only this once; Warden keeps only its SHA-256 digest.");
    }
    if let Some(until) = field(&answer, "old_credentials_expire_at").as_i64() {
        println!("older secrets keep working until {until} (Unix seconds)");
    }
    Ok(Verdict::Success)
}

fn list(args: &SaListArgs) -> anyhow::Result<Verdict> {
    let (status, answer) = call(
        &args.server,
        reqwest::Method::GET,
        &format!(
            "/v1/admin/tenants/{}/service-accounts",
            encode(&args.tenant)
        ),
        None,
    )?;
    if !status.is_success() {
        return Ok(refused(status, &answer));
    }
    if args.json {
        println!("{answer}");
        return Ok(Verdict::Success);
    }
    println!(
        "{:<24} {:<20} {:<9} {:<28} {:<10} SCOPES",
        "CLIENT_ID", "NAME", "STATUS", "OWNER", "EXPIRES"
    );
    for account in field(&answer, "service_accounts")
        .as_array()
        .into_iter()
        .flatten()
    {
        let text = |name: &str| account[name].as_str().unwrap_or("-").to_owned();
        let scopes: Vec<&str> = field(account, "scopes")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "{:<24} {:<20} {:<9} {:<28} {:<10} {}",
            text("client_id"),
            text("name"),
            text("status"),
            text("owner"),
            field(account, "expires_at"),
            scopes.join(" ")
        );
    }
    Ok(Verdict::Success)
}

fn report(args: &SaReportArgs) -> anyhow::Result<Verdict> {
    let path = match &args.tenant {
        Some(tenant) => format!(
            "/v1/admin/tenants/{}/service-accounts/report",
            encode(tenant)
        ),
        None => "/v1/admin/service-accounts/report".to_owned(),
    };
    let (status, answer) = call(&args.server, reqwest::Method::GET, &path, None)?;
    if !status.is_success() {
        return Ok(refused(status, &answer));
    }
    if args.json {
        println!("{answer}");
        return Ok(Verdict::Success);
    }
    let accounts = field(&answer, "accounts")
        .as_array()
        .cloned()
        .unwrap_or_default();
    if accounts.is_empty() {
        println!("no service accounts");
        return Ok(Verdict::Success);
    }
    for account in &accounts {
        let text = |name: &str| account[name].as_str().unwrap_or("-").to_owned();
        println!(
            "{} {} ({}) tenant {} owner {} [{}] purpose: {}",
            text("client_id"),
            text("name"),
            text("status"),
            text("tenant"),
            text("owner"),
            text("owner_status"),
            text("purpose")
        );
        let last_used = field(account, "last_used_at")
            .as_i64()
            .map_or_else(|| "never".to_owned(), |at| at.to_string());
        println!(
            "    expires {} · last used {last_used}",
            field(account, "expires_at")
        );
        for credential in field(account, "credentials")
            .as_array()
            .into_iter()
            .flatten()
        {
            println!(
                "    credential {} {} · {} day(s) old · expires {}{}",
                field(credential, "id").as_str().unwrap_or("-"),
                field(credential, "kind").as_str().unwrap_or("-"),
                field(credential, "age_days"),
                field(credential, "expires_at"),
                if field(credential, "usable") == &json!(true) {
                    ""
                } else {
                    " (not usable)"
                }
            );
        }
        for finding in field(account, "findings").as_array().into_iter().flatten() {
            println!(
                "    ! {}: {}",
                field(finding, "code").as_str().unwrap_or("-"),
                field(finding, "detail").as_str().unwrap_or("-")
            );
        }
    }
    let findings: usize = accounts
        .iter()
        .map(|account| field(account, "findings").as_array().map_or(0, Vec::len))
        .sum();
    println!("{} account(s), {findings} finding(s)", accounts.len());
    Ok(Verdict::Success)
}

/// `warden keys rotate`.
pub fn rotate_key(args: &KeysArgs) -> anyhow::Result<Verdict> {
    send(
        &args.server,
        reqwest::Method::POST,
        "/v1/admin/keys/rotate",
        None,
    )
}

/// `warden keys list`.
pub fn list_keys(args: &KeysArgs) -> anyhow::Result<Verdict> {
    let (status, answer) = call(&args.server, reqwest::Method::GET, "/v1/admin/keys", None)?;
    if !status.is_success() {
        return Ok(refused(status, &answer));
    }
    println!("{answer}");
    if field(&answer, "keys").as_array().is_none_or(Vec::is_empty) {
        bail!("the server published no signing key");
    }
    Ok(Verdict::Success)
}
