"""Attaching a connection's credentials to a prepared request, only for its own host.

`attach_credentials` picks the first security alternative of the operation that the
connection can satisfy, reads the secrets of the acting principal from the `SecretStore`,
teaches them to the `Redactor`, and returns a new request plus the names of the headers that
carry credentials, so the caller strips them on a cross-host redirect. No error message ever
holds a secret: they name schemes, fields and secret names only.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlsplit, urlunsplit

from apiq.catalog import Catalog, SecurityScheme
from apiq.connections.model import ApiKeyAuth, AuthConfig, BasicAuth, BearerAuth, Connection
from apiq.errors import ConfigurationError, PolicyViolation

if TYPE_CHECKING:
    from apiq.calls import PreparedRequest
    from apiq.models import Principal
    from apiq.ports import SecretStore
    from apiq.redaction import Redactor

__all__ = ["AuthKind", "attach_credentials", "chosen_schemes", "default_auth_kinds", "origin"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Header names and cookie values must stay one token; a secret is refused, not repaired.
_FORBIDDEN: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class AuthKind:
    """What a UI or CLI must ask for to configure one security scheme."""

    scheme: str
    """Name in the spec's securitySchemes."""
    kind: str
    """`api_key`, `http_basic`, `http_bearer`, `oauth2`, `openid_connect`, `mutual_tls`, or
    `unsupported` (an `http` scheme other than basic/bearer, or an unknown type)."""
    location: str | None = None
    """For `api_key`: `header`, `query` or `cookie`."""
    parameter_name: str | None = None
    """For `api_key`: the header, query parameter or cookie name."""
    fields: tuple[str, ...] = ()
    """Values to collect: `api_key`; `token`; `username`, `password`; empty for flows that
    OAuth handles and for unsupported kinds."""
    description: str = ""


def _kind(scheme: SecurityScheme) -> AuthKind:
    name, desc = scheme.name, scheme.description
    if scheme.type == "apiKey":
        return AuthKind(name, "api_key", scheme.location, scheme.parameter_name, ("api_key",), desc)
    if scheme.type == "http":
        http = (scheme.scheme or "").lower()
        if http == "basic":
            return AuthKind(name, "http_basic", fields=("username", "password"), description=desc)
        if http == "bearer":
            return AuthKind(name, "http_bearer", fields=("token",), description=desc)
    kinds = {"oauth2": "oauth2", "openIdConnect": "openid_connect", "mutualTLS": "mutual_tls"}
    return AuthKind(name, kinds.get(scheme.type, "unsupported"), description=desc)


def default_auth_kinds(catalog: Catalog) -> Mapping[str, AuthKind]:
    """Every security scheme of `catalog`, by name, with the fields it needs."""
    return {name: _kind(scheme) for name, scheme in catalog.security_schemes.items()}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of `url`, lower-cased, default ports filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


# A connection's base URL is configuration, the same on every call (and holds no secret,
# unlike a request URL with an API key in its query): its origin is parsed once.
_registered_origin = functools.lru_cache(maxsize=256)(origin)


def chosen_schemes(
    connection: Connection, catalog: Catalog, operation_id: str
) -> tuple[str, ...] | None:
    """Scheme names of the first alternative the connection satisfies; () for no auth; None
    when it satisfies none. `attach_credentials` attaches exactly these."""
    operation = catalog.operation(operation_id)
    alternatives = operation.security if operation.security is not None else catalog.security
    if not alternatives:
        return ()
    for alternative in alternatives:
        if all(name in connection.auth for name in alternative):
            return tuple(alternative)
    return None


def _unsatisfied(connection: Connection, catalog: Catalog, operation_id: str) -> ConfigurationError:
    operation = catalog.operation(operation_id)
    alternatives = operation.security if operation.security is not None else catalog.security
    accepted = " or ".join(" + ".join(alt) for alt in alternatives)
    configured = ", ".join(sorted(connection.auth)) or "none"
    return ConfigurationError(
        f"{catalog.name}.{operation_id} needs credentials for {accepted}; connection "
        f"{connection.id!r} configures {configured}. Configure one of these schemes"
    )


async def _read(secrets: SecretStore, principal: Principal, config: AuthConfig, what: str) -> str:
    raw = await secrets.get(principal, config.secret_name)
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"{what} stored as {config.secret_name!r} is not UTF-8 text; store it again"
        ) from None
    if not value or _FORBIDDEN.search(value):
        raise ConfigurationError(
            f"{what} stored as {config.secret_name!r} is empty or holds control characters "
            "(CR, LF, ...); store it again without them"
        )
    return value


_EXPECTED_KIND: Final[dict[type, str]] = {
    ApiKeyAuth: "api_key",
    BearerAuth: "http_bearer",
    BasicAuth: "http_basic",
}


def _check_kind(config: AuthConfig, scheme: SecurityScheme | None, where: str) -> AuthKind:
    if scheme is None:
        raise ConfigurationError(f"{where}: the spec defines no security scheme of that name")
    kind = _kind(scheme)
    if _EXPECTED_KIND[type(config)] != kind.kind:
        raise ConfigurationError(
            f"{where}: the spec's scheme is {kind.kind}, but the connection configures "
            f"{type(config).__name__}; configure the matching kind"
        )
    return kind


def _without(pairs: tuple[tuple[str, str], ...], name: str) -> list[tuple[str, str]]:
    return [(key, value) for key, value in pairs if key.lower() != name.lower()]


async def _credential(
    config: AuthConfig,
    kind: AuthKind,
    where: str,
    *,
    principal: Principal,
    secrets: SecretStore,
    redactor: Redactor | None,
) -> tuple[str, str, str]:
    """(location, name, value) of one scheme's credential, its secret taught to `redactor`."""
    if isinstance(config, BasicAuth):
        password = await _read(secrets, principal, config, f"{where} password")
        if redactor is not None:
            redactor.register_basic(config.username, password)
        token = base64.b64encode(f"{config.username}:{password}".encode()).decode("ascii")
        return "header", "Authorization", f"Basic {token}"
    if isinstance(config, BearerAuth):
        token = await _read(secrets, principal, config, f"{where} bearer token")
        if redactor is not None:
            redactor.register(token)
        return "header", "Authorization", f"Bearer {token}"
    param = kind.parameter_name or ""
    if not param or _FORBIDDEN.search(param):
        raise ConfigurationError(f"{where}: the spec gives no usable apiKey parameter name")
    if kind.location not in ("header", "query", "cookie"):
        raise ConfigurationError(
            f"{where}: apiKey location {kind.location!r} is not header, query or cookie"
        )
    key = await _read(secrets, principal, config, f"{where} API key")
    if redactor is not None:
        redactor.register(key)
    return kind.location, param, key


async def attach_credentials(
    connection: Connection,
    catalog: Catalog,
    operation_id: str,
    request: PreparedRequest,
    *,
    principal: Principal,
    secrets: SecretStore,
    redactor: Redactor | None = None,
) -> tuple[PreparedRequest, tuple[str, ...]]:
    """Return `request` with the connection's credentials for `operation_id` attached.

    The operation's security (or the API default when it sets none) is a list of
    alternatives; the first whose schemes are all configured on `connection` is used, and an
    empty alternative means no credentials at all.

    Args:
        connection: The connection to call through; `principal` must own it.
        catalog: The connection's API.
        operation_id: The operation `request` was built for.
        request: Built by `apiq.calls.build_request` from `connection.base_url`.
        principal: Who acts; secrets are read under this principal only.
        secrets: Where the credential values live.
        redactor: Learns every attached secret, so logs and results mask it.

    Returns:
        The new request and the names of the headers that carry credentials
        (`Authorization`, API-key headers, `Cookie`), to strip on a cross-host redirect.

    Raises:
        OperationNotFound: The catalog has no such operation.
        ConfigurationError: The connection is for another catalog, no alternative is
            configured (the message lists the accepted schemes), a config does not match its
            scheme's kind, or a stored value is unusable.
        PolicyViolation: `principal` does not own the connection, or the request goes to
            another scheme, host or port than `connection.base_url`.
        SecretNotFound, SecretUnreadable: From the store.
    """
    if connection.catalog != catalog.name:
        raise ConfigurationError(
            f"connection {connection.id!r} is for API {connection.catalog!r}, not "
            f"{catalog.name!r}; use that API's connection"
        )
    chosen = chosen_schemes(connection, catalog, operation_id)
    if chosen is None:
        raise _unsatisfied(connection, catalog, operation_id)
    if not chosen:
        return request, ()
    if not connection.owned_by(principal):
        raise PolicyViolation(
            f"connection {connection.id!r} belongs to another principal; "
            f"{principal.id!r} cannot use its credentials"
        )
    target_origin = origin(request.url)
    if target_origin != _registered_origin(connection.base_url):
        target = "{}://{}:{}".format(*target_origin)
        raise PolicyViolation(
            f"{catalog.name}.{operation_id}: refusing to attach credentials of connection "
            f"{connection.id!r} to {target}; they attach only to {connection.base_url!r}"
        )
    headers = list(request.headers)
    cookies = list(request.cookies)
    query: list[str] = []
    carriers: list[str] = []
    for name in chosen:
        config = connection.auth[name]
        where = f"{catalog.name}.{operation_id}: scheme {name!r}"
        kind = _check_kind(config, catalog.security_schemes.get(name), where)
        location, param, value = await _credential(
            config, kind, where, principal=principal, secrets=secrets, redactor=redactor
        )
        if location == "query":
            query.append(f"{quote(param, safe='')}={quote(value, safe='')}")
        elif location == "cookie":
            cookies = [*_without(tuple(cookies), param), (param, quote(value, safe=""))]
            carriers.append("Cookie")
        else:
            if param.lower() in (carrier.lower() for carrier in carriers):
                raise ConfigurationError(
                    f"{where}: two schemes of one requirement both set {param}; "
                    "the API's security cannot be satisfied by one request"
                )
            # A credential replaces a header parameter of the same name (OpenAPI ignores
            # `Authorization` parameters), so exactly one value is sent.
            headers = [*_without(tuple(headers), param), (param, value)]
            carriers.append(param)
    url = request.url
    if query:
        parts = urlsplit(url)
        joined = "&".join(filter(None, [parts.query, *query]))
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))
    attached = replace(request, url=url, headers=tuple(headers), cookies=tuple(cookies))
    return attached, tuple(dict.fromkeys(carriers))
