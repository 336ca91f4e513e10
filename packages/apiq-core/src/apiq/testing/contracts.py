"""Contract test suites for the SpecCache and AuditSink ports.

A third-party adapter proves it fits by subclassing the suite in its own tests and
overriding one fixture::

    from apiq.testing import SpecCacheContract

    class TestRedisSpecCache(SpecCacheContract):
        @pytest.fixture
        async def spec_cache(self, contract_settings):
            async with make_redis_cache(contract_settings) as cache:
                yield cache

Tests are async and run on anyio (asyncio by default; override `anyio_backend` to widen).
Entries are dated from the wall clock, so an adapter may keep its own notion of time.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from apiq.config import CacheSettings
from apiq.errors import MissingDependencyError, SpecTooLarge
from apiq.models import AuditEvent, AuditQuery, CachedSpec, FetchedSpec, Outcome, new_reference_id
from apiq.ports import AuditSink, SpecCache
from apiq.specs.cache import pack_spec

try:
    import pytest
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "apiq.testing's contract suites need pytest: pip install pytest"
    ) from exc

__all__ = ["AuditSinkContract", "SpecCacheContract", "make_cached_spec"]

_HOUR = 3600.0


def make_cached_spec(
    url: str,
    content: bytes = b'{"openapi": "3.0.3"}',
    *,
    age_s: float = 0.0,
    etag: str | None = '"v1"',
    media_type: str | None = "application/json",
) -> CachedSpec:
    """A cache entry for `content` (as `pack_spec` makes it), fetched `age_s` seconds ago."""
    fetched = FetchedSpec(url=url, content=content, media_type=media_type, etag=etag)
    return pack_spec(fetched, fetched_at=datetime.now(UTC) - timedelta(seconds=age_s))


class SpecCacheContract:
    """What every SpecCache must do. Override the `spec_cache` fixture."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def contract_settings(self) -> CacheSettings:
        """Settings the adapter under test must be built with."""
        return CacheSettings(ttl_s=_HOUR, max_stale_s=_HOUR, max_entry_bytes=64 * 1024)

    @pytest.fixture
    def spec_cache(self, contract_settings: CacheSettings) -> Any:
        """The adapter under test, empty, configured with `contract_settings`."""
        raise NotImplementedError("override the spec_cache fixture with your adapter")

    @pytest.mark.anyio
    async def test_get_missing_is_none(self, spec_cache: SpecCache) -> None:
        assert await spec_cache.get("https://api.example.com/none.json") is None

    @pytest.mark.anyio
    async def test_put_then_get_round_trips_every_field(self, spec_cache: SpecCache) -> None:
        entry = make_cached_spec("https://api.example.com/openapi.json?v=2&ü=1")
        await spec_cache.put(entry)
        got = await spec_cache.get(entry.url)
        assert got is not None
        assert (got.url, got.compressed, got.size_bytes, got.digest) == (
            entry.url,
            entry.compressed,
            entry.size_bytes,
            entry.digest,
        )
        assert (got.media_type, got.etag) == (entry.media_type, entry.etag)
        assert abs(got.fetched_at.timestamp() - entry.fetched_at.timestamp()) < 0.01

    @pytest.mark.anyio
    async def test_put_replaces_the_entry_of_the_same_url(self, spec_cache: SpecCache) -> None:
        url = "https://api.example.com/a.json"
        await spec_cache.put(make_cached_spec(url, b'{"v": 1}', etag='"1"'))
        await spec_cache.put(make_cached_spec(url, b'{"v": 2}', etag='"2"'))
        got = await spec_cache.get(url)
        assert got is not None
        assert got.etag == '"2"'
        assert got.digest == hashlib.sha256(b'{"v": 2}').hexdigest()
        assert len(await spec_cache.entries()) == 1

    @pytest.mark.anyio
    async def test_stale_entry_stays_available_within_max_stale(
        self, spec_cache: SpecCache, contract_settings: CacheSettings
    ) -> None:
        url = "https://api.example.com/stale.json"
        await spec_cache.put(make_cached_spec(url, age_s=contract_settings.ttl_s + 60))
        assert await spec_cache.get(url) is not None
        (row,) = await spec_cache.entries()
        assert row.ttl_remaining < 0

    @pytest.mark.anyio
    async def test_entry_past_max_stale_is_gone(
        self, spec_cache: SpecCache, contract_settings: CacheSettings
    ) -> None:
        url = "https://api.example.com/old.json"
        age = contract_settings.ttl_s + contract_settings.max_stale_s + 60
        await spec_cache.put(make_cached_spec(url, age_s=age))
        assert await spec_cache.get(url) is None
        assert await spec_cache.entries() == []

    @pytest.mark.anyio
    async def test_entries_give_url_age_size_and_etag(
        self, spec_cache: SpecCache, contract_settings: CacheSettings
    ) -> None:
        entry = make_cached_spec("https://api.example.com/e.json", b"x" * 100, age_s=60)
        await spec_cache.put(entry)
        (row,) = await spec_cache.entries()
        assert (row.url, row.size_bytes, row.etag) == (entry.url, 100, entry.etag)
        assert abs(row.fetched_at.timestamp() - entry.fetched_at.timestamp()) < 0.01
        expected = contract_settings.ttl_s - 60
        assert expected - 30 < row.ttl_remaining <= expected + 1

    @pytest.mark.anyio
    async def test_purge_one_url(self, spec_cache: SpecCache) -> None:
        for name in ("a", "b"):
            await spec_cache.put(make_cached_spec(f"https://api.example.com/{name}.json"))
        assert await spec_cache.purge("https://api.example.com/a.json") == 1
        assert await spec_cache.purge("https://api.example.com/a.json") == 0
        assert await spec_cache.get("https://api.example.com/a.json") is None
        assert await spec_cache.get("https://api.example.com/b.json") is not None

    @pytest.mark.anyio
    async def test_purge_all(self, spec_cache: SpecCache) -> None:
        for name in ("a", "b", "c"):
            await spec_cache.put(make_cached_spec(f"https://api.example.com/{name}.json"))
        assert await spec_cache.purge() == 3
        assert await spec_cache.entries() == []
        assert await spec_cache.purge() == 0

    @pytest.mark.anyio
    async def test_refuses_an_entry_over_the_size_guard(
        self, spec_cache: SpecCache, contract_settings: CacheSettings
    ) -> None:
        big = b" " * (contract_settings.max_entry_bytes + 1)
        entry = make_cached_spec("https://api.example.com/big.json", big)
        with pytest.raises(SpecTooLarge) as caught:
            await spec_cache.put(entry)
        assert caught.value.limit == contract_settings.max_entry_bytes
        assert caught.value.size == len(big)
        assert await spec_cache.get(entry.url) is None


def _event(
    action: str = "spec.fetch",
    *,
    actor: str = "alice",
    tenant: str = "t1",
    at: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent(
        action=action,
        actor=actor,
        tenant=tenant,
        target="https://api.example.com/openapi.json",
        detail=detail or {},
        id=new_reference_id(),
        at=at or datetime.now(UTC),
    )


class AuditSinkContract:
    """What every AuditSink must do. Override the `audit_sink` fixture."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def audit_sink(self) -> Any:
        """The adapter under test, empty."""
        raise NotImplementedError("override the audit_sink fixture with your adapter")

    @pytest.mark.anyio
    async def test_recorded_event_is_found_by_its_id(self, audit_sink: AuditSink) -> None:
        detail = {"status": 503, "nested": {"list": [1, 2.5, "ü", None, True]}}
        event = _event(detail=detail)
        await audit_sink.record(_event())
        await audit_sink.record(event)
        (got,) = await audit_sink.query(AuditQuery(event_id=event.id))
        assert (got.id, got.action, got.actor, got.tenant) == (
            event.id,
            event.action,
            event.actor,
            event.tenant,
        )
        assert (got.outcome, got.target, dict(got.detail)) == (
            event.outcome,
            event.target,
            detail,
        )
        assert abs(got.at.timestamp() - event.at.timestamp()) < 0.01

    @pytest.mark.anyio
    async def test_query_is_newest_first_and_limited(self, audit_sink: AuditSink) -> None:
        base = datetime.now(UTC)
        events = [_event(at=base + timedelta(seconds=i)) for i in range(5)]
        for event in events:
            await audit_sink.record(event)
        got = await audit_sink.query(AuditQuery(limit=3))
        assert [e.id for e in got] == [e.id for e in reversed(events)][:3]

    @pytest.mark.anyio
    async def test_filters_narrow(self, audit_sink: AuditSink) -> None:
        base = datetime.now(UTC)
        a = _event("spec.fetch", actor="alice", tenant="t1", at=base)
        b = _event("spec.cache.hit", actor="bob", tenant="t1", at=base + timedelta(seconds=1))
        c = _event("plan.create", actor="alice", tenant="t2", at=base + timedelta(seconds=2))
        for event in (a, b, c):
            await audit_sink.record(event)

        async def ids(query: AuditQuery) -> set[str]:
            return {event.id for event in await audit_sink.query(query)}

        assert await ids(AuditQuery(tenant="t1")) == {a.id, b.id}
        assert await ids(AuditQuery(actor="alice")) == {a.id, c.id}
        assert await ids(AuditQuery(action_prefix="spec.")) == {a.id, b.id}
        assert await ids(AuditQuery(since=base + timedelta(seconds=1))) == {b.id, c.id}
        assert await ids(AuditQuery(until=base + timedelta(seconds=1))) == {a.id}
        assert await ids(AuditQuery(tenant="t1", actor="bob")) == {b.id}
        assert await ids(AuditQuery(tenant="nobody")) == set()

    @pytest.mark.anyio
    async def test_outcomes_round_trip(self, audit_sink: AuditSink) -> None:
        outcomes: tuple[Outcome, ...] = ("ok", "warning", "error")
        for outcome in outcomes:
            event = AuditEvent(action="spec.fetch", actor="a", tenant="t", outcome=outcome)
            await audit_sink.record(event)
            (got,) = await audit_sink.query(AuditQuery(event_id=event.id))
            assert got.outcome == outcome
            assert got.target is None
