"""`MemoryAuditSink`: the most recent audit events, in process memory.

For notebooks, tests and the demo. `event_matches` is the one reading of `AuditQuery` that
every in-core sink shares.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from apiq.models import AuditEvent, AuditQuery

__all__ = ["MemoryAuditSink", "event_matches", "newest_first"]


def event_matches(event: AuditEvent, query: AuditQuery) -> bool:
    """Whether `event` passes every filter of `query` (`since` inclusive, `until` exclusive)."""
    return (
        (query.tenant is None or event.tenant == query.tenant)
        and (query.actor is None or event.actor == query.actor)
        and (query.action_prefix is None or event.action.startswith(query.action_prefix))
        and (query.event_id is None or event.id == query.event_id)
        and (query.since is None or event.at >= query.since)
        and (query.until is None or event.at < query.until)
        and (query.outcome is None or event.outcome == query.outcome)
    )


def newest_first(events: Iterable[AuditEvent], limit: int) -> list[AuditEvent]:
    """At most `limit` events, newest first; among equal times, the later recorded first.

    Memory stays O(limit) however many events stream by (a JSONL file read line by line).
    """
    if limit <= 0:
        return []
    indexed = ((event.at, seq, event) for seq, event in enumerate(events))
    return [event for _, _, event in heapq.nlargest(limit, indexed, key=lambda t: t[:2])]


class MemoryAuditSink:
    """AuditSink that keeps the last `maxlen` events in a deque.

    Args:
        maxlen: events kept; the oldest are dropped first.
    """

    def __init__(self, *, maxlen: int = 10_000) -> None:
        self._events: deque[AuditEvent] = deque(maxlen=maxlen)

    async def record(self, event: AuditEvent) -> None:
        """Keep `event`."""
        self._events.append(event)

    async def query(self, query: AuditQuery) -> Sequence[AuditEvent]:
        """Kept events matching `query`, newest first, at most `query.limit`."""
        return newest_first((e for e in self._events if event_matches(e, query)), query.limit)


if TYPE_CHECKING:
    from apiq.ports import AuditSink

    _: type[AuditSink] = MemoryAuditSink
