"""Security headers on every response (SECURITY.md, "The server").

The dashboard's pages load scripts and styles only from this origin (CSP without inline
script), are never framed, and never leak their URL to other sites. HSTS is sent only
when the server is reached over TLS (`APIQ_BEHIND_TLS`): over plain HTTP it would be
ignored at best.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

__all__ = ["SecurityHeaders"]

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
_HSTS = "max-age=31536000; includeSubDomains"
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net "
    "https://unpkg.com; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net "
    "https://unpkg.com https://fonts.googleapis.com; img-src 'self' data: "
    "https://cdn.jsdelivr.net; font-src https://fonts.gstatic.com; frame-ancestors 'none'"
)
"""The interactive API docs under /schema load their viewer from a CDN."""


class SecurityHeaders:
    """A `before_send` hook that adds the security headers to every HTTP response.

    A hook rather than a middleware: Litestar answers unknown paths (404), wrong methods
    (405), CORS preflights and errors raised in middleware (a 503 while the database is
    down) outside the middleware stack, but every message goes through `before_send`.
    """

    def __init__(self, *, hsts: bool) -> None:
        self._hsts = hsts

    async def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        for name, value in _HEADERS.items():
            headers[name] = value
        if scope.get("path", "").startswith("/schema"):
            headers["Content-Security-Policy"] = _DOCS_CSP
        if self._hsts:
            headers["Strict-Transport-Security"] = _HSTS
