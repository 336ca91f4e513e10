"""MemorySpecCache with an injected clock, and the pack/unpack of cache entries."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiq.config import CacheSettings
from apiq.errors import SpecInvalid, SpecTooLarge
from apiq.models import FetchedSpec
from apiq.specs.cache import MemorySpecCache, pack_spec, unpack_spec

pytestmark = pytest.mark.anyio

URL = "https://api.example.com/openapi.json"
DOC = b'{"openapi": "3.0.3", "paths": {}}'
SETTINGS = CacheSettings(ttl_s=100.0, max_stale_s=50.0, max_entry_bytes=1000, max_entries=3)


class Clock:
    """A settable clock in epoch seconds."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def at(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def fetched(url: str = URL, content: bytes = DOC, etag: str | None = '"e1"') -> FetchedSpec:
    return FetchedSpec(url=url, content=content, media_type="application/json", etag=etag)


def test_pack_spec_gzips_and_digests() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    entry = pack_spec(fetched(), fetched_at=when)
    assert gzip.decompress(entry.compressed) == DOC
    assert entry.digest == hashlib.sha256(DOC).hexdigest()
    assert (entry.size_bytes, entry.fetched_at, entry.etag) == (len(DOC), when, '"e1"')
    assert entry.media_type == "application/json"


@given(st.binary(max_size=4096))
def test_pack_unpack_round_trip(content: bytes) -> None:
    entry = pack_spec(fetched(content=content), fetched_at=datetime.now(UTC))
    assert unpack_spec(entry, max_bytes=len(content)) == content


def test_unpack_applies_the_byte_budget() -> None:
    entry = pack_spec(fetched(content=b"\0" * 10_000_000), fetched_at=datetime.now(UTC))
    with pytest.raises(SpecTooLarge) as caught:
        unpack_spec(entry, max_bytes=1_000_000)
    assert caught.value.limit == 1_000_000


def test_unpack_refuses_a_corrupt_entry() -> None:
    entry = pack_spec(fetched(), fetched_at=datetime.now(UTC))
    tampered = dataclasses.replace(entry, compressed=gzip.compress(b'{"evil": 1}'))
    with pytest.raises(SpecInvalid, match="does not match its digest"):
        unpack_spec(tampered, max_bytes=1000)
    with pytest.raises(SpecInvalid, match="not valid gzip"):
        unpack_spec(dataclasses.replace(entry, compressed=b"junk"), max_bytes=1000)


async def test_hit_and_miss() -> None:
    clock = Clock()
    cache = MemorySpecCache(SETTINGS, clock=clock)
    assert await cache.get(URL) is None
    entry = pack_spec(fetched(), fetched_at=at(clock))
    await cache.put(entry)
    assert await cache.get(URL) == entry


async def test_ttl_then_stale_then_gone() -> None:
    clock = Clock()
    cache = MemorySpecCache(SETTINGS, clock=clock)
    await cache.put(pack_spec(fetched(), fetched_at=at(clock)))
    clock.now += 99
    (row,) = await cache.entries()
    assert row.ttl_remaining == pytest.approx(1.0)
    clock.now += 31  # 130 s: past the TTL, inside max_stale: still there for a fallback
    assert await cache.get(URL) is not None
    (row,) = await cache.entries()
    assert row.ttl_remaining == pytest.approx(-30.0)
    clock.now += 21  # 151 s: past ttl + max_stale
    assert await cache.get(URL) is None
    assert await cache.entries() == []


async def test_expiry_counts_from_fetched_at_not_from_put() -> None:
    clock = Clock()
    cache = MemorySpecCache(SETTINGS, clock=clock)
    old = pack_spec(fetched(), fetched_at=datetime.fromtimestamp(clock.now - 200, UTC))
    await cache.put(old)
    assert await cache.get(URL) is None


async def test_entries_fields_newest_first() -> None:
    clock = Clock()
    cache = MemorySpecCache(SETTINGS, clock=clock)
    await cache.put(pack_spec(fetched("https://a.example/x.json", etag=None), fetched_at=at(clock)))
    clock.now += 10
    await cache.put(pack_spec(fetched("https://b.example/y.json"), fetched_at=at(clock)))
    rows = await cache.entries()
    assert [r.url for r in rows] == ["https://b.example/y.json", "https://a.example/x.json"]
    assert [r.ttl_remaining for r in rows] == [pytest.approx(100.0), pytest.approx(90.0)]
    assert [r.etag for r in rows] == ['"e1"', None]
    assert all(r.size_bytes == len(DOC) for r in rows)
    assert rows[0].fetched_at == at(clock)


async def test_size_guard_keeps_the_old_entry() -> None:
    cache = MemorySpecCache(SETTINGS)
    good = pack_spec(fetched(), fetched_at=datetime.now(UTC))
    await cache.put(good)
    big = pack_spec(fetched(content=b" " * 1001), fetched_at=datetime.now(UTC))
    with pytest.raises(SpecTooLarge) as caught:
        await cache.put(big)
    assert (caught.value.limit, caught.value.size) == (1000, 1001)
    assert await cache.get(URL) == good


async def test_least_recently_used_goes_past_max_entries() -> None:
    cache = MemorySpecCache(SETTINGS)
    urls = [f"https://api.example.com/{i}.json" for i in range(4)]
    for url in urls[:3]:
        await cache.put(pack_spec(fetched(url), fetched_at=datetime.now(UTC)))
    assert await cache.get(urls[0]) is not None  # touch 0: 1 is now the least recent
    await cache.put(pack_spec(fetched(urls[3]), fetched_at=datetime.now(UTC)))
    assert {r.url for r in await cache.entries()} == {urls[0], urls[2], urls[3]}


async def test_purge_one_and_all() -> None:
    cache = MemorySpecCache(SETTINGS)
    for i in range(3):
        await cache.put(pack_spec(fetched(f"https://a.example/{i}"), fetched_at=datetime.now(UTC)))
    assert await cache.purge("https://a.example/1") == 1
    assert await cache.purge("https://a.example/1") == 0
    assert await cache.purge() == 2
    assert await cache.entries() == []
