"""What handlers ask for by name: `services` (the process's parts) and `user` (the caller)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from apiq_server.auth.current import CurrentUser
from apiq_server.errors import Unauthorized
from apiq_server.wiring import Services

__all__ = ["dependencies"]


def provide_services(state: State) -> Services:
    """The services the lifespan built."""
    services: Services = state.services
    return services


def provide_user(request: Request[Any, Any, Any]) -> CurrentUser:
    """The logged-in caller (the role guard has already refused anonymous callers)."""
    user = request.scope.get("user")
    if not isinstance(user, CurrentUser):
        raise Unauthorized("log in first: POST /api/auth/login")
    return user


dependencies = {
    "services": Provide(provide_services, sync_to_thread=False),
    "user": Provide(provide_user, sync_to_thread=False),
}
