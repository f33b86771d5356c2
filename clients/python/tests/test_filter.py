"""`filter`, `filter_for` and the searches against a mock Warden (issue #21): the requests they
send, the plans and pages they parse, and every answer that is not a plan failing closed."""

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
    EntityRef,
    FilterUnsupportedError,
    InvalidTokenError,
    WardenClient,
    WardenProtocolError,
    WardenRequestError,
    WardenUnavailableError,
)
from warden.models import (
    And,
    Compare,
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
)

Handler = Callable[[httpx2.Request], httpx2.Response]

CONDITION = {
    "op": "and",
    "args": [
        {"op": "eq", "field": "tenant", "value": {"type": "Tenant", "id": "acme"}},
        {
            "op": "or",
            "args": [
                {"op": "eq", "field": "owner", "value": {"type": "User", "id": "acme/alice"}},
                {"op": "not", "arg": {"op": "eq", "field": "classification", "value": "x"}},
                {"op": "le", "field": "level", "value": 3},
                {"op": "in_set", "field": "classification", "values": ["a", "b"]},
                {"op": "contains", "field": "tags", "value": "t"},
                {"op": "contains_any", "field": "tags", "values": ["t", "u"]},
                {"op": "contains_all", "field": "tags", "values": []},
                {"op": "has", "field": "note"},
                {"op": "id_in", "ids": ["acme/d1"]},
                {"op": "member_of", "entity": {"type": "Folder", "id": "acme/f1"}},
                {"op": "ne", "field": "archived", "value": True},
            ],
        },
    ],
}

PLAN = {
    "decision": "conditional",
    "condition": CONDITION,
    "action": "read",
    "resource_type": "Document",
    "principal": {"type": "User", "id": "acme/alice", "tenant": "acme"},
    "tenant": {"type": "Tenant", "id": "acme"},
    "policies": ["viewers-read", "owners-edit-delete"],
    "policy_revision": "c0cbc5e76842af6d",
    "decision_id": "0190a0a0-0000-7000-8000-000000000009",
    "reason": "permitted",
}

DENIED = {
    **{k: v for k, v in PLAN.items() if k != "condition"},
    "decision": "always_denied",
    "reason": "principal_disabled",
    "policies": [],
}

UNSUPPORTED = {
    "type": "https://warden.dev/problems/filter-unsupported",
    "title": "Unprocessable Content",
    "status": 422,
    "detail": "policy `x` cannot be written as a filter: `like`",
    "reason": "filter_unsupported",
    "policy": "x",
}


def recording(answers: list[tuple[int, Any]], seen: list[httpx2.Request]) -> Handler:
    """Answers in turn (the last one again when they run out), recording each request."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        status, body = answers[min(len(seen), len(answers)) - 1]
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx2.Response(status, content=content)

    return handler


def sync_client(handler: Handler, **kwargs: Any) -> WardenClient:
    return WardenClient("http://warden.test", transport=httpx2.MockTransport(handler), **kwargs)


def async_client(handler: Handler, **kwargs: Any) -> AsyncWardenClient:
    return AsyncWardenClient(
        "http://warden.test", transport=httpx2.MockTransport(handler), **kwargs
    )


# -- the plan ----------------------------------------------------------------------------------


def test_filter_sends_the_token_and_parses_the_plan() -> None:
    seen: list[httpx2.Request] = []
    with sync_client(recording([(200, PLAN)], seen)) as client:
        plan = client.filter("tok", "read", "Document", context={"ip": "10.0.0.1"})
    assert seen[0].url.path == "/v1/filter"
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert json.loads(seen[0].content) == {
        "action": "read",
        "resource_type": "Document",
        "context": {"ip": "10.0.0.1"},
    }
    assert plan.decision == "conditional" and not plan.always_allowed and not plan.always_denied
    assert plan.condition == CONDITION
    assert plan.principal.id == "acme/alice" and plan.principal.tenant == "acme"
    assert plan.tenant == EntityRef("Tenant", "acme")
    assert plan.policies == ("viewers-read", "owners-edit-delete")
    assert plan.decision_id == PLAN["decision_id"]
    assert plan.condition_tree == And(
        (
            Compare("eq", "tenant", EntityRef("Tenant", "acme")),
            Or(
                (
                    Compare("eq", "owner", EntityRef("User", "acme/alice")),
                    Not(Compare("eq", "classification", "x")),
                    Compare("le", "level", 3),
                    InSet("classification", ("a", "b")),
                    Contains("tags", "t"),
                    ContainsAny("tags", ("t", "u")),
                    ContainsAll("tags", ()),
                    Has("note"),
                    IdIn(("acme/d1",)),
                    MemberOf(EntityRef("Folder", "acme/f1")),
                    Compare("ne", "archived", True),
                )
            ),
        )
    )


def test_filter_for_sends_the_subject_with_the_pep_credential() -> None:
    seen: list[httpx2.Request] = []
    with sync_client(recording([(200, DENIED)], seen), pep_credential="pep") as client:
        plan = client.filter_for(Entity("User", "acme/alice"), "read", "Document")
    assert seen[0].headers["authorization"] == "Bearer pep"
    assert json.loads(seen[0].content) == {
        "subject": {"type": "User", "id": "acme/alice"},
        "action": "read",
        "resource_type": "Document",
    }
    assert plan.always_denied and plan.condition is None and plan.condition_tree is None
    assert plan.reason == "principal_disabled"


def test_a_policy_that_cannot_be_a_filter_is_filter_unsupported() -> None:
    with (
        sync_client(recording([(422, UNSUPPORTED)], [])) as client,
        pytest.raises(FilterUnsupportedError) as refused,
    ):
        client.filter("tok", "read", "Document")
    assert refused.value.policy == "x"
    assert "like" in refused.value.detail
    with (
        sync_client(recording([(422, UNSUPPORTED)], []), pep_credential="p") as client,
        pytest.raises(FilterUnsupportedError),
    ):
        client.filter_for(Entity("User", "acme/alice"), "read", "Document")


def test_a_refused_token_and_a_refused_pep_credential() -> None:
    problem = {"title": "Unauthorized", "status": 401, "reason": "token_expired", "detail": "x"}
    with (
        sync_client(recording([(401, problem)], [])) as client,
        pytest.raises(InvalidTokenError) as refused,
    ):
        client.filter("tok", "read", "Document")
    assert refused.value.reason == "token_expired"
    with (
        sync_client(recording([(401, problem)], []), pep_credential="wrong") as client,
        pytest.raises(WardenRequestError) as rejected,
    ):
        client.filter_for(Entity("User", "acme/alice"), "read", "Document")
    assert rejected.value.status == 401


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"title": "Bad Request", "detail": "unknown action"}, WardenRequestError),
        (422, {"title": "Unprocessable", "reason": "other"}, WardenRequestError),
        (503, {"title": "Unavailable"}, WardenUnavailableError),
        (500, b"<html>", WardenUnavailableError),
        (200, b"{nope", WardenUnavailableError),
        (200, {**PLAN, "decision": "maybe"}, WardenProtocolError),
        (200, {**PLAN, "decision": "always_allowed"}, WardenProtocolError),
        (200, {**PLAN, "condition": None}, WardenProtocolError),
        (
            200,
            {**PLAN, "condition": {"op": "like", "field": "a", "value": "*"}},
            WardenProtocolError,
        ),
        (200, {**PLAN, "condition": {"op": "lt", "field": "a", "value": "1"}}, WardenProtocolError),
        (
            200,
            {**PLAN, "condition": {"op": "gt", "field": "a", "value": True}},
            WardenProtocolError,
        ),
        (200, {**PLAN, "condition": {"op": "eq", "field": "a", "value": 1.5}}, WardenProtocolError),
        (
            200,
            {**PLAN, "condition": {"op": "eq", "field": "a", "value": {"x": 1}}},
            WardenProtocolError,
        ),
        (200, {**PLAN, "condition": {"op": "eq", "value": "x"}}, WardenProtocolError),
        (200, {**PLAN, "condition": {"op": "and", "args": "x"}}, WardenProtocolError),
        (200, {**PLAN, "condition": {"op": "in_set", "field": "a"}}, WardenProtocolError),
        (200, {**PLAN, "condition": {"op": "id_in", "ids": [1]}}, WardenProtocolError),
        (200, {**PLAN, "condition": {"op": "member_of", "entity": "Folder"}}, WardenProtocolError),
        (200, {**PLAN, "action": "edit"}, WardenProtocolError),
        (200, {**PLAN, "resource_type": "Folder"}, WardenProtocolError),
        (200, {k: v for k, v in PLAN.items() if k != "principal"}, WardenProtocolError),
        (200, {k: v for k, v in PLAN.items() if k != "decision_id"}, WardenProtocolError),
    ],
)
def test_anything_but_a_plan_fails_closed(status: int, body: Any, error: type[Exception]) -> None:
    with sync_client(recording([(status, body)], [])) as client, pytest.raises(error):
        client.filter("tok", "read", "Document")


def test_a_tree_deeper_than_any_plan_is_refused() -> None:
    condition: dict[str, Any] = {"op": "has", "field": "a"}
    for _ in range(500):
        condition = {"op": "not", "arg": condition}
    with pytest.raises(WardenProtocolError):
        parse_condition(condition)


def test_a_plan_without_tenancy_has_no_tenant() -> None:
    allowed = {**DENIED, "decision": "always_allowed", "tenant": None, "reason": "permitted"}
    with sync_client(recording([(200, allowed)], [])) as client:
        plan = client.filter("tok", "read", "Document")
    assert plan.always_allowed and plan.tenant is None


def test_async_filter_and_filter_for() -> None:
    async def run() -> None:
        seen: list[httpx2.Request] = []
        handler = recording([(200, PLAN), (200, DENIED), (422, UNSUPPORTED)], seen)
        async with async_client(handler, pep_credential="pep") as client:
            plan = await client.filter("tok", "read", "Document")
            assert plan.condition == CONDITION
            denied = await client.filter_for(Entity("User", "acme/alice"), "read", "Document")
            assert denied.always_denied
            with pytest.raises(FilterUnsupportedError):
                await client.filter("tok", "read", "Document")
        assert [r.headers["authorization"] for r in seen] == [
            "Bearer tok",
            "Bearer pep",
            "Bearer tok",
        ]

    asyncio.run(run())


# -- searches ----------------------------------------------------------------------------------


def page(results: list[dict[str, Any]], next_token: str) -> dict[str, Any]:
    return {"page": {"next_token": next_token, "count": len(results)}, "results": results}


def doc(i: int) -> dict[str, Any]:
    return {"type": "Document", "id": f"acme/d{i}"}


PAGES = [
    (200, page([doc(1), doc(2)], "t1")),
    (200, page([], "t2")),  # a page cut short by the scan bound: empty, and a token
    (200, page([doc(3)], "")),
]


def paged(seen: list[httpx2.Request]) -> Handler:
    """`PAGES`, each answered to the token that asks for it."""
    by_token = {None: PAGES[0][1], "t1": PAGES[1][1], "t2": PAGES[2][1]}

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        token = json.loads(request.content).get("page", {}).get("token")
        return httpx2.Response(200, json=by_token[token])

    return handler


def test_resource_search_follows_the_pages() -> None:
    seen: list[httpx2.Request] = []
    with sync_client(paged(seen), pep_credential="pep") as client:
        found = list(
            client.search_resources(
                Entity("User", "acme/alice"), "read", "Document", page_size=2, context={"a": 1}
            )
        )
    assert found == [Entity("Document", f"acme/d{i}") for i in (1, 2, 3)]
    bodies = [json.loads(r.content) for r in seen]
    assert [r.url.path for r in seen] == ["/access/v1/search/resource"] * 3
    assert all(r.headers["authorization"] == "Bearer pep" for r in seen)
    assert bodies[0] == {
        "subject": {"type": "User", "id": "acme/alice"},
        "action": {"name": "read"},
        "resource": {"type": "Document"},
        "context": {"a": 1},
        "page": {"limit": 2},
    }
    assert [b["page"] for b in bodies] == [
        {"limit": 2},
        {"limit": 2, "token": "t1"},
        {"limit": 2, "token": "t2"},
    ]


def test_max_results_stops_without_asking_for_more() -> None:
    seen: list[httpx2.Request] = []
    with sync_client(paged(seen)) as client:
        subject = Entity("User", "acme/alice")
        assert len(list(client.search_resources(subject, "read", "Document", max_results=2))) == 2
        assert len(seen) == 1
        assert list(client.search_resources(subject, "read", "Document", max_results=0)) == []
        assert len(seen) == 1


def test_subject_and_action_searches() -> None:
    seen: list[httpx2.Request] = []
    answers = [
        (200, page([{"type": "User", "id": "acme/alice"}], "")),
        (200, page([{"name": "read"}, {"name": "edit"}], "")),
    ]
    roadmap = Entity("Document", "acme/roadmap")
    with sync_client(recording(answers, seen)) as client:
        assert list(client.search_subjects("User", "read", roadmap)) == [
            Entity("User", "acme/alice")
        ]
        assert list(client.search_actions(Entity("User", "acme/alice"), roadmap)) == [
            "read",
            "edit",
        ]
    assert json.loads(seen[0].content) == {
        "subject": {"type": "User"},
        "action": {"name": "read"},
        "resource": {"type": "Document", "id": "acme/roadmap"},
    }
    assert seen[1].url.path == "/access/v1/search/action"
    assert json.loads(seen[1].content) == {
        "subject": {"type": "User", "id": "acme/alice"},
        "resource": {"type": "Document", "id": "acme/roadmap"},
    }


@pytest.mark.parametrize(
    "answers",
    [
        [(200, page([{"type": "Folder", "id": "acme/f"}], ""))],  # another type
        [(200, page([doc(1)], "t1")), (200, page([doc(2)], "t1"))],  # a token again
        [(200, {"results": []})],
        [(200, {"page": {"next_token": 3}, "results": []})],
        [(200, {"page": {"next_token": ""}, "results": [{"type": "Document"}]})],
    ],
)
def test_a_garbled_search_fails_closed(answers: list[tuple[int, Any]]) -> None:
    with sync_client(recording(answers, [])) as client, pytest.raises(WardenProtocolError):
        list(client.search_resources(Entity("User", "acme/alice"), "read", "Document"))


def test_search_errors_and_limits() -> None:
    subject = Entity("User", "acme/alice")
    with sync_client(recording([(401, {"title": "no"})], [])) as client:
        with pytest.raises(WardenRequestError):
            list(client.search_resources(subject, "read", "Document"))
        with pytest.raises(ValueError, match="page_size"):
            client.search_resources(subject, "read", "Document", page_size=0)
        with pytest.raises(ValueError, match="max_results"):
            client.search_resources(subject, "read", "Document", max_results=-1)
    with (
        sync_client(recording([(503, {"title": "down"})], [])) as client,
        pytest.raises(WardenUnavailableError),
    ):
        list(client.search_actions(subject, Entity("Document", "acme/roadmap")))


def test_async_searches() -> None:
    async def run() -> None:
        seen: list[httpx2.Request] = []
        async with async_client(paged(seen)) as client:
            subject = Entity("User", "acme/alice")
            found = [e async for e in client.search_resources(subject, "read", "Document")]
            assert [e.id for e in found] == ["acme/d1", "acme/d2", "acme/d3"]
            assert len(seen) == 3
            first = [
                e async for e in client.search_resources(subject, "read", "Document", max_results=1)
            ]
            assert [e.id for e in first] == ["acme/d1"]
            assert len(seen) == 4

    asyncio.run(run())
