"""`SqlSpecCache`: fetched specs kept gzip-compressed in the `apiq_spec_cache` table.

The same rules as `apiq.specs.cache.MemorySpecCache`, shared by every server process: an
entry lives `ttl_s + max_stale_s` past its `fetched_at` (fresh, then stale but available),
documents over `max_entry_bytes` are refused with `SpecTooLarge`, and `max_entries` bounds
the table. Rows are keyed by the sha256 of the URL, since URLs can be longer than an index
allows. Expired rows are deleted on `put` and `purge`; reads ignore them until then.

One difference: when the table is full, the least recently *fetched* entries go first (the
memory cache drops the least recently *used*), so that a read never has to write.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from apiq.config import CacheSettings
from apiq.egress.policy import display_url
from apiq.errors import SpecTooLarge
from apiq.models import CachedSpec, SpecCacheEntry
from apiq_adapters.sql.errors import storage_errors
from apiq_adapters.sql.tables import spec_cache
from apiq_adapters.sql.upsert import upsert

__all__ = ["SqlSpecCache"]

_DEFAULT_SETTINGS = CacheSettings()
_T = spec_cache.c


def _url_hash(url: str) -> str:
    """The row key of `url`: sha256 hex of its UTF-8 bytes (lone surrogates escaped)."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


class SqlSpecCache:
    """SpecCache over the `apiq_spec_cache` table, shared by every process on the database.

    Args:
        engine: an engine on a migrated database; borrowed, the caller disposes of it.
        settings: `ttl_s` and `max_stale_s` bound an entry's life, `max_entry_bytes` the
            largest document accepted, `max_entries` the number of rows kept.
        clock: seconds since the epoch; inject a fake one in tests.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        settings: CacheSettings = _DEFAULT_SETTINGS,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock

    def __repr__(self) -> str:
        return f"SqlSpecCache(engine={self._engine.url!r}, settings={self._settings!r})"

    def _oldest_alive(self) -> float:
        """`fetched_at` of the oldest entry still alive (fresh or within max-stale)."""
        return self._clock() - (self._settings.ttl_s + self._settings.max_stale_s)

    async def get(self, url: str) -> CachedSpec | None:
        """The entry for `url`, fresh or stale, until `ttl_s + max_stale_s` have passed.

        Raises:
            StorageError: the database failed.
        """
        query = sa.select(spec_cache).where(
            _T.url_hash == _url_hash(url), _T.fetched_at > self._oldest_alive()
        )
        with storage_errors("spec_cache.get", self._engine):
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).mappings().first()
        return None if row is None or row["url"] != url else _cached_spec(row)

    async def put(self, entry: CachedSpec) -> None:
        """Store or replace the entry for `entry.url`.

        Raises:
            SpecTooLarge: the document is larger than `settings.max_entry_bytes`.
            StorageError: the database failed.
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
        values = {
            "url_hash": _url_hash(entry.url),
            "url": entry.url,
            "compressed": entry.compressed,
            "size_bytes": entry.size_bytes,
            "digest": entry.digest,
            "fetched_at": entry.fetched_at.timestamp(),
            "media_type": entry.media_type,
            "etag": entry.etag,
        }
        statement = upsert(self._engine.dialect.name, spec_cache, values, key=["url_hash"])
        with storage_errors("spec_cache.put", self._engine):
            async with self._engine.begin() as conn:
                await self._drop_expired(conn)
                await conn.execute(statement)
                await self._evict_beyond_capacity(conn)

    async def entries(self) -> Sequence[SpecCacheEntry]:
        """Every live entry, most recently fetched first, with its remaining TTL.

        Raises:
            StorageError: the database failed.
        """
        query = (
            sa.select(_T.url, _T.fetched_at, _T.size_bytes, _T.etag)
            .where(_T.fetched_at > self._oldest_alive())
            .order_by(_T.fetched_at.desc(), _T.url_hash)
        )
        with storage_errors("spec_cache.entries", self._engine):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        now = self._clock()
        return [
            SpecCacheEntry(
                url=row.url,
                fetched_at=datetime.fromtimestamp(row.fetched_at, UTC),
                ttl_remaining=row.fetched_at + self._settings.ttl_s - now,
                size_bytes=row.size_bytes,
                etag=row.etag,
            )
            for row in rows
        ]

    async def purge(self, url: str | None = None) -> int:
        """Drop `url`'s entry, or all entries when `url` is None; returns how many were live.

        Raises:
            StorageError: the database failed.
        """
        statement = sa.delete(spec_cache)
        if url is not None:
            statement = statement.where(_T.url_hash == _url_hash(url))
        with storage_errors("spec_cache.purge", self._engine):
            async with self._engine.begin() as conn:
                await self._drop_expired(conn)  # expired rows are not counted as purged
                return (await conn.execute(statement)).rowcount

    async def _drop_expired(self, conn: AsyncConnection) -> None:
        await conn.execute(sa.delete(spec_cache).where(_T.fetched_at <= self._oldest_alive()))

    async def _evict_beyond_capacity(self, conn: AsyncConnection) -> None:
        keep = (
            sa.select(_T.url_hash)
            .order_by(_T.fetched_at.desc(), _T.url_hash)
            .limit(self._settings.max_entries)
        )
        await conn.execute(sa.delete(spec_cache).where(_T.url_hash.not_in(keep)))


def _cached_spec(row: sa.RowMapping) -> CachedSpec:
    return CachedSpec(
        url=row["url"],
        compressed=bytes(row["compressed"]),
        size_bytes=row["size_bytes"],
        digest=row["digest"],
        fetched_at=datetime.fromtimestamp(row["fetched_at"], UTC),
        media_type=row["media_type"],
        etag=row["etag"],
    )


if TYPE_CHECKING:
    from apiq.ports import SpecCache

    _: type[SpecCache] = SqlSpecCache
