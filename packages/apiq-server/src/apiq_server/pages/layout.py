"""What every page shares: the navigation by role, the page context, and the error pages.

`page()` renders a template inside `base.html` with the logged-in user, the navigation their
role may see, and the session's CSRF token (rendered into a `<meta>` tag for `app.js`).
`to_login` and `error_page` are the page Router's exception handlers: browsers get a login
redirect or an HTML error page where API clients get the JSON envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Response, Template

from apiq_server.auth.current import CurrentUser
from apiq_server.errors import ServerError, Unauthorized
from apiq_server.policy import ADMINS, AUDITORS, READERS, USERS, Policy

__all__ = ["NavItem", "error_page", "http_error_page", "nav_for", "page", "to_login"]


@dataclass(frozen=True, slots=True)
class NavItem:
    """One link of the navigation, shown to the roles of `policy`."""

    href: str
    label: str
    policy: Policy


NAV = (
    NavItem("/connections", "Connections", READERS),
    NavItem("/chat", "Chat", USERS),
    NavItem("/workflows", "Workflows", READERS),
    NavItem("/executions", "Executions", READERS),
    NavItem("/audit", "Audit log", AUDITORS),
    NavItem("/admin/users", "Admin users", ADMINS),
    NavItem("/admin/spec-cache", "Spec cache", ADMINS),
)
"""The navigation, in order; each item mirrors the policy of the page it links to."""


def nav_for(role: str | None) -> list[NavItem]:
    """The links `role` may follow (none for a visitor who is not logged in)."""
    return [item for item in NAV if role is not None and role in item.policy.roles]


def page(
    request: Request[Any, Any, Any],
    template: str,
    title: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """`template` rendered for the request's user (if any) inside the shared layout."""
    user = request.scope.get("user")
    role = user.role if isinstance(user, CurrentUser) else None
    path = request.url.path
    links = [
        {"href": item.href, "label": item.label, "current": _is_current(item.href, path)}
        for item in nav_for(role)
    ]
    return Template(
        template_name=template,
        status_code=status_code,
        context={
            "title": title,
            "user": user if isinstance(user, CurrentUser) else None,
            "csrf": user.csrf_token if isinstance(user, CurrentUser) else "",
            "nav": links,
            **context,
        },
    )


def _is_current(href: str, path: str) -> bool:
    return path == href or path.startswith(href + "/")


def to_login(request: Request[Any, Any, Any], _: Unauthorized) -> Response[Any]:
    """Send a visitor who is not logged in to the login page, to come back afterwards."""
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return Redirect(f"/login?next={quote(target, safe='')}", status_code=303)


def error_page(request: Request[Any, Any, Any], exc: ServerError) -> Response[Any]:
    """An HTML page with the error's status and its (already sanitized) message."""
    return _error(request, exc.status, exc.message)


def http_error_page(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own errors (a malformed query parameter, say) as an HTML page."""
    message = "The address or its parameters are not valid." if exc.status_code == 400 else ""
    return _error(request, exc.status_code, message or exc.detail)


def _error(request: Request[Any, Any, Any], status: int, message: str) -> Response[Any]:
    headings = {400: "Bad request", 403: "Not allowed", 404: "Not found", 429: "Too many requests"}
    return page(
        request,
        "error.html",
        headings.get(status, "Something went wrong"),
        status_code=status,
        status=status,
        message=message,
    )
