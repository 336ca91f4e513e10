"""Idempotent creates: the same `Idempotency-Key` gives the same object back.

The key is scoped to the user and the route. The first request with a key claims it (a
row with no response yet), creates the object and stores the response; a repeat with the
same payload gets that stored response; a repeat with another payload, or while the first
is still running, is refused with 409. A create that fails releases its key.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from apiq_adapters.sql.tables import idempotency_keys
from apiq_server.errors import Conflict

__all__ = ["HEADER", "MAX_KEY_LENGTH", "idempotent"]

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200

M = TypeVar("M", bound=BaseModel)


async def idempotent(
    engine: AsyncEngine,
    *,
    owner_id: str,
    key: str | None,
    route: str,
    payload: BaseModel | bytes,
    create: Callable[[], Awaitable[M]],
    model: type[M],
) -> M:
    """Run `create` once per (owner, key); replay its stored result for a repeated key.

    Raises:
        Conflict: The key was used with another payload or route, or its first request
            is still running.
    """
    if key is None:
        return await create()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Conflict(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters")
    body = payload if isinstance(payload, bytes) else payload.model_dump_json().encode()
    digest = hashlib.sha256(body).hexdigest()
    where = (idempotency_keys.c.owner_id == owner_id, idempotency_keys.c.key == key)
    async with engine.begin() as db:
        columns = (idempotency_keys.c.route, idempotency_keys.c.request_hash)
        claimed = await db.execute(sa.select(*columns, idempotency_keys.c.response).where(*where))
        row = claimed.first()
        if row is None:
            try:
                await db.execute(
                    idempotency_keys.insert().values(
                        owner_id=owner_id, key=key, route=route, request_hash=digest,
                        status_code=None, response=None, created_at=time.time(),
                    )
                )  # fmt: skip
            except sa.exc.IntegrityError:
                raise Conflict(f"{HEADER} {key!r:.80} is being used by another request") from None
    if row is not None:
        if row.route != route or row.request_hash != digest:
            raise Conflict(
                f"{HEADER} {key!r:.80} was already used with a different request; "
                "use a new key for a new object"
            )
        if row.response is None:
            raise Conflict(f"{HEADER} {key!r:.80}: the first request is still running; retry")
        return model.model_validate(json.loads(row.response))
    try:
        result = await create()
    except BaseException:
        async with engine.begin() as db:
            await db.execute(idempotency_keys.delete().where(*where))
        raise
    async with engine.begin() as db:
        await db.execute(
            idempotency_keys.update()
            .where(*where)
            .values(status_code=201, response=result.model_dump_json())
        )
    return result
