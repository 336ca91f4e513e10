"""Sending a `PreparedRequest`: timeouts, size cap, retries, circuit breaker, parsed result.

`Caller.send` makes at most `CallPolicy.max_attempts` attempts. It retries 429 and 503
(honouring Retry-After up to a cap) and connection errors and timeouts (jittered backoff),
but a non-idempotent method (POST, PATCH) only when the caller gives an idempotency key,
sent as the same `Idempotency-Key` header on every attempt: otherwise a retry could create
twice. Upstream 4xx/5xx are returned as a `CallResult`; an exception means no call could be
made (egress refused, circuit open, connection failed on every attempt, body too large).
"""

from __future__ import annotations

import functools
import json
import random as _random
import re
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from apiq.calls.breaker import CircuitBreaker
from apiq.calls.build import PreparedRequest
from apiq.calls.retry import (
    IDEMPOTENT_METHODS,
    RETRY_STATUSES,
    CallPolicy,
    backoff_s,
    retry_after_s,
)
from apiq.egress import send_following_redirects
from apiq.egress.policy import display_url
from apiq.errors import ExecutionError, SpecInvalid, SpecTooLarge
from apiq.specs.content_encoding import read_bounded

__all__ = ["AttemptRecord", "CallResult", "Caller"]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of a call."""

    number: int
    """1 for the first attempt."""
    status_code: int | None
    """The upstream status, or None when the attempt failed without a response."""
    error: str | None
    """The exception type when there was no response (`ConnectError`, `ReadTimeout`, ...)."""
    duration_ms: float
    waited_s: float
    """Seconds waited before this attempt (0 for the first)."""


@dataclass(frozen=True, slots=True)
class CallResult:
    """The upstream answer: any status, 4xx and 5xx included."""

    status_code: int
    headers: tuple[tuple[str, str], ...]
    """Response headers as received, in order, names lower-cased."""
    body: Any
    """Parsed JSON for a JSON content type, text for `text/*`, else bytes; None when empty."""
    duration_ms: float
    """The whole call, waits between attempts included."""
    attempts: tuple[AttemptRecord, ...]
    method: str = ""
    """The request method (set by `Outbound`)."""
    url: str = ""
    """The request URL without credentials, registered secrets masked (set by `Outbound`)."""


class Caller:
    """Sends prepared requests with retries, limits and a per-host circuit breaker.

    Args:
        client: A client from `apiq.egress.egress_client` (borrowed: not closed here).
        policy: Limits and retry settings.
        clock: Monotonic seconds, for durations and the breaker.
        wall_clock: POSIX seconds, to read Retry-After dates.
        sleep: Awaited with the seconds to wait between attempts.
        random: Uniform draw in [0, 1) for the backoff jitter.

    Example:
        >>> caller = Caller(egress_client(EgressPolicy.from_env()))
        >>> result = await caller.send(build_request(catalog, "getPetById", {...}))
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        policy: CallPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.client = client
        self.policy = policy if policy is not None else CallPolicy()
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._random = random
        self.breaker = CircuitBreaker(
            self.policy.breaker_failures, self.policy.breaker_reset_s, clock
        )

    async def send(
        self,
        request: PreparedRequest,
        *,
        idempotency_key: str | None = None,
        credential_headers: Collection[str] = (),
    ) -> CallResult:
        """Send `request`, retrying as the policy allows.

        Args:
            request: From `build_request`, credentials already attached.
            idempotency_key: Sent as `Idempotency-Key` on every attempt; required for a
                non-idempotent method (POST, PATCH) to be retried.
            credential_headers: Header names carrying credentials, dropped on a redirect
                that leaves the origin (Authorization and Cookie always are).

        Returns:
            The last attempt's response, parsed.

        Raises:
            ExecutionError: The host's circuit is open, every attempt failed without a
                response, or a response body exceeded `max_response_bytes`.
            EgressDenied: The egress policy refused the URL or a redirect.
        """
        policy = self.policy
        host = _host(request.url)
        retryable = request.method in IDEMPOTENT_METHODS or idempotency_key is not None
        started = self._clock()
        attempts: list[AttemptRecord] = []
        waited = 0.0
        last: tuple[httpx.Response, bytes] | None = None
        failure: Exception | None = None
        for number in range(1, policy.max_attempts + 1):
            if number > 1 and self.breaker.retry_in(host) is not None:
                break  # another call opened the circuit meanwhile: answer with what we have
            self.breaker.check(host, request.operation_id)
            attempt_started = self._clock()
            try:
                response, content = await self._attempt(
                    request, idempotency_key, credential_headers
                )
            except (httpx.TransportError, TimeoutError) as exc:
                failure, last = exc, None
                self.breaker.record(host, ok=False)
                attempts.append(
                    AttemptRecord(
                        number, None, type(exc).__name__, self._ms(attempt_started), waited
                    )
                )
                delay: float | None = backoff_s(policy, number, self._random)
            else:
                failure, last = None, (response, content)
                self.breaker.record(host, ok=response.status_code < 500)
                attempts.append(
                    AttemptRecord(
                        number, response.status_code, None, self._ms(attempt_started), waited
                    )
                )
                delay = self._retry_delay(response, number)
            if delay is None or not retryable or number == policy.max_attempts:
                break
            if self.breaker.retry_in(host) is not None:
                break  # this attempt opened the circuit: waiting would only end in a refusal
            await self._sleep(delay)
            waited = delay
        if last is None:
            raise ExecutionError(
                f"{request.method} {display_url(request.url)} failed after {len(attempts)} "
                f"attempt(s): {failure!r}; check that the API is reachable and try again later",
                operation_id=request.operation_id,
            ) from failure
        response, content = last
        return CallResult(
            status_code=response.status_code,
            headers=tuple((k.lower(), v) for k, v in response.headers.multi_items()),
            body=_parse_body(response, content),
            duration_ms=self._ms(started),
            attempts=tuple(attempts),
        )

    def _retry_delay(self, response: httpx.Response, number: int) -> float | None:
        """Seconds to wait before retrying `response`; None when it must not be retried."""
        if response.status_code not in RETRY_STATUSES:
            return None
        wait = retry_after_s(response.headers.get("retry-after"), self._wall_clock())
        if wait is None:
            return backoff_s(self.policy, number, self._random)
        # Beyond the cap the API asked for more patience than a call should hold: answer now.
        return wait if wait <= self.policy.retry_after_cap_s else None

    async def _attempt(
        self,
        request: PreparedRequest,
        idempotency_key: str | None,
        credential_headers: Collection[str],
    ) -> tuple[httpx.Response, bytes]:
        policy = self.policy
        headers = list(request.headers)
        if request.cookies:
            headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in request.cookies)))
        if request.content_type is not None:
            headers.append(("Content-Type", request.content_type))
        if idempotency_key is not None:
            headers.append(("Idempotency-Key", idempotency_key))
        outgoing = self.client.build_request(
            request.method,
            request.url,
            headers=headers,
            content=request.content,
            timeout=httpx.Timeout(policy.timeout_s),
        )
        # httpx timeouts bound each read; the deadline bounds a server that drips slowly.
        # A bare cancel scope: anyio.fail_after wraps this same scope in two generator
        # context managers, a cost every call would pay.
        with anyio.CancelScope(deadline=anyio.current_time() + policy.timeout_s):
            response = await send_following_redirects(
                self.client,
                outgoing,
                max_redirects=policy.max_redirects,
                credential_headers=credential_headers,
                stream=True,
            )
            try:
                content = await _read_capped(response, policy.max_response_bytes, request)
            finally:
                await response.aclose()
            return response, content
        # Only the deadline cancels this scope, and leaving it that way lands here.
        raise TimeoutError(f"the attempt did not finish within {policy.timeout_s} s")

    def _ms(self, since: float) -> float:
        return (self._clock() - since) * 1000.0


async def _read_capped(response: httpx.Response, limit: int, request: PreparedRequest) -> bytes:
    """The decoded body, refusing more than `limit` decoded bytes without reading further.

    Raw bytes go through the spec fetcher's bounded decoder: httpx's own decoder can inflate
    one network chunk of a compression bomb to tens of MB before any check could run.
    """
    try:
        # The URL is rendered only for an error: display_url costs a URL parse per call.
        return await read_bounded(response, limit=limit, source="the API")
    except SpecTooLarge:
        raise ExecutionError(
            f"{request.method} {display_url(request.url)}: the response body exceeds the "
            f"{limit}-byte limit (max_response_bytes) after decoding; ask for less (filters, "
            "pagination) or raise CallPolicy.max_response_bytes",
            operation_id=request.operation_id,
        ) from None
    except SpecInvalid as exc:
        raise ExecutionError(
            f"{request.method} {display_url(request.url)}: the response body could not be "
            f"decoded: {exc}",
            operation_id=request.operation_id,
        ) from None


def _parse_body(response: httpx.Response, content: bytes) -> Any:
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not content:
        return None
    if media == "application/json" or media.endswith("+json"):
        try:
            return json.loads(content)
        except (ValueError, RecursionError):
            pass  # an API that lies about JSON still gets its answer shown, as text
    elif not media.startswith("text/"):
        return content
    return content.decode(response.encoding or "utf-8", errors="replace")


_AUTHORITY = re.compile(r"[^:/?#]*://[^/?#]*")


def _host(url: str) -> str:
    """The breaker key: `host:port`, so two services on one machine fail separately."""
    match = _AUTHORITY.match(url)
    return _authority_host(match[0] if match else url)


@functools.lru_cache(maxsize=256)
def _authority_host(authority: str) -> str:
    # Parsed by httpx like the request itself; cached because a few APIs take every call.
    try:
        parsed = httpx.URL(authority)
    except (httpx.InvalidURL, TypeError, ValueError, UnicodeError):
        return authority
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    return f"{parsed.host}:{port}"
