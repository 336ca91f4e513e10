"""The DBOS workflow that runs one execution, and the per-process host it runs in.

The workflow's only argument is a JSON payload: execution id, principal, plan
(`Plan.model_dump(mode="json")`), inputs and plan digest. Whatever process dequeues it
rebuilds the rest from its own composition root, through `ExecutionHost`: the principal's
connections and catalogs (`Connections.resolve`), the calls (`OutboundStepCall` over its own
`Outbound`), the audit sink and the limits. The approval was redeemed by the process that
started the execution; a worker never asks for one.

DBOS keeps one registry per process, so the workflow is a module-level function registered
once (`register_workflow`) that finds the process's host here (`install_host`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from dbos import DBOS

from apiq.errors import ApiqError, ConfigurationError
from apiq.execution.admission import audit_finished
from apiq.execution.outbound_call import OutboundStepCall
from apiq.execution.runner import Runner
from apiq.execution.steps import Limits, RunResult
from apiq.models import Principal
from apiq.workflows.model import Plan
from apiq_adapters.dbos.run import DurableRun, recorded_steps, skip_recorded_step_numbers
from apiq_adapters.dbos.store import FinalState

if TYPE_CHECKING:
    from apiq.calls.outbound import Outbound
    from apiq.execution.admission import Connections
    from apiq.ports import AuditSink
    from apiq_adapters.dbos.events import EventWriter
    from apiq_adapters.dbos.store import ExecutionStore

__all__ = [
    "WORKFLOW_NAME",
    "WORKFLOW_REVISION",
    "ExecutionHost",
    "install_host",
    "installed_host",
    "payload_of",
    "register_workflow",
]

WORKFLOW_NAME = "apiq_execution"
WORKFLOW_REVISION = 1
"""Bump when a change makes recorded executions replay differently: DBOS only recovers a
workflow in processes of the same application version, which includes this number."""
MAX_RECOVERY_ATTEMPTS = 50
"""Starts of one execution (first run and recoveries) before DBOS gives up on it."""

_host: ExecutionHost | None = None
_workflow: Callable[[dict[str, Any]], Coroutine[Any, Any, str]] | None = None


def payload_of(
    execution_id: str, principal: Principal, plan: Plan, inputs: dict[str, Any], digest: str
) -> dict[str, Any]:
    """The workflow's argument: plain JSON."""
    return {
        "execution_id": execution_id,
        "principal": {
            "id": principal.id,
            "tenant": principal.tenant,
            "roles": sorted(principal.roles),
        },
        "plan": plan.model_dump(mode="json"),
        "inputs": inputs,
        "plan_digest": digest,
    }


class ExecutionHost:
    """Runs executions in this process with this process's own clients.

    Args:
        outbound: Makes the calls.
        connections: Finds the principal's connections and catalogs.
        audit: Receives `execution.finished`.
        store: APIQ's execution tables.
        writer: This process's event writer.
        limits: Bounds on each execution.
    """

    def __init__(
        self,
        outbound: Outbound,
        connections: Connections,
        *,
        audit: AuditSink,
        store: ExecutionStore,
        writer: EventWriter,
        limits: Limits,
    ) -> None:
        self._outbound = outbound
        self._connections = connections
        self._audit = audit
        self._store = store
        self._writer = writer
        self._limits = limits
        self.runs: dict[str, DurableRun] = {}
        """Executions running in this process, by id."""
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closing = False

    async def run(self, payload: dict[str, Any]) -> str:
        """Run (or resume) the execution described by `payload`; returns its final status."""
        if self.closing:
            # Still PENDING in DBOS: recovered by the next process (or a peer).
            raise asyncio.CancelledError
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            return await self._run(payload)
        finally:
            self.tasks.discard(task)

    async def _run(self, payload: dict[str, Any]) -> str:
        execution_id: str = payload["execution_id"]
        who = payload["principal"]
        principal = Principal(who["id"], who["tenant"], frozenset(who["roles"]))
        plan = Plan.model_validate(payload["plan"])
        first, cancelled = await self._store.run(self._store.mark_running, execution_id)
        recorded: dict[str, Any] = {}
        if not first:
            recorded, last = await recorded_steps(execution_id)
            skip_recorded_step_numbers(last)
        run = DurableRun(execution_id, self._writer, recorded)
        if cancelled:
            run.cancel.set()
        self.runs[execution_id] = run
        try:
            result = await self._result(run, principal, plan, payload["inputs"])
            # Audit first: after a crash it may be recorded twice, never lost.
            await audit_finished(self._audit, principal, execution_id, result.status, result.error)
            final = {"steps": result.steps, "outputs": result.outputs, "error": result.error}
            owner = run.claim.owner
            await self._writer.finish(FinalState.of(execution_id, result.status, final, owner))
        finally:
            del self.runs[execution_id]
            self._writer.forget((execution_id, run.claim.owner))
        return result.status

    async def _result(
        self, run: DurableRun, principal: Principal, plan: Plan, inputs: dict[str, Any]
    ) -> RunResult:
        try:
            resolved = {
                source.name: await self._connections.resolve(principal, source.name)
                for source in plan.sources
            }
        except ApiqError as exc:
            # The connection went away between start and run: nothing can be sent.
            error = f"the plan's connections cannot be resolved: {exc}"
            await run.emit("execution.started", None, {"steps": len(plan.workflow.steps)})
            await run.emit("execution.finished", None, {"status": "failed", "error": error})
            return RunResult("failed", error=error)
        run.sender = OutboundStepCall(self._outbound, principal, resolved)
        runner = Runner(
            plan,
            inputs,
            execution_id=run.execution_id,
            catalogs={name: catalog for name, (_, catalog) in resolved.items()},
            call=run.call,
            emit=run.emit,
            sleep=run.sleep,
            cancelled=run.cancel.is_set,
            limits=self._limits,
        )
        return await runner.run()


def installed_host() -> ExecutionHost | None:
    """The host running this process's executions, if any."""
    return _host


def install_host(host: ExecutionHost | None, *, check_only: bool = False) -> None:
    """Make `host` the one that runs this process's executions (None: no host); with
    `check_only`, only raise if another host is installed.

    Raises:
        ConfigurationError: A host is installed already (DBOS allows one per process).
    """
    global _host
    if (host is not None or check_only) and _host is not None:
        raise ConfigurationError(
            "a DbosExecutor is already running in this process; DBOS allows one per process"
        )
    if not check_only:
        _host = host


async def _apiq_execution(payload: dict[str, Any]) -> str:
    if _host is None:
        # DBOS may dequeue before a host is installed or after it left: stay PENDING.
        raise asyncio.CancelledError
    return await _host.run(payload)


def register_workflow() -> Callable[[dict[str, Any]], Coroutine[Any, Any, str]]:
    """Register the execution workflow with DBOS (once per process); returns it."""
    global _workflow
    if _workflow is None:
        _workflow = DBOS.workflow(name=WORKFLOW_NAME, max_recovery_attempts=MAX_RECOVERY_ATTEMPTS)(
            _apiq_execution
        )
    return _workflow
