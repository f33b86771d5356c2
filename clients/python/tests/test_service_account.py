"""Service-account tokens against a real HTTP server on 127.0.0.1 that plays Warden's token
endpoint (and a service protected by its tokens), counting every request it gets.

Time is moved by replacing the module's clock, so no test waits for a token to age; the one
test that checks the real clock sleeps under a second.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import httpx2
import pytest

from warden import (
    AsyncServiceAccountTokens,
    ServiceAccountAuth,
    ServiceAccountTokens,
    TokenRequestError,
    WardenError,
    WardenProtocolError,
    WardenRequestError,
    WardenUnavailableError,
)
from warden import service_account as service_account_module

CLIENT_ID = "sa_0f3c9b2e"
SECRET = "wsa_p:ss w+rd%/é&="  # noqa: S105 - a test secret with every character that needs encoding


@dataclass
class Seen:
    """One request the fake server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode(), keep_blank_values=True, strict_parsing=False)
        return {key: values[0] for key, values in parsed.items()}


@dataclass
class FakeWarden:
    """`POST /oauth2/token` issues `tok-1`, `tok-2`, … (or a scripted answer); `/resource`
    accepts the tokens issued and not revoked, and answers 401 to anything else."""

    url: str = ""
    expires_in: float = 600
    token_delay: float = 0.0
    scripted: list[tuple[int, Any]] = field(default_factory=list)
    token_requests: list[Seen] = field(default_factory=list)
    resource_requests: list[Seen] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    issued: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def revoke_all(self) -> None:
        with self.lock:
            self.accepted.clear()

    def answer_next(self, status: int, body: Any) -> None:
        """The next token request gets this answer instead of a token."""
        self.scripted.append((status, body))

    def token_answer(self, seen: Seen) -> tuple[int, Any, dict[str, str]]:
        if self.token_delay:
            time.sleep(self.token_delay)
        with self.lock:
            self.token_requests.append(seen)
            if self.scripted:
                status, body = self.scripted.pop(0)
                return status, body, {}
            self.issued += 1
            token = f"tok-{self.issued}"
            self.accepted.add(token)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        if "scope" in seen.form:
            body["scope"] = seen.form["scope"]
        return 200, body, {"Cache-Control": "no-store"}

    def resource_answer(self, seen: Seen) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.resource_requests.append(seen)
            scheme, _, token = seen.headers.get("authorization", "").partition(" ")
            if scheme == "Bearer" and token in self.accepted:
                return 200, {"bearer": token, "body": seen.body.decode()}, {}
        challenge = 'Bearer error="invalid_token", error_description="token_revoked"'
        return 401, {"reason": "token_revoked"}, {"WWW-Authenticate": challenge}


def serve(fake: FakeWarden) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def read_body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("content-length") or 0))
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return body

        def handle_any(self) -> None:
            seen = Seen(
                self.command,
                self.path,
                {key.lower(): value for key, value in self.headers.items()},
                self.read_body(),
            )
            if self.path == "/oauth2/token" and self.command == "POST":
                status, body, headers = fake.token_answer(seen)
            elif self.path == "/resource":
                status, body, headers = fake.resource_answer(seen)
            else:
                status, body, headers = 404, {"title": "Not Found", "detail": "no route"}, {}
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = handle_any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


@pytest.fixture
def fake() -> Iterator[FakeWarden]:
    fake = FakeWarden()
    server = serve(fake)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Clock:
    """Stands in for the module's monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(service_account_module, "_clock", clock)
    return clock


def tokens_of(fake: FakeWarden, **kwargs: Any) -> ServiceAccountTokens:
    return ServiceAccountTokens(fake.url, client_id=CLIENT_ID, client_secret=SECRET, **kwargs)


def async_tokens_of(fake: FakeWarden, **kwargs: Any) -> AsyncServiceAccountTokens:
    return AsyncServiceAccountTokens(fake.url, client_id=CLIENT_ID, client_secret=SECRET, **kwargs)


# --- fetching and caching -------------------------------------------------------------------


def test_two_calls_fetch_one_token(fake: FakeWarden) -> None:
    with tokens_of(fake) as tokens:
        assert tokens.token() == "tok-1"
        assert tokens.token() == "tok-1"
    assert len(fake.token_requests) == 1


def test_basic_authentication_form_urlencodes_id_and_secret(fake: FakeWarden) -> None:
    client_id = "sa:odd id+"
    with ServiceAccountTokens(fake.url, client_id=client_id, client_secret=SECRET) as tokens:
        tokens.token()
    seen = fake.token_requests[0]
    assert (seen.method, seen.path) == ("POST", "/oauth2/token")
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.form == {"grant_type": "client_credentials"}  # no credentials in the body
    scheme, _, encoded = seen.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    pair = base64.b64decode(encoded).decode("ascii")
    # RFC 6749 §2.3.1: each part is application/x-www-form-urlencoded before the join, so
    # the only ':' left is the separator.
    assert pair == "sa%3Aodd+id%2B:wsa_p%3Ass+w%2Brd%25%2F%C3%A9%26%3D"
    encoded_id, encoded_secret = pair.split(":")
    assert (unquote_plus(encoded_id), unquote_plus(encoded_secret)) == (client_id, SECRET)


def test_client_secret_post_sends_the_credentials_in_the_body(fake: FakeWarden) -> None:
    with tokens_of(fake, auth_method="client_secret_post", scope="documents:read") as tokens:
        tokens.token()
    seen = fake.token_requests[0]
    assert "authorization" not in seen.headers
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.form == {
        "grant_type": "client_credentials",
        "scope": "documents:read",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }


@pytest.mark.parametrize(
    ("scope", "sent"),
    [
        (None, None),
        ("documents:read", "documents:read"),
        ("  documents:read   documents:write ", "documents:read documents:write"),
        (["documents:read", "documents:write", "documents:read"], "documents:read documents:write"),
        ([], None),
    ],
)
def test_scope_is_sent_space_separated(
    fake: FakeWarden, scope: str | list[str] | None, sent: str | None
) -> None:
    with tokens_of(fake, scope=scope) as tokens:
        assert tokens.scope == sent
        tokens.token()
    assert fake.token_requests[0].form.get("scope") == sent


@pytest.mark.parametrize("scope", ['doc"s', "docs\\read", ["a b"], ["é"], [""]])
def test_scopes_outside_rfc_6749_are_refused_before_any_request(scope: Any) -> None:
    with pytest.raises(ValueError, match="not an OAuth scope"):
        ServiceAccountTokens(client_id=CLIENT_ID, client_secret=SECRET, scope=scope)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="client_id"):
        ServiceAccountTokens(client_id="", client_secret=SECRET)
    with pytest.raises(ValueError, match="client_secret") as empty:
        ServiceAccountTokens(client_id=CLIENT_ID, client_secret="")
    with pytest.raises(ValueError, match="auth_method"):
        ServiceAccountTokens(
            client_id=CLIENT_ID,
            client_secret=SECRET,
            auth_method="private_key_jwt",  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match="refresh_margin"):
        ServiceAccountTokens(client_id=CLIENT_ID, client_secret=SECRET, refresh_margin=-1)
    with pytest.raises(ValueError, match="timeouts"):
        ServiceAccountTokens(client_id=CLIENT_ID, client_secret=SECRET, timeout=0)
    assert SECRET not in str(empty.value)


def test_from_env(monkeypatch: pytest.MonkeyPatch, fake: FakeWarden) -> None:
    monkeypatch.setenv("WARDEN_URL", fake.url)
    monkeypatch.setenv("WARDEN_CLIENT_ID", CLIENT_ID)
    monkeypatch.delenv("WARDEN_CLIENT_SECRET", raising=False)
    with pytest.raises(ValueError, match="WARDEN_CLIENT_SECRET"):
        ServiceAccountTokens.from_env()
    monkeypatch.setenv("WARDEN_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("WARDEN_SCOPE", "documents:read")
    with ServiceAccountTokens.from_env() as tokens:
        assert (tokens.client_id, tokens.scope) == (CLIENT_ID, "documents:read")
        assert tokens.token() == "tok-1"


# --- refreshing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires_in", "margin", "refresh_after"),
    [
        (600, 60, 480),  # 80% of the lifetime comes before lifetime - margin
        (1000, 100, 800),
        (1000, 300, 700),  # lifetime - margin comes first
        (30, 60, 15),  # shorter than the margin: not before half the lifetime
        (100, 0, 80),
    ],
)
def test_refresh_before_expiry(
    fake: FakeWarden, clock: Clock, expires_in: int, margin: float, refresh_after: float
) -> None:
    fake.expires_in = expires_in
    with tokens_of(fake, refresh_margin=margin) as tokens:
        assert tokens.token() == "tok-1"
        clock.now += refresh_after - 0.01
        assert tokens.token() == "tok-1"
        clock.now += 0.02
        assert tokens.token() == "tok-2"
        assert tokens.token() == "tok-2"
    assert len(fake.token_requests) == 2


def test_refresh_on_the_real_clock(fake: FakeWarden) -> None:
    fake.expires_in = 1
    with tokens_of(fake, refresh_margin=0) as tokens:
        assert tokens.token() == "tok-1"
        assert tokens.token() == "tok-1"
        time.sleep(0.85)  # past 80% of the token's one second
        assert tokens.token() == "tok-2"
    assert len(fake.token_requests) == 2


def test_a_failed_refresh_keeps_the_unexpired_token(fake: FakeWarden, clock: Clock) -> None:
    fake.expires_in = 100
    with tokens_of(fake, refresh_margin=10) as tokens:
        assert tokens.token() == "tok-1"
        clock.now += 81  # due for refresh (80 s), 19 s before expiry
        fake.answer_next(503, {"title": "Service Unavailable"})
        assert tokens.token() == "tok-1"
        assert len(fake.token_requests) == 2
        clock.now += 0.5  # the next attempt waits a second
        assert tokens.token() == "tok-1"
        assert len(fake.token_requests) == 2
        clock.now += 0.6
        assert tokens.token() == "tok-2"
        assert len(fake.token_requests) == 3


def test_an_expired_token_is_never_kept(fake: FakeWarden, clock: Clock) -> None:
    fake.expires_in = 100
    with tokens_of(fake) as tokens:
        assert tokens.token() == "tok-1"
        clock.now += 100
        fake.answer_next(502, b"bad gateway")
        with pytest.raises(WardenUnavailableError, match="502"):
            tokens.token()


def test_invalidate_fetches_anew_but_only_once_per_refused_token(fake: FakeWarden) -> None:
    with tokens_of(fake) as tokens:
        assert tokens.token() == "tok-1"
        tokens.invalidate("tok-1")
        assert tokens.token() == "tok-2"
        tokens.invalidate("tok-1")  # a late caller that also saw tok-1 refused
        assert tokens.token() == "tok-2"
        tokens.invalidate()
        assert tokens.token() == "tok-3"
    assert len(fake.token_requests) == 3


def test_concurrent_threads_share_one_fetch(fake: FakeWarden) -> None:
    fake.token_delay = 0.2
    got: list[str] = []
    with tokens_of(fake) as tokens:
        threads = [threading.Thread(target=lambda: got.append(tokens.token())) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert got == ["tok-1"] * 8
    assert len(fake.token_requests) == 1


# --- errors ---------------------------------------------------------------------------------


def test_oauth_error_is_a_token_request_error(fake: FakeWarden) -> None:
    fake.answer_next(
        400, {"error": "invalid_scope", "error_description": "documents:write is not granted"}
    )
    with (
        tokens_of(fake, scope="documents:write") as tokens,
        pytest.raises(TokenRequestError) as refused,
    ):
        tokens.token()
    error = refused.value
    assert (error.error, error.description, error.status) == (
        "invalid_scope",
        "documents:write is not granted",
        400,
    )
    assert isinstance(error, WardenError)
    assert "invalid_scope" in str(error)


def test_invalid_client_is_a_token_request_error_without_the_secret(fake: FakeWarden) -> None:
    fake.answer_next(401, {"error": "invalid_client"})
    with tokens_of(fake) as tokens, pytest.raises(TokenRequestError) as refused:
        tokens.token()
    assert (refused.value.error, refused.value.description, refused.value.status) == (
        "invalid_client",
        None,
        401,
    )
    assert SECRET not in str(refused.value) and SECRET not in repr(refused.value)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, {"title": "Not Found", "detail": "no route"}, WardenRequestError),
        (500, {"error": "server_error"}, WardenUnavailableError),
        (503, b"", WardenUnavailableError),
        (200, b"not json", WardenUnavailableError),
        (200, ["a list"], WardenProtocolError),
        (200, {"token_type": "Bearer", "expires_in": 60}, WardenProtocolError),
        (200, {"access_token": "t", "token_type": "mac", "expires_in": 60}, WardenProtocolError),
        (200, {"access_token": "t", "token_type": "Bearer"}, WardenProtocolError),
        (200, {"access_token": "t", "token_type": "Bearer", "expires_in": 0}, WardenProtocolError),
        (
            200,
            {"access_token": "a\r\nb", "token_type": "bearer", "expires_in": 9},
            WardenProtocolError,
        ),
    ],
)
def test_anything_but_a_token_or_an_oauth_error_fails_typed(
    fake: FakeWarden, status: int, body: Any, error: type[Exception]
) -> None:
    fake.answer_next(status, body)
    with tokens_of(fake) as tokens, pytest.raises(error):
        tokens.token()


def test_unreachable_warden_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        ServiceAccountTokens(
            f"http://127.0.0.1:{port}", client_id=CLIENT_ID, client_secret=SECRET, timeout=1.0
        ) as tokens,
        pytest.raises(WardenUnavailableError, match="/oauth2/token"),
    ):
        tokens.token()


def test_repr_never_shows_the_secret_or_a_token(fake: FakeWarden) -> None:
    with tokens_of(fake) as tokens:
        token = tokens.token()
        auth = ServiceAccountAuth(tokens)
        for shown in (repr(tokens), str(tokens), repr(auth)):
            assert SECRET not in shown and token not in shown
            assert "client_secret='***'" in shown
            assert CLIENT_ID in shown


# --- ServiceAccountAuth ---------------------------------------------------------------------


def test_auth_sends_the_bearer_token_and_caches_it(fake: FakeWarden) -> None:
    with (
        tokens_of(fake) as tokens,
        httpx2.Client(base_url=fake.url, auth=ServiceAccountAuth(tokens)) as http,
    ):
        assert http.get("/resource").json()["bearer"] == "tok-1"
        assert http.get("/resource").json()["bearer"] == "tok-1"
    assert len(fake.token_requests) == 1
    assert [seen.headers["authorization"] for seen in fake.resource_requests] == [
        "Bearer tok-1",
        "Bearer tok-1",
    ]


def test_auth_refetches_once_on_401_and_replays_the_body(fake: FakeWarden) -> None:
    with (
        tokens_of(fake) as tokens,
        httpx2.Client(base_url=fake.url, auth=ServiceAccountAuth(tokens)) as http,
    ):
        assert http.get("/resource").status_code == 200
        fake.revoke_all()
        # A streamed body too: it is buffered so that the retry can send it again.
        response = http.post("/resource", content=iter([b"pay", b"load"]))
        assert response.status_code == 200, response.text
        assert response.json() == {"bearer": "tok-2", "body": "payload"}
    assert len(fake.token_requests) == 2
    retried = fake.resource_requests[1:]
    assert [seen.headers["authorization"] for seen in retried] == ["Bearer tok-1", "Bearer tok-2"]
    assert [seen.body for seen in retried] == [b"payload", b"payload"]


def test_auth_retries_only_once(fake: FakeWarden) -> None:
    with (
        tokens_of(fake) as tokens,
        httpx2.Client(base_url=fake.url, auth=ServiceAccountAuth(tokens)) as http,
    ):
        fake.accepted = _NothingAccepted()
        response = http.get("/resource")
    assert response.status_code == 401
    assert response.json() == {"reason": "token_revoked"}
    assert len(fake.resource_requests) == 2
    assert len(fake.token_requests) == 2


def test_auth_raises_when_no_new_token_can_be_had(fake: FakeWarden) -> None:
    with (
        tokens_of(fake) as tokens,
        httpx2.Client(base_url=fake.url, auth=ServiceAccountAuth(tokens)) as http,
    ):
        assert http.get("/resource").status_code == 200
        fake.revoke_all()
        fake.answer_next(401, {"error": "invalid_client", "error_description": "disabled"})
        with pytest.raises(TokenRequestError) as refused:
            http.get("/resource")
    assert refused.value.error == "invalid_client"


def test_sync_client_needs_blocking_tokens(fake: FakeWarden) -> None:
    auth = ServiceAccountAuth(async_tokens_of(fake))
    with httpx2.Client(base_url=fake.url, auth=auth) as http, pytest.raises(TypeError):
        http.get("/resource")
    assert fake.resource_requests == []


class _NothingAccepted(set[str]):
    """An `accepted` set that never holds a token, even one just issued."""

    def add(self, element: str) -> None:
        pass


# --- asyncio --------------------------------------------------------------------------------


def test_async_tokens_cache_and_share_one_fetch(fake: FakeWarden) -> None:
    fake.token_delay = 0.1

    async def main() -> list[str]:
        async with async_tokens_of(fake) as tokens:
            first = await asyncio.gather(*(tokens.token() for _ in range(5)))
            return [*first, await tokens.token()]

    assert asyncio.run(main()) == ["tok-1"] * 6
    assert len(fake.token_requests) == 1


def test_async_tokens_refresh_and_fail_typed(fake: FakeWarden, clock: Clock) -> None:
    fake.expires_in = 100

    async def main() -> None:
        async with async_tokens_of(fake, auth_method="client_secret_post") as tokens:
            assert await tokens.token() == "tok-1"
            clock.now += 80.01
            assert await tokens.token() == "tok-2"
            tokens.invalidate()
            fake.answer_next(400, {"error": "invalid_scope"})
            with pytest.raises(TokenRequestError, match="invalid_scope"):
                await tokens.token()

    asyncio.run(main())
    assert fake.token_requests[0].form["client_secret"] == SECRET


def test_async_auth_refetches_once_on_401(fake: FakeWarden) -> None:
    async def main() -> list[int]:
        async with (
            async_tokens_of(fake) as tokens,
            httpx2.AsyncClient(base_url=fake.url, auth=ServiceAccountAuth(tokens)) as http,
        ):
            statuses = [(await http.get("/resource")).status_code]
            fake.revoke_all()
            response = await http.post("/resource", content=b"again")
            assert response.json() == {"bearer": "tok-2", "body": "again"}
            statuses.append(response.status_code)
            return statuses

    assert asyncio.run(main()) == [200, 200]
    assert len(fake.token_requests) == 2
    assert len(fake.resource_requests) == 3


def test_async_client_may_use_blocking_tokens(fake: FakeWarden) -> None:
    async def main(tokens: ServiceAccountTokens) -> list[str]:
        async with httpx2.AsyncClient(base_url=fake.url, auth=ServiceAccountAuth(tokens)) as http:
            seen = [(await http.get("/resource")).json()["bearer"]]
            fake.revoke_all()
            seen.append((await http.get("/resource")).json()["bearer"])
            return seen

    with tokens_of(fake) as tokens:
        assert asyncio.run(main(tokens)) == ["tok-1", "tok-2"]
        assert tokens.token() == "tok-2"  # one cache, shared with blocking callers
    assert len(fake.token_requests) == 2
