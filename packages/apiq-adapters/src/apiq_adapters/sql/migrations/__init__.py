"""Alembic migrations of APIQ's own tables (`apiq_adapters.sql.tables`).

Run them with `apiq_adapters.sql.migrate` (`upgrade`, `downgrade`, `current`): the Alembic
configuration is built in code, so users need no `alembic.ini`. A new revision is written
with `apiq_adapters.sql.migrate.revision(url, message)` against a database at head; the
test `tests/adapters/test_sql_migrations.py` fails while `tables.py` and the revisions differ.
"""
