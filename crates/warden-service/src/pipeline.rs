//! The one decision pipeline: authenticate → principal → decide → record, as values.
//!
//! [`Service`] holds everything a decision needs (the snapshot, the verifier, revocations,
//! Warden's issuer state, the store and its freshness, the decision log). Every entry point
//! runs these methods and nothing else decides: `warden serve` (its handlers only parse and
//! render), `warden check`, `warden test` and the benches, so they decide alike by
//! construction. SECURITY-SENSITIVE: the order of the steps is the security argument
//! (no claim is read before the token is verified; revocations and account state are checked
//! after verification, cached tokens included; inactive principals and the tenant guard stand
//! outside every policy).
//!
//! Tests: unit tests below; through every entry point in `crates/warden/tests/cli/same_decisions.rs`
//! and the server's `tests/server/`.

use std::sync::Arc;

use serde_json::{Map, Value};
use warden_issuer::delegation::{Actor, Delegation};
use warden_store::Store;
use warden_token::{Principal, TokenError, TokenReason, VerifiedToken, Verifier};

use crate::clock::unix_now;
use crate::decision_log::{self, Caller, DecisionLog};
use crate::engine::{
    self, DecisionInput, DecisionOutcome, DecisionScope, EntityInput, PrincipalInput, Refusal,
    RefusalReason,
};
use crate::entitlement_usage::EntitlementUsage;
use crate::issuer::{AccountRefusal, TokenIssuer};
use crate::revocation::{RevocationSet, TokenIds};
use crate::snapshot::{PolicyHolder, StoreFreshness};
use crate::store_sync::IssuerSync;

/// Everything that decides, shared by every entry point.
pub struct Service {
    /// The snapshot decisions are made against.
    pub policy: Arc<PolicyHolder>,
    /// The token verifier (the configured issuers, and Warden's own keys).
    pub verifier: Arc<Verifier>,
    /// The store, when configured.
    pub store: Option<Store>,
    /// How fresh the store view is, when there is a store.
    pub store_freshness: Option<Arc<StoreFreshness>>,
    /// Attributes a token states authoritatively even for a known principal.
    pub claim_attributes: Arc<Vec<String>>,
    /// Revoked tokens, sessions, subjects, clients and keys.
    pub revocations: Arc<RevocationSet>,
    /// The decision log, unless it is off (or the entry point records nothing, as the CLI).
    pub decision_log: Option<DecisionLog>,
    /// Warden as an issuer, when `[tokens]` is configured.
    pub token_issuer: Option<Arc<TokenIssuer>>,
    /// Usage evidence for entitlement reviews, noted on allows (with a store; `None` for a
    /// replay, which must not count as use).
    pub entitlement_usage: Option<Arc<EntitlementUsage>>,
}

/// The service cannot decide yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// No pack has loaded.
    #[error("no policy pack is loaded")]
    NoPack,
}

/// A verified bearer token and the principal it stands for now.
#[derive(Debug, Clone)]
pub struct Bearer {
    /// The token.
    pub token: Arc<VerifiedToken>,
    /// For one of Warden's own tokens, the principal with only the scopes the service account
    /// still holds, when that is fewer than the token names; for a delegated token, the
    /// principal it speaks for.
    narrowed: Option<Principal>,
    /// For a delegated token (RFC 8693), its chain: who acts for the principal.
    pub delegation: Option<Arc<Delegation>>,
}

impl Bearer {
    /// The principal decisions are made for.
    pub fn principal(&self) -> &Principal {
        self.narrowed.as_ref().unwrap_or(&self.token.principal)
    }

    /// Who acts for the principal, the current actor first (empty for a token of its own).
    pub fn actors(&self) -> &[Actor] {
        self.delegation
            .as_deref()
            .map_or(&[], |delegation| delegation.actors.as_slice())
    }

    /// What a decision-log record keeps of the token.
    pub fn presented(&self) -> Presented {
        Presented {
            token: Some(warden_audit::TokenRef {
                issuer: Some(self.token.issuer.clone()),
                jti: self.token.jti.as_ref().map(ToString::to_string),
                subject: Some(self.principal().subject.clone()),
            }),
            actors: actor_refs(self.actors()),
        }
    }

    /// The request's context with Warden's delegation attributes set from the token, each
    /// when the action's context declares it: `actor` (the current actor,
    /// `actor?: ServiceAccount`) and `delegated_scopes` (the token's narrowed scopes,
    /// `delegated_scopes?: Set<String>`). Both are Warden's to set: a caller that sends either
    /// is refused, with or without a delegated token.
    pub fn context_for(
        &self,
        pack: &warden_core::Pack,
        action: &str,
        context: Option<Value>,
    ) -> Result<Option<Value>, Refusal> {
        if let Some(reserved) = context
            .as_ref()
            .and_then(Value::as_object)
            .and_then(|object| {
                [ACTOR_CONTEXT, SCOPES_CONTEXT]
                    .into_iter()
                    .find(|name| object.contains_key(*name))
            })
        {
            return Err(Refusal {
                reason: RefusalReason::InvalidRequest,
                detail: format!(
                    "context.{reserved} is set by Warden from a delegated token, never by the caller"
                ),
            });
        }
        let Some(actor) = self.actors().first() else {
            return Ok(context);
        };
        let with_actor = pack.context_declares(action, ACTOR_CONTEXT);
        let with_scopes = pack.context_declares(action, SCOPES_CONTEXT);
        if !with_actor && !with_scopes {
            return Ok(context);
        }
        let mut object = match context {
            Some(Value::Object(object)) => object,
            // Not an object: the engine refuses it as it is.
            Some(other) => return Ok(Some(other)),
            None => Map::new(),
        };
        if with_actor {
            object.insert(
                ACTOR_CONTEXT.to_owned(),
                serde_json::json!({"__entity": {"type": SERVICE_ACCOUNT_TYPE, "id": actor.entity_id()}}),
            );
        }
        if with_scopes {
            object.insert(
                SCOPES_CONTEXT.to_owned(),
                Value::from(self.principal().scopes.clone()),
            );
        }
        Ok(Some(Value::Object(object)))
    }
}

/// The entity type of Warden's service accounts (`ServiceAccount::"<tenant>/<client_id>"`).
pub const SERVICE_ACCOUNT_TYPE: &str = "ServiceAccount";
/// The context attribute naming a delegated token's current actor.
pub const ACTOR_CONTEXT: &str = "actor";
/// The context attribute holding a delegated token's narrowed scopes.
pub const SCOPES_CONTEXT: &str = "delegated_scopes";

/// Actors as a decision-log record names them.
fn actor_refs(actors: &[Actor]) -> Vec<warden_audit::EntityRef> {
    actors
        .iter()
        .map(|actor| warden_audit::EntityRef {
            entity_type: SERVICE_ACCOUNT_TYPE.to_owned(),
            id: actor.entity_id(),
            tenant: Some(actor.tenant.clone()),
        })
        .collect()
}

/// A bearer token as a decision-log record keeps it (or, on AuthZEN, the chain a PEP forwarded).
#[derive(Debug, Clone, Default)]
pub struct Presented {
    /// Its identifiers, when Warden verified the token itself.
    pub token: Option<warden_audit::TokenRef>,
    /// Who acted for the principal (delegated tokens).
    pub actors: Vec<warden_audit::EntityRef>,
}

/// Why `/v1/authenticate` vouches for no identity.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdentifyError {
    /// The token is refused (or its principal is inactive): a 401 with the reason.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The store has not been read within the bound: revocations cannot be checked.
    #[error("revocations cannot be checked: {0}")]
    Stale(String),
}

/// Who asks for a data-filter plan.
#[derive(Debug)]
pub enum FilterAsker<'a> {
    /// The end user, by a verified bearer token.
    Bearer(&'a Bearer),
    /// A subject an enforcement point names.
    Subject(EntityInput),
}

/// One `/v1/check` request: what the holder of a verified token asks to do.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    /// The action name.
    pub action: String,
    /// The resource (with properties for one the entity data does not know).
    pub resource: EntityInput,
    /// The context object.
    pub context: Option<Value>,
}

/// What a refused token was trying to do, for its record.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The action name.
    pub action: String,
    /// The resource named.
    pub resource: warden_audit::EntityRef,
}

impl Service {
    /// The snapshot to decide against now, with its freshness and the decision log's state;
    /// `NotReady` before the first load (the caller answers 503: fail closed).
    pub fn scope(&self) -> Result<DecisionScope, NotReady> {
        let snapshot = self.policy.current().ok_or(NotReady::NoPack)?;
        let stale = self
            .store_freshness
            .as_ref()
            .and_then(|freshness| freshness.stale_reason());
        Ok(DecisionScope {
            snapshot,
            stale,
            claim_attributes: Arc::clone(&self.claim_attributes),
            audit_down: decision_log::refuses_writes(self.decision_log.as_ref())
                .map(|unavailable| unavailable.0),
        })
    }

    /// Warden's issuer with the verifier its keys go into, when `[tokens]` is configured.
    pub fn issuer_sync(&self) -> Option<IssuerSync> {
        self.token_issuer.as_ref().map(|issuer| IssuerSync {
            issuer: Arc::clone(issuer),
            verifier: Arc::clone(&self.verifier),
        })
    }

    /// Step 1 and 2: the bearer token, verified completely and checked against the revocations
    /// (after the signature, cached tokens included) and, for Warden's own tokens, against the
    /// service account's current state (disabled, deleted or expired: refused; scopes:
    /// narrowed). Nothing of the token is read before it is verified.
    pub async fn authenticate(&self, token: &str) -> Result<Bearer, TokenError> {
        let now = unix_now();
        let verified = match self.verifier.verify(token, now).await {
            // A key another replica made since this one last read the store: read it now (at
            // most once a second) and verify again.
            Err(error) if error.reason == TokenReason::KeyUnknown && self.catch_up(now).await => {
                self.verifier.verify(token, now).await?
            }
            other => other?,
        };
        if let Some(revoked) = self.revocations.check(&verified, now) {
            return Err(TokenError::with(
                TokenReason::Revoked,
                format!("the token is revoked (by {})", revoked.kind.as_str()),
            ));
        }
        let issuer = match &self.token_issuer {
            Some(issuer) if issuer.issued(&verified.issuer) => issuer,
            _ => {
                return Ok(Bearer {
                    token: verified,
                    narrowed: None,
                    delegation: None,
                });
            }
        };
        let delegation = Delegation::from_claims(&verified.claims)
            .map_err(|error| TokenError::with(TokenReason::ClaimInvalid, error.to_string()))?;
        if let Some(delegation) = delegation {
            let principal = self
                .delegated_principal(issuer, &verified, &delegation, now)
                .await?;
            return Ok(Bearer {
                token: verified,
                narrowed: Some(principal),
                delegation: Some(Arc::new(delegation)),
            });
        }
        let client_id = verified
            .claims
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let checked = match issuer.check_account(client_id, &verified.principal, now) {
            // An account another replica created since this one last read the store.
            Err(AccountRefusal::Unknown) if self.catch_up(now).await => {
                issuer.check_account(client_id, &verified.principal, now)
            }
            other => other,
        };
        let narrowed =
            checked.map_err(|refusal| TokenError::with(TokenReason::Revoked, refusal.why()))?;
        Ok(Bearer {
            token: verified,
            narrowed,
            delegation: None,
        })
    }

    /// [`Self::authenticate`] for vouching for an identity without a decision
    /// (`/v1/authenticate`): a replica that cannot see the store cannot see new revocations
    /// either, and a principal the store disabled or deleted has no identity to vouch for.
    pub async fn identify(&self, token: &str) -> Result<Bearer, IdentifyError> {
        if let Some(why) = self
            .store_freshness
            .as_ref()
            .and_then(|freshness| freshness.stale_reason())
        {
            return Err(IdentifyError::Stale(why));
        }
        let bearer = self.authenticate(token).await?;
        if let Some(why) = self.inactive_principal(bearer.principal()) {
            return Err(TokenError::with(TokenReason::Revoked, why).into());
        }
        Ok(bearer)
    }

    /// Reads Warden's keys and accounts out of turn; `false` without `[tokens]` or a store.
    pub(crate) async fn catch_up(&self, now: i64) -> bool {
        match (&self.token_issuer, &self.store) {
            (Some(issuer), Some(store)) => issuer.catch_up(store, &self.verifier, now).await,
            _ => false,
        }
    }

    /// Why a principal the store disabled or deleted is refused, if it is.
    pub(crate) fn inactive_principal(&self, principal: &Principal) -> Option<String> {
        let snapshot = self.policy.current()?;
        let type_name = snapshot.pack.type_name(&principal.entity_type)?;
        let uid = warden_core::cedar_policy::EntityUid::from_type_name_and_id(
            type_name,
            warden_core::cedar_policy::EntityId::new(&principal.id),
        );
        match snapshot.entities().status(&uid)? {
            warden_store::PrincipalStatus::Disabled => Some(format!("{uid} is disabled")),
            warden_store::PrincipalStatus::Deleted => Some(format!("{uid} is deleted")),
            warden_store::PrincipalStatus::Active => None,
        }
    }

    /// Notes an allow's determining policies as usage evidence of the principal's entitlements.
    fn note_use(&self, input: &DecisionInput<'_>, outcome: &DecisionOutcome) {
        let (Some(usage), Some(decision)) = (&self.entitlement_usage, outcome.decision()) else {
            return;
        };
        if outcome.refusal.is_some() || !decision.is_allowed() {
            return;
        }
        let principal = match &input.principal {
            PrincipalInput::Token(principal) => {
                (principal.entity_type.as_str(), principal.id.as_str())
            }
            PrincipalInput::Named(subject) => (subject.entity_type.as_str(), subject.id.as_str()),
        };
        usage.note(
            principal,
            decision.determining.iter().map(|policy| &policy.id),
            &outcome.decision_id,
            unix_now(),
        );
    }

    /// Steps 3 and 4 for a verified bearer: decide its request and record the decision.
    pub async fn check(
        &self,
        scope: &DecisionScope,
        caller: &Caller,
        bearer: &Bearer,
        request: CheckRequest,
    ) -> DecisionOutcome {
        let principal = bearer.principal();
        let context = bearer.context_for(&scope.snapshot.pack, &request.action, request.context);
        let (context, refusal) = match context {
            Ok(context) => (context, None),
            Err(refusal) => (None, Some(refusal)),
        };
        let input = DecisionInput {
            principal: PrincipalInput::Token(principal),
            action: request.action,
            resource: request.resource,
            context,
        };
        let mut outcome = match refusal {
            None => engine::decide(scope, &input),
            Some(refusal) => engine::refused(&input, refusal),
        };
        if let (Some(issuer), Some(decision)) = (&self.token_issuer, outcome.decision())
            && outcome.refusal.is_none()
            && decision.is_allowed()
            && issuer.issued(&bearer.token.issuer)
            && bearer.delegation.is_none()
        {
            // Which policies allowed a service account's request: the inventory report's
            // "unused scopes" finding is built from this (batched, off the request path).
            issuer.note_allowed(
                &principal.subject,
                decision
                    .determining
                    .iter()
                    .map(|policy| policy.id.to_string()),
                unix_now(),
            );
        }
        self.note_use(&input, &outcome);
        decision_log::record_decision(
            self.decision_log.as_ref(),
            caller,
            scope,
            &input,
            Some(bearer.presented()),
            &mut outcome,
        )
        .await;
        outcome
    }

    /// Counts, logs and records a refused bearer token (the caller answers 401).
    pub async fn refuse_token(
        &self,
        caller: &Caller,
        attempt: Option<Attempt>,
        error: &TokenError,
    ) {
        metrics::counter!("warden_token_failures_total", "reason" => error.reason.as_str())
            .increment(1);
        tracing::info!(reason = error.reason.as_str(), detail = ?error.detail, "bearer token refused");
        let (action, resource) = match attempt {
            Some(attempt) => (Some(attempt.action), Some(attempt.resource)),
            None => (None, None),
        };
        decision_log::record_token_refusal(
            self.decision_log.as_ref(),
            caller,
            action,
            resource,
            error.reason.as_str(),
            error.detail.clone(),
            None,
        )
        .await;
    }

    /// Steps 3 and 4 for a subject an enforcement point names (AuthZEN): screen it (forwarded
    /// token identifiers, Warden's account state), decide, and record.
    pub async fn evaluate(
        &self,
        scope: &DecisionScope,
        caller: &Caller,
        subject: EntityInput,
        action: String,
        resource: EntityInput,
        context: Option<Value>,
    ) -> DecisionOutcome {
        let actors = self.forwarded_actors(&subject);
        let (subject, refusal) = self.screen(subject);
        let input = DecisionInput {
            principal: PrincipalInput::Named(subject),
            action,
            resource,
            context,
        };
        let mut outcome = match refusal {
            None => engine::decide(scope, &input),
            Some(refusal) => engine::refused(&input, refusal),
        };
        self.note_use(&input, &outcome);
        decision_log::record_decision(
            self.decision_log.as_ref(),
            caller,
            scope,
            &input,
            (!actors.is_empty()).then_some(Presented {
                token: None,
                actors,
            }),
            &mut outcome,
        )
        .await;
        outcome
    }

    /// A data-filter plan for a verified bearer token's principal, or for a subject an
    /// enforcement point names (screened as for [`Service::evaluate`]), recorded.
    pub async fn filter(
        &self,
        scope: &DecisionScope,
        caller: &Caller,
        asker: FilterAsker<'_>,
        action: String,
        resource_type: String,
        context: Option<Value>,
    ) -> Result<crate::filter::FilterOutcome, crate::filter::FilterFailure> {
        let (principal, token, refusal, context) = match asker {
            FilterAsker::Bearer(bearer) => {
                match bearer.context_for(&scope.snapshot.pack, &action, context) {
                    Ok(context) => (
                        PrincipalInput::Token(bearer.principal()),
                        Some(bearer.presented()),
                        None,
                        context,
                    ),
                    Err(refusal) => (
                        PrincipalInput::Token(bearer.principal()),
                        Some(bearer.presented()),
                        Some(refusal),
                        None,
                    ),
                }
            }
            FilterAsker::Subject(subject) => {
                let (subject, refusal) = self.screen(subject);
                (PrincipalInput::Named(subject), None, refusal, context)
            }
        };
        let input = crate::filter::FilterInput {
            principal,
            action,
            resource_type,
            context,
        };
        let planned = match refusal {
            None => crate::filter::plan(scope, &input),
            Some(refusal) => Ok(crate::filter::FilterOutcome {
                decision_id: uuid::Uuid::now_v7().to_string(),
                plan: None,
                refusal: Some(refusal),
            }),
        };
        let (mut outcome, unsupported) = match planned {
            Ok(outcome) => (outcome, None),
            // A plan that cannot be made is a question asked all the same: recorded, with why.
            Err(crate::filter::FilterFailure::Unsupported(error)) => (
                crate::filter::FilterOutcome {
                    decision_id: uuid::Uuid::now_v7().to_string(),
                    plan: None,
                    refusal: None,
                },
                Some(error),
            ),
            Err(failure) => return Err(failure),
        };
        let reason = match &unsupported {
            Some(_) => "filter_unsupported",
            None => outcome.reason(),
        };
        metrics::counter!("warden_filter_plans_total", "reason" => reason).increment(1);
        decision_log::record_filter(
            self.decision_log.as_ref(),
            caller,
            scope,
            &input,
            token,
            unsupported.as_ref(),
            &mut outcome,
        )
        .await;
        match unsupported {
            Some(error) => Err(crate::filter::FilterFailure::Unfilterable {
                error,
                decision_id: outcome.decision_id,
            }),
            None => Ok(outcome),
        }
    }

    /// The actors of a delegated token of Warden's whose chain a PEP forwarded for `subject`
    /// (`subject.properties.token`), for the record; none when there is no such chain.
    fn forwarded_actors(&self, subject: &EntityInput) -> Vec<warden_audit::EntityRef> {
        let (Some(issuer), Some(token)) = (
            &self.token_issuer,
            subject
                .properties
                .as_ref()
                .and_then(|properties| properties.get("token"))
                .and_then(Value::as_object),
        ) else {
            return Vec::new();
        };
        if token.get("iss").and_then(Value::as_str) != Some(issuer.settings.issuer.as_str()) {
            return Vec::new();
        }
        match Delegation::from_claims(token) {
            Ok(Some(delegation)) => actor_refs(&delegation.actors),
            _ => Vec::new(),
        }
    }

    /// A named subject without its reserved `token` property, and the refusal its forwarded
    /// token identifiers or its account state call for, if any.
    pub fn screen(&self, mut subject: EntityInput) -> (EntityInput, Option<Refusal>) {
        let refusal = match forwarded_token(&mut subject) {
            Ok(Some(token)) => self.revoked(&subject, &token),
            Ok(None) => None,
            Err(why) => Some(Refusal {
                reason: RefusalReason::InvalidRequest,
                detail: why,
            }),
        }
        .or_else(|| self.inactive_account(&subject));
        (subject, refusal)
    }

    /// A service account Warden manages (`ServiceAccount::"<tenant>/<client_id>"`) that is
    /// disabled, deleted or expired is denied here too, as its tokens are on `/v1/check`.
    fn inactive_account(&self, subject: &EntityInput) -> Option<Refusal> {
        let issuer = self.token_issuer.as_ref()?;
        if subject.entity_type != "ServiceAccount" {
            return None;
        }
        let (tenant, client_id) = subject.id.split_once('/')?;
        let account = issuer.account(client_id)?;
        let now = unix_now();
        let expired = now >= account.expires_at;
        let reason = match account.status {
            _ if account.tenant != tenant => return None,
            warden_store::AccountStatus::Active if !expired => return None,
            warden_store::AccountStatus::Active | warden_store::AccountStatus::Disabled => {
                RefusalReason::PrincipalDisabled
            }
            warden_store::AccountStatus::Deleted => RefusalReason::PrincipalDeleted,
        };
        let state = if expired && account.status == warden_store::AccountStatus::Active {
            "expired"
        } else {
            account.status.as_str()
        };
        Some(Refusal {
            reason,
            detail: format!("service account {client_id} is {state}"),
        })
    }

    /// The refusal when forwarded identifiers are revoked (or malformed: fail closed).
    fn revoked(&self, subject: &EntityInput, token: &Map<String, Value>) -> Option<Refusal> {
        match forwarded_ids(token) {
            Ok(ids) => self
                .revocations
                .check_ids(&ids, unix_now())
                .map(|hit| Refusal {
                    reason: RefusalReason::TokenRevoked,
                    detail: format!("the forwarded token is revoked (by {})", hit.kind.as_str()),
                }),
            Err(why) => Some(Refusal {
                reason: RefusalReason::InvalidRequest,
                detail: why,
            }),
        }
        .or_else(|| self.forwarded_chain(subject, token))
    }
}

/// `subject.properties.token`: identifiers of the bearer token the enforcement point verified
/// itself (`iss`, `jti`, `sid`, `sub`, `iat`, `client_id`, `kid`, and `jkt`, the RFC 7638
/// thumbprint of the key that verified it), so that a revocation in Warden denies on this path
/// too. The name is reserved: it never becomes an attribute.
fn forwarded_token(subject: &mut EntityInput) -> Result<Option<Map<String, Value>>, String> {
    let Some(properties) = subject.properties.as_mut() else {
        return Ok(None);
    };
    let Some(token) = properties.remove("token") else {
        return Ok(None);
    };
    if properties.is_empty() {
        subject.properties = None;
    }
    match token {
        Value::Object(identifiers) => Ok(Some(identifiers)),
        _ => Err("subject.properties.token must be an object of the token's identifiers (iss, jti, sid, sub, iat, client_id, kid)".to_owned()),
    }
}

/// The identifiers of a forwarded token, each a string (`iat` an integer) or absent.
fn forwarded_ids(token: &Map<String, Value>) -> Result<TokenIds<'_>, String> {
    let text = |name: &str| -> Result<Option<&str>, String> {
        match token.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.as_str())),
            Some(_) => Err(format!("subject.properties.token.{name} must be a string")),
        }
    };
    Ok(TokenIds {
        issuer: text("iss")?,
        jti: text("jti")?,
        sid: text("sid")?,
        subject: text("sub")?,
        issued_at: match token.get("iat") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_i64()
                    .ok_or_else(|| "subject.properties.token.iat must be an integer".to_owned())?,
            ),
        },
        client: text("client_id")?.or(text("azp")?),
        kid: text("kid")?,
        key_thumbprint: text("jkt")?,
    })
}
