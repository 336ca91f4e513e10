"""One database URL, two drivers: async SQLAlchemy for APIQ's tables, sync for DBOS.

Users write `sqlite:///apiq.sqlite` or `postgresql://user@host/db`; `async_url` picks
aiosqlite or psycopg (async), `sync_url` the plain drivers. SQLite files run in WAL mode
with a busy timeout, so readers never block the writer and a short write burst waits
instead of failing with "database is locked".
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from apiq.errors import ConfigurationError

__all__ = ["DEFAULT_DATABASE_URL", "SQLITE_BUSY_TIMEOUT_MS", "async_url", "open_engine", "sync_url"]

DEFAULT_DATABASE_URL = "sqlite:///apiq.sqlite"
"""The embedded default: a SQLite file in the working directory."""
SQLITE_BUSY_TIMEOUT_MS = 5_000
"""How long a SQLite writer waits for another before giving up."""

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _backend(url: str) -> tuple[str, sa.URL]:
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise ConfigurationError(
            f"database URL is not valid ({exc}); use sqlite:///file.sqlite or "
            "postgresql://user@host:5432/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ConfigurationError(
            f"database backend {backend!r} is not supported; use sqlite:///file.sqlite or "
            "postgresql://user@host:5432/db"
        )
    return backend, parsed


def async_url(url: str) -> str:
    """`url` with the async driver APIQ uses for its own tables."""
    backend, parsed = _backend(url)
    return parsed.set(drivername=_ASYNC_DRIVERS[backend]).render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """`url` with the synchronous driver (DBOS, Alembic)."""
    backend, parsed = _backend(url)
    return parsed.set(drivername=_SYNC_DRIVERS[backend]).render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    """Whether `url` names a SQLite database."""
    return _backend(url)[0] == "sqlite"


def open_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine for `url` (SQLite in WAL mode with a busy timeout, or PostgreSQL).

    The caller owns the engine and disposes of it.

    Raises:
        ConfigurationError: The URL is malformed or names another backend.
    """
    options: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        options.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    engine = create_async_engine(async_url(url), **options)
    if is_sqlite(url):
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
