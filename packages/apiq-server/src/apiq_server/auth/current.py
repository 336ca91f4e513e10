"""`CurrentUser`: who is making the request, as the authentication middleware found them."""

from __future__ import annotations

from dataclasses import dataclass

from apiq.models import Principal

__all__ = ["CurrentUser"]


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The logged-in user of a request and the session that proved it."""

    id: str
    tenant: str
    email: str
    role: str
    session_hash: str
    """SHA-256 of the session token (the token itself is never kept)."""
    csrf_token: str
    via_cookie: bool
    """Whether the session came in a cookie (then unsafe methods need the CSRF header)."""

    @property
    def principal(self) -> Principal:
        """The SDK principal this user acts as."""
        return Principal(id=self.id, tenant=self.tenant, roles=frozenset({self.role}))
