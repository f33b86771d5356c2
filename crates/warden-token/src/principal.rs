//! Verified claims become a principal: type, id, tenant, roles, scopes and declared attributes,
//! as the issuer's `[issuers.claims]` mapping says.
//!
//! Claims are inputs, not truth: where the store knows the principal, the store wins (a later
//! layer). This module only reads claims of a token whose signature and standard claims were
//! already verified.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::reason::{TokenError, TokenReason};
use crate::settings::{AttributeType, ClaimSettings, PrincipalTypeSettings};

/// A principal attribute copied from a claim, with its declared type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValue {
    /// A string.
    String(String),
    /// An integer.
    Long(i64),
    /// A boolean.
    Bool(bool),
    /// A set of strings.
    StringSet(Vec<String>),
}

impl AttributeValue {
    /// The value as JSON (Cedar entity JSON accepts it as is).
    pub fn to_json(&self) -> Value {
        match self {
            AttributeValue::String(text) => Value::String(text.clone()),
            AttributeValue::Long(number) => Value::from(*number),
            AttributeValue::Bool(flag) => Value::Bool(*flag),
            AttributeValue::StringSet(items) => Value::from(items.clone()),
        }
    }
}

/// Who the token speaks for, ready for the decision core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The entity type, e.g. `User` or `ServiceAccount`.
    pub entity_type: String,
    /// The entity id: `<tenant>/<subject>` when the issuer maps a tenant, else the subject.
    pub id: String,
    /// The subject claim as it was.
    pub subject: String,
    /// The tenant claim, when mapped.
    pub tenant: Option<String>,
    /// Roles from the roles claim.
    pub roles: Vec<String>,
    /// Scopes from the scopes claim.
    pub scopes: Vec<String>,
    /// Declared extra attributes.
    pub attributes: BTreeMap<String, AttributeValue>,
}

impl Principal {
    /// `Type::"id"`, as Cedar writes it.
    pub fn uid_string(&self) -> String {
        format!(
            "{}::{}",
            self.entity_type,
            serde_json::Value::String(self.id.clone())
        )
    }
}

fn present(claims: &Map<String, Value>, name: &str) -> bool {
    claims.get(name).is_some_and(|value| !value.is_null())
}

fn string_list(claims: &Map<String, Value>, name: &str) -> Result<Vec<String>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(text
            .split([' ', ','])
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    TokenError::with(
                        TokenReason::ClaimInvalid,
                        format!("`{name}` holds a non-string"),
                    )
                })
            })
            .collect(),
        Some(_) => Err(TokenError::with(
            TokenReason::ClaimInvalid,
            format!("`{name}` is not a string or an array"),
        )),
    }
}

/// Maps claims to a principal with an issuer's mapping. The claims must be verified first
/// (the verifier calls this after every check); a policy suite's token claims are test data.
pub fn map_claims(
    claims: &Map<String, Value>,
    mapping: &ClaimSettings,
) -> Result<Principal, TokenError> {
    let subject = match claims.get(&mapping.subject) {
        // A `/` would let a subject pose as another tenant's `<tenant>/<id>` entity.
        Some(Value::String(subject)) if !subject.is_empty() && !subject.contains('/') => {
            subject.clone()
        }
        None | Some(Value::Null) => {
            return Err(TokenError::with(
                TokenReason::ClaimMissing,
                mapping.subject.clone(),
            ));
        }
        Some(_) => {
            return Err(TokenError::with(
                TokenReason::ClaimInvalid,
                format!(
                    "`{}` is not a non-empty string without `/`",
                    mapping.subject
                ),
            ));
        }
    };
    let tenant = match &mapping.tenant {
        None => None,
        Some(claim) => match claims.get(claim) {
            Some(Value::String(tenant)) if !tenant.is_empty() && !tenant.contains('/') => {
                Some(tenant.clone())
            }
            None | Some(Value::Null) => {
                return Err(TokenError::with(TokenReason::ClaimMissing, claim.clone()));
            }
            Some(_) => {
                return Err(TokenError::with(
                    TokenReason::ClaimInvalid,
                    format!("`{claim}` is not a non-empty string without `/`"),
                ));
            }
        },
    };
    let entity_type = match &mapping.principal_type {
        PrincipalTypeSettings::Fixed(entity_type) => entity_type.clone(),
        PrincipalTypeSettings::Rules { default, rules } => rules
            .iter()
            .find(|rule| {
                rule.present.iter().all(|name| present(claims, name))
                    && !rule.absent.iter().any(|name| present(claims, name))
            })
            .map_or_else(|| default.clone(), |rule| rule.entity_type.clone()),
    };
    let roles = match &mapping.roles {
        Some(claim) => string_list(claims, claim)?,
        None => Vec::new(),
    };
    let scopes = string_list(claims, &mapping.scopes)?;
    let mut attributes = BTreeMap::new();
    for (name, declared) in &mapping.attributes {
        let value = match (claims.get(&declared.claim), declared.attribute_type) {
            (None | Some(Value::Null), _) => {
                if declared.required {
                    return Err(TokenError::with(
                        TokenReason::ClaimMissing,
                        declared.claim.clone(),
                    ));
                }
                continue;
            }
            (Some(Value::String(text)), AttributeType::String) => {
                AttributeValue::String(text.clone())
            }
            (Some(Value::Bool(flag)), AttributeType::Bool) => AttributeValue::Bool(*flag),
            (Some(Value::Number(number)), AttributeType::Long) if number.is_i64() => {
                AttributeValue::Long(number.as_i64().unwrap_or_default())
            }
            (Some(_), AttributeType::SetOfString) => {
                AttributeValue::StringSet(string_list(claims, &declared.claim)?)
            }
            (Some(_), declared_type) => {
                return Err(TokenError::with(
                    TokenReason::ClaimInvalid,
                    format!("`{}` is not a {declared_type:?}", declared.claim),
                ));
            }
        };
        attributes.insert(name.clone(), value);
    }
    let id = match &tenant {
        Some(tenant) => format!("{tenant}/{subject}"),
        None => subject.clone(),
    };
    Ok(Principal {
        entity_type,
        id,
        subject,
        tenant,
        roles,
        scopes,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{AttributeSettings, PrincipalTypeRule};
    use serde_json::json;

    fn mapping() -> ClaimSettings {
        let mut mapping = ClaimSettings {
            tenant: Some("org_id".into()),
            roles: Some("roles".into()),
            principal_type: PrincipalTypeSettings::Rules {
                default: "User".into(),
                rules: vec![PrincipalTypeRule {
                    present: vec!["client_id".into()],
                    absent: vec!["email".into()],
                    entity_type: "ServiceAccount".into(),
                }],
            },
            ..ClaimSettings::default()
        };
        mapping.attributes.insert(
            "email".into(),
            AttributeSettings {
                claim: "email".into(),
                attribute_type: AttributeType::String,
                required: false,
            },
        );
        mapping
    }

    fn claims(value: serde_json::Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn users_and_workloads_are_told_apart() {
        let user = map_claims(
            &claims(json!({"sub": "alice", "org_id": "acme", "roles": "editor, viewer", "scope": "a b", "email": "a@x"})),
            &mapping(),
        )
        .unwrap();
        assert_eq!(user.uid_string(), r#"User::"acme/alice""#);
        assert_eq!(user.roles, ["editor", "viewer"]);
        assert_eq!(user.scopes, ["a", "b"]);
        assert_eq!(
            user.attributes["email"],
            AttributeValue::String("a@x".into())
        );

        let workload = map_claims(
            &claims(json!({"sub": "svc", "org_id": "acme", "client_id": "svc", "scp": ["x"]})),
            &mapping(),
        )
        .unwrap();
        assert_eq!(workload.entity_type, "ServiceAccount");
    }

    #[test]
    fn missing_and_mistyped_claims_are_refused() {
        let missing_tenant = map_claims(&claims(json!({"sub": "alice"})), &mapping()).unwrap_err();
        assert_eq!(
            missing_tenant,
            TokenError::with(TokenReason::ClaimMissing, "org_id")
        );
        let slash = map_claims(
            &claims(json!({"sub": "a", "org_id": "acme/evil"})),
            &mapping(),
        )
        .unwrap_err();
        assert_eq!(slash.reason, TokenReason::ClaimInvalid);
        let roles = map_claims(
            &claims(json!({"sub": "a", "org_id": "acme", "roles": 3})),
            &mapping(),
        )
        .unwrap_err();
        assert_eq!(roles.reason, TokenReason::ClaimInvalid);
        let email = map_claims(
            &claims(json!({"sub": "a", "org_id": "acme", "email": 3})),
            &mapping(),
        )
        .unwrap_err();
        assert_eq!(email.reason, TokenReason::ClaimInvalid);
    }
}
