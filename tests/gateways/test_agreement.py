"""The agreement table (`agreement.json`, read its "about"): every case through a real nginx and a
real Caddy, and, where the case names a check, through the Python SDK's `check` (`/v1/check`).
The Rust suite (`crates/warden-server/tests/server/ext_authz.rs`) asserts the same table for
forward-auth, Envoy `ext_authz` and `/v1/check`; a case that fails here and not there (or the
other way round) is a gateway or the SDK disagreeing with Warden.

Behind the gateways here is an echo server (`stack.Echo`, 200 to anything), not the example app,
so the status a client gets is the gateway's decision (an allowed DELETE deletes nothing, and
HEAD is answered), and "reached the upstream" is read from the echo's log. The reason is read
from Warden's decision log (the request's one `forward_auth` record) for both gateways; Caddy
passes Warden's problem body through, so there it is checked in the answer too (nginx answers
with its own error page).

Tokens: the test IdP's, one per case and gateway with its own `jti`, in the case's variant:
`valid`; `expired` (ten minutes ago); `forged` (another RSA key under the IdP's `kid`);
`wrong_audience`; `revoked` (`warden revoke token` on its `jti` first).
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from warden import InvalidTokenError, WardenClient

import stack
from stack import Echo, Gateway, SigningKey, Warden

TABLE = json.loads((Path(__file__).parent / "agreement.json").read_text())
CASES: list[dict[str, Any]] = TABLE["cases"]
CHECKED = [case for case in CASES if case["check"] is not None]
GATEWAYS = ["nginx", "caddy"]
VARIANTS = {"valid", "expired", "forged", "wrong_audience", "revoked"}
OTHER_AUDIENCE = "another-api"


def mint(warden: Warden, signing_key: SigningKey, spec: dict[str, Any] | None, label: str) -> str:
    """The case's end-user token (None: none), with a `jti` of its own."""
    if spec is None:
        return ""
    variant = spec["variant"]
    assert variant in VARIANTS, f"the table names an unknown token variant: {variant}"
    now = int(time.time())
    jti = f"agreement-{label}-{secrets.token_hex(6)}"
    payload: dict[str, Any] = {
        "iss": stack.ISSUER,
        "aud": stack.AUDIENCE,
        "sub": spec["sub"],
        "org_id": spec["org"],
        "iat": now - 5,
        "exp": now + 900,
        "jti": jti,
    }
    if spec.get("roles"):
        payload["roles"] = spec["roles"]
    key = signing_key.private
    if variant == "expired":
        payload.update(iat=now - 1200, exp=now - 600)
    elif variant == "wrong_audience":
        payload["aud"] = OTHER_AUDIENCE
    elif variant == "forged":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(payload, key, algorithm="RS256", headers={"kid": stack.KID})
    if variant == "revoked":
        warden.cli(
            "revoke", "token", "--issuer", stack.ISSUER, "--jti", jti, "--reason", "agreement"
        )
    return token


def test_the_table_is_well_formed() -> None:
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    for case in CASES:
        assert (case["check"] is None) == (case["sdk"] is None), case["name"]
        assert case["sdk"] in {None, "allow", "deny", "unauthenticated"}, case["name"]
        assert (case["status"] == 200) == (case["reasons"] == []), case["name"]
        if case["token"] is not None:
            assert case["token"]["variant"] in VARIANTS, case["name"]


@pytest.mark.parametrize("gateway_name", GATEWAYS)
@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_a_gateway_answers_as_the_table_says(
    case: dict[str, Any],
    gateway_name: str,
    warden: Warden,
    echo: Echo,
    echo_gateways: list[Gateway],
    signing_key: SigningKey,
) -> None:
    [gateway] = [g for g in echo_gateways if g.name == gateway_name]
    token = mint(warden, signing_key, case["token"], gateway_name)
    request_id = str(uuid.uuid4())
    headers = {"X-Test-Request-Id": request_id, **case.get("headers", {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    before = len(warden.decisions())

    answer = stack.send(gateway.port, case["method"], case["path"], headers=headers)

    records = [r for r in warden.decisions()[before:] if r.get("entry") == "forward_auth"]
    assert len(records) == 1, records
    [record] = records
    reached = echo.saw(request_id)
    assert answer.status == case["status"], (answer.status, answer.body[:300], record)
    if case["status"] == 200:
        assert record["decision"] == "allow", record
        assert len(reached) == 1
        assert reached[0]["headers"]["x-decision-id"] == record["id"]
        return
    assert reached == []
    assert record["decision"] == "deny", record
    assert record["reason"] in case["reasons"], record
    if gateway.name == "caddy":
        assert answer.problem_reason() in case["reasons"], answer.body
    if case["status"] == 401:
        assert answer.headers.get("www-authenticate", "").startswith("Bearer"), answer.headers


@pytest.mark.parametrize("case", CHECKED, ids=[case["name"] for case in CHECKED])
def test_the_sdk_check_answers_as_the_table_says(
    case: dict[str, Any], warden: Warden, signing_key: SigningKey
) -> None:
    token = mint(warden, signing_key, case["token"], "sdk")
    check = case["check"]
    resource = check["resource"]
    with WardenClient(warden.url) as client:
        try:
            decision = client.check(token, check["action"], resource["type"], resource["id"])
        except InvalidTokenError as refused:
            outcome, reason = "unauthenticated", refused.reason
        else:
            outcome = "allow" if decision.allowed else "deny"
            reason = decision.reason
    assert outcome == case["sdk"], (outcome, reason)
    if case["token"] is None:
        # The SDK sends no request without a token (it refuses an empty one itself, as
        # `token_malformed`); `/v1/check` without one is the Rust suite's.
        return
    if outcome == "allow":
        assert reason == "permitted"
    else:
        assert reason in case["reasons"], reason
