"""`warden.fastapi` against a mock Warden: status codes, headers, OpenAPI, route audit."""

import json
from collections.abc import Callable
from typing import Annotated, Any

import httpx2
from fastapi import APIRouter, Depends, FastAPI, Security
from fastapi.testclient import TestClient

from warden import AsyncWardenClient, Principal
from warden.fastapi import Authorized, LoadedResource, Warden, routes_without_warden

PRINCIPAL = {"type": "User", "id": "acme/carol", "tenant": "acme"}


def decision(allowed: bool, reason: str, decision_id: str = "dec-1") -> dict[str, Any]:
    return {
        "decision": "allow" if allowed else "deny",
        "decision_id": decision_id,
        "reason": reason,
        "reasons": [],
        "errors": [],
        "principal": PRINCIPAL,
        "policy_revision": "rev",
    }


def build(handler: Callable[[httpx2.Request], httpx2.Response]) -> tuple[FastAPI, list[str]]:
    served: list[str] = []
    client = AsyncWardenClient("http://warden.test", transport=httpx2.MockTransport(handler))
    warden = Warden(client)
    app = FastAPI()
    warden.install(app)

    @app.get("/docs/{doc_id}")
    async def read(
        auth: Annotated[
            Authorized[Any], Depends(warden.authorize("read", "Document", id_param="doc_id"))
        ],
    ) -> dict[str, str]:
        served.append("read")
        return {"principal": auth.principal.id}

    def load(doc_id: str) -> LoadedResource[str]:
        return LoadedResource(f"acme/{doc_id}", value=None if doc_id == "gone" else doc_id)

    @app.delete("/docs/{doc_id}", status_code=204)
    async def delete(
        auth: Annotated[
            Authorized[str], Security(warden.authorize("delete", "Document", load=load))
        ],
    ) -> None:
        served.append(f"delete {auth.resource}")

    router = APIRouter(
        prefix="/tenants/{tenant}",
        dependencies=[Depends(warden.authorize("list", "Tenant", id_param="tenant"))],
    )

    @router.get("/who")
    async def who(principal: Annotated[Principal, Depends(warden.principal)]) -> dict[str, str]:
        served.append("who")
        return {"id": principal.id}

    app.include_router(router)

    @app.get("/open")
    async def open_route() -> dict[str, str]:
        return {}

    return app, served


def test_allow_serves_and_echoes_the_decision_id() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        return httpx2.Response(200, json=decision(True, "permitted", "dec-42"))

    app, served = build(handler)
    with TestClient(app) as client:
        response = client.get("/docs/acme-roadmap", headers={"Authorization": "Bearer t"})
    assert response.status_code == 200
    assert response.headers["x-decision-id"] == "dec-42"
    assert served == ["read"]
    assert seen == [{"action": "read", "resource": {"type": "Document", "id": "acme-roadmap"}}]


def test_deny_is_403_with_reason_and_not_served() -> None:
    app, served = build(lambda r: httpx2.Response(200, json=decision(False, "tenant_boundary")))
    with TestClient(app) as client:
        response = client.delete("/docs/x", headers={"Authorization": "Bearer t"})
    assert response.status_code == 403
    assert response.json()["reason"] == "tenant_boundary"
    assert response.headers["x-decision-id"] == "dec-1"
    assert served == []


def test_allowed_but_not_found_is_404_after_the_decision() -> None:
    app, served = build(lambda r: httpx2.Response(200, json=decision(True, "permitted")))
    with TestClient(app) as client:
        assert client.delete("/docs/gone", headers={"Authorization": "Bearer t"}).status_code == 404
        assert client.delete("/docs/here", headers={"Authorization": "Bearer t"}).status_code == 204
    assert served == ["delete here"]


def test_missing_token_never_reaches_warden() -> None:
    def fail(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("Warden must not be asked")

    app, served = build(fail)
    with TestClient(app) as client:
        response = client.get("/docs/x")
        basic = client.get("/docs/x", headers={"Authorization": "Basic dTpw"})
    for refused in (response, basic):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
    assert served == []


def test_refused_token_passes_warden_challenge_through() -> None:
    challenge = 'Bearer error="invalid_token", error_description="token_expired"'
    problem = {"status": 401, "title": "Unauthorized", "reason": "token_expired"}
    app, _ = build(
        lambda r: httpx2.Response(401, json=problem, headers={"www-authenticate": challenge})
    )
    with TestClient(app) as client:
        response = client.get("/docs/x", headers={"Authorization": "Bearer t"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    assert response.json()["reason"] == "token_expired"


def test_warden_failures_are_503_and_not_served() -> None:
    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    for handler in (
        down,
        lambda r: httpx2.Response(500, text="boom"),
        lambda r: httpx2.Response(200, text="<html>"),
        lambda r: httpx2.Response(400, json={"detail": "bad"}),
    ):
        app, served = build(handler)
        with TestClient(app) as client:
            for method, path in (
                ("GET", "/docs/x"),
                ("DELETE", "/docs/x"),
                ("GET", "/tenants/a/who"),
            ):
                response = client.request(method, path, headers={"Authorization": "Bearer t"})
                assert response.status_code == 503
                assert response.headers["content-type"] == "application/problem+json"
        assert served == []


def test_router_dependency_decision_feeds_principal_without_a_second_call() -> None:
    calls: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(json.loads(request.content))
        return httpx2.Response(200, json=decision(True, "permitted"))

    app, _ = build(handler)
    with TestClient(app) as client:
        response = client.get("/tenants/acme/who", headers={"Authorization": "Bearer t"})
    assert response.json() == {"id": "acme/carol"}
    assert calls == [{"action": "list", "resource": {"type": "Tenant", "id": "acme"}}]


def test_unprotected_routes_are_listed() -> None:
    app, _ = build(lambda r: httpx2.Response(200, json=decision(True, "permitted")))
    assert routes_without_warden(app) == ["GET /open"]
    assert routes_without_warden(app, allow={"/open"}) == []


def test_openapi_declares_the_bearer_scheme() -> None:
    app, _ = build(lambda r: httpx2.Response(200, json=decision(True, "permitted")))
    spec = app.openapi()
    assert spec["components"]["securitySchemes"]["WardenBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/docs/{doc_id}"]["delete"]["security"] == [{"WardenBearer": []}]
    assert "security" not in spec["paths"]["/open"]["get"]
