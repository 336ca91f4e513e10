"""Talking to an OAuth 2.0 token endpoint: one form POST, one parsed answer (RFC 6749 §5).

`post_token_form` sends a form to a token or revocation endpoint through the borrowed
egress client (so the egress policy guards the URL) with the client's authentication, and
`parse_token_response` turns the answer into a `TokenResponse` or a typed error. Error
text never carries a token, code, verifier or client secret: whatever the server echoes
back is cut out before it reaches a message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote_plus

import httpx

from apiq.connections.model import secret_name
from apiq.errors import OAuthReconnectRequired, OAuthTokenError, SecretNotFound
from apiq.models import Principal
from apiq.ports import SecretStore

__all__ = [
    "MAX_TOKEN_RESPONSE_BYTES",
    "TokenResponse",
    "TokenSlots",
    "parse_token_response",
    "post_token_form",
]

MAX_TOKEN_RESPONSE_BYTES: Final = 64 * 1024
"""Largest token endpoint answer read; real ones are well under 4 KB."""


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """A successful token response; token values are left out of the repr."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: float | None
    scope: str | None


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[REDACTED]")
    return text[:200]


async def post_token_form(
    client: httpx.AsyncClient,
    url: str,
    form: Mapping[str, str],
    *,
    client_id: str,
    client_secret: str | None,
    client_auth: str,
    what: str,
) -> tuple[int, bytes]:
    """POST `form` to `url` with client authentication; returns (status, body bytes).

    `client_secret_basic` form-encodes id and secret into HTTP basic (RFC 6749 §2.3.1);
    `client_secret_post` puts both in the body; a public client (no secret) sends its id.
    Redirects are not followed: a token endpoint that redirects is misconfigured.

    Raises:
        EgressDenied: The egress policy refused `url`.
        OAuthTokenError: The endpoint could not be reached or its answer was too large.
    """
    body = dict(form)
    headers = {"Accept": "application/json"}
    if client_secret is not None and client_auth == "client_secret_basic":
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    else:
        body["client_id"] = client_id
        if client_secret is not None:
            body["client_secret"] = client_secret
    try:
        request = client.build_request("POST", url, data=body, headers=headers)
        response = await client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_TOKEN_RESPONSE_BYTES:
                    raise OAuthTokenError(
                        f"The {what} at {url} answered more than {MAX_TOKEN_RESPONSE_BYTES} "
                        "bytes; check the configured endpoint URL.",
                        status_code=response.status_code,
                    )
                chunks.append(chunk)
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        raise OAuthTokenError(
            f"The {what} at {url} could not be reached ({type(exc).__name__}); check the URL "
            "and that the provider is up, then retry."
        ) from None  # the httpx error may hold the request, and the request the secret
    return response.status_code, b"".join(chunks)


def parse_token_response(
    status: int,
    body: bytes,
    *,
    url: str,
    connection_id: str,
    scheme: str,
    secrets: Iterable[str],
) -> TokenResponse:
    """Read a token endpoint's answer (RFC 6749 §5.1 and §5.2).

    Args:
        secrets: Values sent in the request (code, verifier, tokens, client secret); any the
            server echoes in an error description are masked.

    Raises:
        OAuthReconnectRequired: The server said `invalid_grant`.
        OAuthTokenError: Any other error, or a success without a usable bearer token.
    """
    secrets = tuple(secrets)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise OAuthTokenError(
            f"The token endpoint {url} answered HTTP {status} without a JSON object; check "
            "that token_url is the provider's token endpoint.",
            status_code=status,
        )
    if status != 200 or "error" in data:
        error = data.get("error") if isinstance(data.get("error"), str) else None
        described = data.get("error_description")
        detail = f": {_scrub(described, secrets)}" if isinstance(described, str) else ""
        if error == "invalid_grant":
            raise OAuthReconnectRequired(
                f"The OAuth grant of connection {connection_id!r} ({scheme}) is no longer valid "
                f"(invalid_grant{detail}); the user must reconnect (authorize again).",
                connection_id=connection_id,
                scheme=scheme,
                error=error,
            )
        shown = _scrub(error, secrets) if error else "no error code"
        raise OAuthTokenError(
            f"The token endpoint {url} refused the request with HTTP {status} ({shown}"
            f"{detail}); check the client id, secret, scopes and client authentication method.",
            error=error,
            status_code=status,
        )
    access = data.get("access_token")
    token_type = data.get("token_type")
    if not isinstance(access, str) or not access:
        raise OAuthTokenError(f"The token endpoint {url} answered without an access_token.")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise OAuthTokenError(
            f"The token endpoint {url} issued a token of type {str(token_type)[:40]!r}; APIQ "
            "supports bearer tokens only."
        )
    refresh = data.get("refresh_token")
    expires = data.get("expires_in")
    if isinstance(expires, str) and expires.isascii() and expires.isdigit():
        expires = int(expires)  # some providers send a numeric string
    if isinstance(expires, bool) or not isinstance(expires, int | float) or expires < 0:
        expires = None  # RFC 6749: RECOMMENDED, not required; unknown means until a 401
    scope = data.get("scope")
    return TokenResponse(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_in=float(expires) if expires is not None else None,
        scope=scope if isinstance(scope, str) else None,
    )


class TokenSlots:
    """The stored token set of one (principal, connection, scheme), read and written in order.

    Fields (`secret_name(connection_id, scheme, field)`): `access_token`, `refresh_token`,
    `expires_at` (epoch seconds, ASCII) and `grant` (`authorization_code` or
    `client_credentials`, so a renewal knows how to renew).
    """

    FIELDS: Final = ("refresh_token", "access_token", "expires_at", "grant")

    def __init__(
        self, store: SecretStore, principal: Principal, connection_id: str, scheme: str
    ) -> None:
        self._store = store
        self._principal = principal
        self._prefix = (connection_id, scheme)

    def _name(self, field_name: str) -> str:
        return secret_name(*self._prefix, field_name)

    async def get(self, field_name: str) -> str | None:
        """The stored field, or None when absent."""
        try:
            raw = await self._store.get(self._principal, self._name(field_name))
        except SecretNotFound:
            return None
        return raw.decode("utf-8")

    async def fresh(self, now: float, skew: float) -> str | None:
        """The access token if one is stored and not within `skew` seconds of expiry."""
        token = await self.get("access_token")
        if token is None:
            return None
        expires_at = await self.get("expires_at")
        try:
            deadline = float(expires_at) if expires_at is not None else None
        except ValueError:
            deadline = 0.0  # unreadable expiry: treat as expired, the refresh rewrites it
        if deadline is not None and now >= deadline - skew:
            return None
        return token

    async def store(
        self, tokens: TokenResponse, *, grant: str, now: float, keep_refresh: bool
    ) -> None:
        """Write a new token set: refresh token first, then access token, expiry, grant.

        A crash in between leaves either the old set or a new refresh token beside an older
        access token (at worst one extra refresh); never an old refresh token with a new
        expiry. Without a new refresh token the old one stays when `keep_refresh` (RFC 6749
        §6: the server MAY rotate), else it is deleted.
        """
        principal = self._principal
        if tokens.refresh_token is not None:
            await self._store.put(
                principal, self._name("refresh_token"), tokens.refresh_token.encode()
            )
        elif not keep_refresh:
            await self._store.delete(principal, self._name("refresh_token"))
        await self._store.put(principal, self._name("access_token"), tokens.access_token.encode())
        if tokens.expires_in is None:
            await self._store.delete(principal, self._name("expires_at"))
        else:
            expires_at = repr(now + tokens.expires_in).encode()
            await self._store.put(principal, self._name("expires_at"), expires_at)
        await self._store.put(principal, self._name("grant"), grant.encode())

    async def forget(self) -> None:
        """Delete every field."""
        for field_name in self.FIELDS:
            await self._store.delete(self._principal, self._name(field_name))
