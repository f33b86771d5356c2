"""The gateway's context token (`X-Warden-Context`, issue #23), from the real `warden serve`.

Each test gets a real context token the way a gateway does (`GET /v1/forward-auth` with the
forwarded method, path and the end user's bearer token; see `live_warden.py`) and hands it to
`warden.context_token.ContextTokenVerifier` or to a FastAPI app protected by
`warden.fastapi.Warden(context_audience="docs-app")`.

What "no call to Warden" means here: the app's `AsyncWardenClient` sends its requests through a
transport that records each one, and the decision log (`[audit] dir`) is read before and after.
A token that covers the check leaves both without a decision request and the answer carries the
gateway's decision id; every other token (another action, another resource, another audience,
expired, tampered, another `typ`, `alg` none or HS256) changes nothing: the app asks Warden with
the bearer token (a new decision, another id), and without a bearer token it is 401
`token_missing`. The Warden here signs context tokens for 1 s (`ttl_seconds = 1`), so the
expiry test waits out that second and the 5 s leeway (bounded).

A few tests at the end use a mock Warden (`httpx2.MockTransport`) for what the real one does
not send: ES256 keys, RSA keys, a JWKS with unusable entries.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from live_warden import (
    CONTEXT_AUDIENCE,
    OTHER_AUDIENCE,
    ForwardAuth,
    LiveWarden,
    start_warden,
)

from warden import (
    AsyncWardenClient,
    ContextClaims,
    ContextTokenError,
    ContextTokenVerifier,
    InvalidTokenError,
    WardenClient,
    WardenRequestError,
)
from warden.context_token import TOKEN_TYPE, parse_jwks
from warden.fastapi import Authorized, LoadedResource, Warden, decisions_of

ROADMAP = "/tenants/acme/documents/roadmap"
SALARIES = "/tenants/acme/documents/salaries"
LISTING = "/tenants/acme/documents"
CONTEXT_TTL_SECONDS = 1
EXPIRY_WAIT_LIMIT_SECONDS = 15.0


@pytest.fixture(scope="module")
def warden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveWarden]:
    server = start_warden(
        tmp_path_factory.mktemp("warden-context"), context_ttl_seconds=CONTEXT_TTL_SECONDS
    )
    try:
        yield server
    finally:
        server.stop()


# -- the app, and what it sends Warden -----------------------------------------------------


class RecordingTransport(httpx2.AsyncBaseTransport):
    """A real HTTP transport that records `METHOD /path` of every request the SDK sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def decision_requests(self) -> list[str]:
        return [sent for sent in self.sent if sent.startswith("POST ")]


def answer(request: Request, auth: Authorized[Any]) -> dict[str, Any]:
    decisions = decisions_of(request)
    return {
        "principal": auth.principal.id,
        "principal_type": auth.principal.type,
        "tenant": auth.principal.tenant,
        "decision_id": auth.decision.decision_id,
        "policy_revision": auth.decision.policy_revision,
        "reason": auth.decision.reason,
        "decisions": [decision.decision_id for decision in decisions],
    }


def build_app(
    warden_url: str, transport: RecordingTransport, *, audience: str | None = CONTEXT_AUDIENCE
) -> FastAPI:
    """The example app's checks, each answering with the decision it got."""
    warden = Warden(context_audience=audience)

    async def lifespan(app: FastAPI) -> Any:
        async with AsyncWardenClient(warden_url, transport=transport) as client:
            warden.bind(client)
            yield

    app = FastAPI(lifespan=lifespan)
    warden.install(app)

    def with_properties(tenant: str, doc_id: str) -> LoadedResource[str]:
        properties = {"classification": "internal"}
        return LoadedResource(f"{tenant}/{doc_id}", value=doc_id, properties=properties)

    def without_properties(tenant: str, doc_id: str) -> LoadedResource[str]:
        return LoadedResource(f"{tenant}/{doc_id}", value=doc_id)

    Listed = Annotated[
        Authorized[Any], Depends(warden.authorize("list", "Tenant", id_param="tenant"))
    ]
    Read = Annotated[
        Authorized[Any],
        Depends(warden.authorize("read", "Document", id_template="{tenant}/{doc_id}")),
    ]
    Deleted = Annotated[
        Authorized[Any],
        Depends(warden.authorize("delete", "Document", id_template="{tenant}/{doc_id}")),
    ]
    ReadWithContext = Annotated[
        Authorized[Any],
        Depends(
            warden.authorize(
                "read",
                "Document",
                id_template="{tenant}/{doc_id}",
                context={"support_ticket": "T-1"},
            )
        ),
    ]
    ReadLoaded = Annotated[
        Authorized[Any], Depends(warden.authorize("read", "Document", load=with_properties))
    ]
    ReadLoadedBare = Annotated[
        Authorized[Any], Depends(warden.authorize("read", "Document", load=without_properties))
    ]

    @app.get("/tenants/{tenant}/documents")
    async def listing(request: Request, auth: Listed) -> dict[str, Any]:
        return answer(request, auth)

    @app.get("/tenants/{tenant}/documents/{doc_id}")
    async def read(request: Request, auth: Read) -> dict[str, Any]:
        return answer(request, auth)

    @app.delete("/tenants/{tenant}/documents/{doc_id}")
    async def delete(request: Request, auth: Deleted) -> dict[str, Any]:
        return answer(request, auth)

    @app.get("/with-context/{tenant}/{doc_id}")
    async def read_with_context(request: Request, auth: ReadWithContext) -> dict[str, Any]:
        return answer(request, auth)

    @app.get("/loaded/{tenant}/{doc_id}")
    async def read_loaded(request: Request, auth: ReadLoaded) -> dict[str, Any]:
        return answer(request, auth)

    @app.get("/loaded-bare/{tenant}/{doc_id}")
    async def read_loaded_bare(request: Request, auth: ReadLoadedBare) -> dict[str, Any]:
        return answer(request, auth)

    return app


@dataclass
class Served:
    """One request to the app: the answer, and what the app and Warden did for it."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    sent_to_warden: list[str]
    """The decision requests the app's client sent (`POST /v1/check` …)."""
    new_records: list[dict[str, Any]]
    """What the request added to Warden's decision log."""
    warnings: list[str] = field(default_factory=list)


@dataclass
class Upstream:
    """The app under test, with the recorder of its client's requests."""

    client: TestClient
    transport: RecordingTransport
    warden: LiveWarden
    caplog: pytest.LogCaptureFixture

    def get(
        self,
        path: str,
        *,
        context_token: str | None = None,
        token: str | None = None,
        method: str = "GET",
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> Served:
        headers: list[tuple[str, str]] = list(extra_headers or [])
        if context_token is not None:
            headers.append(("X-Warden-Context", context_token))
        if token is not None:
            headers.append(("Authorization", f"Bearer {token}"))
        records_before = len(self.warden.decisions())
        sent_before = len(self.transport.sent)
        self.caplog.clear()
        response = self.client.request(method, path, headers=headers)
        sent = self.transport.sent[sent_before:]
        return Served(
            status=response.status_code,
            body=response.json(),
            headers={name.lower(): value for name, value in response.headers.items()},
            sent_to_warden=[line for line in sent if line.startswith("POST ")],
            new_records=self.warden.decisions()[records_before:],
            warnings=[
                record.getMessage()
                for record in self.caplog.records
                if record.name == "warden.fastapi" and record.levelno == logging.WARNING
            ],
        )


@pytest.fixture
def upstream(warden: LiveWarden, caplog: pytest.LogCaptureFixture) -> Iterator[Upstream]:
    caplog.set_level(logging.WARNING, logger="warden.fastapi")
    transport = RecordingTransport()
    with TestClient(build_app(warden.url, transport)) as client:
        yield Upstream(client, transport, warden, caplog)


def allowed_at_gateway(warden: LiveWarden, method: str, uri: str, token: str) -> ForwardAuth:
    gate = warden.forward_auth(method, uri, token)
    assert gate.status == 200, gate
    assert gate.context_token, gate.headers
    return gate


def assert_no_check(served: Served) -> None:
    assert served.sent_to_warden == [], served.sent_to_warden
    assert served.new_records == [], served.new_records


def assert_own_check(served: Served, gateway_decision: str) -> dict[str, Any]:
    """The app asked Warden itself: one `POST /v1/check`, one new record, a new decision id."""
    assert served.sent_to_warden == ["POST /v1/check"], served.sent_to_warden
    assert len(served.new_records) == 1, served.new_records
    [record] = served.new_records
    assert record["entry"] == "check", record
    assert served.headers["x-decision-id"] == record["id"] != gateway_decision
    return record


def assert_missing_bearer(served: Served) -> None:
    assert served.status == 401, served.body
    assert served.body["reason"] == "token_missing"
    assert served.headers["www-authenticate"].startswith("Bearer")
    assert_no_check(served)


# -- pieces of a JWT ---------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(payload)), signature


def compact(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    encoded = [
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    ]
    return ".".join([*encoded, signature])


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    signing_input = compact(header, payload, "").rsplit(".", 1)[0]
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def public_key_bytes(jwks: dict[str, Any], kid: str) -> bytes:
    """The public key of `kid` as the bytes an HS256 forger would try: its `x` coordinate."""
    [jwk] = [key for key in jwks["keys"] if key["kid"] == kid]
    return unb64url(jwk["x"])


def flip(text: str, index: int) -> str:
    """`text` with the base64url character at `index` changed (to another one that changes
    the decoded bytes: not the last, whose low bits may be padding)."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


# ---------------------------------------------------------------------------------------------
# The verifier against the real Warden


def test_the_client_reads_wardens_keys_and_issuer(warden: LiveWarden) -> None:
    with WardenClient(warden.url) as client:
        keys = client.jwks()
        configuration = client.openid_configuration()
    assert configuration["issuer"] == warden.url
    assert keys["keys"], keys
    assert set(parse_jwks(keys)) == {key["kid"] for key in keys["keys"]}

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        async with AsyncWardenClient(warden.url) as client:
            return await client.jwks(), await client.openid_configuration()

    assert asyncio.run(both()) == (keys, configuration)


def test_a_context_token_from_forward_auth_verifies_with_the_decision(warden: LiveWarden) -> None:
    jti = "sdk-original-1"
    gate = allowed_at_gateway(
        warden, "GET", f"{ROADMAP}?page=2", warden.mint("carol", "acme", jti=jti)
    )
    header, _, _ = split(gate.context_token)
    assert header["typ"] == TOKEN_TYPE
    assert header["alg"] in {"EdDSA", "ES256"}

    async def verify() -> ContextClaims:
        async with AsyncWardenClient(warden.url) as client:
            # No issuer given: it is read from Warden's OpenID configuration.
            return await ContextTokenVerifier(client, CONTEXT_AUDIENCE).verify(gate.context_token)

    claims = asyncio.run(verify())
    assert claims.issuer == warden.url
    assert claims.audience == CONTEXT_AUDIENCE
    assert (claims.principal.type, claims.principal.id, claims.principal.tenant) == (
        "User",
        "acme/carol",
        "acme",
    )
    assert claims.action == "read"
    assert (claims.resource.type, claims.resource.id) == ("Document", "acme/roadmap")
    assert claims.decision_id == gate.decision_id
    assert claims.original_jti == jti
    assert claims.expires_at - claims.issued_at == CONTEXT_TTL_SECONDS
    assert claims.covers("read", "Document", "acme/roadmap")
    assert not claims.covers("read", "Document", "acme/salaries")
    assert not claims.covers("delete", "Document", "acme/roadmap")
    # The decision is in Warden's decision log, as the gateway's.
    [record] = [r for r in warden.decisions() if r["id"] == gate.decision_id]
    assert (record["entry"], record["decision"]) == ("forward_auth", "allow")


def test_the_list_route_token_names_the_tenant(warden: LiveWarden) -> None:
    gate = allowed_at_gateway(warden, "GET", LISTING, warden.mint("carol", "acme"))
    _, payload, _ = split(gate.context_token)
    assert payload["action"] == "list"
    assert payload["resource"] == {"type": "Tenant", "id": "acme"}
    assert payload["aud"] == CONTEXT_AUDIENCE


def test_time_is_checked_with_at_most_five_seconds_of_leeway(warden: LiveWarden) -> None:
    gate = allowed_at_gateway(warden, "GET", ROADMAP, warden.mint("carol", "acme"))
    _, payload, _ = split(gate.context_token)

    async def verify_at(now: float) -> ContextClaims:
        async with AsyncWardenClient(warden.url) as client:
            verifier = ContextTokenVerifier(client, CONTEXT_AUDIENCE, issuer=warden.url)
            return await verifier.verify(gate.context_token, now=now)

    assert asyncio.run(verify_at(payload["exp"] + 5)).decision_id == gate.decision_id
    with pytest.raises(ContextTokenError) as expired:
        asyncio.run(verify_at(payload["exp"] + 5.01))
    assert expired.value.reason == "context_expired"
    with pytest.raises(ContextTokenError) as early:
        asyncio.run(verify_at(payload["nbf"] - 5.01))
    assert early.value.reason == "context_not_yet_valid"
    with pytest.raises(ValueError, match="leeway"):
        ContextTokenVerifier(AsyncWardenClient(warden.url), CONTEXT_AUDIENCE, leeway_seconds=6)


def test_the_verifier_refuses_every_altered_token(warden: LiveWarden) -> None:
    gate = allowed_at_gateway(warden, "GET", ROADMAP, warden.mint("carol", "acme"))
    token = gate.context_token
    header, payload, signature = split(token)
    with WardenClient(warden.url) as client:
        jwks = client.jwks()
    public_pem = parse_jwks(jwks)[header["kid"]].key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw_public = public_key_bytes(jwks, header["kid"])
    forger = ed25519.Ed25519PrivateKey.generate()
    other_alg = "ES256" if header["alg"] == "EdDSA" else "EdDSA"
    cases: dict[str, tuple[str, str]] = {
        "signature flipped": (
            compact(header, payload, flip(signature, 10)),
            "context_signature_invalid",
        ),
        "claims widened": (
            compact(header, {**payload, "action": "delete"}, signature),
            "context_signature_invalid",
        ),
        "another resource": (
            compact(
                header,
                {**payload, "resource": {"type": "Document", "id": "acme/salaries"}},
                signature,
            ),
            "context_signature_invalid",
        ),
        "signed by a key Warden does not have, same kid": (
            jwt.encode(
                payload,
                forger,
                algorithm="EdDSA",
                headers={"kid": header["kid"], "typ": TOKEN_TYPE},
            ),
            "context_signature_invalid"
            if header["alg"] == "EdDSA"
            else "context_algorithm_refused",
        ),
        "typ JWT": (compact({**header, "typ": "JWT"}, payload, signature), "context_type_invalid"),
        "typ at+jwt": (
            compact({**header, "typ": "at+jwt"}, payload, signature),
            "context_type_invalid",
        ),
        "no typ": (
            compact({k: v for k, v in header.items() if k != "typ"}, payload, signature),
            "context_type_invalid",
        ),
        "alg none": (compact({**header, "alg": "none"}, payload, ""), "context_algorithm_refused"),
        "alg HS256 keyed with the public key (raw)": (
            hs256({**header, "alg": "HS256"}, payload, raw_public),
            "context_algorithm_refused",
        ),
        "alg HS256 keyed with the public key (PEM)": (
            hs256({**header, "alg": "HS256"}, payload, public_pem),
            "context_algorithm_refused",
        ),
        "the other allowed alg for this key": (
            compact({**header, "alg": other_alg}, payload, signature),
            "context_algorithm_refused",
        ),
        "unknown kid": (
            compact({**header, "kid": "no-such-key"}, payload, signature),
            "context_key_unknown",
        ),
        "not a JWT": ("not.a-jwt", "context_malformed"),
        "garbage": ("x" * 20, "context_malformed"),
    }

    async def refusals() -> dict[str, str]:
        async with AsyncWardenClient(warden.url) as client:
            verifier = ContextTokenVerifier(client, CONTEXT_AUDIENCE)
            assert (await verifier.verify(token)).decision_id == gate.decision_id
            reasons = {}
            for name, (altered, _) in cases.items():
                with pytest.raises(ContextTokenError) as refused:
                    await verifier.verify(altered)
                assert token not in str(refused.value)
                reasons[name] = refused.value.reason
            return reasons

    assert asyncio.run(refusals()) == {name: reason for name, (_, reason) in cases.items()}


def test_another_audience_is_refused(warden: LiveWarden) -> None:
    # The same action on the same document, allowed for the billing upstream (the route's own
    # `audience`): replayed to docs-app it is not docs-app's.
    gate = allowed_at_gateway(
        warden, "GET", "/billing/acme/documents/roadmap", warden.mint("carol", "acme")
    )
    _, payload, _ = split(gate.context_token)
    assert payload["aud"] == OTHER_AUDIENCE
    assert (payload["action"], payload["resource"]["id"]) == ("read", "acme/roadmap")

    async def verify(audience: str) -> ContextClaims:
        async with AsyncWardenClient(warden.url) as client:
            return await ContextTokenVerifier(client, audience).verify(gate.context_token)

    assert asyncio.run(verify(OTHER_AUDIENCE)).decision_id == gate.decision_id
    with pytest.raises(ContextTokenError) as refused:
        asyncio.run(verify(CONTEXT_AUDIENCE))
    assert refused.value.reason == "context_audience_mismatch"


def test_another_issuer_is_refused(warden: LiveWarden) -> None:
    gate = allowed_at_gateway(warden, "GET", ROADMAP, warden.mint("carol", "acme"))

    async def verify() -> ContextClaims:
        async with AsyncWardenClient(warden.url) as client:
            verifier = ContextTokenVerifier(client, CONTEXT_AUDIENCE, issuer="https://other.test")
            return await verifier.verify(gate.context_token)

    with pytest.raises(ContextTokenError) as refused:
        asyncio.run(verify())
    assert refused.value.reason == "context_issuer_mismatch"


def test_a_warden_access_token_is_not_a_context_token(warden: LiveWarden) -> None:
    # Signed by the very key that signs context tokens, but typ at+jwt and aud "warden".
    access_token = warden.service_account_token("acme", "alice", ["documents:read"])
    header, _, _ = split(access_token)
    assert header["typ"] == "at+jwt"

    async def verify() -> ContextClaims:
        async with AsyncWardenClient(warden.url) as client:
            return await ContextTokenVerifier(client, CONTEXT_AUDIENCE).verify(access_token)

    with pytest.raises(ContextTokenError) as refused:
        asyncio.run(verify())
    assert refused.value.reason == "context_type_invalid"


def test_warden_refuses_a_context_token_as_a_bearer_token(warden: LiveWarden) -> None:
    gate = allowed_at_gateway(warden, "GET", ROADMAP, warden.mint("carol", "acme"))
    with WardenClient(warden.url) as client, pytest.raises(InvalidTokenError) as refused:
        client.check(gate.context_token, "read", "Document", "acme/roadmap")
    assert refused.value.reason.startswith("token_"), refused.value.reason
    # And as the bearer of a gateway request: 401.
    assert warden.forward_auth("GET", ROADMAP, gate.context_token).status == 401


def test_an_unknown_kid_fetches_the_keys_at_most_once_per_ten_seconds(warden: LiveWarden) -> None:
    gate = allowed_at_gateway(warden, "GET", ROADMAP, warden.mint("carol", "acme"))
    header, payload, signature = split(gate.context_token)
    transport = RecordingTransport()

    async def run() -> list[str]:
        async with AsyncWardenClient(warden.url, transport=transport) as client:
            verifier = ContextTokenVerifier(client, CONTEXT_AUDIENCE, issuer=warden.url)
            now = time.time()
            unknown = {
                kid: compact({**header, "kid": kid}, payload, signature)
                for kid in ("made-up-1", "made-up-2", "made-up-3", "made-up-4")
            }
            await verifier.verify(gate.context_token, now=now)
            for offset, kid in ((1, "made-up-1"), (2, "made-up-2")):
                with pytest.raises(ContextTokenError) as refused:
                    await verifier.verify(unknown[kid], now=now + offset)
                assert refused.value.reason == "context_key_unknown"
            # The real key is still known meanwhile.
            await verifier.verify(gate.context_token, now=now + 3)
            for offset, kid in ((11, "made-up-3"), (12, "made-up-4")):
                with pytest.raises(ContextTokenError) as refused:
                    await verifier.verify(unknown[kid], now=now + offset)
                assert refused.value.reason == "context_key_unknown"
            return transport.sent

    sent = asyncio.run(run())
    # First use, then once more at +11 s (the +1, +2 and +12 s tokens fetched nothing).
    assert sent == ["GET /.well-known/jwks.json", "GET /.well-known/jwks.json"], sent


# ---------------------------------------------------------------------------------------------
# FastAPI: the token stands in for a matching check, and for nothing else


@pytest.mark.parametrize(
    ("uri", "action", "resource"),
    [(ROADMAP, "read", "acme/roadmap"), (LISTING, "list", "acme")],
    ids=["read", "list"],
)
def test_a_matching_context_token_is_the_decision_without_calling_warden(
    warden: LiveWarden, upstream: Upstream, uri: str, action: str, resource: str
) -> None:
    bearer = warden.mint("carol", "acme")
    gate = allowed_at_gateway(warden, "GET", uri, bearer)
    _, payload, _ = split(gate.context_token)
    assert (payload["action"], payload["resource"]["id"]) == (action, resource)
    # Warm the key cache, so what is counted below is this request alone.
    upstream.get(uri, context_token=gate.context_token)

    gate = allowed_at_gateway(warden, "GET", uri, bearer)
    for token in (None, bearer):  # no bearer needed; with one, it is not used either
        served = upstream.get(uri, context_token=gate.context_token, token=token)
        assert served.status == 200, served.body
        assert_no_check(served)
        assert served.headers["x-decision-id"] == gate.decision_id
        assert served.body == {
            "principal": "acme/carol",
            "principal_type": "User",
            "tenant": "acme",
            "decision_id": gate.decision_id,
            "policy_revision": "gateway",
            "reason": "permitted",
            "decisions": [gate.decision_id],
        }
        assert served.warnings == []


def test_a_loader_without_properties_may_use_the_token(
    warden: LiveWarden, upstream: Upstream
) -> None:
    gate = allowed_at_gateway(warden, "GET", ROADMAP, warden.mint("carol", "acme"))
    served = upstream.get("/loaded-bare/acme/roadmap", context_token=gate.context_token)
    assert served.status == 200, served.body
    assert served.body["decision_id"] == gate.decision_id
    assert served.sent_to_warden == []


@pytest.mark.parametrize(
    "path", ["/loaded/acme/roadmap", "/with-context/acme/roadmap"], ids=["properties", "context"]
)
def test_a_check_with_other_input_is_made_by_the_app(
    warden: LiveWarden, upstream: Upstream, path: str
) -> None:
    bearer = warden.mint("carol", "acme")
    gate = allowed_at_gateway(warden, "GET", ROADMAP, bearer)
    served = upstream.get(path, context_token=gate.context_token, token=bearer)
    assert served.status == 200, served.body
    assert_own_check(served, gate.decision_id)
    assert served.body["policy_revision"] != "gateway"
    assert served.warnings == []
    # Without the bearer token the app cannot make its check.
    gate = allowed_at_gateway(warden, "GET", ROADMAP, bearer)
    assert_missing_bearer(upstream.get(path, context_token=gate.context_token))


def test_another_action_is_decided_by_warden(warden: LiveWarden, upstream: Upstream) -> None:
    carol = warden.mint("carol", "acme")
    gate = allowed_at_gateway(warden, "GET", ROADMAP, carol)  # read
    denied = upstream.get(ROADMAP, method="DELETE", context_token=gate.context_token, token=carol)
    assert denied.status == 403, denied.body  # a viewer may not delete
    record = assert_own_check(denied, gate.decision_id)
    assert (record["action"], record["decision"]) == ("delete", "deny")
    assert denied.warnings == []  # a valid token for something else is no warning
    gate = allowed_at_gateway(warden, "GET", ROADMAP, carol)
    assert_missing_bearer(upstream.get(ROADMAP, method="DELETE", context_token=gate.context_token))


def test_another_resource_is_decided_by_warden(warden: LiveWarden, upstream: Upstream) -> None:
    carol = warden.mint("carol", "acme")
    gate = allowed_at_gateway(warden, "GET", ROADMAP, carol)
    denied = upstream.get(SALARIES, context_token=gate.context_token, token=carol)
    assert denied.status == 403, denied.body
    assert denied.body["reason"] == "forbidden"  # restricted: a viewer may not read salaries
    record = assert_own_check(denied, gate.decision_id)
    assert record["resource"]["id"] == "acme/salaries"
    # A list token does not cover another tenant's list either.
    gate = allowed_at_gateway(warden, "GET", LISTING, carol)
    assert_missing_bearer(
        upstream.get("/tenants/globex/documents", context_token=gate.context_token)
    )
    assert_missing_bearer(upstream.get(SALARIES, context_token=gate.context_token))


def test_a_token_for_another_upstream_is_refused_and_logged(
    warden: LiveWarden, upstream: Upstream
) -> None:
    carol = warden.mint("carol", "acme")
    billing = allowed_at_gateway(warden, "GET", "/billing/acme/documents/roadmap", carol)
    replayed = upstream.get(ROADMAP, context_token=billing.context_token)
    assert_missing_bearer(replayed)
    assert len(replayed.warnings) == 1, replayed.warnings
    assert "context_audience_mismatch" in replayed.warnings[0]
    assert billing.context_token not in replayed.warnings[0]

    with_bearer = upstream.get(ROADMAP, context_token=billing.context_token, token=carol)
    assert with_bearer.status == 200, with_bearer.body
    assert_own_check(with_bearer, billing.decision_id)


def test_an_expired_token_is_refused_and_logged(warden: LiveWarden, upstream: Upstream) -> None:
    carol = warden.mint("carol", "acme")
    gate = allowed_at_gateway(warden, "GET", ROADMAP, carol)
    _, payload, _ = split(gate.context_token)
    # Past `exp` and the verifier's 5 s leeway: about 6 s with `ttl_seconds = 1`.
    deadline = time.monotonic() + EXPIRY_WAIT_LIMIT_SECONDS
    while time.time() <= payload["exp"] + 5.2:
        assert time.monotonic() < deadline, "the context token did not expire in time"
        time.sleep(0.2)

    expired = upstream.get(ROADMAP, context_token=gate.context_token)
    assert_missing_bearer(expired)
    assert any("context_expired" in warning for warning in expired.warnings), expired.warnings

    with_bearer = upstream.get(ROADMAP, context_token=gate.context_token, token=carol)
    assert with_bearer.status == 200, with_bearer.body
    assert_own_check(with_bearer, gate.decision_id)


@pytest.mark.parametrize(
    "alteration",
    ["signature", "claims", "typ", "alg none", "alg HS256", "forged"],
)
def test_an_altered_token_is_refused_logged_and_warden_decides(
    warden: LiveWarden, upstream: Upstream, alteration: str
) -> None:
    carol = warden.mint("carol", "acme")
    gate = allowed_at_gateway(warden, "GET", ROADMAP, carol)
    header, payload, signature = split(gate.context_token)
    with WardenClient(warden.url) as client:
        raw_public = public_key_bytes(client.jwks(), header["kid"])
    altered = {
        "signature": compact(header, payload, flip(signature, 12)),
        # The token for the roadmap, made to say salaries.
        "claims": compact(
            header, {**payload, "resource": {"type": "Document", "id": "acme/salaries"}}, signature
        ),
        "typ": compact({**header, "typ": "JWT"}, payload, signature),
        "alg none": compact({**header, "alg": "none"}, payload, ""),
        "alg HS256": hs256({**header, "alg": "HS256"}, payload, raw_public),
        "forged": jwt.encode(
            {**payload, "resource": {"type": "Document", "id": "acme/salaries"}},
            ed25519.Ed25519PrivateKey.generate(),
            algorithm="EdDSA",
            headers={"kid": header["kid"], "typ": TOKEN_TYPE},
        ),
    }[alteration]
    target = SALARIES if alteration in {"claims", "forged"} else ROADMAP

    refused = upstream.get(target, context_token=altered)
    assert_missing_bearer(refused)
    assert len(refused.warnings) == 1, refused.warnings
    assert "refused" in refused.warnings[0]
    assert altered not in refused.warnings[0]

    decided = upstream.get(target, context_token=altered, token=carol)
    assert decided.status == (403 if target == SALARIES else 200), decided.body
    assert_own_check(decided, gate.decision_id)


def test_the_header_sent_twice_is_refused(warden: LiveWarden, upstream: Upstream) -> None:
    carol = warden.mint("carol", "acme")
    gate = allowed_at_gateway(warden, "GET", ROADMAP, carol)
    twice = [("X-Warden-Context", gate.context_token), ("X-Warden-Context", gate.context_token)]
    served = upstream.get(ROADMAP, extra_headers=twice)
    assert_missing_bearer(served)
    assert any("sent twice" in warning for warning in served.warnings), served.warnings


def test_without_any_token_the_app_asks_for_a_bearer(upstream: Upstream) -> None:
    assert_missing_bearer(upstream.get(ROADMAP))
    assert_missing_bearer(upstream.get(ROADMAP, context_token=""))


def test_an_app_without_a_context_audience_ignores_the_header(
    warden: LiveWarden, caplog: pytest.LogCaptureFixture
) -> None:
    transport = RecordingTransport()
    with TestClient(build_app(warden.url, transport, audience=None)) as client:
        upstream = Upstream(client, transport, warden, caplog)
        carol = warden.mint("carol", "acme")
        gate = allowed_at_gateway(warden, "GET", ROADMAP, carol)
        assert_missing_bearer(upstream.get(ROADMAP, context_token=gate.context_token))
        served = upstream.get(ROADMAP, context_token=gate.context_token, token=carol)
        assert served.status == 200, served.body
        assert_own_check(served, gate.decision_id)
    # Never verified, so not even Warden's keys were asked for.
    assert not any("well-known" in sent for sent in transport.sent), transport.sent


def test_the_settings_are_checked_when_the_app_is_built() -> None:
    for audience in ("", " docs-app"):
        with pytest.raises(ValueError, match="audience"):
            Warden(context_audience=audience)
    with pytest.raises(ValueError, match="context_audience"):
        Warden(context_issuer="https://warden.test")
    with pytest.raises(ValueError, match="issuer"):
        Warden(context_audience=CONTEXT_AUDIENCE, context_issuer="")


def test_without_pyjwt_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)  # `import jwt` now fails
    assert Warden().context_verifier is None  # nothing needs it without an audience
    with pytest.raises(ImportError, match=r"warden-client\[gateway\]"):
        Warden(context_audience=CONTEXT_AUDIENCE)


# ---------------------------------------------------------------------------------------------
# A mock Warden: key types the test Warden does not serve


def mock_warden(
    keys: list[dict[str, Any]], issuer: str = "https://warden.test"
) -> AsyncWardenClient:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx2.Response(200, json={"keys": keys})
        if request.url.path == "/.well-known/openid-configuration":
            return httpx2.Response(200, json={"issuer": issuer})
        return httpx2.Response(404, json={"reason": "not_found"})

    return AsyncWardenClient("http://warden.test", transport=httpx2.MockTransport(handler))


def claims(now: int, **overrides: Any) -> dict[str, Any]:
    return {
        "iss": "https://warden.test",
        "sub": "acme/carol",
        "aud": CONTEXT_AUDIENCE,
        "exp": now + 30,
        "iat": now,
        "nbf": now,
        "jti": "ctx-1",
        "principal_type": "User",
        "tenant": "acme",
        "decision_id": "dec-1",
        "action": "read",
        "resource": {"type": "Document", "id": "acme/roadmap"},
        **overrides,
    }


def public_jwk(key: Any, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(
        jwt.algorithms.get_default_algorithms()[
            "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
        ].to_jwk(key.public_key())
    )
    return {**jwk, "kid": kid}


def test_es256_keys_verify_and_rsa_keys_are_never_used() -> None:
    now = int(time.time())
    es_key = ec.generate_private_key(ec.SECP256R1())
    p384_key = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = [
        public_jwk(es_key, "es"),
        {**public_jwk(p384_key, "p384"), "alg": "ES256"},  # a curve that does not fit ES256
        public_jwk(rsa_key, "rsa"),
        {**public_jwk(es_key, "enc"), "use": "enc"},
        {"kty": "oct", "kid": "hmac", "k": b64url(b"secret")},
    ]
    assert set(parse_jwks({"keys": keys})) == {"es"}

    def signed(key: Any, alg: str, kid: str, **overrides: Any) -> str:
        return jwt.encode(
            claims(now, **overrides), key, algorithm=alg, headers={"kid": kid, "typ": TOKEN_TYPE}
        )

    async def run() -> dict[str, str]:
        verifier = ContextTokenVerifier(mock_warden(keys), CONTEXT_AUDIENCE)
        verified = await verifier.verify(signed(es_key, "ES256", "es"), now=now)
        assert verified.decision_id == "dec-1"
        outcomes = {}
        for name, token in {
            "rsa": signed(rsa_key, "RS256", "rsa"),
            "p384": signed(p384_key, "ES384", "p384"),
            "a kid whose key was left out": signed(es_key, "ES256", "p384"),
            "aud as a list": signed(es_key, "ES256", "es", aud=[CONTEXT_AUDIENCE]),
            "no decision id": signed(es_key, "ES256", "es", decision_id=None),
            "no resource": signed(es_key, "ES256", "es", resource=None),
            "too long a lifetime": signed(es_key, "ES256", "es", exp=now + 301),
            "iat in the future": signed(es_key, "ES256", "es", iat=now + 60, exp=now + 90),
        }.items():
            with pytest.raises(ContextTokenError) as refused:
                await verifier.verify(token, now=now)
            outcomes[name] = refused.value.reason
        return outcomes

    assert asyncio.run(run()) == {
        "rsa": "context_algorithm_refused",
        "p384": "context_algorithm_refused",
        "a kid whose key was left out": "context_key_unknown",
        "aud as a list": "context_audience_mismatch",
        "no decision id": "context_claims_invalid",
        "no resource": "context_claims_invalid",
        "too long a lifetime": "context_claims_invalid",
        "iat in the future": "context_not_yet_valid",
    }


def test_a_warden_without_keys_is_no_refusal_but_no_verification_either() -> None:
    # Warden without [tokens] answers 404: a `WardenRequestError`, which warden.fastapi logs
    # and answers with the usual check.
    async def run() -> None:
        client = AsyncWardenClient(
            "http://warden.test",
            transport=httpx2.MockTransport(
                lambda r: httpx2.Response(404, json={"reason": "not_found"})
            ),
        )
        verifier = ContextTokenVerifier(client, CONTEXT_AUDIENCE, issuer="https://warden.test")
        token = jwt.encode(
            claims(int(time.time())),
            ed25519.Ed25519PrivateKey.generate(),
            algorithm="EdDSA",
            headers={"kid": "k", "typ": TOKEN_TYPE},
        )
        with pytest.raises(WardenRequestError) as failed:
            await verifier.verify(token)
        assert failed.value.status == 404

    asyncio.run(run())
