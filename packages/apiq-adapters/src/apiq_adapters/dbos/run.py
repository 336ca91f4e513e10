"""`DurableRun`: the call, sleep and emit a `Runner` gets inside a DBOS workflow.

DBOS numbers the steps of a workflow in the order they are called and, on recovery, hands
step *n* the output recorded for step *n*. The `Runner` calls concurrently (independent
steps, forEach items) and what runs after a response depends on when it arrived, so that
order is not reproducible. Each durable operation is therefore named after *what* it is,
which a replay reproduces exactly:

- a call is `apiq.call <stepId>/<item>/<n>`: the n-th call for that step and forEach item
  (calls for one step and item never overlap, so n is the same on every replay);
- a retry wait is `apiq.sleep <call>/<n>`, after the call in the same task; its step output
  is the wake-up time, so a recovered run waits only for what is left;
- an event is `<kind>/<stepId>/<item>/<n>`, kept once by the store.

Each call and wait is a DBOS step, checkpointed in DBOS's `operation_outputs` under a step
number DBOS hands out: a wait through `DBOS.run_step_async`, a call through `checkpoints`
(the same row, written with the run's events: before the call, one transaction records the
step.started event, the previous call's checkpoint and the ownership check; see there). On
recovery the workflow first reads what was recorded, by name, and moves the step counter past
it (`DBOS.reserve_step`), so new steps never collide with old ones. A call whose checkpoint
is recorded is never sent again; one that was in flight, or answered but not yet recorded
(its checkpoint lands before this process sends anything else, and within
`CHECKPOINT_LINGER_S`), is sent once more with the same request, hence the same
Idempotency-Key.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from dbos import DBOS, StepOptions

from apiq.errors import ApiqError, ExecutionError
from apiq.execution.local import MAX_EVENTS
from apiq.execution.steps import StepCall, StepRequest, StepResponse
from apiq_adapters.dbos.checkpoints import Checkpoint, Claim, owner_token
from apiq_adapters.dbos.store import EventRow

if TYPE_CHECKING:
    from apiq_adapters.dbos.events import EventWriter

__all__ = ["DurableRun", "Refused", "recorded_steps"]

_LAST_CALL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "apiq_dbos_last_call", default=None
)
"""Identity of the last call made in the current task (the Runner sleeps after it)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """A call `Outbound` refused (an `ApiqError`), recorded as the step's output: the
    refusal is an answer the replay must see again, and APIQ's errors do not pickle."""

    error_type: str
    message: str


async def recorded_steps(workflow_id: str) -> tuple[dict[str, Any], int]:
    """Outputs DBOS recorded for the workflow, by step name, and the highest step number.

    Read from a thread with an empty context: inside the workflow's context DBOS would
    checkpoint the listing itself, and a replay would see the first, empty, answer.
    """
    fresh = contextvars.Context()
    steps = await anyio.to_thread.run_sync(fresh.run, DBOS.list_workflow_steps, workflow_id)
    recorded: dict[str, Any] = {}
    for step in steps:
        error = step["error"]
        recorded[step["function_name"]] = error if error is not None else step["output"]
    return recorded, max((step["function_id"] for step in steps), default=0)


def skip_recorded_step_numbers(last: int) -> None:
    """Move this workflow's step counter past `last` (unused numbers are allowed gaps)."""
    while DBOS.reserve_step().step_id < last:
        pass


class DurableRun:
    """One execution's workflow in this process.

    Args:
        execution_id: The DBOS workflow id.
        writer: This process's event writer.
        recorded: What a previous attempt recorded (see `recorded_steps`).
    """

    def __init__(self, execution_id: str, writer: EventWriter, recorded: Mapping[str, Any]) -> None:
        self.execution_id = execution_id
        self.cancel = anyio.Event()
        """Set when the user asked to stop: no call after it, and a retry wait ends."""
        self.sender: StepCall | None = None
        """Makes the calls not recorded yet (an `OutboundStepCall` for the principal)."""
        self._writer = writer
        self._recorded = recorded
        self.claim = Claim(execution_id, owner_token(execution_id))
        """This run (execution id and DBOS ownership token, read in the workflow's context)."""
        self._calls: Counter[tuple[str, int | None]] = Counter()
        self._sleeps: Counter[str] = Counter()
        self._events: Counter[tuple[str, str | None, Any]] = Counter()
        self._emitted = 0

    async def call(self, request: StepRequest) -> StepResponse:
        """Make `request` as a DBOS step, or return what a previous attempt recorded."""
        key = (request.step_id, request.item)
        number = self._calls[key]
        self._calls[key] += 1
        identity = f"{request.step_id}/{'-' if request.item is None else request.item}/{number}"
        _LAST_CALL.set(identity)
        name = f"apiq.call {identity}"
        if name in self._recorded:
            outcome = self._recorded[name]
        else:
            outcome = await self._step(name, request)
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, Refused):
            raise ExecutionError(outcome.message, operation_id=request.operation_id)
        assert isinstance(outcome, StepResponse), f"step {name} recorded {type(outcome)}"
        return outcome

    async def _step(self, name: str, request: StepRequest) -> StepResponse | Refused:
        """Send `request` as DBOS step `name` and queue its checkpoint (see `checkpoints`)."""
        if self.sender is None:
            raise RuntimeError("DurableRun.sender is not set")
        function_id = DBOS.reserve_step().step_id
        claim = self.claim
        started_ms = int(time.time() * 1000)
        # SECURITY.md: "step started" is on disk before the request leaves, in the same
        # transaction as the checks DBOS makes at a step and the previous call's checkpoint.
        self._writer.emit(claim)
        await self._writer.flush()
        stop = self._writer.stop_of((claim.execution_id, claim.owner))
        if stop is not None:
            raise stop
        outcome: StepResponse | Refused | Exception
        try:
            outcome = await self.sender(request)
        except ApiqError as exc:
            outcome = Refused(type(exc).__name__, str(exc))
        except Exception as exc:  # recorded as DBOS records a step's error, then raised
            self._writer.emit(Checkpoint.of(claim, function_id, name, exc, started_ms))
            raise
        self._writer.emit(Checkpoint.of(claim, function_id, name, outcome, started_ms))
        return outcome

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` durably (a recovered run waits for the rest); a cancel ends it."""
        if seconds <= 0:
            return
        after = _LAST_CALL.get() or "-"
        number = self._sleeps[after]
        self._sleeps[after] += 1
        name = f"apiq.sleep {after}/{number}"
        recorded = self._recorded.get(name)
        if isinstance(recorded, float):
            wake_at = recorded
        else:
            wake_at = await DBOS.run_step_async(StepOptions(name=name), _wake_at, seconds)
        with anyio.move_on_after(max(0.0, wake_at - time.time())):
            await self.cancel.wait()

    async def emit(self, kind: str, step_id: str | None, detail: dict[str, Any]) -> None:
        """Queue an event under an identity a replay reproduces (never waits)."""
        if self._emitted >= MAX_EVENTS:
            raise ExecutionError(f"execution {self.execution_id} emitted {MAX_EVENTS} events")
        self._emitted += 1
        item = detail.get("item")
        key = (kind, step_id, item)
        number = self._events[key]
        self._events[key] += 1
        identity = f"{kind}/{step_id or '-'}/{'-' if item is None else item}/{number}"
        text = json.dumps(detail, default=str, separators=(",", ":"))
        self._writer.emit(
            EventRow(
                self.execution_id,
                identity,
                kind,
                step_id,
                text,
                time.time(),
                owner=self.claim.owner,
            )
        )


def _wake_at(seconds: float) -> float:
    return time.time() + seconds
