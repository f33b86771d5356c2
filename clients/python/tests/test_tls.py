"""The TLS options against a real HTTPS server on 127.0.0.1 with a CA generated per run (#22):
`verify` as a CA bundle path or an `ssl.SSLContext`, the default refusing an unknown CA and
honouring `SSL_CERT_FILE`, and a client certificate presented to a server that requires one.
A TLS failure fails closed, is not retried and is not `retryable`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import Answer, Pki, ScriptedServer, make_pki

from warden import (
    AsyncServiceAccountTokens,
    AsyncWardenClient,
    Entity,
    ServiceAccountTokens,
    WardenClient,
    WardenUnavailableError,
)

ALLOW = {
    "decision": "allow",
    "decision_id": "0190a0a0-0000-7000-8000-0000000000f1",
    "reason": "permitted",
    "reasons": [],
    "errors": [],
    "principal": {"type": "User", "id": "acme/carol", "tenant": "acme"},
    "policy_revision": "c0cbc5e76842af6d",
}
SECRET = "test-secret"  # noqa: S105 - a test secret
TOKEN_ANSWER = {"access_token": "issued-token", "token_type": "Bearer", "expires_in": 300}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def no_ca_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's own trust settings, not the test machine's CA variables."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    yield


def check(client: WardenClient) -> bool:
    return client.check("user-token", "read", "Document", "acme/roadmap").allowed


def test_verify_with_a_ca_bundle_path(pki: Pki) -> None:
    with ScriptedServer([Answer(200, ALLOW)], tls=pki.server_context()) as server:
        for verify in (str(pki.ca), pki.ca):
            with WardenClient(server.url, verify=verify) as client:
                assert check(client)
    assert server.handshakes == 2


def test_verify_with_a_hashed_ca_directory(pki: Pki, tmp_path: Path) -> None:
    # `openssl rehash` names: the subject hash, then `.0`; `ssl` finds them by that name.
    import subprocess

    directory = tmp_path / "cas"
    directory.mkdir()
    subject_hash = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
        ["openssl", "x509", "-hash", "-noout", "-in", str(pki.ca)],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (directory / f"{subject_hash}.0").write_bytes(pki.ca.read_bytes())
    with (
        ScriptedServer([Answer(200, ALLOW)], tls=pki.server_context()) as server,
        WardenClient(server.url, verify=directory) as client,
    ):
        assert check(client)


def test_verify_with_an_ssl_context(pki: Pki) -> None:
    context = ssl.create_default_context(cafile=pki.ca)
    with (
        ScriptedServer([Answer(200, ALLOW)], tls=pki.server_context()) as server,
        WardenClient(server.url, verify=context) as client,
    ):
        assert check(client)


@pytest.mark.usefixtures("no_ca_environment")
def test_the_default_refuses_an_unknown_ca_and_does_not_retry(pki: Pki) -> None:
    with (
        ScriptedServer([Answer(200, ALLOW)], tls=pki.server_context()) as server,
        WardenClient(server.url, retries=2) as client,
        pytest.raises(WardenUnavailableError) as failed,
    ):
        check(client)
    assert "CERTIFICATE_VERIFY_FAILED" in str(failed.value)
    assert not failed.value.retryable
    assert server.handshakes == 1
    assert server.requests == []


@pytest.mark.usefixtures("no_ca_environment")
def test_a_ca_bundle_replaces_the_system_store(pki: Pki) -> None:
    with (
        ScriptedServer([Answer(200, ALLOW)], tls=pki.server_context()) as server,
        WardenClient(server.url, verify=pki.other_ca) as client,
        pytest.raises(WardenUnavailableError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        check(client)


@pytest.mark.usefixtures("no_ca_environment")
def test_ssl_cert_file_is_honoured_when_verify_is_left_default(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    with (
        ScriptedServer([Answer(200, ALLOW)], tls=pki.server_context()) as server,
        WardenClient(server.url) as client,
    ):
        assert check(client)


@pytest.mark.usefixtures("no_ca_environment")
def test_ssl_cert_file_does_not_override_an_explicit_verify(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    with (
        ScriptedServer([Answer(200, ALLOW)], tls=pki.server_context()) as server,
        WardenClient(server.url, verify=pki.other_ca) as client,
        pytest.raises(WardenUnavailableError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        check(client)


def test_verify_false_skips_verification_and_says_so(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        ScriptedServer([Answer(200, ALLOW)], tls=pki.server_context()) as server,
        WardenClient(server.url, verify=False) as client,
    ):
        assert check(client)
    assert any(
        r.name == "warden" and r.levelname == "WARNING" and "not verified" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("form", ["pair", "combined"])
def test_the_client_certificate_is_presented(pki: Pki, form: str) -> None:
    cert = (pki.client_cert, pki.client_key) if form == "pair" else str(pki.client_combined)
    tls = pki.server_context(require_client_cert=True)
    with (
        ScriptedServer([Answer(200, ALLOW)], tls=tls) as server,
        WardenClient(server.url, verify=pki.ca, cert=cert) as client,
    ):
        assert check(client)
    subjects = [dict(rdn[0] for rdn in peer["subject"]) for peer in server.peer_certificates]
    assert subjects == [{"commonName": "pep-orders"}]


def test_without_the_required_client_certificate_nothing_is_decided(pki: Pki) -> None:
    tls = pki.server_context(require_client_cert=True)
    with (
        ScriptedServer([Answer(200, ALLOW)], tls=tls) as server,
        WardenClient(server.url, verify=pki.ca, retries=2) as client,
        pytest.raises(WardenUnavailableError) as failed,
    ):
        check(client)
    assert server.requests == []
    assert not failed.value.retryable
    assert server.handshakes == 1


def test_async_client_and_token_sources_take_the_same_options(pki: Pki) -> None:
    tls = pki.server_context(require_client_cert=True)
    cert = (pki.client_cert, pki.client_key)
    script = [Answer(200, ALLOW), Answer(200, TOKEN_ANSWER), Answer(200, TOKEN_ANSWER)]

    async def run(url: str) -> None:
        async with AsyncWardenClient(url, verify=pki.ca, cert=cert) as client:
            decision = await client.check("user-token", "read", "Document", "acme/roadmap")
            assert decision.allowed
        async with AsyncServiceAccountTokens(
            url, client_id="sa_1", client_secret=SECRET, verify=pki.ca, cert=cert
        ) as tokens:
            assert await tokens.token() == "issued-token"

    with ScriptedServer(script, tls=tls) as server:
        asyncio.run(run(server.url))
        with ServiceAccountTokens(
            server.url, client_id="sa_1", client_secret=SECRET, verify=pki.ca, cert=cert
        ) as tokens:
            assert tokens.token() == "issued-token"
    assert len(server.peer_certificates) == 3
    assert [r.path for r in server.requests] == ["/v1/check", "/oauth2/token", "/oauth2/token"]


def test_tls_options_that_cannot_work_are_refused_at_construction(pki: Pki) -> None:
    cert = (pki.client_cert, pki.client_key)
    with pytest.raises(ValueError, match="https://"):
        WardenClient("http://127.0.0.1:8180", cert=cert)
    with pytest.raises(ValueError, match="SSLContext"):
        WardenClient("https://127.0.0.1:8180", verify=ssl.create_default_context(), cert=cert)
    with pytest.raises(FileNotFoundError):
        WardenClient("https://127.0.0.1:8180", verify=pki.ca.parent / "missing.pem")
    with pytest.raises(FileNotFoundError):
        WardenClient("https://127.0.0.1:8180", cert=(pki.ca.parent / "nope.pem", pki.client_key))


def test_searches_use_the_same_connection_settings(pki: Pki) -> None:
    page = {"results": [{"type": "Document", "id": "acme/roadmap"}], "page": {"next_token": ""}}
    with (
        ScriptedServer([Answer(200, page)], tls=pki.server_context()) as server,
        WardenClient(server.url, verify=pki.ca, pep_credential="pep") as client,
    ):
        found = list(client.search_resources(Entity("User", "acme/carol"), "read", "Document"))
    assert found == [Entity("Document", "acme/roadmap")]
