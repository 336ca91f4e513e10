"""The SpecCache contract over `RedisSpecCache`, on the machine's real Redis (127.0.0.1:6379).

Each test gets its own key prefix and deletes its keys after. The fallback is an empty
`MemorySpecCache` that must stay empty: the contract has to hold on Redis itself, not on
the fallback. Skipped where the redis client is not installed (`tests-core`).
"""

from __future__ import annotations

import pytest

pytest.importorskip("redis")

import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from apiq.config import CacheSettings
from apiq.ports import SpecCache
from apiq.specs.cache import MemorySpecCache
from apiq.testing import SpecCacheContract
from apiq_adapters.redis import RedisSpecCache

REDIS_URL = "redis://127.0.0.1:6379/0"


class TestRedisSpecCache(SpecCacheContract):
    @pytest.fixture
    async def spec_cache(self, contract_settings: CacheSettings) -> AsyncIterator[SpecCache]:
        client = Redis.from_url(REDIS_URL)
        prefix = f"apiq-test:{uuid.uuid4().hex}:"
        fallback = MemorySpecCache(contract_settings)
        cache = RedisSpecCache(client, contract_settings, fallback=fallback, prefix=prefix)
        try:
            await client.ping()
            yield cache
            assert not cache.degraded, "Redis failed during the test: the fallback served"
            assert await fallback.entries() == []
        finally:
            async for key in client.scan_iter(match=f"{prefix}*"):
                await client.delete(key)
            await client.aclose()
