"""A stored connection's auth: what the `auth` column holds, and the secrets it names.

The column holds `StoredConfig` as JSON: the server choice, each configured security
scheme (its kind, the *names* of its secrets, a masked hint, OAuth client settings) and
where an uploaded document is kept. Secret values live only in the `SecretStore`, under
the connection owner and `<connection id>/<scheme>/<field>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from apiq.catalog import Catalog
from apiq.connections import (
    ApiKeyAuth,
    AuthConfig,
    BasicAuth,
    BearerAuth,
    OAuthClient,
    OAuthConfig,
    default_auth_kinds,
    secret_name,
)
from apiq.connections.credentials import Credential, store_credentials
from apiq.errors import (
    ApiqError,
    ConfigurationError,
    OAuthReconnectRequired,
    SecretNotFound,
    SecretUnreadable,
)
from apiq.models import Principal
from apiq.ports import SecretStore
from apiq_server.errors import ServerError
from apiq_server.schemas.apis import ApiStatus, CredentialIn, OAuthClientIn, ServerIn
from apiq_server.services.catalogs import Upload

__all__ = [
    "StoredConfig",
    "StoredOAuth",
    "StoredScheme",
    "check_auth",
    "check_schemes",
    "forget_schemes",
    "mark_connected",
    "needs_auth",
    "status_of",
    "store_schemes",
]

_HINT_MIN_LENGTH = 16
"""Only keys at least this long show their last four characters."""
_SHAPES = {"api_key": "value", "http_bearer": "value", "http_basic": "basic"}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class StoredOAuth(_Frozen):
    """An oauth2 scheme's client (its secret is named, never held)."""

    client_id: str
    token_url: str
    authorization_url: str | None = None
    revocation_url: str | None = None
    scopes: tuple[str, ...] = ()
    client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    client_secret_name: str | None = None
    connected: bool = False
    """Tokens were obtained (authorization code callback or client credentials)."""

    def config(self, scheme: str) -> OAuthConfig:
        """The SDK's configuration of this scheme."""
        return OAuthConfig(
            scheme=scheme,
            client_id=self.client_id,
            token_url=self.token_url,
            client_secret_name=self.client_secret_name,
            authorization_url=self.authorization_url,
            revocation_url=self.revocation_url,
            scopes=self.scopes,
            client_auth=self.client_auth,
        )


class StoredScheme(_Frozen):
    """One configured security scheme."""

    kind: str
    secret_name: str | None = None
    username: str | None = None
    hint: str | None = None
    oauth: StoredOAuth | None = None


class StoredConfig(_Frozen):
    """What the `auth` column of a connection holds."""

    server: ServerIn = Field(default_factory=ServerIn)
    schemes: dict[str, StoredScheme] = Field(default_factory=dict)
    upload: Upload | None = None
    title: str = ""
    version: str = ""

    def auth_configs(self) -> dict[str, AuthConfig]:
        """Key, token and basic schemes, as a `Connection` holds them."""
        configs: dict[str, AuthConfig] = {}
        for name, scheme in self.schemes.items():
            if scheme.secret_name is None:
                continue
            if scheme.kind == "api_key":
                configs[name] = ApiKeyAuth(name, scheme.secret_name)
            elif scheme.kind == "http_bearer":
                configs[name] = BearerAuth(name, scheme.secret_name)
            elif scheme.kind == "http_basic" and scheme.username is not None:
                configs[name] = BasicAuth(name, scheme.username, scheme.secret_name)
        return configs

    def oauth_configs(self) -> dict[str, OAuthConfig]:
        """OAuth schemes, as `Outbound` finds them."""
        return {n: s.oauth.config(n) for n, s in self.schemes.items() if s.oauth is not None}


def check_schemes(
    catalog: Catalog,
    credentials: Mapping[str, CredentialIn],
    oauth: Mapping[str, OAuthClientIn],
) -> None:
    """Refuse credentials that do not fit the spec's schemes, before anything is stored.

    Raises:
        ServerError: Naming the scheme and what the spec offers (400).
    """
    kinds = default_auth_kinds(catalog)
    offered = ", ".join(f"{name} ({kind.kind})" for name, kind in kinds.items()) or "none"
    for name, given in credentials.items():
        kind = kinds.get(name)
        shape = _SHAPES.get(kind.kind) if kind is not None else None
        if kind is None or shape is None:
            raise ServerError(
                f"credentials[{name!r:.100}]: the spec has no key, token or basic scheme of "
                f"that name (it offers: {offered}); OAuth schemes go in `oauth`"
            )
        if (given.value is not None) != (shape == "value"):
            wanted = "value" if shape == "value" else "username and password"
            raise ServerError(f"credentials[{name!r}] ({kind.kind}) takes {wanted}")
        if given.username is not None and ":" in given.username:
            raise ServerError(f"credentials[{name!r}]: a basic username cannot hold ':' (RFC 7617)")
    for name, client in oauth.items():
        try:
            _oauth_client(catalog, name, client, "check")
        except ConfigurationError as exc:
            raise ServerError(f"oauth[{name!r:.100}]: {exc}") from None


async def store_schemes(
    secrets: SecretStore,
    owner: Principal,
    connection_id: str,
    catalog: Catalog,
    credentials: Mapping[str, CredentialIn],
    oauth: Mapping[str, OAuthClientIn],
) -> tuple[dict[str, StoredScheme], dict[str, str]]:
    """Store each credential and OAuth client secret; returns the schemes to record and
    scheme -> the secret value stored (for the caller's audit fingerprints only).

    Raises:
        ConfigurationError: An unknown scheme, a value of the wrong shape for its kind, an
            OAuth client for a scheme that is not oauth2, or OAuth URLs that are missing.
    """
    values: dict[str, Credential] = {}
    for name, given in credentials.items():
        if given.value is not None:
            values[name] = given.value.get_secret_value()
        elif given.username is not None and given.password is not None:
            values[name] = (given.username, given.password.get_secret_value())
    configs = await store_credentials(secrets, owner, connection_id, catalog, values)
    stored: dict[str, StoredScheme] = {}
    secret_values: dict[str, str] = {}
    for name, config in configs.items():
        value = values[name]
        clear = value if isinstance(value, str) else value[1]
        secret_values[name] = clear
        stored[name] = StoredScheme(
            kind=default_auth_kinds(catalog)[name].kind,
            secret_name=config.secret_name,
            username=config.username if isinstance(config, BasicAuth) else None,
            hint=_hint(clear) if isinstance(value, str) else None,
        )
    for name, client in oauth.items():
        if name in stored:
            raise ConfigurationError(
                f"scheme {name!r} is given both credentials and an OAuth client"
            )
        stored[name] = StoredScheme(
            kind="oauth2", oauth=_oauth_client(catalog, name, client, connection_id)
        )
        if client.client_secret is not None:
            clear = client.client_secret.get_secret_value()
            name_of_secret = secret_name(connection_id, name, "client_secret")
            await secrets.put(owner, name_of_secret, clear.encode())
            secret_values[name] = clear
    return stored, secret_values


def _oauth_client(
    catalog: Catalog, name: str, client: OAuthClientIn, connection_id: str
) -> StoredOAuth:
    scheme = catalog.security_schemes.get(name)
    if scheme is None or scheme.type not in ("oauth2", "openIdConnect"):
        offered = [n for n, s in catalog.security_schemes.items() if s.type == "oauth2"]
        raise ConfigurationError(
            f"{catalog.name}: {name!r} is not an oauth2 scheme of the spec "
            f"(oauth2 schemes: {', '.join(offered) or 'none'})"
        )
    flows = scheme.flows
    code = flows.get("authorizationCode")
    granted = flows.get("clientCredentials")
    code = code if isinstance(code, dict) else {}
    granted = granted if isinstance(granted, dict) else {}
    token_url = client.token_url or code.get("tokenUrl") or granted.get("tokenUrl")
    authorization_url = client.authorization_url or code.get("authorizationUrl")
    if not isinstance(token_url, str):
        raise ConfigurationError(
            f"{catalog.name}: OAuth scheme {name!r} names no token URL; give tokenUrl"
        )
    stored = StoredOAuth(
        client_id=client.client_id,
        token_url=token_url,
        authorization_url=authorization_url if isinstance(authorization_url, str) else None,
        revocation_url=client.revocation_url,
        scopes=tuple(client.scopes),
        client_auth=client.client_auth,
        client_secret_name=(
            secret_name(connection_id, name, "client_secret") if client.client_secret else None
        ),
    )
    stored.config(name)  # checks the URLs now, not at the first call
    return stored


async def forget_schemes(
    secrets: SecretStore,
    oauth: OAuthClient,
    owner: Principal,
    connection_id: str,
    schemes: Mapping[str, StoredScheme],
) -> list[str]:
    """Delete every secret the schemes name; revoke OAuth grants at the provider first.

    Returns:
        The schemes whose revocation failed (their tokens are deleted anyway).
    """
    failed: list[str] = []
    for name, scheme in schemes.items():
        if scheme.secret_name is not None:
            await secrets.delete(owner, scheme.secret_name)
        if scheme.oauth is not None:
            try:
                await oauth.revoke(owner, connection_id, scheme.oauth.config(name))
            except ApiqError:  # best effort: the provider may be down; tokens are gone here
                failed.append(name)
            if scheme.oauth.client_secret_name is not None:
                await secrets.delete(owner, scheme.oauth.client_secret_name)
    return failed


async def check_auth(
    secrets: SecretStore,
    oauth: OAuthClient,
    owner: Principal,
    connection_id: str,
    schemes: Mapping[str, StoredScheme],
) -> tuple[dict[str, bool], list[str]]:
    """Whether each scheme's credentials can be read (OAuth: a token can be had).

    Returns:
        scheme -> usable, and one problem sentence per unusable scheme.
    """
    usable: dict[str, bool] = {}
    problems: list[str] = []
    for name, scheme in schemes.items():
        try:
            if scheme.oauth is not None:
                await oauth.access_token(owner, connection_id, scheme.oauth.config(name))
            elif scheme.secret_name is not None:
                await secrets.get(owner, scheme.secret_name)
            usable[name] = True
        except OAuthReconnectRequired:
            usable[name] = False
            problems.append(f"{name}: not connected; run the OAuth connect")
        except (SecretNotFound, SecretUnreadable):
            usable[name] = False
            problems.append(f"{name}: the stored credential cannot be read; store it again")
        except ApiqError as exc:
            usable[name] = False
            problems.append(f"{name}: no token ({exc.summary})")
    return usable, problems


def needs_auth(catalog: Catalog, usable: set[str]) -> bool:
    """True when some operations need credentials and none of them can be authorized."""
    needing = satisfied = 0
    for operation in catalog.operations:
        alternatives = operation.security if operation.security is not None else catalog.security
        if not alternatives or any(not alternative for alternative in alternatives):
            continue
        needing += 1
        satisfied += any(set(alternative) <= usable for alternative in alternatives)
    return needing > 0 and satisfied == 0


def status_of(catalog: Catalog, config: StoredConfig) -> ApiStatus:
    """`needs_auth` while no configured scheme can authorize any operation needing auth."""
    usable = {
        name
        for name, scheme in config.schemes.items()
        if scheme.oauth is None
        or scheme.oauth.connected
        or (scheme.oauth.authorization_url is None and scheme.oauth.client_secret_name)
    }
    return "needs_auth" if needs_auth(catalog, usable) else "ready"


def mark_connected(config: StoredConfig, usable: Mapping[str, bool]) -> StoredConfig:
    """`config` with each OAuth scheme marked connected as `usable` says."""
    schemes = {
        name: scheme.model_copy(
            update={"oauth": scheme.oauth.model_copy(update={"connected": usable.get(name, False)})}
        )
        if scheme.oauth
        else scheme
        for name, scheme in config.schemes.items()
    }
    return config.model_copy(update={"schemes": schemes})


def _hint(value: str) -> str | None:
    return "…" + value[-4:] if len(value) >= _HINT_MIN_LENGTH else None
