"""Security headers on every response (SECURITY.md, "The server").

The dashboard's pages load scripts and styles only from this origin (CSP without inline
script), are never framed, and never leak their URL to other sites. HSTS is sent only
when the server is reached over TLS (`APIQ_BEHIND_TLS`): over plain HTTP it would be
ignored at best.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware"]

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


class SecurityHeadersMiddleware(ASGIMiddleware):
    """Adds the security headers to every HTTP response."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, *, hsts: bool) -> None:
        self._hsts = hsts

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        docs = scope["path"].startswith("/schema")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in _HEADERS.items():
                    headers[name] = value
                if docs:
                    headers["Content-Security-Policy"] = _DOCS_CSP
                if self._hsts:
                    headers["Strict-Transport-Security"] = _HSTS
            await send(message)

        await next_app(scope, receive, send_with_headers)
