"""Alembic environment: migrates `apiq_adapters.sql.tables.metadata`.

`apiq_adapters.sql.migrate` runs Alembic on a connection it opened (inside a transaction
that holds the migration lock) and passes it as `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context

from apiq_adapters.sql.migrate import include_name
from apiq_adapters.sql.tables import metadata


def _online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "APIQ's migrations run through apiq_adapters.sql.migrate (upgrade, downgrade, "
            "current), which pass the connection; the alembic command line and offline (--sql) "
            "mode are not wired"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=include_name,
        # SQLite alters a table by copying it; later revisions need batch mode there.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_online()
