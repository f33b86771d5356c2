"""Lists through Warden's data filter (issue #21), against the real `warden serve`.

The list route is filtered in SQL by one `POST /v1/filter`; these tests hold it to what
per-item checks say: every listed document is one the user may read (`check` allows it), and
every document the user may read in a tenant they may list is listed. Users of every role of
both look-alike tenants, the operator's support user, a user with no role, a user disabled in
Warden's store, and a user whose only access is through a folder the legal group may read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from docs_app.db import (
    DOCUMENT_FIELDS,
    SEED_DOCUMENT_FOLDERS,
    SEED_DOCUMENTS,
    Document,
    make_engine,
)
from docs_app.main import document_properties
from tests.test_documents import UNKNOWN_TO_WARDEN, add_documents
from tests.test_filter_differential import canonical
from tests.warden_server import PACK_DIR, WardenServer
from warden import Check, Entity, WardenClient
from warden.sqlalchemy import authorized_select


def users() -> list[tuple[str, str]]:
    """(tenant, local id) of every user in Warden's example data."""
    found = []
    for entity in json.loads((PACK_DIR / "entities.json").read_text()):
        if entity["uid"]["type"] == "User":
            tenant, _, local_id = entity["uid"]["id"].partition("/")
            found.append((tenant, local_id))
    return sorted(found)


USERS = users()


def documents(database_url: str) -> list[Document]:
    engine = make_engine(database_url)
    with Session(engine, expire_on_commit=False) as session:
        rows = list(session.scalars(select(Document).order_by(Document.tenant, Document.local_id)))
    engine.dispose()
    return rows


def readable_by_checks(client: WardenClient, token: str, rows: list[Document]) -> set[str]:
    """The Warden ids of `rows` that `check` allows the token to read, 100 at a time (Warden's
    default `server.max_batch_size`), with the properties the app sends for a single read."""
    allowed: set[str] = set()
    for start in range(0, len(rows), 100):
        batch = rows[start : start + 100]
        checks = [
            Check("read", Entity("Document", row.warden_id, document_properties(row)))
            for row in batch
        ]
        decisions = client.check_many(token, checks)
        allowed |= {row.warden_id for row, d in zip(batch, decisions, strict=True) if d.allowed}
    return allowed


def filtered(client: WardenClient, token: str, database_url: str) -> set[str]:
    """The Warden ids the app's own filter (plan + `DOCUMENT_FIELDS`) selects, every tenant."""
    plan = client.filter(token, "read", "Document")
    engine = make_engine(database_url)
    with Session(engine) as session:
        rows = list(session.scalars(authorized_select(Document, plan, DOCUMENT_FIELDS)))
    engine.dispose()
    return {row.warden_id for row in rows}


@pytest.mark.parametrize(("home", "user"), USERS, ids=[f"{t}/{u}" for t, u in USERS])
def test_the_list_is_exactly_what_checks_allow(
    client: TestClient, warden: WardenServer, database_url: str, home: str, user: str
) -> None:
    add_documents(database_url, UNKNOWN_TO_WARDEN)
    token = warden.mint(user, home)
    rows = documents(database_url)
    with WardenClient(warden.url) as sdk:
        readable = readable_by_checks(sdk, token, rows)
        # The filter over every tenant's documents at once, beyond what one list shows.
        assert filtered(sdk, token, database_url) == readable
    n_listed = 0
    for tenant in sorted({row.tenant for row in rows}):
        response = client.get(
            f"/tenants/{tenant}/documents", headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code == 403:
            assert response.json()["reason"] in {"no_permit", "forbidden", "tenant_boundary"}
            continue
        assert response.status_code == 200, response.text
        assert len(response.headers["x-decision-id"]) == 36
        listed = [f"{tenant}/{document['id']}" for document in response.json()]
        assert listed == sorted(listed), "the route's own order is kept"
        assert set(listed) == {r for r in readable if r.startswith(f"{tenant}/")}, tenant
        n_listed += len(listed)
    # Every user with a role of acme or globex lists documents of their tenant; erin has no
    # role, and the operator's support user lists no tenant.
    assert (n_listed > 0) == (home in {"acme", "globex"} and user != "erin")


def test_a_user_disabled_in_the_store_lists_nothing(
    client_with_store: TestClient, warden_with_store: WardenServer, database_url: str
) -> None:
    warden = warden_with_store
    token = warden.mint("carol", "acme")
    status = "/v1/admin/tenants/acme/principals/status"
    warden.admin("POST", status, {"principal": 'User::"acme/carol"', "status": "disabled"})
    try:
        response = client_with_store.get(
            "/tenants/acme/documents", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 403, response.text
        assert response.json()["reason"] == "principal_disabled"
        with WardenClient(warden.url) as sdk:
            plan = sdk.filter(token, "read", "Document")
            assert plan.always_denied and plan.condition is None
            assert plan.reason == "principal_disabled"
            assert filtered(sdk, token, database_url) == set()
            assert readable_by_checks(sdk, token, documents(database_url)) == set()
    finally:
        warden.admin("POST", status, {"principal": 'User::"acme/carol"', "status": "active"})
    with WardenClient(warden.url) as sdk:
        assert not sdk.filter(token, "read", "Document").always_denied


# Documents Warden's data and the app's rows both have, in acme's folder tree and beside it.
FOLDER_DOCUMENTS: list[tuple[str, str, str, str | None]] = [
    ("contract-a", "internal", "acme/alice", "acme/contracts"),
    ("contract-b", "internal", "acme/bob", "acme/contracts/2026"),
    ("contract-secret", "restricted", "acme/alice", "acme/contracts"),
    ("memo", "internal", "acme/bob", None),
]


def with_folder_documents(warden: WardenServer, database_url: str) -> None:
    """Grace (legal group, no role) and `FOLDER_DOCUMENTS`, in Warden's data and the app's."""
    entities: list[dict[str, Any]] = warden.entities()
    acme = {"__entity": {"type": "Tenant", "id": "acme"}}
    entities.append(
        {
            "uid": {"type": "User", "id": "acme/grace"},
            "attrs": {"tenant": acme},
            "parents": [{"type": "Group", "id": "acme/legal"}],
        }
    )
    for local_id, classification, owner, folder in FOLDER_DOCUMENTS:
        entities.append(
            {
                "uid": {"type": "Document", "id": f"acme/{local_id}"},
                "attrs": {
                    "tenant": acme,
                    "owner": {"__entity": {"type": "User", "id": owner}},
                    "classification": classification,
                },
                "parents": [{"type": "Folder", "id": folder}] if folder else [],
            }
        )
    warden.write_entities(entities)
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        for local_id, classification, owner, folder in FOLDER_DOCUMENTS:
            session.add(
                Document(
                    tenant="acme",
                    local_id=local_id,
                    title=local_id,
                    body="",
                    owner=owner,
                    classification=classification,
                    folder=folder,
                )
            )
    engine.dispose()


def test_membership_in_a_nested_folder_is_filtered_in_sql(
    client: TestClient, editable_entities: WardenServer, database_url: str
) -> None:
    warden = editable_entities
    with_folder_documents(warden, database_url)
    rows = documents(database_url)
    with WardenClient(warden.url, pep_credential=warden.pep_secret) as sdk:
        grace = warden.mint("grace", "acme")
        plan = sdk.filter(grace, "read", "Document")
        assert plan.decision == "conditional"
        assert "member_of" in json.dumps(plan.condition)
        readable = readable_by_checks(sdk, grace, rows)
        # Legal reads the contracts tree (also the folder's subfolder) but not its restricted
        # document; every user reads the public tenant's documents.
        assert readable == {"acme/nda", "acme/contract-a", "acme/contract-b", "public/handbook"}
        assert filtered(sdk, grace, database_url) == readable
        # The same plan for the same subject, asked as a PEP.
        as_pep = sdk.filter_for(Entity("User", "acme/grace"), "read", "Document")
        assert canonical(as_pep.condition) == canonical(plan.condition)
        # AuthZEN resource search (Warden's own data, paged) finds the same documents.
        subject = Entity("User", "acme/grace")
        found = sdk.search_resources(subject, "read", "Document", page_size=2)
        assert {entity.id for entity in found} == readable
        # Grace may read, not list: the list route refuses her.
        response = client.get(
            "/tenants/acme/documents", headers={"Authorization": f"Bearer {grace}"}
        )
        assert response.status_code == 403
        # Dave (viewer and legal) reads everything of acme but the restricted documents.
        dave = warden.mint("dave", "acme")
        readable = readable_by_checks(sdk, dave, rows)
        assert filtered(sdk, dave, database_url) == readable
        listed = client.get("/tenants/acme/documents", headers={"Authorization": f"Bearer {dave}"})
        assert {f"acme/{d['id']}" for d in listed.json()} == {
            r for r in readable if r.startswith("acme/")
        }


def test_subject_and_action_searches(warden: WardenServer) -> None:
    with WardenClient(warden.url, pep_credential=warden.pep_secret) as sdk:
        nda = Entity("Document", "acme/nda")
        readers = {e.id for e in sdk.search_subjects("User", "read", nda, page_size=2)}
        assert {"acme/alice", "acme/bob", "acme/carol", "acme/dave"} <= readers
        assert not {"acme/erin", "globex/alice"} & readers
        actions = set(
            sdk.search_actions(Entity("User", "acme/carol"), Entity("Document", "acme/roadmap"))
        )
        assert actions == {"read"}
        first = list(sdk.search_subjects("User", "read", nda, max_results=1))
        assert len(first) == 1


def test_every_seed_document_is_in_warden_data_with_the_same_fields() -> None:
    """The app's seed rows mirror Warden's entity data, which the filter relies on."""
    entities = {
        e["uid"]["id"]: e
        for e in json.loads((PACK_DIR / "entities.json").read_text())
        if e["uid"]["type"] == "Document"
    }
    for tenant, local_id, _, owner, classification in SEED_DOCUMENTS:
        entity = entities[f"{tenant}/{local_id}"]
        assert entity["attrs"]["owner"]["__entity"]["id"] == owner
        assert entity["attrs"]["tenant"]["__entity"]["id"] == tenant
        assert entity["attrs"]["classification"] == classification
        folder = SEED_DOCUMENT_FOLDERS.get((tenant, local_id))
        assert [p["id"] for p in entity["parents"] if p["type"] == "Folder"] == (
            [folder] if folder else []
        )
