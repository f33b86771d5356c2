"""Warden's `/v1/forward-auth` behind a real nginx (`auth_request`) and a real Caddy
(`forward_auth`), in front of the example FastAPI app: every test runs through both.

A request the gateway lets through reaches the app (its request log has the test's
`X-Test-Request-Id`); one Warden refuses never does. Each gateway request is one
`forward_auth` record in Warden's decision log, read back to check what was decided and why
(nginx answers a refusal with its own error page, so the reason is only in the log there;
Caddy passes Warden's problem JSON through).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

import stack
from stack import Answer, App, Gateway, SigningKey, Warden

ROADMAP = "/tenants/acme/documents/roadmap"
SALARIES = "/tenants/acme/documents/salaries"
GLOBEX_ROADMAP = "/tenants/globex/documents/roadmap"


@dataclass
class Outcome:
    answer: Answer
    request_id: str
    records: list[dict[str, Any]]
    """The `forward_auth` records this request added to the decision log."""
    reached_app: list[dict[str, Any]]
    """The requests with this request id that reached the app."""

    @property
    def record(self) -> dict[str, Any]:
        assert len(self.records) == 1, self.records
        return self.records[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(
    gateway: Gateway,
    warden: Warden,
    app: App,
    method: str,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> Outcome:
    """One request through `gateway`, with what it left in the decision log and at the app.

    The tests run one at a time and the log is written before Warden answers (`durability =
    "durable"`), so the `forward_auth` records past the ones there before are this request's.
    """
    request_id = str(uuid.uuid4())
    sent = {"X-Test-Request-Id": request_id, **(headers or {})}
    if token is not None:
        sent.update(bearer(token))
    before = len(warden.decisions())
    answer = stack.send(gateway.port, method, path, headers=sent, body=body)
    records = [r for r in warden.decisions()[before:] if r.get("entry") == "forward_auth"]
    return Outcome(answer, request_id, records, app.saw(request_id))


def assert_refused(
    outcome: Outcome,
    gateway: Gateway,
    status: int,
    reason: str,
    *,
    logged: set[str] | None = None,
) -> None:
    """Refused with `status` and `reason` (in the log, as one of `logged` when given; in the
    body too through Caddy), and the app never saw it."""
    answer = outcome.answer
    assert answer.status == status, (answer.status, answer.body[:500])
    assert outcome.reached_app == []
    assert outcome.record["decision"] == "deny", outcome.record
    assert outcome.record["reason"] in (logged or {reason}), outcome.record
    if gateway.name == "caddy":
        # Caddy hands Warden's answer to the client as it is.
        assert answer.problem_reason() == reason, answer.body
        if status == 403 and reason not in {"no_route", "path_refused"}:
            assert answer.json()["decision_id"] == outcome.record["id"]


def assert_challenge(answer: Answer) -> None:
    challenge = answer.headers.get("www-authenticate", "")
    assert challenge.startswith('Bearer error="invalid_token"'), answer.headers


# ---------------------------------------------------------------------------------------------


def test_allowed_request_reaches_the_app_with_the_principal(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    outcome = call(gateway, warden, app, "GET", ROADMAP, token=signing_key.mint("carol", "acme"))

    assert outcome.answer.status == 200, outcome.answer.body
    document = outcome.answer.json()
    assert (document["tenant"], document["id"]) == ("acme", "roadmap")
    record = outcome.record
    assert record["decision"] == "allow"
    assert record["action"] == "read"
    assert record["resource"]["type"] == "Document"
    assert record["resource"]["id"] == "acme/roadmap"
    assert record["principal"]["id"] == "acme/carol"
    # The app got the request once, with the bearer token and what Warden said.
    [seen] = outcome.reached_app
    assert (seen["method"], seen["raw_path"]) == ("GET", ROADMAP)
    assert seen["authorization"] is True
    assert seen["headers"]["x-warden-principal"] == "acme/carol"
    assert seen["headers"]["x-warden-principal-type"] == "User"
    assert seen["headers"]["x-warden-tenant"] == "acme"
    assert seen["headers"]["x-decision-id"] == record["id"]


def test_a_client_cannot_set_the_warden_headers_the_app_gets(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    forged = {
        "X-Warden-Principal": "acme/alice",
        "X-Warden-Principal-Type": "ServiceAccount",
        "X-Warden-Tenant": "globex",
        "X-Decision-Id": "forged",
    }
    outcome = call(
        gateway,
        warden,
        app,
        "GET",
        ROADMAP,
        token=signing_key.mint("carol", "acme"),
        headers=forged,
    )

    assert outcome.answer.status == 200, outcome.answer.body
    [seen] = outcome.reached_app
    assert seen["headers"]["x-warden-principal"] == "acme/carol"
    assert seen["headers"]["x-warden-principal-type"] == "User"
    assert seen["headers"]["x-warden-tenant"] == "acme"
    assert seen["headers"]["x-decision-id"] == outcome.record["id"]


def test_the_method_picks_the_route(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    # carol (viewer) may read the roadmap but not delete it; bob (editor) may edit it.
    refused = call(gateway, warden, app, "DELETE", ROADMAP, token=signing_key.mint("carol", "acme"))
    assert_refused(refused, gateway, 403, "no_permit")
    assert refused.record["action"] == "delete"

    edited = call(
        gateway,
        warden,
        app,
        "PATCH",
        ROADMAP,
        token=signing_key.mint("bob", "acme"),
        body={"body": f"edited through {gateway.name}"},
    )
    assert edited.answer.status == 200, edited.answer.body
    assert edited.answer.json()["body"] == f"edited through {gateway.name}"
    assert edited.record["action"] == "edit"
    assert edited.record["decision"] == "allow"
    [seen] = edited.reached_app
    assert seen["method"] == "PATCH"


def test_denied_by_policy(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    # Salaries are restricted: a forbid (`restricted-needs-admin`) keeps a viewer out.
    outcome = call(gateway, warden, app, "GET", SALARIES, token=signing_key.mint("carol", "acme"))
    assert_refused(outcome, gateway, 403, "forbidden")
    assert outcome.record["resource"]["id"] == "acme/salaries"
    # An admin of the tenant may read them, through the same gateway.
    admin = call(gateway, warden, app, "GET", SALARIES, token=signing_key.mint("alice", "acme"))
    assert admin.answer.status == 200, admin.answer.body
    assert len(admin.reached_app) == 1


def test_unauthenticated_is_401_with_a_challenge(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    missing = call(gateway, warden, app, "GET", ROADMAP)
    assert_refused(missing, gateway, 401, "token_missing")
    assert_challenge(missing.answer)

    garbage = call(gateway, warden, app, "GET", ROADMAP, token="not-a-jwt")  # noqa: S106
    assert_refused(garbage, gateway, 401, "token_malformed")
    assert_challenge(garbage.answer)

    forged = SigningKey().mint("alice", "acme")  # right claims, a key Warden does not know
    outcome = call(gateway, warden, app, "GET", ROADMAP, token=forged)
    assert outcome.answer.status == 401
    assert outcome.reached_app == []
    assert outcome.record["decision"] == "deny"
    assert_challenge(outcome.answer)


@pytest.mark.parametrize(
    ("path", "action", "resource"),
    [
        (GLOBEX_ROADMAP, "read", {"type": "Document", "id": "globex/roadmap"}),
        ("/tenants/globex/documents", "list", {"type": "Tenant", "id": "globex"}),
    ],
    ids=["document", "listing"],
)
def test_another_tenant_by_path_is_refused(
    gateway: Gateway,
    warden: Warden,
    app: App,
    signing_key: SigningKey,
    path: str,
    action: str,
    resource: dict[str, str],
) -> None:
    token = signing_key.mint("carol", "acme")
    outcome = call(gateway, warden, app, "GET", path, token=token)
    # Decided as /v1/check decides the same token, action and resource: a deny, for the same
    # reason (no permit covers another tenant's resource; the tenant guard would say
    # `tenant_boundary` had one matched).
    check = stack.send(
        warden.port,
        "POST",
        "/v1/check",
        headers=bearer(token),
        body={"action": action, "resource": resource},
    ).json()
    assert check["decision"] == "deny"
    assert check["reason"] in {"no_permit", "tenant_boundary"}
    assert_refused(outcome, gateway, 403, check["reason"])
    assert outcome.record["action"] == action
    assert outcome.record["resource"]["id"] == resource["id"]
    # The same request inside the user's own tenant goes through.
    own = path.replace("/globex/", "/acme/")
    allowed = call(gateway, warden, app, "GET", own, token=token)
    assert allowed.answer.status == 200, allowed.answer.body
    assert len(allowed.reached_app) == 1


def test_a_revoked_token_is_refused_on_the_next_request(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    jti = f"gw-{uuid.uuid4()}"
    token = signing_key.mint("carol", "acme", jti=jti)
    assert call(gateway, warden, app, "GET", ROADMAP, token=token).answer.status == 200

    warden.cli(
        "revoke", "token", "--issuer", stack.ISSUER, "--jti", jti, "--reason", "gateway test"
    )

    outcome = call(gateway, warden, app, "GET", ROADMAP, token=token)
    assert_refused(outcome, gateway, 401, "token_revoked")
    assert_challenge(outcome.answer)
    # The same user's other tokens are untouched.
    assert (
        call(
            gateway, warden, app, "GET", ROADMAP, token=signing_key.mint("carol", "acme")
        ).answer.status
        == 200
    )


def test_a_disabled_principal_is_refused(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    token = signing_key.mint("dave", "acme")
    assert call(gateway, warden, app, "GET", ROADMAP, token=token).answer.status == 200
    warden.cli("principal", "disable", "--tenant", "acme", 'User::"acme/dave"')
    try:
        outcome = call(gateway, warden, app, "GET", ROADMAP, token=token)
        assert_refused(outcome, gateway, 403, "principal_disabled")
    finally:
        warden.cli("principal", "enable", "--tenant", "acme", 'User::"acme/dave"')
    assert call(gateway, warden, app, "GET", ROADMAP, token=token).answer.status == 200


REFUSED_PATHS = [
    # Each names, once normalized, a document the token may read: only the path's shape can
    # refuse it.
    "/tenants/acme/documents/./roadmap",
    "/tenants/acme/documents/x/../roadmap",
    "/tenants/globex/../acme/documents/roadmap",
    "/tenants/acme/documents/%2e%2e/documents/roadmap",
    "/tenants/acme/documents/%2E/roadmap",
    "/tenants/acme//documents/roadmap",
    "/tenants/acme/documents/roadmap%2F..%2Fsalaries",
    "/tenants/acme/documents/x%5C..%5Croadmap",
]


PATH_REFUSED_LOGGED = {"path_refused"}


@pytest.mark.parametrize("path", REFUSED_PATHS)
def test_paths_that_are_not_plain_segments_are_refused(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey, path: str
) -> None:
    outcome = call(gateway, warden, app, "GET", path, token=signing_key.mint("carol", "acme"))
    assert_refused(outcome, gateway, 403, "path_refused", logged=PATH_REFUSED_LOGGED)
    assert path in outcome.record["errors"][0]


def test_a_refused_path_is_logged_as_path_refused(
    caddy: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    outcome = call(
        caddy, warden, app, "GET", REFUSED_PATHS[1], token=signing_key.mint("carol", "acme")
    )
    assert outcome.answer.problem_reason() == "path_refused"
    assert outcome.record["reason"] == "path_refused"


def test_a_raw_hash_in_the_path_is_refused_through_nginx(
    nginx: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    # RFC 9112: a request-target has no fragment. nginx passes `#` on as it came (in
    # $request_uri and to the upstream); Caddy re-escapes it as %23.
    path = "/tenants/acme/documents/roadmap#/../salaries"
    outcome = call(nginx, warden, app, "GET", path, token=signing_key.mint("carol", "acme"))
    assert outcome.answer.status == 403
    assert outcome.reached_app == []


def test_a_raw_hash_in_the_path_is_refused_through_caddy(
    caddy: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    path = "/tenants/acme/documents/roadmap#/../salaries"
    outcome = call(caddy, warden, app, "GET", path, token=signing_key.mint("carol", "acme"))
    assert_refused(outcome, caddy, 403, "path_refused", logged=PATH_REFUSED_LOGGED)


def test_a_path_no_route_matches_is_denied(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    # /me is a real route of the app, but not in [[routes]]; [forward_auth] default = "deny".
    outcome = call(gateway, warden, app, "GET", "/me", token=signing_key.mint("carol", "acme"))
    assert_refused(outcome, gateway, 403, "no_route")


def test_a_document_warden_does_not_know_is_refused(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    # Warden decides on its own entity data (no `properties` come from a gateway); an id it
    # does not know may be an alias of one it knows, so it is refused before any policy.
    outcome = call(
        gateway,
        warden,
        app,
        "GET",
        "/tenants/acme/documents/no-such-document",
        token=signing_key.mint("alice", "acme"),
    )
    assert_refused(outcome, gateway, 403, "resource_unknown")


def test_a_client_cannot_choose_the_path_warden_decides_on(
    gateway: Gateway, warden: Warden, app: App, signing_key: SigningKey
) -> None:
    # The client asks for the salaries and claims, in the headers the gateway sends Warden,
    # to be asking for the roadmap (which carol may read).
    spoofed = {
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Uri": ROADMAP,
        "X-Original-Method": "GET",
        "X-Original-URI": ROADMAP,
    }
    outcome = call(
        gateway,
        warden,
        app,
        "GET",
        SALARIES,
        token=signing_key.mint("carol", "acme"),
        headers=spoofed,
    )
    assert_refused(outcome, gateway, 403, "forbidden")
    assert outcome.record["resource"]["id"] == "acme/salaries"


# ---------------------------------------------------------------------------------------------
# Warden directly


def test_forward_auth_needs_the_method_and_uri_headers(warden: Warden) -> None:
    for headers in (
        {},
        {"X-Forwarded-Method": "GET"},
        {"X-Original-URI": ROADMAP},
    ):
        answer = stack.send(warden.port, "GET", "/v1/forward-auth", headers=headers)
        assert answer.status == 400, (headers, answer.status, answer.body)


def test_the_decision_log_holds_the_gateway_decisions_and_verifies(
    warden: Warden, nginx: Gateway, caddy: Gateway, app: App, signing_key: SigningKey
) -> None:
    carol = signing_key.mint("carol", "acme")
    expected = [
        ("GET", ROADMAP, carol, "allow", "permitted"),
        ("DELETE", ROADMAP, carol, "deny", "no_permit"),
        ("GET", SALARIES, carol, "deny", "forbidden"),
        ("GET", "/me", carol, "deny", "no_route"),
        ("GET", ROADMAP, None, "deny", "token_missing"),
        ("GET", REFUSED_PATHS[0], carol, "deny", None),
    ]
    for gateway in (nginx, caddy):
        for method, path, token, decision, reason in expected:
            record = call(gateway, warden, app, method, path, token=token).record
            assert record["entry"] == "forward_auth"
            assert record["decision"] == decision, (gateway.name, method, path, record)
            assert reason is None or record["reason"] == reason, (gateway.name, path, record)
            assert record["origin"].startswith("127.0.0.1:")
    # The chain, the checkpoints and the signed head of the whole log are intact.
    verified = warden.cli("audit", "verify")
    assert verified.returncode == 0
