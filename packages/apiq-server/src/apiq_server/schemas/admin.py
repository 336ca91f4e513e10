"""Response schemas of the admin routes: the spec cache and the deployment's statistics."""

from __future__ import annotations

from datetime import datetime

from apiq_server.schemas.common import ResponseModel

__all__ = ["Purged", "SpecCacheEntryOut", "Stats"]


class SpecCacheEntryOut(ResponseModel):
    """One cached spec document."""

    url: str
    """The spec's URL, query values hidden."""
    fetched_at: datetime
    ttl_remaining: float
    """Seconds until the entry must be revalidated; negative once stale."""
    size_bytes: int


class Purged(ResponseModel):
    """How many cache entries a purge dropped."""

    purged: int


class Stats(ResponseModel):
    """Counts of the admin's tenant (the spec cache is shared by every tenant)."""

    users: int
    connections: int
    endpoints: int
    executions: int
    audit_events: int
    spec_cache_entries: int
