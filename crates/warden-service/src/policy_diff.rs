//! What a policy change would do (`warden diff`, issue #24): the decisions of the decision log
//! replayed against the pack in force and against a candidate pack, over the same entity state,
//! and every decision whose outcome the candidate changes, grouped by direction, policy and
//! tenant.
//!
//! The entity state is today's (the entity file and the store as they are now), not the one each
//! decision saw: the log records who asked, what, on what and with which context, not the
//! entities. So the replay under the pack in force can differ from what was recorded (a role
//! granted since, an entity deleted): such decisions are counted as drift and shown apart, and a
//! change is only what the candidate decides otherwise than the pack in force on the same data.
//!
//! Only decisions the policies made are replayed (reasons `permitted`, `no_permit`, `forbidden`,
//! the tenant guard's); refusals before any policy (a refused token, a disabled principal, no
//! route, an unavailable store) are counted by reason and left out. A principal the entity data
//! does not know (one a token described) is replayed with its recorded tenant as its only
//! attribute: the roles and claims its token carried are not in the log.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value, json};
use warden_audit::query::Filter;
use warden_audit::record::{Kind, Record, decode, parse_time_ms};
use warden_core::Pack;

use crate::decision_log::{Caller, LogSource};
use crate::engine::{DecisionOutcome, DecisionScope, EntityInput};
use crate::entity_graph::PackRoots;
use crate::pipeline::Service;
use crate::snapshot::Snapshot;

/// `--since` / `"since"`: a span back from `now` (`7d`, `12h`, `30m`, `90s`) or an RFC 3339
/// time; Unix milliseconds.
pub fn since_ms(text: &str, now: i64) -> Result<i128, String> {
    if let Some(ms) = parse_time_ms(text) {
        return Ok(ms);
    }
    let refused = || format!("`{text}` is not a span (7d, 12h, 30m, 90s) or an RFC 3339 time");
    let Some((split, _)) = text.char_indices().last() else {
        return Err(refused());
    };
    let (number, unit) = text.split_at(split);
    let seconds_per: i64 = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(refused()),
    };
    let count: i64 = number
        .parse()
        .ok()
        .filter(|count| *count >= 0)
        .ok_or_else(refused)?;
    Ok(i128::from(now.saturating_sub(count.saturating_mul(seconds_per))) * 1000)
}

/// The decision records of a log, oldest first, from `since_ms` on.
pub async fn read_decisions(
    source: &LogSource,
    since_ms: Option<i128>,
) -> Result<Vec<Record>, String> {
    let filter = Filter {
        since_ms,
        ..Filter::default()
    };
    match source {
        LogSource::Dir(dir) => {
            let dir = dir.clone();
            let stored = tokio::task::spawn_blocking(move || {
                warden_audit::query::query_path(&dir, &filter, usize::MAX, false)
            })
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
            Ok(stored.into_iter().map(|stored| stored.record).collect())
        }
        LogSource::Postgres(table) => {
            let mut records = Vec::new();
            let mut after = None;
            loop {
                let page = table
                    .lines(after, 10_000)
                    .await
                    .map_err(|error| error.to_string())?;
                if page.is_empty() {
                    break;
                }
                let before = after;
                for line in page {
                    match decode(&line) {
                        Ok(stored) => {
                            after = Some(stored.seq);
                            if filter.matches(&stored) {
                                records.push(stored.record);
                            }
                        }
                        // A row that does not decode is skipped (`warden audit verify` reports it).
                        Err(_) => after = after.map(|seq: u64| seq.saturating_add(1)),
                    }
                }
                if after == before {
                    return Err(
                        "a page of the decision-log table has no row that decodes (run `warden audit verify`)"
                            .to_owned(),
                    );
                }
            }
            Ok(records)
        }
    }
}

/// The scope of `current` with `candidate` in place of its pack, over the same entity data and
/// tenant policies (shared, not copied). Only for a candidate whose schema and manifest are the
/// pack in force's (a policy change): other ones need the entity data read again against them,
/// which `warden diff --config` does.
pub fn candidate_scope(current: &DecisionScope, candidate: Pack) -> Result<DecisionScope, String> {
    if candidate.data_fingerprint() != current.snapshot.pack.data_fingerprint() {
        return Err(
            "the candidate changes the schema or pack.toml: the entity data would have to be read again against it (run `warden diff --config … --policies …`)"
                .to_owned(),
        );
    }
    replay_scope(current, Arc::new(candidate))
}

/// A scope to replay in: `pack` over `current`'s entity data and tenant policies (shared), with
/// a decision cache of its own (the live one is neither used, whose answers may predate a store
/// write, nor filled). A stale store view is refused: every decision would be a deny, and the
/// comparison meaningless. The decision log's state does not matter (a replay records nothing).
pub fn replay_scope(current: &DecisionScope, pack: Arc<Pack>) -> Result<DecisionScope, String> {
    if let Some(stale) = &current.stale {
        return Err(format!(
            "the entity data is stale ({stale}): a replay against it would compare denies"
        ));
    }
    let snapshot = &current.snapshot;
    let replay = Snapshot {
        roots: Arc::new(PackRoots::of(&pack)),
        pack,
        graph: Arc::clone(&snapshot.graph),
        policies: Arc::clone(&snapshot.policies),
        entities_revision: snapshot.entities_revision.clone(),
        store_version: snapshot.store_version,
        next_expiry: snapshot.next_expiry,
        loaded_at: std::time::SystemTime::now(),
        decisions: crate::decision_cache::DecisionCache::default(),
    };
    Ok(DecisionScope {
        snapshot: Arc::new(replay),
        stale: None,
        claim_attributes: Arc::clone(&current.claim_attributes),
        audit_down: None,
    })
}

/// `service` without its decision log: a replay decides, and records nothing.
pub fn replay_service(service: &Service) -> Service {
    Service {
        policy: Arc::clone(&service.policy),
        verifier: Arc::clone(&service.verifier),
        store: service.store.clone(),
        store_freshness: service.store_freshness.clone(),
        claim_attributes: Arc::clone(&service.claim_attributes),
        revocations: Arc::clone(&service.revocations),
        decision_log: None,
        token_issuer: service.token_issuer.clone(),
        entitlement_usage: None,
    }
}

/// The reasons of decisions the policies made, which a replay can make again.
pub const REPLAYED_REASONS: [&str; 7] = [
    "permitted",
    "permitted_cross_tenant",
    "no_permit",
    "forbidden",
    "tenant_boundary",
    "tenant_missing",
    "evaluation_error",
];

/// How an outcome changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Allowed by the pack in force, denied by the candidate.
    AllowToDeny,
    /// Denied by the pack in force, allowed by the candidate.
    DenyToAllow,
}

impl Direction {
    /// `allow-to-deny` or `deny-to-allow`, as `--expect` names it.
    pub fn name(self) -> &'static str {
        match self {
            Direction::AllowToDeny => "allow-to-deny",
            Direction::DenyToAllow => "deny-to-allow",
        }
    }
}

/// One decision the candidate changes.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The recorded decision's id.
    pub decision_id: String,
    /// When it was made.
    pub time: String,
    /// Its tenant (the resource's, else the principal's).
    pub tenant: Option<String>,
    /// `Type::"id"` of the principal.
    pub principal: String,
    /// The action.
    pub action: String,
    /// `Type::"id"` of the resource.
    pub resource: String,
    /// How it changes.
    pub direction: Direction,
    /// The reason under the pack in force, and under the candidate.
    pub reasons: (String, String),
    /// The policies behind the change: the permits that allowed it under the pack in force (for
    /// an allow that becomes a deny, with the candidate's forbids if any), or the permits that
    /// allow it under the candidate.
    pub policies: Vec<String>,
}

/// Changes of one direction, policy and tenant.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// How they change.
    pub direction: Direction,
    /// The policy (`-` when none determined the change, e.g. a permit removed with nothing in
    /// its place for a deny that became an allow).
    pub policy: String,
    /// The tenant (`-` for none).
    pub tenant: String,
    /// How many.
    pub count: usize,
    /// Up to the requested number of examples.
    pub examples: Vec<Change>,
}

/// The most changes a report lists one by one (all are counted, and grouped).
pub const MAX_LISTED_CHANGES: usize = 10_000;

/// The result of a replay.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    /// Decision records read.
    pub read: usize,
    /// Replayed.
    pub replayed: usize,
    /// Not replayed, by recorded reason (refused before any policy).
    pub not_replayed: BTreeMap<String, usize>,
    /// Replays under the pack in force that differ from what was recorded (the data changed).
    pub drift: usize,
    /// Up to the requested number of drift examples (decision ids).
    pub drift_examples: Vec<String>,
    /// How many decisions change.
    pub changed: usize,
    /// How many of them no expectation covers.
    pub unexpected: usize,
    /// How many go from allow to deny (the rest go from deny to allow).
    pub allow_to_deny: usize,
    /// The changes, oldest first: the first [`MAX_LISTED_CHANGES`].
    pub changes: Vec<Change>,
    /// The changes grouped by direction, policy and tenant, largest first.
    pub groups: Vec<Group>,
    /// Distinct requests evaluated (repeated ones are decided once per pack).
    pub distinct_requests: usize,
    /// Time taken, in milliseconds.
    pub elapsed_ms: u128,
}

/// What a replay compares.
pub struct Replay<'a> {
    /// The service with the pack in force.
    pub current: (&'a Service, &'a DecisionScope),
    /// The service with the candidate pack, over the same entity state.
    pub candidate: (&'a Service, &'a DecisionScope),
    /// Examples kept per group.
    pub examples: usize,
    /// The changes that are expected; the others are counted as unexpected.
    pub expected: Vec<Expectation>,
}

/// One recorded decision as a request to decide again.
struct Question {
    principal: EntityInput,
    action: String,
    resource: EntityInput,
    context: Option<Value>,
    recorded_allow: bool,
}

/// The entity as recorded; for one the data does not know, its recorded tenant as its only
/// attribute.
fn entity_of(
    entity: &warden_audit::EntityRef,
    scope: &DecisionScope,
    tenancy: Option<(&str, &str)>,
) -> EntityInput {
    let properties = match (tenancy, &entity.tenant) {
        (Some((attribute, tenant_type)), Some(tenant))
            if !scope.snapshot.knows(&entity.entity_type, &entity.id) =>
        {
            let mut properties = Map::new();
            properties.insert(
                attribute.to_owned(),
                json!({"__entity": {"type": tenant_type, "id": tenant}}),
            );
            Some(properties)
        }
        _ => None,
    };
    EntityInput {
        entity_type: entity.entity_type.clone(),
        id: entity.id.clone(),
        properties,
    }
}

fn uid(entity: &warden_audit::EntityRef) -> String {
    format!(
        "{}::{}",
        entity.entity_type,
        Value::String(entity.id.clone())
    )
}

fn determining(outcome: &DecisionOutcome) -> Vec<String> {
    outcome
        .decision()
        .map(|decision| {
            decision
                .determining
                .iter()
                .map(|policy| policy.id.to_string())
                .collect()
        })
        .unwrap_or_default()
}

impl Replay<'_> {
    /// Replays `records` (any kinds; only decisions are read).
    pub async fn run(&self, records: impl IntoIterator<Item = Record>) -> DiffReport {
        let started = Instant::now();
        let caller = Caller {
            entry: "cli.diff",
            label: None,
            origin: None,
            started,
        };
        let pack = &self.current.1.snapshot.pack;
        let tenancy = pack
            .tenancy()
            .map(|tenancy| (tenancy.attribute.clone(), tenancy.tenant_type.to_string()));
        let tenancy = tenancy
            .as_ref()
            .map(|(attribute, tenant_type)| (attribute.as_str(), tenant_type.as_str()));
        let mut report = DiffReport {
            read: 0,
            replayed: 0,
            not_replayed: BTreeMap::new(),
            drift: 0,
            drift_examples: Vec::new(),
            changed: 0,
            unexpected: 0,
            allow_to_deny: 0,
            changes: Vec::new(),
            groups: Vec::new(),
            distinct_requests: 0,
            elapsed_ms: 0,
        };
        // Repeated requests (the same principal, action, resource and context) are decided
        // once per pack.
        let mut decided: HashMap<String, (bool, bool, String, String, Vec<String>)> =
            HashMap::new();
        let mut groups: BTreeMap<(Direction, String, String), Group> = BTreeMap::new();
        for record in records {
            if record.kind != Kind::Decision {
                continue;
            }
            report.read += 1;
            let reason = record.reason.clone().unwrap_or_default();
            let (Some(principal), Some(action), Some(resource), Some(decision)) = (
                &record.principal,
                &record.action,
                &record.resource,
                &record.decision,
            ) else {
                *report.not_replayed.entry(reason).or_default() += 1;
                continue;
            };
            if !REPLAYED_REASONS.contains(&reason.as_str()) {
                *report.not_replayed.entry(reason).or_default() += 1;
                continue;
            }
            report.replayed += 1;
            let question = Question {
                principal: entity_of(principal, self.current.1, tenancy),
                action: action.clone(),
                resource: entity_of(resource, self.current.1, tenancy),
                context: record.context.clone(),
                recorded_allow: decision == "allow",
            };
            let key = format!(
                "{}\u{0}{}\u{0}{}\u{0}{}",
                uid(principal),
                action,
                uid(resource),
                question
                    .context
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_default()
            );
            let answer = match decided.get(&key) {
                Some(answer) => answer.clone(),
                None => {
                    let now = self.ask(self.current, &caller, &question).await;
                    let then = self.ask(self.candidate, &caller, &question).await;
                    let policies = match (now.allowed(), then.allowed()) {
                        (true, false) => {
                            let mut policies = determining(&now);
                            policies.extend(determining(&then));
                            policies.sort();
                            policies.dedup();
                            policies
                        }
                        (false, true) => determining(&then),
                        _ => Vec::new(),
                    };
                    let answer = (
                        now.allowed(),
                        then.allowed(),
                        now.reason().to_owned(),
                        then.reason().to_owned(),
                        policies,
                    );
                    decided.insert(key, answer.clone());
                    answer
                }
            };
            let (now_allowed, then_allowed, now_reason, then_reason, policies) = answer;
            if now_allowed != question.recorded_allow {
                report.drift += 1;
                if report.drift_examples.len() < self.examples {
                    report.drift_examples.push(record.id.clone());
                }
            }
            let direction = match (now_allowed, then_allowed) {
                (true, false) => Direction::AllowToDeny,
                (false, true) => Direction::DenyToAllow,
                _ => continue,
            };
            let change = Change {
                decision_id: record.id.clone(),
                time: record.time.clone(),
                tenant: record.tenant().map(str::to_owned),
                principal: uid(principal),
                action: action.clone(),
                resource: uid(resource),
                direction,
                reasons: (now_reason, then_reason),
                policies,
            };
            report.changed += 1;
            if direction == Direction::AllowToDeny {
                report.allow_to_deny += 1;
            }
            if !self.expected.iter().any(|e| e.covers(&change)) {
                report.unexpected += 1;
            }
            add_to_groups(&mut groups, &change, self.examples);
            if report.changes.len() < MAX_LISTED_CHANGES {
                report.changes.push(change);
            }
        }
        report.distinct_requests = decided.len();
        let mut groups: Vec<Group> = groups.into_values().collect();
        groups.sort_by_key(|group| std::cmp::Reverse(group.count));
        report.groups = groups;
        report.elapsed_ms = started.elapsed().as_millis();
        report
    }

    async fn ask(
        &self,
        (service, scope): (&Service, &DecisionScope),
        caller: &Caller,
        question: &Question,
    ) -> DecisionOutcome {
        service
            .evaluate(
                scope,
                caller,
                question.principal.clone(),
                question.action.clone(),
                question.resource.clone(),
                question.context.clone(),
            )
            .await
    }
}

/// Counts `change` in its groups: by direction, policy (a change with several policies counts
/// in each) and tenant.
fn add_to_groups(
    groups: &mut BTreeMap<(Direction, String, String), Group>,
    change: &Change,
    examples: usize,
) {
    let tenant = change.tenant.clone().unwrap_or_else(|| "-".to_owned());
    let policies: Vec<String> = if change.policies.is_empty() {
        vec!["-".to_owned()]
    } else {
        change.policies.clone()
    };
    for policy in policies {
        let entry = groups
            .entry((change.direction, policy.clone(), tenant.clone()))
            .or_insert_with(|| Group {
                direction: change.direction,
                policy,
                tenant: tenant.clone(),
                count: 0,
                examples: Vec::new(),
            });
        entry.count += 1;
        if entry.examples.len() < examples {
            entry.examples.push(change.clone());
        }
    }
}

/// One `--expect` entry: `allow-to-deny` or `deny-to-allow`, optionally `:POLICY` and
/// `@TENANT` (`allow-to-deny:policy3@acme`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The direction.
    pub direction: Direction,
    /// Only changes this policy is behind.
    pub policy: Option<String>,
    /// Only changes in this tenant.
    pub tenant: Option<String>,
}

impl std::str::FromStr for Expectation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (rest, tenant) = match text.rsplit_once('@') {
            Some((rest, tenant)) if !tenant.is_empty() => (rest, Some(tenant.to_owned())),
            Some(_) => return Err(format!("`{text}`: an empty tenant after @")),
            None => (text, None),
        };
        let (direction, policy) = match rest.split_once(':') {
            Some((direction, policy)) if !policy.is_empty() => (direction, Some(policy.to_owned())),
            Some(_) => return Err(format!("`{text}`: an empty policy after :")),
            None => (rest, None),
        };
        let direction = match direction {
            "allow-to-deny" => Direction::AllowToDeny,
            "deny-to-allow" => Direction::DenyToAllow,
            other => {
                return Err(format!(
                    "`{other}` is not allow-to-deny or deny-to-allow (the form is DIRECTION[:POLICY][@TENANT])"
                ));
            }
        };
        Ok(Expectation {
            direction,
            policy,
            tenant,
        })
    }
}

impl Expectation {
    /// Does `change` fall under this expectation?
    pub fn covers(&self, change: &Change) -> bool {
        self.direction == change.direction
            && self
                .policy
                .as_ref()
                .is_none_or(|policy| change.policies.contains(policy))
            && self
                .tenant
                .as_ref()
                .is_none_or(|tenant| change.tenant.as_ref() == Some(tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_parse_and_cover_by_direction_policy_and_tenant() {
        let change = Change {
            decision_id: "d".into(),
            time: "t".into(),
            tenant: Some("acme".into()),
            principal: "User::\"acme/carol\"".into(),
            action: "read".into(),
            resource: "Document::\"acme/roadmap\"".into(),
            direction: Direction::AllowToDeny,
            reasons: ("permitted".into(), "no_permit".into()),
            policies: vec!["viewers-read".into()],
        };
        for (text, covers) in [
            ("allow-to-deny", true),
            ("allow-to-deny:viewers-read", true),
            ("allow-to-deny:viewers-read@acme", true),
            ("allow-to-deny@acme", true),
            ("allow-to-deny@globex", false),
            ("allow-to-deny:other", false),
            ("deny-to-allow", false),
        ] {
            let expectation: Expectation = text.parse().unwrap();
            assert_eq!(expectation.covers(&change), covers, "{text}");
        }
        for bad in ["allow", "allow-to-deny:", "allow-to-deny@", "sideways:p"] {
            assert!(bad.parse::<Expectation>().is_err(), "{bad}");
        }
    }

    #[test]
    fn since_takes_spans_and_times_and_refuses_the_rest() {
        let now = 1_000_000;
        assert_eq!(
            since_ms("7d", now).unwrap(),
            i128::from(now - 7 * 86_400) * 1000
        );
        assert_eq!(since_ms("90s", now).unwrap(), i128::from(now - 90) * 1000);
        assert!(since_ms("2026-12-06T00:00:00Z", now).is_ok());
        assert!(since_ms("99999999999999999d", now).is_ok(), "saturates");
        for bad in ["", "d", "7", "7w", "-1d", "7日", "a week"] {
            assert!(since_ms(bad, now).is_err(), "{bad}");
        }
    }
}
