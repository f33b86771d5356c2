//! What a data filter needs to know of the resource type: each attribute's type and whether it
//! is required, read from Cedar's own validator schema (common types expanded, type names
//! resolved as Cedar resolves them), never from the schema's text.

use std::collections::BTreeMap;

use cedar_policy::{EntityTypeName, Schema};
use cedar_policy_core::validator::types::{EntityKind, Type};

/// An attribute's declared type, as far as a filter compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrKind {
    /// `Bool`.
    Bool,
    /// `Long`.
    Long,
    /// `String`.
    String,
    /// One entity type, fully qualified as Cedar writes it.
    Entity(String),
    /// `Set<…>`.
    Set(Box<AttrKind>),
    /// A record, an extension type, or an entity type Cedar does not narrow to one.
    Other,
}

/// The resource type's attributes.
#[derive(Clone, Debug, Default)]
pub struct FilterShape {
    /// Attribute name → its kind.
    pub kinds: BTreeMap<String, AttrKind>,
    /// Attribute name → required.
    pub attributes: BTreeMap<String, bool>,
}

fn kind_of(declared: &Type) -> AttrKind {
    match declared {
        Type::Bool(_) => AttrKind::Bool,
        Type::Long => AttrKind::Long,
        Type::String => AttrKind::String,
        Type::Entity(EntityKind::Entity(lub)) => match lub.get_single_entity() {
            Some(entity_type) => AttrKind::Entity(entity_type.to_string()),
            None => AttrKind::Other,
        },
        Type::Set {
            element_type: Some(element),
        } => AttrKind::Set(Box::new(kind_of(element))),
        _ => AttrKind::Other,
    }
}

/// The shape of `entity_type` in `schema`, or `None` when the schema does not declare it.
pub fn shape_of(schema: &Schema, entity_type: &EntityTypeName) -> Option<FilterShape> {
    let validator: &cedar_policy_core::validator::ValidatorSchema = schema.as_ref();
    let declared = validator.get_entity_type(entity_type.as_ref())?;
    let mut shape = FilterShape::default();
    for (name, attribute) in declared.attributes().iter() {
        shape
            .kinds
            .insert(name.to_string(), kind_of(&attribute.attr_type));
        shape
            .attributes
            .insert(name.to_string(), attribute.is_required);
    }
    Some(shape)
}
