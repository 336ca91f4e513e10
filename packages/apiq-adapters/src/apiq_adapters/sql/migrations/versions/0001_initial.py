"""The initial schema: every table of `apiq_adapters.sql.tables` as of APIQ 0.1.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "apiq_approvals",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.String(length=200), nullable=False),
        sa.Column("plan_digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_apiq_approvals")),
    )
    op.create_table(
        "apiq_audit_log",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_apiq_audit_log")),
        sa.UniqueConstraint("id", name=op.f("uq_apiq_audit_log_id")),
    )
    op.create_index(op.f("ix_apiq_audit_log_action_at"), "apiq_audit_log", ["action", "at"])
    op.create_index(op.f("ix_apiq_audit_log_actor_at"), "apiq_audit_log", ["actor", "at"])
    op.create_index(op.f("ix_apiq_audit_log_tenant_at"), "apiq_audit_log", ["tenant", "at"])
    op.create_table(
        "apiq_connections",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("spec_url", sa.Text(), nullable=False),
        sa.Column("server_url", sa.Text(), nullable=False),
        sa.Column("auth", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_detail", sa.Text(), nullable=True),
        sa.Column("catalog_digest", sa.String(length=64), nullable=True),
        sa.Column("endpoint_count", sa.Integer(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apiq_connections")),
        sa.UniqueConstraint(
            "tenant", "owner_id", "name", name=op.f("uq_apiq_connections_tenant_owner_id_name")
        ),
    )
    op.create_table(
        "apiq_idempotency_keys",
        sa.Column("owner_id", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "key", name=op.f("pk_apiq_idempotency_keys")),
    )
    op.create_table(
        "apiq_login_throttle",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_apiq_login_throttle")),
    )
    op.create_table(
        "apiq_plans",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.String(length=200), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apiq_plans")),
    )
    op.create_table(
        "apiq_secrets",
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("principal_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "principal_id", "name", name=op.f("pk_apiq_secrets")),
    )
    op.create_index(op.f("ix_apiq_secrets_kek_version"), "apiq_secrets", ["kek_version"])
    op.create_table(
        "apiq_server_executions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.String(length=200), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=True),
        sa.Column("workflow_id", sa.String(length=64), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apiq_server_executions")),
    )
    op.create_index(
        op.f("ix_apiq_server_executions_tenant_owner_id_created_at"),
        "apiq_server_executions",
        ["tenant", "owner_id", "created_at"],
    )
    op.create_table(
        "apiq_spec_cache",
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("compressed", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("fetched_at", sa.Float(), nullable=False),
        sa.Column("media_type", sa.String(length=200), nullable=True),
        sa.Column("etag", sa.String(length=400), nullable=True),
        sa.PrimaryKeyConstraint("url_hash", name=op.f("pk_apiq_spec_cache")),
    )
    op.create_table(
        "apiq_users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("password_changed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apiq_users")),
        sa.UniqueConstraint("email", name=op.f("uq_apiq_users_email")),
    )
    op.create_table(
        "apiq_workflows",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apiq_workflows")),
    )
    op.create_table(
        "apiq_endpoints",
        sa.Column("connection_id", sa.String(length=64), nullable=False),
        sa.Column("operation_id", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("changes_state", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["apiq_connections.id"],
            name=op.f("fk_apiq_endpoints_connection_id_apiq_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "operation_id", name=op.f("pk_apiq_endpoints")),
    )
    op.create_table(
        "apiq_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["apiq_users.id"], name=op.f("fk_apiq_sessions_user_id_apiq_users")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_apiq_sessions")),
    )
    op.create_index(op.f("ix_apiq_sessions_user_id"), "apiq_sessions", ["user_id"])


def downgrade() -> None:
    # Indexes go with their tables.
    op.drop_table("apiq_sessions")
    op.drop_table("apiq_endpoints")
    op.drop_table("apiq_workflows")
    op.drop_table("apiq_users")
    op.drop_table("apiq_spec_cache")
    op.drop_table("apiq_server_executions")
    op.drop_table("apiq_secrets")
    op.drop_table("apiq_plans")
    op.drop_table("apiq_login_throttle")
    op.drop_table("apiq_idempotency_keys")
    op.drop_table("apiq_connections")
    op.drop_table("apiq_audit_log")
    op.drop_table("apiq_approvals")
