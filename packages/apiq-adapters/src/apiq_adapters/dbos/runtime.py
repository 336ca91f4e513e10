"""DBOS's process-wide lifecycle: the database engine(s), launch and shutdown.

DBOS is a singleton per process. `launch_dbos` is called on the event loop's own thread on
purpose: DBOS then runs the async workflows it dequeues or recovers on this loop, beside
the `Outbound` client they use (an httpx client must stay on the loop that created it).

SQLite: DBOS does not set a journal mode, so the file is switched to WAL here (persistent
in the file) and DBOS is handed an engine configured like its own (IMMEDIATE transactions,
a 30 s busy timeout, foreign keys) plus `synchronous`. APIQ's tables share that engine.
PostgreSQL: DBOS builds its engine from the URL (creating the database if needed); APIQ's
tables get a small engine of their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from importlib.metadata import version
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig

from apiq.errors import ConfigurationError
from apiq_adapters.dbos.settings import DbosSettings
from apiq_adapters.dbos.workflow import WORKFLOW_REVISION

__all__ = ["application_version", "build_engine", "destroy_dbos", "launch_dbos"]


def application_version() -> str:
    """The DBOS application version: processes recover each other's workflows only when
    they agree on it (APIQ's version plus the workflow's revision)."""
    return f"apiq-{version('apiq-core')}-wf{WORKFLOW_REVISION}"


def _sqlite_path(url: str) -> Path:
    path = sa.make_url(url).database
    if not path or path == ":memory:":
        raise ConfigurationError(
            f"{url!r} names no SQLite file; DBOS needs one (sqlite:///apiq-executions.sqlite)"
        )
    return Path(path)


def build_engine(settings: DbosSettings) -> sa.Engine:
    """The engine for APIQ's execution tables (and, on SQLite, for DBOS as well)."""
    if not settings.is_sqlite:
        url = sa.make_url(settings.database_url).set(drivername="postgresql+psycopg")
        return sa.create_engine(
            url, pool_size=max(2, settings.pool_size // 4), max_overflow=0, pool_pre_ping=True
        )
    path = _sqlite_path(settings.database_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:  # WAL sticks to the file once set
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise ConfigurationError(f"SQLite refused WAL mode for {path} (got {mode!r})")
    engine = sa.create_engine(
        f"sqlite:///{path}", pool_size=settings.pool_size, max_overflow=0, pool_timeout=30
    )
    synchronous = settings.sqlite_synchronous.upper()

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = "IMMEDIATE"  # as DBOS's own engine: writers queue up
        dbapi_conn.execute("PRAGMA busy_timeout=30000")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")

    return engine


def launch_dbos(settings: DbosSettings, engine: sa.Engine, executor_id: str) -> None:
    """Configure and launch DBOS in this process (blocks the calling loop while it
    migrates its tables, typically 50-300 ms)."""
    config: DBOSConfig = {
        "name": settings.app_name,
        "system_database_url": settings.database_url,
        "executor_id": executor_id,
        "application_version": application_version(),
        "log_level": settings.log_level,
        "sys_db_pool_size": settings.pool_size,
        "notification_listener_polling_interval_sec": 0.1,
    }
    if settings.is_sqlite:
        config["system_database_engine"] = engine
    DBOS(config=config)
    try:
        # A process that is not a worker dequeues nothing but DBOS's internal queue.
        DBOS.listen_queues([settings.queue_name] if settings.worker else [])
        DBOS.launch()
    except BaseException:
        DBOS.destroy()
        raise


def destroy_dbos() -> None:
    """Shut DBOS down (from a worker thread: DBOS joins threads that may need the loop)."""
    DBOS.destroy()


def restore_default_executor(loop: asyncio.AbstractEventLoop) -> None:
    """DBOS made its (now shut down) thread pool the loop's default executor; give the loop
    a fresh one so that `run_in_executor(None, ...)` (DNS lookups) works after DBOS left."""
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor())
