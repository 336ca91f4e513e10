"""`storage_errors`: how the SQL adapters turn database failures into `StorageError`.

SQLAlchemy's exceptions never leave `apiq_adapters.sql`: each adapter method runs its
database work inside `storage_errors(operation, engine)`, which re-raises them as
`StorageError` (`raise ... from exc`, so the driver's cause stays in the traceback and the
log). `transient` tells a server whether to answer 503 with Retry-After (the database is
down, locked or timed out) or 500 (anything else).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from apiq.errors import StorageError

__all__ = ["StorageError", "storage_errors"]

_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")
"""SQLite reports these and also mistakes (no such table) as OperationalError; only these
pass with time."""


_MEANINGS = {
    "audit.record": "the audit log could not be written, so the action it records must not run",
    "audit.query": "the audit log could not be read",
    "spec_cache": "the spec cache could not be used",
    "secrets": "the secret store could not be used",
    "approvals": "approvals could not be read or written",
    "migrate": "the database could not be migrated (nothing of the migration was applied)",
}


def _meaning(operation: str) -> str:
    for prefix, meaning in _MEANINGS.items():
        if operation.startswith(prefix):
            return meaning
    return "the database could not be used"


def _is_transient(exc: Exception, backend: str) -> bool:
    """Whether retrying later may succeed: connection refused or lost, locked, timed out."""
    if isinstance(exc, sa.exc.TimeoutError | sa.exc.InterfaceError):
        return True  # pool exhausted; connection closed under us
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    if backend != "sqlite":
        return True  # PostgreSQL: connection failures, shutdowns, serialization conflicts
    text = str(exc.orig).lower()
    return any(marker in text for marker in _SQLITE_TRANSIENT)


@contextmanager
def storage_errors(operation: str, engine: AsyncEngine) -> Iterator[None]:
    """Re-raise SQLAlchemy (and driver encoding) errors inside the block as `StorageError`.

    Args:
        operation: dotted name of the attempted work, shown in the message and kept as a field.
        engine: the engine the work ran on; its dialect names the backend.
    """
    try:
        yield
    except (sa.exc.SQLAlchemyError, UnicodeError) as exc:
        backend = engine.dialect.name
        transient = _is_transient(exc, backend)
        # The driver's text can quote statement parameters (ciphertexts, audit details):
        # keep it in the chained cause for the log, out of the message users may see.
        cause = type(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc).__name__
        hint = (
            "check that the database is reachable and retry"
            if transient
            else "see the chained exception in the server log"
        )
        raise StorageError(
            f"{_meaning(operation)} ({operation} on {backend}: {cause}); {hint}",
            operation=operation,
            backend=backend,
            transient=transient,
        ) from exc
