"""Admin pages: users and their roles, and the spec cache with purge (ADMIN only).

Role changes (`PATCH /api/admin/users/{id}`) and purges (`DELETE /api/admin/spec-cache`) are
`fetch()` calls of the REST API, so they are audited exactly as API calls are.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from apiq.egress.policy import display_url
from apiq_server.auth.current import CurrentUser
from apiq_server.pages.layout import page
from apiq_server.policy import ADMINS, Role, allow
from apiq_server.schemas.common import MAX_PAGE
from apiq_server.services.users import UserService
from apiq_server.wiring import Services

__all__ = ["handlers"]


@get("/admin/users", opt=allow(ADMINS), name="page:admin-users")
async def users_page(
    request: Request[Any, Any, Any],
    services: Services,
    user: CurrentUser,
    offset: Annotated[int, Parameter(ge=0)] = 0,
) -> Template:
    """The tenant's users with a role selector each."""
    found = await UserService(services).list_users(
        user, offset=offset, limit=MAX_PAGE, role=None, disabled=None, email=None
    )
    return page(
        request, "admin_users.html", "Users", users=found, roles=[role.value for role in Role]
    )


@get("/admin/spec-cache", opt=allow(ADMINS), name="page:admin-spec-cache")
async def spec_cache_page(request: Request[Any, Any, Any], services: Services) -> Template:
    """Every cached spec document (URLs without query values) with purge buttons."""
    entries = await services.spec_cache.entries()
    rows = [
        {
            "url": display_url(entry.url),
            "fetched_at": entry.fetched_at,
            "ttl_remaining": entry.ttl_remaining,
            "size_bytes": entry.size_bytes,
        }
        for entry in entries
    ]
    return page(request, "admin_cache.html", "Spec cache", entries=rows)


handlers: list[ControllerRouterHandler] = [users_page, spec_cache_page]
