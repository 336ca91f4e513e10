"""SQL backends (`apiq-adapters[sql]`): SQLAlchemy 2 async on SQLite (WAL) or PostgreSQL.

`tables` holds every table of APIQ's own schema (Alembic migrations in `migrations/`, run
with `migrate.upgrade(url)`), `engine` opens a database from one URL, `StorageError` is what
every adapter raises when the database fails it, and each port adapter (`SqlSpecCache`,
`SqlSecretStore`, `SqlAuditSink`, `SqlApprovals`) lives in a module named after it.
"""

from __future__ import annotations

from apiq.errors import MissingDependencyError

try:
    import alembic as _alembic  # noqa: F401 - the one place the optional dependencies are checked
    import sqlalchemy as _sqlalchemy  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "the SQL backends need SQLAlchemy and Alembic: pip install 'apiq-adapters[sql]'"
    ) from exc

from apiq_adapters.sql.approvals import SqlApprovals
from apiq_adapters.sql.audit_sink import SqlAuditSink
from apiq_adapters.sql.engine import DEFAULT_DATABASE_URL, async_url, open_engine, sync_url
from apiq_adapters.sql.errors import StorageError
from apiq_adapters.sql.secret_store import SqlSecretStore
from apiq_adapters.sql.spec_cache import SqlSpecCache

__all__ = [
    "DEFAULT_DATABASE_URL",
    "SqlApprovals",
    "SqlAuditSink",
    "SqlSecretStore",
    "SqlSpecCache",
    "StorageError",
    "async_url",
    "open_engine",
    "sync_url",
]
