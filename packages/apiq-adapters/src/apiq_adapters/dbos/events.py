"""`EventWriter`: one task per process writes every running execution's events in batches.

`emit` only queues a row (it never waits, so emitting cannot reorder what a run does);
the writer commits what accumulated, within `LINGER_S` or at once when a run flushes. `flush`
waits until everything queued before it is committed: a run flushes before it sends a call
(so `step.started`, and the checkpoint of the call before, are on disk before the request
leaves). `finish` queues the final state behind the last events and waits: both land in one
transaction. Besides events the writer carries DBOS step checkpoints and claims (see
`checkpoints`); what it learns there (a workflow lost to another run, or cancelled) is kept
for the run to raise (`stop_of`).

An event lost in a crash is not lost for good: the recovered run replays from the start
and re-emits every event under the same identity; the store keeps the first copy of each.
A failed write (the database is down) is retried with backoff; runs wait in `flush`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import anyio

from apiq_adapters.dbos.checkpoints import Checkpoint, Run, lost
from apiq_adapters.dbos.store import EventRow, FinalState

if TYPE_CHECKING:
    from apiq_adapters.dbos.store import ExecutionStore, Written

__all__ = ["EventWriter"]

logger = logging.getLogger(__name__)

MAX_BATCH = 500
"""Most events written in one transaction."""
LINGER_S = 0.02
"""Longest an event waits for a `flush` to carry it: a run flushes before each call anyway,
and a write at every emit would compete with the runs for the GIL from a second thread
(measured: +1-2 ms per step on a busy 2-core machine)."""
CHECKPOINT_LINGER_S = 0.005
"""Longest a queued call checkpoint waits for a `flush`: a run answered by the upstream
usually flushes its next call well within it (the checkpoint then shares that transaction),
and until it is committed a crash would send that call again."""


class EventWriter:
    """Writes queued events through `store`; run `serve` in a task group.

    Args:
        store: Where events go.
        linger_s: Longest an emitted event waits before it is written without a flush.
    """

    def __init__(self, store: ExecutionStore, *, linger_s: float = LINGER_S) -> None:
        self._store = store
        self._linger_s = linger_s
        self._pending: list[Written] = []
        self._queued = 0
        """Events ever queued."""
        self._written = 0
        """Events ever committed."""
        self._has_pending = anyio.Event()
        self._soon = anyio.Event()
        """Set by a flush or a checkpoint: write within `CHECKPOINT_LINGER_S` at the latest."""
        self._urgent = anyio.Event()
        self._written_changed = anyio.Event()
        self._watched: dict[tuple[str, bool], tuple[anyio.Event, int]] = {}
        """(execution id, final only) -> (set at such a commit, followers waiting on it)."""
        self._stops: dict[Run, BaseException] = {}
        """What a write found that stops a run."""

    def emit(self, row: Written) -> None:
        """Queue `row` for the next batch."""
        self._pending.append(row)
        self._queued += 1
        self._has_pending.set()
        if isinstance(row, Checkpoint):
            self._soon.set()

    async def finish(self, state: FinalState) -> None:
        """Queue `state` behind the events queued so far and wait until it is committed.

        Raises:
            DBOSWorkflowConflictIDError: Another run owns the workflow now; nothing of
                this run was written since it lost it.
        """
        self.emit(state)
        await self.flush()
        run = (state.execution_id, state.owner)
        if run in lost(self._stops):
            raise self._stops[run]

    def stop_of(self, run: Run) -> BaseException | None:
        """What stops `run`, as found by the writes so far."""
        return self._stops.get(run)

    def forget(self, run: Run) -> None:
        """Drop what was found about `run` (it ended)."""
        self._stops.pop(run, None)

    @contextmanager
    def watching(self, execution_id: str, *, final: bool) -> Iterator[anyio.Event]:
        """An event set when this process commits news of `execution_id` (with `final`:
        its final state). Followers of an execution running here wake at once; for one
        running elsewhere nothing is committed here and they poll."""
        key = (execution_id, final)
        event, count = self._watched.get(key, (anyio.Event(), 0))
        self._watched[key] = (event, count + 1)
        try:
            yield event
        finally:
            current = self._watched.get(key)
            if current is not None and current[0] is event:
                if current[1] <= 1:
                    del self._watched[key]
                else:
                    self._watched[key] = (event, current[1] - 1)

    async def flush(self) -> None:
        """Return once every event queued so far is committed."""
        target = self._queued
        if self._written < target:
            self._urgent.set()
            self._soon.set()
        while self._written < target:
            await self._written_changed.wait()

    async def serve(self) -> None:
        """Write batches until cancelled, retrying a failed batch with backoff."""
        backoff = 0.1
        while True:
            await self._has_pending.wait()
            with anyio.move_on_after(self._linger_s):
                await self._soon.wait()
            if self._soon.is_set() and not self._urgent.is_set():
                with anyio.move_on_after(CHECKPOINT_LINGER_S):
                    await self._urgent.wait()
            self._has_pending, self._soon, self._urgent = (
                anyio.Event(),
                anyio.Event(),
                anyio.Event(),
            )
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                try:
                    self._stops.update(await self._store.run(self._store.write, batch))
                except Exception:
                    logger.exception("writing %d execution events failed; retrying", len(batch))
                    await anyio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.1
                del self._pending[: len(batch)]
                self._written += len(batch)
                changed, self._written_changed = self._written_changed, anyio.Event()
                changed.set()
                self._tell_watchers(batch)

    def _tell_watchers(self, batch: list[Written]) -> None:
        if not self._watched:
            return
        for item in batch:
            if not isinstance(item, EventRow | FinalState):
                continue
            for key in (
                (item.execution_id, False),
                (item.execution_id, isinstance(item, FinalState)),
            ):
                watched = self._watched.pop(key, None)
                if watched is not None:
                    watched[0].set()

    async def drain(self) -> None:
        """Write what is still queued (at shutdown, after `serve` stopped)."""
        while self._pending:
            batch = self._pending[:MAX_BATCH]
            self._stops.update(await self._store.run(self._store.write, batch))
            del self._pending[: len(batch)]
            self._written += len(batch)
