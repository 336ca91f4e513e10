"""Server-side sessions: 256-bit random tokens, kept only as SHA-256 hashes.

A session ends when idle too long, when it reaches its absolute lifetime, at logout, and
(all of a user's sessions) at a password change, a role change or when the user is
disabled. `last_seen_at` is written at most once a minute (more often when the idle timeout
is short), so reading a session is seldom a write.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from apiq_adapters.sql.tables import sessions, users
from apiq_server.auth.current import CurrentUser

__all__ = ["NewSession", "SessionStore", "token_hash"]

_TOUCH_EVERY_S = 60.0


def token_hash(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: give `token` to the user and keep nothing of it."""

    token: str
    csrf_token: str
    expires_at: float


class SessionStore:
    """Opens, finds and revokes sessions in the database.

    Args:
        engine: The server's database.
        idle_s: A session unused this long ends.
        max_s: A session ends this long after it opened.
        clock: POSIX seconds (tests pass their own).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        idle_s: float,
        max_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._idle_s = idle_s
        self._max_s = max_s
        self._clock = clock
        # A stale `last_seen_at` shortens the idle timeout by up to this much; keep that
        # a small part of it.
        self._touch_every_s = min(_TOUCH_EVERY_S, idle_s / 4)

    async def open(self, user_id: str) -> NewSession:
        """A new session for `user_id` (called at login: never reuse an old one)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()
        async with self._engine.begin() as db:
            await db.execute(
                sessions.insert().values(
                    token_hash=token_hash(token),
                    user_id=user_id,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self._max_s,
                    revoked=False,
                )
            )
        return NewSession(token=token, csrf_token=csrf, expires_at=now + self._max_s)

    async def find(self, token: str, *, via_cookie: bool) -> CurrentUser | None:
        """The user of a live session with `token`, or None (unknown, ended, disabled)."""
        digest = token_hash(token)
        now = self._clock()
        query = (
            sa.select(sessions, users.c.tenant, users.c.email, users.c.role, users.c.disabled)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.token_hash == digest)
        )
        async with self._engine.connect() as db:
            row = (await db.execute(query)).first()
        if row is None or row.revoked or row.disabled:
            return None
        if now >= row.expires_at or now - row.last_seen_at >= self._idle_s:
            return None
        if now - row.last_seen_at >= self._touch_every_s:
            async with self._engine.begin() as db:
                await db.execute(
                    sessions.update()
                    .where(sessions.c.token_hash == digest)
                    .values(last_seen_at=now)
                )
        return CurrentUser(
            id=row.user_id,
            tenant=row.tenant,
            email=row.email,
            role=row.role,
            session_hash=digest,
            csrf_token=row.csrf_token,
            via_cookie=via_cookie,
        )

    async def revoke(self, session_hash: str) -> None:
        """End one session (logout)."""
        async with self._engine.begin() as db:
            await db.execute(
                sessions.update().where(sessions.c.token_hash == session_hash).values(revoked=True)
            )

    async def revoke_user(self, user_id: str) -> int:
        """End every session of `user_id`; returns how many were live."""
        async with self._engine.begin() as db:
            result = await db.execute(
                sessions.update()
                .where(sessions.c.user_id == user_id, sessions.c.revoked.is_(False))
                .values(revoked=True)
            )
        return int(result.rowcount or 0)
