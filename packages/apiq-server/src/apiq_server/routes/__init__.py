"""Every route of the API, one module per area; each module's `handlers` lists its own."""

from __future__ import annotations

from litestar import Response, route
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.prometheus import PrometheusController
from litestar.types import ControllerRouterHandler

from apiq_server.policy import PUBLIC, allow, policy_of
from apiq_server.routes import (
    admin,
    apis,
    auth,
    chat,
    executions,
    health,
    logs,
    users,
    workflows,
)
from apiq_server.schemas import ErrorEnvelope

__all__ = ["metrics_controller", "route_handlers"]


def route_handlers() -> list[ControllerRouterHandler]:
    """The API's handlers, each with its access policy and its error responses documented."""
    areas = (health, auth, users, apis, workflows, chat, executions, logs, admin)
    handlers = [handler for area in areas for handler in area.handlers]
    methods: dict[str, set[str]] = {}
    for handler in handlers:
        if isinstance(handler, HTTPRouteHandler):
            handler.responses = {**_error_responses(handler), **(handler.responses or {})}
            for path in handler.paths:
                methods.setdefault(path, set()).update(handler.http_methods)
    # first: a path whose first handler is not OPTIONS gets Litestar's own (stale) one
    return [*(_options(path, found) for path, found in methods.items()), *handlers]


def _options(path: str, methods: set[str]) -> HTTPRouteHandler:
    """`OPTIONS path`: 204 with `Allow`. Litestar makes one itself, but with function
    handlers registered one by one its `Allow` names only the first handler's methods."""
    allowed = ", ".join(sorted(methods | {"OPTIONS"}))

    @route(path, http_method=[HttpMethod.OPTIONS], opt=allow(PUBLIC), include_in_schema=False,
           sync_to_thread=False, name=f"options {path}")  # fmt: skip
    def options() -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": allowed})

    return options


_ERRORS = {
    400: "The request is malformed or a field is invalid (details.problems)",
    401: "Not logged in, or the session ended",
    403: "The role may not do this, or the CSRF header is missing",
    404: "No such object for this user",
    409: "Conflicts with what exists, or needs approval first",
    413: "The request body is too large",
    422: "Understood, but cannot be done with this input (a spec, a plan)",
    429: "Too many requests; see Retry-After",
    500: "Internal error; the message names an audit reference",
    502: "An upstream API call could not be made",
    503: "The database is unavailable; see Retry-After",
}


def _error_responses(handler: HTTPRouteHandler) -> dict[int, ResponseSpec]:
    """Every error status the handler may answer, with the error envelope's schema."""
    policy = policy_of(handler)
    codes = set(_ERRORS)
    if policy is not None and policy.public and handler.http_methods <= {"GET", "HEAD"}:
        codes -= {401, 403}  # a public write still answers 401 (login) and 403 (CSRF)
    return {
        code: ResponseSpec(ErrorEnvelope, description=_ERRORS[code], generate_examples=False)
        for code in sorted(codes)
    }


def metrics_controller() -> type[PrometheusController]:
    """`GET /metrics` in Prometheus' text format (public, as scrapers expect; it holds
    request counts and latencies by route template, never ids or user data)."""

    class Metrics(PrometheusController):
        path = "/metrics"
        opt = allow(PUBLIC)
        include_in_schema = False

    return Metrics
