"""`DbosExecutor`: the `Executor` port on DBOS Transact, durable and shared across processes.

Same contract as `LocalExecutor`: `start` admits the plan (`admit`: ownership, validation,
approval) and returns once the execution is recorded; `events` streams from the start to
the end; `cancel` stops it before its next call; `state` and `wait` report it. Everything
goes through the database, so `events`, `state` and `cancel` work from any process that
opens a `DbosExecutor` on the same database, whichever process runs the execution.

On SQLite the starting process runs the execution (a DBOS workflow on this loop); on
PostgreSQL it enqueues it on a DBOS queue that every worker (`settings.worker`) shares.
How calls, waits and events survive a crash: `apiq_adapters.dbos.run`; how a dead worker's
executions move to a live one: `apiq_adapters.dbos.liveness`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, cast

import anyio
from anyio.abc import TaskGroup
from dbos import DBOS, SetWorkflowID

from apiq.errors import ExecutionError
from apiq.execution.admission import Connections, open_execution
from apiq.execution.steps import Limits
from apiq.models import ExecutionEvent, ExecutionState, Principal
from apiq_adapters.dbos import runtime
from apiq_adapters.dbos.events import EventWriter
from apiq_adapters.dbos.liveness import watch_cancels, watch_workers
from apiq_adapters.dbos.settings import DbosSettings
from apiq_adapters.dbos.store import ExecutionRow, ExecutionStore
from apiq_adapters.dbos.workflow import (
    ExecutionHost,
    install_host,
    installed_host,
    payload_of,
    register_workflow,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    from apiq.calls.outbound import Outbound
    from apiq.execution.approval import ApprovalLedger
    from apiq.ports import AuditSink, Executor
    from apiq.workflows.model import Plan

__all__ = ["DbosExecutor"]

logger = logging.getLogger(__name__)

ENGINE_CHECK_S = 1.0
"""How often a follower of an unfinished execution asks DBOS whether its workflow died."""
Status = Literal["pending", "running", "succeeded", "failed", "cancelled"]
_FINAL = ("succeeded", "failed", "cancelled")
_DBOS_ENDED: dict[str, Status] = {
    "ERROR": "failed",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "failed",
    "CANCELLED": "cancelled",
}


class DbosExecutor:
    """Runs plans durably on DBOS, on SQLite (embedded) or PostgreSQL (many workers).

    Args:
        outbound: Makes this process's calls (each process builds its own).
        connections: Finds a principal's connection and catalog by id.
        approvals: Where approval tokens are redeemed (by the starting process only).
        audit: Receives `execution.started` (here) and `execution.finished` (where it ran).
        settings: Database, worker role and timings.
        limits: Bounds on each execution this process runs.

    Example:
        >>> settings = DbosSettings(database_url="postgresql://app@db:5432/apiq")
        >>> async with DbosExecutor(outbound, conns, approvals=a, audit=sink,
        ...                         settings=settings) as executor:
        ...     execution_id = await executor.start(alice, plan, approval=token)
        ...     state = await executor.wait(alice, execution_id)
    """

    def __init__(
        self,
        outbound: Outbound,
        connections: Connections,
        *,
        approvals: ApprovalLedger,
        audit: AuditSink,
        settings: DbosSettings = DbosSettings(),  # noqa: B008 - frozen value object
        limits: Limits = Limits(),  # noqa: B008 - frozen value object
    ) -> None:
        self._outbound = outbound
        self._connections = connections
        self._approvals = approvals
        self._audit = audit
        self.settings = settings
        self._limits = limits
        self.executor_id = settings.resolved_executor_id()
        self._engine: sa.Engine | None = None
        self._store: ExecutionStore | None = None
        self._host: ExecutionHost | None = None
        self._writer: EventWriter | None = None
        self._group: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        settings = self.settings
        install_host(None, check_only=True)  # before touching any database
        engine = await anyio.to_thread.run_sync(runtime.build_engine, settings)
        connections = settings.pool_size if settings.is_sqlite else max(2, settings.pool_size // 4)
        store = ExecutionStore(engine, connections=connections)
        writer = EventWriter(store)
        host = ExecutionHost(
            self._outbound,
            self._connections,
            audit=self._audit,
            store=store,
            writer=writer,
            limits=self._limits,
        )
        launched = False
        try:
            install_host(host)  # refuses a second executor in this process
            await store.run(store.create)
            register_workflow()
            runtime.launch_dbos(settings, engine, self.executor_id)
            launched = True
            if settings.worker and not settings.is_sqlite:
                # Only workers configure the queue (enqueueing needs no registration); the
                # per-worker concurrency is the queue's: the last worker to start sets it.
                await anyio.to_thread.run_sync(self._register_queue)
        except BaseException:
            with anyio.CancelScope(shield=True):
                if launched:
                    await anyio.to_thread.run_sync(runtime.destroy_dbos)
                if host is installed_host():
                    install_host(None)
                engine.dispose()
            raise
        self._engine, self._store, self._host, self._writer = engine, store, host, writer
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(writer.serve)
        self._group.start_soon(self._watch_cancels)
        if settings.worker:
            self._group.start_soon(self._watch_workers)
        return self

    def _register_queue(self) -> None:
        DBOS.register_queue(
            self.settings.queue_name,
            worker_concurrency=self.settings.concurrency,
            polling_interval_sec=self.settings.queue_poll_s,
            on_conflict="always_update",
        )

    async def _watch_workers(self) -> None:
        assert self._store is not None
        await watch_workers(
            self._store,
            self.executor_id,
            heartbeat_s=self.settings.heartbeat_s,
            dead_after_s=self.settings.dead_after_s,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._host is not None
        assert self._store is not None
        assert self._group is not None
        assert self._writer is not None
        host, store, group, writer = self._host, self._store, self._group, self._writer
        self._group = None
        host.closing = True
        with anyio.CancelScope(shield=True):
            # Interrupted executions stay PENDING in DBOS and resume later (see liveness).
            for task in list(host.tasks):
                task.cancel()
            if host.tasks:
                await asyncio.wait(list(host.tasks), timeout=10)
        group.cancel_scope.cancel()
        try:
            suppress = await group.__aexit__(exc_type, exc, tb)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await writer.drain()
                    if self.settings.worker and not self.settings.is_sqlite:
                        await store.run(store.mark_gone, self.executor_id)
                except Exception:  # a replay re-emits the events; peers see the silence
                    logger.warning("closing DbosExecutor: database unreachable", exc_info=True)
                await anyio.to_thread.run_sync(runtime.destroy_dbos)
                runtime.restore_default_executor(asyncio.get_running_loop())
                install_host(None)
                assert self._engine is not None
                self._engine.dispose()
        return suppress

    async def start(
        self,
        principal: Principal,
        plan: Plan,
        *,
        inputs: Mapping[str, Any] | None = None,
        approval: str | None = None,
    ) -> str:
        """Admit `plan` (see `admit`), record it durably and start or enqueue it."""
        store, _ = self._open()
        execution_id, admitted = await open_execution(
            principal,
            plan,
            inputs,
            approval,
            connections=self._connections,
            approvals=self._approvals,
            audit=self._audit,
        )
        await store.run(
            store.insert_execution, execution_id, principal.tenant, principal.id, admitted.digest
        )
        payload = payload_of(execution_id, principal, plan, admitted.inputs, admitted.digest)
        workflow = register_workflow()
        with SetWorkflowID(execution_id):
            if self.settings.is_sqlite:
                await DBOS.start_workflow_async(workflow, payload)
            else:
                await DBOS.enqueue_workflow_async(self.settings.queue_name, workflow, payload)
        return execution_id

    async def events(
        self, principal: Principal, execution_id: str
    ) -> AsyncIterator[ExecutionEvent]:
        """Every event of the execution from its start; ends when the execution ends."""
        store, writer = self._open()
        await self._owned(principal, execution_id)
        # DBOS is asked after ENGINE_CHECK_S: an execution that ends sooner never needs it.
        seq, engine_checked = 0, anyio.current_time()
        while True:
            with writer.watching(execution_id, final=False) as news:
                rows = await store.run(store.events_after, execution_id, seq)
                for row in rows:
                    seq = row.seq
                    detail = json.loads(row.detail)
                    yield ExecutionEvent(execution_id, row.kind, row.step_id, detail)
                    if row.kind == "execution.finished":
                        return
                if rows:
                    continue
                if anyio.current_time() - engine_checked >= ENGINE_CHECK_S:
                    # Ended without `execution.finished` (DBOS failed the workflow itself)?
                    engine_checked = anyio.current_time()
                    ended = (await self.state(principal, execution_id)).status in _FINAL
                    if ended and not await store.run(store.events_after, execution_id, seq):
                        return
                with anyio.move_on_after(self._poll_s(execution_id)):
                    await news.wait()

    async def cancel(self, principal: Principal, execution_id: str) -> None:
        """Stop before the next call; a wait between retries is cut short."""
        store, _ = self._open()
        await self._owned(principal, execution_id)
        await store.run(store.request_cancel, execution_id)
        assert self._host is not None
        run = self._host.runs.get(execution_id)
        if run is not None:
            run.cancel.set()

    async def state(self, principal: Principal, execution_id: str) -> ExecutionState:
        """Where the execution stands now."""
        return await self._state_of(await self._owned(principal, execution_id), engine=True)

    async def wait(self, principal: Principal, execution_id: str) -> ExecutionState:
        """The final state, once the execution has ended."""
        _, writer = self._open()
        engine_checked = anyio.current_time()
        while True:
            with writer.watching(execution_id, final=True) as finished:
                row = await self._owned(principal, execution_id)
                engine = anyio.current_time() - engine_checked >= ENGINE_CHECK_S
                if engine:
                    engine_checked = anyio.current_time()
                state = await self._state_of(row, engine=engine)
                if state.status in _FINAL:
                    return state
                with anyio.move_on_after(self._poll_s(execution_id)):
                    await finished.wait()

    def _poll_s(self, execution_id: str) -> float:
        """How long a follower waits for news before reading the database again: what an
        execution running in this process commits wakes its followers at once (`watching`),
        so the database is read only at the engine checks' pace (its run may end unseen)."""
        if self._host is not None and execution_id in self._host.runs:
            return ENGINE_CHECK_S
        return self.settings.events_poll_s

    async def _state_of(self, row: ExecutionRow, *, engine: bool) -> ExecutionState:
        """The state `row` records; with `engine`, DBOS is asked whether a running
        execution's workflow itself ended (a bug, or too many recoveries: no result kept)."""
        if row.status in _FINAL:
            result = row.result or {}
            return ExecutionState(
                row.execution_id,
                cast(Status, row.status),
                steps=result.get("steps", {}),
                outputs=result.get("outputs", {}),
                error=result.get("error"),
                plan_digest=row.plan_digest,
            )
        workflow = await DBOS.get_workflow_status_async(row.execution_id) if engine else None
        if workflow is not None and workflow.status in _DBOS_ENDED:
            return ExecutionState(
                row.execution_id,
                _DBOS_ENDED[workflow.status],
                error=f"the durable workflow ended {workflow.status}: {workflow.error}",
                plan_digest=row.plan_digest,
            )
        return ExecutionState(
            row.execution_id, cast(Status, row.status), plan_digest=row.plan_digest
        )

    async def _watch_cancels(self) -> None:
        assert self._host is not None
        assert self._store is not None
        await watch_cancels(self._host, self._store, self.settings.cancel_poll_s)

    def _open(self) -> tuple[ExecutionStore, EventWriter]:
        if self._store is None or self._writer is None or self._group is None:
            raise ExecutionError("use DbosExecutor as 'async with DbosExecutor(...) as ex'")
        return self._store, self._writer

    async def _owned(self, principal: Principal, execution_id: str) -> ExecutionRow:
        store, _ = self._open()
        row = await store.run(store.execution, execution_id)
        if row is None or (row.tenant, row.owner) != (principal.tenant, principal.id):
            # Another principal's execution is as unknown as a missing one.
            raise ExecutionError(f"no execution {execution_id!r:.80} for this principal")
        return row


if TYPE_CHECKING:
    _: type[Executor] = DbosExecutor
