"""`Outbound`: the one path by which APIQ calls an API on a principal's behalf.

`Outbound.call` runs, in order: `build_request` (argument validation and serialization
against the connection's base URL), credentials (`attach_credentials`, or an OAuth 2.0
bearer token from `OAuthClient` for oauth2 schemes), an audit `call.started` event and a
`call.credential_use` event (scheme names and keyed fingerprints only), the optional
per-connection rate limiter, `Caller.send` (egress policy, retries, circuit breaker), one
audit `call.attempt` event per attempt, and finally the result masked by the `Redactor`.

Audit comes first on purpose: the audit sink raises when it cannot record, and a call that
cannot be recorded is not made. Attempt events name the path *template*, never the filled
path, since path values can be personal data or identifiers the audit log must not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from apiq.calls.build import PreparedRequest, build_request
from apiq.calls.caller import Caller, CallResult
from apiq.connections import Connection, attach_credentials
from apiq.connections.auth import chosen_schemes, origin
from apiq.errors import ApiqError, ConfigurationError, ExecutionError, PolicyViolation
from apiq.models import AuditEvent, JsonValue, Outcome, Principal
from apiq.redaction import mask_logs

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.connections import OAuthClient, OAuthConfig
    from apiq.ports import AuditSink, SecretStore
    from apiq.redaction import Redactor

__all__ = ["Outbound", "OutboundRateLimiter"]

# httpx logs every request URL at INFO (an API key in the query string with it) and httpcore
# logs response headers at DEBUG: their records pass through the Redactor before any handler.
_HTTP_LOGGERS = ("httpx", "httpcore.http11", "httpcore.http2", "httpcore.connection")


class OutboundRateLimiter(Protocol):
    """What `Outbound` needs of a per-connection rate limiter (`apiq.calls.rate_limit`)."""

    async def acquire(self, key: str, *, operation_id: str | None = None) -> float:
        """Wait until one more call under `key` is allowed; return the seconds waited."""
        ...

    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        """Tighten the limit of `key` from the API's `RateLimit-*` response headers."""
        ...


class Outbound:
    """Calls operations through connections: credentials, audit, limits and redaction.

    Args:
        caller: Sends prepared requests (egress client, retries, breaker).
        secrets: Where connection credentials live.
        audit: Records `call.started`, `call.credential_use`, `call.attempt` and
            `call.failed`; a failing `record` before sending stops the call.
        redactor: Learns every credential used and masks results and audit text.
        oauth: Hands out access tokens for oauth2 schemes (see `oauth_configs`).
        oauth_configs: Connection id -> scheme name -> `OAuthConfig`: the oauth2 schemes a
            connection can satisfy with `oauth` (a `Connection` holds no OAuth config).
        rate_limiter: Optional per-connection limiter, keyed by connection id.

    Example:
        >>> outbound = Outbound(caller, secrets=store, audit=sink, redactor=redactor)
        >>> result = await outbound.call(alice, conn, catalog, "getPetById",
        ...                              {"path": {"petId": 1}})
    """

    def __init__(
        self,
        caller: Caller,
        *,
        secrets: SecretStore,
        audit: AuditSink,
        redactor: Redactor,
        oauth: OAuthClient | None = None,
        oauth_configs: Mapping[str, Mapping[str, OAuthConfig]] | None = None,
        rate_limiter: OutboundRateLimiter | None = None,
    ) -> None:
        self.caller = caller
        self._secrets = secrets
        self._audit = audit
        self._redactor = redactor
        self._oauth = oauth
        self._oauth_configs = oauth_configs if oauth_configs is not None else {}
        self._rate_limiter = rate_limiter
        mask_logs(redactor, _HTTP_LOGGERS)

    async def call(
        self,
        principal: Principal,
        connection: Connection,
        catalog: Catalog,
        operation_id: str,
        arguments: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> CallResult:
        """Call `operation_id` through `connection` as `principal`.

        Returns:
            The upstream answer (4xx/5xx included) with body and headers masked.

        Raises:
            InvalidArguments: The arguments do not fit the operation (nothing sent).
            ConfigurationError, PolicyViolation, SecretNotFound: Credentials could not be
                attached (nothing sent).
            OAuthReconnectRequired, OAuthTokenError: No usable OAuth token.
            ExecutionError: The audit sink failed before sending (nothing sent), or the
                call failed without any response (see `Caller.send`).
            EgressDenied: The egress policy refused the URL.
        """
        request = build_request(catalog, operation_id, arguments, server_url=connection.base_url)
        oauth_schemes = self._oauth_alternative(connection, catalog, operation_id)
        if oauth_schemes:
            attached, carriers, token = await self._attach_oauth(
                principal, connection, request, oauth_schemes[0]
            )
            schemes: tuple[str, ...] = oauth_schemes
        else:
            attached, carriers = await attach_credentials(
                connection,
                catalog,
                operation_id,
                request,
                principal=principal,
                secrets=self._secrets,
                redactor=self._redactor,
            )
            token, schemes = None, (chosen_schemes(connection, catalog, operation_id) or ())
        base = self._base_detail(connection, attached)
        await self._record(principal, "call.started", connection, base, must=True)
        if schemes:
            await self._record_credential_use(
                principal, connection, base, schemes, request, attached
            )
        result = await self._send(principal, connection, attached, base, idempotency_key, carriers)
        if token is not None and result.status_code == 401:
            # One refresh after a 401, then the API's second answer stands.
            attached, _, token = await self._attach_oauth(
                principal, connection, request, schemes[0], rejected=token
            )
            await self._record_credential_use(
                principal, connection, base, schemes, request, attached
            )
            result = await self._send(
                principal, connection, attached, base, idempotency_key, carriers
            )
        return replace(
            result,
            headers=self._redactor.mask_pairs(result.headers),
            body=self._redactor.mask(result.body),
            method=request.method,
            url=self._redactor.mask_url(request.url),
        )

    async def _record_credential_use(
        self,
        principal: Principal,
        connection: Connection,
        base: dict[str, JsonValue],
        schemes: tuple[str, ...],
        request: PreparedRequest,
        attached: PreparedRequest,
    ) -> None:
        """Which schemes were used, each credential only as a keyed HMAC; must be recorded."""
        detail = {**base, "schemes": list(schemes), "fingerprints": self._prints(request, attached)}
        await self._record(principal, "call.credential_use", connection, detail, must=True)

    async def _send(
        self,
        principal: Principal,
        connection: Connection,
        request: PreparedRequest,
        base: dict[str, JsonValue],
        idempotency_key: str | None,
        carriers: tuple[str, ...],
    ) -> CallResult:
        if self._rate_limiter is not None:
            limited = await self._rate_limiter.acquire(
                connection.id, operation_id=request.operation_id
            )
            base = {**base, "rate_limited_s": round(limited, 3)}
        try:
            result = await self.caller.send(
                request, idempotency_key=idempotency_key, credential_headers=carriers
            )
        except ApiqError as exc:
            detail = {
                **base,
                "error": type(exc).__name__,
                "message": self._redactor.mask_exception(exc),
            }
            await self._record(principal, "call.failed", connection, detail, outcome="error")
            raise
        if self._rate_limiter is not None:
            # Repeated headers keep their last value: rate-limit headers are not repeated.
            self._rate_limiter.observe(connection.id, dict(result.headers))
        for attempt in result.attempts:
            detail = {
                **base,
                "attempt": attempt.number,
                "status": attempt.status_code,
                "error": attempt.error,
                "duration_ms": round(attempt.duration_ms, 3),
                "waited_s": attempt.waited_s,
            }
            ok = attempt.status_code is not None and attempt.status_code < 400
            await self._record(
                principal, "call.attempt", connection, detail, outcome="ok" if ok else "error"
            )
        return result

    def _oauth_alternative(
        self, connection: Connection, catalog: Catalog, operation_id: str
    ) -> tuple[str, ...]:
        """The oauth2 schemes of the first satisfiable alternative; () when it is not OAuth."""
        configs = self._oauth_configs.get(connection.id, {})
        if not configs or self._oauth is None:
            return ()
        operation = catalog.operation(operation_id)
        alternatives = operation.security if operation.security is not None else catalog.security
        for alternative in alternatives:
            if all(name in connection.auth for name in alternative):
                return ()  # attach_credentials picks this same alternative
            if alternative and all(name in configs for name in alternative):
                if len(alternative) > 1:
                    raise ConfigurationError(
                        f"{catalog.name}.{operation_id}: a security requirement with several "
                        f"OAuth schemes ({', '.join(alternative)}) is not supported; configure "
                        "another alternative"
                    )
                return tuple(alternative)
        return ()

    async def _attach_oauth(
        self,
        principal: Principal,
        connection: Connection,
        request: PreparedRequest,
        scheme: str,
        *,
        rejected: str | None = None,
    ) -> tuple[PreparedRequest, tuple[str, ...], str]:
        assert self._oauth is not None  # _oauth_alternative returned a scheme
        if not connection.owned_by(principal):
            raise PolicyViolation(
                f"connection {connection.id!r} belongs to another principal; "
                f"{principal.id!r} cannot use its credentials"
            )
        if origin(request.url) != origin(connection.base_url):
            raise PolicyViolation(
                f"refusing to attach the OAuth token of connection {connection.id!r} to "
                f"another origin than {connection.base_url!r}"
            )
        config = self._oauth_configs[connection.id][scheme]
        if rejected is None:
            token = await self._oauth.access_token(principal, connection.id, config)
        else:
            token = await self._oauth.on_unauthorized(
                principal, connection.id, config, rejected=rejected
            )
        self._redactor.register(token)
        headers = [(k, v) for k, v in request.headers if k.lower() != "authorization"]
        headers.append(("Authorization", f"Bearer {token}"))
        return replace(request, headers=tuple(headers)), ("Authorization",), token

    def _prints(self, before: PreparedRequest, after: PreparedRequest) -> list[JsonValue]:
        """Keyed fingerprints of what attaching added: header, cookie and query values."""
        added: list[str] = [
            v for pair in after.headers if pair not in before.headers for v in pair[1:]
        ]
        added += [v for pair in after.cookies if pair not in before.cookies for v in pair[1:]]
        if after.url != before.url:  # a query credential was added
            old_query = set(urlsplit(before.url).query.split("&"))
            added += [p for p in urlsplit(after.url).query.split("&") if p and p not in old_query]
        return [self._redactor.fingerprint(value) for value in added]

    def _base_detail(
        self, connection: Connection, request: PreparedRequest
    ) -> dict[str, JsonValue]:
        scheme, host, port = origin(request.url)
        return {
            "connection": connection.id,
            "operation_id": request.operation_id,
            "method": request.method,
            "host": host if port == {"http": 80, "https": 443}.get(scheme) else f"{host}:{port}",
            "path_template": self._redactor.mask_text(request.path_template),
        }

    async def _record(
        self,
        principal: Principal,
        action: str,
        connection: Connection,
        detail: dict[str, JsonValue],
        *,
        outcome: Outcome = "ok",
        must: bool = False,
    ) -> None:
        event = AuditEvent(
            action=action,
            actor=principal.id,
            tenant=principal.tenant,
            outcome=outcome,
            target=f"{connection.id}:{detail['operation_id']}",
            detail=detail,
        )
        try:
            await self._audit.record(event)
        except Exception as exc:
            # The sink's own message may quote the event; only its type is shown.
            what = "the call was not sent" if must else "the call was made but is unaudited"
            raise ExecutionError(
                f"{detail['operation_id']}: the audit sink could not record {action} "
                f"({type(exc).__name__}); {what}. Fix the audit sink before calling again",
                operation_id=str(detail["operation_id"]),
            ) from None
