"""Horizontal scale: two `apiq serve` processes and one `apiq worker` on PostgreSQL.

Both servers only enqueue (`APIQ_RUN_EXECUTIONS=false`); the worker runs. A user logs in
on server A and uses the token on server B; a plan made on A is executed through B, and
its live events stream through A while the worker runs it, so events travel through
the database (or Redis), never through one process's memory. Run once without Redis
and once with `APIQ_REDIS_URL`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from apiq.testing.petstore import PetstoreService
from tests.server.harness import (
    FINAL,
    Api,
    ServerProcess,
    api_calls,
    connect_petstore,
    plan,
    register,
    scratch_postgres,
    wait_final,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
STREAM_S = 90.0
"""Bound on how long the event stream may stay open (a limit for a failing test)."""


@dataclass
class Cluster:
    """Two servers, a worker (started on demand) and their shared database."""

    a: ServerProcess
    b: ServerProcess
    database_url: str
    env: dict[str, str]
    folder: Path
    worker_id: str
    worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        with (self.folder / "worker.log").open("ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "apiq", "worker",
                 "--setup", "apiq_server.worker:worker_parts",
                 "--database-url", self.database_url, "--executor-id", self.worker_id],
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def worker_log(self) -> str:
        path = self.folder / "worker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        self.a.stop()
        self.b.stop()


@pytest.fixture(params=[None, REDIS_URL], ids=["postgresql", "postgresql+redis"])
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, petstore_upstream: PetstoreService
) -> Iterator[Cluster]:
    redis_url: str | None = request.param
    with scratch_postgres("apiq_scale") as url:
        env = {
            "APIQ_DATABASE_URL": url,
            "APIQ_KEY_FILE": str(tmp_path / "master.key"),  # one key ring for every process
            "APIQ_EGRESS_ALLOW": f"127.0.0.1:{petstore_upstream.port}",
            "APIQ_MODE": "development",
            "APIQ_RUN_EXECUTIONS": "false",
            "APIQ_RATE_LIMIT_PER_MINUTE": "100000",
        }
        if redis_url is not None:
            env["APIQ_REDIS_URL"] = redis_url
        a = ServerProcess(env=env, log_path=tmp_path / "server-a.log")
        b = ServerProcess(env=env, log_path=tmp_path / "server-b.log")
        found = Cluster(a, b, url, env, tmp_path, worker_id=f"scale-{uuid.uuid4().hex[:8]}")
        try:
            a.start()  # one after the other: the first one migrates the empty database
            b.start()
            yield found
        finally:
            found.stop()


def test_two_servers_and_a_worker_share_sessions_plans_and_live_events(
    cluster: Cluster, petstore_upstream: PetstoreService
) -> None:
    register(cluster.a.base_url, "admin@example.com").client.close()
    with (
        register(cluster.a.base_url) as alice_a,
        Api(cluster.b.base_url, token=alice_a.token, user=alice_a.user) as alice_b,
    ):
        _scale_out(cluster, petstore_upstream, alice_a, alice_b)


def _scale_out(cluster: Cluster, petstore: PetstoreService, alice_a: Api, alice_b: Api) -> None:
    assert alice_b.data("GET", "/api/auth/me")["id"] == alice_a.user["id"]
    if "APIQ_REDIS_URL" in cluster.env:
        assert alice_b.data("GET", "/api/health")["redis"] == "ok"

    connection = connect_petstore(alice_b, petstore)
    assert [api["id"] for api in alice_a.data("GET", "/api/apis")["items"]] == [connection]
    found = plan(alice_a, "find available pets")
    started = alice_b.data("POST", "/api/chat/execute", status=201, json={"planId": found["id"]})
    execution_id = started["id"]
    assert alice_a.data("GET", f"/api/executions/{execution_id}")["status"] not in FINAL

    events: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    stream = threading.Thread(target=_read_events, args=(alice_a, execution_id, events, errors))
    stream.start()  # the stream is open on A before anything runs anywhere
    calls_before = len(api_calls(petstore))
    cluster.start_worker()
    stream.join(STREAM_S)
    assert not stream.is_alive(), f"the stream did not end; worker log:\n{cluster.worker_log()}"
    assert not errors, errors

    kinds = [event["kind"] for event in events]
    assert kinds[0] == "execution.started", kinds
    assert kinds[-1] == "execution.finished", kinds
    assert {"step.started", "step.succeeded"} <= set(kinds), kinds
    assert all(event["executionId"] == execution_id for event in events)
    final = wait_final(alice_b, execution_id)
    assert final["status"] == "succeeded", final
    assert len(api_calls(petstore)) == calls_before + 1  # sent once, by the worker
    assert _executor_of(cluster.database_url, execution_id) == cluster.worker_id
    assert cluster.worker_id in cluster.worker_log()

    alice_b.data("POST", "/api/auth/logout")  # ending the session on B ends it on A
    assert alice_a.get("/api/auth/me").status_code == 401


def _read_events(
    api: Api, execution_id: str, into: list[dict[str, Any]], errors: list[BaseException]
) -> None:
    try:
        _stream(api, execution_id, into)
    except BaseException as exc:  # handed to the test's thread
        errors.append(exc)


def _stream(api: Api, execution_id: str, into: list[dict[str, Any]]) -> None:
    url = f"{api.base_url}/api/executions/{execution_id}/events"
    headers = {"Authorization": f"Bearer {api.token}", "Accept": "text/event-stream"}
    timeout = httpx.Timeout(10.0, read=STREAM_S)
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                into.append(json.loads(line[len("data:") :].strip()))


def _executor_of(database_url: str, execution_id: str) -> str:
    """The DBOS executor that ran `execution_id` (its workflow id is the execution id)."""
    with psycopg.connect(database_url) as db:
        row = db.execute(
            "SELECT executor_id FROM dbos.workflow_status WHERE workflow_uuid = %s",
            (execution_id,),
        ).fetchone()
    assert row is not None, f"no DBOS workflow {execution_id}"
    return str(row[0])
