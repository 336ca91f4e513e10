"""`create_app`: the Litestar application of the APIQ reference server.

uvicorn --factory apiq_server.app:create_app      # settings from the environment
apiq serve --host 127.0.0.1 --port 8000           # the same, with `apiq`
"""

from __future__ import annotations

from litestar import Litestar
from litestar.plugins.pydantic import PydanticPlugin

from apiq_server.plugin import ApiqPlugin
from apiq_server.settings import Settings
from apiq_server.wiring import Services

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Litestar:
    """The app, configured from `settings` (default: the environment).

    Schemas are written and read by their camelCase aliases (`PydanticPlugin(prefer_alias)`).
    """
    settings = settings or Settings()
    plugins = [PydanticPlugin(prefer_alias=True), ApiqPlugin(settings, services)]
    # Litestar 2.25 takes the body cap from its own argument only: the AppConfig field
    # that ApiqPlugin.on_app_init sets is ignored (Litestar.__init__ passes the argument on).
    return Litestar(plugins=plugins, request_max_body_size=settings.body_max_bytes)
