"""The audit log for auditors and admins: filters (actor, action prefix, outcome, time) and
pages, read from the same audit sink as `GET /api/logs`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from apiq.models import AuditQuery, Outcome
from apiq_server.auth.current import CurrentUser
from apiq_server.errors import ServerError
from apiq_server.pages.layout import page
from apiq_server.policy import AUDITORS, allow
from apiq_server.wiring import Services

__all__ = ["PAGE_SIZE", "handlers"]

PAGE_SIZE = 25
Filter = Annotated[str | None, Parameter(max_length=200, required=False)]
"""A filter as the form sends it: an empty field means no filter (so not an enum or a date
type, which would refuse the empty string with a 400)."""


@get("/audit", opt=allow(AUDITORS), name="page:audit")
async def audit_page(
    request: Request[Any, Any, Any],
    services: Services,
    user: CurrentUser,
    actor: Filter = None,
    action: Filter = None,
    outcome: Filter = None,
    since: Filter = None,
    until: Filter = None,
    offset: Annotated[int, Parameter(ge=0)] = 0,
) -> Template:
    """Audit events of your tenant, newest first, `PAGE_SIZE` a page."""
    chosen: Outcome | None = next((o for o in get_args(Outcome) if o == outcome), None)
    query = AuditQuery(
        tenant=user.tenant,
        actor=actor or None,
        action_prefix=action or None,
        since=_moment(since, "From"),
        until=_moment(until, "Until"),
        outcome=chosen,
        limit=PAGE_SIZE,
    )
    events, total = await services.audit.page(query, offset=offset)
    filters = {
        "actor": actor or "",
        "action": action or "",
        "outcome": chosen or "",
        "since": since or "",
        "until": until or "",
    }
    kept = {name: value for name, value in filters.items() if value}
    return page(
        request,
        "audit.html",
        "Audit log",
        events=events,
        total=total,
        offset=offset,
        filters=filters,
        outcomes=list(get_args(Outcome)),
        previous=_link(kept, offset - PAGE_SIZE) if offset > 0 else None,
        following=_link(kept, offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
    )


def _moment(value: str | None, field: str) -> datetime | None:
    """A date-time field of the form (ISO 8601; UTC when it names no zone)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ServerError(f"{field}: not a date and time such as 2026-01-31T09:30") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _link(filters: dict[str, str], offset: int) -> str:
    return "/audit?" + urlencode({**filters, "offset": max(offset, 0)})


handlers: list[ControllerRouterHandler] = [audit_page]
