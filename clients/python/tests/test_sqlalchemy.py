"""`warden.sqlalchemy` without a server (issue #21): hand-written and randomly generated plans
rendered as SQL and run on SQLite (and on PostgreSQL when `WARDEN_TEST_POSTGRES_URL` is set),
compared with the plan's meaning evaluated in Python row by row; and every mapping gap refused.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, String, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from warden import EntityRef, FilterMappingError, FilterPlan
from warden.models import (
    And,
    Compare,
    Condition,
    Contains,
    ContainsAll,
    ContainsAny,
    Has,
    IdIn,
    InSet,
    MemberOf,
    Not,
    Or,
    parse_condition,
    parse_filter_plan,
)
from warden.sqlalchemy import (
    FieldMap,
    authorized_select,
    condition_to_where,
    descendants,
    in_tree,
    plan_to_where,
    set_table,
)


class Base(DeclarativeBase):
    pass


class Folder(Base):
    __tablename__ = "folders"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(String(64))


class Doc(Base):
    __tablename__ = "docs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(64))
    classification: Mapped[str] = mapped_column(String(32))
    level: Mapped[int]
    archived: Mapped[bool]
    note: Mapped[str | None] = mapped_column(String(32))
    folder_id: Mapped[str | None] = mapped_column(String(64))


class DocTag(Base):
    __tablename__ = "doc_tags"

    doc_id: Mapped[str] = mapped_column(ForeignKey("docs.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(32), primary_key=True)


FIELD_MAP = FieldMap(
    id=Doc.id,
    fields={
        "tenant": Doc.tenant,
        "owner": Doc.owner,
        "classification": Doc.classification,
        "level": Doc.level,
        "archived": Doc.archived,
        "note": Doc.note,
    },
    sets={"tags": set_table(DocTag.tag, DocTag.doc_id == Doc.id)},
    member_of={"Folder": in_tree(Doc.folder_id, Folder.id, Folder.parent_id)},
    resource_type="Doc",
)

TENANTS = ["acme", "globex"]
USERS = [f"{t}/{u}" for t in TENANTS for u in ("alice", "bob", "carol")]
CLASSIFICATIONS = ["public", "internal", "restricted"]
TAGS = ["red", "green", "blue", "x y", "O'Reilly"]
NOTES = ["a", "b", "%"]
# A forest with a cycle (acme/loop1 <-> acme/loop2) that the walk must survive.
FOLDERS = {
    "acme/root": None,
    "acme/a": "acme/root",
    "acme/a/b": "acme/a",
    "acme/a/b/c": "acme/a/b",
    "acme/other": None,
    "globex/root": None,
    "globex/x": "globex/root",
    "acme/loop1": "acme/loop2",
    "acme/loop2": "acme/loop1",
}


@dataclass(frozen=True)
class Row:
    id: str
    tenant: str
    owner: str
    classification: str
    level: int
    archived: bool
    note: str | None
    folder_id: str | None
    tags: frozenset[str]


def make_rows(rng: random.Random, n_rows: int) -> list[Row]:
    rows = []
    for i in range(n_rows):
        tenant = rng.choice(TENANTS)
        rows.append(
            Row(
                id=f"{tenant}/d{i}",
                tenant=tenant,
                owner=rng.choice(USERS),
                classification=rng.choice(CLASSIFICATIONS),
                level=rng.randint(-2, 5),
                archived=rng.random() < 0.3,
                note=rng.choice([None, *NOTES]),
                folder_id=rng.choice([None, *FOLDERS, "acme/missing"]),
                tags=frozenset(rng.sample(TAGS, rng.randint(0, 3))),
            )
        )
    return rows


# -- the plan's meaning, row by row (what Warden's own `Condition::holds` says) ---------------


def _value(value: Any) -> Any:
    return value.id if isinstance(value, EntityRef) else value


def _folder_in(folder: str | None, ancestor: str) -> bool:
    seen = set()
    while folder is not None and folder not in seen:
        if folder == ancestor:
            return True
        seen.add(folder)
        folder = FOLDERS.get(folder)
    return False


def holds(condition: Condition, row: Row) -> bool:
    match condition:
        case And(args=args):
            return all(holds(arg, row) for arg in args)
        case Or(args=args):
            return any(holds(arg, row) for arg in args)
        case Not(arg=arg):
            return not holds(arg, row)
        case Compare(op=op, field=name, value=value):
            have = getattr(row, name)
            want = _value(value)
            if have is None:
                return False
            return {
                "eq": have == want,
                "ne": have != want,
                "lt": have < want,
                "le": have <= want,
                "gt": have > want,
                "ge": have >= want,
            }[op]
        case InSet(field=name, values=values):
            have = getattr(row, name)
            return have is not None and have in {_value(v) for v in values}
        case Contains(field=name, value=value):
            return _value(value) in getattr(row, name)
        case ContainsAny(field=name, values=values):
            return any(_value(v) in getattr(row, name) for v in values)
        case ContainsAll(field=name, values=values):
            return all(_value(v) in getattr(row, name) for v in values)
        case Has(field=name):
            return getattr(row, name) is not None
        case IdIn(ids=ids):
            return row.id in ids
        case MemberOf(entity=entity):
            return entity.type == "Folder" and _folder_in(row.folder_id, entity.id)
    raise AssertionError(condition)


# -- random plans, as Warden sends them ------------------------------------------------------


def random_value(rng: random.Random, name: str) -> Any:
    if name in ("tenant",):
        return {"type": "Tenant", "id": rng.choice([*TENANTS, "initech"])}
    if name == "owner":
        return {"type": "User", "id": rng.choice([*USERS, "acme/nobody"])}
    if name == "classification":
        return rng.choice([*CLASSIFICATIONS, "secret"])
    if name == "level":
        return rng.randint(-3, 6)
    if name == "archived":
        return rng.random() < 0.5
    return rng.choice([*NOTES, "zz"])


def random_condition(rng: random.Random, depth: int) -> dict[str, Any]:
    if depth > 0 and rng.random() < 0.45:
        kind = rng.choice(["and", "or", "not"])
        if kind == "not":
            return {"op": "not", "arg": random_condition(rng, depth - 1)}
        return {
            "op": kind,
            "args": [random_condition(rng, depth - 1) for _ in range(rng.randint(1, 3))],
        }
    kind = rng.choice(
        ["cmp", "cmp", "order", "in_set", "contains", "any", "all", "has", "id_in", "member"]
    )
    if kind == "cmp":
        name = rng.choice(["tenant", "owner", "classification", "archived", "note", "level"])
        return {"op": rng.choice(["eq", "ne"]), "field": name, "value": random_value(rng, name)}
    if kind == "order":
        op = rng.choice(["lt", "le", "gt", "ge"])
        return {"op": op, "field": "level", "value": random_value(rng, "level")}
    if kind == "in_set":
        name = rng.choice(["classification", "owner", "note", "level"])
        values = [random_value(rng, name) for _ in range(rng.randint(0, 3))]
        return {"op": "in_set", "field": name, "values": values}
    if kind == "contains":
        return {"op": "contains", "field": "tags", "value": rng.choice([*TAGS, "none"])}
    if kind in ("any", "all"):
        values = rng.sample([*TAGS, "none"], rng.randint(0, 3))
        return {"op": f"contains_{kind}", "field": "tags", "values": values}
    if kind == "has":
        return {"op": "has", "field": rng.choice(["note", "classification"])}
    if kind == "id_in":
        return {"op": "id_in", "ids": [f"{rng.choice(TENANTS)}/d{rng.randint(0, 80)}"]}
    return {"op": "member_of", "entity": {"type": "Folder", "id": rng.choice([*FOLDERS, "x/y"])}}


def plan_json(condition: dict[str, Any] | None, decision: str = "conditional") -> dict[str, Any]:
    body: dict[str, Any] = {
        "decision": decision,
        "action": "read",
        "resource_type": "Doc",
        "principal": {"type": "User", "id": "acme/alice", "tenant": "acme"},
        "tenant": {"type": "Tenant", "id": "acme"},
        "policies": ["p"],
        "policy_revision": "r",
        "decision_id": "d",
        "reason": "permitted",
    }
    if condition is not None:
        body["condition"] = condition
    return body


def plan_of(condition: dict[str, Any] | None, decision: str = "conditional") -> FilterPlan:
    return parse_filter_plan(plan_json(condition, decision), "read", "Doc")


# -- databases ----------------------------------------------------------------------------------


def sqlalchemy_url(url: str) -> str:
    """A `postgres://` URL (as `.ci/run` sets it) for SQLAlchemy with psycopg 3."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def fill(engine: Engine, rows: list[Row]) -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add_all(Folder(id=f, parent_id=p) for f, p in FOLDERS.items())
        for row in rows:
            session.add(
                Doc(
                    id=row.id,
                    tenant=row.tenant,
                    owner=row.owner,
                    classification=row.classification,
                    level=row.level,
                    archived=row.archived,
                    note=row.note,
                    folder_id=row.folder_id,
                )
            )
            session.add_all(DocTag(doc_id=row.id, tag=tag) for tag in row.tags)


ROWS = make_rows(random.Random(21), 240)  # noqa: S311 - test data, not secrets


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'docs.db'}")
        fill(engine, ROWS)
        yield engine
        engine.dispose()
        return
    url = os.environ.get("WARDEN_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("WARDEN_TEST_POSTGRES_URL is not set: the PostgreSQL run is skipped")
    schema = f"warden_sdk_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sqlalchemy_url(url))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(sqlalchemy_url(url), connect_args={"options": f"-csearch_path={schema}"})
    try:
        fill(engine, ROWS)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def selected(engine: Engine, plan: FilterPlan, field_map: FieldMap = FIELD_MAP) -> set[str]:
    with Session(engine) as session:
        return set(
            session.scalars(authorized_select(Doc, plan, field_map).with_only_columns(Doc.id))
        )


def expected(plan: FilterPlan) -> set[str]:
    assert plan.condition_tree is not None
    return {row.id for row in ROWS if holds(plan.condition_tree, row)}


# -- tests ----------------------------------------------------------------------------------------


def test_random_plans_select_exactly_the_rows_they_allow(engine: Engine) -> None:
    rng = random.Random(2121)  # noqa: S311 - test data, not secrets
    n_nonempty = 0
    for _ in range(250):
        plan = plan_of(random_condition(rng, depth=4))
        want = expected(plan)
        assert selected(engine, plan) == want, plan.condition
        n_nonempty += bool(want) and len(want) < len(ROWS)
    # The generator is not degenerate: most plans split the rows.
    assert n_nonempty > 100


def test_always_allowed_and_always_denied(engine: Engine) -> None:
    assert selected(engine, plan_of(None, "always_allowed")) == {r.id for r in ROWS}
    assert selected(engine, plan_of(None, "always_denied")) == set()


@pytest.mark.parametrize(
    "condition",
    [
        # `NOT` over a field that can be NULL: a missing note is not "a", so NOT holds.
        {"op": "not", "arg": {"op": "eq", "field": "note", "value": "a"}},
        {"op": "not", "arg": {"op": "ne", "field": "note", "value": "a"}},
        {"op": "not", "arg": {"op": "in_set", "field": "note", "values": ["a", "b"]}},
        {"op": "not", "arg": {"op": "member_of", "entity": {"type": "Folder", "id": "acme/a"}}},
        {"op": "not", "arg": {"op": "has", "field": "note"}},
        {
            "op": "and",
            "args": [{"op": "has", "field": "note"}, {"op": "ne", "field": "note", "value": "%"}],
        },
        # Values that would break naive SQL text.
        {"op": "contains", "field": "tags", "value": "O'Reilly"},
        {"op": "eq", "field": "note", "value": "%"},
        {"op": "and", "args": []},
        {"op": "or", "args": []},
        {"op": "contains_all", "field": "tags", "values": []},
        {"op": "contains_any", "field": "tags", "values": []},
        {"op": "in_set", "field": "level", "values": []},
        {"op": "id_in", "ids": []},
        {"op": "member_of", "entity": {"type": "Folder", "id": "acme/loop1"}},
        {"op": "member_of", "entity": {"type": "Folder", "id": "acme/missing"}},
        {"op": "eq", "field": "archived", "value": False},
        {"op": "ge", "field": "level", "value": 0},
    ],
)
def test_edge_cases(engine: Engine, condition: dict[str, Any]) -> None:
    plan = plan_of(condition)
    assert selected(engine, plan) == expected(plan)


def test_a_descendant_folder_is_in_its_ancestors() -> None:
    member = in_tree(Doc.folder_id, Folder.id, Folder.parent_id)
    sql = str(member("acme/a").compile(compile_kwargs={"literal_binds": True}))
    assert "RECURSIVE" in sql.upper()
    below = str(descendants(Folder.id, Folder.parent_id, "acme/a").compile())
    assert "folders" in below


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"op": "eq", "field": "secret", "value": "x"}, "`secret`"),
        ({"op": "has", "field": "secret"}, "`secret`"),
        ({"op": "contains", "field": "labels", "value": "x"}, "`labels`"),
        ({"op": "contains_any", "field": "tenant", "values": ["x"]}, "`tenant`"),
        ({"op": "member_of", "entity": {"type": "Project", "id": "acme/p"}}, "Project"),
        ({"op": "member_of", "entity": {"type": "Doc", "id": "acme/d1"}}, "Doc"),
        ({"op": "not", "arg": {"op": "eq", "field": "secret", "value": "x"}}, "`secret`"),
        (
            {"op": "or", "args": [{"op": "has", "field": "note"}, {"op": "has", "field": "x"}]},
            "`x`",
        ),
    ],
)
def test_what_the_map_does_not_map_is_refused(condition: dict[str, Any], message: str) -> None:
    with pytest.raises(FilterMappingError, match=message):
        plan_to_where(plan_of(condition), FIELD_MAP)


def test_a_plan_about_another_type_is_refused() -> None:
    other = parse_filter_plan(
        {**plan_json(None, "always_allowed"), "resource_type": "Folder"}, "read", "Folder"
    )
    with pytest.raises(FilterMappingError, match="Folder"):
        plan_to_where(other, FIELD_MAP)


def test_callables_for_ids_and_own_type_membership(engine: Engine) -> None:
    field_map = FieldMap(
        id=lambda ids: Doc.id.in_(list(ids)),
        fields=FIELD_MAP.fields,
        member_of={"Doc": lambda doc_id: Doc.id == doc_id},
    )
    condition = {
        "op": "or",
        "args": [
            {"op": "id_in", "ids": ["acme/d1", "globex/d2", ROWS[3].id]},
            {"op": "member_of", "entity": {"type": "Doc", "id": ROWS[5].id}},
        ],
    }
    assert selected(engine, plan_of(condition), field_map) == {ROWS[3].id, ROWS[5].id} | (
        {r.id for r in ROWS if r.id in ("acme/d1", "globex/d2")}
    )


def test_a_direct_parent_column_is_membership_by_equality(engine: Engine) -> None:
    field_map = FieldMap(id=Doc.id, member_of={"Folder": Doc.folder_id})
    plan = plan_of(
        {"op": "not", "arg": {"op": "member_of", "entity": {"type": "Folder", "id": "acme/a"}}}
    )
    want = {r.id for r in ROWS if r.folder_id != "acme/a"}
    assert selected(engine, plan, field_map) == want


def test_the_where_clause_composes_with_the_routes_own_query(engine: Engine) -> None:
    plan = plan_of({"op": "eq", "field": "classification", "value": "internal"})
    query = (
        select(Doc.id)
        .where(plan_to_where(plan, FIELD_MAP))
        .where(Doc.tenant == "acme")
        .order_by(Doc.id)
        .limit(5)
    )
    with Session(engine) as session:
        got = list(session.scalars(query))
    want = sorted(r.id for r in ROWS if r.classification == "internal" and r.tenant == "acme")[:5]
    assert got == want


def test_condition_to_where_takes_a_parsed_tree() -> None:
    tree = parse_condition({"op": "eq", "field": "level", "value": 3})
    sql = str(
        condition_to_where(tree, FIELD_MAP, "Doc").compile(compile_kwargs={"literal_binds": True})
    )
    assert sql == "docs.level = 3"
    nullable = parse_condition({"op": "eq", "field": "note", "value": "a"})
    sql = str(
        condition_to_where(nullable, FIELD_MAP, "Doc").compile(
            compile_kwargs={"literal_binds": True}
        )
    )
    assert sql == "docs.note IS NOT NULL AND docs.note = 'a'"


def test_set_table_needs_its_correlation() -> None:
    with pytest.raises(ValueError, match="ties"):
        set_table(DocTag.tag)
