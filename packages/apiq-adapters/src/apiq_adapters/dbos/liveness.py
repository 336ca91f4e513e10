"""Liveness: a killed worker's executions move to live workers; cancels reach any worker.

Self-hosted DBOS (without its Conductor service) recovers a workflow only in a process that
starts with the executor id the workflow ran under. APIQ's workers get unique ids on
PostgreSQL, so each records a heartbeat in `apiq_workers` (database clock) and watches the
others: when one has been silent for `dead_after_s`, its PENDING workflows are handed back
to their queue with DBOS's own recovery routine, which re-enqueues only rows still owned by
that executor, so two workers recovering the same dead one at once enqueue each workflow
once. Whichever worker dequeues a workflow replays it from its recorded steps.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
from dbos import DBOS

if TYPE_CHECKING:
    from apiq_adapters.dbos.store import ExecutionStore
    from apiq_adapters.dbos.workflow import ExecutionHost

__all__ = ["watch_cancels", "watch_workers"]

logger = logging.getLogger(__name__)


def recover_executor(executor_id: str) -> int:
    """Re-enqueue the PENDING workflows of a dead executor; returns how many."""
    # DBOS's admin recovery entry point (the one its Conductor drives); it is idempotent.
    handles = DBOS._recover_pending_workflows([executor_id])
    return len(handles)


async def watch_workers(
    store: ExecutionStore, executor_id: str, *, heartbeat_s: float, dead_after_s: float
) -> None:
    """Beat every `heartbeat_s` and recover workers silent for `dead_after_s`; runs until
    cancelled. A database error is logged and retried at the next beat."""
    while True:
        try:
            await store.run(store.beat, executor_id)
            silent = await store.run(store.silent_workers, dead_after_s, executor_id)
            for dead in silent:
                count = await anyio.to_thread.run_sync(recover_executor, dead)
                await store.run(store.forget_worker, dead, dead_after_s)
                logger.warning(
                    "worker %s was silent for %gs: %d of its executions re-enqueued",
                    dead,
                    dead_after_s,
                    count,
                )
        except Exception:
            logger.exception("worker heartbeat or recovery failed; retrying")
        await anyio.sleep(heartbeat_s)


async def watch_cancels(host: ExecutionHost, store: ExecutionStore, poll_s: float) -> None:
    """Pass cancel requests made in any process to the executions running in this one."""
    while True:
        await anyio.sleep(poll_s)
        running = [i for i, run in host.runs.items() if not run.cancel.is_set()]
        if not running:
            continue
        try:
            cancelled = await store.run(store.cancelled_among, running)
        except Exception:
            logger.warning("reading cancel requests failed; retrying", exc_info=True)
            continue
        for execution_id in cancelled:
            run = host.runs.get(execution_id)
            if run is not None:
                run.cancel.set()
