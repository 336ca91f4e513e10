"""Per-user rate limits (planning, spec registration, executions): 429 with Retry-After.

Counted in Redis when `APIQ_REDIS_URL` is set, so every server process shares one count;
otherwise (or while Redis is down) in this process's memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from apiq_server.errors import RateLimited

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["MemoryRateLimiter", "RateLimiter", "RedisRateLimiter", "open_rate_limiter"]

WINDOW_S = 60


class RateLimiter(Protocol):
    """Counts hits per (kind, user) in fixed one-minute windows."""

    async def hit(self, kind: str, user_id: str, *, limit: int) -> None:
        """Count one hit. Raises RateLimited once `limit` hits fall in the window."""
        ...


def _limited(kind: str, limit: int, window: int, now: float) -> RateLimited:
    """The error for one hit too many in `window`; Retry-After is when the window ends."""
    retry = max(1, math.ceil((window + 1) * WINDOW_S - now))
    return RateLimited(
        f"too many {kind} requests: at most {limit} a minute; retry in {retry} s",
        retry_after_s=retry,
    )


class MemoryRateLimiter:
    """Fixed-window counts in this process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, str, int], int] = {}

    async def hit(self, kind: str, user_id: str, *, limit: int) -> None:
        now = self._clock()
        window = int(now // WINDOW_S)
        for key in [k for k in self._counts if k[2] < window]:
            del self._counts[key]
        key = (kind, user_id, window)
        self._counts[key] = self._counts.get(key, 0) + 1
        if self._counts[key] > limit:
            raise _limited(kind, limit, window, now)


class RedisRateLimiter:
    """Fixed-window counts in Redis, shared by every process on the same Redis and prefix.

    One key per (window, kind, user), counted with INCR and given an expiry in the same
    MULTI/EXEC transaction, so a count never outlives its window by more than a minute.
    While Redis is unreachable, `fallback` counts (per process: degraded, not broken).

    Args:
        client: a `redis.asyncio.Redis`; borrowed, the caller closes it.
        fallback: counts while Redis is down; a new `MemoryRateLimiter` when None.
        prefix: the start of every key this limiter writes.
        retry_s: after a failure, seconds during which Redis is not tried again.
        clock: seconds since the epoch (windows are aligned on it); inject a fake in tests.
    """

    def __init__(
        self,
        client: Redis,
        *,
        fallback: RateLimiter | None = None,
        prefix: str = "apiq:ratelimit:",
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Imported here: the redis client is needed only when Redis is configured.
        from apiq_adapters.redis import REDIS_DOWN_ERRORS, RedisOutage

        self._down_errors = REDIS_DOWN_ERRORS
        self._client = client
        self._fallback = fallback if fallback is not None else MemoryRateLimiter(clock)
        self._prefix = prefix
        self._clock = clock
        self._outage = RedisOutage(
            f"rate limiting (counting per process in {type(self._fallback).__name__})",
            retry_s=retry_s,
        )

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and the fallback counts."""
        return self._outage.down

    async def hit(self, kind: str, user_id: str, *, limit: int) -> None:
        """Count one hit. Raises RateLimited once `limit` hits fall in the window."""
        now = self._clock()
        window = int(now // WINDOW_S)
        if self._outage.should_try():
            key = f"{self._prefix}{window}:{kind}:{user_id}"
            try:
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, 2 * WINDOW_S)
                    count, _ = await pipe.execute()
            except self._down_errors as exc:
                self._outage.failed(exc)
            else:
                self._outage.succeeded()
                if int(count) > limit:
                    raise _limited(kind, limit, window, now)
                return
        await self._fallback.hit(kind, user_id, limit=limit)


def open_rate_limiter(redis: Any | None) -> RateLimiter:
    """The limiter for this deployment: Redis-backed when a client is given."""
    if redis is None:
        return MemoryRateLimiter()
    return RedisRateLimiter(redis, fallback=MemoryRateLimiter())
