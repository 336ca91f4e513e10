"""Real SQLite and PostgreSQL databases for the tests of `apiq_adapters.sql`.

A test module builds its fixtures from these (see tests/adapters/test_sql_approvals.py):
`migrated_database(backend, tmp_path_factory)` gives one migrated database per module — a
SQLite file, or a scratch PostgreSQL database (`apiq_sql_test_<hex>`, dropped afterwards) —
and `empty_engine(url)` an engine on it with every APIQ table emptied, for one test.

PostgreSQL is `APIQ_TEST_POSTGRES_URL` (default `postgresql://postgres@127.0.0.1:5432/postgres`).
When it does not answer, its tests skip saying why, unless `APIQ_REQUIRE_SERVICES` is set
(CI), which makes that a failure.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager

import anyio
import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncEngine

from apiq_adapters.sql import migrate, open_engine
from apiq_adapters.sql.tables import metadata

__all__ = [
    "BACKENDS",
    "POSTGRES",
    "aiosqlite_threads_stopped",
    "blank_database",
    "empty_engine",
    "migrated_database",
]

BACKENDS = ["sqlite", "postgresql"]
POSTGRES = os.environ.get("APIQ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_server() -> str:
    """The server URL; skips (or fails under `APIQ_REQUIRE_SERVICES`) when it does not answer."""
    try:
        psycopg.connect(POSTGRES, connect_timeout=3, autocommit=True).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is unreachable at {POSTGRES} ({exc}); set APIQ_TEST_POSTGRES_URL"
        if os.environ.get("APIQ_REQUIRE_SERVICES"):
            pytest.fail(f"{reason}; APIQ_REQUIRE_SERVICES makes that a failure")
        pytest.skip(reason)
    return POSTGRES


@contextmanager
def blank_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a new, empty database of `backend`, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sql') / 'apiq.sqlite'}"
        return
    server = postgres_server()
    name = f"apiq_sql_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def migrated_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a new database of `backend` migrated to head, removed afterwards."""
    with blank_database(backend, tmp_path_factory) as url:
        # A thread of its own: module fixtures are synchronous, and the event loop of the
        # tests must not be nested in or replaced.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(anyio.run, migrate.upgrade, url).result()
        yield url


@asynccontextmanager
async def empty_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `url` with every APIQ table emptied first; disposed of afterwards."""
    engine = open_engine(url)
    try:
        async with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(sa.delete(table))
        yield engine
    finally:
        await engine.dispose()


async def aiosqlite_threads_stopped() -> None:
    """Wait until aiosqlite's worker threads have ended, while the event loop still runs.

    When a SQLite file cannot be opened, aiosqlite stops the connection's worker thread
    without waiting for it; the thread then reports to the event loop, and raises in the
    thread if the test's loop closed first (omnilib/aiosqlite#389). Tests that make a
    connection fail call this before they end.
    """
    for _ in range(1000):
        if not any(t.name.endswith("(_connection_worker_thread)") for t in threading.enumerate()):
            return
        await anyio.sleep(0.01)
