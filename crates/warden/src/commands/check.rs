//! `warden check`: decide one request, or a JSON-lines file of them, and explain.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use warden_core::cedar_policy::{Entities, Request};
use warden_core::{Pack, explain, parse_uid, parse_uid_json};

use super::Verdict;
use crate::cli::CheckArgs;
use crate::decision_json::decision_json;
use crate::pack_loading;

/// The longest line `--requests` accepts.
const MAX_REQUEST_LINE_BYTES: usize = 1024 * 1024;

pub fn run(args: &CheckArgs) -> anyhow::Result<Verdict> {
    let pack = match pack_loading::load(&args.pack)? {
        Ok(compiled) => compiled.pack,
        Err(error) => {
            for diagnostic in error.errors() {
                eprintln!("{diagnostic}");
            }
            bail!(
                "the policy pack {} is invalid",
                args.pack.policies.display()
            );
        }
    };
    let entities = match &args.entities {
        Some(path) => load_entities(&pack, path)?,
        None => pack.parse_entities("[]").map_err(|e| anyhow!("{e}"))?,
    };
    if let Some(requests) = &args.requests {
        return run_requests(&pack, &entities, requests);
    }
    let (Some(principal), Some(action), Some(resource)) =
        (&args.principal, &args.action, &args.resource)
    else {
        bail!("--principal, --action and --resource are required without --requests");
    };
    let context = match &args.context {
        None => None,
        Some(text) => Some(parse_context_arg(text)?),
    };
    let request = pack.request(
        parse_uid(principal).context("--principal")?,
        parse_uid(action).context("--action")?,
        parse_uid(resource).context("--resource")?,
        context,
    )?;
    let decision = pack.decide(&request, &entities);
    let explanation = explain(&pack, &request, &entities, &decision);
    if args.json {
        println!("{:#}", decision_json(&decision, &explanation));
    } else {
        print!("{explanation}");
        println!(
            "reason: {}; policy revision {}; evaluated in {:.1} µs",
            decision.reason.as_str(),
            decision.revision,
            decision.elapsed.as_secs_f64() * 1e6
        );
    }
    Ok(if decision.is_allowed() {
        Verdict::Success
    } else {
        Verdict::Negative
    })
}

fn load_entities(pack: &Pack, path: &Path) -> anyhow::Result<Entities> {
    let text = warden_packdir::read_text(path)?;
    pack.parse_entities(&text).map_err(|error| {
        anyhow!(
            "{}: {}",
            path.display(),
            error.to_string().replace('\n', " ")
        )
    })
}

fn parse_context_arg(text: &str) -> anyhow::Result<Value> {
    let (json_text, origin) = match text.strip_prefix('@') {
        Some(path) => (
            warden_packdir::read_text(Path::new(path))?,
            format!("--context file {path}"),
        ),
        None => (text.to_owned(), "--context".to_owned()),
    };
    serde_json::from_str(&json_text).map_err(|error| anyhow!("{origin}: malformed JSON: {error}"))
}

fn run_requests(pack: &Pack, entities: &Entities, path: &Path) -> anyhow::Result<Verdict> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut any_invalid = false;
    let mut line = String::new();
    let mut line_number = 0usize;
    loop {
        line.clear();
        let read = reader
            .by_ref()
            .take(MAX_REQUEST_LINE_BYTES as u64 + 1)
            .read_line(&mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let result = if line.len() > MAX_REQUEST_LINE_BYTES {
            Err(anyhow!("line longer than {MAX_REQUEST_LINE_BYTES} bytes"))
        } else {
            request_from_line(pack, &line)
        };
        let output = match result {
            Ok(request) => {
                let decision = pack.decide(&request, entities);
                let explanation = explain(pack, &request, entities, &decision);
                decision_json(&decision, &explanation)
            }
            Err(error) => {
                any_invalid = true;
                json!({"line": line_number, "error": format!("{error:#}")})
            }
        };
        writeln!(out, "{output}")?;
        if line.len() > MAX_REQUEST_LINE_BYTES {
            // Skip the rest of an oversized line.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest)?;
        }
    }
    if any_invalid {
        bail!(
            "{}: some requests could not be evaluated (see the \"error\" lines)",
            path.display()
        );
    }
    Ok(Verdict::Success)
}

fn request_from_line(pack: &Pack, line: &str) -> anyhow::Result<Request> {
    let value: Value =
        serde_json::from_str(line).map_err(|error| anyhow!("malformed JSON: {error}"))?;
    let field = |name: &str| {
        value
            .get(name)
            .ok_or_else(|| anyhow!("missing field `{name}`"))
            .and_then(|v| parse_uid_json(v).with_context(|| format!("field `{name}`")))
    };
    let context = match value.get("context") {
        None | Some(Value::Null) => None,
        Some(context) => Some(context.clone()),
    };
    Ok(pack.request(
        field("principal")?,
        field("action")?,
        field("resource")?,
        context,
    )?)
}
