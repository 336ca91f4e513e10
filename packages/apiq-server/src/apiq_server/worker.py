"""The `apiq worker` composition root for server deployments.

    apiq worker --setup apiq_server.worker:worker_parts     # APIQ_DATABASE_URL=postgresql://...

Servers started with `APIQ_RUN_EXECUTIONS=false` only enqueue; workers built here run the
executions with the same settings, database, secrets and audit log as the servers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from apiq_adapters.dbos.worker import WorkerParts
from apiq_server.settings import Settings
from apiq_server.wiring import build_services

__all__ = ["worker_parts"]


@asynccontextmanager
async def worker_parts() -> AsyncIterator[WorkerParts]:
    """What a worker process needs, built from the environment like a server's services."""
    settings = Settings().model_copy(update={"executor": "local"})  # the worker runs DBOS itself
    async with build_services(settings) as services:
        yield WorkerParts(
            outbound=services.outbound, connections=services.connections, audit=services.audit
        )
