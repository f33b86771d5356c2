"""The real `warden serve` for the SDK's live tests (`test_context_token.py`,
`test_jobs_live.py`): a test IdP whose RSA key the tests hold, the example policy pack
(`examples/saas`) with a copy of its entities, a SQLite store, Warden's own issuer (`[tokens]`,
its key-encryption key in a file of the work directory, and the extra audiences a token
exchange may ask for), a decision log (`[audit] dir`), the example app's `[[routes]]` and
`[context_token]`, and the admin calls the tests need (service accounts, revocations,
principal statuses, the decision search). What this is not: a gateway. The tests call
`/v1/forward-auth` themselves, as nginx or Caddy would, and get the context token from its
answer.

Every wait is bounded; `stop` ends the process it started, by its id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parents[3]
PACK_DIR = REPO_ROOT / "examples" / "saas"
IDP_ISSUER = "https://idp.sdk.test"
IDP_AUDIENCE = "warden"
IDP_KID = "sdk-idp-1"
CONTEXT_AUDIENCE = "docs-app"
"""The upstream the tests play: `[context_token] audience`."""
OTHER_AUDIENCE = "billing-app"
"""The audience of the one route that names its own (`/billing/...`): another upstream."""

READY_TIMEOUT_SECONDS = 30.0
COMMAND_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 5.0

# The example app's routes (tests/gateways/stack.py has the same), and one more for another
# upstream: the same action on the same document, under another audience.
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
        "method": "DELETE",
        "path": "/tenants/{tenant}/documents/{id}",
        "action": "delete",
        "resource_type": "Document",
        "resource_id": "id",
        "tenant": "tenant",
    },
    {
        "method": "GET",
        "path": "/billing/{tenant}/documents/{id}",
        "action": "read",
        "resource_type": "Document",
        "resource_id": "id",
        "tenant": "tenant",
        "audience": OTHER_AUDIENCE,
    },
]


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


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _routes_toml() -> str:
    tables = []
    for route in ROUTES:
        lines = ["[[routes]]"] + [f"{key} = {json.dumps(value)}" for key, value in route.items()]
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


@dataclass
class ForwardAuth:
    """What `/v1/forward-auth` answered: the status and the headers for the upstream."""

    status: int
    headers: dict[str, str]

    @property
    def context_token(self) -> str:
        return self.headers["x-warden-context"]

    @property
    def decision_id(self) -> str:
        return self.headers["x-decision-id"]


@dataclass
class LiveWarden:
    """A running `warden serve` and what the tests need to talk to it."""

    url: str
    workdir: Path
    idp_key: rsa.RSAPrivateKey
    admin_secret: str
    process: subprocess.Popen[bytes]

    def mint(
        self,
        sub: str,
        org: str,
        *,
        jti: str | None = None,
        expires_in: int = 300,
        scope: str | None = None,
    ) -> str:
        """An access token of the test IdP (RS256), with a fresh `jti` unless given, and the
        user's scopes in `scope` when given."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": IDP_ISSUER,
            "aud": IDP_AUDIENCE,
            "sub": sub,
            "org_id": org,
            "iat": now - 5,
            "exp": now + expires_in,
            "jti": jti or secrets.token_hex(8),
        }
        if scope is not None:
            payload["scope"] = scope
        return jwt.encode(payload, self.idp_key, algorithm="RS256", headers={"kid": IDP_KID})

    def admin(self, method: str, path: str, body: Any = None) -> httpx2.Response:
        """A call of the admin API with the admin credential."""
        return httpx2.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_secret}"},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )

    def create_service_account(self, tenant: str, owner: str, scopes: list[str]) -> dict[str, Any]:
        """A new service account of `tenant`: the answer, with `client_id` and
        `client_secret`."""
        account = self.admin(
            "POST",
            f"/v1/admin/tenants/{tenant}/service-accounts",
            {
                "name": f"sdk-{secrets.token_hex(4)}",
                "owner": owner,
                "purpose": "SDK tests",
                "scopes": scopes,
                "expires_in_seconds": 3600,
            },
        )
        if account.status_code != 201:
            raise RuntimeError(f"service account refused ({account.status_code}): {account.text}")
        created: dict[str, Any] = account.json()
        return created

    def disable_service_account(self, tenant: str, client_id: str) -> None:
        answer = self.admin(
            "POST",
            f"/v1/admin/tenants/{tenant}/service-accounts/{client_id}/disable",
            {"reason": "SDK test"},
        )
        if answer.status_code != 200:
            raise RuntimeError(f"disable refused ({answer.status_code}): {answer.text}")

    def revoke_subject(self, subject: str) -> None:
        """Revoke every token of the IdP's `subject` issued so far (`kind` `subject`)."""
        answer = self.admin(
            "POST",
            "/v1/admin/revocations",
            {"kind": "subject", "issuer": IDP_ISSUER, "value": subject, "reason": "SDK test"},
        )
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"revocation refused ({answer.status_code}): {answer.text}")

    def set_principal_status(self, tenant: str, principal: str, status: str) -> None:
        """Set a principal's status (`active`, `disabled`, `deleted`), e.g. `User::"acme/bob"`."""
        answer = self.admin(
            "POST",
            f"/v1/admin/tenants/{tenant}/principals/status",
            {"principal": principal, "status": status},
        )
        if answer.status_code != 200:
            raise RuntimeError(f"status refused ({answer.status_code}): {answer.text}")

    def search_decisions(self, principal: str, limit: int = 200) -> list[dict[str, Any]]:
        """`GET /v1/admin/decisions?principal=…`: the principal's decisions, newest first."""
        answer = httpx2.get(
            f"{self.url}/v1/admin/decisions",
            params={"principal": principal, "limit": str(limit), "since": "1h"},
            headers={"Authorization": f"Bearer {self.admin_secret}"},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"decision search refused ({answer.status_code}): {answer.text}")
        body = answer.json()
        found: list[dict[str, Any]] = body["decisions"] if isinstance(body, dict) else body
        return found

    def forward_auth(self, method: str, uri: str, token: str | None) -> ForwardAuth:
        """What a gateway asks for `method uri`: Warden's answer and its upstream headers."""
        headers = {"X-Forwarded-Method": method, "X-Forwarded-Uri": uri}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = httpx2.get(
            f"{self.url}/v1/forward-auth", headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
        )
        return ForwardAuth(
            response.status_code, {name.lower(): value for name, value in response.headers.items()}
        )

    def decisions(self) -> list[dict[str, Any]]:
        """Every decision of the decision log (`[audit] dir`), oldest first; its checkpoints
        (written now and then, whatever the requests) are left out. Warden writes a decision
        before it answers, so a request's decisions are here once it has its answer."""
        records: list[dict[str, Any]] = []
        for path in sorted((self.workdir / "audit").glob("*.jsonl")):
            for line in path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    if record.get("kind") == "decision":
                        records.append(record)
        return sorted(records, key=lambda record: record["seq"])

    def service_account_token(self, tenant: str, owner: str, scopes: list[str]) -> str:
        """An access token Warden itself issued (typ `at+jwt`, signed with the key that signs
        context tokens): a new service account of `tenant`, then `POST /oauth2/token`."""
        created = self.create_service_account(tenant, owner, scopes)
        issued = httpx2.post(
            f"{self.url}/oauth2/token",
            data={"grant_type": "client_credentials", "scope": " ".join(scopes)},
            auth=(created["client_id"], created["client_secret"]),
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        if issued.status_code != 200:
            raise RuntimeError(f"token refused ({issued.status_code}): {issued.text}")
        token: str = issued.json()["access_token"]
        return token

    def log(self) -> str:
        return (self.workdir / "warden.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def warden_config(
    port: int,
    workdir: Path,
    pep_hash: str,
    context_ttl_seconds: int,
    exchange_audiences: list[str] | None = None,
) -> str:
    audiences = (
        f"exchange_audiences = {json.dumps(exchange_audiences)}\n"
        if exchange_audiences is not None
        else ""
    )
    return f"""[server]
listen = "127.0.0.1:{port}"

[policy]
dir = {json.dumps(str(PACK_DIR))}
entities_file = {json.dumps(str(workdir / "entities.json"))}

[peps]
credentials = ["sha256:{pep_hash}"]

[[issuers]]
issuer = "{IDP_ISSUER}"
audiences = ["{IDP_AUDIENCE}"]
algorithms = ["RS256"]
jwks_file = {json.dumps(str(workdir / "jwks.json"))}

[issuers.claims]
tenant = "org_id"

[storage]
url = "sqlite://warden.db"

[tokens]
issuer = "http://127.0.0.1:{port}"
key_encryption_key_file = {json.dumps(str(workdir / "kek.hex"))}
{audiences}
[audit]
dir = "audit"

[context_token]
audience = "{CONTEXT_AUDIENCE}"
ttl_seconds = {context_ttl_seconds}

{_routes_toml()}

[forward_auth]
default = "deny"
"""


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own binary, fixed arguments
        args,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def start_warden(
    workdir: Path, *, context_ttl_seconds: int, exchange_audiences: list[str] | None = None
) -> LiveWarden:
    """Write the configuration into `workdir`, make the admin credential, start Warden and wait
    (bounded) for `/readyz`. `exchange_audiences` is `[tokens] exchange_audiences` (left out
    when None)."""
    idp_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = idp_key.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": IDP_KID, "use": "sig", "alg": "RS256"}
    (workdir / "jwks.json").write_text(
        json.dumps({"keys": [{**jwk, "n": _b64(public.n), "e": _b64(public.e)}]})
    )
    shutil.copyfile(PACK_DIR / "entities.json", workdir / "entities.json")
    (workdir / "kek.hex").write_text(secrets.token_hex(32) + "\n")
    pep_hash = hashlib.sha256(secrets.token_urlsafe(32).encode()).hexdigest()
    port = free_port()
    config = workdir / "warden.toml"
    config.write_text(
        warden_config(port, workdir, pep_hash, context_ttl_seconds, exchange_audiences)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    binary = str(warden_binary())
    init = _run([binary, "admin", "init", "--config", str(config)], env, workdir)
    shown = [line.strip() for line in init.stdout.splitlines() if line.startswith("wdn_admin_")]
    if init.returncode != 0 or len(shown) != 1:
        raise RuntimeError(
            f"warden admin init failed ({init.returncode}):\n{init.stdout}{init.stderr}"
        )
    log_file = workdir / "warden.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [binary, "serve", "--config", str(config), "--log-format", "text"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
        )
    warden = LiveWarden(f"http://127.0.0.1:{port}", workdir, idp_key, shown[0], process)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"warden serve exited ({process.returncode}):\n{warden.log()}")
        try:
            ready = httpx2.get(f"{warden.url}/readyz", timeout=1.0).status_code == 200
            # The signing key is read from the store after start: a context token needs it.
            keys = httpx2.get(f"{warden.url}/.well-known/jwks.json", timeout=1.0)
            if ready and keys.status_code == 200 and keys.json().get("keys"):
                return warden
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    warden.stop()
    raise TimeoutError(f"warden serve not ready in {READY_TIMEOUT_SECONDS} s:\n{warden.log()}")
