"""SpecIngestor: source -> cache -> parse -> catalog, every step audited.

Over real loopback HTTP with the egress policy allowing only the test server. Each failure
is a typed error whose `reference_id` finds the audit event that holds its full cause.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from apiq.audit import MemoryAuditSink
from apiq.audit.jsonl import event_to_json
from apiq.config import CacheSettings, SpecLimits
from apiq.egress import EgressPolicy, egress_client
from apiq.errors import ApiqError, EgressDenied, SpecInvalid, SpecTooLarge, SpecUnreachable
from apiq.models import AuditEvent, AuditQuery, Principal
from apiq.specs.cache import MemorySpecCache
from apiq.specs.file_source import FileSpecSource
from apiq.specs.http_source import HttpSpecSource
from apiq.specs.ingest import SpecIngestor, scheme_of
from tests.core import spec_routes
from tests.core.spec_routes import ETAG, PETSTORE_JSON
from tests.loopback import LoopbackServer, loopback_server, respond

pytestmark = pytest.mark.anyio

SETTINGS = CacheSettings(ttl_s=100.0, max_stale_s=50.0)
LIMITS = SpecLimits(max_bytes=1024 * 1024, timeout_s=1.0)
ALICE = Principal(id="alice", tenant="acme")
PETSTORE_OPS = {"listPets", "createPet", "showPetById"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Flaky:
    """A route whose answer each test can change between loads."""

    status: int = 200
    body: bytes = PETSTORE_JSON
    etag: str = ETAG

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True  # error bodies go unread; see spec_routes.body
        if self.status == 200 and handler.headers.get("If-None-Match") == self.etag:
            respond(handler, 304, headers={"ETag": self.etag})
            return
        headers = {"Content-Type": "application/json", "ETag": self.etag}
        respond(handler, self.status, self.body, headers)


@dataclass
class Rig:
    server: LoopbackServer
    flaky: Flaky
    clock: Clock
    cache: MemorySpecCache
    audit: MemoryAuditSink
    ingestor: SpecIngestor
    sources: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.server.url(path)

    async def actions(self) -> list[str]:
        """Audit actions, oldest first."""
        return [e.action for e in reversed(await self.audit.query(AuditQuery(limit=1000)))]

    async def last(self) -> AuditEvent:
        (event,) = await self.audit.query(AuditQuery(limit=1))
        return event


@pytest.fixture
def server() -> Iterator[tuple[LoopbackServer, Flaky]]:
    flaky = Flaky()
    with loopback_server({**spec_routes.routes(), "/flaky.json": flaky}) as running:
        yield running, flaky


def make_ingestor(rig_parts: dict[str, Any], settings: CacheSettings = SETTINGS) -> SpecIngestor:
    return SpecIngestor(
        sources=rig_parts["sources"],
        cache=rig_parts["cache"],
        audit=rig_parts["audit"],
        settings=settings,
        limits=LIMITS,
        clock=rig_parts["clock"],
    )


@pytest.fixture
async def rig(server: tuple[LoopbackServer, Flaky]) -> AsyncIterator[Rig]:
    running, flaky = server
    clock = Clock()
    policy = EgressPolicy(allow=frozenset({("127.0.0.1", running.port)}))
    async with egress_client(policy) as client:
        http = HttpSpecSource(client, limits=LIMITS)
        parts: dict[str, Any] = {
            "sources": {"http": http, "https": http, "file": FileSpecSource(limits=LIMITS)},
            "cache": MemorySpecCache(SETTINGS, clock=clock),
            "audit": MemoryAuditSink(),
            "clock": clock,
        }
        yield Rig(
            running,
            flaky,
            clock,
            parts["cache"],
            parts["audit"],
            make_ingestor(parts),
            parts["sources"],
        )


async def test_cold_load_fetches_parses_stores_and_audits(rig: Rig) -> None:
    url = rig.url("/petstore.json")
    catalog = await rig.ingestor.load(ALICE, url)
    assert {op.operation_id for op in catalog.operations} == PETSTORE_OPS
    assert await rig.actions() == ["spec.cache.miss", "spec.fetch", "spec.cache.stored"]
    events = await rig.audit.query(AuditQuery())
    assert {(e.actor, e.tenant, e.target, e.outcome) for e in events} == {
        ("alice", "acme", url, "ok")
    }
    (row,) = await rig.cache.entries()
    assert (row.url, row.etag, row.size_bytes) == (url, ETAG, len(PETSTORE_JSON))


async def test_yaml_load(rig: Rig) -> None:
    catalog = await rig.ingestor.load(ALICE, rig.url("/petstore.yaml"))
    assert [op.operation_id for op in catalog.operations] == ["listPets"]


async def test_warm_load_is_a_cache_hit_without_a_request_or_reparse(rig: Rig) -> None:
    url = rig.url("/petstore.json")
    first = await rig.ingestor.load(ALICE, url)
    served = len(rig.server.requests)
    again = await rig.ingestor.load(ALICE, url)
    assert again is first
    assert len(rig.server.requests) == served
    hit = await rig.last()
    assert (hit.action, hit.outcome) == ("spec.cache.hit", "ok")
    assert hit.detail["size_bytes"] == len(PETSTORE_JSON)


async def test_cold_path_from_the_cache_parses_again(rig: Rig) -> None:
    url = rig.url("/petstore.json")
    warm = await rig.ingestor.load(ALICE, url)
    entry = await rig.cache.get(url)
    assert entry is not None
    cold = await rig.ingestor.catalog_of(entry, memoize=False)
    assert cold is not warm
    assert [op.operation_id for op in cold.operations] == [
        op.operation_id for op in warm.operations
    ]


async def test_ttl_expiry_revalidates_with_the_etag(rig: Rig) -> None:
    url = rig.url("/petstore.json")
    first = await rig.ingestor.load(ALICE, url)
    rig.clock.now += SETTINGS.ttl_s + 1
    again = await rig.ingestor.load(ALICE, url)
    assert again is first
    assert rig.server.requests[-1][2]["If-None-Match"] == ETAG
    assert (await rig.actions())[-3:] == ["spec.cache.miss", "spec.fetch", "spec.cache.revalidated"]
    (row,) = await rig.cache.entries()
    assert row.ttl_remaining == pytest.approx(SETTINGS.ttl_s)


async def test_refresh_revalidates_a_fresh_entry(rig: Rig) -> None:
    url = rig.url("/flaky.json")
    await rig.ingestor.load(ALICE, url)
    await rig.ingestor.load(ALICE, url, refresh=True)
    miss = (await rig.audit.query(AuditQuery(action_prefix="spec.cache.miss")))[0]
    assert miss.detail == {"reason": "refresh"}
    assert (await rig.last()).action == "spec.cache.revalidated"


async def test_a_new_version_replaces_the_entry(rig: Rig) -> None:
    url = rig.url("/flaky.json")
    await rig.ingestor.load(ALICE, url)
    rig.flaky.body = PETSTORE_JSON.replace(b"listPets", b"listAllPets")
    rig.flaky.etag = '"v2"'
    catalog = await rig.ingestor.load(ALICE, url, refresh=True)
    assert "listAllPets" in {op.operation_id for op in catalog.operations}
    entry = await rig.cache.get(url)
    assert entry is not None
    assert entry.etag == '"v2"'


FAILURES: list[tuple[str, type[ApiqError], str, int | None]] = [
    ("/missing", SpecUnreachable, "spec.fetch", 404),
    ("/error.json", SpecUnreachable, "spec.fetch", 500),
    ("/invalid.json", SpecInvalid, "spec.parse", None),
    ("/not-openapi.json", SpecInvalid, "spec.parse", None),
    ("/login", SpecInvalid, "spec.fetch", None),
    ("/drip.json", SpecUnreachable, "spec.fetch", None),
    ("/declared-big.json", SpecTooLarge, "spec.fetch", None),
    ("/chunked-big.json", SpecTooLarge, "spec.fetch", None),
    ("/bomb.json", SpecTooLarge, "spec.fetch", None),
    ("/stacked.json", SpecInvalid, "spec.fetch", None),
    ("/to-private", EgressDenied, "spec.fetch", None),
    ("/to-metadata", EgressDenied, "spec.fetch", None),
]


@pytest.mark.parametrize(("path", "error", "action", "status"), FAILURES)
async def test_failure_is_a_typed_error_with_an_audit_event(
    rig: Rig, path: str, error: type[ApiqError], action: str, status: int | None
) -> None:
    url = rig.url(path)
    with pytest.raises(error) as caught:
        await rig.ingestor.load(ALICE, url)
    exc = caught.value
    assert exc.reference_id is not None
    assert exc.public_message.endswith(f"see logs (reference {exc.reference_id})")
    (event,) = await rig.audit.query(AuditQuery(event_id=exc.reference_id))
    assert (event.action, event.outcome, event.actor, event.tenant) == (
        action,
        "error",
        "alice",
        "acme",
    )
    assert event.target == url
    assert event.detail["error"] == error.__name__
    assert event.detail["message"] == str(exc)
    assert event.detail.get("status_code") == status
    assert await rig.cache.get(url) is None


async def test_failed_refresh_serves_the_stale_entry_with_a_warning(rig: Rig) -> None:
    url = rig.url("/flaky.json")
    good = await rig.ingestor.load(ALICE, url)
    before = await rig.cache.get(url)
    rig.clock.now += SETTINGS.ttl_s + 10  # stale, within max_stale
    rig.flaky.status = 503
    served = await rig.ingestor.load(ALICE, url)
    assert served is good
    warning = await rig.last()
    assert (warning.action, warning.outcome) == ("spec.cache.refresh_failed", "warning")
    assert warning.detail["cause"]["error"] == "SpecUnreachable"
    assert warning.detail["cause"]["status_code"] == 503
    assert warning.detail["age_s"] == pytest.approx(SETTINGS.ttl_s + 10)
    assert await rig.cache.get(url) == before


async def test_a_broken_new_version_never_replaces_the_good_entry(rig: Rig) -> None:
    url = rig.url("/flaky.json")
    good = await rig.ingestor.load(ALICE, url)
    before = await rig.cache.get(url)
    rig.flaky.body, rig.flaky.etag = b'{"openapi": "3.0.3", "paths": [', '"broken"'
    served = await rig.ingestor.load(ALICE, url, refresh=True)
    assert served is good
    warning = await rig.last()
    assert warning.action == "spec.cache.refresh_failed"
    assert warning.detail["cause"]["error"] == "SpecInvalid"
    assert await rig.cache.get(url) == before


async def test_stale_beyond_max_stale_is_an_error(rig: Rig) -> None:
    url = rig.url("/flaky.json")
    await rig.ingestor.load(ALICE, url)
    rig.clock.now += SETTINGS.ttl_s + SETTINGS.max_stale_s + 1
    rig.flaky.status = 500
    with pytest.raises(SpecUnreachable) as caught:
        await rig.ingestor.load(ALICE, url)
    (event,) = await rig.audit.query(AuditQuery(event_id=caught.value.reference_id))
    assert event.outcome == "error"


async def test_ingestor_bounds_staleness_even_when_the_cache_keeps_longer(rig: Rig) -> None:
    url = rig.url("/flaky.json")
    long_lived = MemorySpecCache(CacheSettings(ttl_s=100, max_stale_s=10_000), clock=rig.clock)
    parts = {"sources": rig.sources, "cache": long_lived, "audit": rig.audit, "clock": rig.clock}
    ingestor = make_ingestor(parts)
    await ingestor.load(ALICE, url)
    rig.clock.now += SETTINGS.ttl_s + SETTINGS.max_stale_s + 1
    rig.flaky.status = 500
    with pytest.raises(SpecUnreachable) as caught:
        await ingestor.load(ALICE, url)
    (event,) = await rig.audit.query(AuditQuery(event_id=caught.value.reference_id))
    assert "too old" in event.detail["stale_entry"]


async def test_purge_makes_the_next_load_fetch(rig: Rig) -> None:
    url = rig.url("/petstore.json")
    await rig.ingestor.load(ALICE, url)
    assert await rig.cache.purge(url) == 1
    await rig.ingestor.load(ALICE, url)
    assert (await rig.actions())[-3:] == ["spec.cache.miss", "spec.fetch", "spec.cache.stored"]
    miss = (await rig.audit.query(AuditQuery(action_prefix="spec.cache.miss")))[0]
    assert miss.detail == {"reason": "absent"}


async def test_size_guard_refusal_still_returns_the_catalog(rig: Rig) -> None:
    tiny = MemorySpecCache(dataclasses.replace(SETTINGS, max_entry_bytes=100), clock=rig.clock)
    parts = {"sources": rig.sources, "cache": tiny, "audit": rig.audit, "clock": rig.clock}
    catalog = await make_ingestor(parts).load(ALICE, rig.url("/petstore.json"))
    assert len(catalog.operations) == 3
    refused = await rig.last()
    assert (refused.action, refused.outcome) == ("spec.cache.store_refused", "warning")
    assert refused.detail["error"] == "SpecTooLarge"
    assert await tiny.entries() == []


async def test_corrupt_cache_entry_is_dropped_and_fetched_again(rig: Rig) -> None:
    url = rig.url("/petstore.json")
    await rig.ingestor.load(ALICE, url)
    entry = await rig.cache.get(url)
    assert entry is not None
    await rig.cache.put(dataclasses.replace(entry, digest="0" * 64))
    catalog = await rig.ingestor.load(ALICE, url)
    assert len(catalog.operations) == 3
    actions = await rig.actions()
    assert actions[-4:] == [
        "spec.cache.unusable",
        "spec.cache.miss",
        "spec.fetch",
        "spec.cache.stored",
    ]


class BrokenAudit(MemoryAuditSink):
    fail = False

    async def record(self, event: AuditEvent) -> None:
        if self.fail:
            raise OSError("audit disk full")
        await super().record(event)


async def test_a_failed_audit_write_fails_the_load(rig: Rig) -> None:
    audit = BrokenAudit()
    parts = {"sources": rig.sources, "cache": rig.cache, "audit": audit, "clock": rig.clock}
    ingestor = make_ingestor(parts)
    url = rig.url("/petstore.json")
    audit.fail = True
    with pytest.raises(OSError, match="audit disk full"):
        await ingestor.load(ALICE, url)
    assert rig.server.requests == []  # the miss is recorded before anything is fetched
    audit.fail = False
    await ingestor.load(ALICE, url)
    audit.fail = True
    with pytest.raises(OSError, match="audit disk full"):
        await ingestor.load(ALICE, url)  # a cache hit is audited too


async def test_secrets_in_the_url_never_reach_the_audit_log(rig: Rig) -> None:
    secret_query = rig.url("/petstore.json?api_key=s3cr3t-query")
    await rig.ingestor.load(ALICE, secret_query)
    with_password = rig.url("/petstore.json").replace("http://", "http://bob:hunter2@")
    with pytest.raises(EgressDenied) as caught:
        await rig.ingestor.load(ALICE, with_password)
    assert caught.value.reference_id is not None
    logged = json.dumps([event_to_json(e) for e in await rig.audit.query(AuditQuery())])
    assert "s3cr3t-query" not in logged
    assert "hunter2" not in logged


async def test_cache_warnings_never_log_the_secrets_of_the_url(rig: Rig) -> None:
    # The cache's own errors (size guard, corrupt entry) name the URL too.
    url = rig.url("/petstore.json?api_key=s3cr3t-query")
    tiny = MemorySpecCache(dataclasses.replace(SETTINGS, max_entry_bytes=100), clock=rig.clock)
    parts = {"sources": rig.sources, "cache": tiny, "audit": rig.audit, "clock": rig.clock}
    await make_ingestor(parts).load(ALICE, url)
    await rig.ingestor.load(ALICE, url)
    entry = await rig.cache.get(url)
    assert entry is not None
    await rig.cache.put(dataclasses.replace(entry, digest="0" * 64))
    await rig.ingestor.load(ALICE, url)
    events = await rig.audit.query(AuditQuery())
    warnings = {e.action: e.detail for e in events if e.outcome == "warning"}
    assert warnings.keys() == {"spec.cache.store_refused", "spec.cache.unusable"}
    assert all("?…" in detail["message"] for detail in warnings.values())
    assert "s3cr3t-query" not in json.dumps([event_to_json(e) for e in events])


async def test_unknown_scheme_is_unreachable_and_audited(rig: Rig) -> None:
    with pytest.raises(SpecUnreachable, match="no spec source handles 'ftp'") as caught:
        await rig.ingestor.load(ALICE, "ftp://files.example.com/openapi.json")
    assert caught.value.reference_id is not None


async def test_local_file_is_revalidated_on_every_load(rig: Rig, tmp_path: Path) -> None:
    path = tmp_path / "petstore.json"
    path.write_bytes(PETSTORE_JSON)
    first = await rig.ingestor.load(ALICE, str(path))
    again = await rig.ingestor.load(ALICE, str(path))
    assert again is first
    assert (await rig.actions())[-3:] == ["spec.cache.miss", "spec.fetch", "spec.cache.revalidated"]
    path.write_bytes(PETSTORE_JSON.replace(b"listPets", b"listAllPets"))
    edited = await rig.ingestor.load(ALICE, str(path))
    assert "listAllPets" in {op.operation_id for op in edited.operations}


async def test_missing_file_is_audited(rig: Rig, tmp_path: Path) -> None:
    with pytest.raises(SpecUnreachable) as caught:
        await rig.ingestor.load(ALICE, str(tmp_path / "absent.yaml"))
    (event,) = await rig.audit.query(AuditQuery(event_id=caught.value.reference_id))
    assert event.action == "spec.fetch"


@pytest.mark.parametrize(
    ("ref", "scheme"),
    [
        ("https://x.example/a.json", "https"),
        ("HTTP://x.example/a.json", "http"),
        ("file:///tmp/a.json", "file"),
        ("/tmp/a.json", "file"),
        ("specs/a.yaml", "file"),
        ("C:\\specs\\a.json", "file"),
        ("ftp://x/a", "ftp"),
    ],
)
def test_scheme_of(ref: str, scheme: str) -> None:
    assert scheme_of(ref) == scheme


@pytest.mark.shared
async def test_big_shared_spec_through_a_worker_thread(rig: Rig, shared_specs: Path) -> None:
    path = str(shared_specs / "stripe.json")
    catalog = await rig.ingestor.load(ALICE, path, name="stripe")
    assert catalog.name == "stripe"
    assert len(catalog.operations) > 100
    assert await rig.ingestor.load(ALICE, path, name="stripe") is catalog
