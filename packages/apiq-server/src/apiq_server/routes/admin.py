"""Admin routes: the shared spec cache (list, purge) and the deployment's statistics.

Only ADMINs reach them. Each purge is audited (`admin.spec_cache.purge`, with the URL or
`all` and the count), before the answer is sent: a purge that cannot be recorded fails.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from litestar import delete, get
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from apiq.egress.policy import display_url
from apiq.models import AuditEvent
from apiq_adapters.sql.tables import audit_log, connections, endpoints, executions, users
from apiq_server.auth.current import CurrentUser
from apiq_server.policy import ADMINS, allow
from apiq_server.schemas import Envelope, ok
from apiq_server.schemas.admin import Purged, SpecCacheEntryOut, Stats
from apiq_server.wiring import Services

__all__ = ["handlers"]

CACHE = "/api/admin/spec-cache"
TAGS = ["admin"]


@get(CACHE, opt=allow(ADMINS), summary="List the spec cache", tags=TAGS)
async def list_spec_cache(services: Services) -> Envelope[list[SpecCacheEntryOut]]:
    """Every cached spec document, most recently fetched first (URLs without query values)."""
    entries = await services.spec_cache.entries()
    return ok(
        [
            SpecCacheEntryOut(
                url=display_url(entry.url),
                fetched_at=entry.fetched_at,
                ttl_remaining=entry.ttl_remaining,
                size_bytes=entry.size_bytes,
            )
            for entry in entries
        ]
    )


@delete(CACHE, opt=allow(ADMINS), status_code=200, summary="Purge the spec cache", tags=TAGS)
async def purge_spec_cache(
    services: Services,
    user: CurrentUser,
    url: Annotated[str | None, Parameter(min_length=1, max_length=2000)] = None,
) -> Envelope[Purged]:
    """Drop one URL's cached document (`?url=`), or every one; the next load fetches anew."""
    purged = await services.spec_cache.purge(url)
    await services.audit.record(
        AuditEvent(
            action="admin.spec_cache.purge",
            actor=user.id,
            tenant=user.tenant,
            target=display_url(url) if url is not None else "all",
            detail={"purged": purged, "scope": "url" if url is not None else "all"},
        )
    )
    return ok(Purged(purged=purged))


@get("/api/stats", opt=allow(ADMINS), summary="Statistics", tags=TAGS)
async def stats(services: Services, user: CurrentUser) -> Envelope[Stats]:
    """Counts of users, connections, endpoints, executions and audit events of your tenant."""
    tenant = user.tenant
    owned = connections.c.tenant == tenant
    queries = {
        "users": sa.select(sa.func.count()).select_from(users).where(users.c.tenant == tenant),
        "connections": sa.select(sa.func.count()).select_from(connections).where(owned),
        "endpoints": sa.select(sa.func.count())
        .select_from(endpoints.join(connections))
        .where(owned),
        "executions": sa.select(sa.func.count())
        .select_from(executions)
        .where(executions.c.tenant == tenant),
        "audit_events": sa.select(sa.func.count())
        .select_from(audit_log)
        .where(audit_log.c.tenant == tenant),
    }
    async with services.engine.connect() as db:
        counts = {
            name: int((await db.execute(query)).scalar_one()) for name, query in queries.items()
        }
    cached = len(await services.spec_cache.entries())
    return ok(Stats(**counts, spec_cache_entries=cached))


handlers: list[ControllerRouterHandler] = [list_spec_cache, purge_spec_cache, stats]
