"""Chat: ask in plain English, review the plan, approve it and watch it run.

The page is a form and empty regions; `app.js` posts the request to `/api/chat`, shows the
plan's steps (state-changing ones marked), posts the approval to `/api/chat/execute` and
follows `/api/executions/{id}/events` (server-sent events) into an `aria-live` region.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from apiq_server.auth.current import CurrentUser
from apiq_server.pages.layout import page
from apiq_server.policy import USERS, allow
from apiq_server.services.apis import ApiService
from apiq_server.wiring import Services

__all__ = ["handlers"]


@get("/chat", opt=allow(USERS), name="page:chat")
async def chat_page(
    request: Request[Any, Any, Any], services: Services, user: CurrentUser
) -> Template:
    """The chat form (with a hint to add a connection first when there is none)."""
    connections = await ApiService(services).list(user.principal, offset=0, limit=1)
    return page(request, "chat.html", "Chat", has_connections=connections.total > 0)


handlers: list[ControllerRouterHandler] = [chat_page]
