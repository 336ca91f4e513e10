"""The SpecCache, SecretStore and AuditSink contracts over the SQL adapters.

Each suite runs on SQLite (a file) and on PostgreSQL (a scratch database for this module);
the tables are emptied before every test. Skipped where SQLAlchemy is not installed (the
`tests-core` session installs core alone).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

pytest.importorskip("sqlalchemy")

from sqlalchemy.ext.asyncio import AsyncEngine

from apiq.config import CacheSettings
from apiq.ports import AuditSink, SecretStore, SpecCache
from apiq.secrets import KeyRing
from apiq.testing import AuditSinkContract, SecretStoreContract, SpecCacheContract
from apiq_adapters.sql import SqlAuditSink, SqlSecretStore, SqlSpecCache
from tests.adapters.sql_backends import BACKENDS, empty_engine, migrated_database


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with migrated_database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with empty_engine(database_url) as engine:
        yield engine


class TestSqlSpecCache(SpecCacheContract):
    @pytest.fixture
    def spec_cache(self, engine: AsyncEngine, contract_settings: CacheSettings) -> SpecCache:
        return SqlSpecCache(engine, contract_settings)


class TestSqlSecretStore(SecretStoreContract):
    @pytest.fixture
    def open_secret_store(self, engine: AsyncEngine) -> Callable[[KeyRing], SecretStore]:
        return lambda keyring: SqlSecretStore(engine, keyring)


class TestSqlAuditSink(AuditSinkContract):
    @pytest.fixture
    def audit_sink(self, engine: AsyncEngine) -> AuditSink:
        return SqlAuditSink(engine)
