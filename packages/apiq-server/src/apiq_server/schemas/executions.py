"""Schemas of `/api/executions`: what ran, how each step went, and its live events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiq_server.schemas.common import ResponseModel

__all__ = [
    "ExecutionEventOut",
    "ExecutionOut",
    "ExecutionStarted",
    "ExecutionSummary",
    "RequestSummary",
    "StepResult",
]


class ExecutionStarted(ResponseModel):
    """An execution that was recorded and started (or asked to stop)."""

    id: str
    status: str
    """`pending`, `running`, `succeeded`, `failed` or `cancelled`."""


class ExecutionSummary(ResponseModel):
    """One execution in a list."""

    id: str
    status: str
    plan_id: str | None
    workflow_id: str | None
    created_at: datetime


class RequestSummary(ResponseModel):
    """The last HTTP call of a step; secrets in the URL are masked."""

    method: str
    url: str
    status: int | None
    duration_ms: float | None


class StepResult(ResponseModel):
    """How one step went."""

    id: str
    status: str
    runs: int
    attempts: int
    request: RequestSummary | None
    outputs: dict[str, Any]
    error: str | None


class ExecutionOut(ResponseModel):
    """An execution's state: its steps, the workflow's outputs, and why it failed."""

    id: str
    status: str
    plan_id: str | None
    workflow_id: str | None
    created_at: datetime
    steps: list[StepResult]
    outputs: dict[str, Any]
    error: str | None


class ExecutionEventOut(ResponseModel):
    """The JSON `data` of one server-sent event of `GET /api/executions/{id}/events`."""

    execution_id: str
    kind: str
    """`execution.started`, `step.started`, `step.succeeded`, ..., `execution.finished`."""
    step_id: str | None
    detail: dict[str, Any]
    at: datetime
