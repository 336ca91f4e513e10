"""OAuth 2.0 flows against a real authorization server on loopback (tests.services.oauth_server).

Expiry is driven by an injected clock (no sleeping); the server's request counter proves
single-flight refreshes; every error's str and repr is checked for token values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from apiq.connections import secret_name
from apiq.connections.oauth import (
    OAuthClient,
    OAuthConfig,
    OAuthReconnectRequired,
    OAuthTokenError,
    PendingAuthorization,
)
from apiq.egress import egress_client
from apiq.errors import EgressDenied, PolicyViolation, SecretNotFound
from apiq.models import Principal
from apiq.secrets import MemorySecretStore
from tests.services.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer

USER = Principal(id="alice", tenant="t1")
CONN = "conn-1"
REDIRECT = "http://127.0.0.1:9/callback"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    server: OAuthServer
    oauth: OAuthClient
    store: MemorySecretStore
    config: OAuthConfig
    clock: Clock


@pytest.fixture
def server() -> Iterator[OAuthServer]:
    with OAuthServer(expires_in=300) as service:
        yield service


@pytest.fixture
async def env(server: OAuthServer) -> AsyncIterator[Env]:
    store = MemorySecretStore()
    await store.put(USER, "oauth-client-secret", CLIENT_SECRET.encode())
    clock = Clock()
    config = OAuthConfig(
        scheme="oauth",
        client_id=CLIENT_ID,
        client_secret_name="oauth-client-secret",
        authorization_url=server.url("/authorize"),
        token_url=server.url("/token"),
        revocation_url=server.url("/revoke"),
        scopes=("read", "write"),
    )
    async with egress_client(server.egress_policy) as client:
        yield Env(server, OAuthClient(client, secrets=store, clock=clock), store, config, clock)


async def authorize(env: Env) -> tuple[PendingAuthorization, str, str]:
    """Play the user's browser: open the authorization URL, read code and state off the redirect."""
    url, pending = env.oauth.authorization_url(env.config, redirect_uri=REDIRECT)
    async with httpx.AsyncClient() as browser:
        response = await browser.get(url, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    return pending, query["code"][0], query["state"][0]


async def connect(env: Env) -> None:
    pending, code, state = await authorize(env)
    await env.oauth.exchange_code(
        USER, CONN, env.config, pending, code=code, state=state, redirect_uri=REDIRECT
    )


async def stored(env: Env, field: str) -> str | None:
    try:
        return (await env.store.get(USER, secret_name(CONN, "oauth", field))).decode()
    except SecretNotFound:
        return None


def assert_no_tokens_in(exc: BaseException, env: Env) -> None:
    text = str(exc) + repr(exc) + repr(exc.args)
    for token in (*env.server.access_tokens, *env.server.refresh_tokens, *env.server.revoked):
        assert token not in text
    assert CLIENT_SECRET not in text


@pytest.mark.anyio
async def test_code_flow_with_pkce_stores_tokens(env: Env) -> None:
    url, pending = env.oauth.authorization_url(env.config, redirect_uri=REDIRECT)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["read write"]
    assert len(pending.state) >= 43  # >= 256 bits url-safe base64
    assert pending.state not in repr(pending)
    assert pending.code_verifier not in repr(pending)
    await connect(env)
    access = await stored(env, "access_token")
    assert access in env.server.access_tokens
    assert await stored(env, "refresh_token") in env.server.refresh_tokens
    assert float(await stored(env, "expires_at") or 0) == env.clock.now + 300
    assert await env.oauth.access_token(USER, CONN, env.config) == access
    assert env.server.token_requests == 1
    async with httpx.AsyncClient() as plain:
        resource = await plain.get(
            env.server.url("/resource"), headers={"Authorization": f"Bearer {access}"}
        )
    assert resource.json() == {"client_id": CLIENT_ID, "scope": "read write"}


@pytest.mark.anyio
async def test_wrong_state_is_refused_before_any_request(env: Env) -> None:
    pending, code, _ = await authorize(env)
    with pytest.raises(PolicyViolation, match="state"):
        await env.oauth.exchange_code(
            USER, CONN, env.config, pending, code=code, state="forged", redirect_uri=REDIRECT
        )
    assert env.server.token_requests == 0
    assert await stored(env, "access_token") is None


@pytest.mark.anyio
async def test_wrong_verifier_is_invalid_grant(env: Env) -> None:
    pending, code, state = await authorize(env)
    forged = PendingAuthorization(pending.state, "x" * 60, pending.redirect_uri, pending.scopes)
    with pytest.raises(OAuthReconnectRequired) as info:
        await env.oauth.exchange_code(
            USER, CONN, env.config, forged, code=code, state=state, redirect_uri=REDIRECT
        )
    assert info.value.error == "invalid_grant"
    assert "reconnect" in str(info.value)
    assert await stored(env, "access_token") is None


@pytest.mark.anyio
@pytest.mark.parametrize("client_auth", ["client_secret_basic", "client_secret_post"])
async def test_client_credentials(env: Env, client_auth: str) -> None:
    config = OAuthConfig(
        scheme="oauth",
        client_id=CLIENT_ID,
        client_secret_name="oauth-client-secret",
        token_url=env.server.url("/token"),
        client_auth=client_auth,  # type: ignore[arg-type]
    )
    await env.oauth.client_credentials(USER, CONN, config)
    first = await env.oauth.access_token(USER, CONN, config)
    assert first in env.server.access_tokens
    assert await stored(env, "refresh_token") is None
    sent = env.server.requests[-1]
    assert ("authorization" in sent.headers) == (client_auth == "client_secret_basic")
    env.clock.now += 300  # expired: renewed by client credentials again
    second = await env.oauth.access_token(USER, CONN, config)
    assert second != first
    assert env.server.token_requests == 2


@pytest.mark.anyio
async def test_concurrent_callers_on_expired_token_cause_one_refresh(env: Env) -> None:
    await connect(env)
    old_refresh = await stored(env, "refresh_token")
    env.clock.now += 300 - 10  # inside the 30 s skew: treated as expired
    results: list[str] = []

    async def call() -> None:
        results.append(await env.oauth.access_token(USER, CONN, env.config))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(call)
    assert env.server.token_requests == 2  # the code exchange + exactly one refresh
    assert len(set(results)) == 1
    assert results[0] == await stored(env, "access_token")
    new_refresh = await stored(env, "refresh_token")
    assert new_refresh != old_refresh
    assert new_refresh in env.server.refresh_tokens
    assert old_refresh not in env.server.refresh_tokens  # rotated: the server rejects it now


@pytest.mark.anyio
async def test_on_unauthorized_refreshes_once_for_many_callers(env: Env) -> None:
    await connect(env)
    rejected = await env.oauth.access_token(USER, CONN, env.config)
    results = [
        await env.oauth.on_unauthorized(USER, CONN, env.config, rejected=rejected) for _ in range(3)
    ]
    assert env.server.token_requests == 2
    assert len(set(results)) == 1
    assert results[0] != rejected


@pytest.mark.anyio
async def test_rotated_out_refresh_token_means_reconnect(env: Env) -> None:
    await connect(env)
    old_refresh = await stored(env, "refresh_token")
    env.clock.now += 1000
    await env.oauth.access_token(USER, CONN, env.config)  # rotates
    # A stale copy of the old refresh token (e.g. a restored backup) is rejected by the server.
    assert old_refresh is not None
    await env.store.put(USER, secret_name(CONN, "oauth", "refresh_token"), old_refresh.encode())
    env.clock.now += 1000
    with pytest.raises(OAuthReconnectRequired) as info:
        await env.oauth.access_token(USER, CONN, env.config)
    assert info.value.error == "invalid_grant"
    assert info.value.connection_id == CONN
    assert_no_tokens_in(info.value, env)
    assert old_refresh not in str(info.value)
    for field in ("access_token", "refresh_token", "expires_at", "grant"):
        assert await stored(env, field) is None
    with pytest.raises(OAuthReconnectRequired) as again:
        await env.oauth.access_token(USER, CONN, env.config)
    assert again.value.error is None  # disconnected state, still actionable


@pytest.mark.anyio
async def test_revoke_hits_the_endpoint_and_deletes_tokens(env: Env) -> None:
    await connect(env)
    refresh = await stored(env, "refresh_token")
    access = await stored(env, "access_token")
    await env.oauth.revoke(USER, CONN, env.config)
    assert env.server.revoked == [refresh]
    assert access not in env.server.access_tokens  # the grant ended with its refresh token
    assert await stored(env, "access_token") is None
    assert await stored(env, "refresh_token") is None


@pytest.mark.anyio
async def test_bad_client_secret_error_has_no_secret(env: Env) -> None:
    await env.store.put(USER, "oauth-client-secret", b"wrong-secret-value")
    with pytest.raises(OAuthTokenError) as info:
        await env.oauth.client_credentials(USER, CONN, env.config)
    assert info.value.error == "invalid_client"
    assert info.value.status_code == 401
    assert "wrong-secret-value" not in str(info.value) + repr(info.value)


@pytest.mark.anyio
async def test_token_url_outside_egress_policy_is_refused(env: Env) -> None:
    config = OAuthConfig(scheme="oauth", client_id=CLIENT_ID, token_url="http://127.0.0.1:1/token")
    with pytest.raises(EgressDenied):
        await env.oauth.client_credentials(USER, CONN, config)
