"""`RedisSpecCache`: fetched specs kept gzip-compressed in Redis, shared by every process.

The same rules as `apiq.specs.cache.MemorySpecCache`: an entry lives `ttl_s + max_stale_s`
past its `fetched_at` (fresh, then stale but available), documents over `max_entry_bytes`
are refused with `SpecTooLarge`, and `max_entries` bounds the count (the least recently
*fetched* go first, as in `SqlSpecCache`, so that a read never writes).

Layout under `prefix`: one hash per entry at `<prefix>entry:<sha256 of the URL>`, which
Redis itself expires at `fetched_at + ttl_s + max_stale_s`, and a sorted set `<prefix>index`
of those hashes scored by `fetched_at`, for listing, eviction and purging. Writes are
MULTI/EXEC transactions or Lua scripts, so a reader never sees half an entry. The scripts
touch keys they derive from the index, so this targets a single Redis (or a primary with
replicas), not Redis Cluster.

Degraded mode: while Redis is unreachable (`REDIS_DOWN_ERRORS`), calls go to `fallback`
(the server passes its `SqlSpecCache`; a process-local `MemorySpecCache` otherwise) and one
warning is logged per outage. A Redis miss also reads the fallback, so entries written
during an outage still serve after it. `purge` always purges both; a purge made while Redis
is down is remembered and applied to Redis by this process's first call after the outage.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Literal, TypeVar, cast

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from apiq.config import CacheSettings
from apiq.egress.policy import display_url
from apiq.errors import ConfigurationError, SpecTooLarge
from apiq.models import CachedSpec, SpecCacheEntry
from apiq.specs.cache import MemorySpecCache
from apiq_adapters.redis.outage import REDIS_DOWN_ERRORS, RedisOutage

if TYPE_CHECKING:
    from apiq.ports import SpecCache

__all__ = ["RedisSpecCache"]

_DEFAULT_SETTINGS = CacheSettings()
_T = TypeVar("_T")


class _Down(Enum):
    DOWN = "down"


# Drops the oldest entries beyond ARGV[2]; KEYS[1] is the index, ARGV[1] the entry prefix.
_EVICT = """
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if excess <= 0 then return 0 end
local victims = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
for _, member in ipairs(victims) do
  redis.call('DEL', ARGV[1] .. member)
  redis.call('ZREM', KEYS[1], member)
end
return #victims
"""

# Drops every entry fetched at or before ARGV[2]; returns the URLs of those still alive.
_PURGE_ALL = """
local purged = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])) do
  local url = redis.call('HGET', ARGV[1] .. member, 'url')
  if url then purged[#purged + 1] = url end
  redis.call('DEL', ARGV[1] .. member)
  redis.call('ZREM', KEYS[1], member)
end
return purged
"""


def _url_hash(url: str) -> str:
    """The key part of `url`: sha256 hex of its UTF-8 bytes (lone surrogates escaped)."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


class RedisSpecCache:
    """SpecCache in Redis, shared by every process that uses the same Redis and prefix.

    Args:
        client: a `redis.asyncio.Redis` with `decode_responses=False`; borrowed, the caller
            closes it.
        settings: `ttl_s` and `max_stale_s` bound an entry's life, `max_entry_bytes` the
            largest document accepted, `max_entries` the number of entries kept.
        fallback: serves while Redis is unreachable; a `MemorySpecCache` when None.
        prefix: the start of every key this cache writes; distinct caches need distinct ones.
        retry_s: after a failure, seconds during which Redis is not tried again.
        clock: seconds since the epoch; inject a fake one in tests.

    Raises:
        ConfigurationError: the client decodes responses (documents are bytes).
    """

    def __init__(
        self,
        client: Redis,
        settings: CacheSettings = _DEFAULT_SETTINGS,
        *,
        fallback: SpecCache | None = None,
        prefix: str = "apiq:spec:",
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ConfigurationError(
                "RedisSpecCache needs a Redis client with decode_responses=False: "
                "cached documents are bytes"
            )
        self._client = client
        self._settings = settings
        self._fallback: SpecCache = fallback if fallback is not None else MemorySpecCache(settings)
        self._prefix = prefix
        self._index = f"{prefix}index"
        self._clock = clock
        self._outage = RedisOutage(
            f"the spec cache (serving from {type(self._fallback).__name__})", retry_s=retry_s
        )
        self._evict = client.register_script(_EVICT)
        self._purge_all = client.register_script(_PURGE_ALL)
        self._pending_urls: set[str] = set()
        self._pending_all_at: float | None = None

    def __repr__(self) -> str:
        return f"RedisSpecCache(prefix={self._prefix!r}, fallback={self._fallback!r})"

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and the fallback serves."""
        return self._outage.down

    async def get(self, url: str) -> CachedSpec | None:
        """The entry for `url`, fresh or stale, until `ttl_s + max_stale_s` have passed."""
        entry = await self._on_redis(lambda: self._redis_get(url))
        if isinstance(entry, CachedSpec):
            return entry
        return await self._fallback.get(url)

    async def put(self, entry: CachedSpec) -> None:
        """Store or replace the entry for `entry.url` (in the fallback while Redis is down).

        Raises:
            SpecTooLarge: the document is larger than `settings.max_entry_bytes`.
        """
        limit = self._settings.max_entry_bytes
        if entry.size_bytes > limit:
            shown = display_url(entry.url)
            raise SpecTooLarge(
                f"{shown} is {entry.size_bytes} bytes, more than the cache accepts "
                f"({limit}, CacheSettings.max_entry_bytes); it was not cached",
                source=shown,
                limit=limit,
                size=entry.size_bytes,
            )
        if await self._on_redis(lambda: self._redis_put(entry)) is _Down.DOWN:
            await self._fallback.put(entry)

    async def entries(self) -> Sequence[SpecCacheEntry]:
        """Every live entry, most recently fetched first, with its remaining TTL.

        Entries only the fallback holds (written during an outage) are listed too.
        """
        rows = await self._on_redis(self._redis_entries)
        listed = [] if rows is _Down.DOWN else list(rows)
        known = {row.url for row in listed}
        listed += [row for row in await self._fallback.entries() if row.url not in known]
        listed.sort(key=lambda row: row.fetched_at, reverse=True)
        return listed

    async def purge(self, url: str | None = None) -> int:
        """Drop `url`'s entry, or all entries when `url` is None, from Redis and the fallback.

        Returns how many URLs had a live entry in either. While Redis is down, the purge is
        applied to the fallback now and to Redis by this process when Redis answers again.
        """
        if url is None:
            fallback_urls = {row.url for row in await self._fallback.entries()}
            await self._fallback.purge()
            purged = await self._on_redis(lambda: self._redis_purge_all("+inf"))
            if purged is _Down.DOWN:
                self._pending_all_at = self._clock()
                self._pending_urls.clear()
                return len(fallback_urls)
            return len(purged | fallback_urls)
        in_fallback = await self._fallback.purge(url)
        in_redis = await self._on_redis(lambda: self._redis_purge(url))
        if in_redis is _Down.DOWN:
            self._pending_urls.add(url)
            return min(1, in_fallback)
        return min(1, in_fallback + in_redis)

    async def _on_redis(self, work: Callable[[], Awaitable[_T]]) -> _T | Literal[_Down.DOWN]:
        """`work`'s result, or DOWN when Redis is (or just turned out to be) unreachable."""
        if not self._outage.should_try():
            return _Down.DOWN
        try:
            await self._apply_pending_purges()
            result = await work()
        except REDIS_DOWN_ERRORS as exc:
            self._outage.failed(exc)
            return _Down.DOWN
        self._outage.succeeded()
        return result

    async def _apply_pending_purges(self) -> None:
        if self._pending_all_at is not None:
            # Only what was fetched before the purge: newer entries came after it.
            await self._redis_purge_all(repr(self._pending_all_at))
            self._pending_all_at = None
        while self._pending_urls:
            url = next(iter(self._pending_urls))
            await self._redis_purge(url)
            self._pending_urls.discard(url)

    def _key(self, url: str) -> str:
        return f"{self._prefix}entry:{_url_hash(url)}"

    def _oldest_alive(self) -> float:
        """`fetched_at` of the oldest entry still alive (fresh or within max-stale)."""
        return self._clock() - (self._settings.ttl_s + self._settings.max_stale_s)

    async def _redis_get(self, url: str) -> CachedSpec | None:
        fields = cast("dict[bytes, bytes]", await self._client.hgetall(self._key(url)))
        if not fields or fields[b"url"].decode("utf-8", "surrogatepass") != url:
            return None
        if float(fields[b"fetched_ts"]) <= self._oldest_alive():
            return None  # Redis expires it by its own clock; this process's clock decides
        media_type, etag = fields.get(b"media_type"), fields.get(b"etag")
        return CachedSpec(
            url=url,
            compressed=fields[b"compressed"],
            size_bytes=int(fields[b"size_bytes"]),
            digest=fields[b"digest"].decode(),
            fetched_at=datetime.fromisoformat(fields[b"fetched_at"].decode()),
            media_type=None if media_type is None else media_type.decode(),
            etag=None if etag is None else etag.decode(),
        )

    async def _redis_put(self, entry: CachedSpec) -> None:
        key, member = self._key(entry.url), _url_hash(entry.url)
        fetched_ts = entry.fetched_at.timestamp()
        lifetime = self._settings.ttl_s + self._settings.max_stale_s
        fields: dict[FieldT, EncodableT] = {
            "url": entry.url.encode("utf-8", "surrogatepass"),
            "compressed": entry.compressed,
            "size_bytes": str(entry.size_bytes),
            "digest": entry.digest,
            "fetched_at": entry.fetched_at.isoformat(),
            "fetched_ts": repr(fetched_ts),
        }
        if entry.media_type is not None:
            fields["media_type"] = entry.media_type
        if entry.etag is not None:
            fields["etag"] = entry.etag
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self._index, "-inf", self._oldest_alive())
            pipe.delete(key)  # a replaced entry keeps none of the old fields (etag, media type)
            if fetched_ts > self._oldest_alive():
                pipe.hset(key, mapping=fields)
                pipe.pexpireat(key, int((fetched_ts + lifetime) * 1000))
                pipe.zadd(self._index, {member: fetched_ts})
            else:  # already past max-stale: replacing with it leaves nothing, as in memory
                pipe.zrem(self._index, member)
            pipe.zcard(self._index)
            *_, count = await pipe.execute()
        if count > self._settings.max_entries:
            await self._evict(
                keys=[self._index], args=[f"{self._prefix}entry:", self._settings.max_entries]
            )

    async def _redis_entries(self) -> list[SpecCacheEntry]:
        members = cast(
            "list[bytes]",
            await self._client.zrangebyscore(self._index, f"({self._oldest_alive()!r}", "+inf"),
        )
        async with self._client.pipeline(transaction=False) as pipe:
            for member in members:
                key = f"{self._prefix}entry:{member.decode()}"
                pipe.hmget(key, ["url", "fetched_at", "size_bytes", "etag"])
            found: list[list[bytes | None]] = await pipe.execute()
        now = self._clock()
        rows = []
        for url, fetched_at, size_bytes, etag in found:
            if url is None or fetched_at is None or size_bytes is None:
                continue  # expired or purged between the two reads
            fetched = datetime.fromisoformat(fetched_at.decode())
            rows.append(
                SpecCacheEntry(
                    url=url.decode("utf-8", "surrogatepass"),
                    fetched_at=fetched,
                    ttl_remaining=fetched.timestamp() + self._settings.ttl_s - now,
                    size_bytes=int(size_bytes),
                    etag=None if etag is None else etag.decode(),
                )
            )
        return rows

    async def _redis_purge(self, url: str) -> int:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(url))
            pipe.zrem(self._index, _url_hash(url))
            deleted, _ = await pipe.execute()
        return int(deleted)

    async def _redis_purge_all(self, fetched_until: str) -> set[str]:
        urls: list[bytes] = await self._purge_all(
            keys=[self._index], args=[f"{self._prefix}entry:", fetched_until]
        )
        return {url.decode("utf-8", "surrogatepass") for url in urls}


if TYPE_CHECKING:
    _: type[SpecCache] = RedisSpecCache
