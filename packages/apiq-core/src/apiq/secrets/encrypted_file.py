"""`EncryptedFileSecretStore`: envelope-encrypted secrets in one JSON file, the SDK default.

The file holds rows `{owner: {tenant, id}, name, kek_version, wrapped_key, nonce,
ciphertext}` (bytes in base64) and never a clear value. Every change writes a new file
beside it (0o600) and renames it over the old one, so a crash leaves the old file or the new
one, never half of either. An anyio lock orders the writers of one store; a store notices
when the file changed under it (another instance, another process) and reads it again.
Several processes writing at once are not coordinated: give each file one writing process.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

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

__all__ = ["EncryptedFileSecretStore"]

_FORMAT = "apiq-secrets/1"
_ROTATE_BATCH = 32
"""Rows re-wrapped per file write; the lock is released between batches so reads go on."""

_Rows = dict[tuple[str, str, str], SealedSecret]
_Signature = tuple[int, int, int, int]


class EncryptedFileSecretStore:
    """SecretStore keeping encrypted rows in the JSON file `path`.

    Args:
        path: the store file; created (0o600, parent directories 0o700) on first write.
        keyring: the key ring; its newest version wraps writes, any listed version reads.
        fsync: flush each write to the disk before returning (a rotated refresh token
            must survive a power cut).
    """

    def __init__(self, path: Path | str, keyring: KeyRing, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.keyring = keyring
        """The ring in use."""
        self._fsync = fsync
        self._lock = anyio.Lock()
        self._rows: _Rows = {}
        self._signature: _Signature | None = None

    def __repr__(self) -> str:
        return f"EncryptedFileSecretStore(path={str(self.path)!r}, keyring={self.keyring!r})"

    async def put(self, principal: Principal, name: str, value: bytes) -> None:
        """Store `value` under (principal, name) with a fresh data key, replacing any other."""
        sealed = seal(self.keyring, principal, name, value)
        async with self._lock:
            rows = dict(await self._load())
            rows[sealed.key] = sealed
            await self._save(rows)

    async def get(self, principal: Principal, name: str) -> bytes:
        """The value stored under (principal, name).

        Raises:
            SecretNotFound: this principal has no secret of that name.
            SecretUnreadable: the row cannot be decrypted (retired key version, tampering),
                or the file is damaged.
        """
        async with self._lock:
            rows = await self._load()
        sealed = rows.get((principal.tenant, principal.id, name))
        if sealed is None:
            raise secret_not_found(principal, name)
        return unseal(self.keyring, sealed)

    async def delete(self, principal: Principal, name: str) -> None:
        """Forget the value; a missing name is not an error."""
        async with self._lock:
            rows = await self._load()
            key = (principal.tenant, principal.id, name)
            if key in rows:
                await self._save({k: row for k, row in rows.items() if k != key})

    async def rotate(self, *, limit: int | None = None) -> int:
        """Re-wrap data keys of rows under older versions with the newest key.

        Rows move in batches, each batch one atomic file replacement; a crash loses no row
        and re-running continues with the rows still on older versions.

        Args:
            limit: move at most this many rows in this call (None: all).

        Returns:
            How many rows were moved.

        Raises:
            SecretUnreadable: some rows could not be re-wrapped (retired version, tampering);
                raised after every other row was moved.
        """
        moved = 0
        failures: dict[tuple[str, str, str], SecretUnreadable] = {}
        while limit is None or moved < limit:
            budget = _ROTATE_BATCH if limit is None else min(_ROTATE_BATCH, limit - moved)
            async with self._lock:
                newest = self.keyring.newest
                rows = dict(await self._load())
                batch = [
                    key
                    for key, row in rows.items()
                    if row.kek_version != newest and key not in failures
                ][:budget]
                if not batch:
                    break
                count = 0
                for key in batch:
                    try:
                        rows[key] = rewrap(self.keyring, rows[key])
                        count += 1
                    except SecretUnreadable as exc:
                        failures[key] = exc
                if count:
                    await self._save(rows)
                    moved += count
        if failures:
            raise rotation_incomplete(moved, list(failures.values()))
        return moved

    async def _load(self) -> _Rows:
        """The rows on disk, read again only when the file changed. Call under the lock."""
        signature, rows = await anyio.to_thread.run_sync(self._read_if_changed, self._signature)
        if rows is not None or signature is None:
            self._rows = rows if rows is not None else {}
        self._signature = signature
        return self._rows

    def _read_if_changed(self, known: _Signature | None) -> tuple[_Signature | None, _Rows | None]:
        try:
            with self.path.open("rb") as handle:
                info = os.fstat(handle.fileno())
                signature = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
                if signature == known:
                    return signature, None
                data = handle.read()
        except FileNotFoundError:
            return None, None
        return signature, self._decode(data)

    async def _save(self, rows: _Rows) -> None:
        """Replace the file with `rows` atomically. Call under the lock."""
        data = json.dumps(
            {"format": _FORMAT, "rows": [_row_to_json(row) for _, row in sorted(rows.items())]},
            indent=1,
        ).encode("ascii")
        self._signature = await anyio.to_thread.run_sync(self._write, data)
        self._rows = rows

    def _write(self, data: bytes) -> _Signature:
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0o600, so the secrets are never readable by others.
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if self._fsync:
                    os.fsync(handle.fileno())
                info = os.fstat(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        if self._fsync and os.name == "posix":
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # make the rename itself durable
            finally:
                os.close(dir_fd)
        return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)

    def _decode(self, data: bytes) -> _Rows:
        try:
            document = json.loads(data)
            if not isinstance(document, dict) or document.get("format") != _FORMAT:
                raise ValueError(f"not an {_FORMAT} document")
            rows: _Rows = {}
            for item in document["rows"]:
                row = _row_from_json(item)
                if row.key in rows:
                    raise ValueError("two rows share an owner and a name")
                rows[row.key] = row
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            # Fail closed: writing back a partly read file would drop the unread rows.
            raise SecretUnreadable(
                f"the secret file {self.path} is damaged ({type(exc).__name__}: {exc!s:.200}); "
                "restore it from a backup, or move it aside and store the credentials again"
            ) from None
        return rows


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("a bytes field is not a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("a bytes field is not valid base64") from exc


def _row_to_json(row: SealedSecret) -> dict[str, Any]:
    return {
        "owner": {"tenant": row.tenant, "id": row.principal_id},
        "name": row.name,
        "kek_version": row.kek_version,
        "wrapped_key": _b64(row.wrapped_key),
        "nonce": _b64(row.nonce),
        "ciphertext": _b64(row.ciphertext),
    }


def _row_from_json(item: Any) -> SealedSecret:
    owner = item["owner"]
    texts = (owner["tenant"], owner["id"], item["name"])
    version = item["kek_version"]
    if not all(isinstance(text, str) for text in texts):
        raise TypeError("owner and name are strings")
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError("kek_version is an integer")
    return SealedSecret(
        tenant=owner["tenant"],
        principal_id=owner["id"],
        name=item["name"],
        kek_version=version,
        wrapped_key=_unb64(item["wrapped_key"]),
        nonce=_unb64(item["nonce"]),
        ciphertext=_unb64(item["ciphertext"]),
    )


if TYPE_CHECKING:
    from apiq.ports import SecretStore

    _: type[SecretStore] = EncryptedFileSecretStore
