"""Run `apiq serve` as a real process on loopback and talk to it over HTTP.

`ServerProcess` starts the server with an environment (database, egress allow-list, key
file) and waits for `/api/health`; `Api` is a small client over httpx that logs in with a
bearer token and unwraps the response envelope.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService
from tests.adapters.sql_backends import postgres_server

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """One `apiq serve` process; `base_url` once started."""

    env: Mapping[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *args: str, timeout_s: float = 60.0) -> ServerProcess:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "apiq", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), *args],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"apiq serve exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(self.base_url + "/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"apiq serve did not answer:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Api:
    """A client of one server, logged in (bearer token) or anonymous."""

    base_url: str
    token: str | None = None
    user: dict[str, Any] = field(default_factory=dict)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.client.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def data(self, method: str, path: str, *, status: int = 200, **kwargs: Any) -> Any:
        """The `data` of a successful response; fails the test on another status."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, (
            f"{method} {path}: {response.status_code} {response.text[:800]}"
        )
        body = response.json()
        assert body["success"] is True, body
        return body["data"]


def register(base_url: str, email: str | None = None, password: str = PASSWORD) -> Api:
    """Register a new user and log in; returns their client."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    with Api(base_url) as anonymous:
        anonymous.data(
            "POST", "/api/auth/register", status=201, json={"email": email, "password": password}
        )
    return login(base_url, email, password)


def login(base_url: str, email: str, password: str = PASSWORD) -> Api:
    """Log in; returns a client holding the bearer token (close it, or use it in `with`)."""
    with Api(base_url) as anonymous:
        data = anonymous.data(
            "POST", "/api/auth/login", json={"email": email, "password": password}
        )
    return Api(base_url, token=data["token"], user=data["user"])


@contextmanager
def scratch_postgres(prefix: str = "apiq_srv") -> Iterator[str]:
    """A new empty PostgreSQL database for one server (dropped after); skips the test when
    PostgreSQL does not answer, unless `APIQ_REQUIRE_SERVICES` makes that a failure."""
    import psycopg

    server = postgres_server()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


FINAL = ("succeeded", "failed", "cancelled")
WAIT_S = 60.0
"""How long a test waits for an execution to end before failing (a bound, not a timing)."""


def connect_petstore(api: Api, petstore: PetstoreService, name: str = "petstore") -> str:
    """Register the loopback Petstore for `api`'s user; returns the connection id."""
    body = {
        "name": name,
        "specUrl": petstore.spec_url,
        "credentials": {"api_key": {"value": PETSTORE_API_KEY}},
    }
    connection: dict[str, Any] = api.data("POST", "/api/apis", status=201, json=body)
    return str(connection["id"])


def plan(api: Api, message: str) -> dict[str, Any]:
    """`POST /api/chat`; the plan."""
    found: dict[str, Any] = api.data("POST", "/api/chat", status=201, json={"message": message})
    return found


def wait_final(api: Api, execution_id: str) -> dict[str, Any]:
    """Poll the execution until it ends; its final state."""
    deadline = time.monotonic() + WAIT_S
    while True:
        state: dict[str, Any] = api.data("GET", f"/api/executions/{execution_id}")
        if state["status"] in FINAL:
            return state
        assert time.monotonic() < deadline, f"execution still {state['status']}: {state}"
        time.sleep(0.1)


def api_calls(petstore: PetstoreService) -> list[tuple[str, str]]:
    """(method, path) of every call the Petstore API received (spec fetches left out)."""
    return [(r.method, r.path) for r in list(petstore.requests) if r.path.startswith("/v2/")]


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The error body of a failed response, after checking its status."""
    assert response.status_code == status, response.text[:800]
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    return dict(body["error"])
