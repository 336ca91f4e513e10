"""`Caller.send` against real loopback services, with a fake sleep that records waits.

No test waits for real: the injected `sleep` records the seconds the caller asked for and
returns at once, and `random` is fixed so backoff values are exact.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from apiq.calls import PreparedRequest
from apiq.calls.breaker import CircuitBreaker
from apiq.calls.caller import Caller, CallResult
from apiq.calls.retry import CallPolicy, backoff_s, retry_after_s
from apiq.egress import EgressPolicy, egress_client
from apiq.errors import ConfigurationError, EgressDenied, ExecutionError
from tests.loopback import LoopbackServer, loopback_server, respond
from tests.services.echo import EchoService
from tests.services.flaky import FlakyService

pytestmark = pytest.mark.anyio


class Sleeps:
    """A fake `sleep` recording each requested wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def prepared(
    url: str, method: str = "GET", content: bytes | None = None, content_type: str | None = None
) -> PreparedRequest:
    return PreparedRequest(
        method=method,
        url=url,
        headers=(("X-Trace", "t1"),),
        cookies=(),
        content=content,
        content_type=content_type,
        path_template="/x",
        operation_id="op",
    )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def flaky_client(flaky_service: FlakyService) -> AsyncIterator[httpx.AsyncClient]:
    async with egress_client(flaky_service.egress_policy) as client:
        yield client


def caller_for(client: httpx.AsyncClient, sleeps: Sleeps, **kwargs: object) -> Caller:
    return Caller(client, sleep=sleeps, random=lambda: 0.5, **kwargs)  # type: ignore[arg-type]


# --- Retry-After ----------------------------------------------------------------------------


async def test_429_then_200_waits_retry_after_seconds(
    flaky_service: FlakyService, flaky_client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    flaky_service.retry_after = 7
    result = await caller_for(flaky_client, sleeps).send(
        prepared(flaky_service.url("/ratelimited/1"))
    )
    assert result.status_code == 200
    assert result.body == {"ok": True, "calls": 2}
    assert sleeps.waits == [7.0]
    assert [(a.number, a.status_code, a.waited_s) for a in result.attempts] == [
        (1, 429, 0.0),
        (2, 200, 7.0),
    ]
    assert flaky_service.calls("/ratelimited/1") == 2


async def test_429_then_200_waits_until_retry_after_date(
    flaky_service: FlakyService, flaky_client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    seen: list[float] = []

    def wall_clock() -> float:
        seen.append(time.time())
        return seen[-1]

    # The service dates Retry-After at the next whole second + 1 s, from real time.
    result = await caller_for(flaky_client, sleeps, wall_clock=wall_clock).send(
        prepared(flaky_service.url("/ratelimited-date/1"))
    )
    assert result.status_code == 200
    assert [a.status_code for a in result.attempts] == [429, 200]
    [wait] = sleeps.waits
    assert 0.5 < wait <= 2.0
    assert (seen[-1] + wait) == pytest.approx(round(seen[-1] + wait), abs=1e-3)  # = the date


async def test_retry_after_http_date_is_waited_exactly(sleeps: Sleeps) -> None:
    now = 1_800_000_000.0
    date = formatdate(now + 12, usegmt=True)
    hits: list[int] = []

    def route(handler: BaseHTTPRequestHandler) -> None:
        hits.append(1)
        if len(hits) == 1:
            respond(handler, 429, b"{}", {"Retry-After": date, "Content-Type": "application/json"})
        else:
            respond(handler, 200, b'{"ok": true}', {"Content-Type": "application/json"})

    with loopback_server({"/r": route}) as server:
        async with egress_client(_allow(server)) as client:
            caller = caller_for(client, sleeps, wall_clock=lambda: now)
            result = await caller.send(prepared(server.url("/r")))
    assert result.status_code == 200
    assert sleeps.waits == [12.0]
    assert parsedate_to_datetime(date).timestamp() - now == 12.0


def test_retry_after_parsing() -> None:
    assert retry_after_s("120", 0.0) == 120.0
    assert retry_after_s(formatdate(1000.0, usegmt=True), 2000.0) == 0.0  # past -> now
    assert retry_after_s(formatdate(1030.0, usegmt=True), 1000.0) == 30.0
    for bad in (None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2026 25:61:00 GMT"):
        assert retry_after_s(bad, 0.0) is None


async def test_retry_after_beyond_cap_is_returned_not_retried(
    flaky_service: FlakyService, flaky_client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    flaky_service.retry_after = 31
    result = await caller_for(flaky_client, sleeps).send(
        prepared(flaky_service.url("/ratelimited/1"))
    )
    assert result.status_code == 429
    assert result.body == {"error": "rate limited", "calls": 1}
    assert ("retry-after", "31") in result.headers
    assert sleeps.waits == []
    assert flaky_service.calls("/ratelimited/1") == 1


async def test_503_three_times_returns_503_after_three_attempts(
    flaky_service: FlakyService, flaky_client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    result = await caller_for(flaky_client, sleeps).send(
        prepared(flaky_service.url("/unavailable/5"))
    )
    assert result.status_code == 503
    assert [a.status_code for a in result.attempts] == [503, 503, 503]
    assert sleeps.waits == [1.0, 1.0]
    assert flaky_service.calls("/unavailable/5") == 3


# --- idempotency ----------------------------------------------------------------------------


async def test_post_without_key_is_not_retried(
    flaky_service: FlakyService, flaky_client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    request = prepared(flaky_service.url("/unavailable/1"), "POST", b"{}", "application/json")
    result = await caller_for(flaky_client, sleeps).send(request)
    assert result.status_code == 503
    assert len(result.attempts) == 1
    assert sleeps.waits == []
    assert flaky_service.calls("/unavailable/1") == 1


async def test_post_with_key_is_retried_with_the_same_key(
    flaky_service: FlakyService, flaky_client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    request = prepared(flaky_service.url("/ratelimited/2"), "PATCH", b'{"a":1}', "application/json")
    result = await caller_for(flaky_client, sleeps).send(request, idempotency_key="k-123")
    assert result.status_code == 200
    assert len(result.attempts) == 3
    sent = flaky_service.requests
    assert [r.method for r in sent] == ["PATCH"] * 3
    assert [r.headers.get("idempotency-key") for r in sent] == ["k-123"] * 3
    assert [r.body for r in sent] == [b'{"a":1}'] * 3
    assert {r.headers.get("x-trace") for r in sent} == {"t1"}


async def test_echo_sees_headers_cookies_body_and_key(sleeps: Sleeps) -> None:
    with EchoService() as echo:
        async with egress_client(echo.egress_policy) as client:
            request = PreparedRequest(
                method="POST",
                url=echo.url("/things?a=1"),
                headers=(("X-Trace", "t1"),),
                cookies=(("session", "abc"),),
                content=b"hello",
                content_type="text/plain",
                path_template="/things",
                operation_id="createThing",
            )
            result = await caller_for(client, sleeps).send(request, idempotency_key="key-9")
    body = result.body
    assert body["method"] == "POST"
    assert body["body"] == "hello"
    assert body["cookies"] == {"session": "abc"}
    assert body["headers"]["idempotency-key"] == "key-9"
    assert body["headers"]["content-type"] == "text/plain"


# --- errors and backoff ---------------------------------------------------------------------


async def test_connection_errors_are_retried_with_backoff_then_raise(sleeps: Sleeps) -> None:
    with loopback_server({}) as server:
        url, policy = server.url("/gone"), _allow(server)
    async with egress_client(policy) as client:  # the server is gone: connects are refused
        with pytest.raises(ExecutionError, match="failed after 3 attempt") as info:
            await caller_for(client, sleeps).send(prepared(url))
    assert info.value.operation_id == "op"
    assert sleeps.waits == [0.25, 0.5]  # random()=0.5 of min(cap, 0.5 * 2**n)


async def test_timeouts_are_retried_then_raise(sleeps: Sleeps) -> None:
    release = threading.Event()

    def stall(handler: BaseHTTPRequestHandler) -> None:
        release.wait(5)  # far beyond the 0.1 s timeout; released when the test ends

    with loopback_server({"/stall": stall}) as server:
        async with egress_client(_allow(server)) as client:
            caller = caller_for(client, sleeps, policy=CallPolicy(timeout_s=0.1))
            try:
                with pytest.raises(ExecutionError, match="Timeout"):
                    await caller.send(prepared(server.url("/stall")))
            finally:
                release.set()
        assert len(server.requests) == 3
    assert len(sleeps.waits) == 2


async def test_a_body_dripping_slower_than_the_deadline_is_cut_off(sleeps: Sleeps) -> None:
    # Each byte arrives well within the read timeout; only the whole-attempt deadline stops
    # the server from holding the call for as long as it likes.
    stop = threading.Event()

    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.flush()
        while not stop.wait(0.02):
            handler.wfile.write(b"x")
            handler.wfile.flush()

    with loopback_server({"/drip": drip}) as server:
        async with egress_client(_allow(server)) as client:
            policy = CallPolicy(timeout_s=0.3, max_attempts=1)
            caller = caller_for(client, sleeps, policy=policy)
            try:
                with pytest.raises(ExecutionError, match="TimeoutError") as info:
                    await caller.send(prepared(server.url("/drip")))
            finally:
                stop.set()
    assert isinstance(info.value.__cause__, TimeoutError)
    assert "0.3 s" in str(info.value.__cause__)


async def test_503_without_retry_after_backs_off_and_500_is_not_retried(sleeps: Sleeps) -> None:
    with EchoService() as echo:
        async with egress_client(echo.egress_policy) as client:
            caller = caller_for(client, sleeps)
            unavailable = await caller.send(prepared(echo.url("/echo/status/503")))
            broken = await caller.send(prepared(echo.url("/echo/status/500")))
        assert len(echo.requests) == 4
    assert [a.status_code for a in unavailable.attempts] == [503, 503, 503]
    assert sleeps.waits == [0.25, 0.5]  # random()=0.5 of min(cap, 0.5 * 2**n)
    assert (broken.status_code, len(broken.attempts)) == (500, 1)
    assert broken.body["path"] == "/echo/status/500"


def test_backoff_is_full_jitter_below_a_capped_ceiling() -> None:
    policy = CallPolicy(backoff_base_s=1.0, backoff_cap_s=5.0)
    assert [backoff_s(policy, n, lambda: 0.999) for n in (1, 2, 3, 4)] == pytest.approx(
        [0.999, 1.998, 3.996, 4.995]
    )
    assert backoff_s(policy, 10_000, lambda: 0.0) == 0.0


async def test_egress_refusal_is_raised_not_retried(sleeps: Sleeps) -> None:
    async with egress_client(EgressPolicy()) as client:
        with pytest.raises(EgressDenied):
            await caller_for(client, sleeps).send(prepared("http://127.0.0.1:9/x"))
    assert sleeps.waits == []


def test_policy_rejects_nonsense() -> None:
    for bad in ({"max_attempts": 0}, {"timeout_s": 0}, {"max_response_bytes": 1.5}):
        with pytest.raises(ConfigurationError):
            CallPolicy(**bad)


# --- circuit breaker ------------------------------------------------------------------------


async def test_breaker_opens_after_consecutive_failures_and_refuses_without_sending(
    flaky_service: FlakyService, flaky_client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    clock = Clock()
    policy = CallPolicy(breaker_failures=5, breaker_reset_s=30)
    caller = caller_for(flaky_client, sleeps, policy=policy, clock=clock)
    dead = prepared(flaky_service.url("/dead"))
    first = await caller.send(dead)
    second = await caller.send(dead)  # the circuit opens after its 2nd attempt: no 3rd
    assert (len(first.attempts), len(second.attempts)) == (3, 2)
    assert flaky_service.calls("/dead") == 5
    host = f"127.0.0.1:{flaky_service.port}"
    with pytest.raises(ExecutionError, match=f"circuit open for host {host}, retry after 30 s"):
        await caller.send(dead)
    with pytest.raises(ExecutionError, match="retry after 30 s"):
        await caller.send(prepared(flaky_service.url("/ratelimited/0")))  # whole host
    assert len(flaky_service.requests) == 5

    clock.now += 30  # half-open: one trial goes through; success closes the circuit
    assert (await caller.send(prepared(flaky_service.url("/ratelimited/0")))).status_code == 200
    assert (await caller.send(dead)).status_code == 503


def test_half_open_admits_a_single_trial_call() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, reset_s=30, clock=clock)
    for _ in range(2):
        breaker.check("h:80")
        breaker.record("h:80", ok=False)
    with pytest.raises(ExecutionError, match="retry after 30 s"):
        breaker.check("h:80")
    clock.now += 30
    breaker.check("h:80")  # the trial
    for _ in range(3):  # concurrent calls while the trial is in flight are refused
        with pytest.raises(ExecutionError, match="circuit open for host h:80"):
            breaker.check("h:80")
    breaker.check("other:80")  # other hosts are unaffected
    breaker.record("h:80", ok=False)  # the trial failed: open for another reset_s
    clock.now += 29
    with pytest.raises(ExecutionError, match="retry after 1 s"):
        breaker.check("h:80")
    clock.now += 1
    breaker.check("h:80")  # the next trial
    breaker.record("h:80", ok=True)  # succeeded: closed, everyone goes through
    for _ in range(3):
        breaker.check("h:80")
    assert breaker.retry_in("h:80") is None


def test_a_trial_that_never_reports_does_not_wedge_the_circuit() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_s=10, clock=clock)
    breaker.record("h:80", ok=False)
    clock.now += 10
    breaker.check("h:80")  # a trial that is then cancelled: no record()
    with pytest.raises(ExecutionError):
        breaker.check("h:80")
    assert breaker.retry_in("h:80") == 10
    clock.now += 10
    breaker.check("h:80")  # another trial is admitted


async def test_a_circuit_opening_mid_call_reports_the_failed_attempts(sleeps: Sleeps) -> None:
    with loopback_server({}) as server:
        url, policy = server.url("/gone"), _allow(server)
    async with egress_client(policy) as client:  # connects are refused
        caller = caller_for(client, sleeps, policy=CallPolicy(breaker_failures=2))
        with pytest.raises(ExecutionError, match="failed after 2 attempt") as info:
            await caller.send(prepared(url))
        assert "ConnectError" in str(info.value)
        with pytest.raises(ExecutionError, match="circuit open"):
            await caller.send(prepared(url))
    assert sleeps.waits == [0.25]


# --- body size and parsing ------------------------------------------------------------------


async def test_response_over_the_decoded_size_cap_is_refused(sleeps: Sleeps) -> None:
    packed = gzip.compress(b"a" * 5000)

    def big(handler: BaseHTTPRequestHandler) -> None:
        respond(handler, 200, packed, {"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    with loopback_server({"/big": big}) as server:
        async with egress_client(_allow(server)) as client:
            capped = caller_for(client, sleeps, policy=CallPolicy(max_response_bytes=4096))
            with pytest.raises(ExecutionError, match="exceeds the 4096-byte limit"):
                await capped.send(prepared(server.url("/big")))
            assert len(server.requests) == 1  # not retried
            roomy = caller_for(client, sleeps, policy=CallPolicy(max_response_bytes=5000))
            assert (await roomy.send(prepared(server.url("/big")))).body == "a" * 5000


@pytest.mark.parametrize(
    ("content_type", "payload", "expected"),
    [
        ("application/json", b'{"a": [1, 2]}', {"a": [1, 2]}),
        ("application/problem+json; charset=utf-8", b'{"title": "x"}', {"title": "x"}),
        ("application/json", b"{not json", "{not json"),
        ("text/plain; charset=latin-1", "caf\u00e9".encode("latin-1"), "caf\u00e9"),
        ("text/csv", b"a,b\n1,2\n", "a,b\n1,2\n"),
        ("application/octet-stream", b"\x00\xff\x10", b"\x00\xff\x10"),
        ("application/json", b"", None),
    ],
)
async def test_body_is_parsed_by_content_type(
    sleeps: Sleeps, content_type: str, payload: bytes, expected: object
) -> None:
    def route(handler: BaseHTTPRequestHandler) -> None:
        respond(handler, 418, payload, {"Content-Type": content_type})

    with loopback_server({"/b": route}) as server:
        async with egress_client(_allow(server)) as client:
            result = await caller_for(client, sleeps).send(prepared(server.url("/b")))
    assert isinstance(result, CallResult)
    assert result.status_code == 418  # upstream errors are results
    assert result.body == expected
    assert ("content-type", content_type) in result.headers
    assert result.attempts[0].error is None


def _allow(server: LoopbackServer) -> EgressPolicy:
    return EgressPolicy(allow=frozenset({("127.0.0.1", server.port)}))
