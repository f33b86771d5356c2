"""Background jobs act for the user (issue #25): the user's narrowed authority, carried from a
request to a worker, checked again by Warden when the job runs.

A job enqueued while serving a user must not run with a credential that can do anything. At
enqueue time, the application exchanges the user's bearer token at Warden's token endpoint
(RFC 8693 token exchange) as a service account that holds the scope `warden:token-exchange`:

    exchanger = AsyncTokenExchanger(url, client_id="sa_…", client_secret=secret)
    identity = await exchanger.exchange(user_token)  # or Depends(warden.job_identity(...))
    enqueue_celery(reindex, identity, args=(doc_id,))

Warden answers with a short-lived token (at most `[tokens] exchange_ttl_seconds`, 300 s by
default, and never past the user's own token) for the *user* (`sub`, `tenant`), with only the
scopes that the user and the account both hold, naming the account as the actor (`act`,
RFC 8693 §4.1; an exchanged token exchanged again keeps the chain). That token, and what its
claims say (`JobIdentity`), travel with the job; the user's own token never does. In the
worker, `authorize_job` (or `authorize_job_async`) asks Warden with it, as the user, at the
time the job runs: a revocation, a disabled user or a disabled account between enqueue and run
is a deny (`JobDeniedError`), and nothing decided at enqueue time is reused.

What this module is:

- `TokenExchanger` / `AsyncTokenExchanger`: the exchange. The client authentication, the
  transport (retries only when the connection could not be made: each request issues a token)
  and the error answers are `warden.service_account`'s; a refusal is `TokenRequestError` with
  the OAuth `error` (`invalid_request`, `invalid_scope`, `invalid_target`,
  `unauthorized_client`, `invalid_client`), no answer `WardenUnavailableError`.
- `JobIdentity`: the exchanged token (never in `repr`, `str` or a log line) and its claims:
  `subject`, `tenant`, `scopes`, `actors` (current actor first), `expires_at`. The claims are
  read, not verified: they say whom the job is for, for logs and routing; Warden verifies the
  token at every check. `to_payload()` is the JSON-safe form that travels (the token last);
  `from_payload()` takes it back strictly: exactly the known fields, typed, and the fields must
  be what the token's claims say. A token without `act` (a user's own token) is refused.
- The worker side: `acting_as(identity)` puts an identity in a context variable for the code
  it wraps, `current_identity()` reads it, and `authorize_job` / `authorize_job_async` check an
  action with it.
- Adapters: `enqueue_celery` and `@celery_job` (the payload travels in a message header,
  `warden_identity`, so it is not among the task's arguments that Celery logs and sends in
  events), `enqueue_arq` and `@arq_job` (a keyword argument, `warden_identity`, whose `repr` in
  arq's log line names the user, not the token, with arq's default serializer, pickle), and
  `spawn` (an asyncio task that runs under the identity). Celery and arq are imported only
  when used (extras `celery`, `arq`); this module does not need either.

The decision log record of a job's check names the user as `principal` and the service
accounts of the chain in `actors`. Tests: `tests/test_jobs.py` (no Warden),
`tests/test_jobs_live.py` (the real `warden serve`, a real Celery worker and a real arq worker
on a Redis of their own).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import functools
import importlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ParamSpec, Protocol, Self, TypeVar

from warden import _transport
from warden.client import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_URL,
    AsyncWardenClient,
    WardenClient,
)
from warden.errors import (
    InvalidTokenError,
    JobDeniedError,
    JobIdentityError,
    WardenProtocolError,
)
from warden.models import Decision
from warden.service_account import (
    AuthMethod,
    _AsyncTokenEndpoint,
    _bearer_token,
    _ClientCredentials,
    _endpoint_settings,
    _env_settings,
    _scope_string,
    _TokenEndpoint,
)

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - a URN
TOKEN_EXCHANGE_SCOPE = "warden:token-exchange"  # noqa: S105 - a scope name
"""The scope a service account needs to exchange a user's token."""
IDENTITY_FIELD = "warden_identity"
"""The Celery message header and the arq keyword argument that carry a job's identity."""
PAYLOAD_VERSION = 1

_PAYLOAD_FIELDS = frozenset({"v", "subject", "tenant", "actors", "scopes", "expires_at", "token"})
_ACTOR_FIELDS = frozenset({"subject", "tenant"})
_MAX_TOKEN_BYTES = 16 * 1024
_MAX_ACTORS = 16  # far past Warden's own bound on a delegation chain
# A JWS in compact form, signed: three base64url parts, the last one not empty.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_URI = re.compile(r"\S+")

_log = logging.getLogger("warden")
_current: contextvars.ContextVar[JobIdentity | None] = contextvars.ContextVar(
    "warden_job_identity", default=None
)
_spawned: set[asyncio.Task[Any]] = set()  # running `spawn` tasks: asyncio keeps weak refs only

P = ParamSpec("P")
T = TypeVar("T")


# -- the identity ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actor:
    """One link of a delegation chain (a token's `act`): the service account acting, by its
    client id (`subject`), and its tenant."""

    subject: str
    tenant: str | None


@dataclass(frozen=True, slots=True)
class JobIdentity:
    """Whom a job acts for: an exchanged token and what its claims say.

    `token` is the exchanged access token, the job's credential: never shown by `repr` or
    `str`, never logged. `subject` and `tenant` are the user's; `scopes` the scopes the token
    carries (those the user and the account both hold); `actors` the delegation chain, the
    account that exchanged the token first; `expires_at` the token's `exp` (Unix seconds).
    These are read from the token, not verified (Warden verifies it at every check).

    Made by `TokenExchanger.exchange`, `JobIdentity.from_token` or `JobIdentity.from_payload`.
    """

    token: str = field(repr=False)
    subject: str
    tenant: str
    scopes: tuple[str, ...]
    actors: tuple[Actor, ...]
    expires_at: int

    @property
    def actor(self) -> Actor:
        """The service account acting now (the first of `actors`)."""
        return self.actors[0]

    def expired(self, now: float | None = None) -> bool:
        """Whether the token's `exp` has passed at `now` (default: the wall clock). Warden
        refuses an expired token anyway (`token_expired`); this only tells it earlier."""
        return (time.time() if now is None else now) >= self.expires_at

    @classmethod
    def from_token(cls, token: str) -> JobIdentity:
        """The identity of an exchanged token Warden issued (its claims read, not verified).

        Raises `JobIdentityError` for anything else: not a signed JWT, claims missing or
        mistyped, and a token without `act`, such as a user's own token, which must never
        travel with a job.
        """
        claims = _unverified_claims(token)
        subject = _claim_string(claims, "sub")
        tenant = _claim_string(claims, "tenant")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise JobIdentityError("the token's `scope` claim is not a string")
        expires_at = claims.get("exp")
        if isinstance(expires_at, bool) or not isinstance(expires_at, int):
            raise JobIdentityError("the token has no integer `exp` claim")
        actors = _actor_chain(claims.get("act"))
        client_id = claims.get("client_id")
        if client_id is not None and client_id != actors[0].subject:
            raise JobIdentityError("the token's `client_id` is not its acting service account")
        return cls(token, subject, tenant, tuple(scope.split()), actors, expires_at)

    def to_payload(self) -> dict[str, Any]:
        """The identity as a small JSON-safe dict, to send with a job (the exchanged token
        included, last; never the user's own token). `from_payload` takes it back."""
        return {
            "v": PAYLOAD_VERSION,
            "subject": self.subject,
            "tenant": self.tenant,
            "actors": [{"subject": a.subject, "tenant": a.tenant} for a in self.actors],
            "scopes": list(self.scopes),
            "expires_at": self.expires_at,
            "token": self.token,
        }

    @classmethod
    def from_payload(cls, payload: Any) -> JobIdentity:
        """The identity `to_payload` made, checked strictly.

        Raises `JobIdentityError` for anything else: not a dict, a field missing or unknown,
        a version this SDK does not know, a mistyped value, or fields that differ from what
        the token's claims say (a payload edited on its way is refused, not half-believed).
        """
        if not isinstance(payload, Mapping):
            raise JobIdentityError(
                f"a job identity payload is a dict, not {type(payload).__name__}"
            )
        keys = set(payload)
        if keys != _PAYLOAD_FIELDS:
            missing = sorted(str(key) for key in _PAYLOAD_FIELDS - keys)
            unknown = sorted(str(key) for key in keys - _PAYLOAD_FIELDS)
            raise JobIdentityError(
                f"not a job identity payload: missing {missing or 'nothing'}, "
                f"unknown {unknown or 'nothing'}"
            )
        version = payload["v"]
        if isinstance(version, bool) or version != PAYLOAD_VERSION:
            raise JobIdentityError(f"job identity payload version {version!r} is not supported")
        token = payload["token"]
        if not isinstance(token, str):
            raise JobIdentityError("the payload's token is not a string")
        identity = cls.from_token(token)
        if _plain(payload) != identity.to_payload():
            raise JobIdentityError("the payload's fields are not what its token says")
        return identity


def _unverified_claims(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_BYTES:
        raise JobIdentityError("the job's token is not a string of at most 16 KiB")
    if not _COMPACT_JWS.fullmatch(token):
        raise JobIdentityError("the job's token is not a signed JWT")
    body = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        raise JobIdentityError("the job's token has claims that are not JSON") from None
    if not isinstance(claims, dict):
        raise JobIdentityError("the job's token has claims that are not a JSON object")
    return claims


def _claim_string(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise JobIdentityError(f"the token has no `{name}` claim (a non-empty string)")
    return value


def _actor_chain(act: Any) -> tuple[Actor, ...]:
    """`act` (RFC 8693 §4.1), flattened: the current actor first, then each prior one."""
    if act is None:
        raise JobIdentityError(
            "the token has no `act` claim: it is not an exchanged token (a user's own token "
            "never travels with a job)"
        )
    actors: list[Actor] = []
    while act is not None:
        if not isinstance(act, dict) or len(actors) >= _MAX_ACTORS:
            raise JobIdentityError("the token's `act` claim is not a chain of actors")
        tenant = act.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise JobIdentityError("an actor's `tenant` in the token is not a string")
        actors.append(Actor(_claim_string(act, "sub"), tenant))
        act = act.get("act")
    return tuple(actors)


def _plain(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as `to_payload` would write it, for an exact comparison: actors and
    scopes as lists of plain values, with the types they came with (`True` is not `1`)."""
    actors = payload["actors"]
    scopes = payload["scopes"]
    if not isinstance(actors, list | tuple) or not isinstance(scopes, list | tuple):
        raise JobIdentityError("the payload's actors and scopes are lists")
    plain_actors: list[dict[str, Any]] = []
    for actor in actors:
        if not isinstance(actor, Mapping) or set(actor) != _ACTOR_FIELDS:
            raise JobIdentityError("an actor of the payload is not {subject, tenant}")
        plain_actors.append({"subject": actor["subject"], "tenant": actor["tenant"]})
    expires_at = payload["expires_at"]
    if isinstance(expires_at, bool) or not isinstance(expires_at, int):
        raise JobIdentityError("the payload's expires_at is not an integer")
    if not all(isinstance(scope, str) for scope in scopes):
        raise JobIdentityError("the payload's scopes are not strings")
    return {
        "v": payload["v"],
        "subject": payload["subject"],
        "tenant": payload["tenant"],
        "actors": plain_actors,
        "scopes": list(scopes),
        "expires_at": expires_at,
        "token": payload["token"],
    }


# -- the exchange ------------------------------------------------------------------------------


class _Exchange:
    """What the blocking and the asyncio exchangers share: the grant's form and the checks of
    Warden's answer (no I/O here)."""

    def __init__(
        self,
        base_url: str,
        credentials: _ClientCredentials,
        scope: str | Sequence[str] | None,
        audience: str | None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._scope = _scope_string(scope)
        self._audience = _uri_or_none(audience, "audience")

    @property
    def client_id(self) -> str:
        return self._credentials.client_id

    def _grant(
        self,
        subject_token: str,
        scope: str | Sequence[str] | None,
        audience: str | None,
        subject_token_type: str,
        requested_token_type: str | None,
    ) -> dict[str, str]:
        if not isinstance(subject_token, str) or not subject_token:
            raise ValueError("subject_token must be a non-empty string")
        grant = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": subject_token,
            "subject_token_type": _uri(subject_token_type, "subject_token_type"),
        }
        narrowed = _scope_string(scope) if scope is not None else self._scope
        if narrowed is not None:
            grant["scope"] = narrowed
        target = _uri_or_none(audience, "audience") or self._audience
        if target is not None:
            grant["audience"] = target
        if requested_token_type is not None:
            grant["requested_token_type"] = _uri(requested_token_type, "requested_token_type")
        return grant

    def _identity(self, body: dict[str, Any], subject_token: str) -> JobIdentity:
        """The identity of a 200 answer; `WardenProtocolError` for one this SDK cannot use."""
        value, lifetime = _bearer_token(body)
        issued = body.get("issued_token_type")
        # Warden's token is both (a JWT access token, `typ` `at+jwt`), whichever was asked for.
        if issued not in (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE):
            raise WardenProtocolError(
                f"the token exchange issued a {issued!r} token, not an access token"
            )
        if value == subject_token:
            # Never let a user's own token pass for an exchanged one.
            raise WardenProtocolError("the token exchange answered with the subject token")
        try:
            identity = JobIdentity.from_token(value)
        except JobIdentityError as unusable:
            raise WardenProtocolError(f"the exchanged token cannot be read: {unusable}") from None
        _log.debug(
            "token exchange by %s: issued, %d actor(s) in its chain, expires in %d s",
            self._credentials.client_id,
            len(identity.actors),
            lifetime,
        )
        return identity

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, {self._credentials!r}, "
            f"scope={self._scope!r}, audience={self._audience!r})"
        )


def _uri(value: str, name: str) -> str:
    if not isinstance(value, str) or not _URI.fullmatch(value):
        raise ValueError(f"{name} must be a non-empty string without spaces")
    return value


def _uri_or_none(value: str | None, name: str) -> str | None:
    return None if value is None else _uri(value, name)


class TokenExchanger(_Exchange):
    """Exchanges users' tokens for job tokens at Warden's `POST /oauth2/token` (blocking).

    The client is a Warden service account that holds `warden:token-exchange`, authenticated
    as for `ServiceAccountTokens` (`client_id`, `client_secret`, `auth_method`). `scope` (a
    string or a list) narrows every exchange to those scopes, and `audience` asks for another
    audience than Warden's default; both can be given per call instead. `timeout`, `deadline`,
    `retries` (only for connections that could not be made), `verify` and `cert` are as for
    `WardenClient`. Nothing is cached: each call is one exchange.

    Holds a connection pool: `close()` it, or use it in a `with` block.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        client_id: str,
        client_secret: str,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        auth_method: AuthMethod = "client_secret_basic",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        transport: _transport.SyncHttpTransport | None = None,
        retries: int = DEFAULT_RETRIES,
        deadline: float | None = None,
        verify: _transport.Verify = True,
        cert: _transport.ClientCert | None = None,
    ) -> None:
        credentials = _ClientCredentials(client_id, client_secret, auth_method)
        super().__init__(base_url, credentials, scope, audience)
        settings = _endpoint_settings(
            base_url, timeout, connect_timeout, retries, deadline, verify, cert
        )
        self._endpoint = _TokenEndpoint(credentials, settings, transport)

    @classmethod
    def from_env(cls) -> TokenExchanger:
        """Configured like `ServiceAccountTokens.from_env` (`WARDEN_URL`, `WARDEN_CLIENT_ID`,
        `WARDEN_CLIENT_SECRET`, and the optional `WARDEN_SCOPE` and `WARDEN_TIMEOUT`)."""
        return cls(**_env_settings())

    def exchange(
        self,
        subject_token: str,
        *,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        subject_token_type: str = ACCESS_TOKEN_TYPE,
        requested_token_type: str | None = None,
    ) -> JobIdentity:
        """Exchange the user's bearer token for a job's identity.

        Raises `TokenRequestError` when Warden refuses (`invalid_request`: among others, a
        subject token it refuses; `invalid_scope`, `invalid_target`, `unauthorized_client`,
        `invalid_client`) and `WardenUnavailableError` when it gives no answer.
        """
        grant = self._grant(
            subject_token, scope, audience, subject_token_type, requested_token_type
        )
        body = self._endpoint.request(grant)
        return self._identity(body, subject_token)

    def close(self) -> None:
        self._endpoint.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncTokenExchanger(_Exchange):
    """`TokenExchanger` for asyncio: the same arguments, `await exchanger.exchange(token)`.

    Holds a connection pool: `aclose()` it, or use it in an `async with` block.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        client_id: str,
        client_secret: str,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        auth_method: AuthMethod = "client_secret_basic",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        transport: _transport.AsyncHttpTransport | None = None,
        retries: int = DEFAULT_RETRIES,
        deadline: float | None = None,
        verify: _transport.Verify = True,
        cert: _transport.ClientCert | None = None,
    ) -> None:
        credentials = _ClientCredentials(client_id, client_secret, auth_method)
        super().__init__(base_url, credentials, scope, audience)
        settings = _endpoint_settings(
            base_url, timeout, connect_timeout, retries, deadline, verify, cert
        )
        self._endpoint = _AsyncTokenEndpoint(credentials, settings, transport)

    @classmethod
    def from_env(cls) -> AsyncTokenExchanger:
        """Configured like `TokenExchanger.from_env`."""
        return cls(**_env_settings())

    async def exchange(
        self,
        subject_token: str,
        *,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        subject_token_type: str = ACCESS_TOKEN_TYPE,
        requested_token_type: str | None = None,
    ) -> JobIdentity:
        """Exchange the user's bearer token for a job's identity; see
        `TokenExchanger.exchange`."""
        grant = self._grant(
            subject_token, scope, audience, subject_token_type, requested_token_type
        )
        body = await self._endpoint.request(grant)
        return self._identity(body, subject_token)

    async def aclose(self) -> None:
        await self._endpoint.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


# -- the worker side ---------------------------------------------------------------------------


def current_identity() -> JobIdentity:
    """The identity of the job running in this context (`acting_as`, the decorators, `spawn`).

    Raises `JobIdentityError` outside of one: code that needs the user's authority must not
    run without it.
    """
    identity = _current.get()
    if identity is None:
        raise JobIdentityError("no job identity in this context (see warden.jobs.acting_as)")
    return identity


@contextmanager
def acting_as(identity: JobIdentity) -> Iterator[JobIdentity]:
    """Run the wrapped code (sync or async) with `identity` as `current_identity()`; the
    previous identity, if any, is back afterwards."""
    if not isinstance(identity, JobIdentity):
        raise TypeError(f"acting_as needs a JobIdentity, not {type(identity).__name__}")
    reset = _current.set(identity)
    try:
        yield identity
    finally:
        _current.reset(reset)


def authorize_job(
    client: WardenClient,
    action: str,
    resource_type: str,
    resource_id: str,
    properties: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    identity: JobIdentity | None = None,
) -> Decision:
    """Ask Warden, now, whether the job's user may do `action` on the resource; the allow's
    `Decision` when it may.

    `identity` defaults to `current_identity()`. A deny, and a job token Warden refuses
    (revoked, expired, a disabled user or account), raise `JobDeniedError`; an unavailable
    Warden raises `WardenUnavailableError` (retryable). Never cached: every call is a check.
    """
    job = identity if identity is not None else current_identity()
    try:
        decision = client.check(job.token, action, resource_type, resource_id, properties, context)
    except InvalidTokenError as refused:
        raise _denied(action, resource_type, resource_id, refused.reason, None) from None
    if not decision.allowed:
        raise _denied(action, resource_type, resource_id, decision.reason, decision)
    return decision


async def authorize_job_async(
    client: AsyncWardenClient,
    action: str,
    resource_type: str,
    resource_id: str,
    properties: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    identity: JobIdentity | None = None,
) -> Decision:
    """`authorize_job` with an `AsyncWardenClient`."""
    job = identity if identity is not None else current_identity()
    try:
        decision = await client.check(
            job.token, action, resource_type, resource_id, properties, context
        )
    except InvalidTokenError as refused:
        raise _denied(action, resource_type, resource_id, refused.reason, None) from None
    if not decision.allowed:
        raise _denied(action, resource_type, resource_id, decision.reason, decision)
    return decision


def _denied(
    action: str, resource_type: str, resource_id: str, reason: str, decision: Decision | None
) -> JobDeniedError:
    resource = f'{resource_type}::"{resource_id}"'
    _log.info("a job's %s on %s was not allowed: %s", action, resource, reason)
    return JobDeniedError(action, resource, reason, decision)


# -- asyncio -----------------------------------------------------------------------------------


def spawn(
    coroutine: Coroutine[Any, Any, T], identity: JobIdentity, *, name: str | None = None
) -> asyncio.Task[T]:
    """Run `coroutine` as an asyncio task under `identity` (its `current_identity()`),
    whatever identity the caller has. The task is kept referenced until it is done."""
    if not isinstance(identity, JobIdentity):
        coroutine.close()
        raise TypeError(f"spawn needs a JobIdentity, not {type(identity).__name__}")
    context = contextvars.copy_context()
    context.run(_current.set, identity)
    task = asyncio.get_running_loop().create_task(coroutine, name=name, context=context)
    _spawned.add(task)
    task.add_done_callback(_spawned.discard)
    return task


# -- Celery ------------------------------------------------------------------------------------


class CeleryTask(Protocol):
    """What `enqueue_celery` needs of a Celery task: `apply_async`."""

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any: ...


def enqueue_celery(
    task: CeleryTask,
    identity: JobIdentity,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> Any:
    """`task.apply_async(args, kwargs, **options)` with the identity's payload in the message
    header `warden_identity` (added to any `headers` in `options`). Returns Celery's
    `AsyncResult`. The task must be decorated with `@celery_job`."""
    headers = dict(options.pop("headers", None) or {})
    headers[IDENTITY_FIELD] = identity.to_payload()
    return task.apply_async(args=tuple(args), kwargs=dict(kwargs or {}), headers=headers, **options)


def celery_job(function: Callable[P, T]) -> Callable[P, T]:
    """Run a Celery task's function under the identity its message carries (put there by
    `enqueue_celery`); place it under `@app.task`:

        @app.task
        @celery_job
        def reindex(doc_id: str) -> None:
            authorize_job(warden_client, "read", "Document", doc_id)

    A message without a valid identity fails the task with `JobIdentityError` before the
    function runs (never as the worker's own identity). Celery is imported when the task
    runs.
    """

    @functools.wraps(function)
    def run_as_job(*args: P.args, **kwargs: P.kwargs) -> T:
        with acting_as(JobIdentity.from_payload(_celery_payload())):
            return function(*args, **kwargs)

    return run_as_job


def _celery_payload() -> Any:
    """The identity payload of the Celery task running now."""
    try:
        celery = importlib.import_module("celery")
    except ImportError as missing:
        raise JobIdentityError(
            'celery_job needs Celery: pip install "warden-client[celery]"'
        ) from missing
    task = celery.current_task
    request = getattr(task, "request", None)
    if request is None:
        raise JobIdentityError("celery_job runs only as a Celery task")
    # A worker turns a message's headers into attributes of the request; `apply` (eager
    # mode) keeps them in `request.headers`.
    payload = getattr(request, IDENTITY_FIELD, None)
    if payload is None:
        headers = getattr(request, "headers", None)
        payload = headers.get(IDENTITY_FIELD) if isinstance(headers, Mapping) else None
    if payload is None:
        raise JobIdentityError(
            f"the Celery task {getattr(task, 'name', '?')} came without a "
            f"`{IDENTITY_FIELD}` header: enqueue it with warden.jobs.enqueue_celery"
        )
    return payload


# -- arq ---------------------------------------------------------------------------------------


class ArqRedis(Protocol):
    """What `enqueue_arq` needs of arq's pool (`arq.connections.ArqRedis`): `enqueue_job`."""

    def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> Awaitable[Any]: ...


class IdentityPayload(dict[str, Any]):
    """A job identity payload whose `repr` names the user and not the token: arq logs the
    `repr` of each job's arguments when it starts the job."""

    def __repr__(self) -> str:
        return f"<warden identity of {self.get('tenant')}/{self.get('subject')}>"

    __str__ = __repr__


async def enqueue_arq(
    redis: ArqRedis, function: str, identity: JobIdentity, *args: Any, **kwargs: Any
) -> Any:
    """`await redis.enqueue_job(function, *args, **kwargs)` with the identity's payload in
    the keyword argument `warden_identity`; arq's own options (`_job_id`, `_defer_by`, …)
    pass through. Returns arq's `Job` (None when the job id is taken). The worker function
    must be decorated with `@arq_job`."""
    if IDENTITY_FIELD in kwargs:
        raise ValueError(f"`{IDENTITY_FIELD}` is the identity's argument: use another name")
    payload = IdentityPayload(identity.to_payload())
    return await redis.enqueue_job(function, *args, **{IDENTITY_FIELD: payload}, **kwargs)


def arq_job(
    function: Callable[..., Coroutine[Any, Any, T]],
) -> Callable[..., Coroutine[Any, Any, T]]:
    """Run an arq job function under the identity `enqueue_arq` sent with it:

        @arq_job
        async def reindex(ctx: dict[str, Any], doc_id: str) -> None:
            await authorize_job_async(ctx["warden"], "read", "Document", doc_id)

    The function gets its own arguments, not `warden_identity`. A job without a valid
    identity fails with `JobIdentityError` before the function runs.
    """

    @functools.wraps(function)
    async def run_as_job(ctx: Any, *args: Any, **kwargs: Any) -> T:
        if IDENTITY_FIELD not in kwargs:
            raise JobIdentityError(
                f"the arq job {function.__qualname__} came without `{IDENTITY_FIELD}`: "
                "enqueue it with warden.jobs.enqueue_arq"
            )
        identity = JobIdentity.from_payload(kwargs.pop(IDENTITY_FIELD))
        with acting_as(identity):
            return await function(ctx, *args, **kwargs)

    return run_as_job
