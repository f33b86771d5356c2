"""Service accounts: access tokens from Warden's own token endpoint, for service-to-service calls.

A workload acting as a service account (`warden sa create`) exchanges its client id and
secret for a short-lived access token at Warden's `POST /oauth2/token` (the OAuth 2.0
client-credentials grant, RFC 6749 §4.4) and sends that token to the services it calls:

    tokens = ServiceAccountTokens(
        "http://warden:8180", client_id="sa_…", client_secret=secret, scope="documents:read"
    )
    with httpx2.Client(auth=ServiceAccountAuth(tokens)) as http:
        http.get("https://docs.internal/tenants/acme/documents/roadmap")

`ServiceAccountTokens` (blocking, thread-safe) and `AsyncServiceAccountTokens` (asyncio,
task-safe) fetch a token on first use, reuse it, and fetch the next one before it expires:
once `min(lifetime - refresh_margin, 80% of the lifetime)` has passed, but not before half
the lifetime (so a token that lives shorter than the margin is not fetched anew for every
call). Callers that find no fresh token at the same time share one fetch. When Warden cannot
be reached for a refresh while the current token has not expired yet, the current token is
used meanwhile and the fetch is tried again a second later; past its expiry, the failure is
raised.

`ServiceAccountAuth` is an `httpx2.Auth` for the caller's own clients, sync or async: it sets
`Authorization: Bearer <token>` and, when the target answers 401 (e.g. the token was
revoked), fetches a new token once and sends the request once more.

Errors: Warden refusing to issue a token (an RFC 6749 §5.2 answer such as `invalid_client` or
`invalid_scope`) is `TokenRequestError`; no answer (unreachable, timeout, 5xx, garbled) is
`WardenUnavailableError`. The client secret and the tokens are never logged, and `repr`
shows neither.

Retries: a token request is not idempotent (each one issues a token, and Warden counts them
against the token endpoint's rate limit), so it is sent again only when the connection
could not be made at all (refused, reset while connecting: Warden never saw it), up to
`retries` times within `deadline`. A connection that breaks after the request may have been
sent is not retried; the unexpired cached token, if any, is used meanwhile (see above).
`verify` and `cert` are the TLS options of `WardenClient`. Tests:
`tests/test_service_account.py`, `tests/test_reliability.py`.

`warden.jobs` asks the same endpoint for another grant (RFC 8693 token exchange) as the same
kind of client: it reuses `_ClientCredentials` (how the client authenticates, never shown by
`repr`), `_TokenEndpoint` / `_AsyncTokenEndpoint` (the request, its retries and the error
answers) and `_bearer_token` (the checks of a token answer), not copies of them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import threading
import time
from collections.abc import AsyncGenerator, Generator, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal, Self, get_args
from urllib.parse import quote_plus

from warden import _transport
from warden.client import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_URL,
    _not_an_answer,
    _settings,
)
from warden.errors import TokenRequestError, WardenProtocolError, WardenUnavailableError

TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a secret
DEFAULT_REFRESH_MARGIN_SECONDS = 60.0
REFRESH_AFTER_AT_MOST = 0.8
"""A token is refreshed once this share of its lifetime has passed, whatever the margin."""
REFRESH_AFTER_AT_LEAST = 0.5
"""…and not before this share, even when its lifetime is shorter than the margin."""
RETRY_AFTER_FAILED_REFRESH_SECONDS = 1.0

AuthMethod = Literal["client_secret_basic", "client_secret_post"]
"""How the client authenticates to the token endpoint (RFC 6749 §2.3.1)."""

_MAX_CONNECTIONS = 4
_log = logging.getLogger("warden")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_clock = time.monotonic  # module-level so that the tests can move time


class _Secret:
    """A string that neither `repr` nor `str` shows."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class _Token:
    """A token and, on the monotonic clock, when to refresh it and when it expires."""

    value: str = field(repr=False)
    refresh_at: float
    expires_at: float


def _scope_string(scope: str | Sequence[str] | None) -> str | None:
    """The space-separated `scope` parameter, or None to ask for all the account's scopes."""
    if scope is None:
        return None
    requested = scope.split() if isinstance(scope, str) else list(scope)
    for item in requested:
        if not isinstance(item, str) or not _SCOPE_TOKEN.fullmatch(item):
            raise ValueError(f"not an OAuth scope: {item!r}")
    return " ".join(dict.fromkeys(requested)) or None


def _oauth_error(raw: _transport.RawResponse) -> TokenRequestError | None:
    """The RFC 6749 §5.2 error in a 4xx answer, if its body is one."""
    if not 400 <= raw.status < 500:
        return None
    try:
        body = raw.json()
    except WardenUnavailableError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None
    description = body.get("error_description")
    return TokenRequestError(
        body["error"], description if isinstance(description, str) else None, raw.status
    )


class _ClientCredentials:
    """How a service account authenticates to the token endpoint (RFC 6749 §2.3.1): its
    client id and secret, in an HTTP Basic header or in the form. Shared by every grant this
    SDK asks for (client credentials here, token exchange in `warden.jobs`)."""

    __slots__ = ("_secret", "auth_method", "client_id")

    def __init__(self, client_id: str, client_secret: str, auth_method: AuthMethod) -> None:
        if not isinstance(client_id, str) or not client_id:
            raise ValueError("client_id must be a non-empty string")
        if not isinstance(client_secret, str) or not client_secret:
            raise ValueError("client_secret must be a non-empty string")
        if auth_method not in get_args(AuthMethod):
            raise ValueError(
                f"auth_method must be one of {', '.join(get_args(AuthMethod))}, not {auth_method!r}"
            )
        self.client_id = client_id
        self._secret = _Secret(client_secret)
        self.auth_method = auth_method

    def form(self) -> dict[str, str]:
        """The form fields of `client_secret_post` (none for Basic)."""
        if self.auth_method != "client_secret_post":
            return {}
        return {"client_id": self.client_id, "client_secret": self._secret.reveal()}

    def headers(self) -> dict[str, str]:
        """The `Authorization: Basic` header of `client_secret_basic` (none for the form)."""
        if self.auth_method != "client_secret_basic":
            return {}
        # RFC 6749 §2.3.1: both are form-urlencoded before they are joined and base64-encoded.
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self._secret.reveal())}"
        return {"authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}

    def __repr__(self) -> str:
        return (
            f"client_id={self.client_id!r}, client_secret={self._secret!r}, "
            f"auth_method={self.auth_method!r}"
        )


def _endpoint_settings(
    base_url: str,
    timeout: float,
    connect_timeout: float,
    retries: int,
    deadline: float | None,
    verify: _transport.Verify,
    cert: _transport.ClientCert | None,
) -> _transport.TransportSettings:
    return _settings(
        base_url,
        timeout,
        connect_timeout,
        _MAX_CONNECTIONS,
        retries=retries,
        deadline=deadline,
        verify=verify,
        cert=cert,
    )


def _token_answer(raw: _transport.RawResponse, client_id: str) -> dict[str, Any]:
    """The JSON object of a 200 answer of the token endpoint; `TokenRequestError` for an
    RFC 6749 §5.2 error (logged: the code, never a secret or a token), and the SDK's usual
    errors for anything else."""
    if raw.status != 200:
        refusal = _oauth_error(raw)
        if refusal is not None:
            # The OAuth error code and Warden's public description: no secret, no token.
            _log.warning(
                "Warden refused a token for %s (HTTP %d): %s",
                client_id,
                refusal.status,
                refusal.error,
            )
            raise refusal
        _not_an_answer(raw)
    body = raw.json()
    if not isinstance(body, dict):
        raise WardenProtocolError("the token endpoint's answer is not a JSON object")
    return body


def _bearer_token(body: dict[str, Any]) -> tuple[str, float]:
    """The `access_token` of a token answer and its lifetime (`expires_in`, seconds), both
    checked: a bearer token that fits in a header, a positive lifetime."""
    value = body.get("access_token")
    if not isinstance(value, str) or not value or any(c in value for c in " \r\n"):
        raise WardenProtocolError("the token endpoint's answer has no usable access_token")
    token_type = body.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise WardenProtocolError(f"the token endpoint issued a {token_type!r} token")
    lifetime = body.get("expires_in")
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        raise WardenProtocolError("the token endpoint's answer has no positive expires_in")
    return value, float(lifetime)


class _TokenEndpoint:
    """Warden's `POST /oauth2/token` for one client, blocking: its credentials and a small
    connection pool. A grant's form goes in, the checked JSON answer comes out."""

    def __init__(
        self,
        credentials: _ClientCredentials,
        settings: _transport.TransportSettings,
        transport: _transport.SyncHttpTransport | None,
    ) -> None:
        self.credentials = credentials
        self._http = _transport.SyncTransport(settings, transport)

    def request(self, grant: dict[str, str]) -> dict[str, Any]:
        """POST `grant` with the client's authentication (never sent twice once it may have
        reached Warden: each request issues a token)."""
        form = {**grant, **self.credentials.form()}
        raw = self._http.post_form(TOKEN_PATH, form, self.credentials.headers(), idempotent=False)
        return _token_answer(raw, self.credentials.client_id)

    def close(self) -> None:
        self._http.close()


class _AsyncTokenEndpoint:
    """`_TokenEndpoint` for asyncio."""

    def __init__(
        self,
        credentials: _ClientCredentials,
        settings: _transport.TransportSettings,
        transport: _transport.AsyncHttpTransport | None,
    ) -> None:
        self.credentials = credentials
        self._http = _transport.AsyncTransport(settings, transport)

    async def request(self, grant: dict[str, str]) -> dict[str, Any]:
        """POST `grant` with the client's authentication; see `_TokenEndpoint.request`."""
        form = {**grant, **self.credentials.form()}
        raw = await self._http.post_form(
            TOKEN_PATH, form, self.credentials.headers(), idempotent=False
        )
        return _token_answer(raw, self.credentials.client_id)

    async def aclose(self) -> None:
        await self._http.aclose()


class _TokenSource:
    """What the blocking and the asyncio token sources share: the client-credentials grant,
    the refresh policy and the cache (no I/O here)."""

    def __init__(
        self,
        base_url: str,
        credentials: _ClientCredentials,
        scope: str | Sequence[str] | None,
        refresh_margin: float,
    ) -> None:
        if refresh_margin < 0:
            raise ValueError("refresh_margin must not be negative")
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._scope = _scope_string(scope)
        self._refresh_margin = float(refresh_margin)
        self._cached: _Token | None = None
        self._cache_lock = threading.Lock()  # held for no I/O: guards invalidate's test-and-clear

    @property
    def client_id(self) -> str:
        return self._credentials.client_id

    @property
    def scope(self) -> str | None:
        """The space-separated scopes asked for; None asks for all the account's scopes."""
        return self._scope

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token, so that the next `token()` fetches a new one.

        With `token`, only if the cache still holds that token: callers that saw it refused
        at the same time then cause one fetch between them, not one each.
        """
        with self._cache_lock:
            if token is None or (self._cached is not None and self._cached.value == token):
                self._cached = None

    def _fresh(self) -> str | None:
        """The cached token while it needs no refresh (no lock, no I/O)."""
        cached = self._cached
        if cached is not None and _clock() < cached.refresh_at:
            return cached.value
        return None

    def _grant(self) -> dict[str, str]:
        grant = {"grant_type": "client_credentials"}
        if self._scope is not None:
            grant["scope"] = self._scope
        return grant

    def _answer(self, body: dict[str, Any], started: float) -> _Token:
        """The token of a 200 answer, with when to refresh it and when it expires."""
        value, lifetime = _bearer_token(body)
        refresh_after = max(
            min(lifetime - self._refresh_margin, REFRESH_AFTER_AT_MOST * lifetime),
            REFRESH_AFTER_AT_LEAST * lifetime,
        )
        # `started` is taken before the request, so both instants err on the early side.
        return _Token(value, refresh_at=started + refresh_after, expires_at=started + lifetime)

    def _store(self, token: _Token) -> str:
        with self._cache_lock:
            self._cached = token
        return token.value

    def _keep_after_failure(self, previous: _Token | None) -> _Token | None:
        """After Warden gave no answer: the previous token while it is unexpired, refreshed
        again a second later (never past its expiry); None when there is none to keep."""
        now = _clock()
        if previous is None or previous is not self._cached or now >= previous.expires_at:
            return None
        retry_at = min(now + RETRY_AFTER_FAILED_REFRESH_SECONDS, previous.expires_at)
        return replace(previous, refresh_at=retry_at)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, {self._credentials!r}, "
            f"scope={self._scope!r})"
        )


def _env_settings() -> dict[str, Any]:
    settings: dict[str, Any] = {"base_url": os.environ.get("WARDEN_URL", DEFAULT_URL)}
    for name, key in (("WARDEN_CLIENT_ID", "client_id"), ("WARDEN_CLIENT_SECRET", "client_secret")):
        if not os.environ.get(name):
            raise ValueError(f"{name} is not set")
        settings[key] = os.environ[name]
    if os.environ.get("WARDEN_SCOPE"):
        settings["scope"] = os.environ["WARDEN_SCOPE"]
    if "WARDEN_TIMEOUT" in os.environ:
        settings["timeout"] = float(os.environ["WARDEN_TIMEOUT"])
    return settings


class ServiceAccountTokens(_TokenSource):
    """A service account's access tokens from Warden, cached and refreshed (thread-safe).

    `base_url` is Warden's URL; tokens come from its `POST /oauth2/token`. `scope` (a
    space-separated string or a list) must be a subset of the account's scopes; None asks
    for all of them. `auth_method` sends the credentials with HTTP Basic (the default) or in
    the form body (`client_secret_post`). `refresh_margin` is how long before its expiry a
    token is replaced (see the module's documentation for the exact rule). `timeout`,
    `deadline`, `retries` (only for connections that could not be made), `verify` and `cert`
    are as for `WardenClient`.

    Holds a connection pool: `close()` it, or use it in a `with` block.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        client_id: str,
        client_secret: str,
        scope: str | Sequence[str] | None = None,
        auth_method: AuthMethod = "client_secret_basic",
        refresh_margin: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        transport: _transport.SyncHttpTransport | None = None,
        retries: int = DEFAULT_RETRIES,
        deadline: float | None = None,
        verify: _transport.Verify = True,
        cert: _transport.ClientCert | None = None,
    ) -> None:
        credentials = _ClientCredentials(client_id, client_secret, auth_method)
        super().__init__(base_url, credentials, scope, refresh_margin)
        settings = _endpoint_settings(
            base_url, timeout, connect_timeout, retries, deadline, verify, cert
        )
        self._endpoint = _TokenEndpoint(credentials, settings, transport)
        self._fetch_lock = threading.Lock()

    @classmethod
    def from_env(cls) -> ServiceAccountTokens:
        """Configured by `WARDEN_URL`, `WARDEN_CLIENT_ID`, `WARDEN_CLIENT_SECRET`, and the
        optional `WARDEN_SCOPE` and `WARDEN_TIMEOUT`."""
        return cls(**_env_settings())

    def token(self) -> str:
        """A valid access token: the cached one, or a new one from Warden.

        Raises `TokenRequestError` when Warden refuses to issue one and
        `WardenUnavailableError` when it gives no answer.
        """
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        with self._fetch_lock:
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            previous = self._cached
            started = _clock()
            try:
                body = self._endpoint.request(self._grant())
                return self._store(self._answer(body, started))
            except WardenUnavailableError:
                kept = self._keep_after_failure(previous)
                if kept is None:
                    raise
                return self._store(kept)

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


class AsyncServiceAccountTokens(_TokenSource):
    """`ServiceAccountTokens` for asyncio: the same arguments, `await tokens.token()`.

    Task-safe: concurrent tasks that find no fresh token share one fetch. Holds a connection
    pool: `aclose()` it, or use it in an `async with` block.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        client_id: str,
        client_secret: str,
        scope: str | Sequence[str] | None = None,
        auth_method: AuthMethod = "client_secret_basic",
        refresh_margin: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        transport: _transport.AsyncHttpTransport | None = None,
        retries: int = DEFAULT_RETRIES,
        deadline: float | None = None,
        verify: _transport.Verify = True,
        cert: _transport.ClientCert | None = None,
    ) -> None:
        credentials = _ClientCredentials(client_id, client_secret, auth_method)
        super().__init__(base_url, credentials, scope, refresh_margin)
        settings = _endpoint_settings(
            base_url, timeout, connect_timeout, retries, deadline, verify, cert
        )
        self._endpoint = _AsyncTokenEndpoint(credentials, settings, transport)
        self._fetch_lock = asyncio.Lock()

    @classmethod
    def from_env(cls) -> AsyncServiceAccountTokens:
        """Configured like `ServiceAccountTokens.from_env`."""
        return cls(**_env_settings())

    async def token(self) -> str:
        """A valid access token: the cached one, or a new one from Warden.

        Raises `TokenRequestError` when Warden refuses to issue one and
        `WardenUnavailableError` when it gives no answer.
        """
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        async with self._fetch_lock:
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            previous = self._cached
            started = _clock()
            try:
                body = await self._endpoint.request(self._grant())
                return self._store(self._answer(body, started))
            except WardenUnavailableError:
                kept = self._keep_after_failure(previous)
                if kept is None:
                    raise
                return self._store(kept)

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


def _with_bearer(request: _transport.HttpRequest, token: str) -> _transport.HttpRequest:
    request.headers["Authorization"] = f"Bearer {token}"
    return request


class ServiceAccountAuth(_transport.HttpAuth):
    """`auth=` for `httpx2.Client` and `httpx2.AsyncClient`: a service account's bearer token.

    Each request gets `Authorization: Bearer <token>` from `tokens`. When the target answers
    401, the token is dropped from the cache, a new one is fetched, and the request is sent
    once more (its body is buffered for that); the second answer is returned, whatever it is.
    A token that cannot be had raises from the client's call (`TokenRequestError`, e.g.
    `invalid_client` once the account is disabled, or `WardenUnavailableError`).

    An async client may use either token source (a blocking one fetches in a worker thread);
    a sync client needs `ServiceAccountTokens`.
    """

    requires_request_body = True

    def __init__(self, tokens: ServiceAccountTokens | AsyncServiceAccountTokens) -> None:
        self._tokens = tokens

    def sync_auth_flow(
        self, request: _transport.HttpRequest
    ) -> Generator[_transport.HttpRequest, _transport.HttpResponse, None]:
        tokens = self._tokens
        if not isinstance(tokens, ServiceAccountTokens):
            raise TypeError(
                "a sync client's ServiceAccountAuth needs ServiceAccountTokens, "
                "not AsyncServiceAccountTokens"
            )
        request.read()
        token = tokens.token()
        response = yield _with_bearer(request, token)
        if response.status_code == 401:
            tokens.invalidate(token)
            yield _with_bearer(request, tokens.token())

    async def async_auth_flow(
        self, request: _transport.HttpRequest
    ) -> AsyncGenerator[_transport.HttpRequest, _transport.HttpResponse]:
        await request.aread()
        token = await self._token()
        response = yield _with_bearer(request, token)
        if response.status_code == 401:
            self._tokens.invalidate(token)
            yield _with_bearer(request, await self._token())

    async def _token(self) -> str:
        tokens = self._tokens
        if isinstance(tokens, AsyncServiceAccountTokens):
            return await tokens.token()
        # A blocking source: a fresh token costs no I/O; a fetch must not block the loop.
        fresh = tokens._fresh()
        return fresh if fresh is not None else await asyncio.to_thread(tokens.token)

    def __repr__(self) -> str:
        return f"ServiceAccountAuth({self._tokens!r})"
