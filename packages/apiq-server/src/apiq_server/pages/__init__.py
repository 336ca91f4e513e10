"""The dashboard: server-rendered pages over the same services as the REST API.

Each module of this package is one area of the dashboard and exports `handlers`; every
handler declares its role policy like the API's routes. The pages live in one Router whose
exception handlers turn the API's JSON errors into what a browser wants: an anonymous
visitor is sent to `/login` (with the page to come back to), a role that may not see a page
gets a 403 page, an unknown id a 404 page. Actions on a page (test, approve, purge...) are
`fetch()` calls of the REST API from `static/app.js` with the session cookie and the CSRF
token the layout renders into a `<meta>` tag.

`register(app_config)` adds the pages, the templates and the static files to an app.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from apiq_server.errors import NotFound, ServerError, Unauthorized
from apiq_server.pages import account, admin, audit, chat, connections, executions, workflows
from apiq_server.pages.layout import error_page, http_error_page, to_login
from apiq_server.policy import PUBLIC, allow

__all__ = ["STATIC_DIR", "TEMPLATE_DIR", "handlers", "register"]

_PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = _PACKAGE / "templates"
STATIC_DIR = _PACKAGE / "static"

handlers: list[ControllerRouterHandler] = [
    *account.handlers,
    *connections.handlers,
    *chat.handlers,
    *workflows.handlers,
    *executions.handlers,
    *audit.handlers,
    *admin.handlers,
]
"""Every page handler of the dashboard."""


def register(app_config: AppConfig) -> AppConfig:
    """Add the dashboard (pages, Jinja templates, `/static`) to `app_config`."""
    pages = Router(
        path="/",
        route_handlers=handlers,
        include_in_schema=False,
        # Pages carry the session's CSRF token: never keep them in a shared cache.
        cache_control=CacheControlHeader(no_store=True),
        exception_handlers={
            Unauthorized: to_login,
            NotFound: error_page,
            ServerError: error_page,
            HTTPException: http_error_page,
        },
    )
    static = create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        opt=allow(PUBLIC),
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=300),
    )
    app_config.route_handlers.extend([pages, static])
    app_config.template_config = TemplateConfig(directory=TEMPLATE_DIR, engine=JinjaTemplateEngine)
    return app_config
