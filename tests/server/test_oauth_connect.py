"""OAuth connect through the server against a real authorization server on loopback.

The server of this module may reach the OAuth server (its own `APIQ_EGRESS_ALLOW`). The
browser's part is played by httpx: it follows the authorization URL, reads the redirect to
the callback, and calls the callback with the user's session.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.server.harness import Api, ServerProcess, register, scratch_postgres
from tests.server.test_apis import database_rows
from tests.services.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer

CALLBACK = "/api/oauth/callback"
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="module")
def oauth_server() -> Iterator[OAuthServer]:
    """The authorization server (and protected resource) on loopback."""
    with OAuthServer() as service:
        yield service


@pytest.fixture(scope="module", params=BACKENDS)
def oauth_app(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    oauth_server: OAuthServer,
) -> Iterator[ServerProcess]:
    """A server that may reach the OAuth server, on SQLite or PostgreSQL."""
    folder = tmp_path_factory.mktemp(f"oauth-{request.param}")
    with ExitStack() as stack:
        if request.param == "sqlite":
            database_url = f"sqlite:///{folder / 'apiq.sqlite'}"
        else:
            database_url = stack.enter_context(scratch_postgres())
        process = ServerProcess(
            env={
                "APIQ_DATABASE_URL": database_url,
                "APIQ_KEY_FILE": str(folder / "master.key"),
                "APIQ_EGRESS_ALLOW": f"127.0.0.1:{oauth_server.port}",
                "APIQ_MODE": "development",
            },
            log_path=folder / "server.log",
        ).start(timeout_s=180)
        stack.callback(process.stop)
        register(process.base_url, "oauth-admin@example.com").client.close()  # the admin
        yield process


@pytest.fixture
def users(oauth_app: ServerProcess) -> Iterator[Callable[[], Api]]:
    """Registers fresh users of the module's server; closes their clients after the test."""
    made: list[Api] = []

    def make() -> Api:
        made.append(register(oauth_app.base_url))
        return made[-1]

    yield make
    for api in made:
        api.client.close()


def _spec(oauth: OAuthServer) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Protected", "version": "1"},
        "servers": [{"url": oauth.base_url}],
        "components": {
            "securitySchemes": {
                "oauth": {
                    "type": "oauth2",
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": oauth.url("/authorize"),
                            "tokenUrl": oauth.url("/token"),
                            "scopes": {"read": "read the resource"},
                        }
                    },
                }
            }
        },
        "security": [{"oauth": ["read"]}],
        "paths": {
            "/resource": {
                "get": {"operationId": "getResource", "responses": {"200": {"description": "ok"}}}
            }
        },
    }


def _connect_body(oauth: OAuthServer) -> dict[str, Any]:
    return {
        "name": "protected",
        "specContent": json.dumps(_spec(oauth)),
        "oauth": {
            "oauth": {
                "clientId": CLIENT_ID,
                "clientSecret": CLIENT_SECRET,
                "revocationUrl": oauth.url("/revoke"),
                "scopes": ["read"],
            }
        },
    }


def _authorize(authorization_url: str) -> dict[str, str]:
    """Play the browser: the provider redirects back with `code` and `state`."""
    answer = httpx.get(authorization_url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def test_connect_start_callback_test_and_revoke_on_delete(
    oauth_app: ServerProcess, oauth_server: OAuthServer, users: Callable[[], Api]
) -> None:
    alice, bob = users(), users()
    created = alice.data("POST", "/api/apis", status=201, json=_connect_body(oauth_server))
    api_id = created["id"]
    assert created["status"] == "needs_auth"
    assert created["credentials"] == [
        {"scheme": "oauth", "kind": "oauth2", "hint": None, "connected": False}
    ]

    start = alice.data("POST", f"/api/apis/{api_id}/oauth/start", json={})
    url = start["authorizationUrl"]
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(oauth_server.url("/authorize"))
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [oauth_app.base_url + CALLBACK]
    back = _authorize(url)
    assert set(back) == {"code", "state"}

    stolen = bob.get(CALLBACK, params=back)
    assert stolen.status_code == 404  # alice's pending authorization is not bob's
    done = alice.data("GET", CALLBACK, params=back)
    assert done == {"apiId": api_id, "scheme": "oauth", "status": "ready"}
    assert alice.get(CALLBACK, params=back).status_code == 404  # single use

    connected = alice.data("GET", f"/api/apis/{api_id}")
    assert connected["credentials"][0]["connected"] is True
    result = alice.data("POST", f"/api/apis/{api_id}/test")
    assert result["authOk"] is True
    assert result["reachable"] is True

    found = alice.data("POST", "/api/chat", status=201, json={"message": "get the resource"})
    assert [step["operation"] for step in found["steps"]] == ["getResource"]
    started = alice.data("POST", "/api/chat/execute", status=201, json={"planId": found["id"]})
    state = _finished(alice, started["id"])
    assert state["status"] == "succeeded", state
    assert state["steps"][0]["request"]["status"] == 200  # the stored token was attached
    assert alice.data("GET", f"/api/apis/{api_id}")["lastUsed"] is not None

    tokens = oauth_server.access_tokens | oauth_server.refresh_tokens
    assert tokens
    _assert_never_in_clear(oauth_app, tokens | {CLIENT_SECRET}, [created, start, connected, state])

    refresh_tokens = oauth_server.refresh_tokens
    alice.data("DELETE", f"/api/apis/{api_id}")
    assert set(oauth_server.revoked) & refresh_tokens
    rows = database_rows(
        oauth_app, "SELECT name FROM apiq_secrets WHERE name LIKE :prefix", prefix=api_id + "/%"
    )
    assert rows == []
    actions = [
        row.action
        for row in database_rows(
            oauth_app,
            "SELECT action FROM apiq_audit_log WHERE actor = :actor",
            actor=alice.user["id"],
        )
    ]
    assert {"oauth.started", "oauth.connected", "connection.deleted"} <= set(actions)


def test_provider_refusal_and_unknown_state(
    oauth_server: OAuthServer, users: Callable[[], Api]
) -> None:
    alice = users()
    api_id = alice.data("POST", "/api/apis", status=201, json=_connect_body(oauth_server))["id"]
    start = alice.data("POST", f"/api/apis/{api_id}/oauth/start", json={"scheme": "oauth"})
    state = parse_qs(urlsplit(start["authorizationUrl"]).query)["state"][0]
    refused = alice.get(CALLBACK, params={"state": state, "error": "access_denied"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"
    unknown = alice.get(CALLBACK, params={"state": "forged", "code": "x"})
    assert unknown.status_code == 404
    wrong = alice.post(f"/api/apis/{api_id}/oauth/start", json={"scheme": "nope"})
    assert wrong.status_code == 409
    assert alice.data("GET", f"/api/apis/{api_id}")["status"] == "needs_auth"


def _finished(api: Api, execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60  # a bound on waiting, not a timing under test
    while True:
        state: dict[str, Any] = api.data("GET", f"/api/executions/{execution_id}")
        if state["status"] in ("succeeded", "failed", "cancelled"):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.1)


def _assert_never_in_clear(server: ServerProcess, values: set[str], bodies: list[Any]) -> None:
    text = json.dumps(bodies)
    log = server.log_path.read_text(errors="replace")
    rows = database_rows(server, "SELECT ciphertext FROM apiq_secrets")
    audit = json.dumps([list(row) for row in database_rows(server, "SELECT * FROM apiq_audit_log")])
    for value in values:
        assert value not in text
        assert value not in log
        assert value not in audit
        assert all(value.encode() not in bytes(row.ciphertext) for row in rows)
