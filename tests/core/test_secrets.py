"""Envelope encryption, key rings and the storage of the core secret stores."""

from __future__ import annotations

import base64
import json
import os
import stat
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.errors import ApiqError, ConfigurationError, SecretNotFound, SecretUnreadable
from apiq.models import Principal
from apiq.secrets import (
    MAX_SECRET_BYTES,
    EncryptedFileSecretStore,
    KeyRing,
    MemorySecretStore,
    SealedSecret,
    rewrap,
    seal,
    unseal,
)

ALICE = Principal(id="alice", tenant="t1")
BOB = Principal(id="bob", tenant="t1")
KEY_A = base64.urlsafe_b64encode(b"a" * 32).decode()
KEY_B = base64.urlsafe_b64encode(b"b" * 32).decode().rstrip("=")


# --- key rings ------------------------------------------------------------------------------


def test_a_bare_key_is_version_one() -> None:
    ring = KeyRing.parse(KEY_A)
    assert (dict(ring.keys), ring.newest) == ({1: b"a" * 32}, 1)


@pytest.mark.parametrize("separator", [",", " ", "\n", " , "])
def test_several_versions_and_the_newest_writes(separator: str) -> None:
    ring = KeyRing.parse(f"v3:{KEY_B}{separator}v1:{KEY_A}\n")
    assert (list(ring.keys), ring.newest) == ([1, 3], 3)
    assert KeyRing.parse(ring.to_text()) == ring


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "holds no key"),
        (f"x1:{KEY_A}", "version like 'v1:'"),
        (f"v0:{KEY_A}", "version like 'v1:'"),
        (f"{KEY_A},{KEY_B}", "version like 'v1:'"),
        (f"v1:{KEY_A},v1:{KEY_B}", "v1 twice"),
        ("v1:" + base64.urlsafe_b64encode(b"s" * 31).decode(), "not 32 bytes"),
        ("v1:not*base64!", "not 32 bytes"),
        ("v1:ñ" + KEY_A[1:], "not 32 bytes"),
    ],
)
def test_a_malformed_key_text_is_refused_without_echoing_it(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        KeyRing.parse(text, source="APIQ_MASTER_KEY")
    assert fragment in str(caught.value)
    assert "APIQ_MASTER_KEY" in str(caught.value)
    key_text = text.partition(":")[2] or text
    if len(key_text) >= 8:
        assert key_text[:8] not in str(caught.value)


@pytest.mark.parametrize(
    "keys", [{}, {0: b"k" * 32}, {True: b"k" * 32}, {1: b"short"}, {1: "k" * 32}]
)
def test_a_key_ring_checks_its_keys(keys: dict[Any, Any]) -> None:
    with pytest.raises(ConfigurationError):
        KeyRing(keys)


def test_from_env_reads_apiq_master_key() -> None:
    assert KeyRing.from_env({"APIQ_MASTER_KEY": f"v2:{KEY_B}"}).newest == 2
    with pytest.raises(ConfigurationError, match="APIQ_MASTER_KEY is not set"):
        KeyRing.from_env({})


def test_rings_grow_and_retire_versions() -> None:
    ring = KeyRing.generate().with_new_key().with_new_key()
    assert list(ring.keys) == [1, 2, 3]
    assert list(ring.without(1).keys) == [2, 3]
    with pytest.raises(ConfigurationError):
        KeyRing.generate().without(1)


def test_key_material_never_shows_in_repr() -> None:
    ring = KeyRing.parse(f"v1:{KEY_A},v2:{KEY_B}")
    assert repr(ring) == "KeyRing(versions=[1, 2], newest=2)"
    assert KEY_A[:12] not in repr(ring)
    assert "aaaa" not in repr(ring)


# --- key files --------------------------------------------------------------------------------


def test_create_file_makes_an_owner_only_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    ring = KeyRing.create_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyRing.from_file(path) == ring
    with pytest.raises(ConfigurationError, match="already exists"):
        KeyRing.create_file(path)


def test_from_file_can_create_once_and_then_reads(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    with pytest.raises(ConfigurationError, match="does not exist"):
        KeyRing.from_file(path)
    first = KeyRing.from_file(path, create=True)
    assert KeyRing.from_file(path, create=True) == first


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660, 0o644, 0o700 | 0o002])
def test_a_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    KeyRing.create_file(path)
    path.chmod(mode)
    with pytest.raises(ConfigurationError) as caught:
        KeyRing.from_file(path)
    assert "group or others" in str(caught.value)
    assert f"chmod 600 {path}" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"v1:\xff\xfe", "not ASCII"), (b"x" * (70 * 1024), "larger"), (b"v1:abc", "32 bytes")],
)
def test_a_bad_key_file_is_refused(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match=fragment):
        KeyRing.from_file(path)


# --- envelope ---------------------------------------------------------------------------------


def _two_rows(ring: KeyRing) -> tuple[SealedSecret, SealedSecret]:
    return (
        seal(ring, ALICE, "conn_1/client_secret", b"alice-secret"),
        seal(ring, BOB, "conn_2/client_secret", b"bob-secret"),
    )


@pytest.mark.parametrize(
    "fields",
    [("wrapped_key", "nonce", "ciphertext"), ("nonce", "ciphertext"), ("wrapped_key",)],
)
def test_ciphertexts_swapped_between_rows_fail(fields: tuple[str, ...]) -> None:
    ring = KeyRing.generate()
    a, b = _two_rows(ring)
    swapped_a = replace(a, **{f: getattr(b, f) for f in fields})
    swapped_b = replace(b, **{f: getattr(a, f) for f in fields})
    for row in (swapped_a, swapped_b):
        with pytest.raises(SecretUnreadable) as caught:
            unseal(ring, row)
        assert caught.value.name == row.name
        assert "store the credential again" in str(caught.value)


def test_a_row_relabelled_to_another_owner_or_field_fails() -> None:
    ring = KeyRing.generate()
    row = seal(ring, ALICE, "conn_1/client_secret", b"s")
    for moved in (
        replace(row, principal_id="bob"),
        replace(row, tenant="t2"),
        replace(row, name="conn_1/client_id"),
        replace(row, name="conn_2/client_secret"),
    ):
        with pytest.raises(SecretUnreadable):
            unseal(ring, moved)


def _flip(data: bytes, position: int) -> bytes:
    position %= max(len(data), 1)
    if not data:
        return b"\x00"
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


@given(
    field=st.sampled_from(
        ["tenant", "principal_id", "name", "kek_version", "wrapped_key", "nonce", "ciphertext"]
    ),
    position=st.integers(min_value=0, max_value=10_000),
    value=st.binary(max_size=64),
)
@settings(max_examples=150, deadline=None)
def test_a_flipped_byte_in_any_field_fails(field: str, position: int, value: bytes) -> None:
    ring = KeyRing.generate().with_new_key()
    row = seal(ring, ALICE, "conn_1/token", value)
    original = getattr(row, field)
    if isinstance(original, bytes):
        changed: Any = _flip(original, position)
    elif isinstance(original, int):
        changed = 1 if original == 2 else 2  # another version the ring holds
    else:
        raw = original.encode()
        changed = _flip(raw, position).decode("utf-8", "surrogateescape")
    with pytest.raises(SecretUnreadable):
        unseal(ring, replace(row, **{field: changed}))


@given(
    value=st.binary(max_size=2048),
    name=st.text(min_size=1, max_size=80),
    tenant=st.text(max_size=20),
    principal_id=st.text(max_size=20),
)
@settings(max_examples=200, deadline=None)
def test_seal_unseal_and_rewrap_round_trip(
    value: bytes, name: str, tenant: str, principal_id: str
) -> None:
    ring = KeyRing.generate()
    owner = Principal(id=principal_id, tenant=tenant)
    row = seal(ring, owner, name, value)
    assert unseal(ring, row) == value
    assert value not in row.ciphertext or len(value) < 4
    newer = ring.with_new_key()
    moved = rewrap(newer, row)
    assert (moved.kek_version, moved.ciphertext) == (2, row.ciphertext)
    assert unseal(newer.without(1), moved) == value


def test_seal_refuses_bad_arguments_without_echoing_the_value() -> None:
    ring = KeyRing.generate()
    with pytest.raises(ConfigurationError):
        seal(ring, ALICE, "", b"x")
    with pytest.raises(TypeError, match="bytes"):
        seal(ring, ALICE, "n", "text")  # type: ignore[arg-type]
    huge = b"canary" * (MAX_SECRET_BYTES // 6 + 1)
    with pytest.raises(ConfigurationError) as caught:
        seal(ring, ALICE, "n", huge)
    assert "canary" not in str(caught.value)


def test_secret_unreadable_is_an_apiq_error_with_a_sanitized_public_message() -> None:
    error = SecretUnreadable("details", name="n", kek_version=3)
    assert isinstance(error, ApiqError)
    assert error.public_message == "Credential unreadable, see logs"
    assert "ciphertext=" not in repr(seal(KeyRing.generate(), ALICE, "n", b"v"))


# --- the file store on disk --------------------------------------------------------------------


def _rows_on_disk(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(path.read_text())["rows"]
    return rows


def _rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"format": "apiq-secrets/1", "rows": rows}))


@pytest.mark.anyio
async def test_the_file_is_owner_only_and_holds_no_clear_value(tmp_path: Path) -> None:
    path = tmp_path / "state" / "secrets.json"
    ring = KeyRing.generate()
    store = EncryptedFileSecretStore(path, ring)
    canary = b"canary-" + os.urandom(8).hex().encode()
    await store.put(ALICE, "conn_1/api_key", canary)
    await EncryptedFileSecretStore(path, ring.with_new_key()).rotate()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    content = path.read_bytes()
    assert canary not in content
    assert base64.b64encode(canary)[:12] not in content
    assert [p.name for p in path.parent.iterdir()] == ["secrets.json"]  # no temp files left
    (row,) = _rows_on_disk(path)
    assert set(row) == {"owner", "name", "kek_version", "wrapped_key", "nonce", "ciphertext"}
    assert (row["owner"], row["kek_version"]) == ({"tenant": "t1", "id": "alice"}, 2)


@pytest.mark.anyio
async def test_rows_swapped_in_the_file_fail_to_decrypt(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    ring = KeyRing.generate()
    store = EncryptedFileSecretStore(path, ring)
    await store.put(ALICE, "conn_1/token", b"alice-token")
    await store.put(BOB, "conn_1/token", b"bob-token")
    first, second = _rows_on_disk(path)
    crypto = ("wrapped_key", "nonce", "ciphertext")
    swapped = [
        {**first, **{k: second[k] for k in crypto}},
        {**second, **{k: first[k] for k in crypto}},
    ]
    _rewrite(path, swapped)
    reopened = EncryptedFileSecretStore(path, ring)
    for principal in (ALICE, BOB):
        with pytest.raises(SecretUnreadable) as caught:
            await reopened.get(principal, "conn_1/token")
        assert caught.value.name == "conn_1/token"
        assert "token" not in str(caught.value).replace("conn_1/token", "")


@pytest.mark.anyio
@pytest.mark.parametrize("field", ["wrapped_key", "nonce", "ciphertext"])
async def test_a_flipped_byte_in_the_file_fails(tmp_path: Path, field: str) -> None:
    path = tmp_path / "secrets.json"
    ring = KeyRing.generate()
    await EncryptedFileSecretStore(path, ring).put(ALICE, "conn_1/token", b"value")
    (row,) = _rows_on_disk(path)
    for position in range(len(base64.b64decode(row[field]))):
        flipped = _flip(base64.b64decode(row[field]), position)
        _rewrite(path, [{**row, field: base64.b64encode(flipped).decode()}])
        with pytest.raises(SecretUnreadable):
            await EncryptedFileSecretStore(path, ring).get(ALICE, "conn_1/token")


@pytest.mark.anyio
async def test_a_row_moved_to_another_owner_in_the_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    ring = KeyRing.generate()
    await EncryptedFileSecretStore(path, ring).put(ALICE, "conn_1/token", b"alice-token")
    (row,) = _rows_on_disk(path)
    _rewrite(path, [{**row, "owner": {"tenant": "t1", "id": "bob"}}])
    store = EncryptedFileSecretStore(path, ring)
    with pytest.raises(SecretNotFound):
        await store.get(ALICE, "conn_1/token")
    with pytest.raises(SecretUnreadable):
        await store.get(BOB, "conn_1/token")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"format": "other/1", "rows": []}',
        b'{"format": "apiq-secrets/1"}',
        b'{"format": "apiq-secrets/1", "rows": [{"name": "n"}]}',
        b"[" * 100_000,
    ],
    ids=["not-json", "array", "format", "no-rows", "row-fields", "deep"],
)
async def test_a_damaged_file_fails_closed(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "secrets.json"
    path.write_bytes(content)
    store = EncryptedFileSecretStore(path, KeyRing.generate())
    for attempt in (store.get(ALICE, "n"), store.put(ALICE, "n", b"v"), store.rotate()):
        with pytest.raises(SecretUnreadable) as caught:
            await attempt
        assert caught.value.name is None
        assert str(path) in str(caught.value)
        assert "backup" in str(caught.value)
    assert path.read_bytes() == content  # never overwritten


@pytest.mark.anyio
async def test_bad_base64_and_duplicate_rows_fail_closed(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    ring = KeyRing.generate()
    await EncryptedFileSecretStore(path, ring).put(ALICE, "n", b"v")
    (row,) = _rows_on_disk(path)
    for rows in ([{**row, "nonce": "!!"}], [row, row], [{**row, "kek_version": "1"}]):
        _rewrite(path, rows)
        with pytest.raises(SecretUnreadable, match="damaged"):
            await EncryptedFileSecretStore(path, ring).get(ALICE, "n")


@pytest.mark.anyio
async def test_two_instances_see_each_others_writes(tmp_path: Path) -> None:
    ring = KeyRing.generate()
    a = EncryptedFileSecretStore(tmp_path / "s.json", ring)
    b = EncryptedFileSecretStore(tmp_path / "s.json", ring)
    await a.put(ALICE, "n", b"1")
    assert await b.get(ALICE, "n") == b"1"
    await b.put(ALICE, "n", b"2")
    assert await a.get(ALICE, "n") == b"2"
    await b.delete(ALICE, "n")
    with pytest.raises(SecretNotFound):
        await a.get(ALICE, "n")


# --- restartable rotation ----------------------------------------------------------------------


@pytest.fixture(params=["memory", "encrypted_file"])
def v1_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """An empty store of each kind under a one-key ring."""
    ring = KeyRing.generate()
    if request.param == "memory":
        return MemorySecretStore(ring)
    return EncryptedFileSecretStore(tmp_path / "s.json", ring)


def _reopen(store: Any, ring: KeyRing) -> Any:
    if isinstance(store, MemorySecretStore):
        return store.with_keyring(ring)
    return EncryptedFileSecretStore(store.path, ring)


@pytest.mark.anyio
async def test_rotation_in_steps_continues_after_a_restart(v1_store: Any) -> None:
    for i in range(5):
        await v1_store.put(ALICE, f"conn_{i}/token", bytes([i]))
    newer = v1_store.keyring.with_new_key()
    assert await _reopen(v1_store, newer).rotate(limit=2) == 2
    assert await _reopen(v1_store, newer).rotate() == 3
    assert await _reopen(v1_store, newer).rotate() == 0
    final = _reopen(v1_store, newer.without(1))
    for i in range(5):
        assert await final.get(ALICE, f"conn_{i}/token") == bytes([i])


@pytest.mark.anyio
async def test_a_cancelled_rotation_loses_nothing_and_resumes(v1_store: Any) -> None:
    for i in range(80):
        await v1_store.put(ALICE, f"conn_{i}/token", bytes([i]))
    newer = v1_store.keyring.with_new_key()
    probe = _reopen(v1_store, newer.without(1))  # reads only rows already moved

    async def cancel_once_a_row_moved(scope: anyio.CancelScope) -> None:
        while True:
            await anyio.lowlevel.checkpoint()
            try:
                await probe.get(ALICE, "conn_0/token")
            except SecretUnreadable:
                continue
            scope.cancel()
            return

    async with anyio.create_task_group() as group:
        group.start_soon(cancel_once_a_row_moved, group.cancel_scope)
        await _reopen(v1_store, newer).rotate()
    remaining = await _reopen(v1_store, newer).rotate()
    assert 0 < remaining < 80
    for i in range(80):
        assert await probe.get(ALICE, f"conn_{i}/token") == bytes([i])


# --- round trips through the stores ------------------------------------------------------------

_names = st.text(min_size=1, max_size=60)


@given(items=st.dictionaries(_names, st.binary(max_size=512), min_size=1, max_size=6))
@settings(max_examples=60, deadline=None)
def test_memory_store_round_trips_any_names_and_values(items: dict[str, bytes]) -> None:
    async def run() -> None:
        store = MemorySecretStore()
        for name, value in items.items():
            await store.put(ALICE, name, value)
        for name, value in items.items():
            assert await store.get(ALICE, name) == value

    anyio.run(run)


@given(items=st.dictionaries(_names, st.binary(max_size=512), min_size=1, max_size=4))
@settings(max_examples=30, deadline=None)
def test_file_store_round_trips_any_names_and_values_across_a_restart(
    items: dict[str, bytes],
) -> None:
    async def run(path: Path) -> None:
        ring = KeyRing.generate()
        store = EncryptedFileSecretStore(path, ring, fsync=False)
        for name, value in items.items():
            await store.put(ALICE, name, value)
        reopened = EncryptedFileSecretStore(path, ring, fsync=False)
        for name, value in items.items():
            assert await reopened.get(ALICE, name) == value

    with tempfile.TemporaryDirectory() as directory:
        anyio.run(run, Path(directory) / "secrets.json")


@pytest.mark.anyio
async def test_names_and_owners_with_lone_surrogates_survive_the_file(tmp_path: Path) -> None:
    ring = KeyRing.generate()
    owner = Principal(id="\udc80id", tenant="t\ud800")
    await EncryptedFileSecretStore(tmp_path / "s.json", ring).put(owner, "n\udfff\x00", b"v")
    reopened = EncryptedFileSecretStore(tmp_path / "s.json", ring)
    assert await reopened.get(owner, "n\udfff\x00") == b"v"
