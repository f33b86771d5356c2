"""The clients against a mock Warden: every answer that is not a decision fails closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from warden import (
    AsyncWardenClient,
    Entity,
    InvalidTokenError,
    WardenClient,
    WardenProtocolError,
    WardenRequestError,
    WardenUnavailableError,
)

ALLOW = {
    "decision": "allow",
    "decision_id": "0190a0a0-0000-7000-8000-000000000001",
    "reason": "permitted",
    "reasons": [{"policy": "viewers-read", "description": "Viewers may read"}],
    "errors": [],
    "principal": {"type": "User", "id": "acme/carol", "tenant": "acme"},
    "policy_revision": "c0cbc5e76842af6d",
}

Handler = Callable[[httpx2.Request], httpx2.Response]


def sync_client(handler: Handler, **kwargs: Any) -> WardenClient:
    return WardenClient("http://warden.test", transport=httpx2.MockTransport(handler), **kwargs)


def answer(status: int, body: Any, **headers: str) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx2.Response(status, content=content, headers=headers)

    return handler


def test_check_sends_the_token_and_parses_the_decision() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=ALLOW)

    with sync_client(handler) as client:
        decision = client.check(
            "tok", "read", "Document", "acme/roadmap", properties={"a": 1}, context={"b": 2}
        )
    assert decision.allowed
    assert decision.principal.local_id == "carol"
    assert decision.reasons[0].policy == "viewers-read"
    request = seen[0]
    assert request.url.path == "/v1/check"
    assert request.headers["authorization"] == "Bearer tok"
    assert json.loads(request.content) == {
        "action": "read",
        "resource": {"type": "Document", "id": "acme/roadmap", "properties": {"a": 1}},
        "context": {"b": 2},
    }


def test_deny_is_a_value() -> None:
    deny = {**ALLOW, "decision": "deny", "reason": "no_permit", "reasons": []}
    with sync_client(answer(200, deny)) as client:
        decision = client.check("tok", "edit", "Document", "acme/roadmap")
    assert not decision.allowed and decision.reason == "no_permit"


def test_refused_token_is_invalid_token_error() -> None:
    problem = {
        "type": "t",
        "title": "Unauthorized",
        "status": 401,
        "detail": "x",
        "reason": "token_expired",
    }
    challenge = 'Bearer error="invalid_token", error_description="token_expired"'
    with (
        sync_client(answer(401, problem, **{"www-authenticate": challenge})) as client,
        pytest.raises(InvalidTokenError) as refused,
    ):
        client.check("tok", "read", "Document", "acme/roadmap")
    assert refused.value.reason == "token_expired"
    assert refused.value.www_authenticate == challenge


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"title": "Internal"}),
        (503, b"<html>down</html>"),
        (200, b"{not json"),
        (200, {**ALLOW, "decision": "maybe"}),
        (200, {**ALLOW, "decision": True}),
        (200, {k: v for k, v in ALLOW.items() if k != "principal"}),
        (200, ["allow"]),
        (401, {"title": "no reason code"}),
        (302, b""),
    ],
)
def test_anything_but_a_decision_fails_closed(status: int, body: Any) -> None:
    with sync_client(answer(status, body)) as client, pytest.raises(WardenUnavailableError):
        client.check("tok", "read", "Document", "acme/roadmap")


def test_garbled_decision_is_a_protocol_error() -> None:
    with (
        sync_client(answer(200, {**ALLOW, "decision": "yes"})) as client,
        pytest.raises(WardenProtocolError),
    ):
        client.check("tok", "read", "Document", "acme/roadmap")


def test_rejected_request_is_a_request_error() -> None:
    with (
        sync_client(answer(400, {"detail": "missing field `action`"})) as client,
        pytest.raises(WardenRequestError) as rejected,
    ):
        client.check("tok", "read", "Document", "acme/roadmap")
    assert rejected.value.status == 400 and "action" in rejected.value.detail


def test_unreachable_and_timeouts_fail_closed() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    for handler in (refuse, slow):
        with sync_client(handler) as client, pytest.raises(WardenUnavailableError):
            client.check("tok", "read", "Document", "acme/roadmap")


def test_real_closed_port_fails_closed_quickly() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        WardenClient(f"http://127.0.0.1:{port}", timeout=1.0) as client,
        pytest.raises(WardenUnavailableError),
    ):
        client.check("tok", "read", "Document", "acme/roadmap")


def test_header_splitting_tokens_are_never_sent() -> None:
    def fail(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("must not be sent")

    with sync_client(fail) as client:
        for token in ("", "a\r\nX-Evil: 1"):
            with pytest.raises(InvalidTokenError):
                client.check(token, "read", "Document", "acme/roadmap")


def test_authzen_uses_the_pep_credential_and_batch_defaults() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        item = {"decision": True, "context": {"decision_id": "d1", "reason": "permitted"}}
        if request.url.path.endswith("evaluations"):
            return httpx2.Response(200, json={"evaluations": [item, {"decision": False}]})
        return httpx2.Response(200, json=item)

    from warden import EvaluationRequest

    with sync_client(handler, pep_credential="pep-secret") as client:
        carol = Entity("User", "acme/carol")
        doc = Entity("Document", "acme/roadmap")
        assert client.evaluate(carol, "read", doc).decision_id == "d1"
        results = client.evaluate_many(
            [EvaluationRequest(action="read"), EvaluationRequest(action="delete")],
            subject=carol,
            resource=doc,
            semantic="execute_all",
        )
    assert [r.allowed for r in results] == [True, False]
    assert all(r.headers["authorization"] == "Bearer pep-secret" for r in seen)
    assert json.loads(seen[1].content) == {
        "subject": {"type": "User", "id": "acme/carol"},
        "resource": {"type": "Document", "id": "acme/roadmap"},
        "evaluations": [{"action": {"name": "read"}}, {"action": {"name": "delete"}}],
        "options": {"evaluations_semantic": "execute_all"},
    }


def test_more_answers_than_requests_is_garbled() -> None:
    body = {"evaluations": [{"decision": True}, {"decision": True}]}
    with sync_client(answer(200, body)) as client, pytest.raises(WardenProtocolError):
        client.evaluate_many(
            [], subject=Entity("User", "u"), action="read", resource=Entity("Document", "d")
        )


def test_async_client_matches_the_sync_one() -> None:
    async def run() -> None:
        transport = httpx2.MockTransport(answer(200, ALLOW))
        async with AsyncWardenClient("http://warden.test", transport=transport) as client:
            decision = await client.check("tok", "read", "Document", "acme/roadmap")
            assert decision.allowed
        broken = httpx2.MockTransport(answer(502, b"bad gateway"))
        async with AsyncWardenClient("http://warden.test", transport=broken) as client:
            with pytest.raises(WardenUnavailableError):
                await client.check("tok", "read", "Document", "acme/roadmap")

    asyncio.run(run())


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeouts"):
        WardenClient(timeout=0)


AUTHENTICATED = {
    "principal": {
        "type": "User",
        "id": "acme/carol",
        "tenant": "acme",
        "subject": "carol",
        "roles": ["viewer"],
        "scopes": ["docs:read"],
    },
    "issuer": "https://idp.test",
    "expires_at": 1900000000,
}


def test_authenticate_forwards_the_token_without_a_body() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=AUTHENTICATED)

    with sync_client(handler, pep_credential="pep-secret") as client:
        authentication = client.authenticate("tok")
    assert authentication.principal.id == "acme/carol"
    assert authentication.principal.local_id == "carol"
    assert authentication.subject == "carol"
    assert authentication.roles == ("viewer",)
    assert authentication.scopes == ("docs:read",)
    assert authentication.issuer == "https://idp.test"
    assert authentication.expires_at == 1900000000
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/v1/authenticate"
    assert request.headers["authorization"] == "Bearer tok"
    assert request.content == b""


def test_authenticate_refused_token_keeps_the_reason() -> None:
    problem = {"title": "Unauthorized", "status": 401, "reason": "token_revoked"}
    challenge = 'Bearer error="invalid_token", error_description="token_revoked"'
    with (
        sync_client(answer(401, problem, **{"www-authenticate": challenge})) as client,
        pytest.raises(InvalidTokenError) as refused,
    ):
        client.authenticate("tok")
    assert refused.value.reason == "token_revoked"
    assert refused.value.www_authenticate == challenge


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {"title": "Service Unavailable", "detail": "revocations cannot be checked"}),
        (500, b"boom"),
        (200, b"{not json"),
        (200, {k: v for k, v in AUTHENTICATED.items() if k != "principal"}),
        (200, {**AUTHENTICATED, "expires_at": "soon"}),
        (200, {**AUTHENTICATED, "principal": {"type": "User", "id": "x", "roles": "admin"}}),
        (401, {"title": "no reason code"}),
    ],
)
def test_authenticate_anything_but_an_identity_fails_closed(status: int, body: Any) -> None:
    with sync_client(answer(status, body)) as client, pytest.raises(WardenUnavailableError):
        client.authenticate("tok")


def test_async_authenticate_matches_the_sync_one() -> None:
    async def run() -> None:
        transport = httpx2.MockTransport(answer(200, AUTHENTICATED))
        async with AsyncWardenClient("http://warden.test", transport=transport) as client:
            assert (await client.authenticate("tok")).principal.tenant == "acme"
        refused = httpx2.MockTransport(answer(401, {"reason": "token_expired"}))
        async with AsyncWardenClient("http://warden.test", transport=refused) as client:
            with pytest.raises(InvalidTokenError) as error:
                await client.authenticate("tok")
            assert error.value.reason == "token_expired"

        def down(request: httpx2.Request) -> httpx2.Response:
            raise httpx2.ConnectError("connection refused", request=request)

        async with AsyncWardenClient(
            "http://warden.test", transport=httpx2.MockTransport(down)
        ) as client:
            with pytest.raises(WardenUnavailableError):
                await client.authenticate("tok")

    asyncio.run(run())
