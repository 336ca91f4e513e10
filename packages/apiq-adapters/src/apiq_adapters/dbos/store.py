"""`ExecutionStore`: APIQ's own tables beside DBOS's, so any process can follow an execution.

DBOS keeps workflows, step outputs and queues. APIQ adds three small tables:

- `apiq_executions`: owner (tenant, principal), plan digest, status, the cancel flag and
  the final result as JSON. `state`, `cancel` and ownership checks read it.
- `apiq_execution_events`: the event stream, in commit order (`seq`). Each event carries an
  identity derived from what the run did (`step.started/find/-/0`), unique per execution,
  so a replayed run re-emits its events without duplicating any.
- `apiq_workers`: a heartbeat per worker process; a silent worker's executions are recovered.

Every method is synchronous SQLAlchemy Core and runs in a worker thread (`anyio.to_thread`),
bounded by a limiter the size of the pool so that a burst never waits on the pool.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from apiq_adapters.dbos.checkpoints import Checkpoint, Claim, Run, StepRecorder, lost
from apiq_adapters.dbos.prepared import Prepared

__all__ = ["EventRow", "ExecutionRow", "ExecutionStore", "FinalState", "Written"]

T = TypeVar("T")

_metadata = sa.MetaData()
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: a rowid alias

executions = sa.Table(
    "apiq_executions",
    _metadata,
    sa.Column("execution_id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("plan_digest", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
events = sa.Table(
    "apiq_execution_events",
    _metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("execution_id", sa.String(64), nullable=False),
    sa.Column("ident", sa.String(400), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=True),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.UniqueConstraint("execution_id", "ident", name="apiq_execution_events_ident"),
    sa.Index("apiq_execution_events_by_execution", "execution_id", "seq"),
)
workers = sa.Table(
    "apiq_workers",
    _metadata,
    sa.Column("executor_id", sa.String(200), primary_key=True),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)


_INSERT_EVENT = sa.text(
    "INSERT INTO apiq_execution_events (execution_id, ident, kind, step_id, detail, at) "
    "VALUES (:execution_id, :ident, :kind, :step_id, :detail, :at) "
    "ON CONFLICT (execution_id, ident) DO NOTHING"
)
"""Plain text (SQLite and PostgreSQL agree on it): the hot path skips statement building."""


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    """One row of `apiq_executions`."""

    execution_id: str
    tenant: str
    owner: str
    plan_digest: str
    status: str
    cancel_requested: bool
    result: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event, as written (`seq` 0) or read back."""

    execution_id: str
    ident: str
    kind: str
    step_id: str | None
    detail: str
    """JSON text."""
    at: float
    """POSIX seconds when the run emitted it."""
    seq: int = 0
    owner: str | None = None
    """The emitting run's DBOS ownership token: a run that lost its workflow writes none."""


@dataclass(frozen=True, slots=True)
class FinalState:
    """How an execution ended, written with its last events (so that a reader who sees
    the final status has every event, and one who sees `execution.finished` the status)."""

    execution_id: str
    status: str
    result: str
    """JSON text: {steps, outputs, error}."""
    owner: str | None = None
    """The run's DBOS ownership token: a run that lost its workflow writes no final state."""

    @classmethod
    def of(
        cls, execution_id: str, status: str, result: dict[str, Any], owner: str | None = None
    ) -> FinalState:
        """`result` as JSON (values JSON cannot hold are written as text)."""
        text = json.dumps(result, default=str, separators=(",", ":"))
        return cls(execution_id, status, text, owner)


Written = EventRow | FinalState | Checkpoint | Claim
"""What the event writer writes: events, final states, DBOS step checkpoints and claims."""


class _Statements:
    """The writer's statements, compiled once DBOS runs (it knows its schema) and the
    engine has connected (its dialect knows the default schema)."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.recorder = StepRecorder(dialect)
        self.event = Prepared(_INSERT_EVENT, dialect)
        final = (
            executions.update()
            .where(executions.c.execution_id == sa.bindparam("id"))
            .values(
                status=sa.bindparam("new_status"),
                result=sa.bindparam("new_result"),
                updated_at=sa.bindparam("now"),
            )
        )
        self.final = Prepared(final, dialect)


class ExecutionStore:
    """APIQ's execution tables on `engine` (SQLite or PostgreSQL).

    Args:
        engine: A synchronous SQLAlchemy engine; the store borrows it.
        connections: Most statements in flight at once (at most the engine's pool size).
    """

    def __init__(self, engine: sa.Engine, *, connections: int) -> None:
        self._engine = engine
        self._limiter = anyio.CapacityLimiter(connections)
        self._postgres = engine.dialect.name == "postgresql"
        self._statements: _Statements | None = None
        self._insert = postgresql.insert if self._postgres else sqlite.insert  # upserts
        # The database's clock, so that worker liveness never depends on clocks agreeing.
        self._now: sa.ColumnElement[Any] = (
            sa.func.extract("epoch", sa.func.clock_timestamp())
            if self._postgres
            else sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)", sa.Float)
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a method of this store in a worker thread."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def create(self) -> None:
        """Create the tables that are missing (safe when many processes start together)."""
        with self._engine.begin() as conn:
            if self._postgres:  # CREATE ... IF NOT EXISTS still races in PostgreSQL's catalog
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7240411)"))
            for table in _metadata.sorted_tables:
                conn.execute(sa.schema.CreateTable(table, if_not_exists=True))
                for index in table.indexes:
                    conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))

    def insert_execution(self, execution_id: str, tenant: str, owner: str, digest: str) -> None:
        now = time.time()
        with self._engine.begin() as conn:
            conn.execute(
                executions.insert().values(
                    execution_id=execution_id,
                    tenant=tenant,
                    owner=owner,
                    plan_digest=digest,
                    status="pending",
                    cancel_requested=False,
                    created_at=now,
                    updated_at=now,
                )
            )

    def mark_running(self, execution_id: str) -> tuple[bool, bool]:
        """Move a pending execution to running; returns (first run, cancel requested)."""
        table = executions.c
        with self._engine.begin() as conn:
            moved = conn.execute(
                executions.update()
                .where(table.execution_id == execution_id, table.status == "pending")
                .values(status="running", updated_at=time.time())
            ).rowcount
            cancel = conn.execute(
                sa.select(table.cancel_requested).where(table.execution_id == execution_id)
            ).scalar()
        return moved == 1, bool(cancel)

    def execution(self, execution_id: str) -> ExecutionRow | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(executions).where(executions.c.execution_id == execution_id)
            ).first()
        if row is None:
            return None
        return ExecutionRow(
            row.execution_id,
            row.tenant,
            row.owner,
            row.plan_digest,
            row.status,
            bool(row.cancel_requested),
            json.loads(row.result) if row.result else None,
        )

    def request_cancel(self, execution_id: str) -> None:
        table = executions.c
        with self._engine.begin() as conn:
            conn.execute(
                executions.update()
                .where(table.execution_id == execution_id, table.status.in_(("pending", "running")))
                .values(cancel_requested=True, updated_at=time.time())
            )

    def cancelled_among(self, execution_ids: Sequence[str]) -> set[str]:
        """The ids among `execution_ids` whose cancel was requested."""
        table = executions.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.execution_id).where(
                    table.execution_id.in_(list(execution_ids)), table.cancel_requested
                )
            ).scalars()
            return set(rows)

    def write(self, batch: Sequence[Written]) -> dict[Run, BaseException]:
        """In one transaction and in order: insert events (one already recorded under the
        same identity is skipped), DBOS step checkpoints and final states. Returns what
        stops a run (see `checkpoints`); nothing of a run whose workflow another run owns
        now is written. Runs on the driver's cursor (see `prepared`): it is the hot path."""
        runs = {(item.execution_id, item.owner) for item in batch if not isinstance(item, EventRow)}
        raw = self._engine.raw_connection()
        try:  # closing returns the connection to the pool, which rolls back what is left
            statements = self._statements or _Statements(self._engine.dialect)
            self._statements = statements
            cursor = raw.cursor()
            # In a fixed order: two PostgreSQL writers never lock the same rows crosswise.
            stops = statements.recorder.check(cursor, sorted(runs, key=str)) if runs else {}
            gone = lost(stops)
            rows: list[dict[str, Any]] = []
            points: list[Checkpoint] = []
            for item in batch:
                if (item.execution_id, item.owner) in gone or isinstance(item, Claim):
                    continue
                if isinstance(item, EventRow):
                    rows.append(
                        {
                            "execution_id": item.execution_id,
                            "ident": item.ident,
                            "kind": item.kind,
                            "step_id": item.step_id,
                            "detail": item.detail,
                            "at": item.at,
                        }
                    )
                elif isinstance(item, Checkpoint):
                    points.append(item)
                else:
                    if rows:  # executemany runs the rows in order: seq follows emission
                        statements.event.run_many(cursor, rows)
                        rows = []
                    values = {
                        "id": item.execution_id,
                        "new_status": item.status,
                        "new_result": item.result,
                        "now": time.time(),
                    }
                    statements.final.run(cursor, values)
            if rows:
                statements.event.run_many(cursor, rows)
            if points:
                stops.update(statements.recorder.insert(cursor, points))
            cursor.close()
            raw.commit()
        finally:
            raw.close()
        return stops

    def events_after(self, execution_id: str, seq: int, limit: int = 500) -> list[EventRow]:
        table = events.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(events)
                .where(table.execution_id == execution_id, table.seq > seq)
                .order_by(table.seq)
                .limit(limit)
            ).all()
        return [
            EventRow(r.execution_id, r.ident, r.kind, r.step_id, r.detail, r.at, r.seq)
            for r in rows
        ]

    def beat(self, executor_id: str) -> None:
        """Record that `executor_id` is alive now (database clock)."""
        statement = self._insert(workers).values(executor_id=executor_id, heartbeat_at=self._now)
        with self._engine.begin() as conn:
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["executor_id"], set_={"heartbeat_at": self._now}
                )
            )

    def silent_workers(self, silent_for_s: float, exclude: str) -> list[str]:
        """Workers other than `exclude` whose last heartbeat is older than `silent_for_s`."""
        table = workers.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(table.executor_id).where(
                    table.heartbeat_at < self._now - silent_for_s, table.executor_id != exclude
                )
            ).scalars()
            return list(rows)

    def forget_worker(self, executor_id: str, silent_for_s: float) -> None:
        """Drop a dead worker's row (unless it came back meanwhile)."""
        table = workers.c
        with self._engine.begin() as conn:
            conn.execute(
                workers.delete().where(
                    table.executor_id == executor_id, table.heartbeat_at < self._now - silent_for_s
                )
            )

    def mark_gone(self, executor_id: str) -> None:
        """Age this worker's heartbeat so that peers recover its executions at once."""
        with self._engine.begin() as conn:
            conn.execute(
                workers.update()
                .where(workers.c.executor_id == executor_id)
                .values(heartbeat_at=0.0)
            )
