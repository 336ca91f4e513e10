"""OpenID Connect discovery: an issuer's endpoints, fetched and checked, as an `OAuthConfig`.

`discover_openid_configuration` fetches `{issuer}/.well-known/openid-configuration`
(OpenID Connect Discovery 1.0 §4) through the borrowed egress client, reads at most
`MAX_DISCOVERY_BYTES` decoded bytes, and refuses a document that could redirect credentials:
its `issuer` must be the issuer asked for (§4.3), every endpoint must be https (plain http
only for a loopback test issuer), and a provider that lists its PKCE methods must list
S256. `oauth_config_from_discovery` turns the result into the connection's `OAuthConfig`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from apiq.connections.model import absolute_http_url
from apiq.connections.oauth_config import ClientAuth, OAuthConfig
from apiq.errors import ConfigurationError, ExecutionError, PolicyViolation, SpecError
from apiq.specs.content_encoding import read_bounded

__all__ = [
    "MAX_DISCOVERY_BYTES",
    "WELL_KNOWN_SUFFIX",
    "OpenIdConfiguration",
    "discover_openid_configuration",
    "oauth_config_from_discovery",
]

MAX_DISCOVERY_BYTES = 64 * 1024
"""Largest decoded discovery document read; real ones are 1-5 KB."""
WELL_KNOWN_SUFFIX = "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenIdConfiguration:
    """The parts of a provider's discovery document APIQ uses, already checked."""

    issuer: str
    """The issuer exactly as the document states it (compare ID token `iss` to this)."""
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None
    scopes_supported: tuple[str, ...] = ()
    code_challenge_methods_supported: tuple[str, ...] | None = None
    """None when the provider does not say; otherwise it includes S256."""
    token_endpoint_auth_methods_supported: tuple[str, ...] | None = None


async def discover_openid_configuration(
    client: httpx.AsyncClient, issuer_or_url: str
) -> OpenIdConfiguration:
    """Fetch and check an OpenID provider's configuration.

    Args:
        client: The egress client (borrowed; not closed here).
        issuer_or_url: The issuer (`https://accounts.example.com`) or its full discovery URL
            (ending in `/.well-known/openid-configuration`).

    Raises:
        ConfigurationError: `issuer_or_url` is not an absolute http(s) URL; or the document
            is too large, not a JSON object, or lacks or mistypes a required field.
        EgressDenied: The egress policy refused the discovery URL.
        ExecutionError: The provider could not be reached or did not answer 200.
        PolicyViolation: The document names another issuer, an endpoint that is not https
            (or plain http off a loopback test issuer), or PKCE methods without S256.
    """
    absolute_http_url(issuer_or_url, what="OpenID issuer")
    if issuer_or_url.rstrip("/").endswith(WELL_KNOWN_SUFFIX):
        url = issuer_or_url.rstrip("/")
        issuer = url[: -len(WELL_KNOWN_SUFFIX)]
    else:
        # §4.1: a terminating "/" of the issuer is removed before appending the suffix.
        issuer, url = issuer_or_url, issuer_or_url.rstrip("/") + WELL_KNOWN_SUFFIX
    _require_secure(issuer, issuer, what="issuer")
    document = _parse(await _fetch(client, url), url=url)
    return _checked(document, expected_issuer=issuer, url=url)


def oauth_config_from_discovery(
    conf: OpenIdConfiguration,
    *,
    scheme: str,
    client_id: str,
    client_secret_name: str | None,
    scopes: Sequence[str] = ("openid",),
) -> OAuthConfig:
    """The `OAuthConfig` of a connection's OpenID Connect scheme.

    The client authenticates with `client_secret_basic` unless the provider lists only
    `client_secret_post` (the default when it lists nothing is basic, per OIDC Discovery).

    Args:
        conf: The discovered configuration.
        scheme: The security scheme's name in the spec.
        client_id: The registered client id.
        client_secret_name: SecretStore name of the client secret; None for a public client.
        scopes: Scopes to ask for.
    """
    methods = conf.token_endpoint_auth_methods_supported
    client_auth: ClientAuth = "client_secret_basic"
    if methods and "client_secret_basic" not in methods and "client_secret_post" in methods:
        client_auth = "client_secret_post"
    return OAuthConfig(
        scheme=scheme,
        client_id=client_id,
        client_secret_name=client_secret_name,
        token_url=conf.token_endpoint,
        authorization_url=conf.authorization_endpoint,
        revocation_url=conf.revocation_endpoint,
        scopes=tuple(scopes),
        client_auth=client_auth,
    )


async def _fetch(client: httpx.AsyncClient, url: str) -> bytes:
    try:
        request = client.build_request("GET", url, headers={"Accept": "application/json"})
        response = await client.send(request, stream=True)
        try:
            if response.status_code != 200:
                raise ExecutionError(
                    f"The OpenID discovery document at {url} answered HTTP "
                    f"{response.status_code}; check the issuer URL (redirects are not followed)."
                )
            return await read_bounded(response, limit=MAX_DISCOVERY_BYTES, source=url)
        finally:
            await response.aclose()
    except SpecError as exc:  # read_bounded speaks the spec ingestion's errors
        raise ConfigurationError(
            f"The OpenID discovery document at {url} could not be read: {exc.message}"
        ) from None
    except httpx.HTTPError as exc:
        raise ExecutionError(
            f"The OpenID discovery document at {url} could not be fetched "
            f"({type(exc).__name__}); check the issuer URL and that the provider is up."
        ) from None


def _parse(body: bytes, *, url: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        document = None
    if not isinstance(document, dict):
        raise ConfigurationError(
            f"The OpenID discovery document at {url} is not a JSON object; check that the "
            "issuer URL is right."
        )
    return document


def _checked(document: dict[str, Any], *, expected_issuer: str, url: str) -> OpenIdConfiguration:
    issuer = _string(document, "issuer", url)
    # §4.3 wants the two identical; a trailing "/" alone does not name another issuer.
    if issuer is None or issuer.rstrip("/") != expected_issuer.rstrip("/"):
        raise PolicyViolation(
            f"The OpenID discovery document at {url} names issuer {issuer!r:.200}, not "
            f"{expected_issuer!r}; refusing it (OpenID Connect Discovery §4.3). Configure the "
            "issuer the provider really uses."
        )
    endpoints: dict[str, str | None] = {}
    for name in ("authorization_endpoint", "token_endpoint", "revocation_endpoint"):
        value = _string(document, name, url)
        if value is None and name != "revocation_endpoint":
            raise ConfigurationError(
                f"The OpenID discovery document at {url} has no {name}; APIQ needs it for "
                "the authorization code flow."
            )
        if value is not None:
            absolute_http_url(value, what=f"OpenID {name}")
            _require_secure(value, issuer, what=name)
        endpoints[name] = value
    methods = _strings(document, "code_challenge_methods_supported", url)
    if methods is not None and "S256" not in methods:
        raise PolicyViolation(
            f"The OpenID provider {issuer} supports PKCE methods {list(methods)} but not S256; "
            "APIQ only uses S256 (RFC 7636) and will not connect without it."
        )
    return OpenIdConfiguration(
        issuer=issuer,
        authorization_endpoint=endpoints["authorization_endpoint"] or "",
        token_endpoint=endpoints["token_endpoint"] or "",
        revocation_endpoint=endpoints["revocation_endpoint"],
        scopes_supported=_strings(document, "scopes_supported", url) or (),
        code_challenge_methods_supported=methods,
        token_endpoint_auth_methods_supported=_strings(
            document, "token_endpoint_auth_methods_supported", url
        ),
    )


def _string(document: dict[str, Any], name: str, url: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(
            f"The OpenID discovery document at {url}: {name} must be a non-empty string, "
            f"not {type(value).__name__}."
        )
    return value


def _strings(document: dict[str, Any], name: str, url: str) -> tuple[str, ...] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigurationError(
            f"The OpenID discovery document at {url}: {name} must be an array of strings."
        )
    return tuple(value)


def _require_secure(url: str, issuer: str, *, what: str) -> None:
    """https, or plain http on loopback when the issuer itself is a loopback http server."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "https":
        return
    issuer_parts = urlsplit(issuer)
    if (
        parts.scheme.lower() == "http"
        and issuer_parts.scheme.lower() == "http"
        and _is_loopback(parts.hostname)
        and _is_loopback(issuer_parts.hostname)
    ):
        return
    raise PolicyViolation(
        f"The OpenID {what} {url!r:.200} is not https; APIQ sends credentials only over "
        "https (plain http is allowed for a loopback test issuer only)."
    )


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
