"""Starts the real `warden serve` for the tests: a test issuer whose RSA key the tests
generate, the example policy pack with an editable copy of its entities, a PEP credential,
and on request a store (`[storage]`, SQLite) with an admin credential and Warden's own token
issuer (`[tokens]`, for service accounts).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parents[3]
PACK_DIR = REPO_ROOT / "examples" / "saas"
ISSUER = "https://issuer.test.warden.local"
AUDIENCE = "warden"
KID = "test-key-1"
TOKEN_KEY_ENV = "WARDEN_TOKEN_KEY"  # noqa: S105 - the name of the variable, not a key
READY_TIMEOUT_SECONDS = 30.0
RELOAD_TIMEOUT_SECONDS = 15.0
ADMIN_INIT_TIMEOUT_SECONDS = 30.0


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


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks_of(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = key.public_key().public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "kid": kid,
                "use": "sig",
                "alg": "RS256",
                "n": _b64(public.n),
                "e": _b64(public.e),
            }
        ]
    }


@dataclass
class WardenServer:
    """A running `warden serve` and what the tests need to talk to it."""

    url: str
    pep_secret: str
    entities_file: Path
    log_file: Path
    key: rsa.RSAPrivateKey
    process: subprocess.Popen[bytes]
    original_entities: str = field(default="")
    admin_secret: str | None = None
    """The admin credential (`warden admin init`), when started with a store."""

    def mint(
        self,
        sub: str,
        org: str,
        *,
        expires_in: int = 300,
        key: rsa.RSAPrivateKey | None = None,
        issuer: str = ISSUER,
        **claims: Any,
    ) -> str:
        """An RS256 access token of the test issuer."""
        now = int(time.time())
        payload = {
            "iss": issuer,
            "aud": AUDIENCE,
            "sub": sub,
            "org_id": org,
            "iat": now - 5,
            "exp": now + expires_in,
            **claims,
        }
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": KID})

    def revision(self) -> str:
        ready = httpx2.get(f"{self.url}/readyz", timeout=2.0).json()
        revision: str = ready["checks"]["policy"]["revision"]
        return revision

    def successful_reloads(self) -> int:
        """`warden_policy_reloads_total{result="ok"}`: counts every installed snapshot.

        `/readyz`'s revision hashes the policy files only, not the entity data, so a change
        of entities is observed through this counter.
        """
        metrics = httpx2.get(f"{self.url}/metrics", timeout=2.0).text
        found = re.search(r'^warden_policy_reloads_total\{result="ok"\} (\d+)', metrics, re.M)
        return int(found.group(1)) if found else 0

    def write_entities(self, entities: list[dict[str, Any]]) -> None:
        """Replace the entity data and wait (bounded) until Warden serves it."""
        before = self.successful_reloads()
        self.entities_file.write_text(json.dumps(entities, indent=1))
        deadline = time.monotonic() + RELOAD_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.successful_reloads() > before:
                return
            time.sleep(0.1)
        raise TimeoutError(f"Warden did not reload {self.entities_file} within the timeout")

    def entities(self) -> list[dict[str, Any]]:
        loaded: list[dict[str, Any]] = json.loads(self.entities_file.read_text())
        return loaded

    def restore_entities(self) -> None:
        if self.entities_file.read_text() != self.original_entities:
            self.write_entities(json.loads(self.original_entities))

    def revoke(
        self, kind: str, value: str, *, issuer: str | None = ISSUER, reason: str = "test"
    ) -> dict[str, Any]:
        """`POST /v1/admin/revocations` with the admin credential; returns the revocation.

        `issuer` names the issuer of a token, session or subject revocation; give None for a
        client or key revocation. The server applies it before it answers.
        """
        body: dict[str, Any] = {"kind": kind, "value": value, "reason": reason}
        if issuer is not None:
            body["issuer"] = issuer
        return self.admin("POST", "/v1/admin/revocations", body)

    def admin(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, expect: int = 200
    ) -> dict[str, Any]:
        """A call of the admin API with the admin credential; its JSON answer (`{}` if none).

        Raises unless Warden answers `expect`.
        """
        if self.admin_secret is None:
            raise RuntimeError("this Warden has no store: start it with start_warden(storage=True)")
        response = httpx2.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_secret}"},
            timeout=5.0,
        )
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path} refused ({response.status_code}): {response.text}")
        answer: dict[str, Any] = response.json() if response.content else {}
        return answer

    def create_service_account(
        self,
        tenant: str,
        *,
        name: str,
        owner: str,
        scopes: list[str],
        purpose: str = "test workload",
        expires_in_seconds: int = 86400,
        token_ttl_seconds: int | None = None,
    ) -> dict[str, Any]:
        """`POST /v1/admin/tenants/{tenant}/service-accounts`: the account, its `client_id`
        and its first `client_secret` (shown once)."""
        body: dict[str, Any] = {
            "name": name,
            "owner": owner,
            "purpose": purpose,
            "scopes": scopes,
            "expires_in_seconds": expires_in_seconds,
        }
        if token_ttl_seconds is not None:
            body["token_ttl_seconds"] = token_ttl_seconds
        return self.admin("POST", f"/v1/admin/tenants/{tenant}/service-accounts", body, expect=201)

    def service_account(self, tenant: str, client_id: str) -> dict[str, Any]:
        """`GET /v1/admin/tenants/{tenant}/service-accounts/{client_id}`."""
        return self.admin("GET", f"/v1/admin/tenants/{tenant}/service-accounts/{client_id}")

    def disable_service_account(
        self, tenant: str, client_id: str, *, reason: str = "test"
    ) -> dict[str, Any]:
        """`POST …/service-accounts/{client_id}/disable`: every outstanding token is denied
        from the answer on."""
        return self.admin(
            "POST",
            f"/v1/admin/tenants/{tenant}/service-accounts/{client_id}/disable",
            {"reason": reason},
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _admin_init(config: Path, env: dict[str, str]) -> str:
    """`warden admin init`: the admin credential's secret, printed once."""
    result = subprocess.run(  # noqa: S603 - our own binary, fixed arguments
        [str(warden_binary()), "admin", "init", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        cwd=config.parent,
        timeout=ADMIN_INIT_TIMEOUT_SECONDS,
        check=False,
    )
    secrets_shown = [
        line.strip() for line in result.stdout.splitlines() if line.startswith("wdn_admin_")
    ]
    if result.returncode != 0 or len(secrets_shown) != 1:
        raise RuntimeError(
            f"warden admin init failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return secrets_shown[0]


def _storage_config(port: int) -> str:
    """`[storage]` and `[tokens]`: Warden issues service-account tokens under its own URL."""
    return f"""
[storage]
url = "sqlite://warden.db"

[tokens]
issuer = "http://127.0.0.1:{port}"
key_encryption_key_env = "{TOKEN_KEY_ENV}"
"""


def start_warden(
    workdir: Path, *, storage: bool = False, pack_dir: Path = PACK_DIR
) -> WardenServer:
    """Write a config into `workdir`, start Warden, wait (bounded) for /readyz.

    `pack_dir` is the policy pack (the example pack by default); its `entities.json` is
    copied into `workdir` as the editable entity file. With `storage`, the config has a
    SQLite store (`warden.db` in `workdir`), an admin credential is made first
    (`WardenServer.admin_secret`), for the admin API, and Warden issues service-account
    tokens itself (`[tokens]`, issuer = its own URL, the key encryption key a random one in
    the server's environment).
    """
    key = new_rsa_key()
    (workdir / "jwks.json").write_text(json.dumps(jwks_of(key, KID)))
    entities_file = workdir / "entities.json"
    shutil.copyfile(pack_dir / "entities.json", entities_file)
    pep_secret = secrets.token_urlsafe(32)
    pep_hash = hashlib.sha256(pep_secret.encode()).hexdigest()
    port = free_port()
    config = workdir / "warden.toml"
    config.write_text(
        f"""[server]
listen = "127.0.0.1:{port}"

[policy]
dir = {json.dumps(str(pack_dir))}
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
roles = "roles"
"""
        + (_storage_config(port) if storage else "")
    )
    log_file = workdir / "warden.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    if storage:
        env[TOKEN_KEY_ENV] = secrets.token_hex(32)
    admin_secret = _admin_init(config, env) if storage else None
    with log_file.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [str(warden_binary()), "serve", "--config", str(config), "--log-format", "text"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
    server = WardenServer(
        url=f"http://127.0.0.1:{port}",
        pep_secret=pep_secret,
        entities_file=entities_file,
        log_file=log_file,
        key=key,
        process=process,
        original_entities=entities_file.read_text(),
        admin_secret=admin_secret,
    )
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"warden serve exited ({process.returncode}):\n{log_file.read_text()}"
            )
        try:
            if httpx2.get(f"{server.url}/readyz", timeout=1.0).status_code == 200:
                return server
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise TimeoutError(
        f"warden serve not ready in {READY_TIMEOUT_SECONDS}s:\n{log_file.read_text()}"
    )
