"""`warden.jobs` without a Warden: the identity payload (round trip, strictness, redaction),
the exchange's request and answers against a mock token endpoint, the worker-side check, the
context variable, and the adapters (Celery in eager mode, arq's decorator, asyncio, FastAPI).

The real thing, with `warden serve`, a Celery worker and an arq worker, is
`test_jobs_live.py`.
"""

# Test tokens and token types, not secrets:
# ruff: noqa: S106

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any
from urllib.parse import parse_qs

import httpx2
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from warden import (
    Actor,
    AsyncTokenExchanger,
    AsyncWardenClient,
    JobDeniedError,
    JobIdentity,
    JobIdentityError,
    TokenExchanger,
    TokenRequestError,
    WardenClient,
    WardenProtocolError,
    acting_as,
    authorize_job,
    authorize_job_async,
    current_identity,
)
from warden import jobs as jobs_module
from warden.fastapi import Warden

CLIENT_ID = "sa_0f3c9b2e"
SECRET = "wsa_job-secret"  # noqa: S105 - a test secret
USER_TOKEN = "user.token.sig"  # noqa: S105 - stands for the user's own bearer token
EXP = 1_900_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_of(claims: dict[str, Any]) -> str:
    """A JWT with these claims; the signature is not checked by the SDK (Warden checks it)."""
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(b"signature")]
    )


def exchanged_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "http://warden.test",
        "sub": "alice",
        "tenant": "acme",
        "scope": "documents:read",
        "client_id": CLIENT_ID,
        "act": {"sub": CLIENT_ID, "tenant": "acme"},
        "warden_origin": {"sub": "alice"},
        "exp": EXP,
        "iat": EXP - 300,
        "jti": "j-1",
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


EXCHANGED = jwt_of(exchanged_claims())


def identity() -> JobIdentity:
    return JobIdentity.from_token(EXCHANGED)


# -- the identity and its payload ---------------------------------------------------------------


def test_the_identity_is_read_from_the_exchanged_token() -> None:
    job = identity()
    assert job.token == EXCHANGED
    assert (job.subject, job.tenant, job.scopes, job.expires_at) == (
        "alice",
        "acme",
        ("documents:read",),
        EXP,
    )
    assert job.actors == (Actor(CLIENT_ID, "acme"),)
    assert job.actor == Actor(CLIENT_ID, "acme")
    assert job.expired(EXP) and not job.expired(EXP - 1)


def test_a_chain_of_actors_is_flattened_current_first() -> None:
    chain = {"sub": "sa_second", "tenant": "acme", "act": {"sub": CLIENT_ID, "tenant": "acme"}}
    job = JobIdentity.from_token(jwt_of(exchanged_claims(client_id="sa_second", act=chain)))
    assert job.actors == (Actor("sa_second", "acme"), Actor(CLIENT_ID, "acme"))
    assert JobIdentity.from_payload(job.to_payload()) == job


def test_payload_round_trip_through_json() -> None:
    job = identity()
    payload = job.to_payload()
    assert json.loads(json.dumps(payload)) == payload
    assert list(payload)[-1] == "token"
    assert payload == {
        "v": 1,
        "subject": "alice",
        "tenant": "acme",
        "actors": [{"subject": CLIENT_ID, "tenant": "acme"}],
        "scopes": ["documents:read"],
        "expires_at": EXP,
        "token": EXCHANGED,
    }
    assert JobIdentity.from_payload(json.loads(json.dumps(payload))) == job


def edited(**changes: Any) -> dict[str, Any]:
    payload = identity().to_payload()
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not None}


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "a string",
        [1, 2],
        edited(token=None),
        edited(subject=None),
        edited(extra="field"),
        edited(v=2),
        edited(v=True),
        edited(v="1"),
        edited(subject="bob"),
        edited(tenant="globex"),
        edited(scopes=["documents:read", "documents:write"]),
        edited(scopes="documents:read"),
        edited(actors=[]),
        edited(actors=[{"subject": "sa_other", "tenant": "acme"}]),
        edited(actors=[{"subject": CLIENT_ID, "tenant": "acme", "extra": 1}]),
        edited(actors=[{"subject": CLIENT_ID}]),
        edited(expires_at=EXP + 1),
        edited(expires_at=float(EXP)),
        edited(expires_at=str(EXP)),
        edited(token=12),
        edited(token="not-a-jwt"),
        edited(token="a.b"),
        edited(token="a.b."),
        edited(token="a b.c.d"),
        edited(token=jwt_of(exchanged_claims(sub="bob"))),
    ],
    ids=lambda payload: repr(payload)[:60],
)
def test_from_payload_refuses_anything_it_did_not_make(payload: Any) -> None:
    with pytest.raises(JobIdentityError) as refused:
        JobIdentity.from_payload(payload)
    assert EXCHANGED not in str(refused.value)


@pytest.mark.parametrize(
    "claims",
    [
        exchanged_claims(act=None),  # the user's own token: never travels with a job
        exchanged_claims(act="sa_0f3c9b2e"),
        exchanged_claims(act={"tenant": "acme"}),
        exchanged_claims(act={"sub": CLIENT_ID, "tenant": 7}),
        exchanged_claims(client_id="sa_someone_else"),
        exchanged_claims(sub=None),
        exchanged_claims(sub=""),
        exchanged_claims(tenant=None),
        exchanged_claims(scope=["documents:read"]),
        exchanged_claims(exp=None),
        exchanged_claims(exp=True),
        exchanged_claims(exp=float(EXP)),
    ],
)
def test_from_token_refuses_a_token_that_is_not_an_exchanged_one(claims: dict[str, Any]) -> None:
    with pytest.raises(JobIdentityError):
        JobIdentity.from_token(jwt_of(claims))


def test_claims_that_are_not_a_json_object_are_refused() -> None:
    for body in (b64(b"[1]"), b64(b"\xff\xfe"), "!!!!"):
        with pytest.raises(JobIdentityError):
            JobIdentity.from_token(f"{b64(b'{}')}.{body}.{b64(b'sig')}")
    with pytest.raises(JobIdentityError):
        JobIdentity.from_token("a." * 10_000 + "b")


def test_a_delegation_chain_has_a_bound() -> None:
    act: dict[str, Any] = {"sub": CLIENT_ID, "tenant": "acme"}
    for _ in range(40):
        act = {"sub": CLIENT_ID, "tenant": "acme", "act": act}
    with pytest.raises(JobIdentityError):
        JobIdentity.from_token(jwt_of(exchanged_claims(act=act)))


def test_the_token_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    job = identity()
    payload = jobs_module.IdentityPayload(job.to_payload())
    denied = JobDeniedError("read", 'Document::"acme/roadmap"', "token_revoked", None)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("warden.test").info("job %s %r %s", job, job, payload)
        shown = [repr(job), str(job), f"{job}", repr(payload), str(payload), str(denied)]
    shown.extend(record.getMessage() for record in caplog.records)
    for text in shown:
        assert EXCHANGED not in text
        assert "signature" not in text and b64(b"signature") not in text
    assert "alice" in repr(job) and "acme/alice" in repr(payload)


# -- the exchange -------------------------------------------------------------------------------


class TokenEndpoint:
    """Plays `POST /oauth2/token` (and `/v1/check`) and remembers what it was sent."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.answer: tuple[int, Any] = (200, self.issued())
        self.check_answer: tuple[int, Any] = (200, check_answer(True, "permitted"))
        self.bearers: list[str] = []

    @staticmethod
    def issued(token: str = EXCHANGED, **changes: Any) -> dict[str, Any]:
        body = {
            "access_token": token,
            "issued_token_type": jobs_module.ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "documents:read",
        }
        body.update(changes)
        return body

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/v1/check":
            self.bearers.append(request.headers["authorization"].removeprefix("Bearer "))
            status, body = self.check_answer
            return httpx2.Response(status, json=body)
        parsed = parse_qs(request.content.decode(), keep_blank_values=True)
        self.forms.append({key: values[0] for key, values in parsed.items()})
        self.headers.append({key.lower(): value for key, value in request.headers.items()})
        status, body = self.answer
        return httpx2.Response(status, json=body, headers={"Cache-Control": "no-store"})


def check_answer(allowed: bool, reason: str) -> dict[str, Any]:
    return {
        "decision": "allow" if allowed else "deny",
        "decision_id": "dec-1",
        "reason": reason,
        "reasons": [],
        "errors": [],
        "principal": {"type": "User", "id": "acme/alice", "tenant": "acme"},
        "policy_revision": "rev",
    }


@pytest.fixture
def endpoint() -> TokenEndpoint:
    return TokenEndpoint()


def exchanger_of(endpoint: TokenEndpoint, **options: Any) -> TokenExchanger:
    return TokenExchanger(
        "http://warden.test",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        transport=httpx2.MockTransport(endpoint),
        **options,
    )


def test_exchange_sends_an_rfc_8693_request_with_client_authentication(
    endpoint: TokenEndpoint,
) -> None:
    with exchanger_of(endpoint, scope="documents:read") as exchanger:
        assert exchanger.exchange(USER_TOKEN) == identity()
        exchanger.exchange(
            USER_TOKEN,
            scope=["documents:read", "documents:list"],
            audience="reports",
            subject_token_type=jobs_module.JWT_TOKEN_TYPE,
            requested_token_type=jobs_module.ACCESS_TOKEN_TYPE,
        )
    assert endpoint.forms == [
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": USER_TOKEN,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "scope": "documents:read",
        },
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": USER_TOKEN,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "scope": "documents:read documents:list",
            "audience": "reports",
            "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
    ]
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert all(headers["authorization"] == f"Basic {basic}" for headers in endpoint.headers)
    assert all(
        headers["content-type"] == "application/x-www-form-urlencoded"
        for headers in endpoint.headers
    )


def test_exchange_with_client_secret_post(endpoint: TokenEndpoint) -> None:
    with exchanger_of(endpoint, auth_method="client_secret_post", audience="reports") as exchanger:
        exchanger.exchange(USER_TOKEN)
    assert endpoint.forms[0]["client_id"] == CLIENT_ID
    assert endpoint.forms[0]["client_secret"] == SECRET
    assert endpoint.forms[0]["audience"] == "reports"
    assert "authorization" not in endpoint.headers[0]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "invalid_request"),
        (400, "invalid_scope"),
        (400, "invalid_target"),
        (400, "unauthorized_client"),
        (401, "invalid_client"),
    ],
)
def test_a_refusal_is_a_token_request_error(
    endpoint: TokenEndpoint, status: int, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint.answer = (status, {"error": error, "error_description": "no"})
    with (
        exchanger_of(endpoint) as exchanger,
        caplog.at_level(logging.DEBUG),
        pytest.raises(TokenRequestError) as refused,
    ):
        exchanger.exchange(USER_TOKEN)
    assert (refused.value.error, refused.value.status, refused.value.retryable) == (
        error,
        status,
        False,
    )
    for record in caplog.records:
        assert USER_TOKEN not in record.getMessage() and SECRET not in record.getMessage()


@pytest.mark.parametrize(
    "answer",
    [
        TokenEndpoint.issued(issued_token_type=None),
        TokenEndpoint.issued(issued_token_type="urn:ietf:params:oauth:token-type:id_token"),
        TokenEndpoint.issued(token=USER_TOKEN),  # the user's own token back: never kept
        TokenEndpoint.issued(token=jwt_of(exchanged_claims(act=None))),
        TokenEndpoint.issued(token="opaque-token"),
        TokenEndpoint.issued(token_type="mac"),
        TokenEndpoint.issued(expires_in=0),
    ],
)
def test_an_answer_the_sdk_cannot_use_is_a_protocol_error(
    endpoint: TokenEndpoint, answer: dict[str, Any]
) -> None:
    endpoint.answer = (200, answer)
    with exchanger_of(endpoint) as exchanger, pytest.raises(WardenProtocolError):
        exchanger.exchange(USER_TOKEN)


def test_either_token_type_is_accepted_in_the_answer(endpoint: TokenEndpoint) -> None:
    # Warden's exchanged token is a JWT access token: either name fits it.
    with exchanger_of(endpoint) as exchanger:
        exchanger.exchange(USER_TOKEN, requested_token_type=jobs_module.JWT_TOKEN_TYPE)
        endpoint.answer = (200, TokenEndpoint.issued(issued_token_type=jobs_module.JWT_TOKEN_TYPE))
        assert exchanger.exchange(USER_TOKEN) == identity()


def test_bad_arguments_are_refused_before_any_request(endpoint: TokenEndpoint) -> None:
    with pytest.raises(ValueError):
        exchanger_of(endpoint, scope="bad\x01scope")
    with pytest.raises(ValueError):
        exchanger_of(endpoint, audience="two words")
    with pytest.raises(ValueError):
        TokenExchanger("http://warden.test", client_id="", client_secret=SECRET)
    with exchanger_of(endpoint) as exchanger:
        for call in (
            lambda: exchanger.exchange(""),
            lambda: exchanger.exchange(USER_TOKEN, subject_token_type=""),
            lambda: exchanger.exchange(USER_TOKEN, requested_token_type="a b"),
        ):
            with pytest.raises(ValueError):
                call()
    assert endpoint.forms == []


def test_exchangers_never_show_the_secret(endpoint: TokenEndpoint) -> None:
    with exchanger_of(endpoint, scope="documents:read") as exchanger:
        assert SECRET not in repr(exchanger) and CLIENT_ID in repr(exchanger)


def test_async_exchange(endpoint: TokenEndpoint) -> None:
    async def run() -> JobIdentity:
        async with AsyncTokenExchanger(
            "http://warden.test",
            client_id=CLIENT_ID,
            client_secret=SECRET,
            transport=httpx2.MockTransport(endpoint),
        ) as exchanger:
            assert SECRET not in repr(exchanger)
            return await exchanger.exchange(USER_TOKEN, scope="documents:read")

    assert asyncio.run(run()) == identity()
    assert endpoint.forms[0]["scope"] == "documents:read"
    endpoint.answer = (400, {"error": "invalid_scope"})
    with pytest.raises(TokenRequestError) as refused:
        asyncio.run(run())
    assert refused.value.error == "invalid_scope"


# -- the worker side ----------------------------------------------------------------------------


def test_current_identity_is_set_only_inside_acting_as() -> None:
    with pytest.raises(JobIdentityError):
        current_identity()
    outer = identity()
    inner = JobIdentity.from_token(jwt_of(exchanged_claims(sub="bob")))
    with acting_as(outer):
        assert current_identity() is outer
        with acting_as(inner):
            assert current_identity() is inner
        assert current_identity() is outer
    with pytest.raises(JobIdentityError):
        current_identity()
    with pytest.raises(TypeError), acting_as(outer.to_payload()):  # type: ignore[arg-type]
        pass


def test_authorize_job_checks_with_the_job_token_every_time(endpoint: TokenEndpoint) -> None:
    with WardenClient("http://warden.test", transport=httpx2.MockTransport(endpoint)) as client:
        with pytest.raises(JobIdentityError):
            authorize_job(client, "read", "Document", "acme/roadmap")
        with acting_as(identity()):
            assert authorize_job(client, "read", "Document", "acme/roadmap").allowed
            endpoint.check_answer = (200, check_answer(False, "no_permit"))
            with pytest.raises(JobDeniedError) as denied:
                authorize_job(client, "delete", "Document", "acme/roadmap")
            assert denied.value.reason == "no_permit"
            assert denied.value.decision is not None
            assert denied.value.decision.decision_id == "dec-1"
            assert not denied.value.retryable
            endpoint.check_answer = (
                401,
                {"reason": "token_revoked", "detail": "the token is revoked (by subject)"},
            )
            with pytest.raises(JobDeniedError) as refused:
                authorize_job(client, "read", "Document", "acme/roadmap")
            assert (refused.value.reason, refused.value.decision) == ("token_revoked", None)
    assert endpoint.bearers == [EXCHANGED] * 3


def test_authorize_job_async(endpoint: TokenEndpoint) -> None:
    async def run() -> None:
        async with AsyncWardenClient(
            "http://warden.test", transport=httpx2.MockTransport(endpoint)
        ) as client:
            decision = await authorize_job_async(
                client, "read", "Document", "acme/roadmap", identity=identity()
            )
            assert decision.allowed
            endpoint.check_answer = (200, check_answer(False, "tenant_boundary"))
            with acting_as(identity()), pytest.raises(JobDeniedError) as denied:
                await authorize_job_async(client, "read", "Document", "globex/roadmap")
            assert denied.value.reason == "tenant_boundary"

    asyncio.run(run())
    assert endpoint.bearers == [EXCHANGED] * 2


def test_spawn_runs_under_the_identity_and_leaves_the_caller_alone() -> None:
    seen: list[str] = []

    async def job(name: str) -> str:
        await asyncio.sleep(0)
        seen.append(current_identity().subject)
        return name

    async def run() -> None:
        bob = JobIdentity.from_token(jwt_of(exchanged_claims(sub="bob")))
        with acting_as(bob):
            task = jobs_module.spawn(job("x"), identity(), name="job")
            assert await task == "x"
            assert current_identity() is bob
        with pytest.raises(TypeError):
            jobs_module.spawn(job("y"), identity().to_payload())  # type: ignore[arg-type]
        assert not jobs_module._spawned

    asyncio.run(run())
    assert seen == ["alice"]


# -- adapters -----------------------------------------------------------------------------------


def test_celery_task_in_eager_mode_runs_as_the_user() -> None:
    celery = pytest.importorskip("celery")
    app = celery.Celery("warden-jobs-unit", set_as_current=False)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True

    @app.task
    @jobs_module.celery_job
    def whoami(suffix: str) -> str:
        return current_identity().subject + suffix

    result = jobs_module.enqueue_celery(whoami, identity(), args=("!",))
    assert result.get(timeout=1) == "alice!"
    with pytest.raises(JobIdentityError):
        whoami.apply_async(args=("!",))
    with pytest.raises(JobIdentityError):
        whoami.apply_async(args=("!",), headers={"warden_identity": {"v": 1}})


class FakeArqRedis:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    async def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> str:
        self.jobs.append((function, args, kwargs))
        return "job-1"


def test_arq_enqueue_and_decorator() -> None:
    redis = FakeArqRedis()

    @jobs_module.arq_job
    async def whoami(ctx: dict[str, Any], suffix: str) -> str:
        assert ctx == {"job_id": "job-1"}
        return current_identity().subject + suffix

    async def run() -> None:
        assert await jobs_module.enqueue_arq(redis, "whoami", identity(), "!", _defer_by=1) == (
            "job-1"
        )
        function, args, kwargs = redis.jobs[0]
        assert (function, args, kwargs["_defer_by"]) == ("whoami", ("!",), 1)
        assert EXCHANGED not in repr(kwargs)
        assert await whoami({"job_id": "job-1"}, *args, warden_identity=kwargs["warden_identity"])
        plain = dict(kwargs["warden_identity"])
        assert await whoami({"job_id": "job-1"}, "?", warden_identity=plain) == "alice?"
        with pytest.raises(JobIdentityError):
            await whoami({"job_id": "job-1"}, "!")
        with pytest.raises(JobIdentityError):
            await whoami({"job_id": "job-1"}, "!", warden_identity={"v": 1})
        with pytest.raises(ValueError):
            await jobs_module.enqueue_arq(redis, "whoami", identity(), warden_identity=1)

    asyncio.run(run())
    assert whoami.__qualname__.endswith("whoami")


def test_fastapi_dependency_exchanges_the_request_token(endpoint: TokenEndpoint) -> None:
    exchanger = AsyncTokenExchanger(
        "http://warden.test",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        transport=httpx2.MockTransport(endpoint),
    )
    warden = Warden()
    app = FastAPI()
    warden.install(app)

    @app.post("/jobs")
    async def enqueue(
        job: JobIdentity = Depends(warden.job_identity(exchanger, scope="documents:read")),  # noqa: B008
    ) -> dict[str, Any]:
        return {"subject": job.subject, "actor": job.actor.subject}

    with TestClient(app) as client:
        ok = client.post("/jobs", headers={"Authorization": f"Bearer {USER_TOKEN}"})
        assert ok.status_code == 200
        assert ok.json() == {"subject": "alice", "actor": CLIENT_ID}
        assert endpoint.forms[0]["subject_token"] == USER_TOKEN
        assert endpoint.forms[0]["scope"] == "documents:read"
        assert EXCHANGED not in ok.text

        missing = client.post("/jobs")
        assert missing.status_code == 401 and missing.json()["reason"] == "token_missing"

        endpoint.answer = (400, {"error": "invalid_request", "error_description": "revoked"})
        refused = client.post("/jobs", headers={"Authorization": f"Bearer {USER_TOKEN}"})
        assert refused.status_code == 401
        assert refused.json()["reason"] == "token_exchange_refused"
        assert "invalid_token" in refused.headers["www-authenticate"]

        endpoint.answer = (400, {"error": "unauthorized_client"})
        misconfigured = client.post("/jobs", headers={"Authorization": f"Bearer {USER_TOKEN}"})
        assert misconfigured.status_code == 503
