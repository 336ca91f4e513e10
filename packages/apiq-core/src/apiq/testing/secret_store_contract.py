"""Contract test suite for the SecretStore port.

A third-party store proves it fits by subclassing the suite in its own tests and overriding
one fixture, `open_secret_store`: a function that opens the store's storage with a key ring,
the same storage on every call within one test (empty when the test starts), as a process
restarted with that ring would::

    from apiq.testing import SecretStoreContract

    class TestSqlSecretStore(SecretStoreContract):
        @pytest.fixture
        def open_secret_store(self, engine):
            return lambda keyring: SqlSecretStore(engine, keyring)

The suite checks round trips, replacement, deletion, isolation between principals, reopening,
rotation (also under 20 concurrent readers), retired key versions failing closed, and that no
value ever shows in a repr, an error or a log record. Tampering with stored rows is specific
to each backend's storage; test it beside the adapter (see tests/core/test_secrets.py).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel

from apiq.errors import MissingDependencyError, SecretNotFound, SecretUnreadable
from apiq.models import Principal
from apiq.ports import SecretStore
from apiq.secrets.envelope import KeyRing

try:
    import pytest
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "apiq.testing's contract suites need pytest: pip install pytest"
    ) from exc

__all__ = ["SecretStoreContract"]

OpenSecretStore = Callable[[KeyRing], SecretStore]

ALICE = Principal(id="alice", tenant="t1")
BOB = Principal(id="bob", tenant="t1")
ALICE_ELSEWHERE = Principal(id="alice", tenant="t2")
_READERS = 20


class SecretStoreContract:
    """What every SecretStore must do. Override the `open_secret_store` fixture."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def open_secret_store(self) -> Any:
        """Opens the adapter's storage (the same, initially empty) with a given key ring."""
        raise NotImplementedError("override the open_secret_store fixture with your adapter")

    @pytest.fixture
    def keyring(self) -> KeyRing:
        """A fresh one-key ring (version 1)."""
        return KeyRing.generate()

    @pytest.fixture
    def secret_store(self, open_secret_store: OpenSecretStore, keyring: KeyRing) -> SecretStore:
        """The adapter under test, empty, opened with `keyring`."""
        return open_secret_store(keyring)

    @pytest.mark.anyio
    async def test_get_missing_raises_secret_not_found(self, secret_store: SecretStore) -> None:
        with pytest.raises(SecretNotFound) as caught:
            await secret_store.get(ALICE, "conn_1/api_key")
        assert "conn_1/api_key" in str(caught.value)

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "value",
        [b"sk-live-123", b"", bytes(range(256)), secrets.token_bytes(64 * 1024)],
        ids=["token", "empty", "every-byte", "64KiB"],
    )
    async def test_put_then_get_round_trips(self, secret_store: SecretStore, value: bytes) -> None:
        name = "conn_ü/client_secret"
        await secret_store.put(ALICE, name, value)
        assert await secret_store.get(ALICE, name) == value

    @pytest.mark.anyio
    async def test_put_replaces_the_value(self, secret_store: SecretStore) -> None:
        await secret_store.put(ALICE, "conn_1/token", b"first")
        await secret_store.put(ALICE, "conn_1/token", b"second")
        assert await secret_store.get(ALICE, "conn_1/token") == b"second"

    @pytest.mark.anyio
    async def test_delete_forgets_and_deleting_a_missing_name_is_quiet(
        self, secret_store: SecretStore
    ) -> None:
        await secret_store.put(ALICE, "conn_1/token", b"t")
        await secret_store.put(ALICE, "conn_1/refresh", b"r")
        await secret_store.delete(ALICE, "conn_1/token")
        await secret_store.delete(ALICE, "conn_1/token")
        await secret_store.delete(ALICE, "never/stored")
        with pytest.raises(SecretNotFound):
            await secret_store.get(ALICE, "conn_1/token")
        assert await secret_store.get(ALICE, "conn_1/refresh") == b"r"

    @pytest.mark.anyio
    async def test_another_principal_sees_nothing(self, secret_store: SecretStore) -> None:
        with pytest.raises(SecretNotFound) as before:
            await secret_store.get(BOB, "conn_1/token")
        await secret_store.put(ALICE, "conn_1/token", b"alice's")
        for other in (BOB, ALICE_ELSEWHERE):
            with pytest.raises(SecretNotFound) as caught:
                await secret_store.get(other, "conn_1/token")
            assert "alice's" not in str(caught.value)
        # The error is the same as before alice stored hers: no hint that the name exists.
        with pytest.raises(SecretNotFound) as after:
            await secret_store.get(BOB, "conn_1/token")
        assert str(after.value) == str(before.value)
        await secret_store.delete(BOB, "conn_1/token")
        await secret_store.put(ALICE_ELSEWHERE, "conn_1/token", b"other tenant")
        assert await secret_store.get(ALICE, "conn_1/token") == b"alice's"
        assert await secret_store.get(ALICE_ELSEWHERE, "conn_1/token") == b"other tenant"

    @pytest.mark.anyio
    async def test_owner_and_name_parts_do_not_run_together(
        self, secret_store: SecretStore
    ) -> None:
        rows = [
            (Principal(id="a/b", tenant="t"), "c", b"1"),
            (Principal(id="a", tenant="t"), "b/c", b"2"),
            (Principal(id="t", tenant="a"), "b/c", b"3"),
        ]
        for principal, name, value in rows:
            await secret_store.put(principal, name, value)
        for principal, name, value in rows:
            assert await secret_store.get(principal, name) == value

    @pytest.mark.anyio
    async def test_a_reopened_store_reads_what_was_written(
        self, open_secret_store: OpenSecretStore, keyring: KeyRing
    ) -> None:
        first = open_secret_store(keyring)
        await first.put(ALICE, "conn_1/token", b"kept")
        await first.put(BOB, "conn_1/token", b"bob's")
        await first.delete(BOB, "conn_1/token")
        second = open_secret_store(keyring)
        assert await second.get(ALICE, "conn_1/token") == b"kept"
        with pytest.raises(SecretNotFound):
            await second.get(BOB, "conn_1/token")

    @pytest.mark.anyio
    async def test_rotate_moves_old_rows_to_the_newest_version(
        self, open_secret_store: OpenSecretStore, keyring: KeyRing
    ) -> None:
        old = open_secret_store(keyring)
        values = {f"conn_{i}/token": secrets.token_bytes(16) for i in range(3)}
        for name, value in values.items():
            await old.put(ALICE, name, value)
        assert await old.rotate() == 0  # already on the newest version
        two = keyring.with_new_key()
        store = open_secret_store(two)
        await store.put(BOB, "conn_9/token", b"new write")  # wrapped under v2 at once
        assert await store.rotate() == 3
        assert await store.rotate() == 0
        only_new = open_secret_store(two.without(keyring.newest))
        for name, value in values.items():
            assert await only_new.get(ALICE, name) == value
        assert await only_new.get(BOB, "conn_9/token") == b"new write"

    @pytest.mark.anyio
    async def test_a_retired_key_version_fails_closed(
        self, open_secret_store: OpenSecretStore, keyring: KeyRing
    ) -> None:
        await open_secret_store(keyring).put(ALICE, "conn_1/token", b"under v1")
        retired = open_secret_store(keyring.with_new_key().without(1))
        with pytest.raises(SecretUnreadable) as caught:
            await retired.get(ALICE, "conn_1/token")
        assert (caught.value.name, caught.value.kek_version) == ("conn_1/token", 1)
        assert "v1" in str(caught.value)
        with pytest.raises(SecretUnreadable) as rotating:
            await retired.rotate()
        assert rotating.value.kek_version == 1
        await retired.put(ALICE, "conn_1/token", b"stored again")
        assert await retired.get(ALICE, "conn_1/token") == b"stored again"

    @pytest.mark.anyio
    async def test_rotation_under_concurrent_reads_loses_nothing(
        self, open_secret_store: OpenSecretStore, keyring: KeyRing
    ) -> None:
        expected = {f"conn_{i}/token": secrets.token_bytes(24) for i in range(50)}
        writer = open_secret_store(keyring)
        for name, value in expected.items():
            await writer.put(ALICE, name, value)
        two = keyring.with_new_key()
        store = open_secret_store(two)
        names = list(expected)
        rotated = anyio.Event()
        wrong: list[str] = []
        reads = 0

        async def reader(offset: int) -> None:
            nonlocal reads
            done = 0
            while not rotated.is_set() or done < len(names):
                name = names[(offset + done) % len(names)]
                if await store.get(ALICE, name) != expected[name]:
                    wrong.append(name)
                done += 1
                reads += 1
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as group:
            for offset in range(_READERS):
                group.start_soon(reader, offset)
            moved = await store.rotate()
            rotated.set()
        assert (moved, wrong) == (len(expected), [])
        assert reads >= _READERS * len(names)
        only_new = open_secret_store(two.without(keyring.newest))
        for name, value in expected.items():
            assert await only_new.get(ALICE, name) == value

    @pytest.mark.anyio
    async def test_no_value_in_reprs_errors_or_logs(
        self,
        open_secret_store: OpenSecretStore,
        keyring: KeyRing,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        canary = f"canary-{secrets.token_hex(16)}"
        caplog.set_level(logging.DEBUG)
        store = open_secret_store(keyring)
        await store.put(ALICE, "conn_1/api_key", canary.encode())
        assert await store.get(ALICE, "conn_1/api_key") == canary.encode()
        seen = [repr(store), str(store), repr(keyring)]
        retired = open_secret_store(KeyRing.generate(version=7))
        for failing, principal in ((store, BOB), (retired, ALICE)):
            with pytest.raises((SecretNotFound, SecretUnreadable)) as caught:
                await failing.get(principal, "conn_1/api_key")
            error = caught.value
            seen += [str(error), repr(error), error.public_message, repr(failing)]
        await store.rotate()
        seen.append(caplog.text)
        for text in seen:
            assert canary not in text
