//! `warden check`: decide one request, or a JSON-lines file of them, and explain.
//!
//! Every request goes through the service's pipeline ([`warden_service::Service`]), the same
//! one `warden serve` runs: with `--config`, over the configuration's pack, entity file and
//! store (statuses, grants, revocations) and its issuers; without, over `--policies` and
//! `--entities` alone. A request the pack cannot take (unknown action, a type the schema
//! refuses, properties that do not fit or name another tenant) is bad input: exit 2.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Map, Value, json};
use warden_core::cedar_policy::EntityUid;
use warden_core::{Pack, parse_uid, parse_uid_json};
use warden_service::decision_log::Caller;
use warden_service::engine::{DecisionOutcome, DecisionScope, EntityInput, RefusalReason};
use warden_service::pipeline::CheckRequest;
use warden_service::{Service, suite};
use warden_token::TokenError;

use super::Verdict;
use crate::cli::CheckArgs;
use crate::decision_json::{decision_json, refusal_json, token_refusal_json};
use crate::{config_loading, pack_loading};

/// The longest line `--requests` accepts.
const MAX_REQUEST_LINE_BYTES: usize = 1024 * 1024;

/// One request, as the flags or a `--requests` line give it.
struct Question {
    principal: Asker,
    action: EntityUid,
    resource: EntityUid,
    resource_properties: Option<Map<String, Value>>,
    context: Option<Value>,
}

/// Who asks: a principal named by uid (with properties for one the data does not know), or a
/// bearer token.
enum Asker {
    Named(EntityUid, Option<Map<String, Value>>),
    Token(String),
}

/// What the pipeline answered, with who asked (as a uid, for the explanation).
enum Answer {
    Decided(DecisionOutcome, String),
    TokenRefused(TokenError),
}

pub fn run(args: &CheckArgs) -> anyhow::Result<Verdict> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let service = runtime.block_on(service_for(args))?;
    let scope = service.scope().map_err(|error| anyhow!("{error}"))?;
    if let Some(requests) = &args.requests {
        return run_requests(&runtime, &service, &scope, requests);
    }
    let question = question_from_flags(args)?;
    let answer = runtime.block_on(ask(&service, &scope, question))?;
    let revision = scope.snapshot.pack.revision();
    match &answer {
        Answer::TokenRefused(error) => {
            if args.json {
                println!("{:#}", token_refusal_json(error, revision.as_str()));
            } else {
                println!(
                    "DENY: the bearer token was refused ({}); no policy was consulted.",
                    error.reason.as_str()
                );
                if let Some(detail) = &error.detail {
                    println!("  - {detail}");
                }
                println!(
                    "reason: {}; policy revision {revision}",
                    error.reason.as_str()
                );
            }
            Ok(Verdict::Negative)
        }
        Answer::Decided(outcome, principal) => {
            let decided = suite::decided(&scope, principal, outcome);
            match outcome.decision() {
                Some(decision) if args.json => {
                    println!("{:#}", decision_json(decision, &decided.explanation));
                }
                Some(decision) => {
                    print!("{}", decided.explanation);
                    println!(
                        "reason: {}; policy revision {}; evaluated in {:.1} µs",
                        decision.reason.as_str(),
                        decision.revision,
                        decision.elapsed.as_secs_f64() * 1e6
                    );
                }
                None if args.json => {
                    println!(
                        "{:#}",
                        refusal_json(outcome.reason(), &decided.explanation, revision.as_str())
                    );
                }
                None => {
                    print!("{}", decided.explanation);
                    println!("reason: {}; policy revision {revision}", outcome.reason());
                }
            }
            Ok(if outcome.allowed() {
                Verdict::Success
            } else {
                Verdict::Negative
            })
        }
    }
}

/// The service the flags name: the configuration's, or the pack and entity file alone.
async fn service_for(args: &CheckArgs) -> anyhow::Result<Service> {
    if let Some(path) = &args.config {
        let config = config_loading::load(Some(path))?;
        return warden_service::start::open_offline(&config)
            .await
            .map_err(|error| anyhow!("{error}"));
    }
    let policies = args
        .policies
        .as_deref()
        .ok_or_else(|| anyhow!("give --policies or --config"))?;
    let pack = match pack_loading::load_from(policies, args.schema.as_deref())? {
        Ok(compiled) => compiled.pack,
        Err(error) => {
            for diagnostic in error.errors() {
                eprintln!("{diagnostic}");
            }
            bail!("the policy pack {} is invalid", policies.display());
        }
    };
    let entities = match &args.entities {
        Some(path) => Some(load_entities(&pack, path)?),
        None => None,
    };
    warden_service::start::local(Arc::new(pack), entities).map_err(|error| anyhow!("{error}"))
}

/// Reads an entity file and checks it against the pack, so a bad file is named with its path.
fn load_entities(pack: &Pack, path: &Path) -> anyhow::Result<String> {
    let text = warden_packdir::read_text(path)?;
    pack.parse_entities(&text).map_err(|error| {
        anyhow!(
            "{}: {}",
            path.display(),
            error.to_string().replace('\n', " ")
        )
    })?;
    Ok(text)
}

fn parse_json_arg(text: &str, flag: &str) -> anyhow::Result<Value> {
    let (json_text, origin) = match text.strip_prefix('@') {
        Some(path) => (
            warden_packdir::read_text(Path::new(path))?,
            format!("{flag} file {path}"),
        ),
        None => (text.to_owned(), flag.to_owned()),
    };
    serde_json::from_str(&json_text).map_err(|error| anyhow!("{origin}: malformed JSON: {error}"))
}

fn properties_arg(text: Option<&String>, flag: &str) -> anyhow::Result<Option<Map<String, Value>>> {
    match text {
        None => Ok(None),
        Some(text) => match parse_json_arg(text, flag)? {
            Value::Object(properties) => Ok(Some(properties)),
            _ => bail!("{flag}: the properties must be a JSON object"),
        },
    }
}

fn question_from_flags(args: &CheckArgs) -> anyhow::Result<Question> {
    let (Some(action), Some(resource)) = (&args.action, &args.resource) else {
        bail!("--action and --resource are required without --requests");
    };
    let principal = match (&args.token, &args.principal) {
        (Some(token), _) => Asker::Token(token.clone()),
        (None, Some(principal)) => Asker::Named(
            parse_uid(principal).context("--principal")?,
            properties_arg(args.principal_properties.as_ref(), "--principal-properties")?,
        ),
        (None, None) => bail!("--principal or --token is required without --requests"),
    };
    Ok(Question {
        principal,
        action: parse_uid(action).context("--action")?,
        resource: parse_uid(resource).context("--resource")?,
        resource_properties: properties_arg(
            args.resource_properties.as_ref(),
            "--resource-properties",
        )?,
        context: match &args.context {
            None => None,
            Some(text) => Some(parse_json_arg(text, "--context")?),
        },
    })
}

fn entity_input(uid: &EntityUid, properties: Option<Map<String, Value>>) -> EntityInput {
    EntityInput {
        entity_type: uid.type_name().to_string(),
        id: uid.id().unescaped().to_owned(),
        properties,
    }
}

/// Runs one question through the pipeline. A request the pack cannot take is an `Err`.
async fn ask(
    service: &Service,
    scope: &DecisionScope,
    question: Question,
) -> anyhow::Result<Answer> {
    let caller = Caller {
        entry: "cli.check",
        label: None,
        origin: None,
        started: Instant::now(),
    };
    let action = suite::action_name(&question.action).map_err(|why| anyhow!("{why}"))?;
    let resource = entity_input(&question.resource, question.resource_properties);
    let (outcome, principal) = match question.principal {
        Asker::Token(token) => match service.authenticate(&token).await {
            Err(error) => return Ok(Answer::TokenRefused(error)),
            Ok(bearer) => {
                let request = CheckRequest {
                    action,
                    resource,
                    context: question.context,
                };
                let outcome = service.check(scope, &caller, &bearer, request).await;
                (outcome, bearer.principal().uid_string())
            }
        },
        Asker::Named(uid, properties) => {
            let outcome = service
                .evaluate(
                    scope,
                    &caller,
                    entity_input(&uid, properties),
                    action,
                    resource,
                    question.context,
                )
                .await;
            (outcome, uid.to_string())
        }
    };
    if let Some(refusal) = &outcome.refusal
        && refusal.reason == RefusalReason::InvalidRequest
    {
        bail!("{}", refusal.detail);
    }
    Ok(Answer::Decided(outcome, principal))
}

fn run_requests(
    runtime: &tokio::runtime::Runtime,
    service: &Service,
    scope: &DecisionScope,
    path: &Path,
) -> anyhow::Result<Verdict> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut any_invalid = false;
    let mut line = String::new();
    let mut line_number = 0usize;
    let revision = scope.snapshot.pack.revision();
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
            question_from_line(&line)
                .and_then(|question| runtime.block_on(ask(service, scope, question)))
        };
        let output = match result {
            Ok(Answer::Decided(outcome, principal)) => {
                let decided = suite::decided(scope, &principal, &outcome);
                match outcome.decision() {
                    Some(decision) => decision_json(decision, &decided.explanation),
                    None => refusal_json(outcome.reason(), &decided.explanation, revision.as_str()),
                }
            }
            Ok(Answer::TokenRefused(error)) => token_refusal_json(&error, revision.as_str()),
            Err(error) => {
                any_invalid = true;
                json!({"line": line_number, "error": format!("{error:#}"), "reason": "invalid_request"})
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

fn question_from_line(line: &str) -> anyhow::Result<Question> {
    let value: Value =
        serde_json::from_str(line).map_err(|error| anyhow!("malformed JSON: {error}"))?;
    let uid_field = |name: &str| -> anyhow::Result<EntityUid> {
        value
            .get(name)
            .ok_or_else(|| anyhow!("missing field `{name}`"))
            .and_then(|v| parse_uid_json(v).with_context(|| format!("field `{name}`")))
    };
    let properties = |name: &str| -> anyhow::Result<Option<Map<String, Value>>> {
        match value.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(properties)) => Ok(Some(properties.clone())),
            Some(_) => bail!("field `{name}` must be a JSON object"),
        }
    };
    let principal = match value.get("token") {
        Some(Value::String(token)) => Asker::Token(token.clone()),
        Some(_) => bail!("field `token` must be a string (a JWT)"),
        None => Asker::Named(uid_field("principal")?, properties("principal_properties")?),
    };
    Ok(Question {
        principal,
        action: uid_field("action")?,
        resource: uid_field("resource")?,
        resource_properties: properties("resource_properties")?,
        context: match value.get("context") {
            None | Some(Value::Null) => None,
            Some(context) => Some(context.clone()),
        },
    })
}
