"""The SecretStore contract over every in-tree store of core."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from apiq.ports import SecretStore
from apiq.secrets import EncryptedFileSecretStore, KeyRing, MemorySecretStore
from apiq.testing.secret_store_contract import SecretStoreContract

OpenStore = Callable[[KeyRing], SecretStore]


def _memory(_: Path) -> OpenStore:
    opened: list[MemorySecretStore] = []

    def open_store(keyring: KeyRing) -> SecretStore:
        # Later opens share the first store's rows: memory's stand-in for a restart.
        store = opened[0].with_keyring(keyring) if opened else MemorySecretStore(keyring)
        opened.append(store)
        return store

    return open_store


def _encrypted_file(tmp_path: Path) -> OpenStore:
    return lambda keyring: EncryptedFileSecretStore(tmp_path / "secrets.json", keyring)


ADAPTERS: dict[str, Callable[[Path], OpenStore]] = {
    "memory": _memory,
    "encrypted_file": _encrypted_file,
}


class TestSecretStore(SecretStoreContract):
    @pytest.fixture(params=sorted(ADAPTERS))
    def open_secret_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
        return ADAPTERS[request.param](tmp_path)
