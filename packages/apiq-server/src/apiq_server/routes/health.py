"""`GET /api/health`: is each backend reachable (database, spec cache, Redis, LLM)?

Public, so load balancers and uptime checks can call it. It answers 200 when the
database answers (Redis and the LLM are optional: when down, the server is degraded, not
broken) and 503 with Retry-After when the database does not.
"""

from __future__ import annotations

from typing import Literal

import anyio
import sqlalchemy as sa
from litestar import get
from litestar.response import Response
from litestar.types import ControllerRouterHandler

from apiq_server.policy import PUBLIC, allow
from apiq_server.schemas import Envelope, ResponseModel, ok
from apiq_server.wiring import Services

__all__ = ["handlers"]

CHECK_TIMEOUT_S = 2.0

Status = Literal["ok", "degraded", "down", "not_configured"]


class Health(ResponseModel):
    """Each backend's status; `status` is `ok` unless the database is down."""

    status: Literal["ok", "degraded", "down"]
    database: Status
    spec_cache: Status
    redis: Status
    llm: Status
    planner: str
    executor: str


@get("/api/health", opt=allow(PUBLIC), summary="Backend status")
async def health(services: Services) -> Response[Envelope[Health]]:
    """Database, spec cache, Redis and LLM reachability."""
    database = await _database(services)
    redis = await _redis(services)
    cache: Status = "ok" if database == "ok" or services.redis is not None else "down"
    llm: Status = "ok" if services.settings.llm_environ() else "not_configured"
    overall: Literal["ok", "degraded", "down"] = (
        "down" if database == "down" else "degraded" if redis == "down" else "ok"
    )
    body = Health(
        status=overall,
        database=database,
        spec_cache=cache,
        redis=redis,
        llm=llm,
        planner=type(services.planner).__name__,
        executor=type(services.executor).__name__,
    )
    headers = {"Retry-After": "5"} if overall == "down" else {}
    return Response(ok(body), status_code=503 if overall == "down" else 200, headers=headers)


async def _database(services: Services) -> Status:
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            async with services.engine.connect() as db:
                await db.execute(sa.text("SELECT 1"))
    except (TimeoutError, sa.exc.SQLAlchemyError, OSError):
        return "down"
    return "ok"


async def _redis(services: Services) -> Status:
    if services.redis is None:
        return "not_configured"
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            await services.redis.ping()
    except Exception:  # any failure of an optional backend is "down", never a 500
        return "down"
    return "ok"


handlers: list[ControllerRouterHandler] = [health]
