"""The context token through real gateways (issue #23): on allow, Warden's forward-auth answer
carries `X-Warden-Context`, nginx (`auth_request_set` + `proxy_set_header`) and Caddy
(`copy_headers`) pass it to the example app, and the app (`WARDEN_CONTEXT_AUDIENCE=docs-app`)
takes it instead of its own check when the check has no other input. Every test runs through
both gateways.

- The list (`GET /tenants/acme/documents`, `authorize("list", "Tenant", id_param="tenant")`, no
  properties): the app's check is the gateway's decision (same id, `policy_revision`
  "gateway"), and Warden's decision log holds no second `list` decision. The rows are still
  filtered with the bearer token (`/v1/filter`, a decision of its own, whose id is then the
  answer's `X-Decision-Id`: the last decision the app made).
- A document read (`load=` with the document's properties): the app makes its own check, which
  agrees with the gateway's (allowed, same principal, action and resource, another id).
- A client cannot bring its own context token: nginx overwrites the header, Caddy drops it
  before `forward_auth`; a real one of Warden's, sent without a bearer token, is refused at the
  gateway like no token at all.

What reached the app and which decisions it took are in its request log and in the
`X-Test-Decisions` header of its answers (`gateway_app.py`); the app never logs a token, only a
short hash of it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import stack
from stack import Answer, App, Gateway, SigningKey, Warden

LISTING = "/tenants/acme/documents"
ROADMAP = "/tenants/acme/documents/roadmap"


@dataclass
class Outcome:
    answer: Answer
    records: list[dict[str, Any]]
    """Every decision this request added to Warden's decision log (the gateway's and the app's)."""
    reached_app: list[dict[str, Any]]

    @property
    def gateway_record(self) -> dict[str, Any]:
        found = [record for record in self.records if record.get("entry") == "forward_auth"]
        assert len(found) == 1, self.records
        return found[0]

    @property
    def app_records(self) -> list[dict[str, Any]]:
        return [record for record in self.records if record.get("entry") != "forward_auth"]

    def app_decisions(self) -> list[tuple[str, str]]:
        """`(decision id, policy revision)` of each check the app's dependencies took."""
        header = self.answer.headers.get("x-test-decisions", "")
        pairs = [item.split(";", 1) for item in header.split(",") if item]
        return [(pair[0], pair[1]) for pair in pairs]


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def through(
    gateway: Gateway,
    warden: Warden,
    app: App,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Outcome:
    """`GET path` through `gateway`; the tests run one at a time, so the decisions past the
    ones logged before are this request's."""
    request_id = str(uuid.uuid4())
    sent = {"X-Test-Request-Id": request_id, **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    before = len(warden.decisions())
    answer = stack.send(gateway.port, "GET", path, headers=sent)
    records = [r for r in warden.decisions()[before:] if r.get("kind") == "decision"]
    return Outcome(answer, records, app.saw(request_id))


def context_token_from_warden(warden: Warden, path: str, token: str) -> str:
    """A real context token, asked of Warden directly as a gateway would."""
    answer = stack.send(
        warden.port,
        "GET",
        "/v1/forward-auth",
        headers={
            "X-Forwarded-Method": "GET",
            "X-Forwarded-Uri": path,
            "Authorization": f"Bearer {token}",
        },
    )
    assert answer.status == 200, answer.body
    return answer.headers["x-warden-context"]


def test_an_allowed_list_is_decided_once_at_the_gateway(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    outcome = through(gateway, warden, app, LISTING, token=signing_key.mint("carol", "acme"))

    assert outcome.answer.status == 200, outcome.answer.body
    listed = {document["id"] for document in outcome.answer.json()}
    assert "roadmap" in listed
    assert "salaries" not in listed  # restricted: the bearer token's filter still applies
    gate = outcome.gateway_record
    assert (gate["decision"], gate["action"]) == ("allow", "list")
    assert (gate["resource"]["type"], gate["resource"]["id"]) == ("Tenant", "acme")
    [seen] = outcome.reached_app
    assert seen["headers"]["x-decision-id"] == gate["id"]
    assert len(seen["context_tokens"]) == 1
    assert seen["authorization"] is True
    # The app's `list` check is the gateway's decision: its id, taken from the context token.
    assert outcome.app_decisions() == [(gate["id"], "gateway")]
    # Warden decided `list` once (at the gateway); the app's only call was the filter.
    assert [r for r in outcome.records if r.get("action") == "list"] == [gate]
    [plan] = outcome.app_records
    assert (plan["action"], plan["resource"]["type"]) == ("read", "Document"), plan
    assert outcome.answer.headers["x-decision-id"] == plan["id"]


def test_a_document_read_makes_its_own_check_that_agrees(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    outcome = through(gateway, warden, app, ROADMAP, token=signing_key.mint("carol", "acme"))

    assert outcome.answer.status == 200, outcome.answer.body
    gate = outcome.gateway_record
    [seen] = outcome.reached_app
    assert len(seen["context_tokens"]) == 1  # passed along, but not what this check needs
    # The loader sends the document's properties: the app asks Warden itself.
    [check] = outcome.app_records
    assert check["id"] != gate["id"]
    for record in (gate, check):
        assert record["decision"] == "allow", record
        assert record["action"] == "read"
        assert (record["resource"]["type"], record["resource"]["id"]) == (
            "Document",
            "acme/roadmap",
        )
        assert record["principal"]["id"] == "acme/carol"
    [(decision_id, revision)] = outcome.app_decisions()
    assert decision_id == check["id"] == outcome.answer.headers["x-decision-id"]
    assert revision != "gateway"


def test_a_client_cannot_bring_its_own_context_token(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    carol = signing_key.mint("carol", "acme")
    # A real context token of Warden's for the list, asked for directly.
    real = context_token_from_warden(warden, LISTING, carol)
    for sent in (real, "forged.context.token"):
        outcome = through(
            gateway, warden, app, LISTING, token=carol, headers={"X-Warden-Context": sent}
        )
        assert outcome.answer.status == 200, outcome.answer.body
        [seen] = outcome.reached_app
        # The one context token the app got is the gateway's, minted for this request.
        assert len(seen["context_tokens"]) == 1, seen
        assert seen["context_tokens"] != [fingerprint(sent)]
        assert outcome.app_decisions() == [(outcome.gateway_record["id"], "gateway")]

    # Without a bearer token the gateway refuses, whatever context token comes along.
    outcome = through(gateway, warden, app, LISTING, headers={"X-Warden-Context": real})
    assert outcome.answer.status == 401
    assert outcome.reached_app == []
    assert outcome.gateway_record["reason"] == "token_missing"


def test_a_refused_request_carries_no_context_token(
    warden: Warden, signing_key: SigningKey
) -> None:
    # The forward-auth answer of a deny has no context token for the gateway to pass on.
    answer = stack.send(
        warden.port,
        "GET",
        "/v1/forward-auth",
        headers={
            "X-Forwarded-Method": "DELETE",
            "X-Forwarded-Uri": ROADMAP,
            "Authorization": f"Bearer {signing_key.mint('carol', 'acme')}",
        },
    )
    assert answer.status == 403
    assert "x-warden-context" not in answer.headers
