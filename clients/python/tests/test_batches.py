"""The batch calls (`evaluate_many`, `check_many`, `Warden.filter_allowed`) against a real HTTP
server on 127.0.0.1 that plays Warden with scripted answers and records every request.

Issue #18: an answer with another number of items than requested must never pass for a
complete one (a missing deny would read as no deny).
"""

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from warden import (
    AsyncWardenClient,
    Check,
    Decision,
    Entity,
    Evaluation,
    EvaluationRequest,
    InvalidTokenError,
    WardenClient,
    WardenProtocolError,
    WardenRequestError,
)
from warden.fastapi import Warden, decisions_of

PRINCIPAL = {"type": "User", "id": "acme/carol", "tenant": "acme"}
CHALLENGE = 'Bearer error="invalid_token", error_description="token_expired"'
EXPIRED = {
    "type": "https://warden.dev/problems/invalid-token",
    "title": "Unauthorized",
    "status": 401,
    "detail": "token_expired: the token expired",
    "reason": "token_expired",
}


@dataclass
class Seen:
    """One request the fake Warden received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeWarden:
    """Answers each request with the next scripted `(status, body, headers)`; 500 when none
    is left."""

    url: str = ""
    script: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, status: int, body: Any, **headers: str) -> None:
        self.script.append((status, body, headers))

    def next_answer(self, seen: Seen) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append(seen)
            if self.script:
                return self.script.pop(0)
        return 500, {"title": "no scripted answer"}, {}


def serve(fake: FakeWarden) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            seen = Seen(
                self.command,
                self.path,
                {key.lower(): value for key, value in self.headers.items()},
                json.loads(raw) if raw else None,
            )
            status, body, headers = fake.next_answer(seen)
            content = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


@pytest.fixture
def fake() -> Iterator[FakeWarden]:
    fake = FakeWarden()
    server = serve(fake)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


CAROL = Entity("User", "acme/carol")
ROADMAP = Entity("Document", "acme/roadmap")


def evaluations_answer(decisions: list[bool]) -> dict[str, Any]:
    return {
        "evaluations": [
            {"decision": allowed, "context": {"decision_id": f"d{i}"}}
            for i, allowed in enumerate(decisions)
        ]
    }


def evaluate_many(fake: FakeWarden, mode: str, n: int, semantic: str | None) -> list[Evaluation]:
    """`evaluate_many` of `n` items with the sync or the async client."""
    batch = [EvaluationRequest(action=f"action-{i}") for i in range(n)]
    if mode == "sync":
        with WardenClient(fake.url, pep_credential="pep") as client:
            return client.evaluate_many(batch, subject=CAROL, resource=ROADMAP, semantic=semantic)

    async def run() -> list[Evaluation]:
        async with AsyncWardenClient(fake.url, pep_credential="pep") as client:
            return await client.evaluate_many(
                batch, subject=CAROL, resource=ROADMAP, semantic=semantic
            )

    return asyncio.run(run())


# --- evaluate_many: the count of the answer (#18) ---------------------------------------------

# (semantic, requested, the answer's decisions): answers that are complete for the semantic.
COMPLETE = [
    (None, 2, [True, False]),
    ("execute_all", 2, [False, True]),
    (None, 0, []),
    ("deny_on_first_deny", 3, [True, False]),
    ("deny_on_first_deny", 3, [False]),
    ("deny_on_first_deny", 2, [True, True]),
    ("permit_on_first_permit", 3, [False, True]),
    ("permit_on_first_permit", 3, [True]),
    ("permit_on_first_permit", 2, [False, False]),
]

# Answers that are not: short without a reason, empty, longer than the batch, or going on
# past the decision that stops a short-circuit semantic.
INCOMPLETE = [
    (None, 2, [True]),
    ("execute_all", 2, [True]),
    ("execute_all", 3, [True, False]),
    (None, 2, []),
    ("execute_all", 1, []),
    ("deny_on_first_deny", 3, [True, True]),
    ("deny_on_first_deny", 2, []),
    ("permit_on_first_permit", 3, [False, False]),
    ("permit_on_first_permit", 2, []),
    ("an_unknown_semantic", 2, [False]),
    (None, 1, [True, True]),
    ("deny_on_first_deny", 1, [False, False]),
    ("permit_on_first_permit", 0, [True]),
    # Past the decision that stops the semantic: the server would have stopped there.
    ("deny_on_first_deny", 3, [False, False]),
    ("deny_on_first_deny", 3, [True, False, True]),
    ("permit_on_first_permit", 3, [True, True]),
]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("semantic", "requested", "decisions"), COMPLETE)
def test_evaluate_many_accepts_a_complete_answer(
    fake: FakeWarden, mode: str, semantic: str | None, requested: int, decisions: list[bool]
) -> None:
    fake.answer(200, evaluations_answer(decisions))
    results = evaluate_many(fake, mode, requested, semantic)
    assert [r.allowed for r in results] == decisions
    assert [r.decision_id for r in results] == [f"d{i}" for i in range(len(decisions))]
    sent = fake.requests[0]
    assert sent.path == "/access/v1/evaluations"
    assert len(sent.body["evaluations"]) == requested
    if semantic is not None:
        assert sent.body["options"] == {"evaluations_semantic": semantic}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("semantic", "requested", "decisions"), INCOMPLETE)
def test_evaluate_many_refuses_an_answer_of_the_wrong_length_issue_18(
    fake: FakeWarden, mode: str, semantic: str | None, requested: int, decisions: list[bool]
) -> None:
    fake.answer(200, evaluations_answer(decisions))
    with pytest.raises(WardenProtocolError, match=f"{len(decisions)} evaluations"):
        evaluate_many(fake, mode, requested, semantic)


# --- check_many ----------------------------------------------------------------------------


def result(allowed: bool, decision_id: str, reason: str) -> dict[str, Any]:
    return {
        "decision": "allow" if allowed else "deny",
        "decision_id": decision_id,
        "reason": reason,
        "reasons": [{"policy": "viewers-read", "description": "Viewers may read"}]
        if allowed
        else [],
        "errors": [],
    }


def checks_answer(*results: dict[str, Any]) -> dict[str, Any]:
    return {"principal": PRINCIPAL, "policy_revision": "rev-1", "results": list(results)}


CHECKS = [
    Check("read", Entity("Document", "acme/roadmap")),
    Check(
        "read",
        Entity("Document", "acme/salaries", {"classification": "restricted"}),
        context={"ip": "10.0.0.1"},
    ),
    Check("edit", Entity("Document", "acme/nda")),
]


def check_many(fake: FakeWarden, mode: str, token: str, checks: list[Check]) -> list[Decision]:
    if mode == "sync":
        with WardenClient(fake.url) as client:
            return client.check_many(token, checks)

    async def run() -> list[Decision]:
        async with AsyncWardenClient(fake.url) as client:
            return await client.check_many(token, checks)

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_check_many_sends_one_request_and_returns_the_decisions_in_order(
    fake: FakeWarden, mode: str
) -> None:
    fake.answer(
        200,
        checks_answer(
            result(True, "d1", "permitted"),
            result(False, "d2", "forbidden"),
            result(False, "d3", "no_permit"),
        ),
    )
    decisions = check_many(fake, mode, "tok", CHECKS)
    assert [(d.allowed, d.decision_id, d.reason) for d in decisions] == [
        (True, "d1", "permitted"),
        (False, "d2", "forbidden"),
        (False, "d3", "no_permit"),
    ]
    assert all(d.principal.id == "acme/carol" and d.policy_revision == "rev-1" for d in decisions)
    assert decisions[0].reasons[0].policy == "viewers-read"
    assert len(fake.requests) == 1
    sent = fake.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/checks")
    assert sent.headers["authorization"] == "Bearer tok"
    assert sent.body == {
        "checks": [
            {"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}},
            {
                "action": "read",
                "resource": {
                    "type": "Document",
                    "id": "acme/salaries",
                    "properties": {"classification": "restricted"},
                },
                "context": {"ip": "10.0.0.1"},
            },
            {"action": "edit", "resource": {"type": "Document", "id": "acme/nda"}},
        ]
    }


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("answered", [0, 2, 4])
def test_check_many_refuses_another_number_of_results(
    fake: FakeWarden, mode: str, answered: int
) -> None:
    fake.answer(200, checks_answer(*[result(True, f"d{i}", "permitted") for i in range(answered)]))
    with pytest.raises(WardenProtocolError, match=f"{answered} results to 3 checks"):
        check_many(fake, mode, "tok", CHECKS)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    "body",
    [
        {"principal": PRINCIPAL, "policy_revision": "r", "results": [{"decision": "yes"}]},
        {"principal": PRINCIPAL, "policy_revision": "r", "results": [True]},
        {"principal": PRINCIPAL, "policy_revision": "r"},
        {"policy_revision": "r", "results": [result(True, "d1", "permitted")]},
        {"principal": PRINCIPAL, "results": [result(True, "d1", "permitted")]},
        {**result(True, "d1", "permitted"), "principal": PRINCIPAL, "policy_revision": "r"},
    ],
)
def test_check_many_garbled_answer_is_a_protocol_error(
    fake: FakeWarden, mode: str, body: dict[str, Any]
) -> None:
    fake.answer(200, body)
    with pytest.raises(WardenProtocolError):
        check_many(fake, mode, "tok", CHECKS[:1])


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_check_many_refused_token_is_invalid_token_error(fake: FakeWarden, mode: str) -> None:
    fake.answer(401, EXPIRED, **{"WWW-Authenticate": CHALLENGE})
    with pytest.raises(InvalidTokenError) as refused:
        check_many(fake, mode, "tok", CHECKS)
    assert refused.value.reason == "token_expired"
    assert refused.value.www_authenticate == CHALLENGE


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_check_many_rejected_batch_is_a_request_error(fake: FakeWarden, mode: str) -> None:
    fake.answer(400, {"status": 400, "detail": "101 checks in one request; the limit is 100"})
    with pytest.raises(WardenRequestError) as rejected:
        check_many(fake, mode, "tok", CHECKS)
    assert rejected.value.status == 400 and "limit" in rejected.value.detail


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_check_many_never_sends_a_header_splitting_token(fake: FakeWarden, mode: str) -> None:
    for token in ("", "a\r\nX-Evil: 1"):
        with pytest.raises(InvalidTokenError):
            check_many(fake, mode, token, CHECKS)
    assert fake.requests == []


# --- Warden.filter_allowed ------------------------------------------------------------------


def filtering_app(fake: FakeWarden, batch_size: int = 100) -> FastAPI:
    """`GET /items?names=a,b,c` lists the named items Warden allows the caller to `read`."""
    warden = Warden(AsyncWardenClient(fake.url))
    app = FastAPI()
    warden.install(app)

    @app.get("/items")
    async def items(
        names: str, request: Request, token: Annotated[str, Depends(warden.token)]
    ) -> dict[str, Any]:
        wanted = [name for name in names.split(",") if name]
        allowed = await warden.filter_allowed(
            request,
            token,
            "read",
            wanted,
            lambda name: Entity("Item", f"acme/{name}", {"name": name}),
            batch_size=batch_size,
        )
        return {"allowed": allowed, "decisions": [d.decision_id for d in decisions_of(request)]}

    return app


def test_filter_allowed_keeps_the_allowed_items_in_order(fake: FakeWarden) -> None:
    fake.answer(
        200,
        checks_answer(
            result(False, "d1", "forbidden"),
            result(True, "d2", "permitted"),
            result(True, "d3", "permitted"),
            result(False, "d4", "no_permit"),
        ),
    )
    with TestClient(filtering_app(fake)) as client:
        response = client.get("/items?names=a,b,c,d", headers={"Authorization": "Bearer t"})
    assert response.status_code == 200, response.text
    assert response.json() == {"allowed": ["b", "c"], "decisions": ["d1", "d2", "d3", "d4"]}
    [sent] = fake.requests
    assert sent.path == "/v1/checks"
    assert sent.headers["authorization"] == "Bearer t"
    assert sent.body["checks"][0] == {
        "action": "read",
        "resource": {"type": "Item", "id": "acme/a", "properties": {"name": "a"}},
    }


def test_filter_allowed_splits_into_batches(fake: FakeWarden) -> None:
    fake.answer(200, checks_answer(result(True, "d1", "p"), result(False, "d2", "n")))
    fake.answer(200, checks_answer(result(True, "d3", "p"), result(True, "d4", "p")))
    fake.answer(200, checks_answer(result(False, "d5", "n")))
    with TestClient(filtering_app(fake, batch_size=2)) as client:
        response = client.get("/items?names=a,b,c,d,e", headers={"Authorization": "Bearer t"})
    assert response.status_code == 200, response.text
    assert response.json()["allowed"] == ["a", "c", "d"]
    assert [[c["resource"]["id"] for c in r.body["checks"]] for r in fake.requests] == [
        ["acme/a", "acme/b"],
        ["acme/c", "acme/d"],
        ["acme/e"],
    ]


def test_filter_allowed_asks_nothing_for_no_items(fake: FakeWarden) -> None:
    with TestClient(filtering_app(fake)) as client:
        response = client.get("/items?names=", headers={"Authorization": "Bearer t"})
    assert response.json() == {"allowed": [], "decisions": []}
    assert fake.requests == []


@pytest.mark.parametrize(
    "answer",
    [
        (200, checks_answer(result(True, "d1", "permitted"))),  # 1 result to 2 checks
        (400, {"status": 400, "detail": "too many checks"}),
        (500, {"title": "Internal"}),
    ],
)
def test_filter_allowed_fails_closed_without_a_partial_list(
    fake: FakeWarden, answer: tuple[int, Any]
) -> None:
    fake.answer(*answer)
    with TestClient(filtering_app(fake)) as client:
        response = client.get("/items?names=a,b", headers={"Authorization": "Bearer t"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "allowed" not in response.json()


def test_filter_allowed_passes_a_refused_token_on_as_401(fake: FakeWarden) -> None:
    fake.answer(401, EXPIRED, **{"WWW-Authenticate": CHALLENGE})
    with TestClient(filtering_app(fake)) as client:
        response = client.get("/items?names=a", headers={"Authorization": "Bearer t"})
        missing = client.get("/items?names=a")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.json()["reason"] == "token_expired"
    assert missing.status_code == 401 and missing.json()["reason"] == "token_missing"
    assert len(fake.requests) == 1


def test_filter_allowed_refuses_a_batch_size_below_one(fake: FakeWarden) -> None:
    with TestClient(filtering_app(fake, batch_size=0)) as client, pytest.raises(ValueError):
        client.get("/items?names=a", headers={"Authorization": "Bearer t"})


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_check_many_refuses_no_checks_without_asking(fake: FakeWarden, mode: str) -> None:
    # Warden refuses an empty batch (it would only vouch for the token); the SDK says so first.
    with pytest.raises(ValueError, match="at least one check"):
        check_many(fake, mode, "tok", [])
    assert fake.requests == []
