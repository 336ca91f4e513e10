"""Canary secrets of every kind go through `Outbound`; none is ever found in clear after.

Every credential kind (API key in header, query and cookie; bearer; basic password; OAuth
client secret, access and refresh tokens) is stored as a recognisable canary, used against
the live echo service (which sends everything it received straight back) and the Petstore,
through success, 4xx, a refused egress and a foreign principal. Then all captured log
records (DEBUG and up, every logger), every audit event, every result and every raised
error are scanned: no canary may appear in clear, nor in its base64 or percent-encoded form.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from apiq.audit.memory import MemoryAuditSink
from apiq.calls import Caller
from apiq.calls.outbound import Outbound
from apiq.catalog import Catalog, build_catalog
from apiq.connections import (
    ApiKeyAuth,
    AuthConfig,
    BasicAuth,
    BearerAuth,
    Connection,
    OAuthClient,
    OAuthConfig,
    secret_name,
)
from apiq.egress import EgressPolicy, egress_client
from apiq.errors import ApiqError
from apiq.models import AuditQuery, Principal
from apiq.redaction import Redactor
from apiq.secrets import MemorySecretStore
from tests.services.echo import EchoService
from tests.services.oauth_server import CLIENT_ID, OAuthServer

pytestmark = pytest.mark.anyio

ALICE = Principal(id="alice", tenant="acme")
MALLORY = Principal(id="mallory", tenant="acme")
CLIENT_SECRET = "canary-client-secret-4Qx9"
CANARIES = {
    "hdr": "canary-header-key-8Jd2",
    "qry": "canary-query-key-Lm5/+=&",
    "ck": "canary-cookie-key-Zt7w",
    "bearer": "canary-bearer-token-Rp3k",
    "basic": "canary-basic-pass:w0rd",
}
SCHEMES: dict[str, Any] = {
    "hdr": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "qry": {"type": "apiKey", "in": "query", "name": "key"},
    "ck": {"type": "apiKey", "in": "cookie", "name": "sid"},
    "bearer": {"type": "http", "scheme": "bearer"},
    "basic": {"type": "http", "scheme": "basic"},
    "oauth": {
        "type": "oauth2",
        "flows": {"clientCredentials": {"tokenUrl": "http://x/token", "scopes": {}}},
    },
}

DENIED_METHODS = dict(
    zip(SCHEMES, ("get", "put", "post", "delete", "patch", "options"), strict=True)
)


def echo_catalog() -> Catalog:
    paths: dict[str, Any] = {}
    for scheme in SCHEMES:
        paths[f"/via/{scheme}"] = {
            "get": {
                "operationId": f"via_{scheme}",
                "security": [{scheme: []}],
                "responses": {"200": {"description": "ok"}},
            }
        }
        # The echo service answers 401 here; one method per scheme keeps operations apart.
        paths.setdefault("/echo/status/401", {})[DENIED_METHODS[scheme]] = {
            "operationId": f"denied_{scheme}",
            "security": [{scheme: []}],
            "responses": {"401": {"description": "no"}},
        }
    document = {
        "openapi": "3.0.3",
        "info": {"title": "echo", "version": "1"},
        "components": {"securitySchemes": SCHEMES},
        "paths": paths,
    }
    return build_catalog(document, source="echo.json", name="echo")


def encodings(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        quote(secret, safe=""),
        base64.b64encode(raw).decode(),
        base64.b64encode(f"user:{secret}".encode()).decode(),
    }


@pytest.fixture
def oauth_server() -> Iterator[OAuthServer]:
    with OAuthServer(clients={CLIENT_ID: CLIENT_SECRET}) as server:
        yield server


async def test_no_canary_leaks_into_logs_audit_results_or_errors(
    echo_service: EchoService,
    oauth_server: OAuthServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemorySecretStore()
    redactor = Redactor(hmac_key=b"canary-test-hmac-key-000000000000")
    auth: dict[str, AuthConfig] = {}
    for scheme, value in CANARIES.items():
        name = secret_name("echo", scheme, "password" if scheme == "basic" else "api_key")
        await store.put(ALICE, name, value.encode())
        if scheme == "bearer":
            auth[scheme] = BearerAuth(scheme, name)
        elif scheme == "basic":
            auth[scheme] = BasicAuth(scheme, "user", name)
        else:
            auth[scheme] = ApiKeyAuth(scheme, name)
    client_secret = secret_name("echo", "oauth", "client_secret")
    await store.put(ALICE, client_secret, CLIENT_SECRET.encode())
    connection = Connection("echo", "acme", "alice", "echo", echo_service.base_url, auth)
    config = OAuthConfig(
        scheme="oauth",
        client_id=CLIENT_ID,
        token_url=oauth_server.url("/token"),
        client_secret_name=client_secret,
        revocation_url=oauth_server.url("/revoke"),
    )
    catalog = echo_catalog()
    sink = MemoryAuditSink()
    results: list[object] = []
    errors: list[str] = []
    allow = frozenset({("127.0.0.1", echo_service.port), ("127.0.0.1", oauth_server.port)})
    async with egress_client(EgressPolicy(allow=allow)) as client:
        oauth = OAuthClient(client, secrets=store, redactor=redactor)
        outbound = Outbound(
            Caller(client),
            secrets=store,
            audit=sink,
            redactor=redactor,
            oauth=oauth,
            oauth_configs={"echo": {"oauth": config}},
        )
        for scheme in SCHEMES:
            for operation in (f"via_{scheme}", f"denied_{scheme}"):
                results.append(await outbound.call(ALICE, connection, catalog, operation, {}))
        # Failures: a foreign principal, and a connection whose host egress refuses.
        elsewhere = Connection("echo", "acme", "alice", "echo", "http://127.0.0.1:9/", auth)
        for who, conn in ((MALLORY, connection), (ALICE, elsewhere)):
            for scheme in SCHEMES:
                try:
                    await outbound.call(who, conn, catalog, f"via_{scheme}", {})
                except ApiqError as exc:
                    errors.append(f"{exc!s} {exc!r} {exc.__cause__!r}")
        await oauth.revoke(ALICE, "echo", config)
    assert len(errors) == 2 * len(SCHEMES)

    # The canaries really were used: the echo service received each one.
    wire = repr(echo_service.requests)
    for value in CANARIES.values():
        assert any(form in wire for form in encodings(value)), "a canary was never sent"
    tokens = oauth_server.access_tokens | oauth_server.refresh_tokens
    assert tokens
    assert any(token in wire for token in oauth_server.access_tokens)
    # A 401 made the caller refresh once: two access tokens were issued.
    assert oauth_server.token_requests >= 2

    events = await sink.query(AuditQuery(limit=10_000))
    logs = "\n".join(
        [caplog.text] + [f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records]
    )
    haystacks = {
        "logs": logs,
        "audit": repr(events),
        "results": repr(results),
        "errors": "\n".join(errors),
    }
    secrets = [*CANARIES.values(), CLIENT_SECRET, *tokens]
    for where, text in haystacks.items():
        for secret in secrets:
            for form in encodings(secret):
                assert form not in text, f"a canary leaked into {where}"
    assert events
    assert caplog.records
