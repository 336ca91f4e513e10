"""`ApiqPlugin`: wires the server into a Litestar app (STYLE.md: one InitPlugin).

Routes, dependencies, the role guard, exception handlers, middleware (sessions, security
headers, metrics), CORS, the body cap, the OpenAPI document and the lifespan that owns
every engine and client all come from here, so `create_app` stays a one-liner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.config.cors import CORSConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Schema
from litestar.plugins import InitPluginProtocol
from litestar.plugins.prometheus import PrometheusConfig
from litestar.routes import HTTPRoute

from apiq_server.auth.middleware import SessionMiddleware
from apiq_server.dependencies import dependencies
from apiq_server.errors import exception_handlers
from apiq_server.headers import SecurityHeaders
from apiq_server.pages import register as register_pages
from apiq_server.policy import check_policies, role_guard
from apiq_server.routes import metrics_controller, route_handlers
from apiq_server.schemas.common import RequestModel
from apiq_server.settings import Settings
from apiq_server.wiring import Services, build_services

__all__ = ["ApiqPlugin"]

VERSION = "0.1.0"


class ApiqPlugin(InitPluginProtocol):
    """Everything APIQ adds to a Litestar app, configured by `settings`.

    Args:
        settings: The server's configuration.
        services: Already-built services to use instead of building them in the lifespan
            (tests and `apiq serve --demo` share one set with other code).
    """

    def __init__(self, settings: Settings, services: Services | None = None) -> None:
        self.settings = settings
        self._services = services

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings = self.settings
        metrics = PrometheusConfig(app_name="apiq", group_path=True)
        app_config.route_handlers.extend([*route_handlers(), metrics_controller()])
        register_pages(app_config)
        app_config.dependencies.update(dependencies)
        app_config.guards.append(role_guard)
        app_config.exception_handlers.update(exception_handlers)
        app_config.middleware[:0] = [metrics.middleware, SessionMiddleware()]
        app_config.before_send.append(SecurityHeaders(hsts=settings.behind_tls))
        app_config.lifespan.append(self._lifespan)
        app_config.on_startup.extend([_check_policies, _document_request_bodies])
        if settings.cors_origins:
            app_config.cors_config = CORSConfig(
                allow_origins=settings.cors_origins, allow_credentials=False
            )
        app_config.openapi_config = OpenAPIConfig(
            title="APIQ",
            version=VERSION,
            description="Plain English to reviewed, executed REST API calls.",
            path="/schema",
        )
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        if self._services is not None:
            app.state.services = self._services
            yield
            return
        async with build_services(self.settings) as services:
            app.state.services = services
            yield


def _document_request_bodies(app: Litestar) -> None:
    """Document request bodies with pydantic's own JSON schema of their models.

    Litestar's translation of pydantic models drops `pattern`, documents size-capped dicts
    as arrays and leaves out `additionalProperties: false` (`extra="forbid"`), so the
    document promised requests that the server refuses.
    """
    schemas = app.openapi_schema.components.schemas
    if schemas is None:
        return
    for model in _subclasses(RequestModel):
        if model.__name__ in schemas:
            document = model.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}"
            )
            # Litestar renders plain dicts as they are; pydantic's `$defs` are components too.
            schemas.update(cast("dict[str, Schema]", document.pop("$defs", {})))
            schemas[model.__name__] = cast("Schema", document)


def _subclasses(model: type[RequestModel]) -> list[type[RequestModel]]:
    found = []
    for sub in model.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _check_policies(app: Litestar) -> None:
    check_policies(
        (route.path, handler)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
    )
