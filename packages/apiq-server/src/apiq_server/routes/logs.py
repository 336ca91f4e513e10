"""`GET /api/logs`: the audit log of the caller's tenant, for auditors and admins.

Read-only: no route updates or deletes an audit row. Filters narrow by actor, outcome, action
prefix (`plan.` finds `plan.created` and `plan.approved`) and time; pages are capped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import get
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from apiq.models import AuditEvent, AuditQuery, Outcome
from apiq_server.auth.current import CurrentUser
from apiq_server.policy import AUDITORS, allow
from apiq_server.routes.params import Limit, Offset
from apiq_server.schemas import Envelope, Page, ok
from apiq_server.schemas.logs import AuditEventOut
from apiq_server.wiring import Services

__all__ = ["handlers"]

MAX_FILTER = 200
"""Longest actor id or action prefix a filter may name (both columns hold at most 200)."""


@get("/api/logs", opt=allow(AUDITORS), summary="Audit log", tags=["logs"])
async def list_logs(
    services: Services,
    user: CurrentUser,
    actor: Annotated[str | None, Parameter(max_length=MAX_FILTER, required=False)] = None,
    action: Annotated[
        str | None,
        Parameter(max_length=MAX_FILTER, required=False, description="prefix of the action"),
    ] = None,
    since: Annotated[
        datetime | None, Parameter(required=False, description="ISO 8601, inclusive")
    ] = None,
    until: Annotated[
        datetime | None, Parameter(required=False, description="ISO 8601, exclusive")
    ] = None,
    outcome: Annotated[Outcome | None, Parameter(required=False)] = None,
    offset: Offset = 0,
    limit: Limit = 20,
) -> Envelope[Page[AuditEventOut]]:
    """Audit events of your tenant, newest first. Times without a zone are UTC."""
    query = AuditQuery(
        tenant=user.tenant,
        actor=actor or None,
        action_prefix=action or None,
        since=_utc(since),
        until=_utc(until),
        outcome=outcome,
        limit=limit,
    )
    events, total = await services.audit.page(query, offset=offset)
    items = [_out(event) for event in events]
    return ok(Page[AuditEventOut](items=items, total=total, offset=offset, limit=limit))


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        at=event.at,
        actor=event.actor,
        action=event.action,
        outcome=event.outcome,
        target=event.target,
        detail=dict(event.detail),
    )


handlers: list[ControllerRouterHandler] = [list_logs]
