"""The per-connection rate limiter: token pacing, and tightening from the API's headers.

Time is a fake clock that the recording sleep advances, so waits are exact and nothing
really sleeps; one test reads the real headers of the flaky service's `/quota` route.
"""

from __future__ import annotations

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.calls.rate_limit import RateLimiter
from apiq.egress import egress_client
from apiq.errors import ConfigurationError, ExecutionError
from tests.services.flaky import FlakyService

WALL = 1_800_000_000.0


class FakeTime:
    """A monotonic clock that only moves when the limiter sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limiter(t: FakeTime, *, rate: float = 2.0, burst: int = 3, **kwargs: float) -> RateLimiter:
    return RateLimiter(
        rate=rate, burst=burst, clock=t.clock, sleep=t.sleep, wall_clock=lambda: WALL, **kwargs
    )


@pytest.mark.anyio
async def test_burst_goes_at_once_then_calls_are_paced() -> None:
    t = FakeTime()
    rl = limiter(t, rate=2.0, burst=3)
    waits = [await rl.acquire("c1") for _ in range(6)]
    assert waits == [0.0, 0.0, 0.0, pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.5)]
    t.now += 10  # a quiet period refills the bucket, but only up to burst
    assert [await rl.acquire("c1") for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.5)]


@pytest.mark.anyio
async def test_keys_are_independent() -> None:
    t = FakeTime()
    rl = limiter(t, rate=1.0, burst=1)
    assert await rl.acquire("a") == 0.0
    assert await rl.acquire("b") == 0.0
    rl.observe("a", {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"})
    assert await rl.acquire("c") == 0.0
    assert await rl.acquire("a") == pytest.approx(30.0)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "20"},
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(WALL) + 20)},
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(WALL * 1000) + 20_000)},
        {"RateLimit-Remaining": "0", "RateLimit-Reset": "20"},
        {"RateLimit": "limit=100, remaining=0, reset=20"},
        {"RateLimit": '"default";r=0;t=20'},
    ],
    ids=["x-delta", "x-epoch", "x-epoch-ms", "ietf", "combined", "combined-draft-10"],
)
async def test_remaining_zero_waits_until_reset(headers: dict[str, str]) -> None:
    t = FakeTime()
    rl = limiter(t, rate=10.0, burst=5)
    rl.observe("c1", headers)
    assert await rl.acquire("c1") == pytest.approx(20.0)
    assert await rl.acquire("c1") == 0.0  # the window has reset: the bucket refilled


@pytest.mark.anyio
async def test_httpx_headers_and_positive_remaining_pace_the_window() -> None:
    t = FakeTime()
    rl = limiter(t, rate=10.0, burst=10)
    # 2 calls left in 10 s: spread them (0.2/s) instead of the configured 10/s.
    rl.observe("c1", httpx.Headers({"RateLimit-Remaining": "2", "RateLimit-Reset": "10"}))
    assert await rl.acquire("c1") == 0.0
    assert await rl.acquire("c1") == 0.0
    assert await rl.acquire("c1") == pytest.approx(5.0)


@pytest.mark.anyio
async def test_headers_never_loosen_the_configured_rate() -> None:
    t = FakeTime()
    rl = limiter(t, rate=1.0, burst=1)
    assert await rl.acquire("c1") == 0.0
    rl.observe("c1", {"X-RateLimit-Remaining": "5000", "X-RateLimit-Reset": "1"})
    assert await rl.acquire("c1") == pytest.approx(1.0)
    assert await rl.acquire("c1") == pytest.approx(1.0)


@pytest.mark.anyio
async def test_reset_beyond_the_cap_raises_instead_of_waiting() -> None:
    t = FakeTime()
    rl = limiter(t, max_wait=300.0)
    rl.observe("c1", {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(WALL) + 3600)})
    with pytest.raises(ExecutionError, match="3600 s") as info:
        await rl.acquire("c1", operation_id="listPets")
    assert info.value.operation_id == "listPets"
    assert t.sleeps == []  # refused without sleeping
    assert await rl.acquire("other") == 0.0


@pytest.mark.anyio
async def test_concurrent_acquires_are_released_one_interval_apart() -> None:
    t = FakeTime()
    rl = limiter(t, rate=4.0, burst=1)
    released: list[float] = []

    async def call() -> None:
        await rl.acquire("c1")
        released.append(t.now)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(call)
    assert released == pytest.approx([100.0, 100.25, 100.5, 100.75, 101.0])


@pytest.mark.anyio
async def test_tightening_during_a_wait_is_honoured() -> None:
    t = FakeTime()
    rl = limiter(t, rate=1.0, burst=1)
    await rl.acquire("c1")
    first_sleep = t.sleep

    async def sleep_then_observe(seconds: float) -> None:
        await first_sleep(seconds)
        if len(t.sleeps) == 1:
            rl.observe("c1", {"RateLimit-Remaining": "0", "RateLimit-Reset": "7"})

    rl._sleep = sleep_then_observe
    assert await rl.acquire("c1") == pytest.approx(8.0)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-Remaining": "zero", "X-RateLimit-Reset": "30"},
        {"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "30"},
        {"X-RateLimit-Remaining": "٠", "X-RateLimit-Reset": "30"},  # an Arabic-Indic zero
        {"RateLimit-Remaining": "0.5", "RateLimit-Reset": "nan"},
        {"RateLimit": "remaining=lots, reset=soon"},
        {"RateLimit": "=,;;==,"},
    ],
)
@pytest.mark.anyio
async def test_malformed_headers_are_ignored(headers: dict[str, str]) -> None:
    t = FakeTime()
    rl = limiter(t, rate=1.0, burst=2)
    rl.observe("c1", headers)
    assert [await rl.acquire("c1") for _ in range(2)] == [0.0, 0.0]


_NAMES = st.sampled_from(
    [
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "RateLimit",
        "Retry-After",
    ]
)


@settings(max_examples=300, deadline=None)
@given(headers=st.dictionaries(_NAMES, st.text(max_size=60), max_size=6))
def test_random_header_values_never_raise(headers: dict[str, str]) -> None:
    t = FakeTime()
    rl = limiter(t, max_wait=1e9)
    rl.observe("c1", headers)
    bucket = rl._buckets.get("c1")
    if bucket is not None:
        assert bucket.tokens <= rl.burst
        assert bucket.paced_rate <= rl.rate or bucket.paced_rate == float("inf")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0.0, "burst": 1},
        {"rate": float("inf"), "burst": 1},
        {"rate": 1.0, "burst": 0},
        {"rate": 1.0, "burst": 1, "max_wait": -1.0},
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RateLimiter(**kwargs)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_observe_reads_the_flaky_services_real_quota_headers(
    flaky_service: FlakyService,
) -> None:
    t = FakeTime()
    rl = limiter(t, rate=100.0, burst=100)
    async with egress_client(flaky_service.egress_policy) as client:
        for _ in range(3):
            await rl.acquire("c1")
            response = await client.get(flaky_service.url("/quota/3"))
            assert response.status_code == 200
            rl.observe("c1", response.headers)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    # The service's window resets in `retry_after` (1) seconds: the fourth call waits for it
    # instead of drawing a 429.
    assert await rl.acquire("c1") == pytest.approx(float(flaky_service.retry_after))
