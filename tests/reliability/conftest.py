"""Fixtures of the fault tests (issue #22): the signing key of the test IdP, a PostgreSQL
cluster of the suite's own, and the finalizer that kills any process a test left running.

Run with the Python SDK's venv, after `bash scripts/test-python.sh` made it (it installs
httpx2, pytest, PyJWT and cryptography):
`cd tests/reliability && ../../clients/python/.venv/bin/python -m pytest -q`.
`WARDEN_BIN` names the warden binary (default `target/debug/warden`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import harness


@pytest.fixture(scope="session", autouse=True)
def _kill_leftovers() -> Iterator[None]:
    """Whatever happens in a test, no process it started outlives the session."""
    try:
        yield
    finally:
        harness.kill_leftovers()


@pytest.fixture(autouse=True)
def _kill_after_each_test() -> Iterator[None]:
    try:
        yield
    finally:
        harness.kill_leftovers()


@pytest.fixture(scope="session")
def signing_key() -> harness.SigningKey:
    return harness.SigningKey()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[harness.PgCluster]:
    """A PostgreSQL cluster of the suite's own (its own data directory and port; never the
    machine's server). Each test that needs one makes its own database in it."""
    bindir = harness.postgres_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin"
        )
    if os.geteuid() == 0 and not _user_exists("postgres"):
        pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
    cluster = harness.PgCluster(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
