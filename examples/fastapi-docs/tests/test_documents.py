"""The example app driven through HTTP, against the real `warden serve`."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from docs_app.db import SEED_DOCUMENTS, Document, make_engine
from docs_app.main import create_app
from tests.warden_server import PACK_DIR, WardenServer, new_rsa_key
from warden import (
    AsyncWardenClient,
    Check,
    Entity,
    EvaluationRequest,
    InvalidTokenError,
    WardenClient,
    WardenRequestError,
)
from warden.fastapi import routes_without_warden

ROADMAP = "/tenants/acme/documents/roadmap"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_user(warden: WardenServer, user: str, tenant: str = "acme") -> dict[str, str]:
    return bearer(warden.mint(user, tenant))


# -- allowed and denied ---------------------------------------------------------------------


def test_viewer_reads_a_document_of_their_tenant(client: TestClient, warden: WardenServer) -> None:
    response = client.get(ROADMAP, headers=as_user(warden, "carol"))
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Acme roadmap 2027"
    assert len(response.headers["x-decision-id"]) == 36


def test_viewer_may_not_edit_and_gets_the_reason(client: TestClient, warden: WardenServer) -> None:
    response = client.patch(ROADMAP, json={"title": "mine now"}, headers=as_user(warden, "carol"))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["reason"] == "no_permit"
    assert problem["decision_id"] == response.headers["x-decision-id"]
    assert client.get(ROADMAP, headers=as_user(warden, "carol")).json()["title"] != "mine now"


def test_editor_edits(client: TestClient, warden: WardenServer) -> None:
    response = client.patch(
        "/tenants/acme/documents/nda", json={"body": "revised"}, headers=as_user(warden, "bob")
    )
    assert response.status_code == 200, response.text
    assert response.json()["body"] == "revised"


def test_restricted_document_is_for_admins_only(client: TestClient, warden: WardenServer) -> None:
    salaries = "/tenants/acme/documents/salaries"
    denied = client.get(salaries, headers=as_user(warden, "bob"))
    assert denied.status_code == 403
    assert denied.json()["reason"] == "forbidden"
    assert client.get(salaries, headers=as_user(warden, "alice")).status_code == 200


def test_delete_by_owner_and_not_by_viewer(client: TestClient, warden: WardenServer) -> None:
    assert client.delete(ROADMAP, headers=as_user(warden, "carol")).status_code == 403
    assert client.get(ROADMAP, headers=as_user(warden, "carol")).status_code == 200
    deleted = client.delete(ROADMAP, headers=as_user(warden, "bob"))
    assert deleted.status_code == 204
    assert deleted.headers["x-decision-id"]
    # Warden still allows reading acme/roadmap (its entity data knows it): the app says 404.
    assert client.get(ROADMAP, headers=as_user(warden, "carol")).status_code == 404


def test_share_needs_ownership_and_a_paid_plan(client: TestClient, warden: WardenServer) -> None:
    shared = client.post(
        f"{ROADMAP}/shares", json={"user": "carol"}, headers=as_user(warden, "bob")
    )
    assert shared.status_code == 201, shared.text
    assert shared.json() == {"document": "roadmap", "shared_with": ["carol"]}
    assert (
        client.post(f"{ROADMAP}/shares", json={"user": "bob"}, headers=as_user(warden, "carol"))
    ).status_code == 403
    # Globex is on the free plan: even its admin may not share.
    refused = client.post(
        "/tenants/globex/documents/roadmap/shares",
        json={"user": "carol"},
        headers=as_user(warden, "alice", "globex"),
    )
    assert refused.status_code == 403
    assert refused.json()["reason"] == "forbidden"


def test_me_returns_the_verified_principal(client: TestClient, warden: WardenServer) -> None:
    response = client.get("/me", headers=as_user(warden, "dave"))
    assert response.status_code == 200, response.text
    assert response.json() == {"type": "User", "id": "acme/dave", "tenant": "acme"}


def test_public_documents_cross_tenants_through_a_marked_grant(
    client: TestClient, warden: WardenServer
) -> None:
    response = client.get("/tenants/public/documents/handbook", headers=as_user(warden, "erin"))
    assert response.status_code == 200, response.text


# -- tenants ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/tenants/globex/documents/roadmap", None),
        ("PATCH", "/tenants/globex/documents/roadmap", {"title": "x"}),
        ("DELETE", "/tenants/globex/documents/nda", None),
        ("POST", "/tenants/globex/documents/nda/shares", {"user": "alice"}),
        ("GET", "/tenants/globex/documents", None),
    ],
)
def test_acme_admin_cannot_reach_globex_with_the_same_local_id(
    client: TestClient, warden: WardenServer, method: str, path: str, body: object
) -> None:
    response = client.request(method, path, json=body, headers=as_user(warden, "alice"))
    assert response.status_code == 403, response.text
    assert response.json()["reason"] in {"no_permit", "forbidden", "tenant_boundary"}
    # The globex document is untouched, and globex's own admin still sees it.
    assert (
        client.get(
            path.removesuffix("/shares"), headers=as_user(warden, "alice", "globex")
        ).status_code
        == 200
    )


def test_a_token_claiming_another_tenant_cannot_borrow_its_roles(
    client: TestClient, warden: WardenServer
) -> None:
    # globex/zed is unknown to Warden's data, so only the token's claims count: the role claim
    # makes them a globex admin, never an acme one.
    token = warden.mint("zed", "globex", roles=["admin"])
    assert client.get(ROADMAP, headers=bearer(token)).status_code == 403
    assert client.get("/tenants/globex/documents/roadmap", headers=bearer(token)).status_code == 200


# -- lists show exactly what a read allows (issue #18) ------------------------------------------


def example_users() -> list[tuple[str, str]]:
    """(tenant, local id) of every user of acme and globex in Warden's example data: each can
    get a token (`WardenServer.mint`)."""
    users = []
    for entity in json.loads((PACK_DIR / "entities.json").read_text()):
        tenant, _, local_id = entity["uid"]["id"].partition("/")
        if entity["uid"]["type"] == "User" and tenant in {"acme", "globex"}:
            users.append((tenant, local_id))
    return sorted(users)


USERS = example_users()
# Documents the app has and Warden's entity data does not: decided on the properties the app
# sends (the same for the list as for a GET).
UNKNOWN_TO_WARDEN = [
    ("acme", "board-minutes", "Acme board minutes", "acme/alice", "restricted"),
    ("acme", "launch-plan", "Acme launch plan", "acme/carol", "internal"),
    ("globex", "offsite", "Globex offsite", "globex/bob", "internal"),
]


def add_documents(database_url: str, documents: list[tuple[str, str, str, str, str]]) -> None:
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        for tenant, local_id, title, owner, classification in documents:
            session.add(
                Document(
                    tenant=tenant,
                    local_id=local_id,
                    title=title,
                    body=f"The text of {title}.",
                    owner=owner,
                    classification=classification,
                )
            )
    engine.dispose()


def test_every_example_user_of_acme_and_globex_is_covered() -> None:
    assert {f"{tenant}/{user}" for tenant, user in USERS} == {
        f"{tenant}/{user}"
        for tenant in ("acme", "globex")
        for user in ("alice", "bob", "carol", "dave", "erin")
    }


@pytest.mark.parametrize(("home", "user"), USERS, ids=[f"{t}/{u}" for t, u in USERS])
def test_a_list_shows_exactly_the_documents_a_read_allows(
    client: TestClient, warden: WardenServer, database_url: str, home: str, user: str
) -> None:
    add_documents(database_url, UNKNOWN_TO_WARDEN)
    headers = as_user(warden, user, home)
    tenants = sorted({d[0] for d in SEED_DOCUMENTS + UNKNOWN_TO_WARDEN})
    listed_somewhere = False
    for tenant in tenants:
        readable = {}
        for local_id in sorted(d[1] for d in SEED_DOCUMENTS + UNKNOWN_TO_WARDEN if d[0] == tenant):
            read = client.get(f"/tenants/{tenant}/documents/{local_id}", headers=headers)
            assert read.status_code in (200, 403), (tenant, local_id, read.text)
            if read.status_code == 200:
                readable[local_id] = read.json()
        listing = client.get(f"/tenants/{tenant}/documents", headers=headers)
        if listing.status_code == 403:
            # No `list` on the tenant: nothing of it is shown.
            assert listing.json()["reason"] in {"no_permit", "forbidden", "tenant_boundary"}
            continue
        assert listing.status_code == 200, (tenant, listing.text)
        listed_somewhere = True
        listed = {document["id"]: document for document in listing.json()}
        assert len(listed) == len(listing.json())
        # Set equality, and each listed item is what its GET serves.
        assert listed == readable, tenant
    # Every user with a role lists their own tenant; erin has none.
    assert listed_somewhere == (user != "erin")


def test_a_viewer_no_longer_sees_a_restricted_document_in_the_list(
    client: TestClient, warden: WardenServer
) -> None:
    headers = as_user(warden, "carol")
    assert client.get("/tenants/acme/documents/salaries", headers=headers).status_code == 403
    response = client.get("/tenants/acme/documents", headers=headers)
    assert response.status_code == 200, response.text
    assert {d["id"] for d in response.json()} == {"roadmap", "nda"}
    assert "salaries" not in response.text.lower()
    # The header names Warden's last answer for the request: the list's data-filter plan.
    assert len(response.headers["x-decision-id"]) == 36
    admin = client.get("/tenants/acme/documents", headers=as_user(warden, "alice"))
    assert {d["id"] for d in admin.json()} == {"roadmap", "salaries", "nda"}


@pytest.mark.parametrize("tenant", ["acme", "globex"])
def test_a_list_needs_the_list_permission(
    client: TestClient, warden: WardenServer, tenant: str
) -> None:
    # Erin belongs to the tenant but has no role: no `list`, so a 403 and no document.
    response = client.get(f"/tenants/{tenant}/documents", headers=as_user(warden, "erin", tenant))
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == "no_permit"
    assert all(title not in response.text for _, _, title, _, _ in SEED_DOCUMENTS)
    # A document of the tenant that erin cannot read either.
    read = client.get(
        f"/tenants/{tenant}/documents/roadmap", headers=as_user(warden, "erin", tenant)
    )
    assert read.status_code == 403


# -- Warden's data wins, at once --------------------------------------------------------------


def test_a_role_removed_in_warden_takes_effect_on_the_next_request(
    client: TestClient, editable_entities: WardenServer
) -> None:
    warden = editable_entities
    headers = as_user(warden, "dave")  # the same token before and after
    assert client.get(ROADMAP, headers=headers).status_code == 200

    entities = warden.entities()
    for entity in entities:
        if entity["uid"] == {"type": "User", "id": "acme/dave"}:
            entity["parents"] = [p for p in entity["parents"] if p["type"] != "Role"]
    warden.write_entities(entities)

    response = client.get(ROADMAP, headers=headers)
    assert response.status_code == 403
    assert response.json()["reason"] == "no_permit"


# -- authentication -----------------------------------------------------------------------


def test_missing_token_is_401_without_asking_warden(client: TestClient) -> None:
    response = client.get(ROADMAP)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["reason"] == "token_missing"


@pytest.mark.parametrize("kind", ["expired", "forged", "wrong_issuer", "garbage"])
def test_bad_tokens_are_refused_with_401(
    client: TestClient, warden: WardenServer, kind: str
) -> None:
    token = {
        "expired": lambda: warden.mint("alice", "acme", expires_in=-3600),
        "forged": lambda: warden.mint("alice", "acme", key=new_rsa_key()),
        "wrong_issuer": lambda: warden.mint("alice", "acme", issuer="https://evil.example"),
        "garbage": lambda: "not.a.token",
    }[kind]()
    response = client.delete(ROADMAP, headers=bearer(token))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"')
    expected = {
        "expired": "token_expired",
        "forged": "token_signature_invalid",
        "wrong_issuer": "token_issuer_unknown",
        "garbage": "token_malformed",
    }[kind]
    assert response.json()["reason"] == expected
    assert f'error_description="{expected}"' in challenge
    assert client.get(ROADMAP, headers=as_user(warden, "carol")).status_code == 200


# -- fail closed --------------------------------------------------------------------------


def test_warden_unreachable_is_503_and_nothing_is_served(
    client_without_warden: TestClient, warden: WardenServer, database_url: str
) -> None:
    admin = as_user(warden, "alice")
    for method, path in [
        ("GET", ROADMAP),
        ("DELETE", ROADMAP),
        ("GET", "/tenants/acme/documents"),
        ("GET", "/me"),
    ]:
        response = client_without_warden.request(method, path, headers=admin)
        assert response.status_code == 503, (method, path, response.text)
        assert "title" in response.json() and "roadmap" not in response.text.lower()
        assert "x-decision-id" not in response.headers
    # The DELETE was not carried out: the same database, with Warden up, still has it.
    with TestClient(create_app(warden.url, database_url)) as healthy:
        assert healthy.get(ROADMAP, headers=admin).status_code == 200


def test_every_route_but_healthz_is_protected(client: TestClient) -> None:
    assert routes_without_warden(client.app, allow={"/healthz"}) == []  # type: ignore[arg-type]


def test_openapi_shows_the_bearer_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["WardenBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An end-user access token; Warden verifies it on every request.",
    }
    assert {"WardenBearer": []} in spec["paths"]["/tenants/{tenant}/documents/{doc_id}"]["get"][
        "security"
    ]


# -- the clients against the real server ----------------------------------------------------


def test_sync_client_check_and_authzen(warden: WardenServer) -> None:
    with WardenClient(warden.url, pep_credential=warden.pep_secret) as client:
        decision = client.check(warden.mint("carol", "acme"), "read", "Document", "acme/roadmap")
        assert decision.allowed and decision.reason == "permitted"
        assert decision.principal.local_id == "carol"
        assert [r.policy for r in decision.reasons] == ["viewers-read"]

        carol = Entity("User", "acme/carol")
        roadmap = Entity("Document", "acme/roadmap")
        assert client.evaluate(carol, "read", roadmap).allowed
        results = client.evaluate_many(
            [EvaluationRequest(action="read"), EvaluationRequest(action="delete")],
            subject=carol,
            resource=roadmap,
        )
        assert [r.allowed for r in results] == [True, False]
        assert results[1].reason == "no_permit"
        short = client.evaluate_many(
            [EvaluationRequest(action="delete"), EvaluationRequest(action="read")],
            subject=carol,
            resource=roadmap,
            semantic="deny_on_first_deny",
        )
        assert [r.allowed for r in short] == [False]

    with (
        WardenClient(warden.url, pep_credential="wrong") as intruder,
        pytest.raises(WardenRequestError) as refused,
    ):
        intruder.evaluate(carol, "read", roadmap)
    assert refused.value.status == 401


READ_ROADMAP_SALARIES_EDIT_NDA = [
    Check("read", Entity("Document", "acme/roadmap")),
    Check("read", Entity("Document", "acme/salaries")),
    Check("edit", Entity("Document", "acme/nda")),
]


def test_sync_client_check_many(warden: WardenServer) -> None:
    token = warden.mint("carol", "acme")
    with WardenClient(warden.url) as client:
        decisions = client.check_many(token, READ_ROADMAP_SALARIES_EDIT_NDA)
        one_by_one = [
            client.check(token, c.action, c.resource.type, c.resource.id)
            for c in READ_ROADMAP_SALARIES_EDIT_NDA
        ]
        assert [(d.allowed, d.reason) for d in decisions] == [
            (d.allowed, d.reason) for d in one_by_one
        ]
        assert [(d.allowed, d.reason) for d in decisions] == [
            (True, "permitted"),
            (False, "forbidden"),
            (False, "no_permit"),
        ]
        assert [r.policy for r in decisions[0].reasons] == ["viewers-read"]
        assert len({d.decision_id for d in decisions}) == 3
        assert {d.principal.id for d in decisions} == {"acme/carol"}
        assert {d.policy_revision for d in decisions} == {warden.revision()}

        with pytest.raises(InvalidTokenError) as refused:
            client.check_many(
                warden.mint("carol", "acme", expires_in=-3600), READ_ROADMAP_SALARIES_EDIT_NDA
            )
        assert refused.value.reason == "token_expired"
        assert (refused.value.www_authenticate or "").startswith('Bearer error="invalid_token"')

        # More checks than Warden's `server.max_batch_size` (100 by default): refused whole.
        with pytest.raises(WardenRequestError) as too_many:
            client.check_many(token, READ_ROADMAP_SALARIES_EDIT_NDA * 34)
        assert 400 <= too_many.value.status < 500


async def _async_roundtrip(warden: WardenServer) -> None:
    async with AsyncWardenClient(warden.url, pep_credential=warden.pep_secret) as client:
        decision = await client.check(warden.mint("carol", "acme"), "edit", "Document", "acme/nda")
        assert not decision.allowed and decision.reason == "no_permit"
        evaluation = await client.evaluate(
            Entity("User", "acme/alice"), "delete", Entity("Document", "acme/nda")
        )
        assert evaluation.allowed and evaluation.decision_id
        ready = await client.readiness()
        assert ready["checks"]["policy"]["revision"] == decision.policy_revision
        decisions = await client.check_many(
            warden.mint("bob", "acme"), READ_ROADMAP_SALARIES_EDIT_NDA
        )
        assert [(d.allowed, d.reason) for d in decisions] == [
            (True, "permitted"),
            (False, "forbidden"),
            (True, "permitted"),
        ]


def test_async_client_against_warden(warden: WardenServer) -> None:
    import asyncio

    asyncio.run(_async_roundtrip(warden))
