"""Data-filter plans as SQLAlchemy 2 queries (extra `sqlalchemy`).

    field_map = FieldMap(
        id=Document.warden_id,  # a column (or expression) holding the Warden id
        fields={"tenant": Document.tenant, "owner": Document.owner,
                "classification": Document.classification},
        sets={"tags": set_table(DocumentTag.tag, DocumentTag.document_id == Document.id)},
        member_of={"Folder": in_tree(Document.folder_id, Folder.id, Folder.parent_id)},
    )
    plan = client.filter(token, "read", "Document")
    documents = session.scalars(authorized_select(Document, plan, field_map))

A plan (`warden.FilterPlan`) says which resources of one type a principal may act on, as a
condition over the resources' fields. This module writes that condition as a `WHERE` clause,
through a mapping the application writes out: every field, set field and `member_of` entity
type the plan names must be mapped, or rendering raises `FilterMappingError`. Nothing is
skipped or guessed, so the query is never broader than the plan.

What each part of a plan becomes:

- `always_denied`: `false()`; `always_allowed`: `true()` (only without tenancy);
- `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `in_set`: the comparison on the mapped column (an
  entity reference compares its id, which is what the column holds);
- `has`: `IS NOT NULL`;
- `contains`, `contains_any`, `contains_all`: the set field's predicate (`sets`), called once
  per value, combined with `OR` / `AND`;
- `id_in`: `IN` on the `id` mapping (or its callable, given the ids);
- `member_of`: the `member_of` mapping of the entity's type: a column that holds the
  resource's direct parent id (membership is `column == id`, exact only for a one-level
  hierarchy), or a callable given the entity id (`in_tree` for a nested one);
- `and`, `or`, `not`: the same in SQL.

SQL's `NULL` would make `NOT` differ from Cedar (`NOT (NULL = 'x')` is not true). Every
comparison on a column that can be `NULL` is therefore written as `col IS NOT NULL AND ...`,
so each part of the clause is true or false and `NOT` means what it means in the plan.
Callables given in `sets`, `member_of` and `id` must keep that rule too (an `EXISTS`, or an
`IN` guarded by `IS NOT NULL`, as `set_table` and `in_tree` do).

Tests: `clients/python/tests/test_sqlalchemy.py` (hand-written plans against SQLite), and the
differential test against the real server in
`examples/fastapi-docs/tests/test_filter_differential.py`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, assert_never

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    exists,
    false,
    not_,
    or_,
    select,
    true,
)

from warden.errors import FilterMappingError
from warden.models import (
    And,
    Compare,
    Condition,
    Contains,
    ContainsAll,
    ContainsAny,
    EntityRef,
    FilterPlan,
    FilterValue,
    Has,
    IdIn,
    InSet,
    MemberOf,
    Not,
    Or,
)

# A column, an ORM attribute, or an expression of them.
ColumnLike = SQLColumnExpression[Any]
# A filter value as the application's columns hold it (an entity reference is its id).
Scalar = str | int | bool
# "the resource's set field contains this value", for one resource row.
SetPredicate = Callable[[Scalar], ColumnElement[bool]]
# "the resource is in the entity with this id" (the entity itself or a descendant).
MemberPredicate = Callable[[str], ColumnElement[bool]]
# "the resource's own id is one of these".
IdPredicate = Callable[[Sequence[str]], ColumnElement[bool]]

_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


@dataclass(frozen=True)
class FieldMap:
    """How one resource type's fields are stored: what a plan may name, and nothing else.

    - `id`: the column (or expression) holding the resource's Warden id, e.g.
      `Document.tenant + "/" + Document.local_id`, or a callable given the ids of an `id_in`;
    - `fields`: a column per scalar attribute (an entity-valued one holds the entity's id);
    - `sets`: per set-valued attribute, a predicate "this row's set contains the value";
    - `member_of`: per entity type the resource can be in, a column holding the direct
      parent's id, or a callable given the entity id (see `in_tree`). A `member_of` of the
      resource's own type also needs an entry (it includes the entity itself);
    - `resource_type`: when given, a plan about another type is refused.
    """

    id: ColumnLike | IdPredicate
    fields: Mapping[str, ColumnLike] = field(default_factory=dict)
    sets: Mapping[str, SetPredicate] = field(default_factory=dict)
    member_of: Mapping[str, ColumnLike | MemberPredicate] = field(default_factory=dict)
    resource_type: str | None = None


def plan_to_where(plan: FilterPlan, field_map: FieldMap) -> ColumnElement[bool]:
    """The plan as a `WHERE` clause over the mapped model.

    Raises `FilterMappingError` when the plan names anything `field_map` does not map, or is
    about another resource type than `field_map.resource_type`.
    """
    if field_map.resource_type is not None and plan.resource_type != field_map.resource_type:
        raise FilterMappingError(
            f"the plan is about {plan.resource_type}, the field map about {field_map.resource_type}"
        )
    if plan.always_denied:
        return false()
    if plan.always_allowed:
        return true()
    if plan.condition_tree is None:
        raise FilterMappingError(f"the {plan.decision} plan has no condition")
    return condition_to_where(plan.condition_tree, field_map, plan.resource_type)


def authorized_select(model: Any, plan: FilterPlan, field_map: FieldMap) -> Select[Any]:
    """`select(model)` restricted to the rows the plan allows; add ordering, paging and
    further conditions to it as to any `Select`."""
    return select(model).where(plan_to_where(plan, field_map))


def condition_to_where(
    condition: Condition, field_map: FieldMap, resource_type: str
) -> ColumnElement[bool]:
    """One condition tree (of a plan about `resource_type`) as a `WHERE` clause."""
    return _Renderer(field_map, resource_type).render(condition)


def descendants(id_column: ColumnLike, parent_column: ColumnLike, root_id: str) -> Select[Any]:
    """The ids of every entity below `root_id` (not itself) in a hierarchy stored as an
    adjacency list (`parent_column` holds an entity's parent id): a recursive CTE (`UNION`,
    so a cycle in the data ends the walk rather than looping)."""
    tree = select(id_column).where(parent_column == root_id).cte(recursive=True)
    tree = tree.union(select(id_column).where(parent_column == tree.c[0]))
    return select(tree.c[0])


def in_tree(
    column: ColumnLike, id_column: ColumnLike, parent_column: ColumnLike
) -> MemberPredicate:
    """`member_of` for a resource whose `column` holds its direct parent's id, the parents
    nesting through `parent_column` (`Folder in [Folder]`): the resource is in entity `E`
    when its parent is `E` or one of `E`'s `descendants`."""

    def member(entity_id: str) -> ColumnElement[bool]:
        below = descendants(id_column, parent_column, entity_id)
        return and_(column.is_not(None), or_(column == entity_id, column.in_(below)))

    return member


def set_table(value_column: ColumnLike, *correlation: ColumnElement[bool]) -> SetPredicate:
    """A set field stored one element per row of another table: `value_column` is the element,
    `correlation` ties that table's rows to the resource row (e.g.
    `DocumentTag.document_id == Document.id`). Contains is an `EXISTS`."""
    if not correlation:
        raise ValueError("set_table needs the condition that ties the set's rows to the resource")

    def contains(value: Scalar) -> ColumnElement[bool]:
        return exists().where(*correlation, value_column == value)

    return contains


def _scalar(value: FilterValue) -> Scalar:
    return value.id if isinstance(value, EntityRef) else value


def _never_null(column: ColumnLike) -> bool:
    """Whether `column` is a table column declared `NOT NULL` (anything else may be `NULL`)."""
    clause = getattr(column, "__clause_element__", None)
    element = clause() if callable(clause) else column
    return isinstance(element, Column) and element.nullable is False


def _guarded(column: ColumnLike, clause: ColumnElement[bool]) -> ColumnElement[bool]:
    """`clause`, false rather than `NULL` where `column` is `NULL`."""
    if _never_null(column):
        return clause
    return and_(column.is_not(None), clause)


class _Renderer:
    def __init__(self, field_map: FieldMap, resource_type: str) -> None:
        self._map = field_map
        self._resource_type = resource_type

    def render(self, condition: Condition) -> ColumnElement[bool]:
        match condition:
            case And(args=args):
                return and_(true(), *(self.render(arg) for arg in args))
            case Or(args=args):
                return or_(false(), *(self.render(arg) for arg in args))
            case Not(arg=arg):
                return not_(self.render(arg))
            case Compare(op=op, field=name, value=value):
                column = self._field(name)
                compared: ColumnElement[bool] = _COMPARISONS[op](column, _scalar(value))
                return _guarded(column, compared)
            case InSet(field=name, values=values):
                column = self._field(name)
                if not values:
                    return false()
                return _guarded(column, column.in_([_scalar(v) for v in values]))
            case Contains(field=name, value=value):
                return self._set(name)(_scalar(value))
            case ContainsAny(field=name, values=values):
                contains = self._set(name)
                return or_(false(), *(contains(_scalar(v)) for v in values))
            case ContainsAll(field=name, values=values):
                contains = self._set(name)
                return and_(true(), *(contains(_scalar(v)) for v in values))
            case Has(field=name):
                return self._field(name).is_not(None)
            case IdIn(ids=ids):
                return self._ids(ids)
            case MemberOf(entity=entity):
                return self._member_of(entity)
            case _:
                assert_never(condition)

    def _field(self, name: str) -> ColumnLike:
        column = self._map.fields.get(name)
        if column is None:
            raise FilterMappingError(
                f"the plan compares the field `{name}` of {self._resource_type}, which the"
                " field map does not map (add it to `fields`)"
            )
        return column

    def _set(self, name: str) -> SetPredicate:
        contains = self._map.sets.get(name)
        if contains is None:
            raise FilterMappingError(
                f"the plan tests the set field `{name}` of {self._resource_type}, which the"
                " field map does not map (add a predicate to `sets`)"
            )
        return contains

    def _ids(self, ids: Sequence[str]) -> ColumnElement[bool]:
        if not ids:
            return false()
        id_mapping = self._map.id
        if isinstance(id_mapping, SQLColumnExpression):
            return _guarded(id_mapping, id_mapping.in_(list(ids)))
        if callable(id_mapping):
            return id_mapping(ids)
        raise FilterMappingError("the field map's `id` is neither a column nor a callable")

    def _member_of(self, entity: EntityRef) -> ColumnElement[bool]:
        mapping = self._map.member_of.get(entity.type)
        if mapping is None:
            raise FilterMappingError(
                f"the plan asks whether a {self._resource_type} is in {entity.type}"
                f' "{entity.id}", and the field map has no `member_of` entry for {entity.type}'
            )
        if isinstance(mapping, SQLColumnExpression):
            return _guarded(mapping, mapping == entity.id)
        if callable(mapping):
            return mapping(entity.id)
        raise FilterMappingError(
            f"the `member_of` entry for {entity.type} is neither a column nor a callable"
        )
