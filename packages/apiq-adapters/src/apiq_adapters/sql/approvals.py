"""`SqlApprovals`: the confirmation gate's approvals in `apiq_approvals`, for many processes.

The same rules as the in-memory `apiq.execution.approval.Approvals`: a random token bound to
(principal, plan digest) that expires; only its SHA-256 is stored, so a leaked table grants
nothing. `redeem` spends the token with one `DELETE ... RETURNING`: of any number of
concurrent redeems of one token, in any processes, exactly one gets the row back (SQLite
serialises writers; PostgreSQL's second delete waits for the first and then finds nothing).
Like the in-memory ledger, a token is spent by any redeem that finds it, even one that then
fails because of the owner, the expiry or a changed plan.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from apiq.execution.approval import (
    DEFAULT_TTL_S,
    Approval,
    check_granted,
    require_token,
    token_hash,
)
from apiq.models import Principal
from apiq_adapters.sql.errors import storage_errors
from apiq_adapters.sql.tables import approvals

if TYPE_CHECKING:
    from apiq.workflows.model import Plan

__all__ = ["SqlApprovals"]

_T = approvals.c


class SqlApprovals:
    """ApprovalLedger over the `apiq_approvals` table.

    Args:
        engine: an engine on a migrated database; borrowed, the caller disposes of it.
        ttl_s: seconds an approval stays redeemable.
        clock: POSIX seconds (tests pass their own).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._clock = clock

    def __repr__(self) -> str:
        return f"SqlApprovals(engine={self._engine.url!r}, ttl_s={self._ttl_s})"

    async def grant(
        self, principal: Principal, plan: Plan, inputs: Mapping[str, Any] | None = None
    ) -> Approval:
        """Approve `plan` with `inputs` for `principal`; returns the one-time token.

        Expired approvals of every user are deleted on the way.

        Raises:
            StorageError: the database failed; no approval was granted.
        """
        token = secrets.token_urlsafe(32)
        digest = plan.digest(dict(inputs or {}))
        now = self._clock()
        expires_at = now + self._ttl_s
        row = {
            "token_hash": token_hash(token),
            "tenant": principal.tenant,
            "owner_id": principal.id,
            "plan_digest": digest,
            "expires_at": expires_at,
        }
        with storage_errors("approvals.grant", self._engine):
            async with self._engine.begin() as conn:
                await conn.execute(sa.delete(approvals).where(_T.expires_at < now))
                await conn.execute(sa.insert(approvals).values(row))
        return Approval(token=token, plan_digest=digest, expires_at=expires_at)

    async def redeem(
        self,
        principal: Principal,
        plan: Plan,
        inputs: Mapping[str, Any] | None,
        token: str | None,
    ) -> None:
        """Use up `token` for exactly this plan, inputs and principal.

        Raises:
            ConfirmationRequired: No token, an unknown, used or expired one, another
                principal's, or one granted for a different plan or inputs. A token that
                fails because the plan changed is spent as well: approve the new plan.
            StorageError: the database failed; treat the plan as not approved.
        """
        spend = (
            sa.delete(approvals)
            .where(_T.token_hash == token_hash(require_token(token)))
            .returning(_T.tenant, _T.owner_id, _T.plan_digest, _T.expires_at)
        )
        with storage_errors("approvals.redeem", self._engine):
            async with self._engine.begin() as conn:
                row = (await conn.execute(spend)).first()
        granted = (
            None if row is None else ((row.tenant, row.owner_id), row.plan_digest, row.expires_at)
        )
        check_granted(granted, principal, plan, inputs, now=self._clock())


if TYPE_CHECKING:
    from apiq.execution.approval import ApprovalLedger

    _: type[ApprovalLedger] = SqlApprovals
