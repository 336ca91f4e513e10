"""`RedisSpecCache` beyond the contract: Redis expiry, eviction, sharing, and degraded mode.

Degraded mode is tested two ways without ever stopping the machine's Redis: a client
pointed at a closed loopback port, and a `TcpProxy` in front of the real Redis that a test
closes (an outage: open connections cut, new ones refused) and reopens (recovery). Every
test uses its own key prefix and deletes its keys after. Skipped without the redis client.
"""

from __future__ import annotations

import pytest

pytest.importorskip("redis")

import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from apiq.config import CacheSettings
from apiq.errors import ConfigurationError
from apiq.specs.cache import MemorySpecCache
from apiq.testing import make_cached_spec
from apiq_adapters.redis import RedisSpecCache
from tests.server.tcp_proxy import TcpProxy

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
SETTINGS = CacheSettings(ttl_s=3600.0, max_stale_s=3600.0, max_entry_bytes=64 * 1024)
URL = "https://api.example.com/openapi.json"

pytestmark = pytest.mark.anyio


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_client(port: int = REDIS_PORT, *, decode_responses: bool = False) -> Redis:
    """A client of Redis (or of a proxy or dead port) that tries each command once."""
    return Redis(
        host="127.0.0.1",
        port=port,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
        decode_responses=decode_responses,
    )


@pytest.fixture
def prefix() -> str:
    return f"apiq-test:{uuid.uuid4().hex}:"


@pytest.fixture
async def redis(prefix: str) -> AsyncIterator[Redis]:
    """A client of the real Redis; deletes the test's keys after."""
    client = redis_client()
    await client.ping()
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy(REDIS_HOST, REDIS_PORT) as running:
        yield running


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "apiq_adapters.redis" and "unreachable" in r.getMessage()
    ]


async def test_entries_expire_in_redis_after_ttl_plus_max_stale(redis: Redis, prefix: str) -> None:
    cache = RedisSpecCache(redis, SETTINGS, prefix=prefix)
    await cache.put(make_cached_spec(URL, age_s=600))
    (key,) = [key async for key in redis.scan_iter(match=f"{prefix}entry:*")]
    expected_ms = (SETTINGS.ttl_s + SETTINGS.max_stale_s - 600) * 1000
    assert expected_ms - 60_000 < await redis.pttl(key) <= expected_ms


async def test_an_entry_put_past_max_stale_replaces_and_leaves_nothing(
    redis: Redis, prefix: str
) -> None:
    cache = RedisSpecCache(redis, SETTINGS, prefix=prefix)
    await cache.put(make_cached_spec(URL))
    await cache.put(make_cached_spec(URL, age_s=SETTINGS.ttl_s + SETTINGS.max_stale_s + 1))
    assert await cache.get(URL) is None
    assert [key async for key in redis.scan_iter(match=f"{prefix}entry:*")] == []


async def test_beyond_max_entries_the_least_recently_fetched_go(redis: Redis, prefix: str) -> None:
    settings = CacheSettings(ttl_s=3600.0, max_stale_s=3600.0, max_entries=3)
    cache = RedisSpecCache(redis, settings, prefix=prefix)
    for age in (50, 10, 40, 20, 30):
        await cache.put(make_cached_spec(f"https://api.example.com/{age}.json", age_s=age))
    assert [row.url for row in await cache.entries()] == [
        f"https://api.example.com/{age}.json" for age in (10, 20, 30)
    ]
    assert len([key async for key in redis.scan_iter(match=f"{prefix}entry:*")]) == 3
    assert await cache.get("https://api.example.com/50.json") is None


async def test_two_caches_on_one_redis_share_entries(redis: Redis, prefix: str) -> None:
    writer = RedisSpecCache(redis, SETTINGS, prefix=prefix)
    reader = RedisSpecCache(redis, SETTINGS, prefix=prefix)
    await writer.put(make_cached_spec(URL, etag='"shared"'))
    got = await reader.get(URL)
    assert got is not None
    assert got.etag == '"shared"'
    assert await reader.purge(URL) == 1
    assert await writer.get(URL) is None


async def test_a_client_that_decodes_responses_is_refused(prefix: str) -> None:
    client = redis_client(decode_responses=True)
    try:
        with pytest.raises(ConfigurationError, match="decode_responses=False"):
            RedisSpecCache(client, SETTINGS, prefix=prefix)
    finally:
        await client.aclose()


async def test_a_redis_miss_reads_the_fallback_and_purge_all_empties_both(
    redis: Redis, prefix: str
) -> None:
    fallback = MemorySpecCache(SETTINGS)
    cache = RedisSpecCache(redis, SETTINGS, fallback=fallback, prefix=prefix)
    await cache.put(make_cached_spec("https://api.example.com/in-redis.json"))
    await fallback.put(make_cached_spec("https://api.example.com/from-an-outage.json"))
    await fallback.put(make_cached_spec("https://api.example.com/in-redis.json"))
    assert await cache.get("https://api.example.com/from-an-outage.json") is not None
    assert {row.url for row in await cache.entries()} == {
        "https://api.example.com/in-redis.json",
        "https://api.example.com/from-an-outage.json",
    }
    assert await cache.purge() == 2  # distinct URLs, though one was in both
    assert await cache.entries() == []
    assert await fallback.entries() == []


async def test_unreachable_redis_degrades_to_the_fallback(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis_client(closed_port())
    fallback = MemorySpecCache(SETTINGS)
    cache = RedisSpecCache(client, SETTINGS, fallback=fallback, prefix=prefix, retry_s=0.0)
    caplog.set_level(logging.WARNING, logger="apiq_adapters.redis")
    try:
        await cache.put(make_cached_spec(URL))
        assert cache.degraded
        got = await cache.get(URL)
        assert got is not None
        assert got.url == URL
        assert [row.url for row in await cache.entries()] == [URL]
        assert await fallback.get(URL) is not None
        assert await cache.purge(URL) == 1
        assert await cache.get(URL) is None
        await cache.put(make_cached_spec(URL))
        assert await cache.purge() == 1
        assert await fallback.entries() == []
    finally:
        await client.aclose()
    (warning,) = outage_warnings(caplog)  # one per outage, though every call tried Redis
    assert "MemorySpecCache" in warning


async def test_an_outage_degrades_and_recovery_uses_redis_again(
    redis: Redis, prefix: str, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="apiq_adapters.redis")
    client = redis_client(proxy.port)
    fallback = MemorySpecCache(SETTINGS)
    cache = RedisSpecCache(client, SETTINGS, fallback=fallback, prefix=prefix, retry_s=0.0)
    before, during, after = (
        f"https://api.example.com/{n}.json" for n in ("before", "during", "after")
    )
    try:
        await cache.put(make_cached_spec(before))
        await cache.put(make_cached_spec(during))
        assert not cache.degraded

        proxy.close()
        assert await cache.get(before) is None  # held by Redis, out of reach
        assert cache.degraded
        await cache.put(make_cached_spec(during, etag='"outage"'))
        assert await fallback.get(during) is not None
        assert await cache.purge(before) == 0  # only Redis had it: purged there later
        assert len(outage_warnings(caplog)) == 1

        proxy.open()
        assert await cache.get(before) is None  # the purge made during the outage applied
        assert not cache.degraded
        got = await cache.get(during)
        assert got is not None
        assert got.etag == '"v1"'  # Redis answers first again
        await cache.put(make_cached_spec(after))
        assert await fallback.get(after) is None
        assert await RedisSpecCache(redis, SETTINGS, prefix=prefix).get(after) is not None
    finally:
        await client.aclose()
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_after_a_failure_redis_is_skipped_for_retry_s(
    prefix: str, proxy: TcpProxy, redis: Redis
) -> None:
    client = redis_client(proxy.port)
    cache = RedisSpecCache(client, SETTINGS, prefix=prefix, retry_s=3600.0)
    try:
        proxy.close()
        await cache.put(make_cached_spec(URL))
        proxy.open()
        assert cache.degraded  # not tried again yet: the call went to the fallback
        assert await cache.get(URL) is not None
        assert cache.degraded
        assert [key async for key in redis.scan_iter(match=f"{prefix}*")] == []
    finally:
        await client.aclose()
