"""`LoggingAuditSink`: audit events as structured log records.

Each event becomes one record on the `apiq.audit` logger (or the one given): the message
is the event's JSON line, `record.audit` holds the same object for structured handlers, and
the level follows the outcome (ok: INFO, warning: WARNING, error: ERROR). Log handlers
cannot report failures back, so this sink cannot refuse an action when logging breaks; use
`JsonlAuditSink` or a database sink where that matters. `query` answers from a window of
the most recent events kept in memory, so an error's reference id can still be looked up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from apiq.audit.jsonl import event_to_json
from apiq.audit.memory import MemoryAuditSink
from apiq.models import AuditEvent, AuditQuery

__all__ = ["LoggingAuditSink"]

_LEVELS = {"ok": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LoggingAuditSink:
    """AuditSink over the standard `logging` module.

    Args:
        logger: where records go; default `logging.getLogger("apiq.audit")`.
        window: recent events kept in memory for `query` (0 keeps none).
    """

    def __init__(self, logger: logging.Logger | None = None, *, window: int = 1000) -> None:
        self._logger = logger if logger is not None else logging.getLogger("apiq.audit")
        self._recent = MemoryAuditSink(maxlen=window)

    async def record(self, event: AuditEvent) -> None:
        """Log `event` as one structured line and keep it in the window."""
        data = event_to_json(event)
        self._logger.log(
            _LEVELS.get(event.outcome, logging.INFO),
            "%s",
            json.dumps(data, ensure_ascii=False, default=str),
            extra={"audit": data},
        )
        await self._recent.record(event)

    async def query(self, query: AuditQuery) -> Sequence[AuditEvent]:
        """Matching events of the in-memory window only, newest first."""
        return await self._recent.query(query)


if TYPE_CHECKING:
    from apiq.ports import AuditSink

    _: type[AuditSink] = LoggingAuditSink
