"""`RedisOutage`: when an adapter should try Redis again, and one warning per outage.

Every Redis adapter falls back to another store while Redis is unreachable. Without a
breaker each call would first pay the client's connect timeout and retries (seconds when a
host drops packets), so after a failure Redis is skipped for `retry_s` and then tried again;
the first success ends the outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.exceptions

__all__ = ["REDIS_DOWN_ERRORS", "RedisOutage"]

logger = logging.getLogger("apiq_adapters.redis")

REDIS_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # refused, reset, DNS, auth, still loading the dataset
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica after failover: writes refused for a while
    redis.exceptions.OutOfMemoryError,  # maxmemory reached with a noeviction policy
    OSError,
    TimeoutError,
)
"""Errors that mean Redis is unavailable. Other Redis errors are bugs and propagate."""


class RedisOutage:
    """Whether one adapter's Redis is reachable, as far as its last call could tell.

    Args:
        what: names the adapter and its fallback in log lines ("spec cache -> SqlSpecCache").
        retry_s: seconds during which Redis is not tried again after a failure.
        clock: monotonic seconds; inject a fake one in tests.
    """

    def __init__(
        self, what: str, *, retry_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._what = what
        self._retry_s = retry_s
        self._clock = clock
        self._down = False
        self._retry_at = 0.0

    @property
    def down(self) -> bool:
        """True from a failed call until a successful one."""
        return self._down

    def should_try(self) -> bool:
        """Whether to call Redis now (always while it is up; after `retry_s` when down)."""
        return not self._down or self._clock() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        """Record a failed call; the first failure of an outage logs a warning."""
        self._retry_at = self._clock() + self._retry_s
        if not self._down:
            self._down = True
            logger.warning(
                "Redis is unreachable (%s: %s); %s is degraded until it answers again",
                type(exc).__name__,
                exc,
                self._what,
            )

    def succeeded(self) -> None:
        """Record a successful call; ends an outage (and says so in the log)."""
        if self._down:
            self._down = False
            logger.warning("Redis answers again; %s uses it again", self._what)
