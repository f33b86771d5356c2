//! RFC 8693 token exchange: a service account presents an end user's token and gets a
//! short-lived token that speaks for the user with the account as actor; and, at every use of
//! such a token, the checks that keep it no stronger than the chain behind it.
//!
//! SECURITY-SENSITIVE: this is how a job gets a user's authority, so every step narrows.
//! - The account must hold `warden:token-exchange`; the subject token is verified completely
//!   (revocations, the principal's state) as a bearer on `/v1/check` would be.
//! - Same tenant: the user's tenant is the account's, or nothing is issued.
//! - Scopes: only those the user's token and the account both hold (and a request may narrow
//!   them further, never widen them).
//! - Lifetime: at most `[tokens] exchange_ttl_seconds`, never past the subject token's `exp`
//!   or the account's expiry. Delegation depth: at most `[tokens] max_delegation_depth`.
//! - At every use: the origin token, its session, subject, client and key, and every exchanged
//!   token the chain went through are checked against the revocations; every account in the
//!   chain must be active, and the token keeps only the scopes each still holds.

use serde_json::{Map, Value};
use warden_config::OWN_MAX_TOKEN_BYTES;
use warden_issuer::credentials::{self, ScopeRefusal};
use warden_issuer::delegation::{
    self, ACCESS_TOKEN_TYPE, ADMIN_SCOPE, Actor, DelegatedClaims, Delegation, EXCHANGE_SCOPE,
    JWT_TOKEN_TYPE, Link, Origin, OriginIds,
};
use warden_store::ServiceAccount;
use warden_token::{Principal, TokenError, TokenReason, VerifiedToken};

use crate::clock::unix_now;
use crate::engine::{EntityInput, Refusal, RefusalReason};
use crate::issuer::{AccountRefusal, TokenIssuer};
use crate::pipeline::{IdentifyError, Service};
use crate::revocation::TokenIds;

/// One token-exchange request, as its form named it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExchangeRequest<'a> {
    /// `subject_token`.
    pub subject_token: Option<&'a str>,
    /// `subject_token_type`.
    pub subject_token_type: Option<&'a str>,
    /// `requested_token_type`.
    pub requested_token_type: Option<&'a str>,
    /// Whether `actor_token` or `actor_token_type` was sent (refused: the authenticated client
    /// is the actor).
    pub actor_token: bool,
    /// `scope`.
    pub scope: Option<&'a str>,
    /// `audience`.
    pub audience: Option<&'a str>,
    /// Whether `resource` was sent (refused: name an audience).
    pub resource: bool,
}

/// A token issued by exchange.
#[derive(Debug)]
pub struct Exchanged {
    /// The signed token.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Its scopes, space-separated.
    pub scope: String,
    /// Its `jti`.
    pub jti: String,
    /// The principal it speaks for, as Cedar writes it.
    pub principal: String,
    /// The principal's subject.
    pub subject: String,
}

/// Why a token exchange is refused, as RFC 8693 §2.2.2 and RFC 6749 §5.2 name it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// The request, or its subject token, is not acceptable.
    #[error("{0}")]
    InvalidRequest(String),
    /// The audience is not one Warden issues for.
    #[error("{0}")]
    InvalidTarget(String),
    /// A scope asked for is not held by both the subject and the client.
    #[error("{0}")]
    InvalidScope(String),
    /// The client may not exchange tokens.
    #[error("{0}")]
    UnauthorizedClient(String),
    /// Warden cannot answer now (stale store, no signing key): try again.
    #[error("{0}")]
    Unavailable(String),
}

impl ExchangeError {
    /// The OAuth error code.
    pub fn code(&self) -> &'static str {
        match self {
            ExchangeError::InvalidRequest(_) => "invalid_request",
            ExchangeError::InvalidTarget(_) => "invalid_target",
            ExchangeError::InvalidScope(_) => "invalid_scope",
            ExchangeError::UnauthorizedClient(_) => "unauthorized_client",
            ExchangeError::Unavailable(_) => "temporarily_unavailable",
        }
    }
}

fn accepted_type(token_type: &str) -> bool {
    token_type == ACCESS_TOKEN_TYPE || token_type == JWT_TOKEN_TYPE
}

impl Service {
    /// Exchanges `request`'s subject token for a delegated token with `account` (already
    /// authenticated) as the actor.
    pub async fn exchange(
        &self,
        issuer: &TokenIssuer,
        account: &ServiceAccount,
        request: &ExchangeRequest<'_>,
        now: i64,
    ) -> Result<Exchanged, ExchangeError> {
        let invalid = |why: &str| ExchangeError::InvalidRequest(why.to_owned());
        let subject_token = request
            .subject_token
            .filter(|token| !token.is_empty())
            .ok_or_else(|| invalid("subject_token is missing"))?;
        match request.subject_token_type {
            None => return Err(invalid("subject_token_type is missing")),
            Some(kind) if !accepted_type(kind) => {
                return Err(ExchangeError::InvalidRequest(format!(
                    "subject_token_type `{kind}` is not supported; use {ACCESS_TOKEN_TYPE} or {JWT_TOKEN_TYPE}"
                )));
            }
            Some(_) => {}
        }
        if let Some(kind) = request.requested_token_type
            && !accepted_type(kind)
        {
            return Err(ExchangeError::InvalidRequest(format!(
                "requested_token_type `{kind}` is not supported; Warden issues {ACCESS_TOKEN_TYPE}"
            )));
        }
        if request.actor_token {
            return Err(invalid(
                "actor_token is not accepted: the authenticated client is the actor",
            ));
        }
        if !account.scopes.iter().any(|scope| scope == EXCHANGE_SCOPE) {
            return Err(ExchangeError::UnauthorizedClient(format!(
                "the client does not hold the `{EXCHANGE_SCOPE}` scope"
            )));
        }
        if request.resource {
            return Err(ExchangeError::InvalidTarget(
                "resource is not supported; name an audience".to_owned(),
            ));
        }
        let audience = request.audience.unwrap_or(&issuer.settings.audience);
        if !issuer.settings.exchange_audience_allowed(audience) {
            return Err(ExchangeError::InvalidTarget(format!(
                "audience `{audience}` is not one Warden issues tokens for"
            )));
        }

        let subject = self
            .identify(subject_token)
            .await
            .map_err(|error| match error {
                IdentifyError::Token(error) => ExchangeError::InvalidRequest(format!(
                    "subject_token is not acceptable ({})",
                    error.reason.as_str()
                )),
                IdentifyError::Stale(why) => ExchangeError::Unavailable(why),
            })?;
        let principal = subject.principal();
        if principal.tenant.as_deref() != Some(account.tenant.as_str()) {
            return Err(invalid(
                "the subject token's tenant is not the client's: a token never changes tenant",
            ));
        }
        let depth = subject.actors().len() + 1;
        if depth > issuer.settings.max_delegation_depth {
            return Err(ExchangeError::InvalidRequest(format!(
                "the delegation chain would hold {depth} actors; at most {} are allowed",
                issuer.settings.max_delegation_depth
            )));
        }
        let available: Vec<String> = principal
            .scopes
            .iter()
            .filter(|scope| scope.as_str() != EXCHANGE_SCOPE && account.scopes.contains(*scope))
            .cloned()
            .collect();
        let scopes = match request.scope {
            // Unasked, a job gets no admin power: `warden:admin` only when named.
            None => available
                .iter()
                .filter(|scope| scope.as_str() != ADMIN_SCOPE)
                .cloned()
                .collect(),
            Some(_) => credentials::narrow(request.scope, &available).map_err(|refusal| {
                ExchangeError::InvalidScope(match refusal {
                    ScopeRefusal::Malformed => "scope is not a list of scope names".to_owned(),
                    ScopeRefusal::NotGranted(scope) => {
                        format!("scope `{scope}` is not held by both the subject and the client")
                    }
                })
            })?,
        };
        if scopes.iter().any(|scope| scope == ADMIN_SCOPE) && audience != issuer.settings.audience {
            return Err(ExchangeError::InvalidScope(format!(
                "`{ADMIN_SCOPE}` is only for a token of Warden's own audience"
            )));
        }

        let ttl_end = now.saturating_add(issuer.settings.exchange_ttl_seconds);
        let expires_at = ttl_end
            .min(subject.token.expires_at.unwrap_or(ttl_end))
            .min(account.expires_at);
        if expires_at <= now {
            return Err(invalid("subject_token expires now"));
        }
        let actor = Actor {
            client_id: account.client_id.clone(),
            tenant: account.tenant.clone(),
        };
        let chain = match &subject.delegation {
            Some(before) => before.extended(
                actor,
                Some(Link {
                    jti: subject
                        .token
                        .jti
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    kid: subject.token.kid.clone(),
                    jkt: subject.token.key_thumbprint.clone(),
                }),
            ),
            // A service account's own token is no person's: it starts no chain (else an
            // account holding `warden:admin` could make itself an operator).
            None if issuer.issued(&subject.token.issuer) => {
                return Err(invalid(
                    "subject_token is a service account's own token: only a person's token, or a delegated one, is exchanged",
                ));
            }
            None => Delegation {
                origin: Origin::of(principal, origin_ids(&subject.token)),
                actors: Vec::new(),
            }
            .extended(actor, None),
        };
        let act = chain
            .act_claim()
            .ok_or_else(|| ExchangeError::Unavailable("the chain has no actor".to_owned()))?;
        let key = issuer
            .signing_key()
            .ok_or_else(|| ExchangeError::Unavailable("no signing key is loaded yet".to_owned()))?;
        let jti = credentials::new_jti()
            .map_err(|error| ExchangeError::Unavailable(error.to_string()))?;
        let scope = scopes.join(" ");
        let access_token = delegation::mint(
            &key,
            &DelegatedClaims {
                iss: &issuer.settings.issuer,
                sub: &principal.subject,
                aud: audience,
                exp: expires_at,
                iat: now,
                nbf: now,
                jti: &jti,
                client_id: &account.client_id,
                tenant: &account.tenant,
                scope: &scope,
                act: &act,
                warden_origin: &chain.origin,
            },
        )
        .map_err(|error| ExchangeError::Unavailable(error.to_string()))?;
        if access_token.len() > OWN_MAX_TOKEN_BYTES {
            return Err(ExchangeError::InvalidRequest(format!(
                "the delegated token would be {} bytes, more than Warden accepts ({OWN_MAX_TOKEN_BYTES}): the subject token carries too many roles or attributes, or the chain is too long",
                access_token.len()
            )));
        }
        issuer.note_use(&account.client_id, now);
        Ok(Exchanged {
            access_token,
            expires_in: expires_at - now,
            scope,
            jti,
            principal: principal.uid_string(),
            subject: principal.subject.clone(),
        })
    }

    /// The principal a delegated token of Warden's speaks for now, or why it is refused: the
    /// chain's start and every token it went through are checked against the revocations,
    /// and every account in it must be active (its scopes narrow the token's).
    pub(crate) async fn delegated_principal(
        &self,
        issuer: &TokenIssuer,
        token: &VerifiedToken,
        delegation: &Delegation,
        now: i64,
    ) -> Result<Principal, TokenError> {
        let origin = &delegation.origin;
        let revoked = |kind: &str| {
            TokenError::with(
                TokenReason::Revoked,
                format!("the delegated token's origin is revoked (by {kind})"),
            )
        };
        if let Some(kind) = self.chain_revoked(issuer, delegation, token.issued_at, now) {
            return Err(revoked(kind));
        }
        let tenant = token
            .claims
            .get("tenant")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let mut accounts: Vec<&str> = delegation
            .actors
            .iter()
            .map(|actor| actor.client_id.as_str())
            .collect();
        // A chain that started at one of Warden's own accounts keeps depending on it.
        if origin.iss == issuer.settings.issuer
            && let Some(client_id) = origin.client_id.as_deref()
        {
            accounts.push(client_id);
        }
        let mut scopes = token.principal.scopes.clone();
        for client_id in accounts {
            self.narrow_to_account(issuer, client_id, tenant, now, &mut scopes)
                .await?;
        }
        delegation
            .principal(scopes)
            .map_err(|error| TokenError::with(TokenReason::ClaimInvalid, error.to_string()))
    }

    /// Keeps in `scopes` only those the account of `tenant` holds now; refuses when it is not
    /// active (or not of the tenant).
    async fn narrow_to_account(
        &self,
        issuer: &TokenIssuer,
        client_id: &str,
        tenant: &str,
        now: i64,
        scopes: &mut Vec<String>,
    ) -> Result<(), TokenError> {
        let read = |scopes: &mut Vec<String>| {
            issuer.with_active_account(client_id, now, |account| {
                if account.tenant != tenant {
                    return false;
                }
                scopes.retain(|scope| account.scopes.contains(scope));
                true
            })
        };
        let state = match read(scopes) {
            // An account another replica created since this one last read the store.
            Err(AccountRefusal::Unknown) if self.catch_up(now).await => read(scopes),
            other => other,
        };
        match state {
            Ok(true) => Ok(()),
            Ok(false) => Err(TokenError::with(
                TokenReason::ClaimInvalid,
                format!("actor {client_id} is not of the token's tenant"),
            )),
            Err(refusal) => Err(TokenError::with(
                TokenReason::Revoked,
                format!("actor {client_id}: {}", refusal.why()),
            )),
        }
    }
}

impl Service {
    /// For identifiers an enforcement point forwards (`subject.properties.token`) of a
    /// delegated token it verified itself: the refusal its chain calls for, checked as at
    /// every use on `/v1/check` (the origin and every link against the revocations, every
    /// actor's client revocations and account state). The PEP's word, so it can only deny.
    pub(crate) fn forwarded_chain(
        &self,
        subject: &EntityInput,
        token: &Map<String, Value>,
    ) -> Option<Refusal> {
        let refuse = |reason, detail: String| Some(Refusal { reason, detail });
        // Only a token of Warden's carries Warden's chain: another issuer's `act` is its own
        // (RFC 8693's plain form) and is left to the enforcement point.
        let issuer = self.token_issuer.as_ref()?;
        if token.get("iss").and_then(Value::as_str) != Some(issuer.settings.issuer.as_str()) {
            return None;
        }
        let delegation = match Delegation::from_claims(token) {
            Ok(Some(delegation)) => delegation,
            Ok(None) => return None,
            Err(error) => {
                return refuse(
                    RefusalReason::InvalidRequest,
                    format!(
                        "subject.properties.token: {error} (forward `sub`, `tenant`, `act` and `warden_origin` as they are)"
                    ),
                );
            }
        };
        let origin = &delegation.origin;
        if subject.id != origin.id || subject.entity_type != origin.principal_type {
            return refuse(
                RefusalReason::InvalidRequest,
                "the subject is not the principal the forwarded token's chain speaks for"
                    .to_owned(),
            );
        }
        let now = unix_now();
        let revoked = |kind: &str| {
            refuse(
                RefusalReason::TokenRevoked,
                format!("the forwarded token's delegation chain is revoked (by {kind})"),
            )
        };
        let issued_at = token.get("iat").and_then(Value::as_i64);
        if let Some(kind) = self.chain_revoked(issuer, &delegation, issued_at, now) {
            return revoked(kind);
        }
        for actor in &delegation.actors {
            // No store read here (this path decides from memory): an account this replica has
            // not seen yet is refused until its next poll, failing closed.
            if let Err(refusal) = issuer.with_active_account(&actor.client_id, now, |_| ()) {
                return refuse(
                    RefusalReason::TokenRevoked,
                    format!("actor {}: {}", actor.client_id, refusal.why()),
                );
            }
        }
        None
    }
}

impl Service {
    /// The kind of the first revocation that reaches a delegation chain, if any: its origin's
    /// token, session, subject, client or key; every delegated token it went through (by
    /// `jti` or signing key); every actor's client, revoked before a token issued at
    /// `issued_at` (one revoked before a link was made could not have exchanged it).
    fn chain_revoked(
        &self,
        issuer: &TokenIssuer,
        delegation: &Delegation,
        issued_at: Option<i64>,
        now: i64,
    ) -> Option<&'static str> {
        let origin = &delegation.origin;
        let start = TokenIds {
            issuer: Some(&origin.iss),
            jti: origin.jti.as_deref(),
            sid: origin.sid.as_deref(),
            subject: Some(&origin.sub),
            issued_at: origin.iat,
            client: origin.client_id.as_deref(),
            kid: origin.kid.as_deref(),
            key_thumbprint: origin.jkt.as_deref(),
        };
        let links = origin.via.iter().map(|link| TokenIds {
            issuer: Some(&issuer.settings.issuer),
            jti: Some(&link.jti),
            kid: link.kid.as_deref(),
            key_thumbprint: link.jkt.as_deref(),
            ..TokenIds::default()
        });
        let actors = delegation.actors.iter().map(|actor| TokenIds {
            client: Some(&actor.client_id),
            issued_at,
            ..TokenIds::default()
        });
        std::iter::once(start)
            .chain(links)
            .chain(actors)
            .find_map(|ids| self.revocations.check_ids(&ids, now))
            .map(|hit| hit.kind.as_str())
    }
}

/// The identifiers of a subject token that starts a chain.
fn origin_ids(token: &VerifiedToken) -> OriginIds {
    let claim = |name: &str| {
        token
            .claims
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    OriginIds {
        iss: token.issuer.clone(),
        jti: token.jti.as_ref().map(ToString::to_string),
        sid: token.sid.clone(),
        iat: token.issued_at,
        client_id: claim("client_id").or_else(|| claim("azp")),
        kid: token.kid.clone(),
        jkt: token.key_thumbprint.clone(),
    }
}
