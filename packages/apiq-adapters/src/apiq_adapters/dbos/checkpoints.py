"""A call's DBOS step checkpoint, written by APIQ in the same transaction as its events.

`DBOS.run_step_async` spends, for each step, a transaction to look the step up, another to
record it and three thread hops, and builds its SQLAlchemy statements anew each time:
measured, most of DbosExecutor's overhead per call. A call needs no look-up (a replay finds
what was recorded by name, see `run`), so `DurableRun` draws the step number from DBOS
(`DBOS.reserve_step`), makes the call and queues a `Checkpoint`: the row DBOS would write in
`operation_outputs`, serialized by DBOS's serializer. The `EventWriter` commits it with the
events around it; a run flushes before each call, so it is on disk before the next one leaves.

What DBOS checks at a step is checked here, in that transaction, for each execution that
writes a checkpoint, a `Claim` (made before each call) or its final state:
- the run still owns its workflow (a recovered workflow belongs to whoever recovered it):
  otherwise none of that execution's rows are written and its run stops with DBOS's own
  `DBOSWorkflowConflictIDError`;
- a workflow cancelled through DBOS stops before its next call (`DBOSWorkflowCancelledError`);
- a step number already recorded differently is `DBOSStepNondeterminismError`.

This module is the one place that knows DBOS's tables (pinned `dbos>=3.4,<4`); the
durability tests read its rows back through `DBOS.list_workflow_steps`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from dbos import error as dbos_error
from dbos._context import current_owner_xid
from dbos._dbos import _get_dbos_instance
from dbos._schemas import SCHEMA_PLACEHOLDER
from dbos._schemas.system_database import SystemSchema
from dbos._serialization import serialize_exception, serialize_value
from sqlalchemy.dialects import postgresql, sqlite

from apiq_adapters.dbos.prepared import Prepared

__all__ = ["Checkpoint", "Claim", "Run", "StepRecorder", "lost", "owner_token"]

_outputs = SystemSchema.operation_outputs
_status = SystemSchema.workflow_status


def owner_token(execution_id: str) -> str | None:
    """The running workflow's ownership token (call from the workflow's own context)."""
    return current_owner_xid(execution_id)


Run = tuple[str, str | None]
"""A run of an execution: (execution id, its DBOS ownership token)."""


def lost(stops: dict[Run, BaseException]) -> set[Run]:
    """The runs among `stops` whose workflow another run owns now."""
    return {
        run
        for run, stop in stops.items()
        if isinstance(stop, dbos_error.DBOSWorkflowConflictIDError)
    }


@dataclass(frozen=True, slots=True)
class Claim:
    """Checked before a call: the run still owns its workflow, which is not cancelled."""

    execution_id: str
    owner: str | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One call's outcome as DBOS records a step (a row of `operation_outputs`)."""

    execution_id: str
    function_id: int
    function_name: str
    output: str | None
    error: str | None
    serialization: str
    started_ms: int
    completed_ms: int
    owner: str | None
    """The run's ownership token (None: nothing to check)."""

    @classmethod
    def of(
        cls, claim: Claim, function_id: int, name: str, outcome: object, started_ms: int
    ) -> Checkpoint:
        """The checkpoint of `outcome`: what the call returned, or the exception it raised."""
        serializer = _get_dbos_instance()._serializer
        output: str | None = None
        error: str | None = None
        if isinstance(outcome, Exception):
            error, serialization = serialize_exception(outcome, None, serializer)
        else:
            output, serialization = serialize_value(outcome, None, serializer)
        return cls(
            claim.execution_id,
            function_id,
            name,
            output,
            error,
            serialization,
            started_ms,
            int(time.time() * 1000),
            claim.owner,
        )


class StepRecorder:
    """Checks ownership and inserts checkpoints on the cursor of APIQ's own transaction.

    The statements are compiled once (`Prepared`), where DBOS rebuilds its own for
    every step.

    Args:
        dialect: The engine's dialect (initialized: it has connected once).
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        sys_db = _get_dbos_instance()._sys_db
        translate = {SCHEMA_PLACEHOLDER: sys_db.schema}
        postgres = dialect.name == "postgresql"
        insert = postgresql.insert if postgres else sqlite.insert
        statement = (
            insert(_outputs)
            .values(
                workflow_uuid=sa.bindparam("wf"),
                function_id=sa.bindparam("fid"),
                function_name=sa.bindparam("name"),
                output=sa.bindparam("out"),
                error=sa.bindparam("err"),
                child_workflow_id=None,
                serialization=sa.bindparam("ser"),
                started_at_epoch_ms=sa.bindparam("started_ms"),
                completed_at_epoch_ms=sa.bindparam("completed_ms"),
                application_name=sys_db.app_name,
                retention_timestamp=sys_db._now_ms_sql(),
            )
            .on_conflict_do_nothing(index_elements=["workflow_uuid", "function_id"])
        )
        self._insert = Prepared(statement, dialect, translate)
        out = _outputs.c
        recorded = sa.select(out.function_name, out.completed_at_epoch_ms).where(
            out.workflow_uuid == sa.bindparam("wf"), out.function_id == sa.bindparam("fid")
        )
        self._recorded = Prepared(recorded, dialect, translate)
        owner, where = _status.c.owner_xid, _status.c.workflow_uuid == sa.bindparam("wf")
        # As DBOS does: PostgreSQL locks the row (an UPDATE would write a new version);
        # SQLite needs a write first, to open its IMMEDIATE transaction before the read.
        check: sa.ClauseElement = (
            sa.select(owner, _status.c.status).where(where).with_for_update(key_share=True)
            if postgres
            else sa.update(_status)
            .where(where)
            .values(owner_xid=owner)
            .returning(owner, _status.c.status)
        )
        self._owner = Prepared(check, dialect, translate)

    def check(self, cursor: Any, runs: Iterable[Run]) -> dict[Run, BaseException]:
        """What stops each of `runs`: its workflow lost to another run, or cancelled.
        Opens the transaction on SQLite, so call it before any other statement."""
        stops: dict[Run, BaseException] = {}
        for execution_id, token in runs:
            row = self._owner.run(cursor, {"wf": execution_id}).fetchone()
            if row is None or (token is not None and row[0] != token):
                stops[execution_id, token] = dbos_error.DBOSWorkflowConflictIDError(execution_id)
            elif row[1] == "CANCELLED":
                stops[execution_id, token] = dbos_error.DBOSWorkflowCancelledError(
                    f"Workflow {execution_id} is cancelled. Aborting function."
                )
        return stops

    def insert(self, cursor: Any, checkpoints: Sequence[Checkpoint]) -> dict[Run, BaseException]:
        """Insert `checkpoints`; returns the nondeterminism found, by run."""
        stops: dict[Run, BaseException] = {}
        for point in checkpoints:
            values = {
                "wf": point.execution_id,
                "fid": point.function_id,
                "name": point.function_name,
                "out": point.output,
                "err": point.error,
                "ser": point.serialization,
                "started_ms": point.started_ms,
                "completed_ms": point.completed_ms,
            }
            if self._insert.run(cursor, values).rowcount == 1:
                continue
            # Already there: written by this batch's earlier, retried, attempt; or a bug.
            found = self._recorded.run(cursor, values).fetchone()
            if found is None or tuple(found) != (point.function_name, point.completed_ms):
                stops[point.execution_id, point.owner] = dbos_error.DBOSStepNondeterminismError(
                    point.execution_id, point.function_id
                )
        return stops
