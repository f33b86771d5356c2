"""Retries, deadlines, error semantics and logging against real loopback servers (#22).

A port with nothing listening refuses; `ScriptedServer` resets (RST), closes without an
answer, hangs, or answers what the test scripts. What is proved: decisions, filters and
searches are sent again after a refused or broken connection, within the deadline; a token
request only when the connection could not be made; an answer (a 503 too), a timeout and a
TLS failure never; a 400 is a `WardenRequestError` that is not `retryable`, a 503 a
`WardenUnavailableError` that is; and no log record holds a token or a credential.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import pytest
from loopback import CLOSE, HANG, RESET, Answer, ScriptedServer, closed_port

from warden import (
    AsyncWardenClient,
    Entity,
    InvalidTokenError,
    ServiceAccountTokens,
    TokenRequestError,
    WardenClient,
    WardenError,
    WardenProtocolError,
    WardenRequestError,
    WardenUnavailableError,
)

DECISION_ID = "0190a0a0-0000-7000-8000-00000000d001"
ALLOW = {
    "decision": "allow",
    "decision_id": DECISION_ID,
    "reason": "permitted",
    "reasons": [],
    "errors": [],
    "principal": {"type": "User", "id": "acme/carol", "tenant": "acme"},
    "policy_revision": "c0cbc5e76842af6d",
}
DENY = {**ALLOW, "decision": "deny", "reason": "no_permit", "decision_id": "d-deny-1"}
EVALUATION = {"decision": True, "context": {"decision_id": "d-eval-1", "reason": "permitted"}}
PAGE = {"results": [{"type": "Document", "id": "acme/roadmap"}], "page": {"next_token": ""}}
TOKEN_ANSWER = {"access_token": "sa-access-token-c0ffee", "token_type": "Bearer", "expires_in": 60}
UNAVAILABLE = {
    "type": "https://warden.dev/problems/unavailable",
    "title": "Service Unavailable",
    "status": 503,
    "detail": "the store is stale: revocations cannot be checked",
    "reason": "store_stale",
}
SECRET = "test-secret"  # noqa: S105 - a test secret
BAD_REQUEST = {
    "type": "https://warden.dev/problems/bad-request",
    "title": "Bad Request",
    "status": 400,
    "detail": "missing field `action`",
}


def retry_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "warden" and "retrying" in r.getMessage()]


def check(client: WardenClient, token: str = "user-token") -> bool:  # noqa: S107 - a test token
    return client.check(token, "read", "Document", "acme/roadmap").allowed


# -- retries -------------------------------------------------------------------------------


def test_a_refused_connection_is_retried_then_fails_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="warden")
    with (
        WardenClient(f"http://127.0.0.1:{closed_port()}", retries=2) as client,
        pytest.raises(WardenUnavailableError) as failed,
    ):
        check(client)
    assert failed.value.retryable and failed.value.status is None
    assert "3 attempts" in str(failed.value)
    assert len(retry_records(caplog)) == 2
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "did not answer POST /v1/check" in warning.getMessage()


@pytest.mark.parametrize("broken", [RESET, CLOSE])
def test_a_broken_connection_is_retried_until_warden_answers(broken: str) -> None:
    with (
        ScriptedServer([broken, broken, Answer(200, ALLOW)]) as server,
        WardenClient(server.url, retries=2) as client,
    ):
        assert check(client)
    assert server.connections == 3
    assert [r.path for r in server.requests] == ["/v1/check"] * 3


def test_every_read_only_call_is_retried() -> None:
    script = [
        RESET,
        Answer(200, EVALUATION),
        RESET,
        Answer(200, PAGE),
        RESET,
        Answer(200, {"status": "ready", "checks": {}}),
    ]
    carol, roadmap = Entity("User", "acme/carol"), Entity("Document", "acme/roadmap")
    with (
        ScriptedServer(script) as server,
        WardenClient(server.url, pep_credential="pep", retries=1) as client,
    ):
        assert client.evaluate(carol, "read", roadmap).allowed
        assert list(client.search_resources(carol, "read", "Document")) == [roadmap]
        assert client.readiness()["status"] == "ready"
    assert [r.path for r in server.requests] == [
        "/access/v1/evaluation",
        "/access/v1/evaluation",
        "/access/v1/search/resource",
        "/access/v1/search/resource",
        "/readyz",
        "/readyz",
    ]


def test_the_async_client_retries_the_same_way() -> None:
    async def run(url: str) -> bool:
        async with AsyncWardenClient(url, retries=2) as client:
            decision = await client.check("user-token", "read", "Document", "acme/roadmap")
            return decision.allowed

    with ScriptedServer([RESET, CLOSE, Answer(200, ALLOW)]) as server:
        assert asyncio.run(run(server.url))
    assert server.connections == 3


def test_no_retries_means_one_attempt() -> None:
    with (
        ScriptedServer([RESET, Answer(200, ALLOW)]) as server,
        WardenClient(server.url, retries=0) as client,
        pytest.raises(WardenUnavailableError),
    ):
        check(client)
    assert server.connections == 1


@pytest.mark.parametrize("where", ["refused", "reset"])
def test_retries_stop_at_the_deadline(where: str) -> None:
    deadline = 0.3

    def attempt(url: str) -> float:
        started = time.monotonic()
        with (
            WardenClient(url, retries=10_000, deadline=deadline) as client,
            pytest.raises(WardenUnavailableError),
        ):
            check(client)
        return time.monotonic() - started

    if where == "refused":
        elapsed = attempt(f"http://127.0.0.1:{closed_port()}")
    else:
        with ScriptedServer([RESET]) as server:
            elapsed = attempt(server.url)
        # The backoff doubles (up to 1 s), so a 0.3 s deadline leaves room for a few.
        assert 2 <= server.connections < 10
    assert elapsed < deadline + 0.5  # slack for a loaded machine; 10,000 retries would be far over


def test_the_deadline_caps_each_attempt() -> None:
    with (
        ScriptedServer([HANG]) as server,
        WardenClient(server.url, timeout=5.0, deadline=0.3) as client,
    ):
        started = time.monotonic()
        with pytest.raises(WardenUnavailableError) as failed:
            check(client)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert "ReadTimeout" in str(failed.value) and failed.value.retryable
    assert server.connections == 1  # a timeout is not retried: Warden may be overloaded


def test_a_token_request_is_not_sent_twice_once_it_may_have_arrived() -> None:
    with (
        ScriptedServer([RESET, Answer(200, TOKEN_ANSWER)]) as server,
        ServiceAccountTokens(
            server.url, client_id="sa_1", client_secret=SECRET, retries=2
        ) as tokens,
    ):
        with pytest.raises(WardenUnavailableError):
            tokens.token()
        assert server.connections == 1
        assert tokens.token() == "sa-access-token-c0ffee"  # the next call is a new request
    assert server.connections == 2


def test_a_token_request_is_retried_when_the_connection_was_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="warden")
    url = f"http://127.0.0.1:{closed_port()}"
    with (
        ServiceAccountTokens(url, client_id="sa_1", client_secret=SECRET, retries=2) as tokens,
        pytest.raises(WardenUnavailableError),
    ):
        tokens.token()
    assert [r.getMessage().split(" in ")[0] for r in retry_records(caplog)] == [
        "retrying POST /oauth2/token"
    ] * 2


def test_retry_options_are_validated() -> None:
    for retries in (-1, 1.5, True):
        with pytest.raises(ValueError, match="retries"):
            WardenClient(retries=retries)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="deadline"):
        WardenClient(deadline=0)


# -- what is an error, and which may be retried ----------------------------------------------


@pytest.mark.parametrize(
    ("answer", "error_type", "retryable"),
    [
        (Answer(400, BAD_REQUEST), WardenRequestError, False),
        (Answer(413, {"status": 413, "detail": "too large"}), WardenRequestError, False),
        (Answer(429, {"status": 429}, {"retry-after": "3"}), WardenRequestError, True),
        (Answer(401, {"status": 401, "reason": "token_expired"}), InvalidTokenError, False),
        (Answer(500, {"status": 500, "detail": "internal error"}), WardenUnavailableError, False),
        (Answer(502, b"<html>bad gateway</html>"), WardenUnavailableError, True),
        (Answer(503, UNAVAILABLE, {"retry-after": "1"}), WardenUnavailableError, True),
        (Answer(504, b""), WardenUnavailableError, True),
        (Answer(200, b"{not json"), WardenProtocolError, False),
        (Answer(200, {**ALLOW, "decision": "maybe"}), WardenProtocolError, False),
    ],
)
def test_each_answer_is_one_error_and_none_is_retried(
    answer: Answer, error_type: type[WardenError], retryable: bool
) -> None:
    with (
        ScriptedServer([answer, Answer(200, ALLOW)]) as server,
        WardenClient(server.url, retries=2) as client,
        pytest.raises(WardenError) as failed,
    ):
        check(client)
    assert type(failed.value) is error_type
    assert failed.value.retryable is retryable
    assert server.connections == 1


def test_a_400_is_not_a_retryable_503() -> None:
    with (
        ScriptedServer(
            [Answer(400, BAD_REQUEST), Answer(503, UNAVAILABLE, {"retry-after": "2"})]
        ) as server,
        WardenClient(server.url) as client,
    ):
        with pytest.raises(WardenRequestError) as rejected:
            check(client)
        with pytest.raises(WardenUnavailableError) as unavailable:
            check(client)
    assert not isinstance(rejected.value, WardenUnavailableError)
    assert (rejected.value.status, rejected.value.retryable) == (400, False)
    assert rejected.value.detail == "missing field `action`"
    assert unavailable.value.status == 503
    assert unavailable.value.retryable
    assert unavailable.value.reason == "store_stale"
    assert unavailable.value.detail == UNAVAILABLE["detail"]
    assert unavailable.value.retry_after == 2.0


def test_errors_built_by_hand_keep_their_old_meaning() -> None:
    assert WardenUnavailableError("down").retryable
    assert WardenUnavailableError("down").status is None
    assert not WardenProtocolError("garbled").retryable
    assert not WardenRequestError(400, "bad").retryable
    assert WardenRequestError(429, "slow down").retryable


# -- logging -------------------------------------------------------------------------------

USER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.user-token-7f3a9c.sig"  # noqa: S105 - a test token
PEP_CREDENTIAL = "pep-credential-5be1d2"
SA_SECRET = "sa-secret-91c4e7"  # noqa: S105 - a test secret
SA_TOKEN = TOKEN_ANSWER["access_token"]


def test_no_token_or_credential_reaches_any_log_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: warden's, httpx2's, httpcore2's
    carol, roadmap = Entity("User", "acme/carol"), Entity("Document", "acme/roadmap")
    script = [
        Answer(200, ALLOW),
        Answer(200, DENY),
        Answer(200, EVALUATION),
        Answer(
            401,
            {"status": 401, "reason": "token_expired", "detail": "token_expired"},
            {"www-authenticate": 'Bearer error="invalid_token", error_description="token_expired"'},
        ),
        Answer(
            401,
            {"status": 401, "detail": "this endpoint needs a PEP credential"},
            {"www-authenticate": 'Bearer realm="warden-pep"'},
        ),
        Answer(400, BAD_REQUEST),
        Answer(503, UNAVAILABLE),
        RESET,
        Answer(200, ALLOW),
        Answer(200, TOKEN_ANSWER),
        Answer(401, {"error": "invalid_client", "error_description": "client auth failed"}),
        Answer(
            502, b"<html>upstream sent Authorization: Bearer " + USER_TOKEN.encode() + b"</html>"
        ),
    ]
    raised: list[Exception] = []
    with ScriptedServer(script) as server:
        with WardenClient(server.url, pep_credential=PEP_CREDENTIAL, retries=2) as client:
            assert check(client, USER_TOKEN)
            assert not check(client, USER_TOKEN)
            assert client.evaluate(carol, "read", roadmap).allowed
            for call in (
                lambda: check(client, USER_TOKEN),
                lambda: client.evaluate(carol, "read", roadmap),
                lambda: check(client, USER_TOKEN),
                lambda: check(client, USER_TOKEN),
            ):
                with pytest.raises(WardenError) as failed:
                    call()
                raised.append(failed.value)
            assert check(client, USER_TOKEN)  # after one reset
        with ServiceAccountTokens(server.url, client_id="sa_1", client_secret=SA_SECRET) as tokens:
            assert tokens.token() == SA_TOKEN
            tokens.invalidate()
            with pytest.raises(TokenRequestError) as refused:
                tokens.token()
            raised.append(refused.value)
        with WardenClient(server.url) as client, pytest.raises(WardenUnavailableError):
            check(client, USER_TOKEN)  # a proxy's page quoting the header: not logged
    with (
        WardenClient(f"http://127.0.0.1:{closed_port()}", pep_credential=PEP_CREDENTIAL) as client,
        pytest.raises(WardenUnavailableError) as unreachable,
    ):
        check(client, USER_TOKEN)
    raised.append(unreachable.value)

    # The secrets were sent: the test would prove nothing otherwise.
    sent = [r.headers.get("authorization", "") for r in server.requests]
    assert f"Bearer {USER_TOKEN}" in sent and f"Bearer {PEP_CREDENTIAL}" in sent
    basic = base64.b64encode(f"sa_1:{SA_SECRET}".encode()).decode()
    assert f"Basic {basic}" in sent

    secrets = [USER_TOKEN, PEP_CREDENTIAL, SA_SECRET, SA_TOKEN, basic]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    assert caplog.records
    for record in caplog.records:
        text = formatter.format(record) + repr(record.args) + repr(record.__dict__)
        for secret in secrets:
            assert secret not in text, f"{secret!r} logged by {record.name}: {text[:300]}"
    for error in raised:
        for secret in secrets:
            assert secret not in str(error)

    # …and what should be logged is.
    warden_lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "warden"]
    assert ("DEBUG", f"decision {DECISION_ID} on POST /v1/check: allow") in warden_lines
    assert ("DEBUG", "decision d-deny-1 on POST /v1/check: deny") in warden_lines
    assert ("DEBUG", "decision d-eval-1 on POST /access/v1/evaluation: allow") in warden_lines
    assert (
        "WARNING",
        "Warden answered POST /v1/check with HTTP 503: reason store_stale: "
        "the store is stale: revocations cannot be checked",
    ) in warden_lines
    assert any(level == "INFO" and "retrying POST /v1/check" in m for level, m in warden_lines)
    assert any(level == "WARNING" and "HTTP 400" in m for level, m in warden_lines)
    assert any(level == "WARNING" and "text/plain body of" in m for level, m in warden_lines)
    assert ("WARNING", "Warden refused a token for sa_1 (HTTP 401): invalid_client") in warden_lines
