"""`warden.fastapi` against a mock Warden: status codes, headers, OpenAPI, route audit."""

import json
from collections.abc import Callable
from typing import Annotated, Any

import httpx2
import pytest
from fastapi import APIRouter, Depends, FastAPI, Security
from fastapi.testclient import TestClient

from warden import AsyncWardenClient, Principal
from warden.fastapi import Authorized, LoadedResource, Probe, Warden, routes_without_warden

PRINCIPAL = {"type": "User", "id": "acme/carol", "tenant": "acme"}
AUTHENTICATED = {
    "principal": {**PRINCIPAL, "subject": "carol", "roles": [], "scopes": []},
    "issuer": "https://idp.test",
    "expires_at": None,
}


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

    @app.get("/me")
    async def me(principal: Annotated[Principal, Depends(warden.principal)]) -> dict[str, str]:
        served.append("me")
        return {"id": principal.id}

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
                ("GET", "/me"),
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


def test_identity_only_route_authenticates_without_a_decision() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.url.path != "/v1/authenticate":
            raise AssertionError(f"no decision may be asked: {request.url.path}")
        return httpx2.Response(200, json=AUTHENTICATED)

    app, served = build(handler)
    with TestClient(app) as client:
        response = client.get("/me", headers={"Authorization": "Bearer t"})
    assert response.status_code == 200
    assert response.json() == {"id": "acme/carol"}
    assert "x-decision-id" not in response.headers
    assert served == ["me"]
    assert [(r.method, r.url.path, r.content) for r in seen] == [("POST", "/v1/authenticate", b"")]
    assert seen[0].headers["authorization"] == "Bearer t"


def test_identity_only_route_refuses_a_revoked_token() -> None:
    challenge = 'Bearer error="invalid_token", error_description="token_revoked"'
    problem = {"status": 401, "title": "Unauthorized", "reason": "token_revoked"}
    app, served = build(
        lambda r: httpx2.Response(401, json=problem, headers={"www-authenticate": challenge})
    )
    with TestClient(app) as client:
        response = client.get("/me", headers={"Authorization": "Bearer t"})
        missing = client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == "token_revoked"
    assert missing.status_code == 401 and missing.json()["reason"] == "token_missing"
    assert served == []


def test_identity_only_route_fails_closed_when_the_store_is_stale() -> None:
    problem = {"status": 503, "title": "Service Unavailable", "detail": "revocations cannot be"}
    app, served = build(lambda r: httpx2.Response(503, json=problem))
    with TestClient(app) as client:
        response = client.get("/me", headers={"Authorization": "Bearer t"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert served == []


def test_probe_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="probe"):
        Warden(probe=Probe())
