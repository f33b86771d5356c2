//! Parsing entity UIDs from what people and programs write: `User::"alice"`, or Cedar's JSON
//! form `{"type": "User", "id": "alice"}` (also wrapped as `{"__entity": {…}}`).

use std::str::FromStr;

use cedar_policy::EntityUid;
use serde_json::Value;

/// An entity UID that could not be parsed; the message names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    /// The text is not `Type::"id"`.
    #[error("`{input}` is not an entity UID (expected Type::\"id\", e.g. User::\"alice\")")]
    Text {
        /// What was given.
        input: String,
    },
    /// The JSON value is neither a UID string nor a `{"type", "id"}` object.
    #[error(
        "{input} is not an entity UID (expected \"Type::\\\"id\\\"\" or {{\"type\": …, \"id\": …}})"
    )]
    Json {
        /// The value given, as compact JSON.
        input: String,
    },
}

/// Parses `Type::"id"` (namespaced types such as `App::User::"alice"` included).
pub fn parse_uid(text: &str) -> Result<EntityUid, UidError> {
    EntityUid::from_str(text.trim()).map_err(|_| UidError::Text {
        input: text.to_owned(),
    })
}

/// Parses a UID given as a JSON string or as Cedar's `{"type", "id"}` object.
pub fn parse_uid_json(value: &Value) -> Result<EntityUid, UidError> {
    match value {
        Value::String(text) => parse_uid(text),
        Value::Object(object) => {
            let inner = object.get("__entity").unwrap_or(value);
            let type_name = inner.get("type").and_then(Value::as_str);
            let id = inner.get("id").and_then(Value::as_str);
            match (type_name, id) {
                (Some(_), Some(_)) if inner.as_object().is_some_and(|o| o.len() == 2) => {
                    EntityUid::from_json(inner.clone()).map_err(|_| UidError::Json {
                        input: value.to_string(),
                    })
                }
                _ => Err(UidError::Json {
                    input: value.to_string(),
                }),
            }
        }
        _ => Err(UidError::Json {
            input: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_json_forms_agree() {
        let from_text = parse_uid(r#"Document::"acme/roadmap""#).unwrap();
        let from_json = parse_uid_json(&json!({"type": "Document", "id": "acme/roadmap"})).unwrap();
        let from_wrapped =
            parse_uid_json(&json!({"__entity": {"type": "Document", "id": "acme/roadmap"}}))
                .unwrap();
        let from_json_string = parse_uid_json(&json!("Document::\"acme/roadmap\"")).unwrap();
        assert_eq!(from_text, from_json);
        assert_eq!(from_text, from_wrapped);
        assert_eq!(from_text, from_json_string);
    }

    #[test]
    fn malformed_uids_name_the_input() {
        let error = parse_uid("alice").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`alice` is not an entity UID (expected Type::\"id\", e.g. User::\"alice\")"
        );
        assert!(parse_uid("User::alice").is_err());
        assert!(parse_uid_json(&json!({"type": "User"})).is_err());
        assert!(parse_uid_json(&json!({"type": "User", "id": 3})).is_err());
        assert!(parse_uid_json(&json!({"type": "User", "id": "a", "extra": 1})).is_err());
        assert!(parse_uid_json(&json!(42)).is_err());
    }
}
