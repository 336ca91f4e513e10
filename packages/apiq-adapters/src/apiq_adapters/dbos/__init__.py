"""`DbosExecutor`: durable, distributed plan execution on DBOS Transact (`apiq-adapters[dbos]`).

Embedded on a SQLite file (WAL) by default; on PostgreSQL any number of `apiq worker`
processes share the executions through a DBOS queue. See `executor` for the contract,
`run` for what survives a crash and `liveness` for how a dead worker's executions move on.
"""

from __future__ import annotations

from apiq.errors import MissingDependencyError

try:
    import dbos as _dbos  # noqa: F401 - the one place the optional dependency is checked
    import sqlalchemy as _sqlalchemy  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "the DBOS executor needs DBOS Transact: pip install 'apiq-adapters[dbos]'"
    ) from exc

from apiq_adapters.dbos.executor import DbosExecutor
from apiq_adapters.dbos.settings import DEFAULT_DATABASE_URL, DbosSettings

__all__ = ["DEFAULT_DATABASE_URL", "DbosExecutor", "DbosSettings"]
