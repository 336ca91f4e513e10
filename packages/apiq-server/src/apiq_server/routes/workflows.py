"""`/api/workflows`: save plans as workflows, run them, and move them in and out as Arazzo."""

from __future__ import annotations

from typing import Any

from litestar import delete, get, post, put
from litestar.types import ControllerRouterHandler

from apiq_server.auth.current import CurrentUser
from apiq_server.policy import READERS, USERS, allow
from apiq_server.routes.params import IdempotencyKey, Limit, Offset
from apiq_server.schemas import Envelope, Page, ok
from apiq_server.schemas.executions import ExecutionStarted
from apiq_server.schemas.workflows import (
    WorkflowCreate,
    WorkflowDeleted,
    WorkflowExecute,
    WorkflowImport,
    WorkflowOut,
    WorkflowUpdate,
)
from apiq_server.services.workflows import WorkflowService
from apiq_server.wiring import Services

__all__ = ["handlers"]

ITEM = "/api/workflows/{workflow_id:str}"


@get("/api/workflows", opt=allow(READERS), summary="List workflows", tags=["workflows"])
async def list_workflows(
    services: Services,
    user: CurrentUser,
    offset: Offset = 0,
    limit: Limit = 20,
) -> Envelope[Page[WorkflowOut]]:
    """Your saved workflows, most recently changed first."""
    return ok(await WorkflowService(services, user).page(offset=offset, limit=limit))


@post("/api/workflows", opt=allow(USERS), status_code=201, summary="Save a workflow",
      tags=["workflows"])  # fmt: skip
async def create_workflow(
    data: WorkflowCreate,
    services: Services,
    user: CurrentUser,
    idempotency_key: IdempotencyKey = None,
) -> Envelope[WorkflowOut]:
    """Save a plan from `POST /api/chat` (`planId`) or a plan written out (`plan`).

    The plan is checked against your connections (422 `plan_invalid` lists each problem).
    The same `Idempotency-Key` gives the same workflow back.
    """
    service = WorkflowService(services, user)
    return ok(await service.create(data, idempotency_key=idempotency_key))


@post("/api/workflows/import", opt=allow(USERS), status_code=201,
      summary="Import an Arazzo document", tags=["workflows"])  # fmt: skip
async def import_workflow(
    data: WorkflowImport,
    services: Services,
    user: CurrentUser,
    idempotency_key: IdempotencyKey = None,
) -> Envelope[WorkflowOut]:
    """Save a workflow of an Arazzo 1.0 document (JSON object, or JSON or YAML text).

    Its sources are matched to your connections by name, else by the spec URL you
    registered.
    """
    service = WorkflowService(services, user)
    return ok(await service.import_document(data, idempotency_key=idempotency_key))


@get(ITEM, opt=allow(READERS), summary="Get a workflow", tags=["workflows"])
async def get_workflow(
    workflow_id: str, services: Services, user: CurrentUser
) -> Envelope[WorkflowOut]:
    """One of your workflows."""
    return ok(await WorkflowService(services, user).get(workflow_id))


@put(ITEM, opt=allow(USERS), summary="Change a workflow", tags=["workflows"])
async def update_workflow(
    workflow_id: str, data: WorkflowUpdate, services: Services, user: CurrentUser
) -> Envelope[WorkflowOut]:
    """Change a workflow's name, description or plan (a new plan is checked as on save)."""
    return ok(await WorkflowService(services, user).update(workflow_id, data))


@delete(ITEM, opt=allow(USERS), status_code=200, summary="Delete a workflow", tags=["workflows"])
async def delete_workflow(
    workflow_id: str, services: Services, user: CurrentUser
) -> Envelope[WorkflowDeleted]:
    """Delete one of your workflows; its past executions stay listed."""
    return ok(await WorkflowService(services, user).delete(workflow_id))


@post(ITEM + "/execute", opt=allow(USERS), status_code=201, summary="Execute a workflow",
      tags=["workflows"])  # fmt: skip
async def execute_workflow(
    workflow_id: str, data: WorkflowExecute, services: Services, user: CurrentUser
) -> Envelope[ExecutionStarted]:
    """Run a workflow. One that changes state runs only with `approve: true` (else 409
    `confirmation_required`, and nothing is sent)."""
    return ok(await WorkflowService(services, user).execute(workflow_id, data))


@get(ITEM + "/arazzo", opt=allow(READERS), summary="Export as Arazzo", tags=["workflows"])
async def export_workflow(
    workflow_id: str, services: Services, user: CurrentUser
) -> Envelope[dict[str, Any]]:
    """The workflow as an Arazzo 1.0.1 document; its sources point at your registered specs."""
    return ok(await WorkflowService(services, user).export(workflow_id))


handlers: list[ControllerRouterHandler] = [
    list_workflows,
    create_workflow,
    import_workflow,
    get_workflow,
    update_workflow,
    delete_workflow,
    execute_workflow,
    export_workflow,
]
