"""Parameters several routes share: pagination and the Idempotency-Key header."""

from __future__ import annotations

from typing import Annotated

from litestar.params import HeaderParameter, Parameter

from apiq_server.schemas.common import MAX_PAGE
from apiq_server.services.idempotency import HEADER

__all__ = ["IdempotencyKey", "Limit", "Offset"]

IdempotencyKey = Annotated[str | None, HeaderParameter(name=HEADER, required=False)]
"""`Idempotency-Key` of a create: the same key gives the same object."""
MAX_OFFSET = 2**31 - 1
"""Largest `offset` (a larger one cannot be a row number; the databases refuse it)."""
Offset = Annotated[int, Parameter(ge=0, le=MAX_OFFSET)]
"""Items to skip."""
Limit = Annotated[int, Parameter(ge=1, le=MAX_PAGE)]
"""Items per page, at most `MAX_PAGE`."""
