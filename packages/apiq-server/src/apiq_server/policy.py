"""Who may call which route: every route handler declares a policy, or the app refuses it.

A handler says `opt=allow(USERS)` (or `PUBLIC`); `role_guard` enforces it on every request
and `check_policies` (run when the app starts) refuses to build an app in which any route
has none, so a forgotten policy is a startup error, not an open door.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from apiq_server.errors import Forbidden, Unauthorized

__all__ = [
    "ADMINS",
    "ANYONE",
    "AUDITORS",
    "PUBLIC",
    "READERS",
    "USERS",
    "Role",
    "allow",
    "check_policies",
    "policy_of",
    "role_guard",
]


class Role(StrEnum):
    """A user's role. AUDITOR reads (its own objects and the audit log) and never writes."""

    USER = "USER"
    ADMIN = "ADMIN"
    AUDITOR = "AUDITOR"


@dataclass(frozen=True, slots=True)
class Policy:
    """The roles a route admits; `public` admits callers who are not logged in."""

    roles: frozenset[Role]
    public: bool = False


PUBLIC = Policy(frozenset(), public=True)
"""No login needed (login, register, health, metrics)."""
USERS = Policy(frozenset({Role.USER, Role.ADMIN}))
"""Anyone who may change their own objects."""
READERS = Policy(frozenset({Role.USER, Role.ADMIN, Role.AUDITOR}))
"""Anyone logged in, reading their own objects."""
ANYONE = READERS
"""Anyone logged in, acting on their own account (logout, password)."""
AUDITORS = Policy(frozenset({Role.ADMIN, Role.AUDITOR}))
"""The audit log."""
ADMINS = Policy(frozenset({Role.ADMIN}))
"""User management, spec cache, statistics."""

_KEY = "apiq_policy"
DOCUMENTATION_PREFIX = "/schema"
"""Where Litestar serves the OpenAPI document (public: it describes, it does not act)."""


def allow(policy: Policy) -> dict[str, Any]:
    """The `opt` of a route handler that admits `policy`."""
    return {_KEY: policy}


def policy_of(handler: BaseRouteHandler) -> Policy | None:
    """The policy a handler declares (None: it declared none)."""
    found = handler.opt.get(_KEY)
    return found if isinstance(found, Policy) else None


def role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Refuse the request unless the handler's policy admits the caller's role."""
    policy = policy_of(handler)
    if connection.scope.get("method") == "OPTIONS" and policy is None:
        return  # Litestar's CORS preflight answer: it reveals and changes nothing
    if policy is None and connection.scope["path"].startswith(DOCUMENTATION_PREFIX):
        return  # the app's own OpenAPI document and its viewers are public
    if policy is None:  # check_policies makes this unreachable; fail closed regardless
        raise Forbidden("this route has no access policy")
    if policy.public:
        return
    user = connection.scope.get("user")
    if user is None:
        raise Unauthorized("log in first: POST /api/auth/login")
    if user.role not in policy.roles:
        method = connection.scope.get("method", "use")
        raise Forbidden(f"the {user.role} role may not {method} this route")


def check_policies(routes: Iterable[tuple[str, BaseRouteHandler]]) -> None:
    """Raise unless every (route path, handler) pair declares a policy.

    Litestar's own OPTIONS handlers (CORS preflight) and the OpenAPI document's routes under
    `DOCUMENTATION_PREFIX` are public by nature and need none.

    Raises:
        RuntimeError: Naming the routes without one.
    """
    missing = sorted(
        f"{', '.join(sorted(methods))} {path}"
        for path, handler in routes
        if (methods := set(getattr(handler, "http_methods", ())) - {"OPTIONS"})
        and policy_of(handler) is None
        and not path.startswith(DOCUMENTATION_PREFIX)
    )
    if missing:
        raise RuntimeError(f"routes without an access policy: {'; '.join(missing)}")
