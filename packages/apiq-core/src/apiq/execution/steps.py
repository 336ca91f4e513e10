"""What the runner asks of a call, what it gets back, and what it records per step.

These are plain, picklable dataclasses: a durable engine (DBOS) stores a `StepResponse` as
the output of a step and hands the very same value back when a workflow is recovered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "Emit",
    "Limits",
    "RunResult",
    "StepCall",
    "StepRequest",
    "StepResponse",
]


@dataclass(frozen=True, slots=True)
class StepRequest:
    """One call the runner wants made."""

    execution_id: str
    step_id: str
    connection_id: str
    operation_id: str
    arguments: dict[str, Any]
    idempotency_key: str | None = None
    """Set for state-changing operations: the same on every re-send of this call."""
    item: int | None = None
    """Index of the `x-apiq-forEach` item, if any."""


@dataclass(frozen=True, slots=True)
class StepResponse:
    """The upstream answer to a `StepRequest`, secrets already masked."""

    status_code: int
    headers: tuple[tuple[str, str], ...]
    body: Any
    duration_ms: float
    attempts: int
    method: str
    url: str
    """The request URL with credentials and registered secrets masked."""

    def header(self, name: str) -> str | None:
        """The last value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == wanted:
                found = value
        return found


class StepCall(Protocol):
    """Makes one call for the runner (through `Outbound`, or as a durable step)."""

    async def __call__(self, request: StepRequest) -> StepResponse: ...


Emit = Callable[[str, str | None, dict[str, Any]], Awaitable[None]]
"""`emit(kind, step_id, detail)`: report an execution event."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one execution."""

    max_step_runs: int = 200
    """Step runs (gotos, retries and forEach items included) before the execution fails."""
    max_duration_s: float = 600.0
    """Wall time before the execution fails (checked before each call)."""
    concurrency: int = 10
    """Independent read-only steps (and forEach items) in flight at once."""
    max_retry_wait_s: float = 60.0
    """Longest wait before a retry, whatever Retry-After or retryAfter asks."""


@dataclass(slots=True)
class RunResult:
    """How an execution ended."""

    status: Literal["succeeded", "failed", "cancelled"]
    outputs: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Step id -> {status, runs, attempts, request {method, url, status, duration_ms},
    outputs, error}."""
    error: str | None = None
