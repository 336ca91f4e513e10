"""`GET /api/logs`: the audit log of the caller's tenant, for auditors and admins.

Read-only: no route updates or deletes an audit row. Filters narrow by actor, outcome, action
prefix (`plan.` finds `plan.created` and `plan.approved`) and time; pages are capped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import get
from litestar.exceptions import ValidationException
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
_TIME = {"format": "date-time"}
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
        str | None,
        Parameter(
            required=False, max_length=64, description="ISO 8601, inclusive", schema_extra=_TIME
        ),
    ] = None,
    until: Annotated[
        str | None,
        Parameter(
            required=False, max_length=64, description="ISO 8601, exclusive", schema_extra=_TIME
        ),
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
        since=_utc(_moment("since", since)),
        until=_utc(_moment("until", until)),
        outcome=outcome,
        limit=limit,
    )
    events, total = await services.audit.page(query, offset=offset)
    items = [_out(event) for event in events]
    return ok(Page[AuditEventOut](items=items, total=total, offset=offset, limit=limit))


def _moment(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValidationException(
            f"{name} must be an ISO 8601 time", extra=[{"key": name, "message": "not ISO 8601"}]
        ) from None


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
