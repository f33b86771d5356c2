//! `warden audit verify` and `warden audit query`: the decision log, read from a directory, a
//! file, or the sink a configuration names.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use warden_audit::PublicKey;
use warden_audit::file_sink::{HEAD, log_files};
use warden_audit::pg_sink::PgSink;
use warden_audit::query::Filter;
use warden_audit::record::{StoredRecord, decode, parse_time_ms};
use warden_audit::signing::public_key_path;
use warden_audit::verify::{Head, Line, lines_of, verify as verify_lines};

use super::Verdict;
use crate::cli::{AuditFormat, AuditQueryArgs, AuditSource, AuditVerifyArgs};
use crate::config_loading;

/// Where the log is.
enum Source {
    Files {
        files: Vec<PathBuf>,
        dir: Option<PathBuf>,
        key: Option<PathBuf>,
    },
    Table {
        url: String,
        key: Option<PathBuf>,
    },
}

fn resolve(source: &AuditSource) -> anyhow::Result<Source> {
    match (&source.path, &source.config) {
        (Some(path), None) => {
            if path.is_dir() {
                let files =
                    log_files(path).with_context(|| format!("reading {}", path.display()))?;
                Ok(Source::Files {
                    files,
                    dir: Some(path.clone()),
                    key: Some(path.join("audit-signing.key")),
                })
            } else if path.is_file() {
                Ok(Source::Files {
                    files: vec![path.clone()],
                    dir: None,
                    key: path.parent().map(|dir| dir.join("audit-signing.key")),
                })
            } else {
                bail!("{}: no such log file or directory", path.display())
            }
        }
        (None, Some(config)) => {
            let config = config_loading::load(Some(config))?;
            let audit = &config.audit;
            if audit.sink == warden_config::AuditSink::Postgres {
                let url = config
                    .storage
                    .as_ref()
                    .map(|s| s.url.clone())
                    .context("audit.sink = \"postgres\" needs [storage]")?;
                Ok(Source::Table {
                    url,
                    key: audit.signing_key_file.clone(),
                })
            } else {
                let files = log_files(&audit.dir)
                    .with_context(|| format!("reading {}", audit.dir.display()))?;
                Ok(Source::Files {
                    files,
                    dir: Some(audit.dir.clone()),
                    key: audit.signing_key_file.clone(),
                })
            }
        }
        _ => bail!("name the log: a PATH or --config FILE"),
    }
}

fn public_key(
    explicit: Option<&str>,
    beside: Option<&Path>,
) -> anyhow::Result<(Option<PublicKey>, String)> {
    if let Some(text) = explicit {
        let key = if text.starts_with("ed25519:") {
            PublicKey::parse(text).map_err(anyhow::Error::msg)?
        } else {
            PublicKey::read(Path::new(text))?
        };
        return Ok((Some(key), "the given public key".to_owned()));
    }
    if let Some(key_file) = beside {
        let pub_file = public_key_path(key_file);
        if pub_file.exists() {
            return Ok((
                Some(PublicKey::read(&pub_file)?),
                format!(
                    "{} (pin it with --public-key: a key read from beside the log only proves what its writer could also change)",
                    pub_file.display()
                ),
            ));
        }
    }
    Ok((
        None,
        "no public key: signatures were not checked".to_owned(),
    ))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

async fn table_lines(url: &str) -> anyhow::Result<(Vec<String>, Option<Head>)> {
    let (pg, _) = PgSink::open(url).await?;
    let mut lines = Vec::new();
    let mut after = None;
    loop {
        let page = pg.lines(after, 10_000).await?;
        if page.is_empty() {
            break;
        }
        for line in page {
            if let Ok(record) = decode(&line) {
                after = Some(record.seq);
            } else {
                // A row that does not decode still counts; the verifier reports it.
                after = after.map(|seq: u64| seq.saturating_add(1));
            }
            lines.push(line);
        }
    }
    let head = pg.head().await?;
    Ok((lines, head))
}

pub fn verify(args: &AuditVerifyArgs) -> anyhow::Result<Verdict> {
    let source = resolve(&args.source)?;
    let (report, key_note) = match source {
        Source::Files { files, dir, key } => {
            let (public, note) = public_key(args.public_key.as_deref(), key.as_deref())?;
            let mut texts = Vec::new();
            for file in &files {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading {}", file.display()))?;
                texts.push((file.display().to_string(), text));
            }
            let lines: Vec<Line<'_>> = texts
                .iter()
                .flat_map(|(name, text)| lines_of(name, text))
                .collect();
            let head_path = dir.map(|dir| dir.join(HEAD)).or_else(|| {
                files
                    .first()
                    .filter(|f| f.ends_with(warden_audit::file_sink::CURRENT))
                    .and_then(|f| f.parent().map(|d| d.join(HEAD)))
            });
            let head_path_checked = head_path.is_some();
            let head: Option<(String, Head)> = match head_path {
                Some(path) if path.exists() => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let head: Head = serde_json::from_str(text.trim())
                        .with_context(|| format!("{}: not a signed head", path.display()))?;
                    Some((path.display().to_string(), head))
                }
                _ => None,
            };
            let keys: Vec<PublicKey> = public.into_iter().collect();
            let mut report = verify_lines(
                &lines,
                &keys,
                head.as_ref().map(|(name, head)| (name.as_str(), head)),
            );
            if report.finding.is_none()
                && head.is_none()
                && head_path_checked
                && report.checkpoints_verified + report.checkpoints_unchecked > 0
            {
                report.finding = Some(warden_audit::verify::Finding {
                    source: HEAD.to_owned(),
                    line: 0,
                    seq: None,
                    problem: warden_audit::verify::Problem::HeadMissing,
                });
            }
            (report, note)
        }
        Source::Table { url, key } => {
            let (public, note) = public_key(args.public_key.as_deref(), key.as_deref())?;
            let (rows, head) = runtime()?.block_on(table_lines(&url))?;
            let lines: Vec<Line<'_>> = rows
                .iter()
                .enumerate()
                .map(|(index, text)| Line {
                    source: "warden_decision_log",
                    number: index + 1,
                    text,
                    terminated: true,
                })
                .collect();
            let keys: Vec<PublicKey> = public.into_iter().collect();
            (
                verify_lines(
                    &lines,
                    &keys,
                    head.as_ref().map(|head| ("warden_decision_log_head", head)),
                ),
                note,
            )
        }
    };
    let range = match (report.first_seq, report.last_seq) {
        (Some(first), Some(last)) => format!("seq {first} to {last}"),
        _ => "no records".to_owned(),
    };
    match &report.finding {
        None => {
            println!(
                "ok: {} records ({range}), {} checkpoints verified, {} unchecked, head {}",
                report.records,
                report.checkpoints_verified,
                report.checkpoints_unchecked,
                if report.head_checked {
                    "verified"
                } else {
                    "not present"
                }
            );
            println!("key: {key_note}");
            if let Some(first) = report.first_seq.filter(|first| *first > 0) {
                println!(
                    "note: the log starts at seq {first}; earlier records are not in it (rotated away or deleted)"
                );
            }
            Ok(Verdict::Success)
        }
        Some(finding) => {
            println!("BROKEN: {finding}");
            println!("intact before it: {} records ({range})", report.records);
            Ok(Verdict::Negative)
        }
    }
}

pub fn query(args: &AuditQueryArgs) -> anyhow::Result<Verdict> {
    let parse_time = |text: &Option<String>, name: &str| -> anyhow::Result<Option<i128>> {
        text.as_deref()
            .map(|t| {
                parse_time_ms(t).with_context(|| {
                    format!("--{name} `{t}` is not an RFC 3339 time (e.g. 2026-11-26T09:00:00Z)")
                })
            })
            .transpose()
    };
    if let Some(decision) = &args.decision
        && decision != "allow"
        && decision != "deny"
    {
        bail!("--decision is `allow` or `deny`");
    }
    let filter = Filter {
        tenant: args.tenant.clone(),
        principal: args.principal.clone(),
        resource: args.resource.clone(),
        actor: args.actor.clone(),
        decision: args.decision.clone(),
        reason: args.reason.clone(),
        since_ms: parse_time(&args.since, "since")?,
        until_ms: parse_time(&args.until, "until")?,
        all_kinds: args.all,
    };
    let limit = args.limit.max(1);
    let records: Vec<StoredRecord> = match resolve(&args.source)? {
        Source::Files { files, .. } => {
            let mut found = std::collections::VecDeque::new();
            for file in &files {
                for record in warden_audit::query::query_path(file, &filter, usize::MAX, true)? {
                    found.push_back(record);
                    if found.len() > limit {
                        found.pop_front();
                    }
                }
            }
            found.into()
        }
        Source::Table { url, .. } => {
            let (rows, _) = runtime()?.block_on(table_lines(&url))?;
            let mut found: Vec<StoredRecord> = rows
                .iter()
                .filter_map(|l| decode(l).ok())
                .filter(|r| filter.matches(r))
                .collect();
            let skip = found.len().saturating_sub(limit);
            found.drain(..skip);
            found
        }
    };
    match args.format {
        AuditFormat::Json => {
            for record in &records {
                let mut value = serde_json::to_value(&record.record)?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("seq".to_owned(), record.seq.into());
                }
                println!("{value}");
            }
        }
        AuditFormat::Table => {
            println!(
                "{:<24}  {:<36}  {:<6}  {:<22}  {:<28}  {:<10}  RESOURCE",
                "TIME", "ID", "RESULT", "REASON", "PRINCIPAL", "ACTION"
            );
            for stored in &records {
                let r = &stored.record;
                let entity = |e: &Option<warden_audit::EntityRef>| {
                    e.as_ref().map_or_else(
                        || "-".to_owned(),
                        |e| format!("{}::{:?}", e.entity_type, e.id),
                    )
                };
                println!(
                    "{:<24}  {:<36}  {:<6}  {:<22}  {:<28}  {:<10}  {}",
                    r.time,
                    r.id,
                    r.decision.as_deref().unwrap_or("-"),
                    r.reason.as_deref().unwrap_or("-"),
                    entity(&r.principal),
                    r.action.as_deref().unwrap_or("-"),
                    entity(&r.resource)
                );
                if let Some(explanation) = &r.explanation {
                    println!("    {}", explanation.summary);
                }
            }
        }
    }
    Ok(if records.is_empty() {
        Verdict::Negative
    } else {
        Verdict::Success
    })
}
