//! What the schema declares for each entity type: its attributes (and which are required) and
//! the types it may be a member of. The server uses it to build entities from token claims
//! and request properties that the schema will accept.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

/// The declared shape of one entity type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntityShape {
    /// Attribute name → required.
    pub attributes: BTreeMap<String, bool>,
    /// Fully qualified types this type may be a member of (`memberOfTypes`).
    pub member_of: BTreeSet<String>,
}

fn qualify(namespace: &str, name: &str) -> String {
    if namespace.is_empty() || name.contains("::") {
        name.to_owned()
    } else {
        format!("{namespace}::{name}")
    }
}

/// Shapes keyed by fully qualified entity type name, from the schema's JSON form.
pub(crate) fn shapes(schema_json: &Value) -> HashMap<String, EntityShape> {
    let mut shapes = HashMap::new();
    let Some(namespaces) = schema_json.as_object() else {
        return shapes;
    };
    for (namespace, body) in namespaces {
        let Some(types) = body.get("entityTypes").and_then(Value::as_object) else {
            continue;
        };
        for (name, declaration) in types {
            let mut shape = EntityShape::default();
            if let Some(attributes) = declaration
                .get("shape")
                .and_then(|shape| shape.get("attributes"))
                .and_then(Value::as_object)
            {
                for (attribute, declared) in attributes {
                    let required = declared
                        .get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    shape.attributes.insert(attribute.clone(), required);
                }
            }
            if let Some(parents) = declaration.get("memberOfTypes").and_then(Value::as_array) {
                shape.member_of = parents
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|parent| qualify(namespace, parent))
                    .collect();
            }
            shapes.insert(qualify(namespace, name), shape);
        }
    }
    shapes
}

/// A primitive type a context attribute can be declared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Primitive {
    /// `String`.
    String,
    /// `Long`.
    Long,
    /// `Bool`.
    Bool,
}

/// For each action of the schema (its uid as Cedar writes it, `Action::"read"`), the names of
/// every context attribute it declares, whatever their types.
pub(crate) fn context_attribute_names(schema_json: &Value) -> HashMap<String, BTreeSet<String>> {
    let mut out = HashMap::new();
    let Some(namespaces) = schema_json.as_object() else {
        return out;
    };
    for (namespace, body) in namespaces {
        let Some(actions) = body.get("actions").and_then(Value::as_object) else {
            continue;
        };
        for (name, declaration) in actions {
            let names: BTreeSet<String> = declaration
                .get("appliesTo")
                .and_then(|applies| applies.get("context"))
                .and_then(|context| context.get("attributes"))
                .and_then(Value::as_object)
                .map(|attributes| attributes.keys().cloned().collect())
                .unwrap_or_default();
            out.insert(action_uid_text(namespace, name), names);
        }
    }
    out
}

fn action_uid_text(namespace: &str, name: &str) -> String {
    format!(
        "{}Action::{}",
        if namespace.is_empty() {
            String::new()
        } else {
            format!("{namespace}::")
        },
        Value::String(name.to_owned())
    )
}

/// For each action of the schema (its uid as Cedar writes it, `Action::"read"`), the context
/// attributes it declares with a primitive type. A type written `EntityOrCommon` counts as
/// primitive only when no namespace declares a common or entity type of that name (which would
/// shadow it); anything else (records, sets, extension and entity types, common types) is left
/// out, and a request whose context uses it takes Cedar's own schema-based JSON reading.
pub(crate) fn context_primitives(
    schema_json: &Value,
) -> HashMap<String, HashMap<String, Primitive>> {
    let mut out = HashMap::new();
    let Some(namespaces) = schema_json.as_object() else {
        return out;
    };
    let mut declared_names = BTreeSet::new();
    for body in namespaces.values() {
        for section in ["commonTypes", "entityTypes"] {
            if let Some(names) = body.get(section).and_then(Value::as_object) {
                declared_names.extend(names.keys().cloned());
            }
        }
    }
    let primitive = |declared: &Value| -> Option<Primitive> {
        let name = match declared.get("type").and_then(Value::as_str)? {
            "EntityOrCommon" => {
                let name = declared.get("name").and_then(Value::as_str)?;
                if declared_names.contains(name) {
                    return None;
                }
                name
            }
            other => other,
        };
        match name {
            "String" | "__cedar::String" => Some(Primitive::String),
            "Long" | "__cedar::Long" => Some(Primitive::Long),
            "Bool" | "Boolean" | "__cedar::Bool" => Some(Primitive::Bool),
            _ => None,
        }
    };
    for (namespace, body) in namespaces {
        let Some(actions) = body.get("actions").and_then(Value::as_object) else {
            continue;
        };
        for (name, declaration) in actions {
            let Some(context) = declaration
                .get("appliesTo")
                .and_then(|applies| applies.get("context"))
            else {
                continue;
            };
            if context.get("type").and_then(Value::as_str) != Some("Record") {
                continue;
            }
            let Some(attributes) = context.get("attributes").and_then(Value::as_object) else {
                continue;
            };
            let typed: HashMap<String, Primitive> = attributes
                .iter()
                .filter_map(|(attribute, declared)| {
                    primitive(declared).map(|kind| (attribute.clone(), kind))
                })
                .collect();
            out.insert(action_uid_text(namespace, name), typed);
        }
    }
    out
}
