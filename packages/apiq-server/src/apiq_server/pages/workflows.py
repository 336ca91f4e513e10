"""Workflows: saved plans to list, view, run, export as Arazzo and import.

Run, export (a download made from `GET /api/workflows/{id}/arazzo`) and import are `fetch()`
calls of the REST API from `app.js`.
"""

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
from apiq_server.services.workflows import WorkflowService
from apiq_server.wiring import Services

__all__ = ["handlers"]


@get("/workflows", opt=allow(READERS), name="page:workflows")
async def workflows_page(
    request: Request[Any, Any, Any],
    services: Services,
    user: CurrentUser,
    offset: Annotated[int, Parameter(ge=0)] = 0,
) -> Template:
    """Your saved workflows, and the Arazzo import form."""
    found = await WorkflowService(services, user).page(offset=offset, limit=MAX_PAGE)
    return page(request, "workflows.html", "Workflows", workflows=found)


@get("/workflows/{workflow_id:str}", opt=allow(READERS), name="page:workflow")
async def workflow_page(
    request: Request[Any, Any, Any], workflow_id: str, services: Services, user: CurrentUser
) -> Template:
    """One workflow: its steps, with run and export."""
    workflow = await WorkflowService(services, user).get(workflow_id)
    steps = workflow.plan.get("steps", [])
    return page(
        request,
        "workflow.html",
        workflow.name,
        workflow=workflow,
        steps=steps if isinstance(steps, list) else [],
    )


handlers: list[ControllerRouterHandler] = [workflows_page, workflow_page]
