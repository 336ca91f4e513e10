"""The six ports of APIQ: small async Protocols, one concern each.

A third-party backend implements one of these and runs the matching contract suite from
`apiq.testing` against itself. Defaults live in core (`apiq.specs`, `apiq.audit`, ...);
heavier backends live in `apiq_adapters`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from apiq.models import (
        AuditEvent,
        AuditQuery,
        CachedSpec,
        ExecutionEvent,
        ExecutionState,
        FetchedSpec,
        Principal,
        SpecCacheEntry,
    )
    from apiq.search import CatalogView
    from apiq.workflows.model import Plan

__all__ = ["AuditSink", "Executor", "Planner", "SecretStore", "SpecCache", "SpecSource"]


class SpecSource(Protocol):
    """Turns a spec reference (URL or path) into bytes, a media type and an ETag."""

    async def fetch(self, ref: str, *, etag: str | None = None) -> FetchedSpec:
        """Fetch the document; with `etag`, may answer `not_modified` instead of content.

        Raises:
            SpecUnreachable, SpecTooLarge, EgressDenied: the document could not be had.
        """
        ...


class SpecCache(Protocol):
    """Keeps fetched documents for a TTL so that ingest does not refetch them."""

    async def get(self, url: str) -> CachedSpec | None:
        """The entry for `url`, fresh or stale (callers compare `fetched_at` to the TTL)."""
        ...

    async def put(self, entry: CachedSpec) -> None:
        """Store or replace the entry for `entry.url`."""
        ...

    async def entries(self) -> Sequence[SpecCacheEntry]:
        """Every entry with its age, size and ETag, for admins."""
        ...

    async def purge(self, url: str | None = None) -> int:
        """Drop one URL's entry, or every entry when `url` is None; returns how many."""
        ...


class SecretStore(Protocol):
    """Holds credentials encrypted, per owner and name."""

    async def put(self, principal: Principal, name: str, value: bytes) -> None:
        """Store `value` under (principal, name), replacing any earlier value."""
        ...

    async def get(self, principal: Principal, name: str) -> bytes:
        """The stored value. Raises SecretNotFound."""
        ...

    async def delete(self, principal: Principal, name: str) -> None:
        """Forget the value; deleting a missing name is not an error."""
        ...

    async def rotate(self) -> int:
        """Re-wrap stored data keys under the newest key version; returns rows moved."""
        ...


class Planner(Protocol):
    """Turns a plain-English request into a plan over the operations it is shown."""

    async def plan(self, principal: Principal, request: str, view: CatalogView) -> Plan:
        """Plan `request` over the operations `view` offers (the principal's connections).

        Raises:
            PlanningError: No valid plan can be made; nothing is sent either way.
        """
        ...


class Executor(Protocol):
    """Runs approved plans and reports what happens."""

    async def start(
        self,
        principal: Principal,
        plan: Plan,
        *,
        inputs: Mapping[str, Any] | None = None,
        approval: str | None = None,
    ) -> str:
        """Start `plan` with `inputs`; returns the execution id once it is recorded.

        Raises:
            ConfirmationRequired: The plan changes state and `approval` is not a valid,
                unused token for this principal, plan and inputs. Nothing was sent.
            WorkflowError: The plan does not validate against the connections' catalogs.
        """
        ...

    def events(self, principal: Principal, execution_id: str) -> AsyncIterator[ExecutionEvent]:
        """Live events of one execution, from its start to its end."""
        ...

    async def cancel(self, principal: Principal, execution_id: str) -> None:
        """Ask the execution to stop before its next call."""
        ...

    async def state(self, principal: Principal, execution_id: str) -> ExecutionState:
        """Where the execution stands now."""
        ...


class AuditSink(Protocol):
    """Records what happened. A failed `record` must raise, so callers can refuse to act."""

    async def record(self, event: AuditEvent) -> None:
        """Persist one event."""
        ...

    async def query(self, query: AuditQuery) -> Sequence[AuditEvent]:
        """Events matching `query`, newest first."""
        ...
