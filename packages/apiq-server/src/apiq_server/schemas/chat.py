"""Schemas of `POST /api/chat` (plain English -> a reviewed plan) and `/api/chat/execute`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from apiq_server.schemas.common import JsonBool, RequestModel, ResponseModel

__all__ = ["MAX_MESSAGE", "ChatRequest", "ExecutePlanRequest", "PlanOut", "PlanStep"]

MAX_MESSAGE = 2000
"""Most characters of one request in plain English."""


class ChatRequest(RequestModel):
    """What the user wants done, in plain English."""

    message: str = Field(min_length=1, max_length=MAX_MESSAGE, pattern=r"^[^\x00]*$")
    """Any text but NUL (which PostgreSQL cannot store)."""


class PlanStep(ResponseModel):
    """One step as the user reviews it: the call is taken from the connection and its spec,
    never from the plan's own say, so a planner cannot pass a DELETE off as a GET."""

    id: str
    source: str
    """The connection the step calls."""
    operation: str
    """The operationId."""
    method: str
    url: str
    """The connection's base URL and the operation's path template (`{petId}` as written)."""
    arguments: dict[str, Any]
    """`{"path": {...}, "query": {...}, "body": ...}` as planned, runtime expressions included."""
    changes_state: bool
    rationale: str
    for_each: str | None = None
    """The list expression the step repeats over, when it does."""


class PlanOut(ResponseModel):
    """A stored plan laid out for approval; nothing has been sent."""

    id: str
    request: str
    confidence: float
    needs_approval: bool
    """True when any step changes state: executing it needs `approve: true`."""
    inputs: dict[str, Any]
    """JSON Schema of the values the plan asks for at execution (`inputs`)."""
    steps: list[PlanStep]
    digest: str
    created_at: datetime


class ExecutePlanRequest(RequestModel):
    """Run a stored plan; `approve` confirms its state-changing steps."""

    plan_id: str = Field(min_length=1, max_length=64)
    approve: JsonBool = False
    inputs: dict[str, Any] | None = None
