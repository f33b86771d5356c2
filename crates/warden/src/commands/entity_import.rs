//! `warden entity import`: streams an entity file of any size (a JSON array or JSON lines) to
//! the admin API in batches, each batch one transaction checked against the schema; shows
//! progress on a terminal; reports every refused entity with its line; with `--replace`, then
//! deletes the tenant's stored entities the file does not list, so the tenant's data is exactly
//! the file. Exit 1 when any entity was refused (then `--replace` deletes nothing).

use std::collections::HashSet;
use std::io::{BufReader, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde_json::{Value, json};

use super::Verdict;
use super::admin::AdminClient;
use crate::cli::{EntityImportArgs, EntityParentsArgs};
use crate::entity_stream::{Entities, Item};

/// An entity waiting in the batch, with the line it came from.
struct Pending {
    line: u64,
    value: Value,
}

/// What the import did so far.
#[derive(Default)]
struct Tally {
    imported: u64,
    refused: u64,
    keys: HashSet<(String, String)>,
}

/// The `[type, id]` pairs of an answer's `keys`.
fn keys_of(answer: &Value) -> impl Iterator<Item = (String, String)> + '_ {
    answer
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|key| {
            Some((
                key.get(0)?.as_str()?.to_owned(),
                key.get(1)?.as_str()?.to_owned(),
            ))
        })
}

/// Largest body sent at once (the server's `max_import_bytes` is 8 MiB by default).
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

pub fn import(args: &EntityImportArgs) -> anyhow::Result<Verdict> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let client = AdminClient::new(&args.server, Duration::from_secs(120))?;
    let path = format!("/v1/admin/tenants/{}/entities", args.tenant);
    let label = args.file.display().to_string();
    let batch_size = args.batch_size.clamp(1, 50_000);
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_shown = Instant::now();
    let mut tally = Tally::default();
    let mut batch: Vec<Pending> = Vec::with_capacity(batch_size);
    let mut batch_bytes = 0usize;
    for item in Entities::new(BufReader::with_capacity(1 << 20, file)) {
        let Item { line, value } = item.map_err(|error| anyhow!("{label}: {error}"))?;
        let value = match value {
            Ok(value) => value,
            Err(message) => {
                println!("{label}:{line}: malformed JSON: {message}");
                tally.refused += 1;
                continue;
            }
        };
        let bytes = value.to_string().len();
        if !batch.is_empty() && (batch.len() == batch_size || batch_bytes + bytes > MAX_BATCH_BYTES)
        {
            send_batch(
                &client,
                &path,
                &label,
                std::mem::take(&mut batch),
                &mut tally,
            )?;
            batch_bytes = 0;
            if progress && last_shown.elapsed() > Duration::from_millis(250) {
                show_progress(&tally, started);
                last_shown = Instant::now();
            }
        }
        batch_bytes += bytes;
        batch.push(Pending { line, value });
    }
    if !batch.is_empty() {
        send_batch(&client, &path, &label, batch, &mut tally)?;
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "imported {} entities into tenant `{}` in {seconds:.1}s{}",
        tally.imported,
        args.tenant,
        if tally.refused > 0 {
            format!("; {} refused (listed above)", tally.refused)
        } else {
            String::new()
        }
    );
    if tally.refused > 0 {
        if args.replace {
            println!("--replace: nothing deleted, because some entities were refused");
        }
        return Ok(Verdict::Negative);
    }
    if args.replace {
        let deleted = delete_the_rest(&client, &args.tenant, &tally.keys)?;
        println!(
            "--replace: deleted {deleted} stored entities of tenant `{}` the file does not list",
            args.tenant
        );
    }
    Ok(Verdict::Success)
}

fn show_progress(tally: &Tally, started: Instant) {
    let rate = tally.imported as f64 / started.elapsed().as_secs_f64().max(0.001);
    eprint!(
        "\r\x1b[Kimported {} entities ({rate:.0}/s){}",
        tally.imported,
        if tally.refused > 0 {
            format!(", {} refused", tally.refused)
        } else {
            String::new()
        }
    );
    let _ = std::io::stderr().flush();
}

/// Sends one batch; when the server refuses some of its entities, reports each with its line
/// and sends the others again (the server checks all before it writes any).
fn send_batch(
    client: &AdminClient,
    path: &str,
    label: &str,
    mut batch: Vec<Pending>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    loop {
        if batch.is_empty() {
            return Ok(());
        }
        let body = Value::Array(batch.iter().map(|pending| pending.value.clone()).collect());
        let (status, answer) = client.call(reqwest::Method::POST, path, Some(&body))?;
        if status.is_success() {
            tally.imported += batch.len() as u64;
            tally.keys.extend(keys_of(&answer));
            return Ok(());
        }
        let detail = answer
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or("no detail");
        let Some(errors) = answer.get("errors").and_then(Value::as_array) else {
            anyhow::bail!("the server refused a batch ({}): {detail}", status.as_u16());
        };
        let mut refused: Vec<usize> = Vec::new();
        for error in errors {
            let index = error
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|index| usize::try_from(index).ok())
                .filter(|index| *index < batch.len())
                .ok_or_else(|| anyhow!("the server named an entity the batch does not have"))?;
            let line = batch.get(index).map_or(0, |pending| pending.line);
            println!(
                "{label}:{line}: {} refused: {}",
                error.get("uid").and_then(Value::as_str).unwrap_or("?"),
                error.get("message").and_then(Value::as_str).unwrap_or("?")
            );
            refused.push(index);
        }
        if refused.is_empty() {
            anyhow::bail!("the server refused a batch without naming an entity: {detail}");
        }
        tally.refused += refused.len() as u64;
        let mut index = 0;
        batch.retain(|_| {
            let keep = !refused.contains(&index);
            index += 1;
            keep
        });
    }
}

/// Deletes the tenant's stored entities that are not in `keep`; returns how many went.
fn delete_the_rest(
    client: &AdminClient,
    tenant: &str,
    keep: &HashSet<(String, String)>,
) -> anyhow::Result<u64> {
    let mut extra: Vec<(String, String)> = Vec::new();
    let mut query = String::from("limit=10000");
    loop {
        let (status, answer) = client.call(
            reqwest::Method::GET,
            &format!("/v1/admin/tenants/{tenant}/entities/keys?{query}"),
            None,
        )?;
        if !status.is_success() {
            anyhow::bail!(
                "listing the tenant's entities failed ({}): {}",
                status.as_u16(),
                answer.get("detail").and_then(Value::as_str).unwrap_or("")
            );
        }
        extra.extend(keys_of(&answer).filter(|key| !keep.contains(key)));
        match answer.get("next").and_then(Value::as_str) {
            Some(next) => query = next.to_owned(),
            None => break,
        }
    }
    let mut deleted = 0;
    for chunk in extra.chunks(5000) {
        let body = json!({"entities": chunk.iter().map(|(t, i)| json!({"type": t, "id": i})).collect::<Vec<_>>()});
        let (status, answer) = client.call(
            reqwest::Method::POST,
            &format!("/v1/admin/tenants/{tenant}/entities/delete"),
            Some(&body),
        )?;
        if !status.is_success() {
            anyhow::bail!(
                "deleting entities failed ({}): {}",
                status.as_u16(),
                answer.get("detail").and_then(Value::as_str).unwrap_or("")
            );
        }
        deleted += answer.get("deleted").and_then(Value::as_u64).unwrap_or(0);
    }
    Ok(deleted)
}

/// `warden entity parents`: adds and removes parents of a stored entity.
pub fn parents(args: &EntityParentsArgs) -> anyhow::Result<Verdict> {
    let uid = warden_core::parse_uid(&args.entity)
        .map_err(|error| anyhow!("--entity {}: {error}", args.entity))?;
    let body = json!({"add": args.add, "remove": args.remove, "reason": args.reason});
    super::admin::send(
        &args.server,
        reqwest::Method::POST,
        &format!(
            "/v1/admin/tenants/{}/entities/{}/{}/parents",
            args.tenant,
            percent(&uid.type_name().to_string()),
            percent(uid.id().unescaped())
        ),
        Some(body),
    )
}

/// A path segment, percent-encoded.
fn percent(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
