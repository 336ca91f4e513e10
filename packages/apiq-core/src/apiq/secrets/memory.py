"""`MemorySecretStore`: secrets kept envelope-encrypted in process memory.

Rows are encrypted exactly as the file store encrypts them, so both pass the same contract
(tampering, retired keys, rotation); only durability differs. Without a key ring the store
makes a random one that lives and dies with the process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.lowlevel

from apiq.errors import SecretUnreadable
from apiq.models import Principal
from apiq.secrets.envelope import (
    KeyRing,
    SealedSecret,
    rewrap,
    rotation_incomplete,
    seal,
    secret_not_found,
    unseal,
)

__all__ = ["MemorySecretStore"]


class MemorySecretStore:
    """SecretStore in memory, for tests, notebooks and single-process demos.

    Args:
        keyring: the key ring to encrypt with; None makes an ephemeral random one.
    """

    def __init__(self, keyring: KeyRing | None = None) -> None:
        self.keyring = keyring if keyring is not None else KeyRing.generate()
        """The ring in use: its newest version wraps writes; any listed version reads."""
        self._rows: dict[tuple[str, str, str], SealedSecret] = {}

    def __repr__(self) -> str:
        return f"MemorySecretStore(rows={len(self._rows)}, keyring={self.keyring!r})"

    def with_keyring(self, keyring: KeyRing) -> MemorySecretStore:
        """A store over these same rows using `keyring`, as a restart with a new key would.

        Rows written through either store are seen by both.
        """
        other = MemorySecretStore(keyring)
        other._rows = self._rows
        return other

    async def put(self, principal: Principal, name: str, value: bytes) -> None:
        """Store `value` under (principal, name) with a fresh data key, replacing any other."""
        sealed = seal(self.keyring, principal, name, value)
        self._rows[sealed.key] = sealed

    async def get(self, principal: Principal, name: str) -> bytes:
        """The value stored under (principal, name).

        Raises:
            SecretNotFound: this principal has no secret of that name.
            SecretUnreadable: the row cannot be decrypted (retired key version, tampering).
        """
        sealed = self._rows.get((principal.tenant, principal.id, name))
        if sealed is None:
            raise secret_not_found(principal, name)
        return unseal(self.keyring, sealed)

    async def delete(self, principal: Principal, name: str) -> None:
        """Forget the value; a missing name is not an error."""
        self._rows.pop((principal.tenant, principal.id, name), None)

    async def rotate(self, *, limit: int | None = None) -> int:
        """Re-wrap data keys of rows under older versions with the newest key.

        Each row is replaced whole, and the event loop runs between rows, so readers are
        never blocked and never see a half-moved row. Re-running continues where an
        interrupted run stopped.

        Args:
            limit: move at most this many rows in this call (None: all).

        Returns:
            How many rows were moved.

        Raises:
            SecretUnreadable: some rows could not be re-wrapped (retired version, tampering);
                raised after every other row was moved.
        """
        newest = self.keyring.newest
        moved = 0
        failures: list[SecretUnreadable] = []
        for key in list(self._rows):
            if limit is not None and moved >= limit:
                break
            sealed = self._rows.get(key)
            if sealed is None or sealed.kek_version == newest:
                continue  # deleted or rewritten since the snapshot
            try:
                self._rows[key] = rewrap(self.keyring, sealed)
            except SecretUnreadable as exc:
                failures.append(exc)
                continue
            moved += 1
            await anyio.lowlevel.checkpoint()
        if failures:
            raise rotation_incomplete(moved, failures)
        return moved


if TYPE_CHECKING:
    from apiq.ports import SecretStore

    _: type[SecretStore] = MemorySecretStore
