//! `warden diff`: what a candidate policy pack would change, from the decision log (issue #24).
//! The decisions `[audit]` of the configuration recorded are replayed against the pack in force
//! and against the candidate, over today's entity state (the entity file and the store now),
//! and every decision the candidate decides otherwise is listed, grouped by direction, policy
//! and tenant. Exit 0 when no change falls outside `--expect`, 1 when one does, 2 on bad usage
//! or input (a candidate that does not load, a log that cannot be read).

use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use warden_audit::record::Record;
use warden_service::decision_log::LogSource;
use warden_service::policy_diff::{
    DiffReport, Expectation, Replay, read_decisions, replay_scope, since_ms,
};

use super::{Verdict, unix_now};
use crate::cli::DiffArgs;
use crate::{config_loading, pack_loading};

pub fn run(args: &DiffArgs) -> anyhow::Result<Verdict> {
    let expected: Vec<Expectation> = args
        .expect
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|why: String| anyhow!("--expect {why}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let since_ms = args
        .since
        .as_deref()
        .map(|text| since_ms(text, unix_now()).map_err(|why| anyhow!("--since {why}")))
        .transpose()?;
    let config = config_loading::load(Some(&args.config))?;
    let candidate_pack = match pack_loading::load_from(&args.policies, None)? {
        Ok(compiled) => compiled.pack,
        Err(error) => {
            for diagnostic in error.errors() {
                eprintln!("{diagnostic}");
            }
            bail!("the candidate pack {} is invalid", args.policies.display());
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let records = runtime.block_on(read_log(&config, since_ms))?;
    let report = runtime.block_on(async {
        let current = warden_service::start::open_offline(&config)
            .await
            .map_err(|error| anyhow!("{error}"))?;
        let candidate = warden_service::start::open_offline(&config)
            .await
            .map_err(|error| anyhow!("{error}"))?;
        let entities_text = candidate
            .policy
            .data_inputs()
            .map_err(|error| anyhow!("{error}"))?
            .entities_text;
        candidate
            .policy
            .set_pack(Arc::new(candidate_pack), entities_text)
            .map_err(|error| {
                anyhow!(
                    "the candidate pack {} does not fit the entity data: {error}",
                    args.policies.display()
                )
            })?;
        let live = current.scope().map_err(|error| anyhow!("{error}"))?;
        let current_scope =
            replay_scope(&live, Arc::clone(&live.snapshot.pack)).map_err(|why| anyhow!("{why}"))?;
        let candidate_live = candidate.scope().map_err(|error| anyhow!("{error}"))?;
        let candidate_scope =
            replay_scope(&candidate_live, Arc::clone(&candidate_live.snapshot.pack))
                .map_err(|why| anyhow!("{why}"))?;
        let replay = Replay {
            current: (&current, &current_scope),
            candidate: (&candidate, &candidate_scope),
            examples: args.examples,
            expected,
        };
        let report = replay.run(records).await;
        let revisions = (
            current_scope.snapshot.pack.revision().to_string(),
            candidate_scope.snapshot.pack.revision().to_string(),
        );
        anyhow::Ok((report, revisions))
    })?;
    let (report, (current_revision, candidate_revision)) = report;
    let surprises = report.unexpected;
    if args.json {
        let answer = serde_json::json!({
            "current_revision": current_revision,
            "candidate_revision": candidate_revision,
            "entity_state": "today",
            "report": report,
            "unexpected": surprises,
        });
        println!("{answer:#}");
    } else {
        print_report(
            args,
            &report,
            &current_revision,
            &candidate_revision,
            surprises,
        );
    }
    Ok(if surprises == 0 {
        Verdict::Success
    } else {
        Verdict::Negative
    })
}

/// The decision records of the configuration's log, oldest first, from `since_ms` on.
async fn read_log(
    config: &warden_config::Config,
    since_ms: Option<i128>,
) -> anyhow::Result<Vec<Record>> {
    let audit = &config.audit;
    let source = if audit.sink == warden_config::AuditSink::Postgres {
        let url = config
            .storage
            .as_ref()
            .map(|storage| storage.url.clone())
            .context("audit.sink = \"postgres\" needs [storage]")?;
        let (table, _) = warden_audit::pg_sink::PgSink::open(&url).await?;
        LogSource::Postgres(table)
    } else {
        if !audit.dir.is_dir() {
            bail!(
                "{}: no decision log here ([audit] dir of {})",
                audit.dir.display(),
                config.origin
            );
        }
        LogSource::Dir(audit.dir.clone())
    };
    read_decisions(&source, since_ms)
        .await
        .map_err(|error| anyhow!("reading the decision log: {error}"))
}

fn print_report(
    args: &DiffArgs,
    report: &DiffReport,
    current_revision: &str,
    candidate_revision: &str,
    surprises: usize,
) {
    println!(
        "warden diff: {} (revision {candidate_revision}) against the pack in force (revision {current_revision})",
        args.policies.display()
    );
    println!(
        "entity state: today's (the entity file and the store as they are now, not as each decision saw them)"
    );
    println!(
        "decisions read: {}{}; replayed: {} ({} distinct requests) in {} ms",
        report.read,
        args.since
            .as_deref()
            .map(|since| format!(" since {since}"))
            .unwrap_or_default(),
        report.replayed,
        report.distinct_requests,
        report.elapsed_ms
    );
    if !report.not_replayed.is_empty() {
        let skipped: Vec<String> = report
            .not_replayed
            .iter()
            .map(|(reason, count)| {
                let reason = if reason.is_empty() { "-" } else { reason };
                format!("{reason} {count}")
            })
            .collect();
        println!(
            "not replayed (refused before any policy): {}",
            skipped.join(", ")
        );
    }
    if report.drift > 0 {
        println!(
            "drift: {} decision(s) the pack in force now decides otherwise than recorded (the data changed since, or a token's claims are not in the log); e.g. {}",
            report.drift,
            report.drift_examples.join(", ")
        );
    }
    let to_deny = report.allow_to_deny;
    println!(
        "changes: {} (allow-to-deny {to_deny}, deny-to-allow {})",
        report.changed,
        report.changed - to_deny
    );
    for group in &report.groups {
        println!();
        println!(
            "{} {}, policy {}, tenant {}:",
            group.count,
            group.direction.name(),
            group.policy,
            group.tenant
        );
        for change in &group.examples {
            println!(
                "  {} {} {} {} ({} -> {}; decision {})",
                change.time,
                change.principal,
                change.action,
                change.resource,
                change.reasons.0,
                change.reasons.1,
                change.decision_id
            );
        }
    }
    if surprises > 0 {
        println!();
        println!("{surprises} change(s) not covered by --expect");
    }
}
