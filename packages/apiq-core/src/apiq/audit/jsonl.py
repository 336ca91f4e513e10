"""`JsonlAuditSink`: audit events appended to a file, one JSON object per line.

The file is created readable by its owner only (0o600). Each event is one `write` on a
descriptor opened with O_APPEND, so lines from concurrent writers do not interleave; an
anyio lock orders writers of one process. A failed write raises, so callers can refuse to act.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from apiq.audit.memory import event_matches, newest_first
from apiq.models import AuditEvent, AuditQuery

__all__ = ["JsonlAuditSink", "event_from_json", "event_to_json"]

_OUTCOMES = frozenset({"ok", "warning", "error"})


def event_to_json(event: AuditEvent) -> dict[str, Any]:
    """The JSON object of one event (its `at` in ISO 8601)."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "action": event.action,
        "actor": event.actor,
        "tenant": event.tenant,
        "outcome": event.outcome,
        "target": event.target,
        "detail": dict(event.detail),
    }


def event_from_json(data: Mapping[str, Any]) -> AuditEvent:
    """The event a JSON object of `event_to_json` describes.

    Raises:
        ValueError: a field is missing or has the wrong type (callers skip such lines).
    """
    outcome = data["outcome"]
    detail = data.get("detail") or {}
    if outcome not in _OUTCOMES or not isinstance(detail, dict):
        raise ValueError(f"not an audit event: {data!r:.200}")
    return AuditEvent(
        id=str(data["id"]),
        at=datetime.fromisoformat(data["at"]),
        action=str(data["action"]),
        actor=str(data["actor"]),
        tenant=str(data["tenant"]),
        outcome=outcome,
        target=None if data.get("target") is None else str(data["target"]),
        detail=detail,
    )


class JsonlAuditSink:
    """AuditSink writing JSON Lines to `path`.

    Args:
        path: the log file; created (0o600) on first write, its directory must exist.
        fsync: flush each event to the disk before `record` returns (slower, survives a
            power cut).
    """

    def __init__(self, path: Path | str, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._lock = anyio.Lock()

    async def record(self, event: AuditEvent) -> None:
        """Append `event` as one line. Raises OSError when the write fails."""
        # default=str: a detail value JSON cannot hold must not lose the event.
        line = json.dumps(event_to_json(event), ensure_ascii=False, default=str) + "\n"
        async with self._lock:
            await anyio.to_thread.run_sync(self._append, line.encode("utf-8"))

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    async def query(self, query: AuditQuery) -> Sequence[AuditEvent]:
        """Events of the file matching `query`, newest first; unreadable lines are skipped."""
        return await anyio.to_thread.run_sync(self._query, query)

    def _query(self, query: AuditQuery) -> list[AuditEvent]:
        try:
            return newest_first(
                (event for event in self._read() if event_matches(event, query)), query.limit
            )
        except FileNotFoundError:
            return []  # nothing recorded yet

    def _read(self) -> Iterator[AuditEvent]:
        with self.path.open("rb") as handle:
            for line in handle:
                try:
                    yield event_from_json(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash mid-write; the others still count


if TYPE_CHECKING:
    from apiq.ports import AuditSink

    _: type[AuditSink] = JsonlAuditSink
