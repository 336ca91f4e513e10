"""Every table of APIQ's own schema, in one MetaData that Alembic migrates.

Times are POSIX seconds (float): SQLite and PostgreSQL compare them alike. Ids are
random hex strings made by the application. JSON documents are stored as text so that
both backends keep exactly the bytes written. Owner columns (`tenant`, `owner_id`) are
on every row a user owns; every query of such a table filters on them.

DBOS keeps its own tables (and `apiq_adapters.dbos.store` its execution events) beside
these, in the same database.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "approvals",
    "audit_log",
    "connections",
    "endpoints",
    "executions",
    "idempotency_keys",
    "login_throttle",
    "metadata",
    "plans",
    "secrets",
    "sessions",
    "spec_cache",
    "users",
    "workflows",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_ID = sa.String(64)


def _owner_columns() -> list[sa.Column[str]]:
    return [
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("owner_id", sa.String(200), nullable=False),
    ]


users = sa.Table(
    "apiq_users",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("password_changed_at", sa.Float, nullable=False),
)

sessions = sa.Table(
    "apiq_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", _ID, sa.ForeignKey("apiq_users.id"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

login_throttle = sa.Table(
    "apiq_login_throttle",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("window_start", sa.Float, nullable=False),
)

connections = sa.Table(
    "apiq_connections",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    *_owner_columns(),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("spec_url", sa.Text, nullable=False),
    sa.Column("server_url", sa.Text, nullable=False),
    sa.Column("auth", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_detail", sa.Text, nullable=True),
    sa.Column("catalog_digest", sa.String(64), nullable=True),
    sa.Column("endpoint_count", sa.Integer, nullable=False, default=0),
    sa.Column("last_used_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("tenant", "owner_id", "name"),
)

endpoints = sa.Table(
    "apiq_endpoints",
    metadata,
    sa.Column(
        "connection_id",
        _ID,
        sa.ForeignKey("apiq_connections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("operation_id", sa.String(200), primary_key=True),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("changes_state", sa.Boolean, nullable=False),
)

plans = sa.Table(
    "apiq_plans",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    *_owner_columns(),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

workflows = sa.Table(
    "apiq_workflows",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    *_owner_columns(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

executions = sa.Table(
    "apiq_server_executions",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    *_owner_columns(),
    sa.Column("plan_id", _ID, nullable=True),
    sa.Column("workflow_id", _ID, nullable=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index(None, "tenant", "owner_id", "created_at"),
)

approvals = sa.Table(
    "apiq_approvals",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    *_owner_columns(),
    sa.Column("plan_digest", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

audit_log = sa.Table(
    "apiq_audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("id", _ID, nullable=False, unique=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(200), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("target", sa.Text, nullable=True),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index(None, "tenant", "at"),
    sa.Index(None, "actor", "at"),
    sa.Index(None, "action", "at"),
)

spec_cache = sa.Table(
    "apiq_spec_cache",
    metadata,
    sa.Column("url_hash", sa.String(64), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("compressed", sa.LargeBinary, nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("fetched_at", sa.Float, nullable=False),
    sa.Column("media_type", sa.String(200), nullable=True),
    sa.Column("etag", sa.String(400), nullable=True),
)

secrets = sa.Table(
    "apiq_secrets",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("principal_id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(400), primary_key=True),
    sa.Column("kek_version", sa.Integer, nullable=False, index=True),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("nonce", sa.LargeBinary, nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
)

idempotency_keys = sa.Table(
    "apiq_idempotency_keys",
    metadata,
    sa.Column("owner_id", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)
