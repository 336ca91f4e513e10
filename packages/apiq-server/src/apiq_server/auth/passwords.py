"""Password hashing with Argon2id (SECURITY.md: m >= 19 MiB, t >= 2) and the length rule."""

from __future__ import annotations

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "hash_password", "needs_rehash", "verify_password"]

MIN_LENGTH = 8
MAX_LENGTH = 256
"""Characters; any Unicode, never truncated (Argon2 hashes the whole UTF-8 encoding)."""

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
"""OWASP's Argon2id minimum: 19 MiB, 2 iterations, 1 lane."""
_DUMMY_HASH = _HASHER.hash("apiq: a password nobody has")


async def hash_password(password: str) -> str:
    """The Argon2id hash of `password` (computed in a worker thread: it takes ~30 ms)."""
    return await anyio.to_thread.run_sync(_HASHER.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches `stored_hash`. With no hash (unknown user) it still
    spends the time of one verification, so response times do not reveal accounts."""

    def verify() -> bool:
        try:
            return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(verify)


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored_hash)
