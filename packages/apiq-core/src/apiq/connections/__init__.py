"""Connections: one principal's configured access to one API.

A `Connection` is a catalog, the chosen server (`ServerChoice` resolves the base URL with its
variables), auth configuration per security scheme and an owner. Configuration holds secret
*names*; the values live in the `SecretStore`. `default_auth_kinds` tells a UI or CLI what to
ask for; `attach_credentials` adds the credentials of the first satisfiable security
alternative to a `PreparedRequest`, only for the connection's own host. `OAuthClient` runs
OAuth 2.0 (authorization code with PKCE and state, client credentials, single-flight refresh
with rotated refresh tokens, revocation), keeping tokens in the same SecretStore.
"""

from __future__ import annotations

from apiq.connections.auth import AuthKind, attach_credentials, default_auth_kinds
from apiq.connections.model import (
    ApiKeyAuth,
    AuthConfig,
    BasicAuth,
    BearerAuth,
    Connection,
    ServerChoice,
    absolute_http_url,
    secret_name,
)
from apiq.connections.oauth import OAuthClient
from apiq.connections.oauth_config import OAuthConfig, PendingAuthorization
from apiq.connections.oidc import (
    OpenIdConfiguration,
    discover_openid_configuration,
    oauth_config_from_discovery,
)
from apiq.errors import OAuthReconnectRequired, OAuthTokenError

__all__ = [
    "ApiKeyAuth",
    "AuthConfig",
    "AuthKind",
    "BasicAuth",
    "BearerAuth",
    "Connection",
    "OAuthClient",
    "OAuthConfig",
    "OAuthReconnectRequired",
    "OAuthTokenError",
    "OpenIdConfiguration",
    "PendingAuthorization",
    "ServerChoice",
    "absolute_http_url",
    "attach_credentials",
    "default_auth_kinds",
    "discover_openid_configuration",
    "oauth_config_from_discovery",
    "secret_name",
]
