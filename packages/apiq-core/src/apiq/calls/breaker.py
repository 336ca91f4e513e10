"""A per-host circuit breaker, so a dead API is not hammered by every call and retry.

Closed: calls go through and consecutive failures are counted. After `failures` in a row
the circuit opens for `reset_s`: calls are refused without sending. When that time has
passed exactly one call is let through (half-open): `check` re-arms the open period as it
admits that trial, so concurrent calls keep being refused while it is in flight. Its success
closes the circuit, its failure opens it again for another `reset_s`; a trial that never
reports (cancelled, refused by egress) simply lets the next trial through `reset_s` later.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from apiq.errors import ExecutionError

__all__ = ["CircuitBreaker"]


@dataclass(slots=True)
class _HostState:
    failures: int = 0
    open_until: float | None = None


class CircuitBreaker:
    """Consecutive-failure breaker keyed by host (`host:port`).

    Args:
        failures: Consecutive failures that open the circuit.
        reset_s: Seconds an open circuit refuses calls.
        clock: Monotonic seconds.
    """

    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float]) -> None:
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._hosts: dict[str, _HostState] = {}

    def retry_in(self, host: str) -> float | None:
        """Seconds until `host`'s open circuit lets a call through; None when it may be called.

        While a half-open trial is in flight this counts down to the next trial.
        """
        state = self._hosts.get(host)
        if state is None or state.open_until is None:
            return None
        left = state.open_until - self._clock()
        return left if left > 0 else None

    def check(self, host: str, operation_id: str | None = None) -> None:
        """Raise when `host`'s circuit is open; admit one trial call once it may be retried.

        Raises:
            ExecutionError: The circuit is open (or its trial call is in flight); nothing
                should be sent.
        """
        state = self._hosts.get(host)
        if state is None or state.open_until is None:
            return
        now = self._clock()
        left = state.open_until - now
        if left <= 0:
            # Half-open: this call is the single trial; everyone else waits for its outcome.
            state.open_until = now + self._reset_s
            return
        raise ExecutionError(
            f"circuit open for host {host}, retry after {math.ceil(left)} s: its last "
            f"{self._threshold} attempts failed (5xx, connection error or timeout); "
            "nothing was sent",
            operation_id=operation_id,
        )

    def record(self, host: str, *, ok: bool) -> None:
        """Count one attempt's outcome for `host`."""
        state = self._hosts.setdefault(host, _HostState())
        if ok:
            state.failures, state.open_until = 0, None
            return
        state.failures += 1
        if state.failures >= self._threshold:
            state.open_until = self._clock() + self._reset_s
