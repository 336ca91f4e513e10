"""`SqlAuditSink`: audit events as rows of `apiq_audit_log`, shared by every process.

`record` raises `StorageError` when the row cannot be written, so callers refuse to act
(SECURITY.md: if the audit write fails, the call does not run); nothing here updates or
deletes a row. Filters read `AuditQuery` exactly as `apiq.audit.memory.event_matches` does:
`since` inclusive, `until` exclusive, `action_prefix` a case-sensitive prefix; results are
newest first, ties broken by the later recorded (the `seq` column) first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from apiq.models import AuditEvent, AuditQuery
from apiq_adapters.sql.errors import storage_errors
from apiq_adapters.sql.tables import audit_log

__all__ = ["SqlAuditSink"]

_T = audit_log.c
_NEWEST_FIRST = (_T.at.desc(), _T.seq.desc())


class SqlAuditSink:
    """AuditSink over the `apiq_audit_log` table.

    Args:
        engine: an engine on a migrated database; borrowed, the caller disposes of it.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"SqlAuditSink(engine={self._engine.url!r})"

    async def record(self, event: AuditEvent) -> None:
        """Persist one event, committed when this returns.

        Raises:
            StorageError: the event could not be written (its message says so); the action
                it records must not go ahead.
        """
        with storage_errors("audit.record", self._engine):
            values = {
                "id": event.id,
                "at": event.at.timestamp(),
                "tenant": event.tenant,
                "actor": event.actor,
                "action": event.action,
                "outcome": event.outcome,
                "target": event.target,
                # default=str: a detail value JSON cannot hold must not lose the event.
                "detail": json.dumps(dict(event.detail), default=str, separators=(",", ":")),
            }
            async with self._engine.begin() as conn:
                await conn.execute(sa.insert(audit_log).values(values))

    async def query(self, query: AuditQuery) -> Sequence[AuditEvent]:
        """Events matching `query`, newest first, at most `query.limit`.

        Raises:
            StorageError: the log could not be read.
        """
        events, _ = await self._select(query, offset=0, count=False)
        return events

    async def page(self, query: AuditQuery, *, offset: int) -> tuple[Sequence[AuditEvent], int]:
        """One page of matching events (`query.limit` of them after skipping `offset`),
        newest first, and how many events match in all.

        Raises:
            StorageError: the log could not be read.
        """
        return await self._select(query, offset=max(offset, 0), count=True)

    async def _select(
        self, query: AuditQuery, *, offset: int, count: bool
    ) -> tuple[list[AuditEvent], int]:
        conditions = _conditions(query)
        rows: Sequence[sa.Row[Any]] = ()
        total = 0
        with storage_errors("audit.query", self._engine):
            async with self._engine.connect() as conn:
                if query.limit > 0:
                    select = (
                        sa.select(audit_log)
                        .where(*conditions)
                        .order_by(*_NEWEST_FIRST)
                        .limit(query.limit)
                        .offset(offset)
                    )
                    rows = (await conn.execute(select)).all()
                if count:
                    counting = sa.select(sa.func.count()).select_from(audit_log).where(*conditions)
                    total = (await conn.execute(counting)).scalar_one()
        return [_event(row._mapping) for row in rows], total


def _conditions(query: AuditQuery) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query.tenant is not None:
        conditions.append(_T.tenant == query.tenant)
    if query.actor is not None:
        conditions.append(_T.actor == query.actor)
    if query.event_id is not None:
        conditions.append(_T.id == query.event_id)
    if query.action_prefix:
        # Not LIKE: SQLite's LIKE ignores ASCII case and both treat % and _ as wildcards.
        prefix = query.action_prefix
        conditions.append(sa.func.substr(_T.action, 1, len(prefix)) == prefix)
    if query.since is not None:
        conditions.append(_T.at >= query.since.timestamp())
    if query.until is not None:
        conditions.append(_T.at < query.until.timestamp())
    if query.outcome is not None:
        conditions.append(_T.outcome == query.outcome)
    return conditions


def _event(row: sa.RowMapping) -> AuditEvent:
    detail = json.loads(row["detail"])
    return AuditEvent(
        id=row["id"],
        at=datetime.fromtimestamp(row["at"], UTC),
        action=row["action"],
        actor=row["actor"],
        tenant=row["tenant"],
        outcome=row["outcome"],
        target=row["target"],
        detail=detail if isinstance(detail, dict) else {},
    )


if TYPE_CHECKING:
    from apiq.ports import AuditSink

    _: type[AuditSink] = SqlAuditSink
