"""Schemas of `/api/workflows`: saved plans, their execution, Arazzo export and import."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from apiq_server.schemas.common import JsonBool, RequestModel, ResponseModel

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_NAME",
    "WorkflowCreate",
    "WorkflowDeleted",
    "WorkflowExecute",
    "WorkflowImport",
    "WorkflowOut",
    "WorkflowUpdate",
]

MAX_NAME = 200
MAX_DESCRIPTION = 2000
_NAME = r"^[^\x00-\x1f\x7f]+$"
"""No control characters in a name (it is shown on one line)."""
_TEXT = r"^[^\x00]*$"
"""Any text but NUL, which PostgreSQL cannot store in a text column."""


class WorkflowCreate(RequestModel):
    """Save a plan: one made by `POST /api/chat` (`planId`) or written out (`plan`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["planId"], "properties": {"planId": {"type": "string"}}},
                {"required": ["plan"], "properties": {"plan": {"type": "object"}}},
            ]
        }
    )

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=_NAME)
    description: str = Field(default="", max_length=MAX_DESCRIPTION, pattern=_TEXT)
    plan_id: str | None = Field(default=None, min_length=1, max_length=64)
    plan: dict[str, Any] | None = None
    """A plan as JSON: `{workflow, sources, request?}` (APIQ's Arazzo-compatible model)."""

    @model_validator(mode="after")
    def _one_plan(self) -> WorkflowCreate:
        if (self.plan_id is None) == (self.plan is None):
            raise ValueError("give exactly one of planId (a plan from POST /api/chat) and plan")
        return self


class WorkflowUpdate(RequestModel):
    """Change a workflow's name, description or plan; fields left out stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME, pattern=_NAME)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION, pattern=_TEXT)
    plan: dict[str, Any] | None = None


class WorkflowImport(RequestModel):
    """An Arazzo 1.0 document to save as a workflow; its sources are matched to the
    caller's connections by name, else by the URL of the spec they registered."""

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=_NAME)
    description: str = Field(default="", max_length=MAX_DESCRIPTION, pattern=_TEXT)
    document: dict[str, Any] | str
    """The document as a JSON object, or its JSON or YAML text."""
    workflow_id: str | None = Field(default=None, min_length=1, max_length=64)
    """Which workflow of the document to import; needed when it holds several."""


class WorkflowExecute(RequestModel):
    """Run a saved workflow; `approve` confirms its state-changing steps."""

    approve: JsonBool = False
    inputs: dict[str, Any] | None = None


class WorkflowOut(ResponseModel):
    """A saved workflow."""

    id: str
    name: str
    description: str
    request: str
    """The plain-English request the plan answered (empty when written by hand)."""
    step_count: int
    digest: str
    plan: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class WorkflowDeleted(ResponseModel):
    """The id of the workflow that was deleted."""

    id: str
    deleted: bool = True
