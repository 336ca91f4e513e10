"""The API's request and response schemas (pydantic), one module per area.

Core models are never returned directly: every response is one of these, wrapped in the
envelope `{success, data}`. Request schemas forbid unknown fields, so a privileged field
(`role`, `owner_id`, ...) sent by a client is refused, not ignored.
"""

from __future__ import annotations

from apiq_server.schemas.common import (
    Envelope,
    ErrorEnvelope,
    Page,
    RequestModel,
    ResponseModel,
    ok,
)

__all__ = ["Envelope", "ErrorEnvelope", "Page", "RequestModel", "ResponseModel", "ok"]
