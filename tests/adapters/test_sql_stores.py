"""What the SQL adapters do beyond their port contracts (tests/contract/test_sql_adapters.py).

On SQLite and PostgreSQL: secret rows swapped, relabelled or flipped in the table fail
closed; rotation is restartable and never overwrites a newer value; the spec cache's bounds
(capacity, expiry) and its sharing between instances; audit pagination and literal prefix
filters; and database failures surfacing as `StorageError`, whose message names what could
not be done and never a stored value.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import apiq_adapters.sql.secret_store as secret_store_module
from apiq.config import CacheSettings
from apiq.errors import ConfigurationError, SecretUnreadable
from apiq.models import AuditEvent, AuditQuery, Principal
from apiq.secrets import KeyRing, SealedSecret, seal
from apiq.testing import make_cached_spec
from apiq_adapters.sql import (
    SqlAuditSink,
    SqlSecretStore,
    SqlSpecCache,
    StorageError,
    open_engine,
    sync_url,
)
from apiq_adapters.sql.tables import secrets as secrets_table
from tests.adapters.sql_backends import (
    BACKENDS,
    aiosqlite_threads_stopped,
    empty_engine,
    migrated_database,
)

pytestmark = pytest.mark.anyio

ALICE = Principal(id="alice", tenant="t1")
BOB = Principal(id="bob", tenant="t1")
HOUR = 3600.0
SETTINGS = CacheSettings(ttl_s=HOUR, max_stale_s=HOUR, max_entry_bytes=64 * 1024, max_entries=3)


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


@pytest.fixture
async def broken_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the database with every APIQ table renamed away (restored afterwards)."""
    names = ["apiq_audit_log", "apiq_secrets", "apiq_spec_cache"]
    engine = open_engine(database_url)
    async with engine.begin() as conn:
        for name in names:
            await conn.execute(sa.text(f"ALTER TABLE {name} RENAME TO {name}_away"))
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            for name in names:
                await conn.execute(sa.text(f"ALTER TABLE {name}_away RENAME TO {name}"))
        await engine.dispose()


async def update_secret(
    engine: AsyncEngine, principal: Principal, name: str, values: dict[str, Any]
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(secrets_table)
            .where(
                secrets_table.c.tenant == principal.tenant,
                secrets_table.c.principal_id == principal.id,
                secrets_table.c.name == name,
            )
            .values(values)
        )


async def secret_row(engine: AsyncEngine, principal: Principal, name: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    sa.select(secrets_table).where(
                        secrets_table.c.principal_id == principal.id, secrets_table.c.name == name
                    )
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


async def test_ciphertexts_swapped_between_rows_fail_closed(engine: AsyncEngine) -> None:
    store = SqlSecretStore(engine, KeyRing.generate())
    await store.put(ALICE, "conn_1/token", b"alice-secret")
    await store.put(BOB, "conn_1/token", b"bob-secret")
    alice = await secret_row(engine, ALICE, "conn_1/token")
    bob = await secret_row(engine, BOB, "conn_1/token")
    moved = ("wrapped_key", "nonce", "ciphertext")
    await update_secret(engine, ALICE, "conn_1/token", {k: bob[k] for k in moved})
    await update_secret(engine, BOB, "conn_1/token", {k: alice[k] for k in moved})
    for principal in (ALICE, BOB):
        with pytest.raises(SecretUnreadable, match="fails authentication") as caught:
            await store.get(principal, "conn_1/token")
        assert "alice-secret" not in str(caught.value)
        assert "bob-secret" not in str(caught.value)


async def test_only_the_value_swapped_still_fails(engine: AsyncEngine) -> None:
    store = SqlSecretStore(engine, KeyRing.generate())
    await store.put(ALICE, "conn_1/token", b"token")
    await store.put(ALICE, "conn_1/refresh", b"refresh")
    refresh = await secret_row(engine, ALICE, "conn_1/refresh")
    await update_secret(
        engine,
        ALICE,
        "conn_1/token",
        {"nonce": refresh["nonce"], "ciphertext": refresh["ciphertext"]},
    )
    with pytest.raises(SecretUnreadable, match="ciphertext fails authentication"):
        await store.get(ALICE, "conn_1/token")


@pytest.mark.parametrize(
    "change",
    [
        {"principal_id": "bob"},
        {"name": "conn_2/token"},
        {"kek_version": 2},
    ],
    ids=["relabelled-owner", "relabelled-name", "relabelled-version"],
)
async def test_a_relabelled_row_fails_closed(engine: AsyncEngine, change: dict[str, Any]) -> None:
    ring = KeyRing.generate().with_new_key()
    store = SqlSecretStore(engine, ring.without(2))
    await store.put(ALICE, "conn_1/token", b"v")
    await update_secret(engine, ALICE, "conn_1/token", change)
    reader = SqlSecretStore(engine, ring)
    owner = BOB if "principal_id" in change else ALICE
    with pytest.raises(SecretUnreadable):
        await reader.get(owner, change.get("name", "conn_1/token"))


async def test_a_flipped_byte_fails_closed(engine: AsyncEngine) -> None:
    store = SqlSecretStore(engine, KeyRing.generate())
    await store.put(ALICE, "conn_1/token", b"value")
    row = await secret_row(engine, ALICE, "conn_1/token")
    flipped = bytes([row["ciphertext"][0] ^ 1]) + bytes(row["ciphertext"][1:])
    await update_secret(engine, ALICE, "conn_1/token", {"ciphertext": flipped})
    with pytest.raises(SecretUnreadable):
        await store.get(ALICE, "conn_1/token")


async def test_rotation_with_a_limit_is_restartable(engine: AsyncEngine) -> None:
    one = KeyRing.generate()
    for i in range(5):
        await SqlSecretStore(engine, one).put(ALICE, f"conn_{i}/token", f"v{i}".encode())
    store = SqlSecretStore(engine, one.with_new_key())
    assert [await store.rotate(limit=2), await store.rotate(limit=2)] == [2, 2]
    assert await store.rotate() == 1
    assert await store.rotate() == 0
    only_two = SqlSecretStore(engine, store.keyring.without(1))
    for i in range(5):
        assert await only_two.get(ALICE, f"conn_{i}/token") == f"v{i}".encode()


async def test_rotation_moves_every_readable_row_then_reports_the_unreadable(
    engine: AsyncEngine,
) -> None:
    one = KeyRing.generate()
    for i in range(40):  # more than one batch
        await SqlSecretStore(engine, one).put(ALICE, f"conn_{i:02}/token", b"x")
    await SqlSecretStore(engine, KeyRing.generate(version=5)).put(BOB, "conn_1/token", b"lost")
    store = SqlSecretStore(engine, one.with_new_key().with_new_key())  # v1, v2, v3
    with pytest.raises(SecretUnreadable, match="rotation moved 40 rows but 1") as caught:
        await store.rotate()
    assert caught.value.kek_version == 5
    with pytest.raises(SecretUnreadable, match="rotation moved 0 rows but 1"):
        await store.rotate()


@pytest.mark.parametrize("writer_ring", ["old", "new"])
async def test_rotation_never_overwrites_a_value_put_meanwhile(
    engine: AsyncEngine, database_url: str, monkeypatch: pytest.MonkeyPatch, writer_ring: str
) -> None:
    one = KeyRing.generate()
    await SqlSecretStore(engine, one).put(ALICE, "conn_1/token", b"old")
    two = one.with_new_key()
    # The other writer may not have the new key yet: then only the nonce tells the rows apart.
    newer = seal(one if writer_ring == "old" else two, ALICE, "conn_1/token", b"newer")
    writer = sa.create_engine(sync_url(database_url))
    real_rewrap = secret_store_module.rewrap

    def rewrap_after_a_put(keyring: KeyRing, sealed: SealedSecret) -> SealedSecret:
        # Another process stores a new value between rotate's read and its write.
        with writer.begin() as conn:
            conn.execute(
                sa.update(secrets_table)
                .where(secrets_table.c.principal_id == "alice")
                .values(
                    kek_version=newer.kek_version,
                    wrapped_key=newer.wrapped_key,
                    nonce=newer.nonce,
                    ciphertext=newer.ciphertext,
                )
            )
        return real_rewrap(keyring, sealed)

    store = SqlSecretStore(engine, two)
    monkeypatch.setattr(secret_store_module, "rewrap", rewrap_after_a_put)
    try:
        assert await store.rotate() == 0
    finally:
        writer.dispose()
    monkeypatch.undo()
    assert await store.get(ALICE, "conn_1/token") == b"newer"
    assert await store.rotate() == (1 if writer_ring == "old" else 0)
    assert await SqlSecretStore(engine, two.without(1)).get(ALICE, "conn_1/token") == b"newer"


async def test_overlong_names_are_refused_alike_on_both_backends(engine: AsyncEngine) -> None:
    store = SqlSecretStore(engine, KeyRing.generate())
    with pytest.raises(ConfigurationError, match="at most 400"):
        await store.put(ALICE, "n" * 401, b"v")
    with pytest.raises(ConfigurationError, match="at most 200"):
        await store.put(Principal(id="p" * 201, tenant="t"), "name", b"v")


def test_reprs_hide_the_database_password() -> None:
    engine = open_engine("postgresql://apiq:hunter2@127.0.0.1:1/apiq")
    for adapter in (
        SqlSecretStore(engine, KeyRing.generate()),
        SqlSpecCache(engine),
        SqlAuditSink(engine),
    ):
        assert "hunter2" not in repr(adapter)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


async def test_the_least_recently_fetched_entries_leave_a_full_cache(engine: AsyncEngine) -> None:
    cache = SqlSpecCache(engine, SETTINGS)
    for i, age in enumerate([40, 30, 20, 10]):
        await cache.put(make_cached_spec(f"https://api.example.com/{i}.json", age_s=age))
    assert [row.url.rsplit("/", 1)[1] for row in await cache.entries()] == [
        "3.json",
        "2.json",
        "1.json",
    ]
    assert await cache.get("https://api.example.com/0.json") is None


async def test_instances_on_one_database_share_entries(engine: AsyncEngine) -> None:
    entry = make_cached_spec("https://api.example.com/shared.json")
    await SqlSpecCache(engine, SETTINGS).put(entry)
    got = await SqlSpecCache(engine, SETTINGS).get(entry.url)
    assert got is not None
    assert got.digest == entry.digest


async def test_expired_entries_are_not_served_listed_or_counted(engine: AsyncEngine) -> None:
    clock = Clock()
    cache = SqlSpecCache(engine, SETTINGS, clock=clock)
    await cache.put(make_cached_spec("https://api.example.com/a.json"))
    await cache.put(make_cached_spec("https://api.example.com/b.json"))
    clock.now += 2 * HOUR + 1
    assert await cache.get("https://api.example.com/a.json") is None
    assert await cache.entries() == []
    assert await cache.purge("https://api.example.com/a.json") == 0
    assert await cache.purge() == 0


async def test_a_url_longer_than_any_index_is_a_key(engine: AsyncEngine) -> None:
    url = "https://api.example.com/openapi.json?q=" + "x" * 20_000
    cache = SqlSpecCache(engine, SETTINGS)
    await cache.put(make_cached_spec(url))
    got = await cache.get(url)
    assert got is not None
    assert got.url == url
    assert await cache.purge(url) == 1


def event(action: str, at: datetime, **fields: Any) -> AuditEvent:
    return AuditEvent(action=action, actor="alice", tenant="t1", at=at, **fields)


async def test_pages_are_newest_first_with_the_total(engine: AsyncEngine) -> None:
    sink = SqlAuditSink(engine)
    base = datetime.now(UTC)
    events = [event("spec.fetch", base + timedelta(seconds=i)) for i in range(7)]
    events.append(event("plan.create", base + timedelta(seconds=8)))
    for item in events:
        await sink.record(item)
    query = AuditQuery(action_prefix="spec.", limit=3)
    pages = [await sink.page(query, offset=offset) for offset in (0, 3, 6, 9)]
    assert [total for _, total in pages] == [7, 7, 7, 7]
    got = [e.id for page, _ in pages for e in page]
    assert got == [e.id for e in reversed(events[:7])]
    assert [len(page) for page, _ in pages] == [3, 3, 1, 0]


async def test_events_of_the_same_instant_come_latest_recorded_first(engine: AsyncEngine) -> None:
    sink = SqlAuditSink(engine)
    at = datetime.now(UTC)
    same = [event("spec.fetch", at) for _ in range(3)]
    for item in same:
        await sink.record(item)
    assert [e.id for e in await sink.query(AuditQuery())] == [e.id for e in reversed(same)]


async def test_the_action_prefix_is_literal_and_case_sensitive(engine: AsyncEngine) -> None:
    sink = SqlAuditSink(engine)
    at = datetime.now(UTC)
    for action in ("spec.fetch", "SPEC.fetch", "specXfetch", "spec_cache.hit", "spec%x"):
        await sink.record(event(action, at))

    async def actions(prefix: str) -> set[str]:
        return {e.action for e in await sink.query(AuditQuery(action_prefix=prefix))}

    assert await actions("spec.") == {"spec.fetch"}
    assert await actions("spec_") == {"spec_cache.hit"}
    assert await actions("spec%") == {"spec%x"}
    assert await actions("SPEC") == {"SPEC.fetch"}


async def test_details_json_cannot_hold_are_kept_as_text(engine: AsyncEngine) -> None:
    sink = SqlAuditSink(engine)
    recorded = event("spec.fetch", datetime.now(UTC), detail={"when": datetime(2024, 1, 2, 3, 4)})
    await sink.record(recorded)
    (got,) = await sink.query(AuditQuery(event_id=recorded.id))
    assert got.detail == {"when": "2024-01-02 03:04:00"}


async def test_a_failed_audit_write_raises_and_says_so(broken_engine: AsyncEngine) -> None:
    canary = "canary-" + hashlib.sha256(b"audit").hexdigest()[:12]
    with pytest.raises(StorageError, match="audit log could not be written") as caught:
        await SqlAuditSink(broken_engine).record(
            event("credential.use", datetime.now(UTC), detail={"hint": canary})
        )
    assert caught.value.operation == "audit.record"
    assert canary not in str(caught.value)
    assert caught.value.__cause__ is not None  # the driver's error stays chained for the log


async def test_database_failures_of_every_adapter_are_storage_errors(
    broken_engine: AsyncEngine,
) -> None:
    store = SqlSecretStore(broken_engine, KeyRing.generate())
    with pytest.raises(StorageError, match="secret store could not be used") as put_failed:
        await store.put(ALICE, "conn_1/token", b"canary-value")
    assert "canary-value" not in str(put_failed.value)
    with pytest.raises(StorageError, match="secret store"):
        await store.get(ALICE, "conn_1/token")
    with pytest.raises(StorageError, match="spec cache could not be used"):
        await SqlSpecCache(broken_engine).entries()
    with pytest.raises(StorageError, match="audit log could not be read"):
        await SqlAuditSink(broken_engine).query(AuditQuery())


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_unreachable_database_is_a_transient_failure(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = (
        f"sqlite:///{tmp_path_factory.mktemp('gone') / 'no-dir' / 'apiq.sqlite'}"
        if backend == "sqlite"
        else "postgresql://postgres@127.0.0.1:1/apiq?connect_timeout=3"  # nothing listens
    )
    engine = open_engine(url)
    try:
        with pytest.raises(StorageError, match="audit log could not be written") as caught:
            await SqlAuditSink(engine).record(event("spec.fetch", datetime.now(UTC)))
        assert (caught.value.transient, caught.value.backend) == (True, backend)
        assert caught.value.public_message == "Storage unavailable, see logs"
    finally:
        await engine.dispose()
        await aiosqlite_threads_stopped()
