"""`upsert`: one atomic insert-or-replace statement for SQLite and PostgreSQL.

Both dialects spell it `INSERT ... ON CONFLICT (key) DO UPDATE`; a delete followed by an
insert would not do, because two writers of one key under PostgreSQL's READ COMMITTED can
both delete nothing and then collide on the insert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["upsert"]


def upsert(
    dialect: str, table: sa.Table, values: Mapping[str, Any], *, key: Sequence[str]
) -> sa.Executable:
    """`INSERT values INTO table`, replacing every non-key column of a row with the same `key`.

    Args:
        dialect: `sqlite` or `postgresql` (an engine's `dialect.name`).
        table: the table written.
        values: one row, every column given.
        key: the primary key (or unique) columns the conflict is detected on.
    """
    changed = {name: value for name, value in values.items() if name not in key}
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(dict(values))
        return pg.on_conflict_do_update(index_elements=list(key), set_=changed)
    lite = sqlite.insert(table).values(dict(values))
    return lite.on_conflict_do_update(index_elements=list(key), set_=changed)
