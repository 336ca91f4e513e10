"""A per-connection outbound rate limit: a token bucket, tightened by the API's own headers.

Each key (a connection id) has a bucket of `burst` tokens refilled at `rate` per second;
`acquire` takes one, sleeping first when none is left. `observe` reads the rate-limit headers
of a response and can only make the bucket stricter, never looser than configured:

- `X-RateLimit-Remaining` / `X-RateLimit-Reset` (GitHub, Twitter style; the reset is epoch
  seconds when above 1e9, epoch milliseconds above 1e12, otherwise seconds from now);
- `RateLimit-Remaining` / `RateLimit-Reset` (IETF draft, delta seconds);
- the combined `RateLimit: limit=100, remaining=0, reset=30` field (and the later draft's
  `r=` / `t=` parameters).

`remaining=0` blocks the key until the reset; a positive remaining caps the tokens and paces
the key at `remaining / reset` per second until the reset. A reset further away than
`max_wait` is not waited for: `acquire` raises instead, so a call never hangs for an hour.
Malformed values are ignored: an API's headers must never break a call.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import anyio
import httpx

from apiq.errors import ConfigurationError, ExecutionError

__all__ = ["RateLimiter"]

_EPOCH_SECONDS = 1e9
"""Reset values above this are a Unix time (2001-09-09 onwards), not a delay."""
_EPOCH_MILLISECONDS = 1e12
_NUMBER = re.compile(r"\s*([0-9]{1,20}(?:\.[0-9]{1,9})?)\s*")
_PARAM = re.compile(r"\s*([A-Za-z-]{1,20})\s*=\s*\"?([^\",;]{0,40})\"?\s*")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    blocked_until: float = -math.inf
    paced_rate: float = math.inf
    paced_until: float = -math.inf
    version: int = 0
    """Bumped by every tightening, so a sleeping `acquire` knows to look again."""


class RateLimiter:
    """Token buckets keyed by connection id, tightened from rate-limit response headers.

    Args:
        rate: Tokens added per second (the sustained calls per second allowed).
        burst: Bucket size: calls that may go at once after a quiet period.
        max_wait: Longest wait for an API's announced reset; a longer one raises.
        clock: Monotonic seconds.
        wall_clock: Unix time, to read epoch reset values.
        sleep: Awaitable sleep (injected so tests run without waiting).

    Raises:
        ConfigurationError: `rate` is not a positive finite number, `burst` is below 1, or
            `max_wait` is negative.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_wait: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ConfigurationError(f"rate {rate!r} must be a positive number of calls per second")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ConfigurationError(f"burst {burst!r} must be an integer of at least 1")
        if not (math.isfinite(max_wait) and max_wait >= 0):
            raise ConfigurationError(f"max_wait {max_wait!r} must be a non-negative number")
        self.rate = float(rate)
        self.burst = burst
        self.max_wait = max_wait
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._buckets: dict[str, _Bucket] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def acquire(self, key: str, *, operation_id: str | None = None) -> float:
        """Take one token for `key`, sleeping until one is available.

        Waiters of one key queue on a lock, so they are released one interval apart.

        Args:
            key: The connection id.
            operation_id: Named in the error, when given.

        Returns:
            Seconds slept (0.0 when a token was ready).

        Raises:
            ExecutionError: The API announced a reset further away than `max_wait`.
        """
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Lock()
        waited = 0.0
        async with lock:
            bucket = self._bucket(key)
            while True:
                now = self._clock()
                self._refill(bucket, now)
                wait = self._wait_needed(bucket, now)
                if wait <= 0:
                    break
                if wait > self.max_wait:
                    raise ExecutionError(
                        f"The API of connection {key!r} asked APIQ to wait {wait:.0f} s for its "
                        f"rate limit to reset, longer than the {self.max_wait:.0f} s APIQ "
                        "waits; retry later or raise max_wait.",
                        operation_id=operation_id,
                    )
                version = bucket.version
                await self._sleep(wait)
                waited += wait
                if bucket.version == version:
                    # Slept the computed time and nothing tightened since: go, even if the
                    # clock reads a hair early; the token taken below may go negative and
                    # the next caller waits that much longer.
                    self._refill(bucket, max(self._clock(), now + wait))
                    break
            bucket.tokens -= 1.0
        return waited

    def observe(
        self,
        key: str,
        headers: Mapping[str, str] | httpx.Headers,
        *,
        now: float | None = None,
    ) -> None:
        """Tighten `key`'s budget from a response's rate-limit headers; never loosen it.

        Args:
            key: The connection id.
            headers: The response headers (any case; an `httpx.Headers` or a plain mapping).
            now: Unix time the response arrived, to read epoch resets; None reads the wall
                clock.
        """
        lowered = {str(name).lower(): str(value) for name, value in headers.items()}
        wall = self._wall_clock() if now is None else now
        found: list[tuple[int | None, float | None]] = []
        for prefix in ("x-ratelimit-", "ratelimit-"):
            remaining = _count(lowered.get(prefix + "remaining"))
            reset = _reset_seconds(lowered.get(prefix + "reset"), wall, epoch=prefix[0] == "x")
            if remaining is not None:
                found.append((remaining, reset))
        if "ratelimit" in lowered:
            found.append(_combined(lowered["ratelimit"]))
        for remaining, reset in found:
            if remaining is not None:
                self._tighten(key, remaining, reset)

    def _bucket(self, key: str) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=self._clock())
        return bucket

    def _tighten(self, key: str, remaining: int, reset: float | None) -> None:
        bucket = self._bucket(key)
        now = self._clock()
        self._refill(bucket, now)
        bucket.tokens = min(bucket.tokens, float(remaining))
        if reset is not None and remaining == 0:
            bucket.blocked_until = max(bucket.blocked_until, now + reset)
        elif reset is not None and reset > 0:
            # Spread what is left over the window, but never faster than configured.
            bucket.paced_rate = min(self.rate, remaining / reset)
            bucket.paced_until = max(bucket.paced_until, now + reset)
        bucket.version += 1

    def _refill(self, bucket: _Bucket, now: float) -> None:
        if now <= bucket.updated:
            return
        paced_end = min(now, bucket.paced_until)
        gained = 0.0
        if paced_end > bucket.updated:
            gained += (paced_end - bucket.updated) * bucket.paced_rate
        gained += (now - max(bucket.updated, paced_end)) * self.rate
        bucket.tokens = min(float(self.burst), bucket.tokens + gained)
        bucket.updated = now

    def _wait_needed(self, bucket: _Bucket, now: float) -> float:
        blocked = max(0.0, bucket.blocked_until - now)
        deficit = 1.0 - bucket.tokens
        if deficit <= 0:
            return blocked
        paced_left = bucket.paced_until - now
        if paced_left > 0:
            if deficit <= paced_left * bucket.paced_rate:
                return max(blocked, deficit / bucket.paced_rate)
            deficit -= paced_left * bucket.paced_rate
            return max(blocked, paced_left + deficit / self.rate)
        return max(blocked, deficit / self.rate)


def _count(value: str | None) -> int | None:
    """A non-negative integer header value, None when absent or malformed."""
    if value is None or not value.strip().isascii() or not value.strip().isdigit():
        return None
    text = value.strip()
    return int(text) if len(text) <= 18 else None


def _reset_seconds(value: str | None, wall: float, *, epoch: bool) -> float | None:
    """Seconds from now until the reset, None when absent or malformed.

    Only the `X-RateLimit-Reset` family (`epoch=True`) may carry a Unix time; the IETF
    fields are always delta seconds.
    """
    if value is None:
        return None
    match = _NUMBER.fullmatch(value)
    if match is None:
        return None
    seconds = float(match.group(1))
    if epoch and seconds > _EPOCH_MILLISECONDS:
        seconds = seconds / 1000.0 - wall
    elif epoch and seconds > _EPOCH_SECONDS:
        seconds -= wall
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _combined(value: str) -> tuple[int | None, float | None]:
    """(remaining, reset seconds) of a combined `RateLimit` field, each None when absent."""
    params: dict[str, str] = {}
    for part in re.split(r"[,;]", value[:1000]):
        match = _PARAM.fullmatch(part)
        if match is not None:
            params.setdefault(match.group(1).lower(), match.group(2))
    remaining = _count(params.get("remaining", params.get("r")))
    reset = _reset_seconds(params.get("reset", params.get("t")), 0.0, epoch=False)
    return remaining, reset
