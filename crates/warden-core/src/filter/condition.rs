//! The condition tree of a data-filter plan, its simplification, and its evaluation against a
//! Cedar entity (how Warden answers a resource search from its own entity data, and the
//! reference the differential tests compare per-row decisions with).
//!
//! Meaning, for a resource entity `r` with the declared attributes of its type:
//! - `Compare { field, op, value }`: `r.field op value` (`eq`/`ne` for every value, the order
//!   operators for `Long`s only);
//! - `InSet { field, values }`: `r.field` is one of `values`;
//! - `Contains*`: the set `r.field` contains the value, any or all of the values;
//! - `Has { field }`: `r` has the (optional) attribute;
//! - `IdIn { ids }`: `r`'s own id is one of `ids`;
//! - `MemberOf { entity }`: `r` is `entity` or one of its descendants (Cedar's `in`).
//!
//! A policy that passed schema validation only reads an optional attribute under its `has`
//! guard, so a condition never compares a field that is absent; if it did, the comparison is
//! false (as SQL's comparison with `NULL` is not true).

use cedar_policy::{Entities, Entity, EntityUid, EvalResult};

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl CompareOp {
    /// The wire name: `eq`, `ne`, `lt`, `le`, `gt`, `ge`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
        }
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn swapped(self) -> CompareOp {
        match self {
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
            other => other,
        }
    }

    /// Whether `a op b` holds for `a.cmp(b) == ordering`.
    pub(crate) fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            CompareOp::Eq => ordering == Equal,
            CompareOp::Ne => ordering != Equal,
            CompareOp::Lt => ordering == Less,
            CompareOp::Le => ordering != Greater,
            CompareOp::Gt => ordering == Greater,
            CompareOp::Ge => ordering != Less,
        }
    }
}

/// A value a condition compares with: a Cedar primitive or an entity reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FilterValue {
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Long(i64),
    /// A string.
    String(String),
    /// An entity reference (an application column holds its id).
    Entity(EntityUid),
}

impl FilterValue {
    fn of(value: &EvalResult) -> Option<FilterValue> {
        match value {
            EvalResult::Bool(b) => Some(FilterValue::Bool(*b)),
            EvalResult::Long(n) => Some(FilterValue::Long(*n)),
            EvalResult::String(s) => Some(FilterValue::String(s.clone())),
            EvalResult::EntityUid(uid) => Some(FilterValue::Entity(uid.clone())),
            _ => None,
        }
    }
}

/// A condition over one resource's fields. Built simplified: constants only ever stand alone
/// (a plan's condition is never a constant; see [`crate::filter::PlanOutcome`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Always true or always false.
    Const(bool),
    /// Every one holds (at least two).
    And(Vec<Condition>),
    /// At least one holds (at least two).
    Or(Vec<Condition>),
    /// It does not hold.
    Not(Box<Condition>),
    /// `field op value`.
    Compare {
        /// The resource attribute.
        field: String,
        /// The operator.
        op: CompareOp,
        /// The value.
        value: FilterValue,
    },
    /// The field's value is one of the values.
    InSet {
        /// The resource attribute.
        field: String,
        /// The values (at least one).
        values: Vec<FilterValue>,
    },
    /// The set-valued field contains the value.
    Contains {
        /// The resource attribute (a set).
        field: String,
        /// The value.
        value: FilterValue,
    },
    /// The set-valued field contains at least one of the values.
    ContainsAny {
        /// The resource attribute (a set).
        field: String,
        /// The values.
        values: Vec<FilterValue>,
    },
    /// The set-valued field contains every one of the values.
    ContainsAll {
        /// The resource attribute (a set).
        field: String,
        /// The values.
        values: Vec<FilterValue>,
    },
    /// The resource has the optional attribute.
    Has {
        /// The resource attribute.
        field: String,
    },
    /// The resource's own id is one of these.
    IdIn {
        /// The ids (at least one).
        ids: Vec<String>,
    },
    /// The resource is this entity or one of its descendants.
    MemberOf {
        /// The ancestor.
        entity: EntityUid,
    },
}

impl Condition {
    /// `a && b`, simplified.
    pub fn and(parts: impl IntoIterator<Item = Condition>) -> Condition {
        let mut out = Vec::new();
        for part in parts {
            match part {
                Condition::Const(true) => {}
                Condition::Const(false) => return Condition::Const(false),
                Condition::And(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Condition::Const(true),
            1 => out.pop().unwrap_or(Condition::Const(true)),
            _ => Condition::And(out),
        }
    }

    /// `a || b`, simplified.
    pub fn or(parts: impl IntoIterator<Item = Condition>) -> Condition {
        let mut out = Vec::new();
        for part in parts {
            match part {
                Condition::Const(false) => {}
                Condition::Const(true) => return Condition::Const(true),
                Condition::Or(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Condition::Const(false),
            1 => out.pop().unwrap_or(Condition::Const(false)),
            _ => Condition::Or(out),
        }
    }

    /// `!a`, simplified.
    pub fn negate(inner: Condition) -> Condition {
        match inner {
            Condition::Const(b) => Condition::Const(!b),
            Condition::Not(inner) => *inner,
            Condition::Compare {
                field,
                op: CompareOp::Eq,
                value,
            } => Condition::Compare {
                field,
                op: CompareOp::Ne,
                value,
            },
            Condition::Compare {
                field,
                op: CompareOp::Ne,
                value,
            } => Condition::Compare {
                field,
                op: CompareOp::Eq,
                value,
            },
            other => Condition::Not(Box::new(other)),
        }
    }

    /// The constant this condition is, if it is one.
    pub fn as_const(&self) -> Option<bool> {
        match self {
            Condition::Const(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether the condition holds for `resource`, whose ancestors `entities` knows.
    pub fn holds(&self, resource: &Entity, entities: &Entities) -> bool {
        let attr = |field: &str| -> Option<FilterValue> {
            resource
                .attr(field)
                .and_then(Result::ok)
                .and_then(|value| FilterValue::of(&value))
        };
        let set = |field: &str| -> Option<Vec<FilterValue>> {
            match resource.attr(field)?.ok()? {
                EvalResult::Set(set) => Some(
                    set.iter()
                        .map(|value| FilterValue::of(value).ok_or(()))
                        .collect::<Result<Vec<_>, ()>>()
                        .ok()?,
                ),
                _ => None,
            }
        };
        match self {
            Condition::Const(b) => *b,
            Condition::And(parts) => parts.iter().all(|part| part.holds(resource, entities)),
            Condition::Or(parts) => parts.iter().any(|part| part.holds(resource, entities)),
            Condition::Not(inner) => !inner.holds(resource, entities),
            Condition::Compare { field, op, value } => match (attr(field), value) {
                (Some(FilterValue::Long(have)), FilterValue::Long(want)) => {
                    op.holds(have.cmp(want))
                }
                (Some(have), want) => match op {
                    CompareOp::Eq => &have == want,
                    CompareOp::Ne => &have != want,
                    _ => false,
                },
                (None, _) => false,
            },
            Condition::InSet { field, values } => {
                attr(field).is_some_and(|have| values.contains(&have))
            }
            Condition::Contains { field, value } => {
                set(field).is_some_and(|have| have.contains(value))
            }
            Condition::ContainsAny { field, values } => {
                set(field).is_some_and(|have| values.iter().any(|value| have.contains(value)))
            }
            Condition::ContainsAll { field, values } => {
                set(field).is_some_and(|have| values.iter().all(|value| have.contains(value)))
            }
            Condition::Has { field } => resource.attr(field).is_some(),
            Condition::IdIn { ids } => {
                let uid = resource.uid();
                ids.iter().any(|id| id.as_str() == uid.id().unescaped())
            }
            Condition::MemberOf { entity } => {
                let uid = resource.uid();
                &uid == entity || entities.is_ancestor_of(entity, &uid)
            }
        }
    }

    /// Whether evaluating the condition reads the resource's ancestors (`MemberOf`).
    pub fn needs_ancestors(&self) -> bool {
        match self {
            Condition::And(parts) | Condition::Or(parts) => {
                parts.iter().any(Condition::needs_ancestors)
            }
            Condition::Not(inner) => inner.needs_ancestors(),
            Condition::MemberOf { .. } => true,
            _ => false,
        }
    }

    /// The number of nodes (for limits and tests).
    pub fn size(&self) -> usize {
        match self {
            Condition::And(parts) | Condition::Or(parts) => {
                1 + parts.iter().map(Condition::size).sum::<usize>()
            }
            Condition::Not(inner) => 1 + inner.size(),
            _ => 1,
        }
    }
}

impl std::fmt::Display for FilterValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterValue::Bool(b) => write!(f, "{b}"),
            FilterValue::Long(n) => write!(f, "{n}"),
            FilterValue::String(s) => write!(f, "{s:?}"),
            FilterValue::Entity(uid) => write!(f, "{uid}"),
        }
    }
}

fn list(f: &mut std::fmt::Formatter<'_>, values: &[FilterValue]) -> std::fmt::Result {
    write!(f, "[")?;
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{value}")?;
    }
    write!(f, "]")
}

/// The condition in Cedar-like words, for the decision log and people.
impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let joined = |f: &mut std::fmt::Formatter<'_>, parts: &[Condition], op: &str| {
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                match part {
                    Condition::And(_) | Condition::Or(_) => write!(f, "({part})")?,
                    _ => write!(f, "{part}")?,
                }
            }
            Ok(())
        };
        match self {
            Condition::Const(b) => write!(f, "{b}"),
            Condition::And(parts) => joined(f, parts, "&&"),
            Condition::Or(parts) => joined(f, parts, "||"),
            Condition::Not(inner) => write!(f, "!({inner})"),
            Condition::Compare { field, op, value } => {
                let symbol = match op {
                    CompareOp::Eq => "==",
                    CompareOp::Ne => "!=",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                };
                write!(f, "resource.{field} {symbol} {value}")
            }
            Condition::InSet { field, values } => {
                write!(f, "resource.{field} in ")?;
                list(f, values)
            }
            Condition::Contains { field, value } => {
                write!(f, "resource.{field}.contains({value})")
            }
            Condition::ContainsAny { field, values } => {
                write!(f, "resource.{field}.containsAny(")?;
                list(f, values)?;
                write!(f, ")")
            }
            Condition::ContainsAll { field, values } => {
                write!(f, "resource.{field}.containsAll(")?;
                list(f, values)?;
                write!(f, ")")
            }
            Condition::Has { field } => write!(f, "resource has {field}"),
            Condition::IdIn { ids } => write!(f, "resource id in {ids:?}"),
            Condition::MemberOf { entity } => write!(f, "resource in {entity}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(field: &str, value: &str) -> Condition {
        Condition::Compare {
            field: field.into(),
            op: CompareOp::Eq,
            value: FilterValue::String(value.into()),
        }
    }

    #[test]
    fn constants_fold_away_and_nesting_flattens() {
        assert_eq!(
            Condition::and([Condition::Const(true), eq("a", "1")]),
            eq("a", "1")
        );
        assert_eq!(
            Condition::and([eq("a", "1"), Condition::Const(false)]),
            Condition::Const(false)
        );
        assert_eq!(
            Condition::or([Condition::Const(false), Condition::Const(false)]),
            Condition::Const(false)
        );
        assert_eq!(
            Condition::or([eq("a", "1"), Condition::or([eq("b", "2"), eq("c", "3")])]),
            Condition::Or(vec![eq("a", "1"), eq("b", "2"), eq("c", "3")])
        );
        assert_eq!(
            Condition::negate(Condition::negate(eq("a", "1"))),
            eq("a", "1")
        );
        assert!(matches!(
            Condition::negate(eq("a", "1")),
            Condition::Compare {
                op: CompareOp::Ne,
                ..
            }
        ));
    }
}
