"""Connections: the list, the add form, and one connection with its endpoints.

The list and the endpoints are rendered on the server from `ApiService`, the same service
the REST API uses; test, refresh, delete and OAuth connect are `fetch()` calls of the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from apiq_server.auth.current import CurrentUser
from apiq_server.pages.layout import page
from apiq_server.policy import READERS, USERS, allow
from apiq_server.schemas.common import MAX_PAGE
from apiq_server.services.apis import ApiService
from apiq_server.wiring import Services

__all__ = ["handlers"]

Offset = Annotated[int, Parameter(ge=0)]
Search = Annotated[str | None, Parameter(max_length=500, required=False)]


@get("/connections", opt=allow(READERS), name="page:connections")
async def connections_page(
    request: Request[Any, Any, Any], services: Services, user: CurrentUser, offset: Offset = 0
) -> Template:
    """Your connections with status, endpoint count and last use."""
    found = await ApiService(services).list(user.principal, offset=offset, limit=MAX_PAGE)
    return page(request, "connections.html", "Connections", connections=found)


@get("/connections/new", opt=allow(USERS), name="page:connection-new")
async def new_connection_page(request: Request[Any, Any, Any]) -> Template:
    """The form to add a connection: a spec URL or file, and its credentials."""
    return page(request, "connection_new.html", "Add a connection")


@get("/connections/{api_id:str}", opt=allow(READERS), name="page:connection")
async def connection_page(
    request: Request[Any, Any, Any],
    api_id: str,
    services: Services,
    user: CurrentUser,
    q: Search = None,
    offset: Offset = 0,
) -> Template:
    """One connection: its credentials (never their secrets) and its endpoints, searchable."""
    service = ApiService(services)
    connection = await service.get(user.principal, api_id)
    endpoints = await service.endpoints(
        user.principal, api_id, q=q or None, offset=offset, limit=MAX_PAGE
    )
    return page(
        request,
        "connection.html",
        connection.name,
        connection=connection,
        endpoints=endpoints,
        q=q or "",
    )


handlers: list[ControllerRouterHandler] = [
    connections_page,
    new_connection_page,
    connection_page,
]
