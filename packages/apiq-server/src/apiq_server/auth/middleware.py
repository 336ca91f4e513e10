"""Finds the session of each request and checks CSRF for cookie sessions.

The token comes in the `apiq_session` cookie (browsers) or as `Authorization: Bearer`
(programs). A request with neither, or with an ended session, has `scope["user"] = None`
and only public routes answer it (`apiq_server.policy.role_guard`). Cookie sessions are
what CSRF attacks ride on, so their unsafe requests must repeat the session's CSRF token
in the `X-CSRF-Token` header; bearer tokens are not sent by browsers on their own.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from apiq_server.errors import Forbidden

__all__ = ["COOKIE_NAME", "CSRF_HEADER", "SessionMiddleware"]

COOKIE_NAME = "apiq_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SessionMiddleware(ASGIMiddleware):
    """Sets `scope["user"]` to the request's `CurrentUser` or None."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = _headers(scope)
        token, via_cookie = _token(headers)
        user = None
        if token:
            services = scope["app"].state.services
            user = await services.sessions.find(token, via_cookie=via_cookie)
        scope["user"] = user
        if user is not None and user.via_cookie and scope.get("method") not in _SAFE_METHODS:
            sent = headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), user.csrf_token.encode()):
                raise Forbidden(
                    "missing or wrong X-CSRF-Token header: send the csrfToken given at login"
                )
        await next_app(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", ())
    }


def _token(headers: dict[str, Any]) -> tuple[str | None, bool]:
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME and value:
            return value, True
    return None, False
