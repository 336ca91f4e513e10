"""Login, registration and the home page.

The forms post JSON to `/api/auth/login` and `/api/auth/register` from `app.js`; login sets
the session cookie, so the pages that follow are rendered for the user.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Redirect, Response
from litestar.types import ControllerRouterHandler

from apiq_server.auth.current import CurrentUser
from apiq_server.pages.layout import page
from apiq_server.policy import PUBLIC, READERS, allow

__all__ = ["handlers", "safe_next"]

HOME = "/connections"


def safe_next(target: str | None) -> str:
    """`target` when it is a path of this site, else the home page (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return HOME
    return target


@get("/", opt=allow(READERS), name="page:home")
async def home() -> Redirect:
    """The dashboard's first page."""
    return Redirect(HOME, status_code=303)


@get("/login", opt=allow(PUBLIC), name="page:login")
async def login_page(request: Request[Any, Any, Any]) -> Response[Any]:
    """The login form; a user who is logged in goes on at once. `?next=` names the page to
    return to (only a path of this site is followed)."""
    target = safe_next(request.query_params.get("next"))
    if isinstance(request.scope.get("user"), CurrentUser):
        return Redirect(target, status_code=303)
    return page(request, "login.html", "Log in", next=target)


@get("/register", opt=allow(PUBLIC), name="page:register")
async def register_page(request: Request[Any, Any, Any]) -> Response[Any]:
    """The registration form."""
    if isinstance(request.scope.get("user"), CurrentUser):
        return Redirect(HOME, status_code=303)
    return page(request, "register.html", "Create an account")


handlers: list[ControllerRouterHandler] = [home, login_page, register_page]
