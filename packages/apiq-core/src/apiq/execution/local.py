"""`LocalExecutor`: runs approved plans in this process (notebooks, scripts, tests).

`run` executes in the calling task and reports events to a callback as they happen;
`start` runs in the background and needs `async with LocalExecutor(...)` (its task group;
leaving it cancels what still runs). Every call goes through `Outbound` (credentials,
egress, retries, audit, redaction); every execution starts only after `admit` (ownership,
validation, approval).
State lives in memory: a crash loses running executions — use `DbosExecutor` to survive one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
from anyio.abc import TaskGroup

from apiq.errors import ExecutionError
from apiq.execution.admission import Connections, audit_finished, open_execution
from apiq.execution.outbound_call import OutboundStepCall
from apiq.execution.runner import Runner
from apiq.execution.steps import Limits, RunResult
from apiq.models import ExecutionEvent, ExecutionState, Principal

if TYPE_CHECKING:
    from apiq.calls.outbound import Outbound
    from apiq.execution.approval import ApprovalLedger
    from apiq.ports import AuditSink, Executor
    from apiq.workflows.model import Plan

__all__ = ["LocalExecutor"]

MAX_EVENTS = 10_000
"""Events kept per execution; a run that emits more fails rather than grow without bound."""


@dataclass(slots=True)
class _Execution:
    owner: tuple[str, str]
    plan_digest: str
    state: ExecutionState
    events: list[ExecutionEvent] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)

    async def sleep(self, seconds: float) -> None:
        """Wait between retries, cut short by a cancel request."""
        with anyio.move_on_after(seconds):
            await self.cancel_requested.wait()


class LocalExecutor:
    """Runs plans in-process with live events.

    Args:
        outbound: Makes the calls.
        connections: Finds a principal's connection and catalog by id.
        approvals: Where approval tokens are redeemed.
        audit: Receives `execution.started` / `execution.finished`.
        limits: Bounds on every execution.

    Example:
        >>> async with LocalExecutor(outbound, connections, approvals=a, audit=sink) as ex:
        ...     execution_id = await ex.start(alice, plan, approval=token)
        ...     async for event in ex.events(alice, execution_id):
        ...         print(event.kind, event.step_id)
    """

    def __init__(
        self,
        outbound: Outbound,
        connections: Connections,
        *,
        approvals: ApprovalLedger,
        audit: AuditSink,
        limits: Limits = Limits(),  # noqa: B008 - frozen value object
    ) -> None:
        self._outbound = outbound
        self._connections = connections
        self._approvals = approvals
        self._audit = audit
        self._limits = limits
        self._executions: dict[str, _Execution] = {}
        self._group: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._group is not None
        self._group.cancel_scope.cancel()
        # The block's own exception propagates by itself; handing it to the task group
        # would wrap it in an ExceptionGroup and hide its message.
        await self._group.__aexit__(None, None, None)
        self._group = None

    async def start(
        self,
        principal: Principal,
        plan: Plan,
        *,
        inputs: Mapping[str, Any] | None = None,
        approval: str | None = None,
    ) -> str:
        """Admit `plan` (see `admit`) and start it in the background; returns its id."""
        if self._group is None:
            raise ExecutionError(
                "start() runs executions in the background: use 'async with LocalExecutor(...)"
                " as ex', or run() to execute in the calling task"
            )
        execution, runner = await self._prepare(principal, plan, inputs, approval, None)
        self._group.start_soon(self._run, principal, execution, runner)
        return execution.state.execution_id

    async def run(
        self,
        principal: Principal,
        plan: Plan,
        *,
        inputs: Mapping[str, Any] | None = None,
        approval: str | None = None,
        on_event: Callable[[ExecutionEvent], Any] | None = None,
    ) -> ExecutionState:
        """Admit `plan` and execute it in the calling task; returns the final state.

        `on_event` sees each event as it happens (live progress in a notebook or a CLI);
        no `async with` is needed.
        """
        execution, runner = await self._prepare(principal, plan, inputs, approval, on_event)
        await self._run(principal, execution, runner)
        return execution.state

    async def _prepare(
        self,
        principal: Principal,
        plan: Plan,
        inputs: Mapping[str, Any] | None,
        approval: str | None,
        on_event: Callable[[ExecutionEvent], Any] | None,
    ) -> tuple[_Execution, Runner]:
        execution_id, admitted = await open_execution(
            principal,
            plan,
            inputs,
            approval,
            connections=self._connections,
            approvals=self._approvals,
            audit=self._audit,
        )
        execution = _Execution(
            owner=(principal.tenant, principal.id),
            plan_digest=admitted.digest,
            state=ExecutionState(execution_id, "running", plan_digest=admitted.digest),
        )
        self._executions[execution_id] = execution

        async def emit(kind: str, step_id: str | None, detail: dict[str, Any]) -> None:
            if len(execution.events) >= MAX_EVENTS:
                raise ExecutionError(f"execution {execution_id} emitted {MAX_EVENTS} events")
            event = ExecutionEvent(execution_id, kind, step_id, detail)
            execution.events.append(event)
            execution.changed.set()
            execution.changed = anyio.Event()
            if on_event is not None:
                on_event(event)

        runner = Runner(
            plan,
            admitted.inputs,
            execution_id=execution_id,
            catalogs=admitted.catalogs,
            call=OutboundStepCall(self._outbound, principal, admitted.connections),
            emit=emit,
            sleep=execution.sleep,
            cancelled=execution.cancel_requested.is_set,
            limits=self._limits,
        )
        return execution, runner

    async def _run(self, principal: Principal, execution: _Execution, runner: Runner) -> None:
        try:
            result = await runner.run()
        except Exception as exc:
            # An event or audit sink failed mid-run: the execution ends, the executor lives on.
            result = RunResult("failed", error=f"the execution stopped: {exc}")
        state = ExecutionState(
            execution.state.execution_id,
            result.status,
            steps=result.steps,
            outputs=result.outputs,
            error=result.error,
            plan_digest=execution.plan_digest,
        )
        execution.state = state
        execution.changed.set()
        await audit_finished(self._audit, principal, state.execution_id, state.status, state.error)

    async def events(
        self, principal: Principal, execution_id: str
    ) -> AsyncIterator[ExecutionEvent]:
        """Every event of the execution from its start; ends when the execution ends."""
        execution = self._owned(principal, execution_id)
        seen = 0
        while True:
            while seen < len(execution.events):
                seen += 1
                yield execution.events[seen - 1]
            if execution.state.status not in ("pending", "running"):
                return
            await execution.changed.wait()

    async def cancel(self, principal: Principal, execution_id: str) -> None:
        """Stop before the next call; a wait between retries is cut short."""
        self._owned(principal, execution_id).cancel_requested.set()

    async def state(self, principal: Principal, execution_id: str) -> ExecutionState:
        """Where the execution stands now."""
        return self._owned(principal, execution_id).state

    async def wait(self, principal: Principal, execution_id: str) -> ExecutionState:
        """The final state, once the execution has ended."""
        async for _ in self.events(principal, execution_id):
            pass
        return self._owned(principal, execution_id).state

    def _owned(self, principal: Principal, execution_id: str) -> _Execution:
        execution = self._executions.get(execution_id)
        if execution is None or execution.owner != (principal.tenant, principal.id):
            # Another principal's execution is as unknown as a missing one.
            raise ExecutionError(f"no execution {execution_id!r:.80} for this principal")
        return execution


if TYPE_CHECKING:
    _: type[Executor] = LocalExecutor
