"""OpenID Connect discovery against a real loopback server through the egress client."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from apiq.connections.oauth_config import OAuthConfig
from apiq.connections.oidc import (
    MAX_DISCOVERY_BYTES,
    OpenIdConfiguration,
    discover_openid_configuration,
    oauth_config_from_discovery,
)
from apiq.egress import EgressPolicy, egress_client
from apiq.errors import (
    ConfigurationError,
    EgressDenied,
    ExecutionError,
    PolicyViolation,
)
from tests.loopback import LoopbackServer, loopback_server, respond

WELL_KNOWN = "/.well-known/openid-configuration"


def serving(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    def route(handler: BaseHTTPRequestHandler) -> None:
        respond(handler, status, body, {"Content-Type": "application/json"} | (headers or {}))

    return route


def document(issuer: str, **overrides: Any) -> bytes:
    doc: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/authorize",
        "token_endpoint": issuer + "/token",
        "revocation_endpoint": issuer + "/revoke",
        "jwks_uri": issuer + "/jwks",
        "scopes_supported": ["openid", "email"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "response_types_supported": ["code"],
    }
    doc.update(overrides)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as srv:
        yield srv


@pytest.fixture
async def client(server: LoopbackServer) -> AsyncIterator[httpx.AsyncClient]:
    policy = EgressPolicy(allow=frozenset({("127.0.0.1", server.port)}))
    async with egress_client(policy) as c:
        yield c


Serve = Callable[..., str]


@pytest.fixture
def serve(server: LoopbackServer) -> Serve:
    """Serve a discovery document for the issuer `base_url + path`; return the issuer."""

    def install(path: str = "", body: bytes | None = None, **kwargs: Any) -> str:
        issuer = server.url(path)
        server.routes[path + WELL_KNOWN] = serving(
            document(issuer) if body is None else body, **kwargs
        )
        return issuer

    return install


@pytest.mark.anyio
async def test_good_document_is_read_and_becomes_an_oauth_config(
    client: httpx.AsyncClient, serve: Serve, server: LoopbackServer
) -> None:
    issuer = serve("/realms/apiq")
    conf = await discover_openid_configuration(client, issuer)
    assert conf == OpenIdConfiguration(
        issuer=issuer,
        authorization_endpoint=issuer + "/authorize",
        token_endpoint=issuer + "/token",
        revocation_endpoint=issuer + "/revoke",
        scopes_supported=("openid", "email"),
        code_challenge_methods_supported=("plain", "S256"),
    )
    assert server.requests[-1][1] == "/realms/apiq" + WELL_KNOWN
    # The full discovery URL works too, and a trailing slash on the issuer is tolerated.
    assert await discover_openid_configuration(client, issuer + WELL_KNOWN) == conf
    assert await discover_openid_configuration(client, issuer + "/") == conf

    oauth = oauth_config_from_discovery(
        conf, scheme="oidc", client_id="app", client_secret_name="conn/oidc/client_secret"
    )
    assert oauth == OAuthConfig(
        scheme="oidc",
        client_id="app",
        client_secret_name="conn/oidc/client_secret",
        token_url=issuer + "/token",
        authorization_url=issuer + "/authorize",
        revocation_url=issuer + "/revoke",
        scopes=("openid",),
    )


@pytest.mark.anyio
async def test_gzip_document_and_client_secret_post_only_provider(
    client: httpx.AsyncClient, serve: Serve, server: LoopbackServer
) -> None:
    issuer = server.base_url
    body = document(issuer, token_endpoint_auth_methods_supported=["client_secret_post"])
    serve("", gzip.compress(body), headers={"Content-Encoding": "gzip"})
    conf = await discover_openid_configuration(client, issuer)
    oauth = oauth_config_from_discovery(
        conf, scheme="s", client_id="c", client_secret_name=None, scopes=["openid", "email"]
    )
    assert oauth.client_auth == "client_secret_post"
    assert oauth.scopes == ("openid", "email")


@pytest.mark.anyio
async def test_issuer_mismatch_is_refused(
    client: httpx.AsyncClient, serve: Serve, server: LoopbackServer
) -> None:
    issuer = serve("", document("https://evil.example"))
    with pytest.raises(PolicyViolation, match=r"evil\.example") as info:
        await discover_openid_configuration(client, issuer)
    assert type(info.value) is PolicyViolation
    serve("/tenant-a", document(server.url("/tenant-b")))
    with pytest.raises(PolicyViolation, match=r"§4\.3"):
        await discover_openid_configuration(client, server.url("/tenant-a"))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"token_endpoint": None}, ConfigurationError, "no token_endpoint"),
        ({"authorization_endpoint": None}, ConfigurationError, "no authorization_endpoint"),
        ({"token_endpoint": 42}, ConfigurationError, "token_endpoint must be"),
        ({"scopes_supported": "openid"}, ConfigurationError, "scopes_supported must be"),
        ({"token_endpoint": "ftp://x/token"}, ConfigurationError, "absolute http"),
        ({"token_endpoint": "http://idp.example/token"}, PolicyViolation, "not https"),
        ({"code_challenge_methods_supported": ["plain"]}, PolicyViolation, "S256"),
    ],
)
async def test_bad_documents_are_refused(
    client: httpx.AsyncClient,
    server: LoopbackServer,
    serve: Serve,
    overrides: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    serve("", document(server.base_url, **overrides))
    with pytest.raises(error, match=match):
        await discover_openid_configuration(client, server.base_url)


@pytest.mark.anyio
async def test_without_pkce_list_and_revocation_it_is_accepted(
    client: httpx.AsyncClient, serve: Serve, server: LoopbackServer
) -> None:
    body = document(
        server.base_url, code_challenge_methods_supported=None, revocation_endpoint=None
    )
    conf = await discover_openid_configuration(client, serve("", body))
    assert conf.code_challenge_methods_supported is None
    assert conf.revocation_endpoint is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "headers", "match"),
    [
        (b"<html>login</html>", {}, "not a JSON object"),
        (b"[1, 2]", {}, "not a JSON object"),
        (b"\xff\xfe", {}, "not a JSON object"),
        (b"[" * 10_000 + b"]" * 10_000, {}, "not a JSON object"),
        (b" " * (MAX_DISCOVERY_BYTES + 1), {}, "more than 65536 bytes"),
        (gzip.compress(b" " * 10_000_000), {"Content-Encoding": "gzip"}, "more than 65536"),
    ],
    ids=["html", "array", "not-utf8", "deep", "oversize", "gzip-bomb"],
)
async def test_unreadable_documents_are_configuration_errors(
    client: httpx.AsyncClient, serve: Serve, body: bytes, headers: dict[str, str], match: str
) -> None:
    issuer = serve("", body, headers=headers)
    with pytest.raises(ConfigurationError, match=match):
        await discover_openid_configuration(client, issuer)


@pytest.mark.anyio
async def test_http_errors_and_redirects_are_execution_errors(
    client: httpx.AsyncClient, server: LoopbackServer, serve: Serve
) -> None:
    with pytest.raises(ExecutionError, match="HTTP 404"):
        await discover_openid_configuration(client, server.url("/nothing"))
    issuer = serve("", b"", status=302, headers={"Location": "https://elsewhere.example/"})
    with pytest.raises(ExecutionError, match="HTTP 302"):
        await discover_openid_configuration(client, issuer)


@pytest.mark.anyio
async def test_egress_refuses_a_host_not_allowed(client: httpx.AsyncClient) -> None:
    with pytest.raises(EgressDenied):
        await discover_openid_configuration(client, "http://127.0.0.2:1/realm")
    with pytest.raises(EgressDenied):
        await discover_openid_configuration(client, "https://10.0.0.1/realm")


@pytest.mark.anyio
async def test_plain_http_issuer_off_loopback_and_non_urls_are_refused_before_fetching(
    client: httpx.AsyncClient, server: LoopbackServer
) -> None:
    with pytest.raises(PolicyViolation, match="not https"):
        await discover_openid_configuration(client, "http://idp.example")
    with pytest.raises(ConfigurationError):
        await discover_openid_configuration(client, "idp.example")
    assert server.requests == []
