"""From "here is my key" to stored secrets and auth configuration, for `Apiq.connect`.

A user names a security scheme of the spec and gives its value: a string for an API key or
a bearer token, a `(username, password)` pair for basic auth. The value goes into the
SecretStore under the connection's own name (`secret_name`), and the connection keeps only
that name. Anything else is refused with the list of schemes the spec offers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from apiq.connections.auth import default_auth_kinds
from apiq.connections.model import ApiKeyAuth, AuthConfig, BasicAuth, BearerAuth, secret_name
from apiq.errors import ConfigurationError

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.models import Principal
    from apiq.ports import SecretStore

__all__ = ["Credential", "store_credentials"]

Credential = str | tuple[str, str]
"""An API key or bearer token, or a (username, password) pair for basic auth."""


async def store_credentials(
    secrets: SecretStore,
    principal: Principal,
    connection_id: str,
    catalog: Catalog,
    auth: Mapping[str, Credential],
) -> dict[str, AuthConfig]:
    """Store each credential of `auth` (scheme name -> value); return the auth configuration.

    Raises:
        ConfigurationError: An unknown scheme, a value of the wrong shape for its scheme, or
            a scheme APIQ configures another way (OAuth 2.0 / OpenID Connect: `OAuthClient`).
    """
    kinds = default_auth_kinds(catalog)
    configs: dict[str, AuthConfig] = {}
    for scheme, value in auth.items():
        kind = kinds.get(scheme)
        if kind is None:
            offered = ", ".join(f"{n} ({k.kind})" for n, k in kinds.items()) or "none"
            raise ConfigurationError(
                f"{catalog.name}: the spec has no security scheme {scheme!r} (it offers: {offered})"
            )
        if kind.kind in ("api_key", "http_bearer"):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(
                    f"{catalog.name}: scheme {scheme!r} ({kind.kind}) takes the key or token "
                    "as a non-empty string"
                )
            field = "api_key" if kind.kind == "api_key" else "token"
            name = secret_name(connection_id, scheme, field)
            await secrets.put(principal, name, value.encode())
            configs[scheme] = (
                ApiKeyAuth(scheme, name) if kind.kind == "api_key" else BearerAuth(scheme, name)
            )
        elif kind.kind == "http_basic":
            if not (isinstance(value, tuple) and len(value) == 2 and all(value)):
                raise ConfigurationError(
                    f"{catalog.name}: scheme {scheme!r} (basic) takes a (username, password) pair"
                )
            name = secret_name(connection_id, scheme, "password")
            await secrets.put(principal, name, value[1].encode())
            configs[scheme] = BasicAuth(scheme, value[0], name)
        else:
            raise ConfigurationError(
                f"{catalog.name}: scheme {scheme!r} is {kind.kind}; connect it with "
                "apiq.connections.OAuthClient (authorization code or client credentials)"
            )
    return configs
