"""The processes of the gateway tests, all on loopback, each on a free port: the real
`warden serve` with `[[routes]]`, `[forward_auth]` and `[context_token]` (Warden signs a context
token for the app, audience `docs-app`, with its own key: `[tokens]`), the example FastAPI app
under uvicorn (`gateway_app.py`, `WARDEN_CONTEXT_AUDIENCE=docs-app`), and a real nginx
(`auth_request`) and a real Caddy (`forward_auth`) in front of it. What this is not: a test.
`test_forward_auth.py`, `test_context_token.py` and `test_agreement.py` say what is correct.

Every process started here is registered and killed (its whole process group, by id) by
`kill_leftovers`, a session finalizer in `conftest.py`, if it was not stopped. Every wait is
bounded by one of the timeouts below.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = REPO_ROOT / "examples" / "saas"
APP_DIR = REPO_ROOT / "examples" / "fastapi-docs"
HERE = Path(__file__).resolve().parent
ISSUER = "https://idp.gateways.test"
AUDIENCE = "warden"
KID = "gateways-k1"
CONTEXT_AUDIENCE = "docs-app"
"""The app's name as Warden's upstream: `[context_token] audience`, `WARDEN_CONTEXT_AUDIENCE`."""

READY_TIMEOUT = 30.0
"""Seconds a process gets to answer (warden `/readyz`, the app's `/healthz`, a gateway's port)."""
COMMAND_TIMEOUT = 60.0
"""Seconds a helper command (`warden admin init`, `warden revoke`, `nginx -t`) may take."""
STOP_TIMEOUT = 10.0
"""Seconds a process gets to exit on SIGTERM before its group is killed."""
REQUEST_TIMEOUT = 10.0
"""Seconds one HTTP request of the tests may take."""

# The route table the tests give Warden: the example app's own paths (docs_app/main.py).
ROUTES: list[dict[str, str]] = [
    {
        "method": "GET",
        "path": "/tenants/{tenant}/documents",
        "action": "list",
        "resource_type": "Tenant",
        "resource_id": "tenant",
        "tenant": "tenant",
    },
    {
        "method": "GET",
        "path": "/tenants/{tenant}/documents/{id}",
        "action": "read",
        "resource_type": "Document",
        "resource_id": "id",
        "tenant": "tenant",
    },
    {
        "method": "PATCH",
        "path": "/tenants/{tenant}/documents/{id}",
        "action": "edit",
        "resource_type": "Document",
        "resource_id": "id",
        "tenant": "tenant",
    },
    {
        "method": "DELETE",
        "path": "/tenants/{tenant}/documents/{id}",
        "action": "delete",
        "resource_type": "Document",
        "resource_id": "id",
        "tenant": "tenant",
    },
    {
        "method": "POST",
        "path": "/tenants/{tenant}/documents/{id}/shares",
        "action": "share",
        "resource_type": "Document",
        "resource_id": "id",
        "tenant": "tenant",
    },
]

# ---------------------------------------------------------------------------------------------
# Processes

_live: list[subprocess.Popen[bytes]] = []
_live_lock = threading.Lock()


def spawn(
    args: list[str], *, log_file: Path, env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Starts `args` in a process group of its own (so nginx's workers go with their master),
    output to `log_file`, and registers it for `kill_leftovers`."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments, binaries we chose
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    with _live_lock:
        _live.append(process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group, SIGKILL to the group after `STOP_TIMEOUT`."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    # Whatever is left of the group (nginx workers whose master died, for one).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)


def kill_leftovers() -> None:
    with _live_lock:
        processes = list(_live)
        _live.clear()
    for process in processes:
        stop(process)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(
    what: str,
    probe: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log_file: Path,
    timeout: float = READY_TIMEOUT,
) -> None:
    """Polls `probe` until it is true; raises if `process` exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{read_tail(log_file)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if probe():
                return
        time.sleep(0.1)
    stop(process)
    raise TimeoutError(f"{what} not ready within {timeout} s:\n{read_tail(log_file)}")


def read_tail(path: Path, limit: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    return text[-limit:]


def port_answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1.0):
        return True


def http_status(port: int, path: str) -> int:
    return send(port, "GET", path, timeout=2.0).status


# ---------------------------------------------------------------------------------------------
# HTTP, byte for byte: http.client sends the path exactly as given (no dot-segment removal, no
# re-encoding), which the path tests need.


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def problem_reason(self) -> str | None:
        """The `reason` of a problem+json body, if the body is one."""
        if not self.headers.get("content-type", "").startswith("application/problem+json"):
            return None
        reason = self.json().get("reason")
        return reason if isinstance(reason, str) else None


def send(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    timeout: float = REQUEST_TIMEOUT,
) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent_headers = dict(headers or {})
        payload: bytes | None = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent_headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=sent_headers)
        response = connection.getresponse()
        return Answer(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=response.read(),
        )
    finally:
        connection.close()


# ---------------------------------------------------------------------------------------------
# Tokens: the test IdP's RS256 key, published to Warden as a JWKS file.


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SigningKey:
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwks(self) -> dict[str, Any]:
        public = self.private.public_key().public_numbers()
        key = {"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256"}
        return {"keys": [{**key, "n": _b64(public.n), "e": _b64(public.e)}]}

    def mint(self, sub: str, org: str, *, jti: str | None = None, expires_in: int = 900) -> str:
        issued = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "org_id": org,
            "iat": issued - 5,
            "exp": issued + expires_in,
            "jti": jti or secrets.token_hex(8),
        }
        return jwt.encode(payload, self.private, algorithm="RS256", headers={"kid": KID})


# ---------------------------------------------------------------------------------------------
# Warden


def warden_binary() -> Path:
    configured = os.environ.get("WARDEN_BIN")
    binary = Path(configured) if configured else REPO_ROOT / "target" / "debug" / "warden"
    if not binary.is_file():
        raise RuntimeError(
            f"the warden binary is not at {binary}: build it (cargo build -p warden) "
            "or point WARDEN_BIN at it"
        )
    return binary


def _routes_toml() -> str:
    tables = []
    for route in ROUTES:
        lines = ["[[routes]]"] + [f"{key} = {json.dumps(value)}" for key, value in route.items()]
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def warden_config(port: int, entities_file: Path, pep_hash: str, kek_file: Path) -> str:
    return f"""[server]
listen = "127.0.0.1:{port}"

[policy]
dir = {json.dumps(str(PACK_DIR))}
entities_file = {json.dumps(str(entities_file))}

[peps]
credentials = ["sha256:{pep_hash}"]

[[issuers]]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["RS256"]
jwks_file = "jwks.json"

[issuers.claims]
tenant = "org_id"

[storage]
url = "sqlite://warden.db"

[tokens]
issuer = "http://127.0.0.1:{port}"
key_encryption_key_file = {json.dumps(str(kek_file))}

[audit]
dir = "audit"

[context_token]
audience = "{CONTEXT_AUDIENCE}"

{_routes_toml()}

[forward_auth]
default = "deny"
"""


@dataclass
class Warden:
    port: int
    workdir: Path
    config: Path
    log_file: Path
    admin_secret: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def decisions(self) -> list[dict[str, Any]]:
        """Every record of the decision log (`[audit] dir`), oldest first."""
        records: list[dict[str, Any]] = []
        for path in sorted((self.workdir / "audit").glob("*.jsonl")):
            for line in path.read_text().splitlines():
                if line.strip():
                    records.append(json.loads(line))
        return sorted(records, key=lambda record: record["seq"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`warden <args> --config <its config>` with the admin credential; raises on failure."""
        result = subprocess.run(  # noqa: S603 - our own binary, fixed arguments
            [str(warden_binary()), *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            env={**self.env, "WARDEN_ADMIN_TOKEN": self.admin_secret},
            cwd=self.workdir,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"warden {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result


def start_warden(workdir: Path, key: SigningKey) -> Warden:
    (workdir / "jwks.json").write_text(json.dumps(key.jwks()))
    entities_file = workdir / "entities.json"
    shutil.copyfile(PACK_DIR / "entities.json", entities_file)
    pep_hash = hashlib.sha256(secrets.token_urlsafe(32).encode()).hexdigest()
    # The key that seals Warden's signing keys in the store (never in the configuration).
    kek_file = workdir / "kek.hex"
    kek_file.write_text(secrets.token_hex(32) + "\n")
    port = free_port()
    config = workdir / "warden.toml"
    config.write_text(warden_config(port, entities_file, pep_hash, kek_file))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    init = subprocess.run(  # noqa: S603 - our own binary, fixed arguments
        [str(warden_binary()), "admin", "init", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    shown = [line.strip() for line in init.stdout.splitlines() if line.startswith("wdn_admin_")]
    if init.returncode != 0 or len(shown) != 1:
        raise RuntimeError(
            f"warden admin init failed ({init.returncode}):\n{init.stdout}{init.stderr}"
        )
    log_file = workdir / "warden.log"
    process = spawn(
        [str(warden_binary()), "serve", "--config", str(config), "--log-format", "text"],
        log_file=log_file,
        env=env,
        cwd=workdir,
    )
    warden = Warden(port, workdir, config, log_file, shown[0], env, process)
    wait_until("warden serve", lambda: http_status(port, "/readyz") == 200, process, log_file)
    # A context token needs Warden's signing key, read from the store after the start.
    wait_until(
        "warden's signing key",
        lambda: bool(send(port, "GET", "/.well-known/jwks.json", timeout=2.0).json().get("keys")),
        process,
        log_file,
    )
    return warden


# ---------------------------------------------------------------------------------------------
# The example app


@dataclass
class App:
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    def requests(self) -> list[dict[str, Any]]:
        """Every request that reached the app, oldest first."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def saw(self, request_id: str) -> list[dict[str, Any]]:
        """The requests that reached the app carrying `X-Test-Request-Id: request_id`."""
        return [
            seen
            for seen in self.requests()
            if seen["headers"].get("x-test-request-id") == request_id
        ]


def start_app(workdir: Path, warden: Warden) -> App:
    port = free_port()
    log = workdir / "requests.jsonl"
    log_file = workdir / "uvicorn.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(APP_DIR), str(HERE)]),
        "WARDEN_URL": warden.url,
        "DOCS_DATABASE_URL": f"sqlite:///{workdir / 'docs.db'}",
        "GATEWAY_APP_LOG": str(log),
        "WARDEN_CONTEXT_AUDIENCE": CONTEXT_AUDIENCE,
    }
    process = spawn(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "gateway_app:create",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        log_file=log_file,
        env=env,
        cwd=workdir,
    )
    wait_until("the example app", lambda: http_status(port, "/healthz") == 200, process, log_file)
    return App(port, log, process)


# ---------------------------------------------------------------------------------------------
# The gateways. The configurations below are the ones docs/gateways.md shows; keep them alike.

NGINX_CONF = """\
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
{user}
events {{
    worker_connections 256;
}}

http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    upstream docs_app {{
        server 127.0.0.1:{app_port};
    }}
    upstream warden {{
        server 127.0.0.1:{warden_port};
    }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            auth_request /_warden;
            # What Warden said, for the app (a client cannot set these: they are overwritten,
            # and removed when Warden sent none).
            auth_request_set $warden_principal $upstream_http_x_warden_principal;
            auth_request_set $warden_principal_type $upstream_http_x_warden_principal_type;
            auth_request_set $warden_tenant $upstream_http_x_warden_tenant;
            auth_request_set $warden_decision $upstream_http_x_decision_id;
            auth_request_set $warden_context $upstream_http_x_warden_context;
            proxy_set_header X-Warden-Principal $warden_principal;
            proxy_set_header X-Warden-Principal-Type $warden_principal_type;
            proxy_set_header X-Warden-Tenant $warden_tenant;
            proxy_set_header X-Decision-Id $warden_decision;
            proxy_set_header X-Warden-Context $warden_context;
            # A 401's challenge, passed back to the client.
            auth_request_set $warden_challenge $upstream_http_www_authenticate;
            add_header WWW-Authenticate $warden_challenge always;
            # No URI part: the upstream gets the request URI exactly as the client sent it,
            # the same bytes Warden decided on ($request_uri).
            proxy_pass http://docs_app;
        }}

        location = /_warden {{
            internal;
            proxy_pass http://warden/v1/forward-auth;
            proxy_method GET;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Host $host;
            # Warden reads X-Forwarded-Method/-Uri before X-Original-*: drop a client's own.
            proxy_set_header X-Forwarded-Method "";
            proxy_set_header X-Forwarded-Uri "";
        }}
    }}
}}
"""

CADDYFILE = """\
{{
    admin off
    auto_https off
}}

http://:{port} {{
    bind 127.0.0.1
    # `route` keeps this order (by default Caddy runs request_header after forward_auth).
    route {{
        # Drop what a client sent under these names: copy_headers replaces only the headers
        # Warden's answer has (and some Caddy versions leave a client's own in place).
        request_header -X-Warden-Principal
        request_header -X-Warden-Principal-Type
        request_header -X-Warden-Tenant
        request_header -X-Decision-Id
        request_header -X-Warden-Context
        # Warden reads X-Original-Method/-URI too (nginx sends those): a client's own would make
        # the request ambiguous (400), so drop them.
        request_header -X-Original-Method
        request_header -X-Original-URI
        forward_auth 127.0.0.1:{warden_port} {{
            uri /v1/forward-auth
            copy_headers {{
                X-Warden-Principal
                X-Warden-Principal-Type
                X-Warden-Tenant
                X-Decision-Id
                X-Warden-Context
            }}
        }}
        reverse_proxy 127.0.0.1:{app_port}
    }}
}}
"""


@dataclass
class Gateway:
    name: str
    port: int
    workdir: Path
    log_file: Path
    process: subprocess.Popen[bytes]


class Upstream(Protocol):
    """What a gateway proxies to: the example app, or the echo server of the agreement table."""

    port: int


class _EchoHandler(BaseHTTPRequestHandler):
    server: _EchoServer

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        with self.server.lock:
            self.server.seen.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                }
            )
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


class _EchoServer(ThreadingHTTPServer):
    daemon_threads = True
    lock: threading.Lock
    seen: list[dict[str, Any]]


@dataclass
class Echo:
    """An upstream on loopback that answers 200 `{}` to any request and records it: behind a
    gateway, the answer the client gets is then the gateway's decision (the agreement table),
    and nothing the request does changes the example app's data."""

    server: _EchoServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        port: int = self.server.server_address[1]
        return port

    def saw(self, request_id: str) -> list[dict[str, Any]]:
        with self.server.lock:
            return [
                seen
                for seen in self.server.seen
                if seen["headers"].get("x-test-request-id") == request_id
            ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=STOP_TIMEOUT)


def start_echo() -> Echo:
    server = _EchoServer(("127.0.0.1", 0), _EchoHandler)
    server.lock = threading.Lock()
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    return Echo(server, thread)


def nginx_conf(tmp: Path, port: int, warden_port: int, app_port: int) -> str:
    # As root the master would hand the workers to `nobody`, who cannot enter the test's
    # private temp directory: keep them as the user running the tests.
    user = "user root root;" if os.geteuid() == 0 else ""
    return NGINX_CONF.format(
        tmp=tmp, user=user, port=port, warden_port=warden_port, app_port=app_port
    )


def start_nginx(workdir: Path, binary: str, warden: Warden, app: Upstream) -> Gateway:
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_conf(workdir, port, warden.port, app.port))
    log_file = workdir / "nginx.out"
    # -e: the error log from the start (before the configuration is read), not /var/log/nginx.
    args = [binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")]
    checked = subprocess.run(  # noqa: S603 - the nginx binary, fixed arguments
        [*args, "-t"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t refused the configuration:\n{checked.stderr}")
    process = spawn(
        [*args, "-g", "daemon off;"], log_file=log_file, env=dict(os.environ), cwd=workdir
    )
    wait_until("nginx", lambda: port_answers(port), process, workdir / "error.log")
    return Gateway("nginx", port, workdir, workdir / "error.log", process)


def caddyfile(port: int, warden_port: int, app_port: int) -> str:
    return CADDYFILE.format(port=port, warden_port=warden_port, app_port=app_port)


def start_caddy(workdir: Path, binary: str, warden: Warden, app: Upstream) -> Gateway:
    port = free_port()
    config = workdir / "Caddyfile"
    config.write_text(caddyfile(port, warden.port, app.port))
    log_file = workdir / "caddy.log"
    # Caddy keeps data and autosaved configuration under $HOME / XDG dirs: keep them here.
    env = {
        **os.environ,
        "HOME": str(workdir),
        "XDG_DATA_HOME": str(workdir / "data"),
        "XDG_CONFIG_HOME": str(workdir / "config"),
    }
    process = spawn(
        [binary, "run", "--config", str(config), "--adapter", "caddyfile"],
        log_file=log_file,
        env=env,
        cwd=workdir,
    )
    wait_until("caddy", lambda: port_answers(port), process, log_file)
    return Gateway("caddy", port, workdir, log_file, process)
