"""`POST /api/chat` (plain English -> a plan to review) and `POST /api/chat/execute`."""

from __future__ import annotations

from litestar import post
from litestar.types import ControllerRouterHandler

from apiq_server.auth.current import CurrentUser
from apiq_server.policy import USERS, allow
from apiq_server.schemas import Envelope, ok
from apiq_server.schemas.chat import ChatRequest, ExecutePlanRequest, PlanOut
from apiq_server.schemas.executions import ExecutionStarted
from apiq_server.services.chat import ChatService
from apiq_server.wiring import Services

__all__ = ["handlers"]


@post("/api/chat", opt=allow(USERS), status_code=201, summary="Plan a request", tags=["chat"])
async def plan_request(
    data: ChatRequest, services: Services, user: CurrentUser
) -> Envelope[PlanOut]:
    """Turn a request in plain English into a stored plan over your connected APIs.

    Nothing is sent: the answer shows each step's method, full URL and arguments, and
    marks the steps that change state (`needsApproval`).
    """
    return ok(await ChatService(services, user).plan(data.message))


@post(
    "/api/chat/execute",
    opt=allow(USERS),
    status_code=201,
    summary="Approve and execute a plan",
    tags=["chat"],
)
async def execute_plan(
    data: ExecutePlanRequest, services: Services, user: CurrentUser
) -> Envelope[ExecutionStarted]:
    """Run a plan from `POST /api/chat`.

    A plan that changes state runs only with `approve: true` (else 409
    `confirmation_required`, and nothing is sent); the approval is single-use and bound to
    you and this exact plan and inputs.
    """
    service = ChatService(services, user)
    return ok(await service.execute(data.plan_id, approve=data.approve, inputs=data.inputs))


handlers: list[ControllerRouterHandler] = [plan_request, execute_plan]
