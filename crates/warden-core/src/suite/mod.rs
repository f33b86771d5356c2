//! Policy regression suites: hand-written cases with their expected decisions, the adversarial
//! cases generated from every expected allow, and coverage.
//!
//! This module runs suites; it does not read them. The `warden test` verb parses the YAML files
//! and the entity files they name, and hands over a [`Suite`] per file; the line of each case
//! comes along so that problems found while running (a request the schema refuses, entity data
//! that does not parse) point at the file and line that caused them.
//!
//! A run is: for each case, decide it through a [`CaseDecider`], compare with the expectation
//! (decision, and optionally the determining policies and the reason code), explain every
//! failure. `warden test` passes the service's decider, so a suite decides exactly as
//! `warden serve` does (principal statuses, caller properties, token claims, refusals);
//! [`PackDecider`] decides with the pack alone, for cases that need nothing more. For each
//! case expected to allow that did allow, [`adversarial`] derives variants of the request and
//! entity data that must all be denied (another tenant's resource with the same local id, each
//! role removed, the principal disabled, the principal deleted, each scope removed), unless the
//! case opts out with a reason. [`coverage`] then lists the policies no hand-written case made
//! determining and the schema actions no hand-written case exercises.
//!
//! Tests: `tests/integration/suites.rs`; the CLI in `crates/warden/tests/cli/test_verb.rs`.

pub mod adversarial;
pub mod coverage;

use std::collections::{BTreeSet, HashSet};

use cedar_policy::{Entities, EntityUid, PolicyId, Request};
use serde_json::{Map, Value};

use crate::decision::{Decision, Outcome};
use crate::explain::{Explanation, explain};
use crate::pack::Pack;

pub use adversarial::Attack;
pub use coverage::Coverage;

/// One suite: entity data and cases, as read from one file.
#[derive(Clone, Debug)]
pub struct Suite {
    /// Where the suite came from (a file path), for messages.
    pub name: String,
    /// Cedar entity JSON objects (`{"uid", "attrs", "parents"}`), inline and from files.
    pub entities: Vec<Value>,
    /// The 1-based line of the suite's `entities` key (0 when the suite has none).
    pub entities_line: usize,
    /// The cases, in file order.
    pub cases: Vec<Case>,
    /// Principal statuses as the store keeps them (`disabled`, `deleted`), applied by the
    /// decider before any policy, as the service applies the store's.
    pub statuses: Vec<(EntityUid, String)>,
}

/// One hand-written case.
#[derive(Clone, Debug)]
pub struct Case {
    /// The case's name; unique within its suite.
    pub name: String,
    /// The 1-based line where the case starts.
    pub line: usize,
    /// The principal.
    pub principal: EntityUid,
    /// The action.
    pub action: EntityUid,
    /// The resource.
    pub resource: EntityUid,
    /// The context (a JSON object); `None` is the empty context.
    pub context: Option<Value>,
    /// Attributes of the principal for when the entity data does not know it (as a caller's
    /// `properties`; known data wins).
    pub principal_properties: Option<Map<String, Value>>,
    /// Attributes of the resource for when the entity data does not know it.
    pub resource_properties: Option<Map<String, Value>>,
    /// The principal as a verified token's claims (mapped by the issuer its `iss` names)
    /// instead of `principal`'s uid alone.
    pub token_claims: Option<Map<String, Value>>,
    /// What the decision must be.
    pub expect: Expectation,
    /// Generated cases this case opts out of, with the reason (required when the set is not
    /// empty).
    pub skip: BTreeSet<Attack>,
    /// Why the case opts out of `skip`.
    pub skip_reason: Option<String>,
}

/// The expected decision of a case.
#[derive(Clone, Debug)]
pub struct Expectation {
    /// Allow or deny.
    pub outcome: Outcome,
    /// The exact set of determining policy ids, when given.
    pub policies: Option<BTreeSet<String>>,
    /// The reason code, when given (a decision's, e.g. `no_permit`, or a refusal's, e.g.
    /// `principal_disabled`).
    pub reason: Option<String>,
}

/// A case (or a generated variant of it) as decided by a [`CaseDecider`].
#[derive(Clone, Debug)]
pub struct Decided {
    /// Allow or deny.
    pub outcome: Outcome,
    /// The reason code.
    pub reason: String,
    /// What the policies decided, when they were consulted (`None` for a refusal before them,
    /// such as a disabled principal).
    pub decision: Option<Decision>,
    /// The decision in plain words.
    pub explanation: Explanation,
}

impl Decided {
    /// Whether it allowed.
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }
}

/// Why a case cannot be decided at all (the suite is broken, exit 2), as opposed to a deny.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// The entity data does not parse or fit the schema.
    #[error("{0}")]
    EntityData(String),
    /// The request does not fit the schema (an unknown action, a type it does not take).
    #[error("{0}")]
    Request(String),
    /// The case asks for something this decider cannot give (e.g. token claims without the
    /// service, or an issuer the configuration lacks).
    #[error("{0}")]
    Unsupported(String),
}

/// Decides one case against entity data: the pack alone ([`PackDecider`]) or the whole
/// service, as `warden test` does.
pub trait CaseDecider {
    /// Decides `case` (with `resource` in place of the case's own, for generated variants)
    /// against `entities`, with the suite's `statuses`. `Err` says why it cannot be decided at
    /// all (a request the schema refuses, entity data that does not parse).
    fn decide(
        &self,
        entities: &[Value],
        statuses: &[(EntityUid, String)],
        case: &Case,
        resource: &EntityUid,
    ) -> Result<Decided, CaseError>;
}

/// Decides with the pack alone: Cedar and the tenant guard over the entity data. Cases that
/// need the service (properties, token claims, statuses) are refused.
pub struct PackDecider<'a>(pub &'a Pack);

impl CaseDecider for PackDecider<'_> {
    fn decide(
        &self,
        entities: &[Value],
        statuses: &[(EntityUid, String)],
        case: &Case,
        resource: &EntityUid,
    ) -> Result<Decided, CaseError> {
        if case.principal_properties.is_some()
            || case.resource_properties.is_some()
            || case.token_claims.is_some()
            || !statuses.is_empty()
        {
            return Err(CaseError::Unsupported(
                "properties, token claims and statuses need the service's decider (`warden test`)"
                    .to_owned(),
            ));
        }
        let pack = self.0;
        let entities = parse_entities(pack, entities)?;
        let request = build_request(pack, case, resource.clone())?;
        let decision = pack.decide(&request, &entities);
        Ok(decided(pack, &request, &entities, decision))
    }
}

/// A decision of the policies as a [`Decided`], explained.
pub fn decided(pack: &Pack, request: &Request, entities: &Entities, decision: Decision) -> Decided {
    Decided {
        outcome: decision.outcome,
        reason: decision.reason.as_str().to_owned(),
        explanation: explain(pack, request, entities, &decision),
        decision: Some(decision),
    }
}

/// A suite that cannot be run as written: entity data or a request the pack refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{suite}:{line}: {message}")]
pub struct SuiteError {
    /// The suite's name (its file).
    pub suite: String,
    /// The 1-based line of the offending case or entities key.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The results of running suites against one pack.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// One result per suite, in the order given.
    pub suites: Vec<SuiteReport>,
    /// Policies and actions exercised by the hand-written cases.
    pub coverage: Coverage,
}

impl RunReport {
    /// Every hand-written case and every generated case passed (skipped and not generated
    /// cases do not fail a run).
    pub fn all_passed(&self) -> bool {
        self.suites.iter().all(|suite| {
            suite.cases.iter().all(|case| {
                case.failure.is_none()
                    && case
                        .generated
                        .iter()
                        .all(|generated| !generated.status.is_failure())
            })
        })
    }
}

/// The results of one suite.
#[derive(Clone, Debug)]
pub struct SuiteReport {
    /// The suite's name (its file).
    pub name: String,
    /// One result per case, in file order.
    pub cases: Vec<CaseReport>,
}

/// The result of one hand-written case and the cases generated from it.
#[derive(Clone, Debug)]
pub struct CaseReport {
    /// The case's name.
    pub name: String,
    /// The line where the case starts.
    pub line: usize,
    /// The decision.
    pub decision: Decided,
    /// `None` when the decision met the expectation.
    pub failure: Option<Failure>,
    /// The generated adversarial cases (empty unless the case expected and got an allow).
    pub generated: Vec<GeneratedReport>,
}

/// Why a case failed, with the decision explained.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Each unmet expectation, one sentence each.
    pub problems: Vec<String>,
    /// The decision in plain words.
    pub explanation: Explanation,
}

/// One generated adversarial case.
#[derive(Clone, Debug)]
pub struct GeneratedReport {
    /// Which invariant it checks.
    pub attack: Attack,
    /// What was changed, e.g. `without Role::"editor"`.
    pub variant: String,
    /// What happened.
    pub status: GeneratedStatus,
}

/// The outcome of one generated case.
#[derive(Clone, Debug)]
pub enum GeneratedStatus {
    /// Denied, as required.
    Passed,
    /// Not denied (or denied only by the tenant guard, for another tenant's resource).
    Failed(Failure),
    /// The case opted out, with this reason.
    Skipped {
        /// The case's reason.
        reason: String,
    },
    /// Nothing to generate, e.g. a principal without roles or a pack without `[lifecycle]`.
    NotGenerated {
        /// Why.
        why: String,
    },
}

impl GeneratedStatus {
    /// True for a failed generated case.
    pub fn is_failure(&self) -> bool {
        matches!(self, GeneratedStatus::Failed(_))
    }
}

/// Runs every suite against `pack`, deciding every case through `decider`. An `Err` means a
/// suite is invalid (exit 2 in the CLI); a failed case is a value in the report.
pub fn run(
    pack: &Pack,
    suites: &[Suite],
    decider: &dyn CaseDecider,
) -> Result<RunReport, SuiteError> {
    let mut determining_seen: HashSet<PolicyId> = HashSet::new();
    let mut actions_seen: HashSet<EntityUid> = HashSet::new();
    let mut reports = Vec::with_capacity(suites.len());
    for suite in suites {
        let invalid = |line: usize, message: String| SuiteError {
            suite: suite.name.clone(),
            line,
            message,
        };
        // The suite's data must parse on its own, whatever the cases ask.
        parse_entities(pack, &suite.entities)
            .map_err(|message| invalid(suite.entities_line, format!("entities: {message}")))?;
        let mut cases = Vec::with_capacity(suite.cases.len());
        for case in &suite.cases {
            let decided = decider
                .decide(&suite.entities, &suite.statuses, case, &case.resource)
                .map_err(|message| {
                    invalid(case.line, format!("case `{}`: {message}", case.name))
                })?;
            if let Some(decision) = &decided.decision {
                determining_seen.extend(decision.determining.iter().map(|p| p.id.clone()));
            }
            actions_seen.insert(case.action.clone());
            let problems = unmet_expectations(&case.expect, &decided);
            let failure = (!problems.is_empty()).then(|| Failure {
                problems,
                explanation: decided.explanation.clone(),
            });
            let generated = if case.expect.outcome == Outcome::Allow && decided.is_allowed() {
                run_generated(pack, suite, case, decider).map_err(|message| {
                    invalid(case.line, format!("case `{}`: {message}", case.name))
                })?
            } else {
                Vec::new()
            };
            cases.push(CaseReport {
                name: case.name.clone(),
                line: case.line,
                decision: decided,
                failure,
                generated,
            });
        }
        reports.push(SuiteReport {
            name: suite.name.clone(),
            cases,
        });
    }
    Ok(RunReport {
        suites: reports,
        coverage: coverage::measure(pack, &determining_seen, &actions_seen),
    })
}

/// The Cedar request of a case, with `resource` in place of its own.
pub fn build_request(pack: &Pack, case: &Case, resource: EntityUid) -> Result<Request, CaseError> {
    pack.request(
        case.principal.clone(),
        case.action.clone(),
        resource,
        case.context.clone(),
    )
    .map_err(|error| CaseError::Request(error.to_string()))
}

/// Each way the decision differs from the expectation, in words.
fn unmet_expectations(expect: &Expectation, decided: &Decided) -> Vec<String> {
    let mut problems = Vec::new();
    if expect.outcome != decided.outcome {
        problems.push(format!(
            "expected {}, got {} ({})",
            expect.outcome.as_str(),
            decided.outcome.as_str(),
            decided.reason
        ));
    }
    if let Some(reason) = &expect.reason
        && *reason != decided.reason
    {
        problems.push(format!("expected reason {reason}, got {}", decided.reason));
    }
    if let Some(policies) = &expect.policies {
        let actual: BTreeSet<String> = decided
            .decision
            .iter()
            .flat_map(|decision| decision.determining.iter())
            .map(|policy| policy.id.to_string())
            .collect();
        if &actual != policies {
            problems.push(format!(
                "expected determining policies [{}], got [{}]",
                join(policies),
                join(&actual)
            ));
        }
    }
    problems
}

fn join(ids: &BTreeSet<String>) -> String {
    ids.iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Generates, runs and judges the adversarial cases of one allowed case.
fn run_generated(
    pack: &Pack,
    suite: &Suite,
    case: &Case,
    decider: &dyn CaseDecider,
) -> Result<Vec<GeneratedReport>, CaseError> {
    let mut reports = Vec::new();
    for attack in Attack::ALL {
        if case.skip.contains(&attack) {
            reports.push(GeneratedReport {
                attack,
                variant: String::new(),
                status: GeneratedStatus::Skipped {
                    reason: case.skip_reason.clone().unwrap_or_default(),
                },
            });
            continue;
        }
        let variants = match adversarial::variants(pack, &suite.entities, case, attack) {
            Ok(variants) => variants,
            Err(why) => {
                reports.push(GeneratedReport {
                    attack,
                    variant: String::new(),
                    status: GeneratedStatus::NotGenerated { why },
                });
                continue;
            }
        };
        for variant in variants {
            let status = match parse_entities(pack, &variant.entities) {
                // The variant's own data is refused by the schema, e.g. a status attribute the
                // principal's type does not declare: the invariant cannot hold, so it fails.
                Err(message) => GeneratedStatus::Failed(Failure {
                    problems: vec![format!("the generated entity data is invalid: {message}")],
                    explanation: Explanation {
                        summary: "not evaluated".to_owned(),
                        details: Vec::new(),
                        near_misses: Vec::new(),
                    },
                }),
                Ok(_) => {
                    let decided = decider.decide(
                        &variant.entities,
                        &suite.statuses,
                        case,
                        &variant.resource,
                    )?;
                    match adversarial::judge(attack, &decided) {
                        None => GeneratedStatus::Passed,
                        Some(problem) => GeneratedStatus::Failed(Failure {
                            problems: vec![problem],
                            explanation: decided.explanation,
                        }),
                    }
                }
            };
            reports.push(GeneratedReport {
                attack,
                variant: variant.label,
                status,
            });
        }
    }
    Ok(reports)
}

/// Parses entity JSON objects against the pack's schema (which adds its action entities).
pub fn parse_entities(pack: &Pack, entities: &[Value]) -> Result<Entities, CaseError> {
    Entities::from_json_value(Value::Array(entities.to_vec()), pack.schema())
        .map_err(|error| CaseError::EntityData(error.to_string().replace('\n', " ")))
}
