"""`Warden.filter` and `Warden.filter_plan` against a mock Warden (issue #21): a list route
protected in one line, and every answer that is not a plan failing closed."""

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

import httpx2
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import Select, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool

from warden import AsyncWardenClient, FilterPlan, Principal
from warden.fastapi import Warden, filter_plans_of, routes_without_warden
from warden.sqlalchemy import FieldMap

Handler = Callable[[httpx2.Request], httpx2.Response]


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(32))


ITEMS = [
    ("acme/1", "acme", "acme/carol"),
    ("acme/2", "acme", "acme/bob"),
    ("globex/1", "globex", "globex/x"),
]
FIELD_MAP = FieldMap(id=Item.id, fields={"tenant": Item.tenant, "owner": Item.owner})


def plan(decision: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "decision": decision,
        "action": "read",
        "resource_type": "Item",
        "principal": {"type": "User", "id": "acme/carol", "tenant": "acme"},
        "tenant": {"type": "Tenant", "id": "acme"},
        "policies": ["p"],
        "policy_revision": "rev",
        "decision_id": "plan-1",
        "reason": "permitted",
    }
    if condition is not None:
        body["condition"] = condition
    return body


TENANT_ACME = plan(
    "conditional", {"op": "eq", "field": "tenant", "value": {"type": "Tenant", "id": "acme"}}
)


def build(handler: Handler) -> tuple[FastAPI, list[str]]:
    served: list[str] = []
    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add_all(Item(id=i, tenant=t, owner=o) for i, t, o in ITEMS)
    client = AsyncWardenClient("http://warden.test", transport=httpx2.MockTransport(handler))
    warden = Warden(client)
    app = FastAPI()
    warden.install(app)

    @app.get("/items")
    def list_items(
        query: Annotated[Select[Any], Depends(warden.filter(Item, "read", FIELD_MAP))],
    ) -> list[str]:
        served.append("items")
        with Session(engine) as session:
            return list(session.scalars(query.with_only_columns(Item.id).order_by(Item.id)))

    @app.get("/plan")
    async def read_plan(
        found: Annotated[FilterPlan, Depends(warden.filter_plan("read", "Item", context={"a": 1}))],
        principal: Annotated[Principal, Depends(warden.principal)],
    ) -> dict[str, Any]:
        served.append("plan")
        return {"decision": found.decision, "principal": principal.id}

    @app.get("/narrow")
    def narrow(
        query: Annotated[Select[Any], Depends(warden.filter(Item, "read", FieldMap(id=Item.id)))],
    ) -> list[str]:
        served.append("narrow")
        return []

    return app, served


def answering(status: int, body: Any, seen: list[httpx2.Request] | None = None) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request)
        return httpx2.Response(status, json=body)

    return handler


BEARER = {"Authorization": "Bearer t"}


def test_the_list_holds_the_rows_the_plan_allows() -> None:
    seen: list[httpx2.Request] = []
    app, served = build(answering(200, TENANT_ACME, seen))
    with TestClient(app) as client:
        response = client.get("/items", headers=BEARER)
    assert response.status_code == 200, response.text
    assert response.json() == ["acme/1", "acme/2"]
    assert response.headers["x-decision-id"] == "plan-1"
    assert seen[0].url.path == "/v1/filter"
    assert seen[0].headers["authorization"] == "Bearer t"
    assert json.loads(seen[0].content) == {"action": "read", "resource_type": "Item"}
    assert served == ["items"]


@pytest.mark.parametrize(
    ("answer", "listed"),
    [
        (plan("always_denied"), []),
        (plan("always_allowed"), ["acme/1", "acme/2", "globex/1"]),
        (
            plan(
                "conditional",
                {"op": "eq", "field": "owner", "value": {"type": "User", "id": "acme/carol"}},
            ),
            ["acme/1"],
        ),
    ],
)
def test_each_kind_of_plan(answer: dict[str, Any], listed: list[str]) -> None:
    app, _ = build(answering(200, answer))
    with TestClient(app) as client:
        assert client.get("/items", headers=BEARER).json() == listed


def test_plan_dependency_and_principal_reuse_one_call() -> None:
    seen: list[httpx2.Request] = []
    app, _ = build(answering(200, plan("always_denied"), seen))
    with TestClient(app) as client:
        response = client.get("/plan", headers=BEARER)
    assert response.json() == {"decision": "always_denied", "principal": "acme/carol"}
    assert [r.url.path for r in seen] == ["/v1/filter"]
    assert json.loads(seen[0].content)["context"] == {"a": 1}


def test_missing_and_refused_tokens_are_401() -> None:
    challenge = 'Bearer error="invalid_token", error_description="token_expired"'
    problem = {"status": 401, "title": "Unauthorized", "reason": "token_expired"}
    app, served = build(
        lambda r: httpx2.Response(401, json=problem, headers={"www-authenticate": challenge})
    )
    with TestClient(app) as client:
        missing = client.get("/items")
        refused = client.get("/items", headers=BEARER)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == challenge
    assert refused.json()["reason"] == "token_expired"
    assert served == []


@pytest.mark.parametrize(
    "handler",
    [
        answering(503, {"title": "down"}),
        answering(500, {"title": "boom"}),
        answering(400, {"detail": "unknown resource type"}),
        answering(
            200, {**TENANT_ACME, "condition": {"op": "like", "field": "owner", "value": "*"}}
        ),
        answering(200, {**TENANT_ACME, "resource_type": "Document"}),
    ],
)
def test_no_plan_is_503(handler: Handler) -> None:
    app, served = build(handler)
    with TestClient(app) as client:
        response = client.get("/items", headers=BEARER)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert "acme/1" not in response.text
    assert served == []


def test_a_policy_that_cannot_be_a_filter_is_a_503_without_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unsupported = {
        "status": 422,
        "title": "Unprocessable Content",
        "detail": "policy `by-name` cannot be written as a filter",
        "reason": "filter_unsupported",
        "policy": "by-name",
    }
    app, served = build(answering(422, unsupported))
    with caplog.at_level(logging.ERROR, logger="warden.fastapi"), TestClient(app) as client:
        response = client.get("/items", headers=BEARER)
    assert response.status_code == 503
    problem = response.json()
    assert problem["reason"] == "filter_unsupported"
    assert problem["type"].endswith("/filter-unsupported")
    assert "by-name" not in response.text  # the policy goes to the log, not to the client
    assert "retry-after" not in response.headers
    assert "by-name" in caplog.text
    assert served == []


def test_a_field_the_map_does_not_map_is_a_503(caplog: pytest.LogCaptureFixture) -> None:
    app, served = build(answering(200, TENANT_ACME))
    with caplog.at_level(logging.ERROR, logger="warden.fastapi"), TestClient(app) as client:
        response = client.get("/narrow", headers=BEARER)
    assert response.status_code == 503
    assert response.json()["reason"] == "filter_unmapped"
    assert response.json()["decision_id"] == "plan-1"
    assert "`tenant`" in caplog.text
    assert served == []


def test_filter_routes_count_as_protected() -> None:
    app, _ = build(answering(200, TENANT_ACME))
    assert routes_without_warden(app) == []


def test_the_plan_is_kept_on_the_request() -> None:
    app, _ = build(answering(200, TENANT_ACME))
    kept: list[list[FilterPlan]] = []
    warden = Warden(
        AsyncWardenClient(
            "http://warden.test", transport=httpx2.MockTransport(answering(200, TENANT_ACME))
        )
    )

    @app.get("/kept")
    async def kept_route(
        request: Request,
        query: Annotated[Select[Any], Depends(warden.filter(Item, "read", FIELD_MAP))],
    ) -> None:
        kept.append(filter_plans_of(request))

    with TestClient(app) as client:
        assert client.get("/kept", headers=BEARER).status_code == 200
    assert [p.decision_id for p in kept[0]] == ["plan-1"]


def test_resource_type_defaults_and_can_be_given() -> None:
    seen: list[httpx2.Request] = []
    warden = Warden(
        AsyncWardenClient(
            "http://warden.test", transport=httpx2.MockTransport(answering(200, TENANT_ACME, seen))
        )
    )
    named = warden.filter(Item, "read", FIELD_MAP, resource_type="Document")
    assert named.__name__ == "warden_filter_read_Document"
    typed = warden.filter(Item, "read", FieldMap(id=Item.id, resource_type="Thing"))
    assert typed.__name__ == "warden_filter_read_Thing"
    assert warden.filter(Item, "read", FIELD_MAP).__name__ == "warden_filter_read_Item"
