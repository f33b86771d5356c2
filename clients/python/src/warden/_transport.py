"""The only module that knows the HTTP library (`httpx2`).

Everything else in the SDK sees `RawResponse` and `WardenUnavailableError`, so swapping the
HTTP library touches this file alone. Connections are pooled per client; every failure to
get an answer (connect, timeout, protocol) becomes `WardenUnavailableError`.

Retries. A call is one or more attempts within one deadline (`TransportSettings`): a failed
attempt is tried again, after a short jittered backoff, at most `retries` times and never
past the deadline, and only when it failed on the connection:

- the connection could not be made (refused, reset during connect): the request never left,
  so any request may be sent again;
- the connection broke after the request may have been sent (reset, closed without an
  answer): sent again only when the caller says the request is `idempotent` (decisions,
  filters, searches: they change nothing but the decision log). Anything else (the token
  endpoint, any future admin write) is not sent twice;
- a timeout, a failed TLS handshake (a certificate problem does not fix itself) and any
  answer at all (a 503 too) are never retried here: the caller gets them at once.

Each attempt's timeouts are capped by what remains of the deadline. Retries are logged at
INFO and a call that got no answer at WARNING on the `warden` logger; neither line holds a
header, so no token or credential reaches the log.

TLS: `tls_context` builds the `ssl.SSLContext` of a client from `verify` (True: the system's
trust store, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set; a CA bundle file or directory; an
`ssl.SSLContext`; False) and an optional client certificate. Proxy variables and `.netrc`
are still ignored (`trust_env=False`): only the CA environment variables are read.

`HttpAuth`, `HttpRequest` and `HttpResponse` are re-exported for
`warden.service_account.ServiceAccountAuth`, which plugs into the caller's own `httpx2`
clients and so has to be an `httpx2.Auth`.

Tests: `tests/test_reliability.py` (real loopback servers that refuse, reset, close, hang
or answer 503) and `tests/test_tls.py` (HTTPS with a CA generated per run, mTLS); the
servers and the CA are in `tests/loopback.py`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import ssl
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx2

from warden.errors import WardenProtocolError, WardenUnavailableError

# Injectable transports, for tests (`httpx2.MockTransport` implements both).
SyncHttpTransport = httpx2.BaseTransport
AsyncHttpTransport = httpx2.AsyncBaseTransport
MockTransport = httpx2.MockTransport
MockRequest = httpx2.Request
MockResponse = httpx2.Response

# What an `auth=` of the caller's own clients is made of (see `ServiceAccountAuth`).
HttpAuth = httpx2.Auth
HttpRequest = httpx2.Request
HttpResponse = httpx2.Response

Verify = bool | str | os.PathLike[str] | ssl.SSLContext
"""Whom to trust: True (the system's store, or `SSL_CERT_FILE`), a CA bundle, a context, False."""
ClientCert = str | os.PathLike[str] | tuple[str | os.PathLike[str], str | os.PathLike[str]]
"""A client certificate: one PEM file with the certificate and its key, or (cert, key)."""

_USER_AGENT = "warden-python/0.1"
_log = logging.getLogger("warden")

RETRY_BACKOFF_SECONDS = 0.05
"""The first retry waits between half of this and this; each next one twice as long."""
RETRY_BACKOFF_MAX_SECONDS = 1.0
_MIN_ATTEMPT_SECONDS = 0.01  # a retry needs at least this much of the deadline left
_jitter = random.Random()  # noqa: S311 - backoff jitter, not a secret


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """Connection settings shared by the sync and async transports.

    `deadline_seconds` bounds a whole call, retries and backoff included; `retries` is how
    many more attempts a call may make after a connection failure (see the module doc).
    `ssl_context` is None for a plain-HTTP `base_url`.
    """

    base_url: str
    timeout_seconds: float
    connect_timeout_seconds: float
    max_connections: int
    max_keepalive_connections: int
    retries: int = 0
    deadline_seconds: float | None = None
    ssl_context: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class RawResponse:
    """An HTTP answer reduced to what the client parses, and the request it answers."""

    status: int
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    path: str = ""

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON is a protocol error."""
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise WardenProtocolError(
                f"Warden answered HTTP {self.status} with a body that is not JSON",
                status=self.status,
            ) from error


def tls_context(verify: Verify, cert: ClientCert | None) -> ssl.SSLContext:
    """The TLS context of a client: whom it trusts (`verify`) and what it presents (`cert`).

    `verify=True` is the system's trust store, or the bundle named by `SSL_CERT_FILE` (else
    the directory `SSL_CERT_DIR`) when set, read now. A path is a CA bundle (a file) or a
    hashed CA directory, trusted instead of the system's store. An `ssl.SSLContext` is used
    as it is (load a client certificate into it yourself). False turns verification off.
    Missing or unreadable files raise here (`OSError`, `ssl.SSLError`), not on first use.
    """
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise ValueError(
                "cert= cannot be combined with verify=<ssl.SSLContext>: load the client "
                "certificate into the context (load_cert_chain) instead"
            )
        return verify
    if isinstance(verify, bool):
        # `trust_env=True` here only reads SSL_CERT_FILE / SSL_CERT_DIR; the client itself
        # keeps `trust_env=False`, so proxy variables and .netrc stay ignored.
        context = httpx2.create_ssl_context(verify=verify, trust_env=True)
    elif isinstance(verify, str | os.PathLike):
        path = os.fspath(verify)
        context = (
            ssl.create_default_context(capath=path)
            if os.path.isdir(path)
            else ssl.create_default_context(cafile=path)
        )
    else:
        raise TypeError(f"verify must be a bool, a path or an ssl.SSLContext, not {verify!r}")
    if cert is not None:
        if isinstance(cert, str | os.PathLike):
            context.load_cert_chain(os.fspath(cert))
        else:
            certfile, keyfile = cert
            context.load_cert_chain(os.fspath(certfile), os.fspath(keyfile))
    return context


def _timeout(settings: TransportSettings) -> httpx2.Timeout:
    return httpx2.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)


def _limits(settings: TransportSettings) -> httpx2.Limits:
    return httpx2.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
    )


def _client_options(settings: TransportSettings) -> dict[str, Any]:
    """What the sync and the async `httpx2` clients are built with."""
    options: dict[str, Any] = {
        "base_url": settings.base_url,
        "timeout": _timeout(settings),
        "limits": _limits(settings),
        "headers": {"user-agent": _USER_AGENT, "accept": "application/json"},
        "trust_env": False,
        "follow_redirects": False,
    }
    if settings.ssl_context is not None:
        options["verify"] = settings.ssl_context
    return options


def _raw(response: httpx2.Response, method: str, path: str) -> RawResponse:
    return RawResponse(
        status=response.status_code,
        headers={key.lower(): value for key, value in response.headers.items()},
        body=response.content,
        method=method,
        path=path,
    )


_Stage = Literal["unsent", "maybe_sent"]


def _tls_failure(error: BaseException) -> ssl.SSLError | None:
    """The TLS error behind `error`, if a handshake or a TLS alert caused it (an EOF is a
    connection closing, not a TLS failure)."""
    cause: BaseException | None = error
    seen = 0
    while cause is not None and seen < 16:
        if isinstance(cause, ssl.SSLError) and not isinstance(
            cause, ssl.SSLEOFError | ssl.SSLZeroReturnError
        ):
            return cause
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return None


def _failure_stage(error: httpx2.HTTPError) -> _Stage | None:
    """How far a failed attempt got: `unsent` (no connection, so no request: safe to send
    again whatever it does), `maybe_sent` (the connection broke with no answer: Warden may
    have seen the request), or None when sending again cannot help (timeout, TLS, other)."""
    if _tls_failure(error) is not None:
        return None
    if isinstance(error, httpx2.ConnectError):
        return "unsent"
    if isinstance(error, httpx2.ReadError | httpx2.WriteError | httpx2.RemoteProtocolError):
        return "maybe_sent"
    return None


@dataclass(frozen=True, slots=True)
class _Call:
    """One call's retry budget (no network I/O): its deadline on the monotonic clock, its
    attempts, and the log lines about them."""

    method: str
    path: str
    idempotent: bool
    retries: int
    timeout_seconds: float
    connect_timeout_seconds: float
    started: float
    deadline: float

    @classmethod
    def start(cls, settings: TransportSettings, method: str, path: str, idempotent: bool) -> _Call:
        started = time.monotonic()
        budget = settings.deadline_seconds or settings.timeout_seconds
        return cls(
            method,
            path,
            idempotent,
            settings.retries,
            settings.timeout_seconds,
            settings.connect_timeout_seconds,
            started,
            started + budget,
        )

    def attempt_timeout(self, now: float) -> httpx2.Timeout:
        """This attempt's timeouts, capped by what remains of the deadline (`retry_delay`
        leaves some; the floor only absorbs a sleep that overran by a hair)."""
        remaining = max(self.deadline - now, _MIN_ATTEMPT_SECONDS)
        return httpx2.Timeout(
            min(self.timeout_seconds, remaining),
            connect=min(self.connect_timeout_seconds, remaining),
        )

    def retry_delay(self, error: httpx2.HTTPError, attempt: int, now: float) -> float | None:
        """How long to wait before attempt `attempt + 1`, or None to give up now."""
        stage = _failure_stage(error)
        if stage is None or attempt > self.retries:
            return None
        if stage == "maybe_sent" and not self.idempotent:
            return None
        backoff = min(RETRY_BACKOFF_SECONDS * 2.0 ** (attempt - 1), RETRY_BACKOFF_MAX_SECONDS)
        delay = backoff * _jitter.uniform(0.5, 1.0)
        if now + delay + _MIN_ATTEMPT_SECONDS >= self.deadline:
            return None
        _log.info(
            "retrying %s %s in %.3f s (attempt %d of at most %d): %s: %s",
            self.method,
            self.path,
            delay,
            attempt + 1,
            self.retries + 1,
            type(error).__name__,
            error,
        )
        return delay

    def unavailable(self, error: httpx2.HTTPError, attempts: int) -> WardenUnavailableError:
        """The error of a call that got no answer, logged once."""
        elapsed = time.monotonic() - self.started
        tls = _tls_failure(error)
        tried = f"{attempts} attempt{'s' if attempts != 1 else ''} in {elapsed:.2f} s"
        why = f"{type(error).__name__}: {error}"
        if tls is not None:
            why = f"TLS: {tls}"
        _log.warning("Warden did not answer %s %s (%s): %s", self.method, self.path, tried, why)
        return WardenUnavailableError(
            f"Warden did not answer {self.path} ({tried}): {why}",
            retryable=tls is None,
        )


class SyncTransport:
    """A pooled, blocking HTTP connection to Warden."""

    def __init__(
        self, settings: TransportSettings, transport: SyncHttpTransport | None = None
    ) -> None:
        self._settings = settings
        self._client = httpx2.Client(**_client_options(settings), transport=transport)

    def _send(self, method: str, path: str, *, idempotent: bool, **request: Any) -> RawResponse:
        call = _Call.start(self._settings, method, path, idempotent)
        attempt = 1
        while True:
            timeout = call.attempt_timeout(time.monotonic())
            try:
                response = self._client.request(method, path, timeout=timeout, **request)
            except httpx2.HTTPError as error:
                delay = call.retry_delay(error, attempt, time.monotonic())
                if delay is None:
                    raise call.unavailable(error, attempt) from error
                time.sleep(delay)
                attempt += 1
            else:
                return _raw(response, method, path)

    def post_json(
        self, path: str, body: Any, headers: dict[str, str], *, idempotent: bool
    ) -> RawResponse:
        return self._send("POST", path, idempotent=idempotent, json=body, headers=headers)

    def post_empty(self, path: str, headers: dict[str, str], *, idempotent: bool) -> RawResponse:
        return self._send("POST", path, idempotent=idempotent, headers=headers)

    def post_form(
        self, path: str, form: dict[str, str], headers: dict[str, str], *, idempotent: bool
    ) -> RawResponse:
        """POST `form` as `application/x-www-form-urlencoded` (the OAuth token endpoint)."""
        return self._send("POST", path, idempotent=idempotent, data=form, headers=headers)

    def get(self, path: str) -> RawResponse:
        return self._send("GET", path, idempotent=True)

    def close(self) -> None:
        self._client.close()


class AsyncTransport:
    """A pooled, non-blocking HTTP connection to Warden."""

    def __init__(
        self, settings: TransportSettings, transport: AsyncHttpTransport | None = None
    ) -> None:
        self._settings = settings
        self._client = httpx2.AsyncClient(**_client_options(settings), transport=transport)

    async def _send(
        self, method: str, path: str, *, idempotent: bool, **request: Any
    ) -> RawResponse:
        call = _Call.start(self._settings, method, path, idempotent)
        attempt = 1
        while True:
            timeout = call.attempt_timeout(time.monotonic())
            try:
                response = await self._client.request(method, path, timeout=timeout, **request)
            except httpx2.HTTPError as error:
                delay = call.retry_delay(error, attempt, time.monotonic())
                if delay is None:
                    raise call.unavailable(error, attempt) from error
                await asyncio.sleep(delay)
                attempt += 1
            else:
                return _raw(response, method, path)

    async def post_json(
        self, path: str, body: Any, headers: dict[str, str], *, idempotent: bool
    ) -> RawResponse:
        return await self._send("POST", path, idempotent=idempotent, json=body, headers=headers)

    async def post_empty(
        self, path: str, headers: dict[str, str], *, idempotent: bool
    ) -> RawResponse:
        return await self._send("POST", path, idempotent=idempotent, headers=headers)

    async def post_form(
        self, path: str, form: dict[str, str], headers: dict[str, str], *, idempotent: bool
    ) -> RawResponse:
        """POST `form` as `application/x-www-form-urlencoded` (the OAuth token endpoint)."""
        return await self._send("POST", path, idempotent=idempotent, data=form, headers=headers)

    async def get(self, path: str) -> RawResponse:
        return await self._send("GET", path, idempotent=True)

    async def aclose(self) -> None:
        await self._client.aclose()
