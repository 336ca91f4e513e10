"""OAuth 2.0 connect: send the user to the provider, then trade the code it returns.

`start` builds the authorization URL (state and PKCE S256 by
`apiq.connections.oauth_config.begin_authorization`) and keeps what the callback needs
(the verifier, redirect URI, connection and scheme) encrypted in the user's SecretStore
under `oauth-pending/<sha256 of state>`, so the callback may land on any server process.
`callback` takes that record (single use, at most `PENDING_TTL_S` old), has the
`OAuthClient` exchange the code (tokens stored encrypted) and marks the scheme connected.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING

from apiq.connections import PendingAuthorization
from apiq.errors import SecretNotFound
from apiq.models import AuditEvent, Principal
from apiq.ports import SecretStore
from apiq_server.errors import Conflict, NotFound
from apiq_server.schemas.apis import OAuthCallbackOut, OAuthStartOut
from apiq_server.services.apis import ApiService
from apiq_server.services.connections import StoredConnection

if TYPE_CHECKING:
    from apiq_server.wiring import Services

__all__ = ["CALLBACK_PATH", "PENDING_TTL_S", "OAuthConnect"]

CALLBACK_PATH = "/api/oauth/callback"
PENDING_TTL_S = 600.0
"""How long an OAuth authorization may take between start and callback."""


class OAuthConnect:
    """The OAuth connect steps of one request.

    Args:
        services: The process's services.
    """

    def __init__(self, services: Services) -> None:
        self._s = services

    async def start(
        self, user: Principal, api_id: str, scheme: str | None, *, redirect_uri: str
    ) -> OAuthStartOut:
        """The provider URL to send the user to, for one oauth2 scheme of the connection.

        Raises:
            NotFound: No such connection of this user.
            Conflict: No such scheme, or none with an authorization URL.
        """
        stored = await ApiService(self._s).owned(user, api_id)
        name = _scheme(stored, scheme)
        oauth = stored.config.schemes[name].oauth
        assert oauth is not None  # _scheme picked an OAuth scheme
        url, pending = self._s.oauth.authorization_url(
            oauth.config(name), redirect_uri=redirect_uri
        )
        record = {
            "connection": api_id,
            "scheme": name,
            "verifier": pending.code_verifier,
            "redirect_uri": pending.redirect_uri,
            "scopes": list(pending.scopes),
            "at": time.time(),
        }
        await self._s.secrets.put(user, _pending_name(pending.state), json.dumps(record).encode())
        await self._record(user, "oauth.started", api_id, name, "ok")
        return OAuthStartOut(authorization_url=url)

    async def callback(
        self, user: Principal, *, state: str, code: str | None, error: str | None
    ) -> OAuthCallbackOut:
        """Finish the connect `state` started: exchange `code` for tokens and store them.

        Raises:
            NotFound: No pending authorization of this user has that state (unknown, used
                or another user's), or the connection was deleted meanwhile.
            Conflict: The authorization expired, or the provider refused (its `error`).
            OAuthReconnectRequired, OAuthTokenError: The token endpoint refused the code.
        """
        api_id, name, pending = await _take_pending(self._s.secrets, user, state)
        service = ApiService(self._s)
        stored = await service.owned(user, api_id)
        scheme = stored.config.schemes.get(name)
        if scheme is None or scheme.oauth is None:
            raise Conflict(f"connection {api_id!r} no longer configures OAuth scheme {name!r}")
        if error is not None or not code:
            await self._record(
                user,
                "oauth.connected",
                api_id,
                name,
                "error",
                provider_error=(error or "no code")[:100],
            )
            raise Conflict(
                f"the provider did not authorize ({(error or 'no code')[:100]}); start again"
            )
        await self._s.oauth.exchange_code(
            user,
            api_id,
            scheme.oauth.config(name),
            pending,
            code=code,
            state=state,
            redirect_uri=pending.redirect_uri,
        )
        connected = scheme.model_copy(
            update={"oauth": scheme.oauth.model_copy(update={"connected": True})}
        )
        config = stored.config.model_copy(
            update={"schemes": {**stored.config.schemes, name: connected}}
        )
        status = await service.save_auth(user, stored, config)
        await self._record(user, "oauth.connected", api_id, name, "ok")
        return OAuthCallbackOut(api_id=api_id, scheme=name, status=status)

    async def _record(
        self, user: Principal, action: str, api_id: str, scheme: str, outcome: str, **extra: str
    ) -> None:
        await self._s.audit.record(
            AuditEvent(
                action=action,
                actor=user.id,
                tenant=user.tenant,
                target=api_id,
                outcome="ok" if outcome == "ok" else "error",
                detail={"scheme": scheme, **extra},
            )
        )


def _scheme(stored: StoredConnection, wanted: str | None) -> str:
    startable = [
        name
        for name, scheme in stored.config.schemes.items()
        if scheme.oauth is not None and scheme.oauth.authorization_url is not None
    ]
    if wanted is not None and wanted in startable:
        return wanted
    if wanted is None and len(startable) == 1:
        return startable[0]
    raise Conflict(
        f"connection {stored.id!r}: choose one of its OAuth schemes with an authorization "
        f"URL: {', '.join(startable) or 'none (configure `oauth` with PUT /api/apis/{id})'}"
    )


def _pending_name(state: str) -> str:
    return "oauth-pending/" + hashlib.sha256(state.encode()).hexdigest()


async def _take_pending(
    secrets: SecretStore, user: Principal, state: str
) -> tuple[str, str, PendingAuthorization]:
    name = _pending_name(state)
    try:
        record = json.loads(await secrets.get(user, name))
    except SecretNotFound:
        raise NotFound("pending OAuth authorization", "of this state") from None
    await secrets.delete(user, name)  # single use, whatever happens next
    if time.time() - float(record["at"]) > PENDING_TTL_S:
        raise Conflict("the OAuth authorization took too long; start the connect again")
    pending = PendingAuthorization(
        state, record["verifier"], record["redirect_uri"], tuple(record["scopes"])
    )
    return record["connection"], record["scheme"], pending
