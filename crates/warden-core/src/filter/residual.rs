//! One residual Cedar expression (what typed partial evaluation left of a policy when only the
//! resource is unknown) into a [`Condition`].
//!
//! SECURITY-SENSITIVE: the translation must mean exactly what Cedar means. It folds what is
//! known (literals, the attributes of known entities, the resource's type and, inside one
//! tenant, the resource's tenant attribute) and writes the rest as comparisons of the
//! resource's own fields. Anything else (an attribute of an attribute, arithmetic, `like`,
//! tags, extension functions, a residual error) is refused with a sentence a policy author can
//! act on: the caller reports it with the policy's id and never widens the filter.
//!
//! Equality follows Cedar: values of different types (a `String` and a `Long`, entities of two
//! types) are never equal, so such a comparison folds to `false` using the schema's declared
//! attribute types.

use cedar_policy::pst::{BinaryOp, Expr, Literal, UnaryOp, Var};
use cedar_policy::{Entities, EntityTypeName, EntityUid, EvalResult};

use super::condition::{CompareOp, Condition, FilterValue};
use super::shape::{AttrKind, FilterShape};

/// What the translation knows besides the expression.
pub struct Known<'a> {
    /// The unknown entity's type (the resource's; the principal's for a subject plan).
    pub resource_type: &'a EntityTypeName,
    /// The unknown entity is the principal (a subject plan), not the resource.
    pub unknown_principal: bool,
    /// What the schema declares for the unknown entity's type.
    pub shape: &'a FilterShape,
    /// The entities the request knows (the principal's, the policies' literals).
    pub entities: &'a Entities,
    /// Inside one tenant: the tenant attribute and the tenant it holds.
    pub tenant: Option<(&'a str, &'a EntityUid)>,
}

/// A translated sub-expression.
#[derive(Clone, Debug)]
enum Term {
    Value(FilterValue),
    Field(String),
    Resource,
    Set(Vec<Term>),
    Cond(Condition),
}

type Result<T> = std::result::Result<T, String>;

/// The residual as a condition, or why it cannot be written as one.
pub fn translate(expr: &Expr, known: &Known<'_>) -> Result<Condition> {
    let term = term(expr, known, 0)?;
    as_condition(term, known)
}

/// Nesting beyond this is refused (policies are bounded in nesting before Cedar parses them;
/// this keeps the translation's recursion bounded whatever the residual).
const MAX_DEPTH: usize = 64;

/// A residual's entity literal as an `EntityUid`, converted (not parsed again: Cedar's parser
/// costs more than the rest of the translation).
fn entity_uid(uid: &cedar_policy::pst::EntityUID) -> Result<EntityUid> {
    let core: cedar_policy_core::ast::EntityUID = uid.clone().into();
    Ok(EntityUid::from(core))
}

fn term(expr: &Expr, known: &Known<'_>, depth: usize) -> Result<Term> {
    if depth > MAX_DEPTH {
        return Err("the condition is nested too deeply".to_owned());
    }
    let sub = |expr: &Expr| term(expr, known, depth + 1);
    match expr {
        Expr::Literal(Literal::Bool(b)) => Ok(Term::Value(FilterValue::Bool(*b))),
        Expr::Literal(Literal::Long(n)) => Ok(Term::Value(FilterValue::Long(*n))),
        Expr::Literal(Literal::String(s)) => Ok(Term::Value(FilterValue::String(s.to_string()))),
        Expr::Literal(Literal::EntityUID(uid)) => {
            Ok(Term::Value(FilterValue::Entity(entity_uid(uid)?)))
        }
        // `Term::Resource` stands for the unknown entity, whichever variable it is.
        Expr::Var(Var::Resource) if !known.unknown_principal => Ok(Term::Resource),
        Expr::Var(Var::Principal) if known.unknown_principal => Ok(Term::Resource),
        Expr::Var(var) => Err(format!(
            "it reads `{}`, which should be known when planning",
            match var {
                Var::Principal => "principal",
                Var::Action => "action",
                Var::Context => "context",
                Var::Resource => "resource",
            }
        )),
        Expr::GetAttr { expr, attr } => get_attr(sub(expr)?, attr, known),
        Expr::HasAttr { expr, attrs } => {
            if attrs.len() != 1 {
                return Err(format!(
                    "`has {}` tests a nested attribute; a filter tests the resource's own fields",
                    attrs
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(".")
                ));
            }
            has_attr(sub(expr)?, &attrs.head, known)
        }
        Expr::UnaryOp {
            op: UnaryOp::Not,
            expr,
        } => Ok(Term::Cond(Condition::negate(as_condition(
            sub(expr)?,
            known,
        )?))),
        Expr::UnaryOp { op, .. } => Err(format!(
            "`{op}` over the resource cannot be written as a filter"
        )),
        // `&&` and `||` short-circuit as Cedar evaluates them: a right operand that is never
        // evaluated (it may be one partial evaluation knows errors) is not translated.
        Expr::BinaryOp {
            op: op @ (BinaryOp::And | BinaryOp::Or),
            left,
            right,
        } => {
            let left = as_condition(sub(left)?, known)?;
            let decided = *op == BinaryOp::Or;
            if left == Condition::Const(decided) {
                return Ok(Term::Cond(left));
            }
            let right = as_condition(sub(right)?, known)?;
            Ok(Term::Cond(if *op == BinaryOp::And {
                Condition::and([left, right])
            } else {
                Condition::or([left, right])
            }))
        }
        Expr::BinaryOp { op, left, right } => binary(*op, sub(left)?, sub(right)?, known),
        Expr::Is {
            expr,
            entity_type,
            in_expr,
        } => {
            let type_matches = |uid_type: &str| uid_type == entity_type.to_string();
            let is = match sub(expr)? {
                Term::Resource => Condition::Const(type_matches(&known.resource_type.to_string())),
                Term::Value(FilterValue::Entity(uid)) => {
                    Condition::Const(type_matches(&uid.type_name().to_string()))
                }
                _ => return Err("`is` tests something other than an entity".to_owned()),
            };
            match in_expr {
                None => Ok(Term::Cond(is)),
                Some(in_expr) => {
                    let within = binary(BinaryOp::In, sub(expr)?, sub(in_expr)?, known)?;
                    Ok(Term::Cond(Condition::and([
                        is,
                        as_condition(within, known)?,
                    ])))
                }
            }
        }
        Expr::IfThenElse {
            cond,
            then_expr,
            else_expr,
        } => {
            let cond = as_condition(sub(cond)?, known)?;
            // Only the branch taken is evaluated.
            match cond {
                Condition::Const(true) => {
                    return Ok(Term::Cond(as_condition(sub(then_expr)?, known)?));
                }
                Condition::Const(false) => {
                    return Ok(Term::Cond(as_condition(sub(else_expr)?, known)?));
                }
                _ => {}
            }
            let then_cond = as_condition(sub(then_expr)?, known)?;
            let else_cond = as_condition(sub(else_expr)?, known)?;
            Ok(Term::Cond(Condition::or([
                Condition::and([cond.clone(), then_cond]),
                Condition::and([Condition::negate(cond), else_cond]),
            ])))
        }
        Expr::Set(items) => Ok(Term::Set(
            items
                .iter()
                .map(|item| sub(item))
                .collect::<Result<Vec<_>>>()?,
        )),
        Expr::Like { .. } => {
            Err("`like` over a resource field cannot be written as a filter".to_owned())
        }
        Expr::Record(_) => Err("a record cannot be written as a filter".to_owned()),
        Expr::Unknown { name } => Err(format!("the unknown `{name}` cannot be filtered")),
        Expr::Slot(_) => Err("an unlinked template slot cannot be filtered".to_owned()),
        _ => Err(
            "part of the condition errors or uses an operator a filter cannot express".to_owned(),
        ),
    }
}

fn get_attr(target: Term, attr: &str, known: &Known<'_>) -> Result<Term> {
    match target {
        Term::Resource => {
            if let Some((tenant_attr, tenant)) = known.tenant
                && tenant_attr == attr
            {
                return Ok(Term::Value(FilterValue::Entity(tenant.clone())));
            }
            if !known.shape.kinds.contains_key(attr) {
                return Err(format!(
                    "it reads `resource.{attr}`, which the schema does not declare for {}",
                    known.resource_type
                ));
            }
            Ok(Term::Field(attr.to_owned()))
        }
        Term::Value(FilterValue::Entity(uid)) => {
            let entity = known.entities.get(&uid).ok_or_else(|| {
                format!("it reads `{attr}` of {uid}, which the entity data does not have")
            })?;
            let value = match entity.attr(attr) {
                Some(Ok(value)) => value,
                _ => {
                    return Err(format!(
                        "it reads `{attr}` of {uid}, which {uid} does not have"
                    ));
                }
            };
            value_term(&value)
                .ok_or_else(|| format!("`{attr}` of {uid} is a value a filter cannot compare with"))
        }
        Term::Field(field) => Err(format!(
            "it reads `resource.{field}.{attr}`: a filter can only compare the resource's own fields"
        )),
        _ => Err(format!(
            "it reads `{attr}` of something that is not an entity"
        )),
    }
}

fn value_term(value: &EvalResult) -> Option<Term> {
    match value {
        EvalResult::Bool(b) => Some(Term::Value(FilterValue::Bool(*b))),
        EvalResult::Long(n) => Some(Term::Value(FilterValue::Long(*n))),
        EvalResult::String(s) => Some(Term::Value(FilterValue::String(s.clone()))),
        EvalResult::EntityUid(uid) => Some(Term::Value(FilterValue::Entity(uid.clone()))),
        EvalResult::Set(set) => set
            .iter()
            .map(value_term)
            .collect::<Option<Vec<_>>>()
            .map(Term::Set),
        _ => None,
    }
}

fn has_attr(target: Term, attr: &str, known: &Known<'_>) -> Result<Term> {
    match target {
        Term::Resource => {
            if known
                .tenant
                .is_some_and(|(tenant_attr, _)| tenant_attr == attr)
            {
                return Ok(Term::Cond(Condition::Const(true)));
            }
            Ok(Term::Cond(match known.shape.attributes.get(attr) {
                None => Condition::Const(false),
                Some(true) => Condition::Const(true),
                Some(false) => Condition::Has {
                    field: attr.to_owned(),
                },
            }))
        }
        Term::Value(FilterValue::Entity(uid)) => {
            let entity = known.entities.get(&uid).ok_or_else(|| {
                format!("it tests `{attr}` of {uid}, which the entity data does not have")
            })?;
            Ok(Term::Cond(Condition::Const(entity.attr(attr).is_some())))
        }
        _ => Err(format!(
            "it tests `has {attr}` of something other than the resource"
        )),
    }
}

fn as_condition(term: Term, known: &Known<'_>) -> Result<Condition> {
    match term {
        Term::Cond(condition) => Ok(condition),
        Term::Value(FilterValue::Bool(b)) => Ok(Condition::Const(b)),
        Term::Field(field) => match known.shape.kinds.get(&field) {
            Some(AttrKind::Bool) => Ok(Condition::Compare {
                field,
                op: CompareOp::Eq,
                value: FilterValue::Bool(true),
            }),
            _ => Err(format!("`resource.{field}` is not a boolean")),
        },
        _ => Err("a non-boolean value stands where a condition should".to_owned()),
    }
}

/// Whether a value can be equal to a value of this declared kind (Cedar: values of different
/// types are never equal); `None` when the kind is one a filter does not compare.
fn comparable(kind: &AttrKind, value: &FilterValue) -> Option<bool> {
    Some(match (kind, value) {
        (AttrKind::Bool, FilterValue::Bool(_))
        | (AttrKind::Long, FilterValue::Long(_))
        | (AttrKind::String, FilterValue::String(_)) => true,
        (AttrKind::Entity(declared), FilterValue::Entity(uid)) => {
            uid.type_name().to_string() == *declared
        }
        (AttrKind::Set(_) | AttrKind::Other, _) => return None,
        _ => false,
    })
}

fn field_kind<'a>(field: &str, known: &'a Known<'_>) -> Result<&'a AttrKind> {
    known
        .shape
        .kinds
        .get(field)
        .ok_or_else(|| format!("`resource.{field}` is not declared by the schema"))
}

fn equal(left: Term, right: Term, known: &Known<'_>) -> Result<Condition> {
    match (left, right) {
        (Term::Field(field), Term::Value(value)) | (Term::Value(value), Term::Field(field)) => {
            let kind = field_kind(&field, known)?;
            match comparable(kind, &value) {
                Some(true) => Ok(Condition::Compare {
                    field,
                    op: CompareOp::Eq,
                    value,
                }),
                Some(false) => Ok(Condition::Const(false)),
                None => Err(format!(
                    "it compares `resource.{field}`, a set, record or extension value, with `==`"
                )),
            }
        }
        (Term::Resource, Term::Value(value)) | (Term::Value(value), Term::Resource) => {
            match value {
                FilterValue::Entity(uid) if uid.type_name() == known.resource_type => {
                    Ok(Condition::IdIn {
                        ids: vec![uid.id().unescaped().to_owned()],
                    })
                }
                _ => Ok(Condition::Const(false)),
            }
        }
        (Term::Resource, Term::Resource) => Ok(Condition::Const(true)),
        (Term::Value(a), Term::Value(b)) => Ok(Condition::Const(a == b)),
        (Term::Cond(a), Term::Cond(b)) => Ok(Condition::or([
            Condition::and([a.clone(), b.clone()]),
            Condition::and([Condition::negate(a), Condition::negate(b)]),
        ])),
        (Term::Cond(a), Term::Value(FilterValue::Bool(b)))
        | (Term::Value(FilterValue::Bool(b)), Term::Cond(a)) => {
            Ok(if b { a } else { Condition::negate(a) })
        }
        (Term::Cond(_), Term::Value(_)) | (Term::Value(_), Term::Cond(_)) => {
            Ok(Condition::Const(false))
        }
        (Term::Field(a), Term::Field(b)) => {
            Err(format!("it compares two resource fields (`{a}` and `{b}`)"))
        }
        _ => Err("it compares values a filter cannot write".to_owned()),
    }
}

fn order(op: CompareOp, left: Term, right: Term, known: &Known<'_>) -> Result<Condition> {
    let (field, op, value) = match (left, right) {
        (Term::Field(field), Term::Value(value)) => (field, op, value),
        (Term::Value(value), Term::Field(field)) => (field, op.swapped(), value),
        (Term::Value(FilterValue::Long(a)), Term::Value(FilterValue::Long(b))) => {
            return Ok(Condition::Const(op.holds(a.cmp(&b))));
        }
        _ => return Err("it orders values other than a field and a number".to_owned()),
    };
    match (field_kind(&field, known)?, &value) {
        (AttrKind::Long, FilterValue::Long(_)) => Ok(Condition::Compare { field, op, value }),
        _ => Err(format!(
            "it orders `resource.{field}` with a value that is not a number"
        )),
    }
}

/// The values of a literal set (every item known).
fn values(items: Vec<Term>) -> Result<Vec<FilterValue>> {
    items
        .into_iter()
        .map(|item| match item {
            Term::Value(value) => Ok(value),
            _ => Err("a set holds values a filter cannot write".to_owned()),
        })
        .collect()
}

fn element_kind<'a>(field: &str, known: &'a Known<'_>) -> Result<&'a AttrKind> {
    match field_kind(field, known)? {
        AttrKind::Set(element) => Ok(element),
        _ => Err(format!("`resource.{field}` is not a set")),
    }
}

fn binary(op: BinaryOp, left: Term, right: Term, known: &Known<'_>) -> Result<Term> {
    let condition = match op {
        BinaryOp::Eq => equal(left, right, known)?,
        BinaryOp::NotEq => Condition::negate(equal(left, right, known)?),
        BinaryOp::Less => order(CompareOp::Lt, left, right, known)?,
        BinaryOp::LessEq => order(CompareOp::Le, left, right, known)?,
        BinaryOp::Greater => order(CompareOp::Gt, left, right, known)?,
        BinaryOp::GreaterEq => order(CompareOp::Ge, left, right, known)?,
        BinaryOp::In => match (left, right) {
            (Term::Resource, Term::Value(FilterValue::Entity(ancestor))) => member_of(ancestor),
            (Term::Resource, Term::Set(items)) => Condition::or(
                values(items)?
                    .into_iter()
                    .map(|value| match value {
                        FilterValue::Entity(ancestor) => Ok(member_of(ancestor)),
                        _ => Err("`in` names something other than an entity".to_owned()),
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            (Term::Value(FilterValue::Entity(a)), Term::Value(FilterValue::Entity(b))) => {
                if a != b && known.entities.get(&a).is_none() {
                    // Its ancestors are not known here: refused rather than guessed.
                    return Err(format!(
                        "it tests the ancestors of {a}, which the entity data given does not have"
                    ));
                }
                Condition::Const(a == b || known.entities.is_ancestor_of(&b, &a))
            }
            (Term::Field(field), _) => {
                return Err(format!(
                    "it tests the ancestors of `resource.{field}`, which a filter does not know"
                ));
            }
            _ => return Err("`in` over values a filter cannot write".to_owned()),
        },
        BinaryOp::Contains => match (left, right) {
            (Term::Field(field), Term::Value(value)) => {
                match comparable(element_kind(&field, known)?, &value) {
                    Some(true) => Condition::Contains { field, value },
                    Some(false) => Condition::Const(false),
                    None => {
                        return Err(format!(
                            "`resource.{field}` holds values a filter does not compare"
                        ));
                    }
                }
            }
            (Term::Set(items), Term::Field(field)) => {
                let kind = field_kind(&field, known)?;
                let mut kept = Vec::new();
                for value in values(items)? {
                    match comparable(kind, &value) {
                        Some(true) => kept.push(value),
                        Some(false) => {}
                        None => {
                            return Err(format!(
                                "`resource.{field}` is a value a filter does not compare"
                            ));
                        }
                    }
                }
                if kept.is_empty() {
                    Condition::Const(false)
                } else {
                    Condition::InSet {
                        field,
                        values: kept,
                    }
                }
            }
            (Term::Set(items), Term::Resource) => {
                let ids: Vec<String> = values(items)?
                    .into_iter()
                    .filter_map(|value| match value {
                        FilterValue::Entity(uid) if uid.type_name() == known.resource_type => {
                            Some(uid.id().unescaped().to_owned())
                        }
                        _ => None,
                    })
                    .collect();
                if ids.is_empty() {
                    Condition::Const(false)
                } else {
                    Condition::IdIn { ids }
                }
            }
            (Term::Set(items), Term::Value(value)) => {
                Condition::Const(values(items)?.contains(&value))
            }
            _ => return Err("`contains` over values a filter cannot write".to_owned()),
        },
        BinaryOp::ContainsAny | BinaryOp::ContainsAll => match (left, right) {
            (Term::Field(field), Term::Set(items)) => {
                let element = element_kind(&field, known)?;
                let mut kept = Vec::new();
                let mut any_impossible = false;
                for value in values(items)? {
                    match comparable(element, &value) {
                        Some(true) => kept.push(value),
                        Some(false) => any_impossible = true,
                        None => {
                            return Err(format!(
                                "`resource.{field}` holds values a filter does not compare"
                            ));
                        }
                    }
                }
                if op == BinaryOp::ContainsAll {
                    if any_impossible {
                        Condition::Const(false)
                    } else if kept.is_empty() {
                        Condition::Const(true)
                    } else {
                        Condition::ContainsAll {
                            field,
                            values: kept,
                        }
                    }
                } else if kept.is_empty() {
                    Condition::Const(false)
                } else {
                    Condition::ContainsAny {
                        field,
                        values: kept,
                    }
                }
            }
            _ => {
                return Err(
                    "`containsAny`/`containsAll` over values a filter cannot write".to_owned(),
                );
            }
        },
        other => {
            return Err(format!(
                "the operator `{other:?}` over the resource cannot be written as a filter"
            ));
        }
    };
    Ok(Term::Cond(condition))
}

fn member_of(ancestor: EntityUid) -> Condition {
    Condition::MemberOf { entity: ancestor }
}
