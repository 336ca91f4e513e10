"""The confirmation gate: nothing that changes state runs without the user's approval.

`Approvals.grant` hands the user a random token bound to (principal, plan digest) that
expires; `Approvals.redeem` accepts it once. The digest covers the workflow, its
connections and the inputs (`Plan.digest`), so a plan changed after approval, a token of
another user, a reused or an expired token are all refused with `ConfirmationRequired`.

Only SHA-256 hashes of tokens are kept: a leaked approval table grants nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from apiq.errors import ConfirmationRequired

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.models import Principal
    from apiq.workflows.model import Plan, Step

__all__ = [
    "Approval",
    "ApprovalLedger",
    "Approvals",
    "changing_steps",
    "check_granted",
    "require_token",
    "token_hash",
]

DEFAULT_TTL_S = 15 * 60
"""An approval not used within 15 minutes expires."""


@dataclass(frozen=True, slots=True)
class Approval:
    """A granted approval: show `token` to nobody but the approving user."""

    token: str
    plan_digest: str
    expires_at: float
    """POSIX seconds."""


def changing_steps(plan: Plan, catalogs: Mapping[str, Catalog]) -> tuple[Step, ...]:
    """The steps of `plan` that change state (method not GET/HEAD/OPTIONS, or marked
    `x-apiq-consequential`); `catalogs` maps a source name to its catalog.

    A step whose operation cannot be found counts as changing state: when in doubt, ask.
    """
    changing = []
    for step in plan.workflow.steps:
        try:
            source, operation_id = plan.target(step)
        except ValueError:
            changing.append(step)
            continue
        catalog = catalogs.get(source)
        operation = catalog.get_operation(operation_id) if catalog is not None else None
        if operation is None or operation.changes_state:
            changing.append(step)
    return tuple(changing)


class ApprovalLedger(Protocol):
    """Where approvals are granted and redeemed: `Approvals` in memory for one process,
    `apiq_adapters.sql.SqlApprovals` when several processes share them."""

    async def grant(
        self, principal: Principal, plan: Plan, inputs: Mapping[str, Any] | None = None
    ) -> Approval:
        """Approve `plan` with `inputs` for `principal`; returns the one-time token."""
        ...

    async def redeem(
        self,
        principal: Principal,
        plan: Plan,
        inputs: Mapping[str, Any] | None,
        token: str | None,
    ) -> None:
        """Use up `token` for exactly this plan, inputs and principal.

        Raises:
            ConfirmationRequired: As `Approvals.redeem` describes.
        """
        ...


class Approvals:
    """Single-use, expiring approvals kept in memory (one process).

    Args:
        ttl_s: Seconds an approval stays redeemable.
        clock: POSIX seconds (tests pass their own).
    """

    def __init__(
        self, *, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._granted: dict[str, tuple[tuple[str, str], str, float]] = {}
        self._lock = anyio.Lock()

    async def grant(
        self, principal: Principal, plan: Plan, inputs: Mapping[str, Any] | None = None
    ) -> Approval:
        """Approve `plan` with `inputs` for `principal`; returns the one-time token."""
        token = secrets.token_urlsafe(32)
        digest = plan.digest(dict(inputs or {}))
        expires_at = self._clock() + self._ttl_s
        async with self._lock:
            self._drop_expired()
            self._granted[token_hash(token)] = (
                (principal.tenant, principal.id),
                digest,
                expires_at,
            )
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
        """
        digest = token_hash(require_token(token))
        async with self._lock:
            granted = self._granted.pop(digest, None)
        check_granted(granted, principal, plan, inputs, now=self._clock())

    def _drop_expired(self) -> None:
        now = self._clock()
        for key in [k for k, (_, _, expires) in self._granted.items() if expires < now]:
            del self._granted[key]


def token_hash(token: str) -> str:
    """What a ledger keeps of an approval token (a leaked table grants nothing)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def require_token(token: str | None) -> str:
    """`token`, or ConfirmationRequired when there is none."""
    if not token:
        raise ConfirmationRequired(
            "this plan changes state and needs the user's approval; grant one with "
            "grant(principal, plan, inputs) and pass its token"
        )
    return token


def check_granted(
    granted: tuple[tuple[str, str], str, float] | None,
    principal: Principal,
    plan: Plan,
    inputs: Mapping[str, Any] | None,
    *,
    now: float,
) -> None:
    """Refuse a redeemed approval `(owner, plan digest, expires_at)` that is missing, another
    principal's, expired, or granted for a different plan or inputs (ConfirmationRequired)."""
    if granted is None:
        raise ConfirmationRequired(
            "the approval token is unknown or was already used; approve the plan again"
        )
    owner, digest, expires_at = granted
    if owner != (principal.tenant, principal.id):
        raise ConfirmationRequired("the approval token belongs to another user")
    if now > expires_at:
        raise ConfirmationRequired("the approval token expired; approve the plan again")
    if digest != plan.digest(dict(inputs or {})):
        raise ConfirmationRequired(
            "the plan or its inputs changed after approval; review and approve the new plan"
        )
