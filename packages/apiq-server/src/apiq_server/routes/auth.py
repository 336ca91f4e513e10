"""`/api/auth/*`: register, log in and out, the caller's account, password change.

Login and password change answer the new session in the body (`token` for programs that
send `Authorization: Bearer`) and set it as the `apiq_session` cookie for browsers:
HttpOnly (scripts never read it), SameSite=Lax, Secure in production or behind TLS, and
living as long as the session's absolute lifetime. Cookie sessions also need the
`csrfToken` in `X-CSRF-Token` on unsafe requests (`apiq_server.auth.middleware`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Response
from litestar.types import ControllerRouterHandler

from apiq_server.auth.current import CurrentUser
from apiq_server.auth.middleware import COOKIE_NAME
from apiq_server.policy import ANYONE, PUBLIC, allow
from apiq_server.schemas.common import Envelope, ok
from apiq_server.schemas.users import (
    LoggedOut,
    LoginIn,
    PasswordChangeIn,
    RegisterIn,
    SessionOut,
    UserOut,
)
from apiq_server.services.users import UserService
from apiq_server.settings import Settings
from apiq_server.wiring import Services

__all__ = ["client_address", "handlers"]


def client_address(request: Request[Any, Any, Any]) -> str:
    """The address the request came from (what login throttling counts per client)."""
    return request.client.host if request.client is not None else "unknown"


def _with_cookie(session: SessionOut, settings: Settings) -> Response[Envelope[SessionOut]]:
    response = Response(ok(session), status_code=200)
    response.set_cookie(
        COOKIE_NAME,
        session.token,
        max_age=int(settings.session_max_hours * 3600),
        path="/",
        secure=settings.production or settings.behind_tls,
        httponly=True,
        samesite="lax",
    )
    return response


@post("/api/auth/register", opt=allow(PUBLIC), status_code=201, summary="Create an account")
async def register(
    data: RegisterIn, services: Services, request: Request[Any, Any, Any]
) -> Envelope[UserOut]:
    """A new USER account; the server's first account becomes its ADMIN. Log in next."""
    user = await UserService(services).register(
        data.email, data.password, client=client_address(request)
    )
    return ok(user)


@post("/api/auth/login", opt=allow(PUBLIC), status_code=200, summary="Log in")
async def login(
    data: LoginIn, services: Services, request: Request[Any, Any, Any]
) -> Response[Envelope[SessionOut]]:
    """A new session (token, CSRF token, cookie). Every failure gets the same 401; too
    many failures for an account or an address get 429 with Retry-After."""
    session = await UserService(services).login(
        data.email, data.password, client=client_address(request)
    )
    return _with_cookie(session, services.settings)


@post("/api/auth/logout", opt=allow(ANYONE), status_code=200, summary="Log out")
async def logout(services: Services, user: CurrentUser) -> Response[Envelope[LoggedOut]]:
    """End this session and clear the cookie."""
    await UserService(services).logout(user)
    response = Response(ok(LoggedOut()), status_code=200)
    settings = services.settings
    response.set_cookie(
        COOKIE_NAME, "", max_age=0, path="/", httponly=True, samesite="lax",
        secure=settings.production or settings.behind_tls,
    )  # fmt: skip
    return response


@get("/api/auth/me", opt=allow(ANYONE), summary="The caller's account")
async def me(services: Services, user: CurrentUser) -> Envelope[UserOut]:
    """Who is logged in: id, email, role."""
    return ok(await UserService(services).me(user))


@post("/api/auth/password", opt=allow(ANYONE), status_code=200, summary="Change password")
async def change_password(
    data: PasswordChangeIn,
    services: Services,
    user: CurrentUser,
    request: Request[Any, Any, Any],
) -> Response[Envelope[SessionOut]]:
    """Needs the current password; ends every session of the user and returns a new one."""
    session = await UserService(services).change_password(
        user, data.current_password, data.new_password, client=client_address(request)
    )
    return _with_cookie(session, services.settings)


handlers: list[ControllerRouterHandler] = [register, login, logout, me, change_password]
