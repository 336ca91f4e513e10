"""`/api/executions`: your executions, their state, their live events, and cancelling one."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar import get, post
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.types import ControllerRouterHandler

from apiq_server.auth.current import CurrentUser
from apiq_server.policy import READERS, USERS, allow
from apiq_server.routes.params import Limit, Offset
from apiq_server.schemas import Envelope, Page, ok
from apiq_server.schemas.executions import (
    ExecutionEventOut,
    ExecutionOut,
    ExecutionStarted,
    ExecutionSummary,
)
from apiq_server.services.executions import ExecutionService
from apiq_server.wiring import Services

__all__ = ["handlers"]

ITEM = "/api/executions/{execution_id:str}"


@get("/api/executions", opt=allow(READERS), summary="List executions", tags=["executions"])
async def list_executions(
    services: Services,
    user: CurrentUser,
    offset: Offset = 0,
    limit: Limit = 20,
) -> Envelope[Page[ExecutionSummary]]:
    """Your executions, newest first."""
    return ok(await ExecutionService(services, user).page(offset=offset, limit=limit))


@get(ITEM, opt=allow(READERS), summary="Execution state", tags=["executions"])
async def get_execution(
    execution_id: str, services: Services, user: CurrentUser
) -> Envelope[ExecutionOut]:
    """Status, each step's request summary (method, masked URL, status, duration),
    outputs and error."""
    return ok(await ExecutionService(services, user).get(execution_id))


@get(ITEM + "/events", opt=allow(READERS), summary="Live events (server-sent events)",
     tags=["executions"])  # fmt: skip
async def execution_events(
    execution_id: str, services: Services, user: CurrentUser
) -> ServerSentEvent:
    """Every event of the execution from its start, live, as `text/event-stream`.

    Each event's `event` is its kind (`step.started`, ...) and its `data` the event as JSON;
    the stream ends after `execution.finished`. It works from any server process.
    """
    events = await ExecutionService(services, user).events(execution_id)
    return ServerSentEvent(_messages(events))


async def _messages(
    events: AsyncIterator[ExecutionEventOut],
) -> AsyncIterator[ServerSentEventMessage]:
    number = 0
    async for event in events:
        number += 1
        yield ServerSentEventMessage(
            data=event.model_dump_json(by_alias=True), event=event.kind, id=str(number)
        )


@post(ITEM + "/cancel", opt=allow(USERS), status_code=200, summary="Cancel an execution",
      tags=["executions"])  # fmt: skip
async def cancel_execution(
    execution_id: str, services: Services, user: CurrentUser
) -> Envelope[ExecutionStarted]:
    """Ask the execution to stop before its next call; answers where it stands now."""
    return ok(await ExecutionService(services, user).cancel(execution_id))


handlers: list[ControllerRouterHandler] = [
    list_executions,
    get_execution,
    execution_events,
    cancel_execution,
]
