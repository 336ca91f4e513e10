"""Per-user rate limits counted in Redis, and a server that stays up while Redis is down.

The limiter tests run on the machine's real Redis (127.0.0.1:6379), each with its own key
prefix, deleted after. The server test starts its own `apiq serve` whose Redis is reached
through a `TcpProxy`, so an outage is a closed proxy, never a stopped Redis.
"""

from __future__ import annotations

import pytest

pytest.importorskip("redis")

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import redis as sync_redis
from redis.asyncio import Redis

from apiq_server.errors import RateLimited
from apiq_server.ratelimit import WINDOW_S, MemoryRateLimiter, RedisRateLimiter
from tests.adapters.test_redis import closed_port, redis_client
from tests.server.harness import PASSWORD, Api, ServerProcess
from tests.server.tcp_proxy import TcpProxy

LIMIT = 3
RECOVERY_S = 30.0
"""Bound on how long the server's limiter may take to use Redis again (not a timing)."""
REDIS_DB = 13
"""The server test's Redis database: the server's keys have fixed prefixes (`apiq:`)."""


def mid_window() -> float:
    """A fixed clock half-way through the current window: no test straddles two windows."""
    return (time.time() // WINDOW_S) * WINDOW_S + WINDOW_S / 2


@pytest.fixture
def prefix() -> str:
    return f"apiq-test:{uuid.uuid4().hex}:"


@pytest.fixture
async def redis(prefix: str) -> AsyncIterator[Redis]:
    client = redis_client()
    await client.ping()
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()


@pytest.mark.anyio
async def test_the_hit_after_the_limit_is_refused_until_the_window_ends(
    redis: Redis, prefix: str
) -> None:
    limiter = RedisRateLimiter(redis, prefix=prefix, clock=mid_window)
    for _ in range(LIMIT):
        await limiter.hit("planning", "alice", limit=LIMIT)
    with pytest.raises(RateLimited) as caught:
        await limiter.hit("planning", "alice", limit=LIMIT)
    assert caught.value.retry_after_s == WINDOW_S // 2
    assert caught.value.details == {"retryAfter": WINDOW_S // 2}
    await limiter.hit("planning", "bob", limit=LIMIT)  # each user counts alone
    await limiter.hit("executions", "alice", limit=LIMIT)  # and each kind
    (key,) = [k async for k in redis.scan_iter(match=f"{prefix}*:planning:alice")]
    assert 0 < await redis.ttl(key) <= 2 * WINDOW_S  # a count never outlives its window long


@pytest.mark.anyio
async def test_two_limiters_on_one_redis_share_the_count(redis: Redis, prefix: str) -> None:
    first = RedisRateLimiter(redis, prefix=prefix, clock=mid_window)
    second = RedisRateLimiter(redis, prefix=prefix, clock=mid_window)
    await first.hit("planning", "alice", limit=LIMIT)
    await second.hit("planning", "alice", limit=LIMIT)
    await first.hit("planning", "alice", limit=LIMIT)
    with pytest.raises(RateLimited):
        await second.hit("planning", "alice", limit=LIMIT)


@pytest.mark.anyio
async def test_while_redis_is_down_the_memory_limiter_counts(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="apiq_adapters.redis")
    client = redis_client(closed_port())
    limiter = RedisRateLimiter(
        client, fallback=MemoryRateLimiter(mid_window), prefix=prefix, retry_s=0.0, clock=mid_window
    )
    try:
        for _ in range(LIMIT):
            await limiter.hit("planning", "alice", limit=LIMIT)
        assert limiter.degraded
        with pytest.raises(RateLimited) as caught:
            await limiter.hit("planning", "alice", limit=LIMIT)
        assert caught.value.retry_after_s == WINDOW_S // 2
    finally:
        await client.aclose()
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.anyio
async def test_after_an_outage_the_count_is_in_redis_again(redis: Redis, prefix: str) -> None:
    with TcpProxy("127.0.0.1", 6379) as proxy:
        client = redis_client(proxy.port)
        limiter = RedisRateLimiter(client, prefix=prefix, retry_s=0.0, clock=mid_window)
        try:
            proxy.close()
            await limiter.hit("planning", "alice", limit=LIMIT)
            assert limiter.degraded
            proxy.open()
            await limiter.hit("planning", "alice", limit=LIMIT)
            assert not limiter.degraded
        finally:
            await client.aclose()
    (key,) = [k async for k in redis.scan_iter(match=f"{prefix}*:planning:alice")]
    assert await redis.get(key) == b"1"  # the hit made during the outage stayed in memory


# The server, with its Redis behind a proxy.


@pytest.fixture(scope="module")
def redis_proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 6379) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def limited_server(
    redis_proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """`apiq serve` on SQLite with Redis behind `redis_proxy` and 3 requests a minute."""
    folder: Path = tmp_path_factory.mktemp("server-redis")
    process = ServerProcess(
        env={
            "APIQ_DATABASE_URL": f"sqlite:///{folder / 'apiq.sqlite'}",
            "APIQ_KEY_FILE": str(folder / "master.key"),
            "APIQ_MODE": "development",
            "APIQ_EXECUTOR": "local",
            "APIQ_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/{REDIS_DB}",
            "APIQ_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        },
        log_path=folder / "server.log",
    ).start()
    try:
        yield process
    finally:
        redis_proxy.open()
        process.stop()
        with sync_redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB) as direct:
            for key in direct.scan_iter(match="apiq:*"):
                direct.delete(key)


class Clients:
    """Registers and logs in users of one server; `close` closes every client made."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._made: list[httpx.Client] = []

    def api(self, token: str | None = None) -> Api:
        self._made.append(httpx.Client(timeout=30))
        return Api(self.base_url, token=token, client=self._made[-1])

    def register(self) -> Api:
        email = f"ratelimit-{uuid.uuid4().hex[:10]}@example.com"
        body = {"email": email, "password": PASSWORD}
        self.api().data("POST", "/api/auth/register", status=201, json=body)
        return self.login(email)

    def login(self, email: str) -> Api:
        body = {"email": email, "password": PASSWORD}
        data = self.api().data("POST", "/api/auth/login", json=body)
        user = self.api(data["token"])
        user.user = data["user"]
        return user

    def close(self) -> None:
        for client in self._made:
            client.close()


@pytest.fixture
def clients(limited_server: ServerProcess) -> Iterator[Clients]:
    made = Clients(limited_server.base_url)
    yield made
    made.close()


def health(server: ServerProcess) -> dict[str, object]:
    with httpx.Client(timeout=30) as client:
        response = client.get(server.base_url + "/api/health")
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def test_health_reports_redis_and_an_outage_degrades_without_breaking(
    limited_server: ServerProcess, redis_proxy: TcpProxy, clients: Clients
) -> None:
    user = clients.register()
    assert (health(limited_server)["status"], health(limited_server)["redis"]) == ("ok", "ok")
    redis_proxy.close()
    try:
        during = health(limited_server)
        assert (during["status"], during["redis"], during["database"]) == ("degraded", "down", "ok")
        again = clients.login(user.user["email"])
        assert again.data("GET", "/api/auth/me")["email"] == user.user["email"]
        planned = again.post("/api/chat", json={"message": "list the pets"})
        assert planned.status_code == 422, planned.text  # planned (no API yet), not a 500
    finally:
        redis_proxy.open()
    assert health(limited_server)["redis"] == "ok"  # recovered without a restart
    # The limiter tries Redis again a few seconds after its failure: plan until it has.
    deadline = time.monotonic() + RECOVERY_S
    while not redis_counts(again):
        assert time.monotonic() < deadline, "the limiter never counted in Redis again"
        time.sleep(1.0)
        again.post("/api/chat", json={"message": "list the pets"})


def redis_counts(user: Api) -> list[bytes | None]:
    """The planning counts of `user` in the server's Redis (one per window)."""
    with sync_redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB) as direct:
        pattern = f"apiq:ratelimit:*:planning:{user.user['id']}"
        return [direct.get(key) for key in direct.scan_iter(match=pattern)]


def test_the_fourth_plan_in_a_minute_is_refused_with_retry_after(
    limited_server: ServerProcess, clients: Clients
) -> None:
    user = clients.register()
    if time.time() % WINDOW_S > WINDOW_S - 15:  # the four requests must fall in one window
        time.sleep(WINDOW_S - time.time() % WINDOW_S + 0.5)
    for _ in range(LIMIT):  # no API is connected: each plan fails, but counts
        response = user.post("/api/chat", json={"message": "list the pets"})
        assert response.status_code != 429, response.text
    response = user.post("/api/chat", json={"message": "list the pets"})
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW_S
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("rate_limited", {"retryAfter": retry_after})
    assert redis_counts(user) == [b"4"]  # counted in Redis, where every server process sees it
