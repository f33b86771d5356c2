"""Real servers on 127.0.0.1 for the reliability and TLS tests: a scripted HTTP/1.1 server
that answers, resets (RST, via `SO_LINGER` 0), closes or hangs, plain or over TLS, and a
small PKI (a CA, a server and a client certificate) made with `cryptography`.

Not a Warden: each connection gets the next step of a script (the last step repeats), and
every answer closes its connection, so connections count attempts. Every loop here is
bounded: the accept loop polls a stop flag, and reads have a timeout.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_READ_TIMEOUT_SECONDS = 2.0
_HANG_LIMIT_SECONDS = 5.0


def closed_port() -> int:
    """A loopback port with nothing listening on it (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: a JSON body (a dict or list) or raw bytes."""

    status: int
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            content, content_type = self.body, "text/plain"
        else:
            content, content_type = json.dumps(self.body).encode(), "application/json"
        headers = {"content-type": content_type, **self.headers}
        head = f"HTTP/1.1 {self.status} X\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head += f"content-length: {len(content)}\r\nconnection: close\r\n\r\n"
        return head.encode() + content


RESET = "reset"
"""Read the request, then reset the connection (RST): no answer, and the request was seen."""
CLOSE = "close"
"""Read the request, then close the connection (FIN) without an answer."""
HANG = "hang"
"""Read the request and never answer (until the server stops)."""

Step = Answer | str


@dataclass(frozen=True)
class Request:
    """A request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 that plays `script`, one step per connection.

    With `tls` (a server-side `ssl.SSLContext`), each connection is a TLS handshake first;
    `handshakes` counts attempts, `peer_certificates` holds what clients presented.
    """

    def __init__(self, script: list[Step], *, tls: ssl.SSLContext | None = None) -> None:
        if not script:
            raise ValueError("a script needs at least one step")
        self._script = list(script)
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self.handshakes = 0
        self.requests: list[Request] = []
        self.peer_certificates: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="scripted-server", daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=_HANG_LIMIT_SECONDS + 1)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            step = self._script[min(self.connections, len(self._script) - 1)]
            self.connections += 1
            # The client went away (or failed its handshake): on to the next connection.
            with contextlib.suppress(OSError):
                self._handle(connection, step)

    def _handle(self, connection: socket.socket, step: Step) -> None:
        connection.settimeout(_READ_TIMEOUT_SECONDS)
        with connection:
            if self._tls is None:
                self._play(connection, step)
                return
            self.handshakes += 1
            with self._tls.wrap_socket(connection, server_side=True) as tls_connection:
                peer = tls_connection.getpeercert()
                if peer:
                    self.peer_certificates.append(peer)
                self._play(tls_connection, step)

    def _play(self, connection: socket.socket, step: Step) -> None:
        request = _read_request(connection)
        if request is None:
            return
        self.requests.append(request)
        if isinstance(step, Answer):
            connection.sendall(step.encode())
        elif step == RESET:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif step == HANG:
            self._stop.wait(_HANG_LIMIT_SECONDS)


def _read_request(connection: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        body += chunk
    return Request(method, path, headers, body)


# -- a small PKI -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """PEM files in one directory: a CA, a server certificate for 127.0.0.1 and localhost,
    a client certificate (CN `pep-orders`), the same client in one file with its key, and
    a second CA that nothing is signed by."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_combined: Path
    other_ca: Path

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=self.ca)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    *,
    server: bool,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """Generate the PKI into `directory`."""
    pem = serialization.Encoding.PEM
    ca_key, ca_cert = _ca("Warden test CA")
    _, other_cert = _ca("Some other CA")
    server_key, server_cert = _leaf(ca_key, ca_cert, "127.0.0.1", server=True)
    client_key, client_cert = _leaf(ca_key, ca_cert, "pep-orders", server=False)
    pki = Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        client_combined=directory / "client-with-key.pem",
        other_ca=directory / "other-ca.pem",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(pem))
    pki.other_ca.write_bytes(other_cert.public_bytes(pem))
    pki.server_cert.write_bytes(server_cert.public_bytes(pem))
    pki.server_key.write_bytes(_key_pem(server_key))
    pki.client_cert.write_bytes(client_cert.public_bytes(pem))
    pki.client_key.write_bytes(_key_pem(client_key))
    pki.client_combined.write_bytes(client_cert.public_bytes(pem) + _key_pem(client_key))
    return pki
