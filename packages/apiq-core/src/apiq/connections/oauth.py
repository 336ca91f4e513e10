"""OAuth 2.0 for connections: authorization code with PKCE and state, client credentials,
refresh before expiry and once after a 401, single-flight, rotation, revocation.

Tokens live only in the `SecretStore` (`TokenSlots` in `apiq.connections.oauth_tokens`
names the fields and the write order that keeps a rotated refresh token safe). Every
endpoint is reached through the borrowed egress client, so the egress policy guards token
and revocation URLs like any other outbound request. One `anyio.Lock` per (principal,
connection, scheme) makes refreshes single-flight: callers that meet an expired token
together cause one token request, and the rest read what it stored.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

import anyio
import httpx

from apiq.connections.oauth_config import OAuthConfig, PendingAuthorization, begin_authorization
from apiq.connections.oauth_tokens import (
    TokenSlots,
    parse_token_response,
    post_token_form,
)
from apiq.errors import OAuthReconnectRequired, OAuthTokenError, PolicyViolation
from apiq.models import Principal
from apiq.ports import SecretStore
from apiq.redaction import Redactor

__all__ = [
    "REFRESH_SKEW_SECONDS",
    "OAuthClient",
    "OAuthConfig",
    "OAuthReconnectRequired",
    "OAuthTokenError",
    "PendingAuthorization",
]

REFRESH_SKEW_SECONDS = 30.0
"""A token this close to its expiry is refreshed before use (clock drift and latency)."""


class OAuthClient:
    """Runs OAuth 2.0 flows for connections and hands out valid access tokens.

    Args:
        client: A borrowed egress client (`apiq.egress.egress_client`); not closed here.
        secrets: Where tokens and client secrets are stored, encrypted.
        clock: Epoch seconds now; inject one to test expiry without sleeping.
        redactor: When given, every token obtained is registered to be masked.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        secrets: SecretStore,
        clock: Callable[[], float] = time.time,
        redactor: Redactor | None = None,
    ) -> None:
        self._client = client
        self._secrets = secrets
        self._clock = clock
        self._redactor = redactor
        self._locks: dict[tuple[str, str, str, str], anyio.Lock] = {}

    def __repr__(self) -> str:
        return f"OAuthClient(connections={len(self._locks)})"

    def authorization_url(
        self, config: OAuthConfig, *, redirect_uri: str, scopes: tuple[str, ...] | None = None
    ) -> tuple[str, PendingAuthorization]:
        """The URL to send the user to and the `PendingAuthorization` to keep (see
        `apiq.connections.oauth_config.begin_authorization`)."""
        return begin_authorization(config, redirect_uri=redirect_uri, scopes=scopes)

    async def exchange_code(
        self,
        principal: Principal,
        connection_id: str,
        config: OAuthConfig,
        pending: PendingAuthorization,
        *,
        code: str,
        state: str,
        redirect_uri: str,
    ) -> None:
        """Check `state`, trade `code` (with the PKCE verifier) for tokens and store them.

        Raises:
            PolicyViolation: `state` or `redirect_uri` differ from the pending authorization
                (a forged or replayed callback); nothing was sent.
            OAuthReconnectRequired: The server refused the code (invalid_grant).
            OAuthTokenError: Any other token endpoint failure.
        """
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise PolicyViolation(
                f"OAuth callback for connection {connection_id!r} carries a state that does not "
                "match the authorization it claims to answer (possible CSRF); start again."
            )
        if redirect_uri != pending.redirect_uri:
            raise PolicyViolation(
                f"OAuth callback for connection {connection_id!r} uses another redirect_uri "
                "than its authorization; pass the one given to authorization_url()."
            )
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        async with self._lock(principal, connection_id, config):
            await self._obtain(principal, connection_id, config, form, "authorization_code")

    async def client_credentials(
        self, principal: Principal, connection_id: str, config: OAuthConfig
    ) -> None:
        """Obtain a token with the client credentials grant and store it."""
        async with self._lock(principal, connection_id, config):
            await self._client_credentials(principal, connection_id, config)

    async def access_token(
        self, principal: Principal, connection_id: str, config: OAuthConfig
    ) -> str:
        """A valid access token, refreshed first when it expires within the skew.

        Concurrent callers meeting an expired token share one token request.

        Raises:
            OAuthReconnectRequired: Nothing usable is stored, or the refresh met
                invalid_grant (stored tokens are then deleted).
            OAuthTokenError: The refresh failed otherwise; stored tokens are kept.
        """
        slots = self._slots(principal, connection_id, config)
        token = await slots.fresh(self._clock(), REFRESH_SKEW_SECONDS)
        if token is not None:
            return token
        async with self._lock(principal, connection_id, config):
            # Whoever held the lock before may have refreshed already.
            token = await slots.fresh(self._clock(), REFRESH_SKEW_SECONDS)
            if token is not None:
                return token
            return await self._renew(principal, connection_id, config)

    async def on_unauthorized(
        self, principal: Principal, connection_id: str, config: OAuthConfig, *, rejected: str
    ) -> str:
        """After the API answered 401 to `rejected`, refresh once and return the new token.

        Single-flight: callers whose rejected token was already replaced get the
        replacement without another request. Retry the call once with the result; a second
        401 is the API's answer, not a reason to refresh again.

        Raises:
            OAuthReconnectRequired, OAuthTokenError: as for `access_token`.
        """
        async with self._lock(principal, connection_id, config):
            current = await self._slots(principal, connection_id, config).get("access_token")
            if current is not None and not hmac.compare_digest(current, rejected):
                return current
            return await self._renew(principal, connection_id, config)

    async def revoke(self, principal: Principal, connection_id: str, config: OAuthConfig) -> None:
        """Disconnect: revoke at the provider (RFC 7009) when it has an endpoint, then delete.

        The refresh token is revoked (which ends its grant), else the access token. Tokens
        are deleted even when revocation fails, and the failure is then raised.

        Raises:
            OAuthTokenError: The revocation endpoint failed (tokens are deleted anyway).
        """
        slots = self._slots(principal, connection_id, config)
        async with self._lock(principal, connection_id, config):
            try:
                if config.revocation_url is not None:
                    await self._revoke_remote(principal, slots, connection_id, config)
            finally:
                await slots.forget()

    # --- internals ---------------------------------------------------------------------

    def _slots(self, principal: Principal, connection_id: str, config: OAuthConfig) -> TokenSlots:
        return TokenSlots(self._secrets, principal, connection_id, config.scheme)

    def _lock(self, principal: Principal, connection_id: str, config: OAuthConfig) -> anyio.Lock:
        key = (principal.tenant, principal.id, connection_id, config.scheme)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Lock()
        return lock

    async def _renew(self, principal: Principal, connection_id: str, config: OAuthConfig) -> str:
        """Refresh, or redo client credentials; the caller holds the lock."""
        slots = self._slots(principal, connection_id, config)
        refresh = await slots.get("refresh_token")
        grant = await slots.get("grant")
        if refresh is not None:
            form = {"grant_type": "refresh_token", "refresh_token": refresh}
            try:
                return await self._obtain(
                    principal, connection_id, config, form, grant or "authorization_code"
                )
            except OAuthReconnectRequired:
                await slots.forget()
                raise
        never_connected = grant is None and config.authorization_url is None
        if grant == "client_credentials" or (never_connected and config.client_secret_name):
            return await self._client_credentials(principal, connection_id, config)
        raise OAuthReconnectRequired(
            f"Connection {connection_id!r} has no usable OAuth token for {config.scheme!r} "
            "(never connected, disconnected, or expired without a refresh token); the user "
            "must connect (authorize) again.",
            connection_id=connection_id,
            scheme=config.scheme,
            error=None,
        )

    async def _client_credentials(
        self, principal: Principal, connection_id: str, config: OAuthConfig
    ) -> str:
        form = {"grant_type": "client_credentials"}
        if config.scopes:
            form["scope"] = " ".join(config.scopes)
        return await self._obtain(principal, connection_id, config, form, "client_credentials")

    async def _client_secret(self, principal: Principal, config: OAuthConfig) -> str | None:
        if config.client_secret_name is None:
            return None
        return (await self._secrets.get(principal, config.client_secret_name)).decode("utf-8")

    async def _obtain(
        self,
        principal: Principal,
        connection_id: str,
        config: OAuthConfig,
        form: dict[str, str],
        grant: str,
    ) -> str:
        """POST `form` to the token endpoint, store the answer, return the access token."""
        client_secret = await self._client_secret(principal, config)
        status, body = await post_token_form(
            self._client,
            config.token_url,
            form,
            client_id=config.client_id,
            client_secret=client_secret,
            client_auth=config.client_auth,
            what="token endpoint",
        )
        tokens = parse_token_response(
            status,
            body,
            url=config.token_url,
            connection_id=connection_id,
            scheme=config.scheme,
            secrets=(*form.values(), client_secret or ""),
        )
        if self._redactor is not None:
            for value in (tokens.access_token, tokens.refresh_token):
                if value:
                    self._redactor.register(value)
        slots = self._slots(principal, connection_id, config)
        keep = form["grant_type"] == "refresh_token"
        await slots.store(tokens, grant=grant, now=self._clock(), keep_refresh=keep)
        return tokens.access_token

    async def _revoke_remote(
        self, principal: Principal, slots: TokenSlots, connection_id: str, config: OAuthConfig
    ) -> None:
        assert config.revocation_url is not None
        token, hint = await slots.get("refresh_token"), "refresh_token"
        if token is None:
            token, hint = await slots.get("access_token"), "access_token"
        if token is None:
            return
        status, _ = await post_token_form(
            self._client,
            config.revocation_url,
            {"token": token, "token_type_hint": hint},
            client_id=config.client_id,
            client_secret=await self._client_secret(principal, config),
            client_auth=config.client_auth,
            what="revocation endpoint",
        )
        if status != 200:  # RFC 7009 §2.2: 200 even for unknown tokens
            raise OAuthTokenError(
                f"The revocation endpoint {config.revocation_url} answered HTTP {status} for "
                f"connection {connection_id!r}; the stored tokens were deleted, but the "
                "grant may still be live at the provider: revoke it in its console.",
                status_code=status,
            )
