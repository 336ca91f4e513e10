"""Schemas of `GET /api/logs`: audit events as auditors read them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiq_server.schemas.common import ResponseModel

__all__ = ["AuditEventOut"]


class AuditEventOut(ResponseModel):
    """One audit event: who did what, when, with which outcome. Secrets appear only as
    keyed fingerprints, never in clear."""

    id: str
    at: datetime
    actor: str
    action: str
    outcome: str
    target: str | None
    detail: dict[str, Any]
