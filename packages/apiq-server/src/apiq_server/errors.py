"""HTTP status codes of every error, in one table, and the handlers that apply it.

Users see the error envelope `{success: false, error: {code, message, details}}` with a
sanitized message; the full cause of an SDK error goes to the audit log, and the message
names the reference of that audit event ("Spec unreachable, see logs (reference ...)").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy.exc
from litestar import Request, Response
from litestar.background_tasks import BackgroundTask
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from apiq import errors as sdk
from apiq.models import AuditEvent, new_reference_id

__all__ = [
    "Conflict",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "exception_handlers",
]

logger = logging.getLogger(__name__)


class ServerError(Exception):
    """An error of the server's own with a status, a code and a message safe to show."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})


class NotFound(ServerError):
    """No such object for this user (another user's objects are not found either)."""

    status, code = 404, "not_found"

    def __init__(self, what: str, object_id: str) -> None:
        super().__init__(f"no {what} {object_id!r:.80}")


class Conflict(ServerError):
    """The request contradicts what exists (a taken name, a reused Idempotency-Key)."""

    status, code = 409, "conflict"


class Unauthorized(ServerError):
    """Not logged in, or the session ended."""

    status, code = 401, "unauthorized"


class Forbidden(ServerError):
    """Logged in, but the role or the CSRF check does not allow this."""

    status, code = 403, "forbidden"


class RateLimited(ServerError):
    """Too many requests of one kind by one user or address."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, details={"retryAfter": retry_after_s})
        self.retry_after_s = retry_after_s


class ServiceUnavailable(ServerError):
    """A backend the request needs (the database) is down; try again shortly."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message, details={"retryAfter": retry_after_s})
        self.retry_after_s = retry_after_s


# SDK errors: (status, code). The first matching class in MRO order wins.
_SDK_STATUS: dict[type[sdk.ApiqError], tuple[int, str]] = {
    sdk.OperationNotFound: (422, "operation_not_found"),
    sdk.SpecTooLarge: (422, "spec_too_large"),
    sdk.SpecUnreachable: (422, "spec_unreachable"),
    sdk.SpecInvalid: (422, "spec_invalid"),
    sdk.ExternalRefRefused: (422, "spec_invalid"),
    sdk.ArazzoInvalid: (422, "arazzo_invalid"),
    sdk.SpecError: (422, "spec_error"),
    sdk.EgressDenied: (422, "egress_denied"),
    sdk.ConfirmationRequired: (409, "confirmation_required"),
    sdk.OAuthReconnectRequired: (409, "oauth_reconnect_required"),
    sdk.PlanInvalid: (422, "plan_invalid"),
    sdk.WorkflowError: (422, "workflow_invalid"),
    sdk.PlanningError: (422, "planning_failed"),
    sdk.InvalidArguments: (422, "invalid_arguments"),
    sdk.ConfigurationError: (422, "invalid_configuration"),
    sdk.SecretNotFound: (422, "credential_missing"),
    sdk.ExecutionError: (502, "execution_failed"),
}

# Errors whose own text is written by APIQ about the request's shape and holds no upstream
# data, so users may read it whole.
_SELF_DESCRIBING: tuple[type[sdk.ApiqError], ...] = (
    sdk.ArazzoInvalid,
    sdk.ConfirmationRequired,
    sdk.PlanInvalid,
    sdk.PlanningError,
)


def _envelope(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any],
    background: BackgroundTask | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[Any]:
    headers = dict(headers or {})
    if "retryAfter" in details:
        headers["Retry-After"] = str(details["retryAfter"])
    body = {"success": False, "error": {"code": code, "message": message, "details": dict(details)}}
    return Response(body, status_code=status, headers=headers, background=background)


def _server_error(_: Request[Any, Any, Any], exc: ServerError) -> Response[Any]:
    return _envelope(exc.status, exc.code, exc.message, exc.details)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    details: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        details["problems"] = [
            {"field": item.get("key"), "message": item.get("message")}
            for item in exc.extra
            if isinstance(item, dict)
        ]
    code = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 413: "body_too_large", 429: "rate_limited"}.get(
        exc.status_code, "http_error")  # fmt: skip
    if exc.status_code == 413:
        return _envelope(413, code, "the request body is too large", details)
    # Litestar's own headers stay: `Allow` on 405 (RFC 9110 requires it).
    return _envelope(exc.status_code, code, exc.detail, details, headers=exc.headers)


def _sdk_error(request: Request[Any, Any, Any], exc: sdk.ApiqError) -> Response[Any]:
    if isinstance(exc, sdk.StorageError):
        if exc.transient:
            return _database_down(request, exc)
        return _unexpected(request, exc)
    status, code = next(
        (_SDK_STATUS[kind] for kind in type(exc).__mro__ if kind in _SDK_STATUS),
        (500, "internal_error"),
    )
    record = None
    if exc.reference_id is None:
        exc.reference_id, record = _audit_task(request, type(exc).__name__, str(exc))
    details: dict[str, Any] = {"reference": exc.reference_id}
    if isinstance(exc, sdk.PlanInvalid):
        details["problems"] = [str(problem) for problem in exc.problems]
    if isinstance(exc, sdk.ArazzoInvalid):
        details["problems"] = list(exc.errors)
    if isinstance(exc, sdk.PlanningError) and exc.suggestions:
        details["suggestions"] = list(exc.suggestions)
    message = str(exc) if isinstance(exc, _SELF_DESCRIBING) else exc.public_message
    return _envelope(status, code, message, details, record)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    reference, record = _audit_task(request, type(exc).__name__, repr(exc))
    logger.error("unexpected error (reference %s)", reference, exc_info=exc)
    return _envelope(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal_error",
        f"Internal error, see logs (reference {reference})",
        {"reference": reference},
        record,
    )


def _audit_task(
    request: Request[Any, Any, Any], kind: str, cause: str
) -> tuple[str, BackgroundTask]:
    """The reference shown to the user, and the task that writes the full cause under it
    to the audit log once the response is sent (Litestar's exception handlers are sync)."""
    event = _error_event(request, kind, cause)
    return event.id, BackgroundTask(_record, request, event)


def _error_event(request: Request[Any, Any, Any], kind: str, cause: str) -> AuditEvent:
    user = request.scope.get("user")
    services = request.app.state.get("services")
    if services is not None:
        cause = services.redactor.mask_text(cause)
    event = AuditEvent(
        action="server.error",
        actor=getattr(user, "id", "anonymous"),
        tenant=getattr(user, "tenant", "default"),
        outcome="error",
        target=f"{request.method} {request.scope.get('path_template', request.url.path)}",
        detail={"error": kind, "cause": cause[:2000]},
        id=new_reference_id(),
    )
    return event


async def _record(request: Request[Any, Any, Any], event: AuditEvent) -> None:
    services = request.app.state.get("services")
    try:
        if services is not None:
            await services.audit.record(event)
    except Exception:  # the database may be what failed; the reference still helps in logs
        logger.warning("could not record error %s in the audit log", event.id)


def _database_down(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
    error = ServiceUnavailable("the database is unavailable; try again in a few seconds")
    return _server_error(request, error)


exception_handlers: dict[type[Exception] | int, Any] = {
    ServerError: _server_error,
    HTTPException: _http_error,
    sdk.ApiqError: _sdk_error,
    sqlalchemy.exc.OperationalError: _database_down,
    sqlalchemy.exc.InterfaceError: _database_down,
    Exception: _unexpected,
}
"""Registered on the app by `apiq_server.plugin.ApiqPlugin`."""
