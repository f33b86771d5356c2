//! Policy suites (`warden test`) decided by the service's engine, so a suite decides exactly
//! as `warden serve` does: the suite's principal statuses deny before any policy, caller
//! properties count only for entities the data does not know (and may not name another
//! tenant), token claims are mapped by the issuer's claim mapping and `[principals]
//! claim_attributes` override known data, and every refusal has the server's reason code.
//!
//! Tests: `crates/warden/tests/cli/same_decisions.rs` (one set of requests through
//! `warden check`, `warden test` and the server) and `crates/warden/tests/cli/test_verb.rs`.

use std::str::FromStr as _;
use std::sync::{Arc, RwLock};

use serde_json::Value;
use warden_core::Pack;
use warden_core::cedar_policy::EntityUid;
use warden_core::decision::Outcome;
use warden_core::suite::{Case, CaseDecider, CaseError, Decided};
use warden_core::tenant_policies::TenantPolicies;
use warden_core::{Explanation, explain};
use warden_store::PrincipalStatus;
use warden_token::{Principal, Verifier};

use crate::engine::{
    self, DecisionInput, DecisionOutcome, DecisionScope, EntityInput, PrincipalInput,
};
use crate::entity_graph::EntityGraph;
use crate::snapshot::Snapshot;
use warden_store::StatusRecord;

/// Decides suite cases with the engine.
pub struct ServiceDecider<'a> {
    /// The pack under test.
    pub pack: Arc<Pack>,
    /// `[principals] claim_attributes` of the configuration, if one was given.
    pub claim_attributes: Arc<Vec<String>>,
    /// The configured issuers, whose claim mappings turn a case's `token_claims` into a
    /// principal; `None` without a configuration.
    pub verifier: Option<&'a Verifier>,
    /// Tenant-managed policies in force with the pack (`warden test --store`), as a server on
    /// that store has them.
    pub tenant_policies: Option<Arc<RwLock<TenantPolicies>>>,
}

impl ServiceDecider<'_> {
    fn principal_of(
        &self,
        claims: &serde_json::Map<String, Value>,
    ) -> Result<Principal, CaseError> {
        let issuer = claims.get("iss").and_then(Value::as_str).ok_or_else(|| {
            CaseError::Unsupported(
                "`token_claims` needs an `iss` naming a configured issuer".to_owned(),
            )
        })?;
        let configured = self
            .verifier
            .and_then(|verifier| verifier.issuer(issuer))
            .ok_or_else(|| {
                CaseError::Unsupported(format!("`token_claims` names issuer `{issuer}`, which no `[[issuers]]` of the configuration (--config) has"))
            })?;
        warden_token::principal::map_claims(claims, &configured.config.claims)
            .map_err(|error| CaseError::Request(format!("`token_claims`: {error}")))
    }
}

/// `Type::"id"` as the engine takes it: the type name and the id.
fn input_of(uid: &EntityUid, properties: Option<&serde_json::Map<String, Value>>) -> EntityInput {
    EntityInput {
        entity_type: uid.type_name().to_string(),
        id: uid.id().unescaped().to_owned(),
        properties: properties.cloned(),
    }
}

/// The action's name, when its type is `Action` (the only action type the pipeline takes).
pub fn action_name(action: &EntityUid) -> Result<String, CaseError> {
    if action.type_name().to_string() == "Action" {
        Ok(action.id().unescaped().to_owned())
    } else {
        Err(CaseError::Request(format!(
            "the action {action} is not of type `Action`; the decision pipeline takes `Action::\"…\"` actions"
        )))
    }
}

/// The principal of an input as Cedar writes a uid, for explanations.
pub fn principal_text(input: &DecisionInput<'_>) -> String {
    match &input.principal {
        PrincipalInput::Token(principal) => principal.uid_string(),
        PrincipalInput::Named(subject) => {
            format!(
                "{}::{}",
                subject.entity_type,
                Value::String(subject.id.clone())
            )
        }
    }
}

/// An outcome of the engine as a suite's [`Decided`], explained as `warden check` explains;
/// `principal` names who asked (see [`principal_text`]).
pub fn decided(scope: &DecisionScope, principal: &str, outcome: &DecisionOutcome) -> Decided {
    match (&outcome.refusal, &outcome.evaluated) {
        (None, Some(entry)) => Decided {
            outcome: entry.decision.outcome,
            reason: entry.decision.reason.as_str().to_owned(),
            explanation: explain(
                &scope.snapshot.pack,
                &entry.request,
                &entry.entities,
                &entry.decision,
            ),
            decision: Some(entry.decision.clone()),
        },
        _ => Decided {
            outcome: Outcome::Deny,
            reason: outcome.reason().to_owned(),
            explanation: refusal_explanation(principal, outcome),
            decision: None,
        },
    }
}

/// A refusal in plain words: who was refused, why, and the detail.
pub fn refusal_explanation(principal: &str, outcome: &DecisionOutcome) -> Explanation {
    Explanation {
        summary: format!(
            "DENY: {principal} was refused before the policies were consulted ({}).",
            outcome.reason()
        ),
        details: outcome
            .refusal
            .iter()
            .map(|refusal| refusal.detail.clone())
            .collect(),
        near_misses: Vec::new(),
    }
}

impl CaseDecider for ServiceDecider<'_> {
    fn decide(
        &self,
        entities: &[Value],
        statuses: &[(EntityUid, String)],
        case: &Case,
        resource: &EntityUid,
    ) -> Result<Decided, CaseError> {
        // The whole set is parsed as before, so a suite's data is checked as one (duplicates,
        // the schema) and reports as it did; decisions run on the graph, as the server's do.
        warden_core::suite::parse_entities(&self.pack, entities)?;
        let mut graph = EntityGraph::of_values(&self.pack, entities.to_vec())
            .map_err(|error| CaseError::Unsupported(error.to_string()))?;
        for (uid, status) in statuses {
            let status = PrincipalStatus::from_str(status)
                .map_err(|error| CaseError::Unsupported(error.to_string()))?;
            graph
                .set_status(
                    &self.pack,
                    &StatusRecord {
                        tenant: String::new(),
                        principal_type: uid.type_name().to_string(),
                        principal_id: uid.id().unescaped().to_owned(),
                        status,
                    },
                )
                .map_err(|error| CaseError::Unsupported(error.to_string()))?;
        }
        let mut snapshot = Snapshot::of(Arc::clone(&self.pack), graph);
        if let Some(policies) = &self.tenant_policies {
            snapshot = snapshot.with_tenant_policies(Arc::clone(policies));
        }
        let scope = DecisionScope {
            snapshot: Arc::new(snapshot),
            stale: None,
            claim_attributes: Arc::clone(&self.claim_attributes),
            audit_down: None,
        };
        let token_principal = match &case.token_claims {
            Some(claims) => Some(self.principal_of(claims)?),
            None => None,
        };
        let principal = match &token_principal {
            Some(principal) => PrincipalInput::Token(principal),
            None => PrincipalInput::Named(input_of(
                &case.principal,
                case.principal_properties.as_ref(),
            )),
        };
        let input = DecisionInput {
            principal,
            action: action_name(&case.action)?,
            resource: input_of(resource, case.resource_properties.as_ref()),
            context: case.context.clone(),
        };
        let outcome = engine::decide(&scope, &input);
        // A request the pack cannot take is a broken suite, not a deny, as before: only
        // refusals the service gives for well-formed requests are decisions here.
        if let Some(refusal) = &outcome.refusal
            && refusal.reason == engine::RefusalReason::InvalidRequest
            && case.principal_properties.is_none()
            && case.resource_properties.is_none()
            && case.token_claims.is_none()
        {
            return Err(CaseError::Request(refusal.detail.clone()));
        }
        Ok(decided(&scope, &principal_text(&input), &outcome))
    }
}
