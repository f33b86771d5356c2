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
