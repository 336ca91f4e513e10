"""Fixtures of the server suite: one `apiq serve` process per database backend.

Every test in tests/server runs twice, against a server on SQLite and one on PostgreSQL
(`server` is parametrized). The servers live for the session; each test registers its
own users, so tests stay isolated from each other the way real tenants are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from apiq.testing.petstore import PetstoreService
from tests.server.harness import Api, ServerProcess, login, register, scratch_postgres

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def petstore_upstream() -> Iterator[PetstoreService]:
    """The Petstore API on loopback, shared by every server of the session."""
    with PetstoreService() as service:
        yield service


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    petstore_upstream: PetstoreService,
) -> Iterator[ServerProcess]:
    """A running server on SQLite or PostgreSQL; its first user is the admin."""
    backend: str = request.param
    folder = tmp_path_factory.mktemp(f"server-{backend}")
    with _database(backend, folder) as database_url:
        process = ServerProcess(
            env={
                "APIQ_DATABASE_URL": database_url,
                "APIQ_KEY_FILE": str(folder / "master.key"),
                "APIQ_EGRESS_ALLOW": f"127.0.0.1:{petstore_upstream.port}",
                "APIQ_MODE": "development",
                "APIQ_RATE_LIMIT_PER_MINUTE": "100000",
            },
            log_path=folder / "server.log",
        ).start()
        try:
            register(process.base_url, "admin@example.com").client.close()
            yield process
        finally:
            process.stop()


@contextmanager
def _database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'apiq.sqlite'}"
        return
    with scratch_postgres() as url:
        yield url


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[Api]:
    """The server's first user (ADMIN)."""
    with login(server.base_url, "admin@example.com") as api:
        yield api


@pytest.fixture
def alice(server: ServerProcess) -> Iterator[Api]:
    """A fresh USER."""
    with register(server.base_url) as api:
        yield api


@pytest.fixture
def bob(server: ServerProcess) -> Iterator[Api]:
    """Another fresh USER (for isolation tests)."""
    with register(server.base_url) as api:
        yield api


@pytest.fixture
def auditor(server: ServerProcess, admin: Api) -> Iterator[Api]:
    """A fresh user whose role the admin set to AUDITOR."""
    with register(server.base_url) as user:
        admin.data("PATCH", f"/api/admin/users/{user.user['id']}", json={"role": "AUDITOR"})
    with login(server.base_url, user.user["email"]) as api:
        yield api


@pytest.fixture
def anonymous(server: ServerProcess) -> Iterator[Api]:
    """A client that is not logged in."""
    with Api(server.base_url) as api:
        yield api
