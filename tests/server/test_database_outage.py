"""A database outage answers 503 with Retry-After, and the server recovers by itself.

The server talks to a scratch PostgreSQL database through a loopback TCP proxy; closing
the proxy cuts every pooled connection and refuses new ones, as a database host that goes
away does. The same server process must answer again once the proxy reopens: no restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from apiq.testing.petstore import PetstoreService
from tests.server.harness import (
    Api,
    ServerProcess,
    connect_petstore,
    plan,
    register,
    scratch_postgres,
    wait_final,
)
from tests.server.tcp_proxy import TcpProxy
from tests.server.test_security_headers import assert_error_envelope, assert_security_headers

OUTAGE_REQUESTS = 15
RECOVERY_S = 30.0
"""Bound on how long recovery may take (a limit for a failing test, not a timing)."""


@pytest.fixture
def proxied_server(
    tmp_path: Path, petstore_upstream: PetstoreService
) -> Iterator[tuple[ServerProcess, TcpProxy]]:
    """A server on a scratch PostgreSQL database reached through a TcpProxy."""
    with scratch_postgres("apiq_outage") as url:
        database = make_url(url)
        with TcpProxy(database.host or "127.0.0.1", database.port or 5432) as proxy:
            proxied = database.set(port=proxy.port).render_as_string(hide_password=False)
            process = ServerProcess(
                env={
                    "APIQ_DATABASE_URL": proxied,
                    "APIQ_KEY_FILE": str(tmp_path / "master.key"),
                    "APIQ_EGRESS_ALLOW": f"127.0.0.1:{petstore_upstream.port}",
                    "APIQ_MODE": "development",
                },
                log_path=tmp_path / "server.log",
            ).start()
            try:
                yield process, proxy
            finally:
                proxy.open()  # let the server close its connections cleanly
                process.stop()


def test_database_outage_gives_503_then_recovers(
    proxied_server: tuple[ServerProcess, TcpProxy], petstore_upstream: PetstoreService
) -> None:
    server, proxy = proxied_server
    with register(server.base_url) as user, Api(server.base_url) as anonymous:
        _outage(server, proxy, user, anonymous, petstore_upstream)


def _outage(
    server: ServerProcess, proxy: TcpProxy, user: Api, anonymous: Api, petstore: PetstoreService
) -> None:
    connection = connect_petstore(user, petstore)

    proxy.close()
    for _ in range(OUTAGE_REQUESTS):  # the outage lasts a while: background work fails too
        assert user.get("/api/apis").status_code == 503
        time.sleep(0.2)
    down = user.get("/api/apis")
    assert_error_envelope(down, 503, "unavailable")
    assert int(down.headers["retry-after"]) > 0
    assert_security_headers(down)
    for internal in ("psycopg", "5432", str(proxy.port)):
        assert internal not in down.text
    health = anonymous.get("/api/health")
    assert health.status_code == 503
    assert int(health.headers["retry-after"]) > 0
    assert health.json()["data"]["database"] == "down"
    login = anonymous.post(
        "/api/auth/login", json={"email": user.user["email"], "password": "x" * 8}
    )
    assert_error_envelope(login, 503, "unavailable")
    assert server.process is not None
    assert server.process.poll() is None, "the server died"

    proxy.open()
    recovered = _first_success(user, "/api/apis")
    assert [api["id"] for api in recovered.json()["data"]["items"]] == [connection]
    assert anonymous.get("/api/health").status_code == 200
    assert user.data("GET", "/api/auth/me")["id"] == user.user["id"]
    found = plan(user, "find available pets")  # the executor recovered as well
    started = user.data("POST", "/api/chat/execute", status=201, json={"planId": found["id"]})
    assert wait_final(user, started["id"])["status"] == "succeeded"


def _first_success(api: Api, path: str) -> httpx.Response:
    """The first 200 of `path`; only 503s may come before it, and only for a while."""
    deadline = time.monotonic() + RECOVERY_S
    while True:
        response = api.get(path)
        if response.status_code == 200:
            return response
        assert response.status_code == 503, response.text[:500]
        assert time.monotonic() < deadline, "no recovery without a restart"
        time.sleep(0.2)
