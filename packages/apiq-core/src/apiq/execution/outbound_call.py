"""`OutboundStepCall`: the runner's calls made through `Outbound` for one principal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from apiq.execution.steps import StepRequest, StepResponse

if TYPE_CHECKING:
    from apiq.calls.outbound import Outbound
    from apiq.catalog import Catalog
    from apiq.connections import Connection
    from apiq.models import Principal

__all__ = ["OutboundStepCall"]


class OutboundStepCall:
    """Makes `StepRequest`s as `principal` over admitted connections.

    Args:
        outbound: The one call path (credentials, egress, retries, audit, redaction).
        principal: Who the calls are made for.
        connections: Source name -> (connection, catalog), as admitted.
    """

    def __init__(
        self,
        outbound: Outbound,
        principal: Principal,
        connections: Mapping[str, tuple[Connection, Catalog]],
    ) -> None:
        self._outbound = outbound
        self._principal = principal
        self._connections = connections

    async def __call__(self, request: StepRequest) -> StepResponse:
        connection, catalog = self._connections[request.connection_id]
        result = await self._outbound.call(
            self._principal,
            connection,
            catalog,
            request.operation_id,
            request.arguments,
            idempotency_key=request.idempotency_key,
        )
        return StepResponse(
            status_code=result.status_code,
            headers=result.headers,
            body=result.body,
            duration_ms=result.duration_ms,
            attempts=len(result.attempts),
            method=result.method,
            url=result.url,
        )
