"""Alembic migrations of `apiq_adapters.sql`, from code, on SQLite and PostgreSQL.

Up from empty and back down both ways, autogenerate finds no difference between the
migrated database and `tables.metadata` (so tables.py and the revisions never drift), two
processes migrating at once do not collide, a failed migration leaves nothing behind, and
tables that are not APIQ's (DBOS's) are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

import apiq_adapters.sql
from apiq.errors import ConfigurationError
from apiq_adapters.sql import StorageError, migrate, open_engine
from apiq_adapters.sql.tables import metadata
from tests.adapters.sql_backends import BACKENDS, aiosqlite_threads_stopped, blank_database

pytestmark = pytest.mark.anyio

MIGRATIONS = Path(apiq_adapters.sql.__file__).parent / "migrations"
APIQ_TABLES = set(metadata.tables)


@pytest.fixture(params=BACKENDS)
def blank_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with blank_database(request.param, tmp_path_factory) as url:
        yield url


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


async def table_names(url: str) -> set[str]:
    engine = open_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_creates_exactly_what_tables_py_declares(blank_url: str) -> None:
    assert await migrate.current(blank_url) is None
    await migrate.upgrade(blank_url)
    assert await migrate.current(blank_url) == head_revision()
    assert await table_names(blank_url) == APIQ_TABLES | {"alembic_version"}
    assert await migrate.differences(blank_url) == []


async def test_downgrade_to_base_drops_everything_and_upgrade_runs_again(blank_url: str) -> None:
    await migrate.upgrade(blank_url)
    await migrate.downgrade(blank_url)
    assert await migrate.current(blank_url) is None
    assert await table_names(blank_url) == {"alembic_version"}
    await migrate.upgrade(blank_url)
    assert await migrate.current(blank_url) == head_revision()
    assert await migrate.differences(blank_url) == []


async def test_differences_notice_drift(blank_url: str) -> None:
    await migrate.upgrade(blank_url)
    engine = open_engine(blank_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP INDEX ix_apiq_audit_log_actor_at"))
            await conn.execute(sa.text("ALTER TABLE apiq_users ADD COLUMN nickname TEXT"))
    finally:
        await engine.dispose()
    kinds = sorted(diff[0] for diff in await migrate.differences(blank_url))
    assert kinds == ["add_index", "remove_column"]


async def test_two_processes_migrating_at_once_do_not_collide(blank_url: str) -> None:
    # Each call opens its own engine, as two `apiq serve` starting together would.
    async with anyio.create_task_group() as group:
        for _ in range(2):
            group.start_soon(migrate.upgrade, blank_url)
    assert await migrate.current(blank_url) == head_revision()
    assert await migrate.differences(blank_url) == []


async def test_upgrade_again_is_a_no_op(blank_url: str) -> None:
    await migrate.upgrade(blank_url)
    await migrate.upgrade(blank_url)
    assert await migrate.current(blank_url) == head_revision()


async def test_a_failed_migration_leaves_nothing_behind(blank_url: str) -> None:
    # apiq_users exists already, so creating it fails after several other tables were made.
    engine = open_engine(blank_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE apiq_users (legacy INTEGER)"))
    finally:
        await engine.dispose()
    with pytest.raises(StorageError, match="could not be migrated") as caught:
        await migrate.upgrade(blank_url)
    assert caught.value.operation == "migrate.upgrade"
    assert not caught.value.transient
    assert await migrate.current(blank_url) is None
    assert await table_names(blank_url) == {"apiq_users"}


async def test_tables_of_others_are_left_alone(blank_url: str) -> None:
    engine = open_engine(blank_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE dbos_like_table (id INTEGER PRIMARY KEY)"))
    finally:
        await engine.dispose()
    await migrate.upgrade(blank_url)
    assert await migrate.differences(blank_url) == []
    await migrate.downgrade(blank_url)
    assert await table_names(blank_url) == {"alembic_version", "dbos_like_table"}


async def test_an_unknown_revision_is_a_configuration_error(blank_url: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot upgrade"):
        await migrate.upgrade(blank_url, "no-such-revision")
    assert await migrate.current(blank_url) is None


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_unreachable_database_is_a_transient_storage_error(
    backend: str, tmp_path: Path
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'missing-dir' / 'apiq.sqlite'}"
        if backend == "sqlite"
        else "postgresql://postgres@127.0.0.1:1/apiq?connect_timeout=3"  # nothing listens
    )
    with pytest.raises(StorageError) as caught:
        await migrate.upgrade(url)
    await aiosqlite_threads_stopped()
    assert (caught.value.transient, caught.value.backend) == (True, backend)
    assert "could not be migrated" in str(caught.value)


def test_the_revisions_form_one_line_from_base() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert len(scripts.get_heads()) == 1
    chain = list(scripts.walk_revisions())
    assert chain[-1].down_revision is None
    assert chain[-1].revision == "0001"
