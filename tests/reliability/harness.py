"""Processes and instruments for Warden's fault tests (issue #22).

What this is: everything `test_faults.py` starts and drives, all on loopback: the real
`warden serve` (a config file written per test), a PostgreSQL cluster of the tests' own (never
the machine's shared server), a JWKS endpoint that can be taken down or made slow, a TCP proxy
that can cut one replica from the store, and a bounded load generator that records every
answer (status, decision, reason code, latency). What it is not: a test. It asserts nothing
about Warden; `test_faults.py` says what is correct. Every process started here is registered
and killed by `kill_leftovers` (a session finalizer in `conftest.py`) if a test did not stop it.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = REPO_ROOT / "examples" / "saas"
ISSUER = "https://idp.reliability.test"
AUDIENCE = "warden"
KID = "reliability-k1"

# Every wait in this suite is bounded by one of these.
READY_TIMEOUT = 30.0
"""Seconds a fresh `warden serve` gets to answer `/readyz` 200."""
CLIENT_TIMEOUT = 4.0
"""Seconds the load generator waits for one answer: far above the 1 s bound, so a slow answer
is measured rather than cut short, and far below anything that could stall the suite."""
COMMAND_TIMEOUT = 60.0
"""Seconds any helper command (initdb, pg_ctl, warden admin init, …) may take."""
LOAD_MAX_SECONDS = 60.0
"""A load generator stops by itself after this long even if nobody stops it."""

T = TypeVar("T")

_live_processes: list[subprocess.Popen[bytes]] = []
_live_lock = threading.Lock()


def register(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Remembers a process so `kill_leftovers` can end it if its test did not."""
    with _live_lock:
        _live_processes.append(process)
    return process


def kill_leftovers() -> None:
    """Kills (by pid) every registered process that is still running."""
    with _live_lock:
        processes = list(_live_processes)
        _live_processes.clear()
    for process in processes:
        if process.poll() is None:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)


def now() -> float:
    return time.monotonic()


def poll_until(
    probe: Callable[[], T | None], timeout: float, interval: float = 0.05
) -> tuple[T | None, float]:
    """Calls `probe` until it returns something other than None, at most `timeout` seconds.

    Returns what it returned (None on timeout) and the seconds it took.
    """
    started = now()
    deadline = started + timeout
    while True:
        value = probe()
        if value is not None:
            return value, now() - started
        if now() >= deadline:
            return None, now() - started
        time.sleep(interval)


def warden_binary() -> Path:
    configured = os.environ.get("WARDEN_BIN")
    binary = Path(configured) if configured else REPO_ROOT / "target" / "debug" / "warden"
    if not binary.is_file():
        raise RuntimeError(
            f"the warden binary is not at {binary}: build it (cargo build -p warden) "
            "or point WARDEN_BIN at it"
        )
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_refuses(port: int) -> bool:
    """Whether a TCP connection to 127.0.0.1:`port` is refused (nothing listens)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return False


# ---------------------------------------------------------------------------------------------
# Tokens: an RSA key the tests generate, published as a JWKS.


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SigningKey:
    """The test IdP's RS256 key: signs tokens, and is published as a JWKS."""

    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = KID

    def jwks(self) -> dict[str, Any]:
        public = self.private.public_key().public_numbers()
        key = {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256"}
        return {"keys": [{**key, "n": _b64(public.n), "e": _b64(public.e)}]}

    def mint(self, sub: str, org: str, *, expires_in: int = 900, **claims: Any) -> str:
        issued = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "org_id": org,
            "iat": issued - 5,
            "exp": issued + expires_in,
            "jti": secrets.token_hex(8),
            **claims,
        }
        return jwt.encode(payload, self.private, algorithm="RS256", headers={"kid": self.kid})


# ---------------------------------------------------------------------------------------------
# warden.toml


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def _toml_table(header: str, values: dict[str, Any]) -> str:
    lines = [header]
    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def issuer_settings(
    *, jwks_uri: str | None = None, jwks_file: Path | None = None, **timing: Any
) -> dict[str, Any]:
    """One `[[issuers]]` table for the test IdP: keys from a URL or a file, plus `timing`
    (`jwks_refresh_seconds`, `jwks_max_stale_seconds`, …)."""
    settings: dict[str, Any] = {"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256"]}
    if jwks_uri is not None:
        settings["jwks_uri"] = jwks_uri
    if jwks_file is not None:
        settings["jwks_file"] = jwks_file
    settings.update(timing)
    return settings


@dataclass
class WardenConfig:
    """What one `warden serve` runs with. Sections are written as given; `server.listen`, the
    PEP credential and the issuer's claim mapping are filled in."""

    workdir: Path
    issuer: dict[str, Any]
    pack_dir: Path = PACK_DIR
    entities_file: Path | None = PACK_DIR / "entities.json"
    watch: bool = True
    server: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, Any] | None = None
    audit: dict[str, Any] = field(default_factory=dict)
    name: str = "warden"

    def write(self, port: int, pep_digest: str) -> Path:
        policy: dict[str, Any] = {"dir": self.pack_dir, "watch": self.watch}
        if self.entities_file is not None:
            policy["entities_file"] = self.entities_file
        text = _toml_table("[server]", {"listen": f"127.0.0.1:{port}", **self.server})
        text += _toml_table("[policy]", policy)
        text += _toml_table("[peps]", {"credentials": [f"sha256:{pep_digest}"]})
        text += _toml_table("[[issuers]]", self.issuer)
        text += _toml_table("[issuers.claims]", {"tenant": "org_id", "roles": "roles"})
        if self.storage is not None:
            text += _toml_table("[storage]", self.storage)
        audit = {"dir": self.workdir / "audit", **self.audit}
        text += _toml_table("[audit]", audit)
        path = self.workdir / f"{self.name}.toml"
        path.write_text(text)
        return path


def _warden_env() -> dict[str, str]:
    """The environment without WARDEN_* overrides (they would change the config under test)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}


def admin_init(config: Path) -> str:
    """`warden admin init`: the admin credential, printed once."""
    result = subprocess.run(  # noqa: S603 - our own binary, fixed arguments
        [str(warden_binary()), "admin", "init", "--config", str(config)],
        capture_output=True,
        text=True,
        env=_warden_env(),
        cwd=config.parent,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    shown = [line.strip() for line in result.stdout.splitlines() if line.startswith("wdn_admin_")]
    if result.returncode != 0 or len(shown) != 1:
        raise RuntimeError(
            f"warden admin init failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return shown[0]


def audit_verify(audit_dir: Path) -> subprocess.CompletedProcess[str]:
    """`warden audit verify DIR`."""
    return subprocess.run(  # noqa: S603 - our own binary, fixed arguments
        [str(warden_binary()), "audit", "verify", str(audit_dir)],
        capture_output=True,
        text=True,
        env=_warden_env(),
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def audit_records(audit_dir: Path) -> dict[str, dict[str, Any]]:
    """Every decision record of a file log, by id (rotated files first, then the current)."""
    records: dict[str, dict[str, Any]] = {}
    files = [*sorted(audit_dir.glob("decisions-*.jsonl")), audit_dir / "decisions.jsonl"]
    for path in files:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                if record.get("kind") == "decision":
                    records[record["id"]] = record
    return records


class Warden:
    """A running `warden serve`: its URL, its credentials, and ways to poke it."""

    def __init__(
        self, config: WardenConfig, *, admin: bool | str = False, pep_secret: str | None = None
    ) -> None:
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pep_secret = pep_secret or secrets.token_urlsafe(32)
        digest = hashlib.sha256(self.pep_secret.encode()).hexdigest()
        self.config_path = config.write(self.port, digest)
        self.log_path = config.workdir / f"{config.name}.log"
        self.admin_secret: str | None = None
        if isinstance(admin, str):
            self.admin_secret = admin
        elif admin:
            self.admin_secret = admin_init(self.config_path)
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx2.Client(timeout=CLIENT_TIMEOUT)

    def start(self, *, wait: bool = True) -> Warden:
        with self.log_path.open("ab") as log:
            self.process = register(
                subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
                    [
                        str(warden_binary()),
                        "serve",
                        "--config",
                        str(self.config_path),
                        "--log-format",
                        "text",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_warden_env(),
                    cwd=self.config.workdir,
                )
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        def ready() -> bool | None:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"warden serve exited ({self.process.returncode}):\n{self.log()}"
                )
            try:
                return True if self.readyz()[0] == 200 else None
            except httpx2.TransportError:
                return None

        if poll_until(ready, timeout, 0.1)[0] is None:
            raise TimeoutError(f"warden serve not ready within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def readyz(self) -> tuple[int, dict[str, Any]]:
        response = self.http.get(f"{self.url}/readyz", timeout=2.0)
        body: dict[str, Any] = response.json()
        return response.status_code, body

    def metric(self, name: str, **labels: str) -> float:
        """One sample of `/metrics` (0 when absent)."""
        text = self.http.get(f"{self.url}/metrics", timeout=2.0).text
        wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
        pattern = (
            re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)$"
        )
        found = re.search(pattern, text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def admin(
        self, method: str, path: str, body: Any = None, *, timeout: float = CLIENT_TIMEOUT
    ) -> httpx2.Response:
        if self.admin_secret is None:
            raise RuntimeError("this Warden has no admin credential")
        return self.http.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_secret}"},
            timeout=timeout,
        )

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 15 s; the exit code."""
        self.http.close()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def write_jwks_file(workdir: Path, key: SigningKey) -> Path:
    """The test IdP's JWKS as a file, for the tests whose fault is not the IdP."""
    path = workdir / "jwks.json"
    path.write_text(json.dumps(key.jwks()))
    return path


def copy_pack(workdir: Path, name: str = "pack") -> tuple[Path, Path]:
    """An editable copy of the example pack and of its entity file (outside the pack, so a
    replaced pack directory keeps its entities)."""
    pack = workdir / name
    shutil.copytree(PACK_DIR, pack, ignore=shutil.ignore_patterns("tests"))
    entities = workdir / "entities.json"
    shutil.copyfile(PACK_DIR / "entities.json", entities)
    return pack, entities


# ---------------------------------------------------------------------------------------------
# The IdP's JWKS endpoint, switchable: up, down (connections refused) or slow.


class JwksServer:
    """A real HTTP server on 127.0.0.1 that serves one JWKS at `/jwks.json`.

    `down()` closes the listening socket (connections are refused), `up()` listens again on the
    same port, `slow(seconds)` makes every answer wait that long first (bounded; `close()` cuts
    waits short). Answers carry no `Cache-Control`, so Warden refreshes at
    `jwks_refresh_seconds`.
    """

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.body = json.dumps(jwks).encode()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/jwks.json"
        self.delay = 0.0
        self.fetches = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.up()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                if owner.delay > 0:
                    owner._stopping.wait(owner.delay)
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(owner.body)))
                    self.end_headers()
                    self.wfile.write(owner.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def up(self) -> None:
        if self._server is not None:
            return
        self.delay = 0.0
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def slow(self, seconds: float) -> None:
        self.delay = seconds

    def close(self) -> None:
        self._stopping.set()
        self.down()


# ---------------------------------------------------------------------------------------------
# A TCP proxy that can cut one replica from the store (a network partition).


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream`.

    `cut()` is a partition, not a refusal: connections stay open but no byte moves in either
    direction, and new connections are accepted but not forwarded, as when packets are
    dropped. `heal()` resumes forwarding (TCP would deliver what waited). `close()` ends it all.
    """

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self.forwarding = True
        self._pending: list[socket.socket] = []
        self._peers: dict[socket.socket, socket.socket] = {}
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        self.forwarding = False

    def heal(self) -> None:
        self.forwarding = True

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        for sock in [self._listener, *self._pending, *self._peers]:
            with contextlib.suppress(OSError):
                sock.close()

    def _drop(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for each in (sock, peer):
            if each is not None:
                self._peers.pop(each, None)
                with contextlib.suppress(OSError):
                    each.close()

    def _run(self) -> None:
        while not self._closed.is_set():
            if self.forwarding:
                for client in self._pending:
                    try:
                        upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=2)
                    except OSError:
                        client.close()
                        continue
                    self._peers[client] = upstream
                    self._peers[upstream] = client
                self._pending.clear()
                watched = [self._listener, *self._peers]
            else:
                watched = [self._listener]
            try:
                readable, _, _ = select.select(watched, [], [], 0.05)
            except (OSError, ValueError):
                for sock in list(self._peers):
                    if sock.fileno() < 0:
                        self._drop(sock)
                continue
            for sock in readable:
                if sock is self._listener:
                    client, _ = self._listener.accept()
                    self._pending.append(client)
                    continue
                if not self.forwarding or sock not in self._peers:
                    continue
                try:
                    data = sock.recv(65536)
                    if not data:
                        self._drop(sock)
                        continue
                    self._peers[sock].sendall(data)
                except OSError:
                    self._drop(sock)


# ---------------------------------------------------------------------------------------------
# PostgreSQL: a cluster of the tests' own, in a temporary directory, on a free port.


def postgres_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin that has initdb and pg_ctl."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    for bindir in reversed(candidates):
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


class PgCluster:
    """`initdb` + `pg_ctl` on a data directory of its own: trust authentication, loopback TCP
    on a free port, its unix socket in its own directory. As root, the server runs as the
    `postgres` user (initdb refuses root). Stopped with `pg_ctl stop -m immediate` (a crash, as
    far as clients can tell) and started again by the fault tests."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="warden-reliability-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.logfile = self.root / "postgres.log"
        self.port = free_port()
        self.as_user: list[str] = []
        self.sockets.mkdir()
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError(
                    "running as root without runuser: cannot start PostgreSQL as postgres"
                )
            self.as_user = [runuser, "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def _run(self, tool: str, *args: str) -> str:
        result = subprocess.run(  # noqa: S603 - fixed PostgreSQL tools, our arguments
            [*self.as_user, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            cwd=self.root,
        )
        if result.returncode != 0:
            output = f"{result.stdout}{result.stderr}\n{self.log()}"
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n{output}")
        return result.stdout

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")[-4000:] if self.logfile.exists() else ""

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        result = subprocess.run(  # noqa: S603 - a fixed PostgreSQL tool
            [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        return result.returncode == 0

    def createdb(self, name: str) -> str:
        """A new database; its URL for Warden."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def url(self, database: str, port: int | None = None) -> str:
        return f"postgres://postgres@127.0.0.1:{port or self.port}/{database}"

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if self.running():
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Load: threads that send requests until stopped, recording every answer.


@dataclass(frozen=True)
class Answer:
    """One request of the load and what came back."""

    call: str
    target: str
    started: float
    ended: float
    status: int | None
    decision: str | None
    """`allow` or `deny` for a decision (AuthZEN's true/false too), `deny` for a refused
    token; for `/v1/authenticate`, `allow` when it vouched for the token."""
    reason: str | None
    """The reason code, or a problem's `reason`, else its `detail`."""
    revision: str | None
    decision_id: str | None
    error: str | None
    """A transport error (connection refused or reset, timeout): no answer at all."""

    @property
    def latency(self) -> float:
        return self.ended - self.started

    def brief(self) -> str:
        at = f"{self.started:.2f}"
        what = self.error or f"{self.status} {self.decision} {self.reason}"
        return f"{self.call}@{self.target} t={at} {self.latency * 1000:.0f}ms: {what}"


@dataclass(frozen=True)
class Call:
    """One kind of request of the load."""

    name: str
    method: str
    path: str
    body: Any
    headers: dict[str, str]


def check_call(name: str, token: str, action: str, resource_id: str) -> Call:
    body = {"action": action, "resource": {"type": "Document", "id": resource_id}}
    return Call(name, "POST", "/v1/check", body, {"Authorization": f"Bearer {token}"})


def evaluation_call(
    name: str, pep_secret: str, subject_id: str, action: str, resource_id: str
) -> Call:
    body = {
        "subject": {"type": "User", "id": subject_id},
        "action": {"name": action},
        "resource": {"type": "Document", "id": resource_id},
    }
    return Call(
        name, "POST", "/access/v1/evaluation", body, {"Authorization": f"Bearer {pep_secret}"}
    )


def authenticate_call(name: str, token: str) -> Call:
    return Call(name, "POST", "/v1/authenticate", None, {"Authorization": f"Bearer {token}"})


def admin_get_call(name: str, admin_secret: str, path: str) -> Call:
    return Call(name, "GET", path, None, {"Authorization": f"Bearer {admin_secret}"})


def parse_answer(call: Call, target: str, started: float, response: httpx2.Response) -> Answer:
    ended = now()
    status = response.status_code
    try:
        body = response.json() if response.content else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    decision: str | None = None
    reason: str | None = body.get("reason") or body.get("detail")
    revision = body.get("policy_revision")
    decision_id = body.get("decision_id") or response.headers.get("x-decision-id")
    if status == 200 and call.path == "/v1/check":
        decision = body.get("decision")
    elif status == 200 and call.path == "/access/v1/evaluation":
        decision = "allow" if body.get("decision") is True else "deny"
        context = body.get("context") or {}
        reason = context.get("reason")
        decision_id = context.get("decision_id")
    elif status == 200 and call.path == "/v1/authenticate":
        decision = "allow"
    elif status in (401, 403):
        decision = "deny"
    return Answer(
        call.name, target, started, ended, status, decision, reason, revision, decision_id, None
    )


def send(client: httpx2.Client, base_url: str, target: str, call: Call) -> Answer:
    started = now()
    try:
        response = client.request(
            call.method, base_url + call.path, json=call.body, headers=call.headers
        )
    except httpx2.HTTPError as error:
        kind = type(error).__name__
        return Answer(
            call.name, target, started, now(), None, None, None, None, None, f"{kind}: {error}"
        )
    return parse_answer(call, target, started, response)


class Load:
    """`threads` threads, each with its own keep-alive client, sending `calls` round robin to
    `targets` ({name: base URL}) until `stop()` (or `LOAD_MAX_SECONDS`). Every answer is kept."""

    def __init__(
        self, targets: dict[str, str], calls: list[Call], *, threads: int = 4, pause: float = 0.0
    ) -> None:
        self.targets = targets
        self.calls = calls
        self.pause = pause
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, index: int) -> None:
        deadline = now() + LOAD_MAX_SECONDS
        plan = [(target, url, call) for target, url in self.targets.items() for call in self.calls]
        position = index
        with httpx2.Client(timeout=CLIENT_TIMEOUT) as client:
            while not self._stop.is_set() and now() < deadline:
                target, url, call = plan[position % len(plan)]
                position += 1
                answer = send(client, url, target, call)
                with self._lock:
                    self.answers.append(answer)
                if answer.error is not None:
                    # A refused connection returns at once: do not spin.
                    time.sleep(0.02)
                elif self.pause:
                    time.sleep(self.pause)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT + 2)
        with self._lock:
            return sorted(self.answers, key=lambda answer: answer.started)

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)


def between(answers: Iterable[Answer], start: float, end: float = float("inf")) -> list[Answer]:
    """The answers to requests sent at or after `start` and before `end`."""
    return [answer for answer in answers if start <= answer.started < end]


def summary(answers: Iterable[Answer], limit: int = 12) -> str:
    """A few answers in words, for assertion messages."""
    listed = list(answers)
    lines = [answer.brief() for answer in listed[:limit]]
    if len(listed) > limit:
        lines.append(f"… and {len(listed) - limit} more")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The decision log's directory: a tiny tmpfs to fill, or a file made immutable.


class TinyTmpfs:
    """A 1 MiB tmpfs mounted at `path` (root only); `fill()` takes every free byte, `drain()`
    gives it back."""

    def __init__(self, path: Path, size: str = "1m") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(  # noqa: S603 - fixed arguments
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise PermissionError(result.stderr.strip() or "mount failed")
        self.filler = path / "filler.bin"

    def fill(self) -> None:
        """Writes the filler until the file system refuses even one byte more."""
        with self.filler.open("ab", buffering=0) as out:
            for chunk in (65536, 4096, 512, 64, 8, 1):
                while True:
                    try:
                        out.write(b"\0" * chunk)
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break

    def drain(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(  # noqa: S603 - fixed arguments
            ["umount", "-l", str(self.path)],  # noqa: S607
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )


def chattr(path: Path, flag: str) -> bool:
    """`chattr +i`/`-i` on `path`; whether it worked (needs root and a file system that has it)."""
    tool = shutil.which("chattr")
    if tool is None:
        return False
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [tool, flag, str(path)], capture_output=True, timeout=COMMAND_TIMEOUT, check=False
    )
    return result.returncode == 0


@contextlib.contextmanager
def stopped_at_exit(*things: Any) -> Iterator[None]:
    """Stops or closes every thing given when the block ends, whatever happened in it."""
    try:
        yield
    finally:
        for thing in reversed(things):
            closer = getattr(thing, "stop", None) or getattr(thing, "close", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer()
