"""Fixtures of the gateway tests: one Warden (with `[[routes]]`, a store for revocations, a
decision log and `[context_token]`), one example app, and nginx and Caddy in front of it, for
the whole session; for the agreement table, another nginx and Caddy in front of an echo server
(`stack.Echo`). Every process is killed at the end whatever happened.

Run with the Python SDK's venv, after `bash scripts/test-python.sh` made it:
`cd tests/gateways && ../../clients/python/.venv/bin/python -m pytest -q`, or
`bash scripts/test-gateways.sh`, which also installs nginx and Caddy when they are missing.
`WARDEN_BIN` names the warden binary (default `target/debug/warden`). Without nginx or caddy
on PATH the tests skip, except under `CI=true`, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

import stack


@pytest.fixture(scope="session", autouse=True)
def _kill_leftovers() -> Iterator[None]:
    try:
        yield
    finally:
        stack.kill_leftovers()


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (path for path in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(path, os.X_OK)),
        None,
    )
    if found is None:
        message = (
            f"`{name}` is not installed (bash scripts/test-gateways.sh installs it: "
            f"apt-get install {name})"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _nginx_binary() -> str:
    binary = _binary("nginx")
    modules = subprocess.run(  # noqa: S603 - the nginx binary, fixed argument
        [binary, "-V"], capture_output=True, text=True, timeout=stack.COMMAND_TIMEOUT, check=False
    ).stderr
    if "http_auth_request_module" not in modules:
        message = f"{binary} is built without http_auth_request_module"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def signing_key() -> stack.SigningKey:
    return stack.SigningKey()


@pytest.fixture(scope="session")
def warden(
    tmp_path_factory: pytest.TempPathFactory, signing_key: stack.SigningKey
) -> Iterator[stack.Warden]:
    server = stack.start_warden(tmp_path_factory.mktemp("warden"), signing_key)
    try:
        yield server
    finally:
        stack.stop(server.process)


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory, warden: stack.Warden) -> Iterator[stack.App]:
    started = stack.start_app(tmp_path_factory.mktemp("app"), warden)
    try:
        yield started
    finally:
        stack.stop(started.process)


@pytest.fixture(scope="session")
def nginx(
    tmp_path_factory: pytest.TempPathFactory, warden: stack.Warden, app: stack.App
) -> Iterator[stack.Gateway]:
    binary = _nginx_binary()
    gateway = stack.start_nginx(tmp_path_factory.mktemp("nginx"), binary, warden, app)
    try:
        yield gateway
    finally:
        stack.stop(gateway.process)


@pytest.fixture(scope="session")
def caddy(
    tmp_path_factory: pytest.TempPathFactory, warden: stack.Warden, app: stack.App
) -> Iterator[stack.Gateway]:
    binary = _binary("caddy")
    gateway = stack.start_caddy(tmp_path_factory.mktemp("caddy"), binary, warden, app)
    try:
        yield gateway
    finally:
        stack.stop(gateway.process)


@pytest.fixture(params=["nginx", "caddy"])
def gateway(request: pytest.FixtureRequest) -> stack.Gateway:
    """Each test that takes it runs once through nginx and once through Caddy."""
    chosen: stack.Gateway = request.getfixturevalue(request.param)
    return chosen


@pytest.fixture(scope="session")
def echo() -> Iterator[stack.Echo]:
    server = stack.start_echo()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def echo_gateways(
    tmp_path_factory: pytest.TempPathFactory, warden: stack.Warden, echo: stack.Echo
) -> Iterator[list[stack.Gateway]]:
    """nginx and Caddy, configured as for the app, in front of the echo server: what a client
    gets through them is the gateway's own answer."""
    nginx = stack.start_nginx(tmp_path_factory.mktemp("echo-nginx"), _nginx_binary(), warden, echo)
    try:
        caddy = stack.start_caddy(
            tmp_path_factory.mktemp("echo-caddy"), _binary("caddy"), warden, echo
        )
        try:
            yield [nginx, caddy]
        finally:
            stack.stop(caddy.process)
    finally:
        stack.stop(nginx.process)
