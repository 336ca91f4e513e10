"""What a connection is: one catalog, the chosen server, auth configuration and an owner.

Configuration objects hold names, never secrets: every credential value lives in the
`SecretStore`, under the connection owner's principal and a name of the form
`<connection_id>/<scheme>/<field>` (see `secret_name`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit

from apiq.catalog import Catalog, Server
from apiq.errors import ConfigurationError
from apiq.models import Principal

__all__ = [
    "ApiKeyAuth",
    "AuthConfig",
    "BasicAuth",
    "BearerAuth",
    "Connection",
    "ServerChoice",
    "absolute_http_url",
    "secret_name",
]

_CONNECTION_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_VARIABLE: Final = re.compile(r"\{([^{}]*)\}")


def absolute_http_url(url: str, *, what: str) -> str:
    """Return `url` unchanged when it is an absolute http(s) URL with a host.

    Raises:
        ConfigurationError: Otherwise, naming `what` the URL is.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - evaluated for its ValueError on a bad port
    except ValueError as exc:
        raise ConfigurationError(f"{what} {url!r:.200} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ConfigurationError(
            f"{what} {url!r:.200} must be an absolute http(s) URL with a host; pass "
            "base_url='https://host/base' to choose one"
        )
    return url


def secret_name(connection_id: str, scheme: str, field: str) -> str:
    """The SecretStore name of one credential field: `<connection_id>/<scheme>/<field>`.

    Fields are `api_key` (apiKey), `token` (bearer) and `password` (basic).
    """
    return f"{connection_id}/{scheme}/{field}"


@dataclass(frozen=True, slots=True)
class ServerChoice:
    """Which of a catalog's servers a connection calls, and with which variables."""

    index: int = 0
    """Position in `Catalog.servers`."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Server variable values; variables not given take the spec's default."""
    base_url: str | None = None
    """Used verbatim instead of the spec's server (required when that one is relative)."""

    def resolve(self, catalog: Catalog) -> str:
        """The absolute http(s) base URL this choice gives for `catalog`.

        Raises:
            ConfigurationError: Index out of range, an unknown variable, a value outside the
                variable's enum, a relative server without `base_url`, or a non-http(s) URL.
        """
        if self.base_url is not None:
            return absolute_http_url(self.base_url, what="base_url")
        servers = catalog.servers
        if not 0 <= self.index < len(servers):
            raise ConfigurationError(
                f"{catalog.name}: server index {self.index} is out of range; the spec lists "
                f"{len(servers)} server(s): {', '.join(s.url for s in servers)[:300]}"
            )
        server = servers[self.index]
        url = _substitute(server, self.variables, catalog.name)
        if not urlsplit(url).scheme:
            raise ConfigurationError(
                f"{catalog.name}: server {url!r:.200} is relative (the spec gives no host); "
                "pass base_url='https://host/base' to say where the API lives"
            )
        return absolute_http_url(url, what=f"{catalog.name}: server")


def _substitute(server: Server, values: Mapping[str, str], api: str) -> str:
    for name in values:
        if name not in server.variables:
            known = ", ".join(sorted(server.variables)) or "none"
            raise ConfigurationError(
                f"{api}: server {server.url!r:.200} has no variable {name!r:.100}; "
                f"its variables: {known}"
            )
    chosen: dict[str, str] = {}
    for name, variable in server.variables.items():
        value = values.get(name, variable.default)
        if variable.enum and value not in variable.enum:
            raise ConfigurationError(
                f"{api}: server variable {name!r} = {value!r:.100} is not allowed; "
                f"choose one of: {', '.join(variable.enum)}"
            )
        chosen[name] = value

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name not in chosen:
            raise ConfigurationError(
                f"{api}: server {server.url!r:.200} uses {{{name}}} but does not define it; "
                "pass base_url= instead"
            )
        return chosen[name]

    return _VARIABLE.sub(replace, server.url)


@dataclass(frozen=True, slots=True)
class ApiKeyAuth:
    """An `apiKey` scheme: the key goes into the header, query or cookie the spec names."""

    scheme: str
    """Name of the scheme in the spec's securitySchemes."""
    secret_name: str
    """SecretStore name of the key."""


@dataclass(frozen=True, slots=True)
class BearerAuth:
    """An `http` scheme with `bearer`: sent as `Authorization: Bearer <token>`."""

    scheme: str
    secret_name: str
    """SecretStore name of the token."""


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """An `http` scheme with `basic`: sent as `Authorization: Basic base64(user:password)`."""

    scheme: str
    username: str
    """Not a secret; must not contain `:` (RFC 7617)."""
    secret_name: str
    """SecretStore name of the password."""


AuthConfig = ApiKeyAuth | BearerAuth | BasicAuth
"""Every auth configuration a connection holds for one security scheme."""


@dataclass(frozen=True, slots=True)
class Connection:
    """One principal's configured access to one API.

    Args:
        id: 1-64 characters of `A-Z a-z 0-9 _ . -`; prefixes every secret name.
        tenant: Tenant of the owning principal.
        owner_id: Id of the owning principal; only they can use its credentials.
        catalog: `Catalog.name` of the API.
        base_url: Absolute http(s) base URL (`ServerChoice.resolve`); credentials attach
            only to its scheme, host and port.
        auth: Security scheme name -> its configuration.

    Raises:
        ConfigurationError: Bad id or base URL, an auth key that is not its config's scheme,
            a secret name outside `<id>/`, or a basic username with `:`.
    """

    id: str
    tenant: str
    owner_id: str
    catalog: str
    base_url: str
    auth: Mapping[str, AuthConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _CONNECTION_ID.fullmatch(self.id):
            raise ConfigurationError(
                f"connection id {self.id!r:.100} must be 1-64 characters of A-Z a-z 0-9 _ . -"
            )
        absolute_http_url(self.base_url, what=f"connection {self.id!r}: base_url")
        for scheme, config in self.auth.items():
            if config.scheme != scheme:
                raise ConfigurationError(
                    f"connection {self.id!r}: auth[{scheme!r}] configures scheme "
                    f"{config.scheme!r}; key each config by its own scheme name"
                )
            if not config.secret_name.startswith(f"{self.id}/"):
                raise ConfigurationError(
                    f"connection {self.id!r}: secret name {config.secret_name!r:.200} of scheme "
                    f"{scheme!r} must start with {self.id + '/'!r}; use secret_name()"
                )
            if isinstance(config, BasicAuth) and ":" in config.username:
                raise ConfigurationError(
                    f"connection {self.id!r}: basic username of scheme {scheme!r} must not "
                    "contain ':' (RFC 7617)"
                )
        object.__setattr__(self, "auth", MappingProxyType(dict(self.auth)))

    def owned_by(self, principal: Principal) -> bool:
        """True when `principal` is this connection's owner."""
        return (principal.tenant, principal.id) == (self.tenant, self.owner_id)
