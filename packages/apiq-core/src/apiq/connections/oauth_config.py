"""OAuth 2.0 configuration of a connection, and the start of the authorization code flow.

`OAuthConfig` names the endpoints, the client and its scopes (the client secret lives in
the SecretStore); `begin_authorization` builds the URL the user is sent to, with a state of
256 random bits and a PKCE S256 challenge (RFC 7636), and the `PendingAuthorization` to
keep server-side until the callback arrives.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Literal

import httpx

from apiq.connections.model import absolute_http_url
from apiq.errors import ConfigurationError

__all__ = ["ClientAuth", "OAuthConfig", "PendingAuthorization", "begin_authorization"]

ClientAuth = Literal["client_secret_basic", "client_secret_post"]
"""How a confidential client authenticates at the token endpoint (RFC 6749 §2.3.1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthConfig:
    """One OAuth 2.0 security scheme of a connection: endpoints, client and scopes.

    The client secret is not here: `client_secret_name` names it in the SecretStore (under
    the same principal); None makes a public client, which relies on PKCE alone. Every URL
    is reached through the egress client, so the egress policy guards it.

    Raises:
        ConfigurationError: A URL is not absolute http(s), or `client_auth` is unknown.
    """

    scheme: str
    client_id: str
    token_url: str
    client_secret_name: str | None = None
    authorization_url: str | None = None
    revocation_url: str | None = None
    scopes: tuple[str, ...] = ()
    client_auth: ClientAuth = "client_secret_basic"

    def __post_init__(self) -> None:
        absolute_http_url(self.token_url, what="OAuth token_url")
        if self.authorization_url is not None:
            absolute_http_url(self.authorization_url, what="OAuth authorization_url")
        if self.revocation_url is not None:
            absolute_http_url(self.revocation_url, what="OAuth revocation_url")
        if self.client_auth not in ("client_secret_basic", "client_secret_post"):
            raise ConfigurationError(
                f"client_auth {self.client_auth!r} is not supported; use "
                "'client_secret_basic' or 'client_secret_post'"
            )
        object.__setattr__(self, "scopes", tuple(self.scopes))


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """What `OAuthClient.exchange_code` needs from the authorization step; keep it server-side.

    `state` and `code_verifier` are secrets of this one login and stay out of the repr.
    """

    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str
    scopes: tuple[str, ...]


def begin_authorization(
    config: OAuthConfig, *, redirect_uri: str, scopes: tuple[str, ...] | None = None
) -> tuple[str, PendingAuthorization]:
    """The URL to send the user to, and what to keep until they come back.

    Args:
        config: The scheme; it must have an `authorization_url`.
        redirect_uri: Where the provider sends the user back (registered with it).
        scopes: Scopes to ask for; None asks for `config.scopes`.

    Raises:
        ConfigurationError: The config has no authorization_url, or redirect_uri is not
            an absolute http(s) URL.
    """
    if config.authorization_url is None:
        raise ConfigurationError(
            f"OAuth scheme {config.scheme!r} has no authorization_url; set one to use the "
            "authorization code flow, or use client_credentials()"
        )
    absolute_http_url(redirect_uri, what="OAuth redirect_uri")
    chosen = tuple(config.scopes if scopes is None else scopes)
    # 256 bits of state; an 86-character verifier (RFC 7636 allows 43-128).
    state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": challenge.rstrip(b"=").decode("ascii"),
        "code_challenge_method": "S256",
    }
    if chosen:
        params["scope"] = " ".join(chosen)
    url = httpx.URL(config.authorization_url).copy_merge_params(params)
    return str(url), PendingAuthorization(state, verifier, redirect_uri, chosen)
