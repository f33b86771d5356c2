//! The service's side of the decision log: opening the configured sink, turning a decision,
//! a refused token or an admin call into a record, and turning a failed write into a deny in
//! the fail-closed mode.
//!
//! The hot path only copies what it already has (ids, reason, policy ids); the plain-words
//! explanation and the tenants are filled in on the writer thread from the snapshot that
//! decided, with the same explainer as `warden check`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use warden_audit::pg_sink::PgSink;
use warden_audit::{
    AuditLog, Durability, EntityRef, Explainer, Kind, LogSettings, OnFailure, PolicyRef, Record,
    Sink, TokenRef, WriterHandle,
};
use warden_config::{AuditDurability, AuditOnFailure, AuditSettings, AuditSink};
use warden_core::cedar_policy::EntityUid;

use crate::engine::{DecisionInput, DecisionOutcome, DecisionScope, PrincipalInput, Refusal};
use crate::pipeline::Presented;
use crate::snapshot::Snapshot;

/// The open decision log and where to read it back.
#[derive(Clone, Debug)]
pub struct DecisionLog {
    /// The writer's handle.
    pub log: AuditLog,
    /// Where `GET /v1/decisions/{id}` looks.
    pub source: LogSource,
}

/// Where records are read back from.
#[derive(Clone, Debug)]
pub enum LogSource {
    /// A log directory.
    Dir(PathBuf),
    /// The PostgreSQL table.
    Postgres(PgSink),
}

/// Why the decision log cannot be opened (the service does not start without it).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The checkpoint signing key cannot be read or made.
    #[error("the checkpoint signing key: {0}")]
    Key(#[from] warden_audit::signing::KeyError),
    /// `sink = "postgres"` without a PostgreSQL store.
    #[error("audit.sink = \"postgres\" needs [storage]")]
    NeedsStorage,
    /// The PostgreSQL sink cannot be opened.
    #[error(transparent)]
    Postgres(#[from] warden_audit::pg_sink::PgSinkError),
    /// The log directory cannot be opened.
    #[error(transparent)]
    File(#[from] warden_audit::file_sink::FileSinkError),
    /// The writer thread cannot start.
    #[error("the writer thread: {0}")]
    Writer(#[from] std::io::Error),
}

/// Opens the configured sink and starts the writer; `None` when `[audit] enabled = false`.
pub async fn open(
    settings: &AuditSettings,
    storage_url: Option<&str>,
) -> Result<Option<(DecisionLog, WriterHandle)>, OpenError> {
    if !settings.enabled {
        tracing::warn!("the decision log is disabled ([audit] enabled = false)");
        return Ok(None);
    }
    let durability = match settings.durability {
        AuditDurability::Buffered => Durability::Buffered,
        AuditDurability::Synced => Durability::Synced,
        AuditDurability::Durable => Durability::Durable,
    };
    let key_path = settings
        .signing_key_file
        .clone()
        .unwrap_or_else(|| settings.dir.join("audit-signing.key"));
    let key = warden_audit::SigningKey::load_or_create(&key_path)?;
    let (sink, state, source) = if settings.sink == AuditSink::Postgres {
        let url = storage_url.ok_or(OpenError::NeedsStorage)?;
        let (pg, state) = PgSink::open(url).await?;
        (Sink::Postgres(pg.clone()), state, LogSource::Postgres(pg))
    } else {
        let (file, state) = warden_audit::file_sink::FileSink::open(
            &settings.dir,
            settings.max_file_bytes,
            durability == Durability::Synced,
        )?;
        (
            Sink::File(file),
            state,
            LogSource::Dir(settings.dir.clone()),
        )
    };
    let log_settings = LogSettings {
        durability,
        on_failure: match settings.on_failure {
            AuditOnFailure::Block => OnFailure::Block,
            AuditOnFailure::Deny => OnFailure::Deny,
        },
        queue_capacity: settings.queue_capacity,
        batch_max: settings.batch_max,
        checkpoint_every: settings.checkpoint_every,
        checkpoint_interval: Duration::from_secs(settings.checkpoint_interval_seconds.max(1)),
        retry_interval: Duration::from_millis(settings.retry_interval_ms.max(10)),
    };
    tracing::info!(sink = %settings.sink, durability = %settings.durability, on_failure = %settings.on_failure, next_seq = state.next_seq, "decision log open");
    let (log, writer) = AuditLog::start(sink, state, key, log_settings)?;
    Ok(Some((DecisionLog { log, source }, writer)))
}

/// Who called and how, for the record.
#[derive(Clone, Debug)]
pub struct Caller {
    /// `authzen.evaluation`, `authzen.evaluations`, `check`, ….
    pub entry: &'static str,
    /// The PEP or admin credential label.
    pub label: Option<String>,
    /// The peer address.
    pub origin: Option<std::net::SocketAddr>,
    /// When the request arrived.
    pub started: Instant,
}

impl Caller {
    /// Writes who called, from where, and how long the call has taken so far into `record`.
    fn stamp(&self, record: &mut Record) {
        record.caller = self.label.clone();
        record.origin = self.origin.map(|address| address.to_string());
        record.latency_us =
            Some(u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
}

/// Records `outcome`; in the fail-closed mode a record that cannot be kept turns it into a deny.
pub async fn record_decision(
    log: Option<&DecisionLog>,
    caller: &Caller,
    scope: &DecisionScope,
    input: &DecisionInput<'_>,
    token: Option<Presented>,
    outcome: &mut DecisionOutcome,
) {
    let Some(log) = log else { return };
    let (record, explainer) = decision_record(caller, scope, input, token, outcome);
    if let Err(unavailable) = log.log.record(record, Some(explainer)).await
        && outcome.refusal.is_none()
    {
        outcome.refusal = Some(Refusal {
            reason: crate::engine::RefusalReason::AuditUnavailable,
            detail: unavailable.0,
        });
    }
}

fn decision_record(
    caller: &Caller,
    scope: &DecisionScope,
    input: &DecisionInput<'_>,
    token: Option<Presented>,
    outcome: &DecisionOutcome,
) -> (Record, Explainer) {
    let mut record = Record::new(Kind::Decision, outcome.decision_id.clone());
    record.entry = Some(caller.entry.to_owned());
    let (principal_type, principal_id, principal_tenant) = match &input.principal {
        PrincipalInput::Token(principal) => (
            principal.entity_type.clone(),
            principal.id.clone(),
            principal.tenant.clone(),
        ),
        PrincipalInput::Named(subject) => (subject.entity_type.clone(), subject.id.clone(), None),
    };
    record.principal = Some(EntityRef {
        entity_type: principal_type,
        id: principal_id,
        tenant: principal_tenant,
    });
    record.action = Some(input.action.clone());
    record.resource = Some(EntityRef {
        entity_type: input.resource.entity_type.clone(),
        id: input.resource.id.clone(),
        tenant: None,
    });
    record.decision = Some(if outcome.allowed() { "allow" } else { "deny" }.to_owned());
    record.reason = Some(outcome.reason().to_owned());
    if let Some(decision) = outcome.decision() {
        record.policies = decision
            .determining
            .iter()
            .map(|policy| PolicyRef {
                id: policy.id.to_string(),
                description: policy.description.as_deref().map(str::to_owned),
            })
            .collect();
        record.errors = decision
            .errors
            .iter()
            .map(|error| format!("{}: {}", error.policy, error.message))
            .collect();
        record.policy_revision = Some(decision.revision.as_str().to_owned());
    } else {
        record.policy_revision = Some(scope.snapshot.pack.revision().as_str().to_owned());
    }
    if let Some(refusal) = &outcome.refusal {
        record.errors.push(refusal.detail.clone());
    }
    if let Some(presented) = token {
        record.token = presented.token;
        record.actors = presented.actors;
    }
    caller.stamp(&mut record);
    record.context = input.context.clone();
    let snapshot = Arc::clone(&scope.snapshot);
    // A refusal is explained from the record alone; a decision from the policies' answer.
    let evaluated = match outcome.refusal {
        None => outcome.evaluated.clone(),
        Some(_) => None,
    };
    let explainer: Explainer = Box::new(move |record: &mut Record| {
        complete(&snapshot, evaluated.as_deref(), record);
    });
    (record, explainer)
}

/// Off the request path: tenants from the entity data and the plain-words explanation.
fn complete(
    snapshot: &Snapshot,
    evaluated: Option<&crate::decision_cache::Entry>,
    record: &mut Record,
) {
    let pack = &snapshot.pack;
    if let Some(tenancy) = pack.tenancy() {
        let tenant = |entity: &EntityRef| {
            let type_name = pack.type_name(&entity.entity_type)?;
            let uid = EntityUid::from_type_name_and_id(
                type_name,
                warden_core::cedar_policy::EntityId::new(&entity.id),
            );
            // The decision's own entities when it was made, else what the data has now.
            let from_decision = evaluated.and_then(|entry| {
                warden_core::tenant_guard::tenant_of(tenancy, &uid, &entry.entities).ok()
            });
            from_decision
                .or_else(|| {
                    let slice = snapshot
                        .entities()
                        .slice(pack, &snapshot.roots, std::slice::from_ref(&uid), &[])
                        .ok()?;
                    warden_core::tenant_guard::tenant_of(tenancy, &uid, &slice).ok()
                })
                .map(|tenant| tenant.id().unescaped().to_owned())
        };
        for entity in [record.principal.as_mut(), record.resource.as_mut()]
            .into_iter()
            .flatten()
        {
            if entity.tenant.is_none() {
                entity.tenant = tenant(entity);
            }
        }
    }
    let overridden = record.reason.as_deref() == Some("audit_unavailable");
    record.explanation = Some(match evaluated {
        Some(entry) if !overridden => {
            // The same decision explains the same way: made once per entry, copied after.
            entry
                .explanation
                .get_or_init(|| {
                    let explanation = warden_core::explain(
                        pack,
                        &entry.request,
                        &entry.entities,
                        &entry.decision,
                    );
                    warden_audit::Explanation {
                        summary: explanation.summary,
                        details: explanation.details,
                    }
                })
                .clone()
        }
        _ => warden_audit::Explanation {
            summary: format!(
                "DENY: {} was refused before the policies were consulted ({}).",
                record
                    .principal
                    .as_ref()
                    .map_or_else(String::new, |p| format!("{}::{:?}", p.entity_type, p.id)),
                record.reason.as_deref().unwrap_or("unknown"),
            ),
            details: record.errors.clone(),
        },
    });
}

/// Records a bearer token refused on `/v1/check` (a deny with the token's reason code).
pub async fn record_token_refusal(
    log: Option<&DecisionLog>,
    caller: &Caller,
    action: Option<String>,
    resource: Option<EntityRef>,
    reason: &str,
    detail: Option<String>,
    token: Option<TokenRef>,
) {
    let Some(log) = log else { return };
    let mut record = Record::new(Kind::Decision, uuid::Uuid::now_v7().to_string());
    record.entry = Some(caller.entry.to_owned());
    record.action = action;
    record.resource = resource;
    record.decision = Some("deny".to_owned());
    record.reason = Some(reason.to_owned());
    record.errors = detail.into_iter().collect();
    record.token = token;
    caller.stamp(&mut record);
    record.explanation = Some(warden_audit::Explanation {
        summary: format!("DENY: the bearer token was refused ({reason}); no policy was consulted."),
        details: record.errors.clone(),
    });
    // The caller gets a 401 whatever happens here (a refusal needs no record to stand); a
    // lost record is counted and logged by the decision log itself.
    if let Err(unavailable) = log.log.record(record, None).await {
        tracing::warn!(error = %unavailable, "a refused token's decision-log record was not kept");
    }
}

/// Why a gateway request reached no policy decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrouted {
    /// No route matched; the gateway lets such requests through.
    Allowed,
    /// No route matched; denied.
    Denied,
    /// The path was refused before any route was tried.
    PathRefused,
    /// The request carried a method-override header.
    MethodOverride,
    /// The routed resource is not in the entity data.
    UnknownResource,
    /// The gateway's request could not be read (a header missing, sent twice, not text).
    Malformed,
    /// The gateway's request is larger than Warden reads.
    TooLarge,
    /// The request carries a header spelled like one of Warden's identity headers.
    IdentityHeader,
}

/// A new decision-record id (UUIDv7, as every decision's).
pub fn new_record_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Records a gateway request no route matched: denied (`no_route`), or let through by the
/// gateway's `default = "allow"` (`no_route_allowed`), with the method and path. An error means
/// the record is not safely kept (the allow must then not stand). `id` is the record's id
/// (the answer names it as the decision id).
pub async fn record_unrouted(
    log: Option<&DecisionLog>,
    caller: &Caller,
    id: String,
    request: String,
    outcome: Unrouted,
) -> Result<(), warden_audit::Unavailable> {
    let Some(log) = log else { return Ok(()) };
    let mut record = Record::new(Kind::Decision, id);
    record.entry = Some(caller.entry.to_owned());
    let (decision, reason, summary) = match outcome {
        Unrouted::Allowed => (
            "allow",
            "no_route_allowed",
            "ALLOW: no route matched and the gateway lets unmatched requests through; no policy was consulted.",
        ),
        Unrouted::Denied => (
            "deny",
            "no_route",
            "DENY: no route matched the request; no policy was consulted.",
        ),
        Unrouted::MethodOverride => (
            "deny",
            "method_override",
            "DENY: the request carries a method-override header, with which the upstream could run another method than the one decided on; no policy was consulted.",
        ),
        Unrouted::UnknownResource => (
            "deny",
            "resource_unknown",
            "DENY: the entity data does not know the routed resource (an id the upstream may read as another); no policy was consulted.",
        ),
        Unrouted::Malformed => (
            "deny",
            "request_malformed",
            "DENY: the gateway's request could not be read (a header missing, sent twice or not text); no policy was consulted.",
        ),
        Unrouted::TooLarge => (
            "deny",
            "request_too_large",
            "DENY: the gateway's request is larger than Warden reads; no policy was consulted.",
        ),
        Unrouted::IdentityHeader => (
            "deny",
            "identity_header_refused",
            "DENY: the request carries a header spelled like one of Warden's identity headers (with `_` for `-`), which an upstream reading headers CGI-style would take for the gateway's; no policy was consulted.",
        ),
        Unrouted::PathRefused => (
            "deny",
            "path_refused",
            "DENY: the path is not plain segments (dot segments, an encoded slash, a raw #, …), which the upstream could read as another resource; no policy was consulted.",
        ),
    };
    record.decision = Some(decision.to_owned());
    record.reason = Some(reason.to_owned());
    record.errors = vec![request];
    caller.stamp(&mut record);
    record.explanation = Some(warden_audit::Explanation {
        summary: summary.to_owned(),
        details: record.errors.clone(),
    });
    log.log.record(record, None).await
}

/// Records an admin API call; an error means the record is not safely kept.
pub async fn record_admin(
    log: Option<&DecisionLog>,
    caller: &Caller,
    operation: String,
    status: u16,
    tenant: Option<String>,
) -> Result<(), warden_audit::Unavailable> {
    let Some(log) = log else { return Ok(()) };
    let mut record = Record::new(Kind::Admin, uuid::Uuid::now_v7().to_string());
    record.entry = Some(caller.entry.to_owned());
    record.action = Some(operation);
    record.decision = Some(if status < 400 { "ok" } else { "failed" }.to_owned());
    record.reason = Some(format!("http_{status}"));
    caller.stamp(&mut record);
    record.resource = tenant.map(|tenant| EntityRef {
        entity_type: "Tenant".to_owned(),
        id: tenant.clone(),
        tenant: Some(tenant),
    });
    log.log.record(record, None).await
}

/// What an OAuth endpoint did, for its decision-log record.
pub struct Issuance<'a> {
    /// `token` or `revoke`.
    pub operation: &'a str,
    /// The client, when it was named (authenticated or not).
    pub client: Option<(String, String)>,
    /// `allow` (issued, revoked) or `deny`.
    pub allowed: bool,
    /// `token_issued`, `token_revoked`, or the OAuth error code.
    pub reason: &'a str,
    /// Why, in words (never a secret).
    pub detail: Option<String>,
    /// The token issued or revoked.
    pub token: Option<TokenRef>,
}

/// Records one call of `/oauth2/token` or `/oauth2/revoke`, issued or refused; an error means
/// the record is not safely kept (a token must then not be handed out).
pub async fn record_issuance(
    log: Option<&DecisionLog>,
    caller: &Caller,
    issuance: Issuance<'_>,
) -> Result<(), warden_audit::Unavailable> {
    let Some(log) = log else { return Ok(()) };
    let mut record = Record::new(Kind::Decision, uuid::Uuid::now_v7().to_string());
    record.entry = Some(caller.entry.to_owned());
    record.action = Some(format!("oauth2.{}", issuance.operation));
    record.principal = issuance.client.map(|(tenant, client_id)| EntityRef {
        entity_type: "ServiceAccount".to_owned(),
        // An unauthenticated client's tenant is unknown: the id it claimed, as it claimed it.
        id: if tenant.is_empty() {
            client_id
        } else {
            format!("{tenant}/{client_id}")
        },
        tenant: (!tenant.is_empty()).then_some(tenant),
    });
    record.decision = Some(if issuance.allowed { "allow" } else { "deny" }.to_owned());
    record.reason = Some(issuance.reason.to_owned());
    record.errors = issuance.detail.into_iter().collect();
    record.token = issuance.token;
    caller.stamp(&mut record);
    record.explanation = Some(warden_audit::Explanation {
        summary: if issuance.allowed {
            format!("ALLOW: oauth2.{} ({})", issuance.operation, issuance.reason)
        } else {
            format!(
                "DENY: oauth2.{} refused with {}",
                issuance.operation, issuance.reason
            )
        },
        details: record.errors.clone(),
    });
    log.log.record(record, None).await
}

/// In the fail-closed mode, why nothing that must be recorded may happen now.
pub fn refuses_writes(log: Option<&DecisionLog>) -> Option<warden_audit::Unavailable> {
    log.and_then(|log| log.log.refuses_new_decisions())
}

/// One AuthZEN search, for its decision-log record.
pub struct Search<'a> {
    /// `subject`, `resource` or `action`.
    pub kind: &'static str,
    /// The subject searched for, or the subject type (id `*`) of a subject search.
    pub subject: EntityRef,
    /// The action, unless actions were searched.
    pub action: Option<String>,
    /// The resource, or the resource type (id `*`) of a resource search.
    pub resource: EntityRef,
    /// What was found on this page (ids or action names).
    pub found: &'a [String],
    /// Why the subject was refused before any candidate was decided, if it was.
    pub refusal: Option<&'a Refusal>,
}

/// How many found ids a search record lists (the count is always complete).
const SEARCH_IDS_RECORDED: usize = 50;

/// Records one AuthZEN search call: who searched for what, and what the page found. An error
/// means the record is not safely kept (the search must then answer nothing).
pub async fn record_search(
    log: Option<&DecisionLog>,
    caller: &Caller,
    search: Search<'_>,
) -> Result<(), warden_audit::Unavailable> {
    let Some(log) = log else { return Ok(()) };
    let mut record = Record::new(Kind::Decision, uuid::Uuid::now_v7().to_string());
    record.entry = Some(format!("authzen.search.{}", search.kind));
    let subject = format!("{}::{:?}", search.subject.entity_type, search.subject.id);
    record.principal = Some(search.subject);
    record.action = search.action;
    record.resource = Some(search.resource);
    record.decision = Some(
        if search.found.is_empty() {
            "deny"
        } else {
            "allow"
        }
        .to_owned(),
    );
    record.reason = Some(
        search
            .refusal
            .map_or("search", |refusal| refusal.reason.as_str())
            .to_owned(),
    );
    if let Some(refusal) = search.refusal {
        record.errors.push(refusal.detail.clone());
    }
    caller.stamp(&mut record);
    let mut details: Vec<String> = search
        .found
        .iter()
        .take(SEARCH_IDS_RECORDED)
        .cloned()
        .collect();
    if search.found.len() > SEARCH_IDS_RECORDED {
        details.push(format!(
            "… and {} more",
            search.found.len() - SEARCH_IDS_RECORDED
        ));
    }
    record.explanation = Some(warden_audit::Explanation {
        summary: match search.refusal {
            Some(refusal) => format!(
                "SEARCH ({}): {subject} was refused ({}); nothing was found.",
                search.kind,
                refusal.reason.as_str()
            ),
            None => format!(
                "SEARCH ({}) for {subject}: {} found on this page.",
                search.kind,
                search.found.len()
            ),
        },
        details,
    });
    log.log.record(record, None).await
}

/// Records one data-filter plan: who asked, for which action and resource type, and the plan
/// in words. In the fail-closed mode a record that cannot be kept turns the plan into a
/// refusal (nothing is allowed).
pub async fn record_filter(
    log: Option<&DecisionLog>,
    caller: &Caller,
    scope: &DecisionScope,
    input: &crate::filter::FilterInput<'_>,
    token: Option<Presented>,
    unsupported: Option<&warden_core::filter::FilterError>,
    outcome: &mut crate::filter::FilterOutcome,
) {
    use warden_core::filter::PlanOutcome;
    let Some(log) = log else { return };
    let mut record = Record::new(Kind::Decision, outcome.decision_id.clone());
    record.entry = Some(caller.entry.to_owned());
    let (entity_type, id, tenant) = match &input.principal {
        PrincipalInput::Token(principal) => (
            principal.entity_type.clone(),
            principal.id.clone(),
            principal.tenant.clone(),
        ),
        PrincipalInput::Named(subject) => (subject.entity_type.clone(), subject.id.clone(), None),
    };
    let subject = format!("{entity_type}::{id:?}");
    record.principal = Some(EntityRef {
        entity_type,
        id,
        tenant: tenant.or_else(|| {
            outcome
                .plan
                .as_ref()
                .and_then(|plan| plan.tenant.as_ref())
                .map(|tenant| tenant.id().unescaped().to_owned())
        }),
    });
    record.action = Some(input.action.clone());
    record.resource = Some(EntityRef {
        entity_type: input.resource_type.clone(),
        id: "*".to_owned(),
        tenant: None,
    });
    let (decision, words) = match outcome.outcome() {
        PlanOutcome::AlwaysAllowed => ("allow", "every one".to_owned()),
        PlanOutcome::AlwaysDenied => ("deny", "none".to_owned()),
        PlanOutcome::Conditional(condition) => ("allow", format!("those where {condition}")),
    };
    record.decision = Some(decision.to_owned());
    record.reason = Some(
        if unsupported.is_some() {
            "filter_unsupported"
        } else {
            outcome.reason()
        }
        .to_owned(),
    );
    if let Some(error) = unsupported {
        record.errors.push(error.to_string());
    }
    if let Some(plan) = &outcome.plan {
        record.policies = plan
            .policies
            .iter()
            .map(|id| {
                let policy = scope.snapshot.pack.policy_ref(id.clone());
                PolicyRef {
                    id: policy.id.to_string(),
                    description: policy.description.as_deref().map(str::to_owned),
                }
            })
            .collect();
    }
    if let Some(refusal) = &outcome.refusal {
        record.errors.push(refusal.detail.clone());
    }
    record.policy_revision = Some(scope.snapshot.pack.revision().as_str().to_owned());
    if let Some(presented) = token {
        record.token = presented.token;
        record.actors = presented.actors;
    }
    record.context = input.context.clone();
    caller.stamp(&mut record);
    record.explanation = Some(warden_audit::Explanation {
        summary: match (&outcome.refusal, unsupported) {
            (_, Some(error)) => format!(
                "FILTER: no plan for {subject} to {} {} resources: {error}.",
                input.action, input.resource_type
            ),
            (Some(refusal), None) => format!(
                "FILTER: {subject} was refused before the policies were consulted ({}); no {} may be {}.",
                refusal.reason.as_str(),
                input.resource_type,
                input.action
            ),
            (None, None) => format!(
                "FILTER: of the {} resources, {subject} may {} {words}.",
                input.resource_type, input.action
            ),
        },
        details: Vec::new(),
    });
    if let Err(unavailable) = log.log.record(record, None).await
        && outcome.refusal.is_none()
    {
        outcome.plan = None;
        outcome.refusal = Some(Refusal {
            reason: crate::engine::RefusalReason::AuditUnavailable,
            detail: unavailable.0,
        });
    }
}
