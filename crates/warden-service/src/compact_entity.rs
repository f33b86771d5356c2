//! One stored entity in a few hundred bytes, rebuilt as a Cedar entity when a decision needs it.
//!
//! A parsed Cedar entity costs about 4 KB in memory (its attribute map, parent set and uids are
//! general-purpose structures); a million of them would not fit the memory budget of issue #20
//! (1 KB per entity). A stored entity is therefore kept as [`Compact`]: its values with entity
//! types and attribute names interned ([`Names`]), built from the entity *after* the schema
//! validated it (from Cedar's own JSON of it, so every value is already in its typed form), and
//! rebuilt with `Entity::new_with_tags` (about 1 µs) when a decision's slice includes it. An
//! entity with a value this module does not know how to keep is kept parsed instead.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use foldhash::fast::RandomState;
use serde_json::{Map, Value};
use warden_core::cedar_policy::{
    Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression,
};

/// An entity as a compact key: its interned type and its id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Index into [`Names`]' types.
    pub entity_type: u32,
    /// The id, unescaped.
    pub id: Box<str>,
}

/// A value as stored.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Bool(bool),
    Long(i64),
    Str(Box<str>),
    Entity(Key),
    Set(Box<[Val]>),
    Record(Fields),
    Extension { function: Arc<str>, arg: Box<str> },
}

/// Named values (attributes, tags, record fields).
type Fields = Box<[(Arc<str>, Val)]>;

/// A stored entity, compact.
#[derive(Clone, Debug, PartialEq)]
pub struct Compact {
    attrs: Fields,
    tags: Fields,
    parents: Box<[Key]>,
}

/// Interned entity types, attribute names and extension function names.
#[derive(Debug, Default)]
pub struct Names {
    types: Vec<EntityTypeName>,
    type_index: HashMap<EntityTypeName, u32, RandomState>,
    strings: HashSet<Arc<str>, RandomState>,
}

impl Names {
    /// The key of a uid (its type interned).
    pub fn key(&mut self, uid: &EntityUid) -> Key {
        Key {
            entity_type: self.type_of(uid.type_name()),
            id: uid.id().unescaped().into(),
        }
    }

    /// The key of a uid, when its type was ever interned (else nothing stored has it).
    pub fn find(&self, uid: &EntityUid) -> Option<Key> {
        Some(Key {
            entity_type: *self.type_index.get(uid.type_name())?,
            id: uid.id().unescaped().into(),
        })
    }

    fn type_of(&mut self, type_name: &EntityTypeName) -> u32 {
        if let Some(index) = self.type_index.get(type_name) {
            return *index;
        }
        let index = u32::try_from(self.types.len()).unwrap_or(u32::MAX);
        self.types.push(type_name.clone());
        self.type_index.insert(type_name.clone(), index);
        index
    }

    /// A tenant name, shared by every entity of the tenant.
    pub fn intern_tenant(&mut self, tenant: &str) -> Arc<str> {
        self.intern(tenant)
    }

    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(known) = self.strings.get(text) {
            return Arc::clone(known);
        }
        let new: Arc<str> = Arc::from(text);
        self.strings.insert(Arc::clone(&new));
        new
    }

    /// The uid of a key.
    pub fn uid(&self, key: &Key) -> Option<EntityUid> {
        let type_name = self.types.get(usize::try_from(key.entity_type).ok()?)?;
        Some(EntityUid::from_type_name_and_id(
            type_name.clone(),
            EntityId::new(&*key.id),
        ))
    }

    fn uid_of_json(&mut self, value: &Value) -> Option<Key> {
        let type_name: EntityTypeName = value.get("type")?.as_str()?.parse().ok()?;
        Some(Key {
            entity_type: self.type_of(&type_name),
            id: value.get("id")?.as_str()?.into(),
        })
    }

    fn value(&mut self, json: &Value) -> Option<Val> {
        Some(match json {
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Long(n.as_i64()?),
            Value::String(s) => Val::Str(s.as_str().into()),
            Value::Array(items) => Val::Set(
                items
                    .iter()
                    .map(|item| self.value(item))
                    .collect::<Option<Vec<_>>>()?
                    .into_boxed_slice(),
            ),
            Value::Object(map) => {
                if let Some(uid) = map.get("__entity") {
                    Val::Entity(self.uid_of_json(uid)?)
                } else if let Some(call) = map.get("__extn") {
                    Val::Extension {
                        function: self.intern(call.get("fn")?.as_str()?),
                        arg: call.get("arg")?.as_str()?.into(),
                    }
                } else {
                    Val::Record(self.record(map)?)
                }
            }
            Value::Null => return None,
        })
    }

    fn record(&mut self, map: &Map<String, Value>) -> Option<Fields> {
        let mut fields = Vec::with_capacity(map.len());
        for (name, value) in map {
            fields.push((self.intern(name), self.value(value)?));
        }
        Some(fields.into_boxed_slice())
    }

    /// The compact form of an entity the schema validated, or `None` when it holds a value
    /// this module does not keep (it is then kept parsed).
    pub fn compact(&mut self, entity: &Entity) -> Option<Compact> {
        let json = entity.to_json_value().ok()?;
        let compact = self.compact_json(&json)?;
        // Kept only if it rebuilds to the very entity the schema validated.
        let rebuilt = self.rebuild(&entity.uid(), &compact)?;
        rebuilt.deep_eq(entity).then_some(compact)
    }

    /// The compact form of Cedar's own JSON of an entity (`attrs`, `parents`, `tags`), as
    /// `Entity::to_json_value` writes it after a schema validated the entity; `None` for a
    /// value this module does not keep. Only for JSON known to be that (see
    /// `EntityRecord::canonical_for`): other JSON may mean something else under a schema.
    pub fn compact_json(&mut self, json: &Value) -> Option<Compact> {
        let empty = Map::new();
        let attrs = json
            .get("attrs")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let tags = json
            .get("tags")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut parents = Vec::new();
        for parent in json.get("parents").and_then(Value::as_array)? {
            parents.push(self.uid_of_json(parent.get("__entity").unwrap_or(parent))?);
        }
        Some(Compact {
            attrs: self.record(attrs)?,
            tags: self.record(tags)?,
            parents: parents.into_boxed_slice(),
        })
    }

    fn expression(&self, value: &Val) -> Option<RestrictedExpression> {
        Some(match value {
            Val::Bool(b) => RestrictedExpression::new_bool(*b),
            Val::Long(n) => RestrictedExpression::new_long(*n),
            Val::Str(s) => RestrictedExpression::new_string(s.to_string()),
            Val::Entity(key) => RestrictedExpression::new_entity_uid(self.uid(key)?),
            Val::Set(items) => RestrictedExpression::new_set(
                items
                    .iter()
                    .map(|item| self.expression(item))
                    .collect::<Option<Vec<_>>>()?,
            ),
            Val::Record(fields) => RestrictedExpression::new_record(
                fields
                    .iter()
                    .map(|(name, value)| Some((name.to_string(), self.expression(value)?)))
                    .collect::<Option<Vec<_>>>()?,
            )
            .ok()?,
            Val::Extension { function, arg } => match &**function {
                "ip" => RestrictedExpression::new_ip(arg),
                "decimal" => RestrictedExpression::new_decimal(arg),
                "datetime" => RestrictedExpression::new_datetime(arg),
                "duration" => RestrictedExpression::new_duration(arg),
                _ => return None,
            },
        })
    }

    /// The Cedar entity of a compact one.
    pub fn rebuild(&self, uid: &EntityUid, compact: &Compact) -> Option<Entity> {
        let named = |fields: &[(Arc<str>, Val)]| {
            fields
                .iter()
                .map(|(name, value)| Some((name.to_string(), self.expression(value)?)))
                .collect::<Option<Vec<_>>>()
        };
        let parents = compact
            .parents
            .iter()
            .map(|key| self.uid(key))
            .collect::<Option<Vec<_>>>()?;
        Entity::new_with_tags(
            uid.clone(),
            named(&compact.attrs)?,
            parents,
            named(&compact.tags)?,
        )
        .ok()
    }

    /// Every entity a compact entity refers to: its parents and the entity values in its
    /// attributes and tags.
    pub fn refs(&self, compact: &Compact, into: &mut Vec<EntityUid>) {
        fn walk(names: &Names, value: &Val, into: &mut Vec<EntityUid>) {
            match value {
                Val::Entity(key) => into.extend(names.uid(key)),
                Val::Set(items) => items.iter().for_each(|item| walk(names, item, into)),
                Val::Record(fields) => fields
                    .iter()
                    .for_each(|(_, value)| walk(names, value, into)),
                _ => {}
            }
        }
        into.extend(compact.parents.iter().filter_map(|key| self.uid(key)));
        for (_, value) in compact.attrs.iter().chain(compact.tags.iter()) {
            walk(self, value, into);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use serde_json::json;

    #[test]
    fn an_entity_rebuilds_to_itself_with_every_kind_of_value() {
        let entity = Entity::from_json_value(
            json!({
                "uid": {"type": "Doc", "id": "a/\u{8}b"},
                "attrs": {
                    "owner": {"__entity": {"type": "User", "id": "a/u1"}},
                    "n": -3, "ok": true, "label": "x\"y",
                    "set": [1, 2, {"__entity": {"type": "Team", "id": "t"}}],
                    "meta": {"lead": {"__entity": {"type": "User", "id": "a/u2"}}, "deep": {"k": "v"}},
                    "ip": {"__extn": {"fn": "ip", "arg": "10.0.0.0/8"}},
                    "price": {"__extn": {"fn": "decimal", "arg": "1.25"}},
                },
                "parents": [{"type": "Folder", "id": "a/f"}, {"type": "Team", "id": "t"}],
                "tags": {"tier": "gold"},
            }),
            None,
        )
        .unwrap();
        let mut names = Names::default();
        let compact = names.compact(&entity).expect("kept compact");
        let rebuilt = names.rebuild(&entity.uid(), &compact).unwrap();
        assert!(rebuilt.deep_eq(&entity), "{rebuilt:?}\n{entity:?}");
        let mut refs = Vec::new();
        names.refs(&compact, &mut refs);
        let refs: std::collections::BTreeSet<String> =
            refs.iter().map(ToString::to_string).collect();
        let wanted: std::collections::BTreeSet<String> = [
            "Folder::\"a/f\"",
            "Team::\"t\"",
            "User::\"a/u1\"",
            "User::\"a/u2\"",
        ]
        .map(str::to_owned)
        .into_iter()
        .collect();
        assert_eq!(refs, wanted);
    }
}
