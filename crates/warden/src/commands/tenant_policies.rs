//! `warden policy put|delete|list --tenant T`: a tenant's own policies, through a running
//! server's admin API (`/v1/admin/tenants/{tenant}/policies`).

use std::io::Read;

use anyhow::{Context, anyhow};
use serde_json::{Value, json};

use super::Verdict;
use super::admin::{call, refused, send};
use crate::cli::{PolicyCommand, PolicyListArgs, PolicyPutArgs};

/// Runs one `warden policy` verb.
pub fn run(command: &PolicyCommand) -> anyhow::Result<Verdict> {
    match command {
        PolicyCommand::Put(args) => put(args),
        PolicyCommand::Delete(args) => send(
            &args.server,
            reqwest::Method::DELETE,
            &path(&args.tenant, Some(&args.name)),
            None,
        ),
        PolicyCommand::List(args) => list(args),
    }
}

fn path(tenant: &str, name: Option<&str>) -> String {
    let tenant = segment(tenant);
    match name {
        Some(name) => format!("/v1/admin/tenants/{tenant}/policies/{}", segment(name)),
        None => format!("/v1/admin/tenants/{tenant}/policies"),
    }
}

/// A path segment with every byte outside RFC 3986's unreserved set percent-encoded.
fn segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn put(args: &PolicyPutArgs) -> anyhow::Result<Verdict> {
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the policy from standard input")?;
        text
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .file
            .file_stem()
            .and_then(|stem| stem.to_str())
            .filter(|stem| *stem != "-")
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("--name is needed when the policy comes from standard input"))?,
    };
    let (status, answer) = call(
        &args.server,
        reqwest::Method::PUT,
        &path(&args.tenant, Some(&name)),
        Some(json!({ "policy": text })),
    )?;
    if status.is_success() {
        println!("{answer}");
        return Ok(Verdict::Success);
    }
    // Every problem on its own line, as `warden validate` prints a pack's.
    if let Some(problems) = answer.get("errors").and_then(Value::as_array) {
        for problem in problems {
            let field = |key: &str| problem.get(key).and_then(Value::as_u64);
            let file = problem.get("file").and_then(Value::as_str).unwrap_or("");
            let message = problem.get("message").and_then(Value::as_str).unwrap_or("");
            match (field("line"), field("column")) {
                (Some(line), Some(column)) => {
                    println!("{file}:{line}:{column}: error: {message}");
                }
                _ => println!("{file}: error: {message}"),
            }
        }
    }
    Ok(refused(status, &answer))
}

fn list(args: &PolicyListArgs) -> anyhow::Result<Verdict> {
    let (status, answer) = call(
        &args.server,
        reqwest::Method::GET,
        &path(&args.tenant, None),
        None,
    )?;
    if !status.is_success() {
        return Ok(refused(status, &answer));
    }
    if args.json {
        println!("{answer:#}");
        return Ok(Verdict::Success);
    }
    let policies = answer
        .get("policies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for policy in &policies {
        let text = |key: &str| policy.get(key).and_then(Value::as_str).unwrap_or("");
        println!("{}\t{}\t{}", text("id"), text("name"), text("updated_by"));
    }
    println!("{} policies in tenant {}", policies.len(), args.tenant);
    Ok(Verdict::Success)
}
