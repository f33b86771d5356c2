"""The only module that knows the HTTP library (`httpx2`).

Everything else in the SDK sees `RawResponse` and `WardenUnavailableError`, so swapping the
HTTP library touches this file alone. Connections are pooled per client; every failure to
get an answer (connect, timeout, protocol) becomes `WardenUnavailableError`.

`HttpAuth`, `HttpRequest` and `HttpResponse` are re-exported for
`warden.service_account.ServiceAccountAuth`, which plugs into the caller's own `httpx2`
clients and so has to be an `httpx2.Auth`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx2

from warden.errors import WardenUnavailableError

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

_USER_AGENT = "warden-python/0.1"


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """Connection settings shared by the sync and async transports."""

    base_url: str
    timeout_seconds: float
    connect_timeout_seconds: float
    max_connections: int
    max_keepalive_connections: int


@dataclass(frozen=True, slots=True)
class RawResponse:
    """An HTTP answer reduced to what the client parses."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON is a protocol error."""
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise WardenUnavailableError(
                f"Warden answered HTTP {self.status} with a body that is not JSON"
            ) from error


def _timeout(settings: TransportSettings) -> httpx2.Timeout:
    return httpx2.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)


def _limits(settings: TransportSettings) -> httpx2.Limits:
    return httpx2.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
    )


def _raw(response: httpx2.Response) -> RawResponse:
    return RawResponse(
        status=response.status_code,
        headers={key.lower(): value for key, value in response.headers.items()},
        body=response.content,
    )


def _unavailable(error: Exception, path: str) -> WardenUnavailableError:
    return WardenUnavailableError(f"Warden did not answer {path}: {type(error).__name__}: {error}")


class SyncTransport:
    """A pooled, blocking HTTP connection to Warden."""

    def __init__(
        self, settings: TransportSettings, transport: SyncHttpTransport | None = None
    ) -> None:
        self._client = httpx2.Client(
            base_url=settings.base_url,
            timeout=_timeout(settings),
            limits=_limits(settings),
            headers={"user-agent": _USER_AGENT, "accept": "application/json"},
            transport=transport,
            trust_env=False,
            follow_redirects=False,
        )

    def post_json(self, path: str, body: Any, headers: dict[str, str]) -> RawResponse:
        try:
            return _raw(self._client.post(path, json=body, headers=headers))
        except httpx2.HTTPError as error:
            raise _unavailable(error, path) from error

    def post_empty(self, path: str, headers: dict[str, str]) -> RawResponse:
        try:
            return _raw(self._client.post(path, headers=headers))
        except httpx2.HTTPError as error:
            raise _unavailable(error, path) from error

    def post_form(self, path: str, form: dict[str, str], headers: dict[str, str]) -> RawResponse:
        """POST `form` as `application/x-www-form-urlencoded` (the OAuth token endpoint)."""
        try:
            return _raw(self._client.post(path, data=form, headers=headers))
        except httpx2.HTTPError as error:
            raise _unavailable(error, path) from error

    def get(self, path: str) -> RawResponse:
        try:
            return _raw(self._client.get(path))
        except httpx2.HTTPError as error:
            raise _unavailable(error, path) from error

    def close(self) -> None:
        self._client.close()


class AsyncTransport:
    """A pooled, non-blocking HTTP connection to Warden."""

    def __init__(
        self, settings: TransportSettings, transport: AsyncHttpTransport | None = None
    ) -> None:
        self._client = httpx2.AsyncClient(
            base_url=settings.base_url,
            timeout=_timeout(settings),
            limits=_limits(settings),
            headers={"user-agent": _USER_AGENT, "accept": "application/json"},
            transport=transport,
            trust_env=False,
            follow_redirects=False,
        )

    async def post_json(self, path: str, body: Any, headers: dict[str, str]) -> RawResponse:
        try:
            return _raw(await self._client.post(path, json=body, headers=headers))
        except httpx2.HTTPError as error:
            raise _unavailable(error, path) from error

    async def post_empty(self, path: str, headers: dict[str, str]) -> RawResponse:
        try:
            return _raw(await self._client.post(path, headers=headers))
        except httpx2.HTTPError as error:
            raise _unavailable(error, path) from error

    async def post_form(
        self, path: str, form: dict[str, str], headers: dict[str, str]
    ) -> RawResponse:
        """POST `form` as `application/x-www-form-urlencoded` (the OAuth token endpoint)."""
        try:
            return _raw(await self._client.post(path, data=form, headers=headers))
        except httpx2.HTTPError as error:
            raise _unavailable(error, path) from error

    async def get(self, path: str) -> RawResponse:
        try:
            return _raw(await self._client.get(path))
        except httpx2.HTTPError as error:
            raise _unavailable(error, path) from error

    async def aclose(self) -> None:
        await self._client.aclose()
