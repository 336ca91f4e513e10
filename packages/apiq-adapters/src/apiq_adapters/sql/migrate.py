"""Alembic migrations run from code: `upgrade`, `downgrade`, `current`, `differences`.

The Alembic configuration is built here (script location inside this package), so nothing
needs an `alembic.ini`. Each command runs on one async connection, through `run_sync`, in
one transaction that first takes a migration lock: PostgreSQL's transaction-level advisory
lock, SQLite's `BEGIN IMMEDIATE`. Two processes starting at once (two `apiq serve`) thus
migrate one after the other; the second finds the database at head and does nothing. DDL is
transactional on both backends, so a failed migration leaves the schema as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import AsyncEngine

from apiq.errors import ConfigurationError
from apiq_adapters.sql.engine import is_sqlite, open_engine
from apiq_adapters.sql.errors import storage_errors
from apiq_adapters.sql.tables import metadata

__all__ = ["current", "differences", "downgrade", "include_name", "revision", "upgrade"]

_SCRIPTS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x61706971_6D696772  # "apiqmigr": one advisory lock id for APIQ's migrations

_R = TypeVar("_R")


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Autogenerate's filter: APIQ's tables only, never DBOS's or others in the database."""
    return type_ != "table" or name in metadata.tables


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (creating APIQ's tables when empty).

    Raises:
        ConfigurationError: the URL is malformed or names another backend, or `revision`
            is unknown.
        StorageError: the database failed; nothing of the migration was applied.
    """
    await _locked(url, "upgrade", lambda config: command.upgrade(config, revision))


async def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision` (`base` drops APIQ's tables).

    Raises:
        ConfigurationError, StorageError: as `upgrade`.
    """
    await _locked(url, "downgrade", lambda config: command.downgrade(config, revision))


async def current(url: str) -> str | None:
    """The revision the database at `url` is at, or None when it was never migrated."""

    def read(connection: sa.Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return await _on_connection(url, "current", read, lock=False)


async def differences(url: str) -> list[Any]:
    """What autogenerate finds between the database at `url` and `tables.metadata`.

    Empty when the migrations create exactly what `tables.py` declares; otherwise each item
    is one of Alembic's diff tuples (`("add_table", Table)`, `("add_column", ...)`, ...).
    """

    def compare(connection: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"include_name": include_name, "compare_type": True}
        )
        return list(compare_metadata(context, metadata))

    return await _on_connection(url, "differences", compare, lock=False)


async def revision(url: str, message: str) -> None:
    """Write a new revision into this package from what `tables.py` added since head.

    For APIQ's developers: `url` names a scratch database at head.
    """

    def write(config: Config) -> None:
        command.revision(config, message=message, autogenerate=True)

    await _locked(url, "revision", write)


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


async def _locked(url: str, name: str, run: Callable[[Config], object]) -> None:
    def migrate(connection: sa.Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        run(_config(connection))

    await _on_connection(url, name, migrate, lock=True)


async def _on_connection(
    url: str, name: str, work: Callable[[sa.Connection], _R], *, lock: bool
) -> _R:
    engine = open_engine(url, pool_size=1)
    if is_sqlite(url):
        _sqlite_transactions(engine, begin="BEGIN IMMEDIATE" if lock else "BEGIN")
    try:
        with storage_errors(f"migrate.{name}", engine):
            async with engine.begin() as connection:
                return await connection.run_sync(work)
    except CommandError as exc:
        raise ConfigurationError(f"cannot {name} the database: {exc}") from exc
    finally:
        await engine.dispose()


def _sqlite_transactions(engine: AsyncEngine, *, begin: str) -> None:
    """Let SQLAlchemy, not the sqlite3 module, start transactions, so that DDL is inside one.

    The sqlite3 module opens a transaction only before INSERT/UPDATE/DELETE and runs CREATE
    TABLE outside any; SQLAlchemy's documented recipe turns that off and emits BEGIN itself.
    """

    @sa.event.listens_for(engine.sync_engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(begin)
