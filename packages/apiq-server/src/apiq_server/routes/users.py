"""`/api/admin/users`: ADMINs list users, change their role, disable or enable them.

A role change or disabling ends the user's sessions at once. No change may leave the
tenant without an active ADMIN (409), so an admin cannot lock everybody out.
"""

from __future__ import annotations

from litestar import get, patch
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from apiq_server.auth.current import CurrentUser
from apiq_server.policy import ADMINS, Role, allow
from apiq_server.schemas.common import MAX_PAGE, Envelope, Page, ok
from apiq_server.schemas.users import UserOut, UserPatch
from apiq_server.services.users import UserService
from apiq_server.wiring import Services

__all__ = ["handlers"]


@get("/api/admin/users", opt=allow(ADMINS), summary="List users")
async def list_users(
    services: Services,
    user: CurrentUser,
    offset: int = Parameter(ge=0, le=2**31 - 1, default=0),
    limit: int = Parameter(ge=1, le=MAX_PAGE, default=20),
    role: Role | None = None,
    disabled: bool | None = None,
    email: str | None = Parameter(default=None, max_length=320, description="part of the email"),
) -> Envelope[Page[UserOut]]:
    """The tenant's users, oldest first; filter by role, disabled, or part of the email."""
    page = await UserService(services).list_users(
        user, offset=offset, limit=limit, role=role, disabled=disabled, email=email
    )
    return ok(page)


@patch("/api/admin/users/{user_id:str}", opt=allow(ADMINS), summary="Change a user")
async def update_user(
    user_id: str, data: UserPatch, services: Services, user: CurrentUser
) -> Envelope[UserOut]:
    """Set `role` (USER, ADMIN, AUDITOR) and/or `disabled`; ends the user's sessions."""
    return ok(await UserService(services).update_user(user, user_id, data))


handlers: list[ControllerRouterHandler] = [list_users, update_user]
