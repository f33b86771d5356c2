"""The data filter against per-row decisions (issue #21), on the real `warden serve`.

For the example pack (with a few hundred more documents) and for randomly generated packs
and data (`random.Random(seed)`, fixed seeds), the same documents are Warden's entity data and
rows of a real database (a SQLite file, and PostgreSQL when `WARDEN_TEST_POSTGRES_URL` is
set). For every principal and action, the rows that Warden's plan (`POST /v1/filter`)
rendered by `warden.sqlalchemy` selects must be exactly the rows a per-row decision allows
(`POST /v1/checks` with the user's token, or AuthZEN `POST /access/v1/evaluations` as a PEP,
100 at a time: Warden's default `server.max_batch_size`). A plan Warden refuses must be a 422
with reason `filter_unsupported` naming a policy; they are counted, and most plans must exist.

Each pack's decisions are gathered once (a module fixture per pack) and compared on each
database in turn.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    exists,
    insert,
    or_,
    select,
    text,
)

from tests.warden_server import PACK_DIR, WardenServer, start_warden
from warden import (
    Check,
    Entity,
    EvaluationRequest,
    FilterPlan,
    FilterUnsupportedError,
    WardenClient,
)
from warden.sqlalchemy import FieldMap, descendants, plan_to_where, set_table

# Warden's default `server.max_batch_size`: per-row decisions are asked this many at a time.
BATCH = 100
RANDOM_SEEDS = [7, 21, 1337]
DOCUMENTS_PER_RANDOM_PACK = 1500
EXTRA_SAAS_DOCUMENTS = 600
# At most this share of a pack's (principal, action) plans may be refused as unsupported.
MAX_UNSUPPORTED_SHARE = 0.3

CLASSIFICATIONS = ["public", "internal", "restricted", "secret"]
TAGS = ["red", "green", "blue", "legal", "hr"]
NOTES = ["alpha", "beta", "gamma"]
ROLES = ["viewer", "editor", "admin", "auditor"]


# -- the data, one shape for every pack --------------------------------------------------------


@dataclass(frozen=True)
class DocumentRow:
    id: str
    tenant: str
    owner: str
    classification: str
    level: int = 0
    archived: bool = False
    note: str | None = None
    tags: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()

    def entity(self, with_extra_attributes: bool) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "tenant": {"__entity": {"type": "Tenant", "id": self.tenant}},
            "owner": {"__entity": {"type": "User", "id": self.owner}},
            "classification": self.classification,
        }
        if with_extra_attributes:
            attrs |= {"level": self.level, "archived": self.archived, "tags": list(self.tags)}
            if self.note is not None:
                attrs["note"] = self.note
        return {
            "uid": {"type": "Document", "id": self.id},
            "attrs": attrs,
            "parents": [{"type": "Folder", "id": folder} for folder in self.folders],
        }


@dataclass(frozen=True)
class Asker:
    """A principal whose plans are compared: by its token (`/v1/filter`, `/v1/checks`), or
    named by a PEP (`/v1/filter` with `subject`, `/access/v1/evaluations`)."""

    type: str
    id: str
    by_token: bool
    context: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        how = "token" if self.by_token else "pep"
        return f"{self.type}::{self.id} ({how}{', with context' if self.context else ''})"


@dataclass
class Scenario:
    name: str
    pack_dir: Path
    documents: list[DocumentRow]
    folders: dict[str, str | None]
    askers: list[Asker]
    actions: list[str]
    mapped_fields: tuple[str, ...]


@dataclass
class Outcome:
    asker: Asker
    action: str
    plan: FilterPlan | None
    unsupported: FilterUnsupportedError | None
    allowed: set[str]


@dataclass
class Gathered:
    scenario: Scenario
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0


# -- the example pack, with more documents ------------------------------------------------------


def saas_scenario(workdir: Path) -> Scenario:
    rng = random.Random(2024)  # noqa: S311 - test data, not secrets
    pack_dir = workdir / "saas"
    shutil.copytree(PACK_DIR, pack_dir, ignore=shutil.ignore_patterns("tests"))
    entities: list[dict[str, Any]] = json.loads((PACK_DIR / "entities.json").read_text())
    users: dict[str, list[str]] = {}
    folders: dict[str, str | None] = {}
    documents: list[DocumentRow] = []
    for entity in entities:
        uid, attrs = entity["uid"], entity.get("attrs", {})
        if uid["type"] == "User":
            users.setdefault(attrs["tenant"]["__entity"]["id"], []).append(uid["id"])
        if uid["type"] == "Folder":
            parents = [p["id"] for p in entity["parents"] if p["type"] == "Folder"]
            folders[uid["id"]] = parents[0] if parents else None
        if uid["type"] == "Document":
            documents.append(
                DocumentRow(
                    id=uid["id"],
                    tenant=attrs["tenant"]["__entity"]["id"],
                    owner=attrs["owner"]["__entity"]["id"],
                    classification=attrs["classification"],
                    folders=tuple(p["id"] for p in entity["parents"] if p["type"] == "Folder"),
                )
            )
    # A viewer whose status (an attribute, see lifecycle.cedar) denies everything.
    entities.append(
        {
            "uid": {"type": "User", "id": "acme/frank"},
            "attrs": {
                "tenant": {"__entity": {"type": "Tenant", "id": "acme"}},
                "status": "disabled",
            },
            "parents": [{"type": "Role", "id": "viewer"}],
        }
    )
    for i in range(EXTRA_SAAS_DOCUMENTS):
        tenant = rng.choice(["acme", "globex", "public"])
        owner_tenant = tenant if tenant != "public" else "operator"
        tenant_folders = [f for f in folders if f.startswith(f"{tenant}/")]
        documents.append(
            DocumentRow(
                id=f"{tenant}/gen-{i:04d}",
                tenant=tenant,
                owner=rng.choice(users[owner_tenant]),
                classification=rng.choice(["public", "internal", "restricted"]),
                folders=tuple(
                    rng.sample(tenant_folders, min(len(tenant_folders), rng.randint(0, 1)))
                ),
            )
        )
    known = {e["uid"]["id"] for e in entities if e["uid"]["type"] == "Document"}
    entities.extend(d.entity(with_extra_attributes=False) for d in documents if d.id not in known)
    (pack_dir / "entities.json").write_text(json.dumps(entities))
    askers = [
        Asker("User", user, by_token=True)
        for tenant in ("acme", "globex", "operator")
        for user in users[tenant]
    ]
    askers.append(Asker("User", "acme/frank", by_token=True))
    askers.append(
        Asker("User", "operator/sam", by_token=True, context={"support_ticket": "SUP-42"})
    )
    askers.append(Asker("ServiceAccount", "acme/indexer", by_token=False))
    askers.append(Asker("ServiceAccount", "globex/sync", by_token=False))
    askers.append(Asker("User", "globex/bob", by_token=False))
    return Scenario(
        name="saas",
        pack_dir=pack_dir,
        documents=documents,
        folders=folders,
        askers=askers,
        actions=["read", "edit", "delete", "share"],
        mapped_fields=("tenant", "owner", "classification"),
    )


# -- random packs ---------------------------------------------------------------------------------

RANDOM_SCHEMA = """
entity Tenant { name: String };
entity Role in [Role];
entity Group;
entity User in [Role, Group] {
  tenant: Tenant,
  clearance?: Long,
  status?: String,
};
entity Folder in [Folder] { tenant: Tenant };
entity Document in [Folder] {
  tenant: Tenant,
  owner: User,
  classification: String,
  level: Long,
  archived: Bool,
  tags: Set<String>,
  note?: String,
};
action read, edit, delete appliesTo {
  principal: [User],
  resource: [Document],
};
"""

RANDOM_MANIFEST = """name = "random-filter-pack"

[tenancy]
attribute = "tenant"
tenant_type = "Tenant"
"""

STATUS_FORBID = """@id("inactive-denied")
forbid (principal, action, resource)
when { principal has status && principal.status != "active" };
"""

# In every random pack: each tenant's legal group reads its folder tree from the top (f0),
# but not what is archived below f2, so plans hold transitive `member_of` under `not` too.
FOLDER_POLICIES = """@id("legal-reads-the-tree")
permit (principal in Group::"acme/legal", action == Action::"read", resource in Folder::"acme/f0")
when { resource.tenant == principal.tenant };

@id("legal-reads-the-globex-tree")
permit (principal in Group::"globex/legal", action == Action::"read", resource)
when { resource in Folder::"globex/f0" && resource.tenant == principal.tenant };

@id("archived-below-f2-is-hidden")
forbid (principal in Group::"acme/legal", action, resource in Folder::"acme/f2")
when { resource.archived };
"""


# Policies Warden cannot write as filters (`like` on the resource, an attribute of an
# attribute), added to the pack of `REFUSAL_SEED` only: its `edit` and `delete` plans must be
# refused naming them, and its `read` plans still compared.
UNSUPPORTED_POLICIES = {
    "delete-by-note-pattern": """@id("delete-by-note-pattern")
permit (principal, action == Action::"delete", resource is Document)
when { resource.tenant == principal.tenant && resource has note && resource.note like "a*" };
""",
    "edit-by-owner-tenant": """@id("edit-by-owner-tenant")
permit (principal in Role::"editor", action == Action::"edit", resource is Document)
when { resource.tenant == principal.tenant && resource.owner.tenant == principal.tenant };
""",
}
REFUSAL_SEED = RANDOM_SEEDS[-1]


class PolicyWriter:
    """Random Cedar policies over the random schema: permits and forbids whose conditions
    combine ownership, tenancy, role and group membership, folders, and every kind of
    attribute comparison with `&&`, `||` and `!`; only what Warden can write as a filter."""

    def __init__(self, rng: random.Random, folders: list[str], documents: list[str]) -> None:
        self.rng = rng
        self.folders = folders
        self.documents = documents

    def atom(self) -> str:
        rng = self.rng
        kinds = [
            "same-tenant",
            "owner",
            "classification",
            "classification-not",
            "classification-in",
            "level",
            "clearance",
            "archived",
            "not-archived",
            "tag",
            "tags-any",
            "tags-all",
            "note",
            "has-note",
            "folder",
            "document",
            "role",
            "group",
            "principal-tenant",
        ]
        kind = rng.choice(kinds)
        if kind == "same-tenant":
            return "resource.tenant == principal.tenant"
        if kind == "owner":
            return "resource.owner == principal"
        if kind == "classification":
            return f'resource.classification == "{rng.choice(CLASSIFICATIONS)}"'
        if kind == "classification-not":
            return f'resource.classification != "{rng.choice(CLASSIFICATIONS)}"'
        if kind == "classification-in":
            chosen = rng.sample(CLASSIFICATIONS, 2)
            return f"{json.dumps(chosen)}.contains(resource.classification)"
        if kind == "level":
            operator = rng.choice(["<", "<=", ">", ">=", "==", "!="])
            return f"resource.level {operator} {rng.randint(0, 5)}"
        if kind == "clearance":
            return "(principal has clearance && resource.level <= principal.clearance)"
        if kind == "archived":
            return "resource.archived"
        if kind == "not-archived":
            return "!resource.archived"
        if kind == "tag":
            return f'resource.tags.contains("{rng.choice(TAGS)}")'
        if kind == "tags-any":
            return f"resource.tags.containsAny({json.dumps(rng.sample(TAGS, 2))})"
        if kind == "tags-all":
            return f"resource.tags.containsAll({json.dumps(rng.sample(TAGS, 2))})"
        if kind == "note":
            return f'(resource has note && resource.note == "{rng.choice(NOTES)}")'
        if kind == "has-note":
            return "resource has note"
        if kind == "folder":
            return f'resource in Folder::"{rng.choice(self.folders)}"'
        if kind == "document":
            return f'resource == Document::"{rng.choice(self.documents)}"'
        if kind == "role":
            return f'principal in Role::"{rng.choice(ROLES)}"'
        if kind == "group":
            return f'principal in Group::"{rng.choice(["acme", "globex"])}/legal"'
        return f'principal.tenant == Tenant::"{rng.choice(["acme", "globex"])}"'

    def condition(self, depth: int) -> str:
        rng = self.rng
        if depth == 0 or rng.random() < 0.4:
            return self.atom()
        shape = rng.choice(["and", "or", "not"])
        if shape == "not":
            return f"!({self.condition(depth - 1)})"
        joiner = " && " if shape == "and" else " || "
        return "(" + joiner.join(self.condition(depth - 1) for _ in range(2)) + ")"

    def scope(self) -> str:
        rng = self.rng
        principal = rng.choice(
            ["principal", "principal is User", f'principal in Role::"{rng.choice(ROLES)}"']
        )
        action = rng.choice(
            [
                "action",
                f'action == Action::"{rng.choice(["read", "edit", "delete"])}"',
                'action in [Action::"read", Action::"edit"]',
            ]
        )
        resource = rng.choice(
            [
                "resource",
                "resource is Document",
                f'resource in Folder::"{rng.choice(self.folders)}"',
            ]
        )
        return f"{principal}, {action}, {resource}"

    def pack(self, n_permits: int, n_forbids: int) -> str:
        rng = self.rng
        policies = [STATUS_FORBID, FOLDER_POLICIES]
        for i in range(n_permits):
            condition = self.condition(3)
            if rng.random() < 0.8:
                condition = f"resource.tenant == principal.tenant && {condition}"
            policies.append(
                f'@id("permit-{i}")\npermit ({self.scope()})\nwhen {{ {condition} }};\n'
            )
        for i in range(n_forbids):
            unless = f" unless {{ {self.condition(1)} }}" if rng.random() < 0.5 else ""
            when = f"when {{ {self.condition(2)} }}{unless}"
            policies.append(f'@id("forbid-{i}")\nforbid ({self.scope()})\n{when};\n')
        if rng.random() < 0.7:
            policies.append(
                '@id("public-read")\n@cross_tenant("documents of the public tenant")\n'
                'permit (principal, action == Action::"read", resource is Document)\n'
                f'when {{ resource.tenant == Tenant::"public" && {self.condition(1)} }};\n'
            )
        return "\n".join(policies)


def random_scenario(workdir: Path, seed: int) -> Scenario:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    pack_dir = workdir / f"random-{seed}"
    pack_dir.mkdir()
    tenants = ["acme", "globex", "public"]
    entities: list[dict[str, Any]] = [
        {"uid": {"type": "Tenant", "id": t}, "attrs": {"name": t}, "parents": []} for t in tenants
    ]
    entities += [
        {"uid": {"type": "Role", "id": "viewer"}, "attrs": {}, "parents": []},
        {
            "uid": {"type": "Role", "id": "editor"},
            "attrs": {},
            "parents": [{"type": "Role", "id": "viewer"}],
        },
        {
            "uid": {"type": "Role", "id": "admin"},
            "attrs": {},
            "parents": [{"type": "Role", "id": "editor"}],
        },
        {"uid": {"type": "Role", "id": "auditor"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Group", "id": "acme/legal"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Group", "id": "globex/legal"}, "attrs": {}, "parents": []},
    ]
    users: dict[str, list[str]] = {"acme": [], "globex": []}
    for tenant in users:
        for i in range(5):
            user = f"{tenant}/u{i}"
            users[tenant].append(user)
            attrs: dict[str, Any] = {"tenant": {"__entity": {"type": "Tenant", "id": tenant}}}
            if rng.random() < 0.6:
                attrs["clearance"] = rng.randint(0, 5)
            # u4 of each tenant is disabled by its status attribute; the others are active.
            attrs["status"] = "disabled" if i == 4 else rng.choice(["active", "active", None])
            if attrs["status"] is None:
                del attrs["status"]
            parents = [{"type": "Role", "id": r} for r in rng.sample(ROLES, rng.randint(0, 2))]
            if i == 1:
                # u1 of each tenant is in the legal group alone: it reads through folders.
                parents = [{"type": "Group", "id": f"{tenant}/legal"}]
            elif rng.random() < 0.4:
                parents.append({"type": "Group", "id": f"{tenant}/legal"})
            entities.append(
                {"uid": {"type": "User", "id": user}, "attrs": attrs, "parents": parents}
            )
    folders: dict[str, str | None] = {}
    for tenant in tenants:
        tenant_folders: list[str] = []
        for i in range(6):
            folder = f"{tenant}/f{i}"
            # f0 > f1 > f2 > f3 is a chain (membership is transitive); f4 and f5 go anywhere.
            if i == 0:
                parent = None
            elif i < 4:
                parent = tenant_folders[-1]
            else:
                parent = rng.choice([None, *tenant_folders])
            folders[folder] = parent
            tenant_folders.append(folder)
            entities.append(
                {
                    "uid": {"type": "Folder", "id": folder},
                    "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": tenant}}},
                    "parents": [{"type": "Folder", "id": parent}] if parent else [],
                }
            )
    documents = []
    for i in range(DOCUMENTS_PER_RANDOM_PACK):
        tenant = rng.choice(tenants)
        owner_tenant = tenant if tenant != "public" else rng.choice(["acme", "globex"])
        tenant_folders = [f for f in folders if f.startswith(f"{tenant}/")]
        documents.append(
            DocumentRow(
                id=f"{tenant}/d{i:04d}",
                tenant=tenant,
                owner=rng.choice(users[owner_tenant]),
                classification=rng.choice(CLASSIFICATIONS),
                level=rng.randint(0, 5),
                archived=rng.random() < 0.3,
                note=rng.choice([None, None, *NOTES]),
                tags=tuple(sorted(rng.sample(TAGS, rng.randint(0, 3)))),
                folders=tuple(rng.sample(tenant_folders, rng.randint(0, 2))),
            )
        )
    entities += [d.entity(with_extra_attributes=True) for d in documents]
    writer = PolicyWriter(rng, list(folders), [d.id for d in documents[:50]])
    (pack_dir / "schema.cedarschema").write_text(RANDOM_SCHEMA)
    (pack_dir / "pack.toml").write_text(RANDOM_MANIFEST)
    (pack_dir / "policies.cedar").write_text(writer.pack(n_permits=6, n_forbids=3))
    if seed == REFUSAL_SEED:
        (pack_dir / "unsupported.cedar").write_text("\n".join(UNSUPPORTED_POLICIES.values()))
    (pack_dir / "entities.json").write_text(json.dumps(entities))
    askers = [Asker("User", user, by_token=True) for tenant in users for user in users[tenant]]
    askers.append(Asker("User", users["acme"][0], by_token=False))
    return Scenario(
        name=f"random-{seed}",
        pack_dir=pack_dir,
        documents=documents,
        folders=folders,
        askers=askers,
        actions=["read", "edit", "delete"],
        mapped_fields=("tenant", "owner", "classification", "level", "archived", "note"),
    )


# -- per-row decisions ----------------------------------------------------------------------------


def token_of(warden: WardenServer, asker: Asker) -> str:
    """A token of the test issuer for the asker: `sub` its local id, `org_id` its tenant."""
    tenant, _, user = asker.id.partition("/")
    return warden.mint(user, tenant)


def allowed_rows(
    client: WardenClient, warden: WardenServer, asker: Asker, action: str, ids: list[str]
) -> set[str]:
    allowed: set[str] = set()
    token = token_of(warden, asker) if asker.by_token else None
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        if token is not None:
            checks = [Check(action, Entity("Document", i), asker.context) for i in batch]
            answers = [d.allowed for d in client.check_many(token, checks)]
        else:
            requests = [EvaluationRequest(resource=Entity("Document", i)) for i in batch]
            results = client.evaluate_many(
                requests, subject=Entity(asker.type, asker.id), action=action, context=asker.context
            )
            answers = [e.allowed for e in results]
        allowed |= {i for i, ok in zip(batch, answers, strict=True) if ok}
    return allowed


def plan_for(client: WardenClient, warden: WardenServer, asker: Asker, action: str) -> FilterPlan:
    if asker.by_token:
        plan = client.filter(token_of(warden, asker), action, "Document", asker.context)
    else:
        plan = client.filter_for(Entity(asker.type, asker.id), action, "Document", asker.context)
    assert plan.principal.id == asker.id and plan.principal.type == asker.type
    assert plan.action == action and plan.resource_type == "Document"
    assert plan.decision_id and plan.policy_revision
    return plan


def gather(scenario: Scenario, workdir: Path) -> Gathered:
    started = time.monotonic()
    warden = start_warden(workdir, pack_dir=scenario.pack_dir)
    gathered = Gathered(scenario)
    ids = sorted(d.id for d in scenario.documents)
    try:
        with WardenClient(warden.url, pep_credential=warden.pep_secret, timeout=30.0) as client:
            for asker in scenario.askers:
                for action in scenario.actions:
                    try:
                        plan: FilterPlan | None = plan_for(client, warden, asker, action)
                        unsupported = None
                    except FilterUnsupportedError as refused:
                        plan, unsupported = None, refused
                        assert refused.policy, f"a 422 without the policy: {refused}"
                    allowed = allowed_rows(client, warden, asker, action, ids)
                    gathered.outcomes.append(Outcome(asker, action, plan, unsupported, allowed))
    finally:
        warden.stop()
    gathered.seconds = time.monotonic() - started
    return gathered


# -- the databases ------------------------------------------------------------------------------


def sqlalchemy_url(url: str) -> str:
    """A `postgres://` URL (as `.ci/run` sets it) for SQLAlchemy with psycopg 3."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


@dataclass
class Tables:
    documents: Table
    tags: Table
    folders: Table
    document_folders: Table

    @classmethod
    def define(cls) -> Tables:
        metadata = MetaData()
        documents = Table(
            "documents",
            metadata,
            Column("id", String(64), primary_key=True),
            Column("tenant", String(32), nullable=False),
            Column("owner", String(64), nullable=False),
            Column("classification", String(32), nullable=False),
            Column("level", Integer, nullable=False),
            Column("archived", Boolean, nullable=False),
            Column("note", String(32), nullable=True),
        )
        tags = Table(
            "document_tags",
            metadata,
            Column("document_id", ForeignKey("documents.id"), primary_key=True),
            Column("tag", String(32), primary_key=True),
        )
        folders = Table(
            "folders",
            metadata,
            Column("id", String(64), primary_key=True),
            Column("parent", String(64), nullable=True),
        )
        document_folders = Table(
            "document_folders",
            metadata,
            Column("document_id", ForeignKey("documents.id"), primary_key=True),
            Column("folder_id", String(64), primary_key=True),
        )
        return cls(documents, tags, folders, document_folders)

    def fill(self, engine: Engine, scenario: Scenario) -> None:
        self.documents.metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(
                insert(self.folders), [{"id": f, "parent": p} for f, p in scenario.folders.items()]
            )
            connection.execute(
                insert(self.documents),
                [
                    {
                        "id": d.id,
                        "tenant": d.tenant,
                        "owner": d.owner,
                        "classification": d.classification,
                        "level": d.level,
                        "archived": d.archived,
                        "note": d.note,
                    }
                    for d in scenario.documents
                ],
            )
            tags = [{"document_id": d.id, "tag": t} for d in scenario.documents for t in d.tags]
            if tags:
                connection.execute(insert(self.tags), tags)
            links = [
                {"document_id": d.id, "folder_id": f} for d in scenario.documents for f in d.folders
            ]
            if links:
                connection.execute(insert(self.document_folders), links)

    def field_map(self, mapped_fields: tuple[str, ...]) -> FieldMap:
        documents, links, folders = self.documents, self.document_folders, self.folders

        def in_folder(folder_id: str) -> ColumnElement[bool]:
            # A document is in a folder when one of its folders is that folder or below it.
            below = descendants(folders.c.id, folders.c.parent, folder_id)
            return exists().where(
                links.c.document_id == documents.c.id,
                or_(links.c.folder_id == folder_id, links.c.folder_id.in_(below)),
            )

        return FieldMap(
            id=documents.c.id,
            fields={name: documents.c[name] for name in mapped_fields},
            sets={"tags": set_table(self.tags.c.tag, self.tags.c.document_id == documents.c.id)},
            member_of={"Folder": in_folder},
            resource_type="Document",
        )


@pytest.fixture(scope="module", params=["saas", *(f"random-{s}" for s in RANDOM_SEEDS)])
def gathered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Gathered:
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "saas":
        scenario = saas_scenario(workdir)
    else:
        scenario = random_scenario(workdir, int(request.param.removeprefix("random-")))
    return gather(scenario, workdir)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'rows.db'}")
        yield engine
        engine.dispose()
        return
    url = os.environ.get("WARDEN_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "WARDEN_TEST_POSTGRES_URL is not set: the PostgreSQL half of the differential test"
            " is skipped (.ci/run sets it)"
        )
    schema = f"warden_filter_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sqlalchemy_url(url))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(sqlalchemy_url(url), connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# -- the tests ------------------------------------------------------------------------------------


def test_filtered_rows_are_exactly_the_rows_a_check_allows(
    gathered: Gathered, database: Engine
) -> None:
    scenario = gathered.scenario
    tables = Tables.define()
    tables.fill(database, scenario)
    field_map = tables.field_map(scenario.mapped_fields)
    mismatches = []
    with database.connect() as connection:
        for outcome in gathered.outcomes:
            if outcome.plan is None:
                continue
            where = plan_to_where(outcome.plan, field_map)
            selected = set(connection.scalars(select(tables.documents.c.id).where(where)))
            if selected != outcome.allowed:
                mismatches.append(
                    f"{outcome.asker.label} {outcome.action}: "
                    f"{len(selected - outcome.allowed)} rows too many"
                    f" (e.g. {sorted(selected - outcome.allowed)[:3]}),"
                    f" {len(outcome.allowed - selected)} missing"
                    f" (e.g. {sorted(outcome.allowed - selected)[:3]});"
                    f" plan {json.dumps(outcome.plan.condition)[:600]}"
                )
    assert not mismatches, "\n".join(mismatches)


def operators_of(condition: Any) -> Iterator[str]:
    """Every `op` in a condition tree."""
    if isinstance(condition, dict):
        if isinstance(condition.get("op"), str):
            yield condition["op"]
        for value in condition.values():
            yield from operators_of(value)
    elif isinstance(condition, list):
        for item in condition:
            yield from operators_of(item)


def test_most_plans_exist_and_refusals_name_their_policy(gathered: Gathered) -> None:
    outcomes = gathered.outcomes
    refused = [o for o in outcomes if o.unsupported is not None]
    decisions = sorted(o.plan.decision for o in outcomes if o.plan is not None)
    operators = sorted({op for o in outcomes if o.plan for op in operators_of(o.plan.condition)})
    print(
        f"{gathered.scenario.name}: {len(outcomes)} plans compared in {gathered.seconds:.1f}s"
        f" ({len(gathered.scenario.documents)} documents), {len(refused)} refused;"
        f" {', '.join(f'{decisions.count(d)} {d}' for d in sorted(set(decisions)))};"
        f" operators: {' '.join(operators)}"
    )
    if gathered.scenario.name == f"random-{REFUSAL_SEED}":
        # The refusals are exactly the unsupported policies', each for its own action.
        assert refused, "the pack with unsupported policies got every plan"
        expected = {"delete": "delete-by-note-pattern", "edit": "edit-by-owner-tenant"}
        for outcome in refused:
            assert outcome.unsupported is not None
            assert outcome.unsupported.policy == expected.get(outcome.action), outcome.unsupported
        assert all(o.plan is not None for o in outcomes if o.action == "read")
    else:
        # Every construct the generated policies use can be a filter: refusals are counted,
        # and may be a small share at most.
        assert len(refused) <= MAX_UNSUPPORTED_SHARE * len(outcomes), [
            f"{o.asker.label} {o.action}: {o.unsupported}" for o in refused
        ]
    kinds = {o.plan.decision for o in outcomes if o.plan is not None}
    # Every pack has principals with conditional plans (not just allow-all or deny-all).
    assert "conditional" in kinds, kinds
    # And the comparison is not vacuous: some rows are allowed, not all of them everywhere.
    n_rows = len(gathered.scenario.documents)
    assert any(0 < len(o.allowed) < n_rows for o in outcomes)


def test_principals_denied_before_any_policy_have_deny_plans(gathered: Gathered) -> None:
    """Users whose status attribute denies them (the pack's forbid of every inactive principal,
    which holds whatever the resource) get an `always_denied` plan, and no row by check."""
    disabled = {"acme/frank", "acme/u4", "globex/u4"}
    seen = [o for o in gathered.outcomes if o.asker.id in disabled]
    assert seen
    for outcome in seen:
        assert outcome.allowed == set()
        if outcome.plan is None:
            # Warden refuses the plan of a policy it cannot write even where a forbid that
            # holds denies everything anyway: only in the pack that has such policies.
            assert gathered.scenario.name == f"random-{REFUSAL_SEED}", outcome.unsupported
            assert outcome.action in ("edit", "delete"), outcome.unsupported
            continue
        assert outcome.plan.decision == "always_denied", (outcome.asker.label, outcome.action)


def canonical(condition: Any) -> Any:
    """A condition with the arguments of every `and` and `or` in one order.

    Warden does not always list them in the same order for the same question (the forbids'
    disjuncts come in varying order from one call to the next), so plans are compared in this
    form.
    """
    if isinstance(condition, dict):
        node = {key: canonical(value) for key, value in condition.items()}
        if node.get("op") in ("and", "or"):
            node["args"] = sorted(node["args"], key=lambda arg: json.dumps(arg, sort_keys=True))
        return node
    if isinstance(condition, list):
        return [canonical(item) for item in condition]
    return condition


def test_pep_and_token_plans_agree(gathered: Gathered) -> None:
    by_token = {(o.asker.id, o.action): o for o in gathered.outcomes if o.asker.by_token and o.plan}
    compared = 0
    for outcome in gathered.outcomes:
        twin = by_token.get((outcome.asker.id, outcome.action))
        if outcome.asker.by_token or outcome.plan is None or twin is None or twin.plan is None:
            continue
        assert outcome.plan.decision == twin.plan.decision
        assert canonical(outcome.plan.condition) == canonical(twin.plan.condition)
        compared += 1
    assert compared > 0
