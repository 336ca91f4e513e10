"""Executions: the list, and one execution with a timeline of its steps and their results."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from apiq_server.auth.current import CurrentUser
from apiq_server.pages.layout import page
from apiq_server.policy import READERS, allow
from apiq_server.schemas.common import MAX_PAGE
from apiq_server.services.executions import ExecutionService
from apiq_server.wiring import Services

__all__ = ["handlers"]


@get("/executions", opt=allow(READERS), name="page:executions")
async def executions_page(
    request: Request[Any, Any, Any],
    services: Services,
    user: CurrentUser,
    offset: Annotated[int, Parameter(ge=0)] = 0,
) -> Template:
    """Your executions, newest first."""
    found = await ExecutionService(services, user).page(offset=offset, limit=MAX_PAGE)
    return page(request, "executions.html", "Executions", executions=found)


@get("/executions/{execution_id:str}", opt=allow(READERS), name="page:execution")
async def execution_page(
    request: Request[Any, Any, Any], execution_id: str, services: Services, user: CurrentUser
) -> Template:
    """One execution: status, a per-step timeline (request, status, duration), outputs."""
    execution = await ExecutionService(services, user).get(execution_id)
    return page(request, "execution.html", "Execution", execution=execution)


handlers: list[ControllerRouterHandler] = [executions_page, execution_page]
