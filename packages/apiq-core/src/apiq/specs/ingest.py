"""`SpecIngestor`: from a spec reference to a catalog, through the source, cache and audit.

```
load(principal, ref)
  cache.get ── fresh ──────────────────────────────> memo or parse ── spec.cache.hit
     │ stale, absent, refresh, or a local file
     v
  source.fetch(If-None-Match: cached ETag) ────────── spec.cache.miss, spec.fetch
     ├─ 304 ──> cache.put(fetched_at=now) ──────────> memo or parse ── spec.cache.revalidated
     ├─ 200 ──> parse FIRST, then cache.put ────────> catalog
     └─ error or unparsable:
          stale entry within max_stale ──────> serve it ── spec.cache.refresh_failed (warning)
          otherwise ── spec.fetch / spec.parse (error, full cause); raise with reference_id
```

A broken new version never replaces a good entry, because only documents that parsed are
stored. Parsed catalogs are memoized by (digest, name, ref), so a warm load costs a cache
lookup and a dict lookup, not a parse. Every step is audited; if the audit write fails, the
load fails. Local files are revalidated on every load (their ETag is a hash of the file, so
an unchanged file is cheap and an edited one is never served stale).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
from cachetools import LRUCache

from apiq.config import CacheSettings, SpecLimits
from apiq.egress.policy import display_url
from apiq.errors import ApiqError, SpecError, SpecTooLarge, SpecUnreachable
from apiq.models import AuditEvent, CachedSpec, Outcome, Principal
from apiq.specs.cache import pack_spec, unpack_spec
from apiq.specs.parse import parse_spec

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.ports import AuditSink, SpecCache, SpecSource

__all__ = ["SpecIngestor", "scheme_of"]

_DEFAULT_SETTINGS = CacheSettings()
_DEFAULT_LIMITS = SpecLimits()

_THREAD_THRESHOLD = 1024 * 1024
"""Documents larger than this are decoded, parsed and compressed in a worker thread, so the
event loop keeps serving other requests meanwhile; smaller ones are faster inline."""
_LOCAL_SCHEMES = frozenset({"file"})
_CAUSE_FIELDS = ("status_code", "limit", "size", "pointer", "ref", "address")
_T = TypeVar("_T")


def scheme_of(ref: str) -> str:
    """`http`, `https`, `file` (also for plain paths, Windows drives included), or another."""
    scheme = urlsplit(ref).scheme.lower()
    return scheme if len(scheme) > 1 else "file"


class SpecIngestor:
    """Loads catalogs for principals, caching documents and auditing every step.

    Args:
        sources: one SpecSource per scheme: `http`, `https`, `file` (plain paths are `file`).
        cache: where fetched documents are kept.
        audit: where every fetch, hit, miss, refresh and failure is recorded.
        settings: `ttl_s` (fresh), `max_stale_s` (how long a stale entry may stand in).
        limits: byte budgets for reading back from the cache, and the parser's bounds.
        clock: seconds since the epoch; inject a fake one in tests.
        memo_size: parsed catalogs kept in memory (least recently used go first).
    """

    def __init__(
        self,
        *,
        sources: Mapping[str, SpecSource],
        cache: SpecCache,
        audit: AuditSink,
        settings: CacheSettings = _DEFAULT_SETTINGS,
        limits: SpecLimits = _DEFAULT_LIMITS,
        clock: Callable[[], float] = time.time,
        memo_size: int = 32,
    ) -> None:
        self._sources = dict(sources)
        self._cache = cache
        self._audit = audit
        self._settings = settings
        self._limits = limits
        self._clock = clock
        self._memo: LRUCache[tuple[str, str | None, str], Catalog] = LRUCache(maxsize=memo_size)

    async def load(
        self, principal: Principal, ref: str, *, name: str | None = None, refresh: bool = False
    ) -> Catalog:
        """The catalog of the API description at `ref` (URL or file path).

        Args:
            principal: who asks; the actor of every audit event.
            ref: `http(s)://` URL, `file://` URL or local path (`.gz` accepted).
            name: the catalog's name (defaults to what the parser derives).
            refresh: revalidate even a fresh cache entry.

        Raises:
            SpecUnreachable, SpecTooLarge, SpecInvalid, ExternalRefRefused, EgressDenied:
                with `reference_id` set to the audit event holding the full cause.
        """
        url = ref.strip()
        scheme = scheme_of(url)
        local = scheme in _LOCAL_SCHEMES
        cached = await self._cache.get(url)
        now = self._clock()
        fresh = cached is not None and self._age(cached, now) <= self._settings.ttl_s
        if cached is not None and fresh and not refresh and not local:
            try:
                catalog = await self.catalog_of(cached, name=name)
            except SpecError as exc:
                await self._record(
                    principal, "spec.cache.unusable", url, "warning", _cause(exc, url)
                )
                cached = None
            else:
                await self._record(
                    principal, "spec.cache.hit", url, "ok", self._entry_facts(cached, now)
                )
                return catalog
        reason = (
            "absent" if cached is None else "refresh" if refresh else "local" if local else "stale"
        )
        await self._record(principal, "spec.cache.miss", url, "ok", {"reason": reason})
        return await self._fetch(principal, url, scheme, cached, name, now)

    async def catalog_of(
        self, entry: CachedSpec, *, name: str | None = None, memoize: bool = True
    ) -> Catalog:
        """The catalog of a cache entry: memoized, or decompressed within budget and parsed.

        `memoize=False` always takes the cold path (decompress + parse), for measuring it.

        Raises:
            SpecTooLarge, SpecInvalid, ExternalRefRefused: the entry cannot be used.
        """
        key = (entry.digest, name, entry.url)
        catalog = self._memo.get(key) if memoize else None
        if catalog is None:
            budget = (
                self._limits.file_max_bytes
                if scheme_of(entry.url) in _LOCAL_SCHEMES
                else self._limits.max_bytes
            )
            call = functools.partial(self._unpack_and_parse, entry, budget, name)
            catalog = await _off_loop_if_large(entry.size_bytes, call)
            if memoize:
                self._memo[key] = catalog
        return catalog

    def _unpack_and_parse(self, entry: CachedSpec, budget: int, name: str | None) -> Catalog:
        content = unpack_spec(entry, max_bytes=budget)
        return self._parse_now(content, entry.url, entry.media_type, name)

    def _parse_now(
        self, content: bytes, url: str, media_type: str | None, name: str | None
    ) -> Catalog:
        return parse_spec(
            content, source=display_url(url), media_type=media_type, limits=self._limits, name=name
        )

    async def _fetch(
        self,
        principal: Principal,
        url: str,
        scheme: str,
        cached: CachedSpec | None,
        name: str | None,
        now: float,
    ) -> Catalog:
        source = self._sources.get(scheme)
        started = time.perf_counter()
        try:
            if source is None:
                raise SpecUnreachable(
                    f"no spec source handles {scheme!r} references ({display_url(url)}); give an "
                    f"http(s) URL or a file path (configured: {', '.join(sorted(self._sources))})",
                    source=display_url(url),
                )
            fetched = await source.fetch(url, etag=cached.etag if cached else None)
            if fetched.not_modified and cached is None:
                raise SpecUnreachable(
                    f"{display_url(url)} answered 'not modified' to a request that sent no ETag",
                    source=display_url(url),
                )
        except ApiqError as exc:
            return await self._fall_back(principal, url, cached, exc, "spec.fetch", name, now)
        facts: dict[str, Any] = {
            "status": "not_modified" if fetched.not_modified else "fetched",
            "size_bytes": len(fetched.content),
            "media_type": fetched.media_type,
            "has_etag": fetched.etag is not None,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        await self._record(principal, "spec.fetch", url, "ok", facts)
        fetched_at = datetime.fromtimestamp(now, UTC)
        if fetched.not_modified and cached is not None:
            renewed = dataclasses.replace(cached, fetched_at=fetched_at, etag=fetched.etag)
            await self._cache.put(renewed)
            await self._record(
                principal, "spec.cache.revalidated", url, "ok", self._entry_facts(renewed, now)
            )
            try:
                return await self.catalog_of(renewed, name=name)
            except SpecError as exc:
                # The server vouched for a copy we can no longer read: fetch it whole.
                await self._record(
                    principal, "spec.cache.unusable", url, "warning", _cause(exc, url)
                )
                await self._cache.purge(url)
                return await self._fetch(principal, url, scheme, None, name, now)
        size = len(fetched.content)
        started = time.perf_counter()
        try:
            parse = functools.partial(
                self._parse_now, fetched.content, url, fetched.media_type, name
            )
            catalog = await _off_loop_if_large(size, parse)
        except SpecError as exc:
            return await self._fall_back(principal, url, cached, exc, "spec.parse", name, now)
        parse_ms = round((time.perf_counter() - started) * 1000, 1)
        entry = await _off_loop_if_large(
            size, functools.partial(pack_spec, fetched, fetched_at=fetched_at)
        )
        try:
            await self._cache.put(entry)
        except SpecTooLarge as exc:
            await self._record(
                principal, "spec.cache.store_refused", url, "warning", _cause(exc, url)
            )
        else:
            facts = self._entry_facts(entry, now) | {"parse_ms": parse_ms}
            await self._record(principal, "spec.cache.stored", url, "ok", facts)
        self._memo[(entry.digest, name, entry.url)] = catalog
        return catalog

    async def _fall_back(
        self,
        principal: Principal,
        url: str,
        cached: CachedSpec | None,
        exc: ApiqError,
        action: str,
        name: str | None,
        now: float,
    ) -> Catalog:
        cause = _cause(exc, url)
        if cached is not None:
            age = self._age(cached, now)
            if age <= self._settings.ttl_s + self._settings.max_stale_s:
                try:
                    catalog = await self.catalog_of(cached, name=name)
                except SpecError as unusable:
                    cause["stale_entry"] = f"unusable: {type(unusable).__name__}"
                else:
                    facts = self._entry_facts(cached, now) | {"cause": cause}
                    await self._record(
                        principal, "spec.cache.refresh_failed", url, "warning", facts
                    )
                    return catalog
            else:
                cause["stale_entry"] = f"too old to serve ({age:.0f} s since fetched)"
        return await self._fail(principal, url, exc, action, cause)

    async def _fail(
        self, principal: Principal, url: str, exc: ApiqError, action: str, cause: dict[str, Any]
    ) -> NoReturn:
        event = await self._record(principal, action, url, "error", cause)
        exc.reference_id = event.id
        raise exc

    async def _record(
        self,
        principal: Principal,
        action: str,
        url: str,
        outcome: Outcome,
        detail: Mapping[str, Any],
    ) -> AuditEvent:
        event = AuditEvent(
            action=action,
            actor=principal.id,
            tenant=principal.tenant,
            outcome=outcome,
            target=display_url(url),
            detail=dict(detail),
        )
        await self._audit.record(event)
        return event

    def _age(self, entry: CachedSpec, now: float) -> float:
        return now - entry.fetched_at.timestamp()

    def _entry_facts(self, entry: CachedSpec, now: float) -> dict[str, Any]:
        age = self._age(entry, now)
        return {
            "age_s": round(age, 3),
            "ttl_remaining_s": round(self._settings.ttl_s - age, 3),
            "size_bytes": entry.size_bytes,
            "compressed_bytes": len(entry.compressed),
            "digest": entry.digest,
        }


async def _off_loop_if_large(size: int, call: Callable[[], _T]) -> _T:
    """`call()` in a worker thread for documents over `_THREAD_THRESHOLD`, else inline."""
    if size > _THREAD_THRESHOLD:
        return await anyio.to_thread.run_sync(call)
    return call()


def _cause(exc: ApiqError, url: str) -> dict[str, Any]:
    """The full cause of an error for the audit log, with the URL's secrets removed.

    In-tree sources and caches already name URLs by `display_url`; this also covers a
    third-party adapter that puts the raw reference in its message.
    """
    message = str(exc)
    shown = display_url(url)
    if url != shown:
        message = message.replace(url, shown)
    cause: dict[str, Any] = {"error": type(exc).__name__, "message": message}
    for field in _CAUSE_FIELDS:
        value = getattr(exc, field, None)
        if value is not None:
            cause[field] = value
    return cause
