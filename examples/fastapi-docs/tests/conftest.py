from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from docs_app.main import create_app
from tests.warden_server import WardenServer, free_port, start_warden


@pytest.fixture(scope="session")
def warden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WardenServer]:
    server = start_warden(tmp_path_factory.mktemp("warden"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def warden_with_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WardenServer]:
    """A second Warden, with a store and an admin credential (for revocations)."""
    server = start_warden(tmp_path_factory.mktemp("warden-store"), storage=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'docs.db'}"


@pytest.fixture
def client(warden: WardenServer, database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(warden.url, database_url)) as test_client:
        yield test_client


@pytest.fixture
def client_with_store(warden_with_store: WardenServer, database_url: str) -> Iterator[TestClient]:
    """The app against the Warden that has a store."""
    with TestClient(create_app(warden_with_store.url, database_url)) as test_client:
        yield test_client


@pytest.fixture
def client_without_warden(database_url: str) -> Iterator[TestClient]:
    """The same app and database, configured with a Warden that is not running."""
    with TestClient(
        create_app(f"http://127.0.0.1:{free_port()}", database_url, warden_timeout=1.0)
    ) as test_client:
        yield test_client


@pytest.fixture
def editable_entities(warden: WardenServer) -> Iterator[WardenServer]:
    """Lets a test change Warden's entity data; restores it afterwards."""
    try:
        yield warden
    finally:
        warden.restore_entities()
