//! Delegation by token exchange (RFC 8693): the access token a service account gets for an end
//! user's token, and how such a token is read back.
//!
//! SECURITY-SENSITIVE: a delegated token speaks for the user, so it carries who the user was
//! (the principal as Warden resolved it from the subject token, and that token's identifiers
//! for revocation checks at every use) and who acts (the `act` chain, current actor outermost,
//! RFC 8693 §4.1). Reading it back is strict: unknown members, a chain deeper than
//! [`MAX_CHAIN`], or a principal that does not match `sub` and `tenant` refuse the token.
//!
//! The token is typed `at+jwt` like every access token Warden signs, so it takes the same
//! verification path; `act` is what tells it apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warden_token::{AttributeValue, Principal};

use crate::IssuerError;
use crate::signing::SigningKey;

/// `grant_type` of a token exchange.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The access-token token type (what Warden issues, and accepts as a subject token).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The JWT token type (accepted as a subject token: Warden verifies JWTs only).
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The scope a service account must hold to exchange tokens (never carried into the token).
pub const EXCHANGE_SCOPE: &str = "warden:token-exchange";
/// The scope that makes a delegated token an admin tool's token for its tenant: both the
/// operator's token and the tool's account must hold it.
pub const ADMIN_SCOPE: &str = "warden:admin";
/// The private claim naming where the chain started.
pub const ORIGIN_CLAIM: &str = "warden_origin";
/// The deepest chain any token may hold, whatever the configuration allows.
pub const MAX_CHAIN: usize = 10;

/// One actor of the `act` claim: a service account of Warden's, with the actor before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Act {
    /// The acting service account's client id.
    pub sub: String,
    /// Its tenant.
    pub tenant: String,
    /// The actor before it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Act>>,
}

/// Where a delegation chain started: the subject token's identifiers (for revocation checks at
/// every use) and the principal Warden resolved from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The subject token's issuer.
    pub iss: String,
    /// Its `sub`.
    pub sub: String,
    /// Its `jti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Its `sid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Its `iat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Its `client_id` (else `azp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The `kid` of the key that verified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The RFC 7638 thumbprint of the key that verified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// The principal's entity type, e.g. `User`.
    #[serde(rename = "type")]
    pub principal_type: String,
    /// The principal's entity id (`<tenant>/<sub>`).
    pub id: String,
    /// Its roles, from the subject token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Its declared attributes, from the subject token.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    /// The delegated tokens the chain went through, oldest first: revoking one (by its `jti`
    /// or the key that signed it) revokes what was made from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<Link>,
}

/// A delegated token a chain went through, by what a revocation can name of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Its `jti`.
    pub jti: String,
    /// The `kid` of the key that signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The RFC 7638 thumbprint of that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

impl Origin {
    /// The origin of a chain that starts at `principal`, verified from a token with these
    /// identifiers.
    pub fn of(principal: &Principal, ids: OriginIds) -> Self {
        Self {
            iss: ids.iss,
            sub: principal.subject.clone(),
            jti: ids.jti,
            sid: ids.sid,
            iat: ids.iat,
            client_id: ids.client_id,
            kid: ids.kid,
            jkt: ids.jkt,
            principal_type: principal.entity_type.clone(),
            id: principal.id.clone(),
            roles: principal.roles.clone(),
            attributes: principal
                .attributes
                .iter()
                .map(|(name, value)| (name.clone(), value.to_json()))
                .collect(),
            via: Vec::new(),
        }
    }
}

/// The identifiers of a subject token that start a chain.
#[derive(Debug, Clone, Default)]
pub struct OriginIds {
    /// `iss`.
    pub iss: String,
    /// `jti`.
    pub jti: Option<String>,
    /// `sid`.
    pub sid: Option<String>,
    /// `iat`.
    pub iat: Option<i64>,
    /// `client_id`, else `azp`.
    pub client_id: Option<String>,
    /// The verifying key's `kid`.
    pub kid: Option<String>,
    /// The verifying key's RFC 7638 thumbprint.
    pub jkt: Option<String>,
}

/// One actor, as a chain lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The service account's client id.
    pub client_id: String,
    /// Its tenant.
    pub tenant: String,
}

impl Actor {
    /// The actor as Cedar names it: `ServiceAccount::"<tenant>/<client_id>"`'s id.
    pub fn entity_id(&self) -> String {
        format!("{}/{}", self.tenant, self.client_id)
    }
}

/// A delegated token's chain, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// Where the chain started.
    pub origin: Origin,
    /// The actors, the current one first.
    pub actors: Vec<Actor>,
}

/// Why a token's delegation claims are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegationError {
    /// `act` or `warden_origin` is not what Warden writes.
    #[error("the delegation claims are malformed: {0}")]
    Malformed(String),
    /// The chain is deeper than any configuration allows.
    #[error("the delegation chain holds more than {MAX_CHAIN} actors")]
    TooDeep,
}

impl Delegation {
    /// The chain of a verified token of Warden's; `None` when it names no actor (a service
    /// account's own token).
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Option<Self>, DelegationError> {
        let malformed = |what: &str| DelegationError::Malformed(what.to_owned());
        let (act, origin) = match (claims.get("act"), claims.get(ORIGIN_CLAIM)) {
            (None, None) => return Ok(None),
            (Some(act), Some(origin)) => (act, origin),
            _ => return Err(malformed("`act` and `warden_origin` come together")),
        };
        // Read in place (no copy of the claims): this runs on every use of the token.
        let act = Act::deserialize(act)
            .map_err(|error| DelegationError::Malformed(format!("`act`: {error}")))?;
        let origin = Origin::deserialize(origin)
            .map_err(|error| DelegationError::Malformed(format!("`warden_origin`: {error}")))?;
        let mut actors = Vec::new();
        let mut next = Some(&act);
        while let Some(actor) = next {
            if actors.len() == MAX_CHAIN {
                return Err(DelegationError::TooDeep);
            }
            actors.push(Actor {
                client_id: actor.sub.clone(),
                tenant: actor.tenant.clone(),
            });
            next = actor.act.as_deref();
        }
        let sub = claims.get("sub").and_then(Value::as_str);
        let tenant = claims.get("tenant").and_then(Value::as_str);
        if sub != Some(origin.sub.as_str()) {
            return Err(malformed("`sub` differs from the origin's"));
        }
        if tenant.is_none_or(|tenant| origin.id != format!("{tenant}/{}", origin.sub)) {
            return Err(malformed("the origin's principal is not `<tenant>/<sub>`"));
        }
        if actors
            .iter()
            .any(|actor| Some(actor.tenant.as_str()) != tenant)
        {
            return Err(malformed("an actor of another tenant"));
        }
        Ok(Some(Self { origin, actors }))
    }

    /// The chain with `actor` acting now, before the existing actors; `via` is the delegated
    /// token it was exchanged from, when it was one.
    pub fn extended(&self, actor: Actor, via: Option<Link>) -> Self {
        let mut origin = self.origin.clone();
        origin.via.extend(via);
        let mut actors = Vec::with_capacity(self.actors.len() + 1);
        actors.push(actor);
        actors.extend(self.actors.iter().cloned());
        Self { origin, actors }
    }

    /// The `act` claim: the current actor outermost.
    pub fn act_claim(&self) -> Option<Act> {
        self.actors.iter().rev().fold(None, |before, actor| {
            Some(Act {
                sub: actor.client_id.clone(),
                tenant: actor.tenant.clone(),
                act: before.map(Box::new),
            })
        })
    }

    /// The principal the token speaks for: the origin's, with the token's (narrowed) scopes.
    pub fn principal(&self, scopes: Vec<String>) -> Result<Principal, DelegationError> {
        let mut attributes = BTreeMap::new();
        for (name, value) in &self.origin.attributes {
            let value = attribute(value).ok_or_else(|| {
                DelegationError::Malformed(format!("the origin's attribute `{name}`"))
            })?;
            attributes.insert(name.clone(), value);
        }
        let tenant = self
            .origin
            .id
            .split_once('/')
            .map(|(tenant, _)| tenant.to_owned());
        Ok(Principal {
            entity_type: self.origin.principal_type.clone(),
            id: self.origin.id.clone(),
            subject: self.origin.sub.clone(),
            tenant,
            roles: self.origin.roles.clone(),
            scopes,
            attributes,
        })
    }
}

/// An attribute as [`AttributeValue::to_json`] wrote it.
fn attribute(value: &Value) -> Option<AttributeValue> {
    match value {
        Value::String(text) => Some(AttributeValue::String(text.clone())),
        Value::Bool(flag) => Some(AttributeValue::Bool(*flag)),
        Value::Number(number) => number.as_i64().map(AttributeValue::Long),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(AttributeValue::StringSet),
        _ => None,
    }
}

/// The claims of a delegated access token.
#[derive(Debug, Serialize)]
pub struct DelegatedClaims<'a> {
    /// Warden's issuer URL.
    pub iss: &'a str,
    /// The end user's subject.
    pub sub: &'a str,
    /// The audience asked for (Warden's by default).
    pub aud: &'a str,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before (= `iat`).
    pub nbf: i64,
    /// Token id.
    pub jti: &'a str,
    /// The acting client (RFC 8693 §4.3).
    pub client_id: &'a str,
    /// The tenant (the user's, which is the actor's).
    pub tenant: &'a str,
    /// Scopes, space-separated: what both the user and every actor hold.
    pub scope: &'a str,
    /// The actors, current outermost.
    pub act: &'a Act,
    /// Where the chain started.
    pub warden_origin: &'a Origin,
}

/// Signs a delegated token with `key` (typed `at+jwt`, as every access token Warden signs).
pub fn mint(key: &SigningKey, claims: &DelegatedClaims<'_>) -> Result<String, IssuerError> {
    crate::access_token::sign(key, claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Principal {
        let mut attributes = BTreeMap::new();
        attributes.insert("email".to_owned(), AttributeValue::String("a@x".into()));
        attributes.insert("level".to_owned(), AttributeValue::Long(3));
        attributes.insert(
            "groups".to_owned(),
            AttributeValue::StringSet(vec!["g".into()]),
        );
        Principal {
            entity_type: "User".into(),
            id: "acme/alice".into(),
            subject: "alice".into(),
            tenant: Some("acme".into()),
            roles: vec!["editor".into()],
            scopes: vec!["documents:read".into()],
            attributes,
        }
    }

    fn chain() -> Delegation {
        let origin = Origin::of(
            &user(),
            OriginIds {
                iss: "https://idp".into(),
                jti: Some("j1".into()),
                ..OriginIds::default()
            },
        );
        Delegation {
            origin,
            actors: Vec::new(),
        }
        .extended(
            Actor {
                client_id: "sa_a".into(),
                tenant: "acme".into(),
            },
            None,
        )
        .extended(
            Actor {
                client_id: "sa_b".into(),
                tenant: "acme".into(),
            },
            Some(Link {
                jti: "j2".into(),
                kid: Some("k2".into()),
                jkt: None,
            }),
        )
    }

    fn claims_of(delegation: &Delegation) -> Map<String, Value> {
        json!({
            "sub": "alice",
            "tenant": "acme",
            "act": delegation.act_claim(),
            "warden_origin": delegation.origin,
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn a_chain_round_trips_through_its_claims_with_the_current_actor_outermost() {
        let delegation = chain();
        let act = delegation.act_claim().unwrap();
        assert_eq!(act.sub, "sa_b");
        assert_eq!(act.act.as_ref().unwrap().sub, "sa_a");
        assert_eq!(delegation.origin.via[0].jti, "j2");
        let read = Delegation::from_claims(&claims_of(&delegation))
            .unwrap()
            .unwrap();
        assert_eq!(read, delegation);
        let principal = read.principal(vec!["documents:read".into()]).unwrap();
        assert_eq!(principal, user());
    }

    #[test]
    fn a_token_without_act_is_no_delegation() {
        let claims = json!({"sub": "sa_x", "tenant": "acme"});
        assert_eq!(
            Delegation::from_claims(claims.as_object().unwrap()).unwrap(),
            None
        );
    }

    #[test]
    fn inconsistent_or_unknown_claims_are_refused() {
        let delegation = chain();
        let mut other_sub = claims_of(&delegation);
        other_sub.insert("sub".into(), json!("mallory"));
        assert!(Delegation::from_claims(&other_sub).is_err());
        let mut other_tenant = claims_of(&delegation);
        other_tenant.insert("tenant".into(), json!("globex"));
        assert!(Delegation::from_claims(&other_tenant).is_err());
        let mut extra = claims_of(&delegation);
        extra["act"]
            .as_object_mut()
            .unwrap()
            .insert("may_act".into(), json!(true));
        assert!(Delegation::from_claims(&extra).is_err());
        let mut lone = claims_of(&delegation);
        lone.remove(ORIGIN_CLAIM);
        assert!(Delegation::from_claims(&lone).is_err());
    }

    #[test]
    fn a_chain_deeper_than_the_bound_is_refused() {
        let mut delegation = chain();
        for index in 0..MAX_CHAIN {
            delegation = delegation.extended(
                Actor {
                    client_id: format!("sa_{index}"),
                    tenant: "acme".into(),
                },
                None,
            );
        }
        assert_eq!(
            Delegation::from_claims(&claims_of(&delegation)),
            Err(DelegationError::TooDeep)
        );
    }
}
