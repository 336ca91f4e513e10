"""Redis backends (`apiq-adapters[redis]`): a spec cache shared by every server process.

`RedisSpecCache` implements the SpecCache port over a borrowed `redis.asyncio.Redis` client.
Redis is optional infrastructure: while it cannot be reached, each adapter logs one warning
and serves from its fallback (degraded, not broken). `RedisOutage` tracks that state, and
`REDIS_DOWN_ERRORS` names the errors that mean "Redis is unavailable" rather than a bug; the
server's Redis rate limiter uses both.
"""

from __future__ import annotations

from apiq.errors import MissingDependencyError

try:
    import redis as _redis  # noqa: F401 - the one place the optional dependency is checked
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "the Redis backends need the redis client: pip install 'apiq-adapters[redis]'"
    ) from exc

from apiq_adapters.redis.outage import REDIS_DOWN_ERRORS, RedisOutage
from apiq_adapters.redis.spec_cache import RedisSpecCache

__all__ = ["REDIS_DOWN_ERRORS", "RedisOutage", "RedisSpecCache"]
