"""`DbosSettings`: where `DbosExecutor` keeps its state and how its processes cooperate."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from apiq.errors import ConfigurationError

__all__ = ["DEFAULT_DATABASE_URL", "DbosSettings"]

DEFAULT_DATABASE_URL = "sqlite:///apiq-executions.sqlite"
"""The embedded default: a SQLite file (WAL mode) in the working directory."""


@dataclass(frozen=True, slots=True)
class DbosSettings:
    """How `DbosExecutor` runs.

    SQLite (the default) is embedded: this process runs the executions it starts and, after
    a crash, resumes them when it starts again with the same `executor_id`. PostgreSQL scales
    out: executions go through a DBOS queue that every worker process shares, and a worker
    that stops heart-beating has its executions recovered by the others.
    """

    database_url: str = DEFAULT_DATABASE_URL
    """`sqlite:///path.sqlite` or `postgresql://user@host:port/database` (DBOS keeps its own
    tables in the `dbos` schema there; APIQ's execution tables sit beside them)."""
    worker: bool = True
    """Run queued executions in this process. A web server that only starts executions for
    separate `apiq worker` processes says False (PostgreSQL only; SQLite always runs them)."""
    concurrency: int = 100
    """Executions one process runs at once (the DBOS queue's worker concurrency)."""
    executor_id: str | None = None
    """This process's DBOS executor id. Default: `apiq-local` on SQLite (a restart resumes
    its executions), unique per process on PostgreSQL (peers recover a dead one)."""
    app_name: str = "apiq"
    """DBOS application name; processes sharing executions must agree on it."""
    queue_name: str = "apiq-executions"
    """The DBOS queue executions go through on PostgreSQL."""
    queue_poll_s: float = 0.2
    """How often a worker looks for queued executions."""
    events_poll_s: float = 0.05
    """How often `events` and `wait` look for new events of a running execution."""
    cancel_poll_s: float = 0.25
    """How often a process looks for cancel requests made elsewhere for what it runs."""
    heartbeat_s: float = 2.0
    """How often a worker records that it is alive."""
    dead_after_s: float = 15.0
    """Silence after which a worker counts as dead and its executions are recovered."""
    pool_size: int = 20
    """Connections DBOS may hold to the database (APIQ's own tables use a quarter of it)."""
    sqlite_synchronous: str = "NORMAL"
    """SQLite `PRAGMA synchronous` in WAL mode: NORMAL survives a process crash (a power
    loss may undo the last commits); FULL also survives a power loss, at a cost per step."""
    log_level: str = "WARNING"
    """DBOS's own log level."""

    def __post_init__(self) -> None:
        if not self.database_url.startswith(("sqlite:///", "postgresql")):
            raise ConfigurationError(
                f"DbosSettings.database_url {self.database_url.split('://')[0]!r}:// is not "
                "supported; use sqlite:///path.sqlite or postgresql://user@host:port/database"
            )
        if self.concurrency < 1:
            raise ConfigurationError(
                f"DbosSettings.concurrency must be at least 1, not {self.concurrency}"
            )
        for name in ("queue_poll_s", "events_poll_s", "cancel_poll_s", "heartbeat_s"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"DbosSettings.{name} must be greater than zero")
        if self.dead_after_s <= 2 * self.heartbeat_s:
            raise ConfigurationError(
                f"DbosSettings.dead_after_s ({self.dead_after_s:g}) must exceed twice "
                f"heartbeat_s ({self.heartbeat_s:g}), or a live worker may count as dead"
            )
        if self.sqlite_synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ConfigurationError(
                f"DbosSettings.sqlite_synchronous {self.sqlite_synchronous!r} must be NORMAL, "
                "FULL or EXTRA (OFF would lose committed steps in a crash)"
            )

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite backend."""
        return self.database_url.startswith("sqlite")

    def resolved_executor_id(self) -> str:
        """`executor_id`, or the backend's default (see its docstring)."""
        if self.executor_id:
            return self.executor_id
        if self.is_sqlite:
            return "apiq-local"
        return f"apiq-{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
