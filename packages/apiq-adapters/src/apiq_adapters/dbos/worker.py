"""`apiq worker`: a process that runs queued executions until it is told to stop.

(The command line is declared in `apiq_adapters.worker_command`, which imports this module
only when the command runs, so `apiq` works without the `dbos` extra.)

    apiq worker --setup myapp.wiring:worker_parts --database-url postgresql://app@db/apiq

`--setup` names the composition root of the worker: a callable returning an async context
manager that yields `WorkerParts` (this process's own `Outbound`, `Connections` and audit
sink). Each worker builds its own HTTP client and egress policy; only the plan, inputs,
principal and execution id travel through the database. SIGTERM or SIGINT stops the worker
cleanly: what it was running stays PENDING in DBOS and moves to another worker.
"""

from __future__ import annotations

import argparse
import importlib
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from apiq.errors import ConfigurationError
from apiq.execution.approval import Approvals
from apiq.execution.steps import Limits
from apiq_adapters.dbos.executor import DbosExecutor
from apiq_adapters.dbos.settings import DbosSettings

if TYPE_CHECKING:
    from rich.console import Console

    from apiq.calls.outbound import Outbound
    from apiq.execution.admission import Connections
    from apiq.ports import AuditSink

__all__ = ["WorkerParts", "WorkerSetup", "load_setup", "run", "serve"]


@dataclass(frozen=True, slots=True)
class WorkerParts:
    """What a worker process needs to make calls, built by its composition root."""

    outbound: Outbound
    connections: Connections
    audit: AuditSink
    limits: Limits = field(default_factory=Limits)


WorkerSetup = Callable[[], AbstractAsyncContextManager[WorkerParts]]
"""`--setup`: builds (and on exit closes) a worker's parts."""


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    """`apiq worker` (parsed by `apiq_adapters.worker_command`)."""
    settings = DbosSettings(
        database_url=args.database_url,
        worker=True,
        concurrency=args.concurrency,
        executor_id=args.executor_id,
        heartbeat_s=args.heartbeat_s,
        dead_after_s=args.dead_after_s,
    )

    def ready(executor: DbosExecutor) -> None:
        source = (
            "resumes this SQLite file's executions"
            if settings.is_sqlite
            else f"runs executions from queue {settings.queue_name}"
        )
        out.print(f"worker {executor.executor_id} {source}; SIGTERM stops it")

    await serve(load_setup(args.setup), settings, ready=ready)
    return 0


def load_setup(reference: str) -> WorkerSetup:
    """The callable `module:name` refers to.

    Raises:
        ConfigurationError: The reference is malformed or names nothing callable.
    """
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--setup {reference!r} must look like 'package.module:name'")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"--setup {reference!r} cannot be loaded: {exc}") from exc
    if not callable(found):
        raise ConfigurationError(f"--setup {reference!r} is not callable")
    setup: WorkerSetup = found
    return setup


async def serve(
    setup: WorkerSetup,
    settings: DbosSettings,
    *,
    ready: Callable[[DbosExecutor], object] = lambda executor: None,
    stop: anyio.Event | None = None,
) -> None:
    """Run executions until SIGTERM/SIGINT (or `stop` is set), then shut down cleanly."""
    stop = stop or anyio.Event()
    async with setup() as parts:
        executor = DbosExecutor(
            parts.outbound,
            parts.connections,
            approvals=Approvals(),  # workers never start executions: nothing to redeem
            audit=parts.audit,
            settings=settings,
            limits=parts.limits,
        )
        async with executor, anyio.create_task_group() as group:
            group.start_soon(_stop_on_signal, stop)
            ready(executor)
            await stop.wait()
            group.cancel_scope.cancel()


async def _stop_on_signal(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            stop.set()
            return
