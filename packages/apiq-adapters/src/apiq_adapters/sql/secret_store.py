"""`SqlSecretStore`: envelope-encrypted secrets in the `apiq_secrets` table.

Rows hold what `apiq.secrets.envelope.seal` makes (key version, wrapped data key, nonce,
ciphertext) and never a clear value; the AAD binds tenant, principal and name, so a
ciphertext copied into another row fails to decrypt. One row per (tenant, principal_id,
name), written with an atomic upsert.

`rotate` re-wraps rows still under older key versions in batches, one transaction each, so it
can stop at any point (crash, `limit`) and a later call continues. A batch updates a row only
if it still holds the nonce that was read, so a value replaced meanwhile by `put` (already
under the newest key) is never overwritten with the old one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from apiq.errors import ConfigurationError, SecretUnreadable
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
from apiq_adapters.sql.errors import storage_errors
from apiq_adapters.sql.tables import secrets
from apiq_adapters.sql.upsert import upsert

__all__ = ["SqlSecretStore"]

_ROTATE_BATCH = 32
"""Rows re-wrapped per transaction; short transactions keep readers and writers moving."""

_T = secrets.c
_KEY = (_T.tenant, _T.principal_id, _T.name)


class SqlSecretStore:
    """SecretStore over the `apiq_secrets` table, shared by every process on the database.

    Args:
        engine: an engine on a migrated database; borrowed, the caller disposes of it.
        keyring: the key ring; its newest version wraps writes, any listed version reads.
    """

    def __init__(self, engine: AsyncEngine, keyring: KeyRing) -> None:
        self._engine = engine
        self.keyring = keyring
        """The ring in use."""

    def __repr__(self) -> str:
        return f"SqlSecretStore(engine={self._engine.url!r}, keyring={self.keyring!r})"

    async def put(self, principal: Principal, name: str, value: bytes) -> None:
        """Store `value` under (principal, name) with a fresh data key, replacing any other.

        Raises:
            ConfigurationError: empty or over-long name or owner, or a value over the limit.
            StorageError: the database failed.
        """
        _check_lengths(principal, name)
        sealed = seal(self.keyring, principal, name, value)
        values = {
            "tenant": sealed.tenant,
            "principal_id": sealed.principal_id,
            "name": sealed.name,
            "kek_version": sealed.kek_version,
            "wrapped_key": sealed.wrapped_key,
            "nonce": sealed.nonce,
            "ciphertext": sealed.ciphertext,
        }
        statement = upsert(
            self._engine.dialect.name, secrets, values, key=["tenant", "principal_id", "name"]
        )
        with storage_errors("secrets.put", self._engine):
            async with self._engine.begin() as conn:
                await conn.execute(statement)

    async def get(self, principal: Principal, name: str) -> bytes:
        """The value stored under (principal, name).

        Raises:
            SecretNotFound: this principal has no secret of that name.
            SecretUnreadable: the row cannot be decrypted (retired key version, tampering).
            StorageError: the database failed.
        """
        query = sa.select(secrets).where(*_owned(principal, name))
        with storage_errors("secrets.get", self._engine):
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise secret_not_found(principal, name)
        return unseal(self.keyring, _sealed(row))

    async def delete(self, principal: Principal, name: str) -> None:
        """Forget the value; a missing name is not an error.

        Raises:
            StorageError: the database failed.
        """
        with storage_errors("secrets.delete", self._engine):
            async with self._engine.begin() as conn:
                await conn.execute(sa.delete(secrets).where(*_owned(principal, name)))

    async def rotate(self, *, limit: int | None = None) -> int:
        """Re-wrap data keys of rows under older versions with the newest key.

        Args:
            limit: move at most this many rows in this call (None: all).

        Returns:
            How many rows were moved.

        Raises:
            SecretUnreadable: some rows could not be re-wrapped (retired version, tampering);
                raised after every other row was moved.
            StorageError: the database failed; rows moved before stay moved.
        """
        newest = self.keyring.newest
        moved = 0
        failures: list[SecretUnreadable] = []
        after: tuple[str, str, str] | None = None  # keyset cursor: rows that failed stay behind
        while limit is None or moved < limit:
            budget = _ROTATE_BATCH if limit is None else min(_ROTATE_BATCH, limit - moved)
            query = sa.select(secrets).where(_T.kek_version != newest).order_by(*_KEY).limit(budget)
            if after is not None:
                query = query.where(sa.tuple_(*_KEY) > sa.tuple_(*after))
            with storage_errors("secrets.rotate", self._engine):
                async with self._engine.connect() as conn:
                    rows = [_sealed(row) for row in (await conn.execute(query)).mappings()]
            if not rows:
                break
            after = rows[-1].key
            rewrapped: list[tuple[SealedSecret, SealedSecret]] = []
            for old in rows:
                try:
                    rewrapped.append((old, rewrap(self.keyring, old)))
                except SecretUnreadable as exc:
                    failures.append(exc)
            if rewrapped:
                moved += await self._save_rewrapped(rewrapped)
        if failures:
            raise rotation_incomplete(moved, failures)
        return moved

    async def _save_rewrapped(self, pairs: list[tuple[SealedSecret, SealedSecret]]) -> int:
        count = 0
        with storage_errors("secrets.rotate", self._engine):
            async with self._engine.begin() as conn:
                for old, new in pairs:
                    statement = (
                        sa.update(secrets)
                        .where(
                            *(column == part for column, part in zip(_KEY, old.key, strict=True)),
                            _T.kek_version == old.kek_version,
                            _T.nonce == old.nonce,
                        )
                        .values(kek_version=new.kek_version, wrapped_key=new.wrapped_key)
                    )
                    count += (await conn.execute(statement)).rowcount
        return count


def _owned(principal: Principal, name: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (_T.tenant == principal.tenant, _T.principal_id == principal.id, _T.name == name)


def _check_lengths(principal: Principal, name: str) -> None:
    # PostgreSQL refuses a longer value and SQLite would keep it: refuse on both, and say why.
    for label, text, column in (
        ("tenant", principal.tenant, _T.tenant),
        ("principal id", principal.id, _T.principal_id),
        ("secret name", name, _T.name),
    ):
        length = column.type.length if isinstance(column.type, sa.String) else None
        if isinstance(text, str) and length is not None and len(text) > length:
            raise ConfigurationError(
                f"the {label} {text[:40]!r}... is {len(text)} characters; the secret store "
                f"accepts at most {length}"
            )


def _sealed(row: sa.RowMapping) -> SealedSecret:
    return SealedSecret(
        tenant=row["tenant"],
        principal_id=row["principal_id"],
        name=row["name"],
        kek_version=row["kek_version"],
        wrapped_key=bytes(row["wrapped_key"]),
        nonce=bytes(row["nonce"]),
        ciphertext=bytes(row["ciphertext"]),
    )


if TYPE_CHECKING:
    from apiq.ports import SecretStore

    _: type[SecretStore] = SqlSecretStore
