"""DbosExecutor on SQLite and PostgreSQL, against the loopback jobs service (issue 4, item 5).

What is proved, with real processes killed by SIGKILL:
- the same plans (a jobs fan-out, the Petstore order flow) give the same results as through
  LocalExecutor; retry waits are durable steps; cancel, ownership and a crashing workflow;
- a worker killed while a request is held open resumes after its last completed call: no
  completed call is sent again, the interrupted one once more with the same Idempotency-Key;
- two workers share 50 queued executions; one is killed and the other finishes its work;
- 100 concurrent 3-step executions finish with nothing lost or duplicated.

PostgreSQL tests create a database each (`apiq_dbos_test_<hex>`) and drop it; they skip,
saying why, only when no server answers at `APIQ_TEST_POSTGRES_URL` (default
`postgresql://postgres@127.0.0.1:5432/postgres`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from dbos import DBOS

from apiq.audit.memory import MemoryAuditSink
from apiq.calls import Caller
from apiq.calls.outbound import Outbound
from apiq.catalog import Catalog, build_catalog
from apiq.connections import ApiKeyAuth, Connection, secret_name
from apiq.egress import egress_client
from apiq.errors import ConfigurationError, ExecutionError
from apiq.execution import Approvals, LocalExecutor
from apiq.models import ExecutionEvent, ExecutionState, Principal
from apiq.redaction import Redactor
from apiq.secrets import MemorySecretStore
from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService
from apiq.workflows.model import Plan, SourceDescription, Workflow
from apiq_adapters.dbos import DbosExecutor, DbosSettings
from apiq_adapters.dbos.worker import WorkerParts
from tests.adapters.dbos_process import WorkerProcess, recorded_calls
from tests.adapters.dbos_worker import ALICE, jobs_plan, parts
from tests.services.flaky import FlakyService
from tests.services.jobs import JobsService

pytestmark = pytest.mark.anyio

MALLORY = Principal(id="mallory", tenant="acme")
POSTGRES = os.environ.get("APIQ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def run_job(step_id: str, name: str, after: str | None = None) -> dict[str, Any]:
    """A step POSTing to job `name`; with `after`, it reads that step's output (so it waits)."""
    step: dict[str, Any] = {
        "stepId": step_id,
        "operationId": "runJob",
        "parameters": [{"name": "name", "in": "path", "value": name}],
        "outputs": {"calls": "$response.body#/calls", "name": "$response.body#/name"},
    }
    if after:
        step["requestBody"] = {
            "contentType": "application/json",
            "payload": {"after": f"$steps.{after}.outputs.calls"},
        }
    return step


def three_steps(tag: str = "{$inputs.tag}") -> Plan:
    """a -> b -> c, each after the previous one, job names prefixed by `$inputs.tag`."""
    return jobs_plan(
        [run_job("a", f"{tag}-a"), run_job("b", f"{tag}-b", "a"), run_job("c", f"{tag}-c", "b")],
        inputs={"type": "object", "properties": {"tag": {"type": "string"}}},
        outputs={"last": "$steps.c.outputs.name"},
    )


FAN_OUT = jobs_plan(
    [
        run_job("a", "a"),
        {
            "stepId": "each",
            "operationId": "runJob",
            "x-apiq-forEach": {"items": "$inputs.items", "maxItems": 10},
            "parameters": [{"name": "name", "in": "path", "value": "$item"}],
            "requestBody": {
                "contentType": "application/json",
                "payload": {"a": "$steps.a.outputs.name"},
            },
            "outputs": {"calls": "$response.body#/calls", "index": "$index"},
        },
        run_job("c", "c", "each"),
    ],
    inputs={"type": "object", "properties": {"items": {"type": "array"}}},
    outputs={"items": "$steps.each.outputs.index", "c": "$steps.c.outputs.name"},
)
FAN_OUT_INPUTS = {"items": ["i0", "i1", "i2", "i3"]}


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[JobsService]:
    with JobsService() as service:
        monkeypatch.setenv("APIQ_TEST_JOBS_URL", service.base_url)
        yield service


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'executions.sqlite'}"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(POSTGRES, connect_timeout=3, autocommit=True).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is unreachable at {POSTGRES} ({exc}); set APIQ_TEST_POSTGRES_URL")
    return POSTGRES


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"apiq_dbos_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = postgres_server.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database URL of the parametrized backend (`sqlite` or `postgres`)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@asynccontextmanager
async def dbos_executor(url: str, **settings: Any) -> AsyncIterator[tuple[DbosExecutor, Approvals]]:
    approvals = Approvals()
    async with parts() as worker:
        executor = DbosExecutor(
            worker.outbound,
            worker.connections,
            approvals=approvals,
            audit=worker.audit,
            settings=DbosSettings(database_url=url, queue_poll_s=0.05, **settings),
        )
        async with executor:
            yield executor, approvals


async def start(
    executor: DbosExecutor | LocalExecutor, approvals: Approvals, plan: Plan, inputs: dict[str, Any]
) -> str:
    approval = await approvals.grant(ALICE, plan, inputs)
    return await executor.start(ALICE, plan, inputs=inputs, approval=approval.token)


def plain(value: Any) -> Any:
    """`value` as JSON gives it back (what crossing the database does to a result)."""
    return json.loads(json.dumps(value, default=str))


def without_timings(steps: Any) -> Any:
    """Step records without durations, and without the `request` of a forEach step: it
    is the last item's to answer, which varies from run to run in any executor."""
    steps = plain(steps)
    for step_id, record in steps.items():
        if "request" in record:
            record["request"].pop("duration_ms", None)
        if step_id == "each":
            record.pop("request", None)
    return steps


async def run_both(
    worker_parts: Callable[[], AbstractAsyncContextManager[WorkerParts]],
    plan: Plan,
    inputs: dict[str, Any],
    sqlite_url: str,
    between: Callable[[], object],
) -> tuple[tuple[ExecutionState, list[ExecutionEvent]], ...]:
    """(state, events) of `plan` through LocalExecutor, then (after `between`) DbosExecutor."""
    runs = []
    async with worker_parts() as worker:
        approvals = Approvals()
        local = LocalExecutor(
            worker.outbound, worker.connections, approvals=approvals, audit=worker.audit
        )
        async with local:
            execution_id = await start(local, approvals, plan, inputs)
            events = [e async for e in local.events(ALICE, execution_id)]
            runs.append((await local.wait(ALICE, execution_id), events))
        between()
        approvals = Approvals()
        durable = DbosExecutor(
            worker.outbound,
            worker.connections,
            approvals=approvals,
            audit=worker.audit,
            settings=DbosSettings(database_url=sqlite_url),
        )
        async with durable:
            execution_id = await start(durable, approvals, plan, inputs)
            events = [e async for e in durable.events(ALICE, execution_id)]
            runs.append((await durable.wait(ALICE, execution_id), events))
    return tuple(runs)


def assert_same(
    local: ExecutionState, state: ExecutionState, local_events: Any, events: Any
) -> None:
    assert local.status == state.status == "succeeded", (local.error, state.error)
    assert plain(state.outputs) == plain(local.outputs)
    assert without_timings(state.steps) == without_timings(local.steps)
    assert state.plan_digest == local.plan_digest
    kinds = [(e.kind, e.step_id) for e in events]
    assert sorted(kinds) == sorted((e.kind, e.step_id) for e in local_events)
    assert kinds[0] == ("execution.started", None)
    assert kinds[-1] == ("execution.finished", None)
    succeeded = {e.step_id: e.detail for e in events if e.kind == "step.succeeded"}
    local_succeeded = {e.step_id: e.detail for e in local_events if e.kind == "step.succeeded"}
    assert without_timings(succeeded) == without_timings(local_succeeded)


async def test_a_fan_out_gives_the_same_results_as_through_local_executor(
    jobs: JobsService, sqlite_url: str
) -> None:
    calls: list[dict[str, int]] = []

    def between() -> None:
        calls.append(jobs.names())
        jobs.reset()

    (local, local_events), (state, events) = await run_both(
        parts, FAN_OUT, FAN_OUT_INPUTS, sqlite_url, between
    )
    assert_same(local, state, local_events, events)
    assert state.outputs == {"items": [0, 1, 2, 3], "c": "c"}
    assert jobs.names() == calls[0] == {"a": 1, "i0": 1, "i1": 1, "i2": 1, "i3": 1, "c": 1}


PETSTORE_STEPS = [
    {
        "stepId": "find",
        "operationId": "findPetsByStatus",
        "parameters": [{"name": "status", "in": "query", "value": "$inputs.status"}],
        "outputs": {"first": "$response.body#/0/id"},
    },
    {
        "stepId": "detail",
        "operationId": "getPetById",
        "parameters": [{"name": "petId", "value": "$steps.find.outputs.first"}],
        "successCriteria": [{"condition": "$statusCode == 200"}],
        "outputs": {"name": "$response.body#/name", "id": "$response.body#/id"},
    },
    {
        "stepId": "order",
        "operationId": "placeOrder",
        "requestBody": {
            "contentType": "application/json",
            "payload": {"petId": "$steps.detail.outputs.id", "quantity": 1, "status": "placed"},
        },
        "outputs": {"orderId": "$response.body#/id"},
    },
    {
        "stepId": "check",
        "operationId": "getOrderById",
        "parameters": [{"name": "orderId", "in": "path", "value": "$steps.order.outputs.orderId"}],
        "outputs": {"status": "$response.body#/status"},
    },
]


async def test_the_petstore_plan_gives_the_same_results_as_through_local_executor(
    petstore_service: PetstoreService, sqlite_url: str
) -> None:
    plan = Plan(
        workflow=Workflow.model_validate(
            {
                "workflowId": "pets",
                "steps": PETSTORE_STEPS,
                "inputs": {"type": "object", "properties": {"status": {"type": "string"}}},
                "outputs": {
                    "order": "$steps.check.outputs.status",
                    "pet": "$steps.detail.outputs.name",
                },
            }
        ),
        sources=(SourceDescription(name="pets", url="https://petstore.example/openapi.json"),),
    )
    sent: list[list[tuple[str, str, str | None]]] = []

    def between() -> None:
        sent.append(requests_of(petstore_service))
        petstore_service.reset()

    @asynccontextmanager
    async def petstore_parts() -> AsyncIterator[WorkerParts]:
        secrets = MemorySecretStore()
        name = secret_name("pets", "api_key", "api_key")
        await secrets.put(ALICE, name, PETSTORE_API_KEY.encode())
        auth = {"api_key": ApiKeyAuth("api_key", name)}
        connection = Connection(
            "pets", "acme", "alice", "petstore", petstore_service.base_url, auth
        )
        catalog = build_catalog(petstore_service.served_spec(), source="pets.json", name="petstore")
        audit = MemoryAuditSink()
        async with egress_client(petstore_service.egress_policy) as client:
            redactor = Redactor(hmac_key=b"dbos-executor-test-hmac-key-01234")
            outbound = Outbound(Caller(client), secrets=secrets, audit=audit, redactor=redactor)
            yield WorkerParts(outbound, OwnConnections({"pets": (connection, catalog)}), audit)

    (local, local_events), (state, events) = await run_both(
        petstore_parts, plan, {"status": "available"}, sqlite_url, between
    )
    assert_same(local, state, local_events, events)
    assert state.outputs == {"order": "placed", "pet": "doggie"}
    # The same requests, in the same order; the order POST carried an Idempotency-Key
    # derived from the execution id (so it differs between the two executions).
    durable_sent = requests_of(petstore_service)
    assert [r[:2] for r in durable_sent] == [r[:2] for r in sent[0]]
    assert str(durable_sent[2][2]).startswith("apiq-")


def requests_of(service: PetstoreService) -> list[tuple[str, str, str | None]]:
    return [(r.method, r.path, r.headers.get("idempotency-key")) for r in service.requests]


class OwnConnections:
    """Connections by id, each usable only by its owner."""

    def __init__(self, entries: dict[str, tuple[Connection, Catalog]]) -> None:
        self.entries = entries

    async def resolve(self, principal: Principal, connection_id: str) -> tuple[Connection, Catalog]:
        found = self.entries.get(connection_id)
        if found is None or not found[0].owned_by(principal):
            raise ConfigurationError(f"no connection {connection_id!r}")
        return found


async def test_sqlite_runs_in_wal_mode(jobs: JobsService, sqlite_url: str) -> None:
    async with dbos_executor(sqlite_url):
        pass
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@BACKENDS
async def test_a_killed_worker_resumes_after_its_last_completed_call(
    jobs: JobsService, backend: str, tmp_path: Path
) -> None:
    # The forEach items finish in any order while i2 is held open; the worker dies then.
    jobs.hold("i2")
    spec = {"plan": FAN_OUT.model_dump(mode="json"), "inputs": FAN_OUT_INPUTS}
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(spec))
    env = {"APIQ_TEST_JOBS_URL": jobs.base_url}
    url = ["--database-url", backend]
    sqlite = backend.startswith("sqlite")
    async with AsyncExitStack() as stack:
        if sqlite:  # the embedded backend runs what it starts: the worker starts it
            first = WorkerProcess(tmp_path, "first", [*url, "--start", str(plan_file)], env)
            execution_id = await first.expect("execution_id")
        else:  # enqueued by this process, which runs nothing
            executor, approvals = await stack.enter_async_context(
                dbos_executor(backend, worker=False)
            )
            first = WorkerProcess(tmp_path, "first", [*url, "--executor-id", "worker-a"], env)
            execution_id = await start(executor, approvals, FAN_OUT, FAN_OUT_INPUTS)
        with first:
            assert await anyio.to_thread.run_sync(jobs.wait_for, "i2"), first.log()
            # a, i0, i1 and i3 answered and DBOS recorded them; i2 is in flight.
            with anyio.fail_after(30):
                # Polled: the count lives in another process's database writes.
                while await anyio.to_thread.run_sync(recorded_calls, backend, execution_id) < 4:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            first.kill()
        jobs.release("i2")
        assert jobs.names() == {"a": 1, "i0": 1, "i1": 1, "i2": 1, "i3": 1}
        # SQLite: a restart under the same executor id resumes; PostgreSQL: a peer recovers.
        again = [*url, "--executor-id", "apiq-local" if sqlite else "worker-b"]
        with WorkerProcess(
            tmp_path, "second", [*again, "--until-finished", execution_id], env
        ) as second:
            reported = await second.expect("state", within_s=60)
            assert reported["status"] == "succeeded", second.log()
    # Read back from a process that ran none of it.
    async with dbos_executor(backend, worker=False, executor_id="reader") as (reader, _):
        state = await reader.wait(ALICE, execution_id)
        events = [(e.kind, e.step_id) for e in await collect(reader, execution_id)]
    assert state.status == "succeeded", state.error
    assert state.outputs == {"items": [0, 1, 2, 3], "c": "c"}
    # Completed calls were not sent again; the interrupted one once more, same key.
    assert jobs.names() == {"a": 1, "i0": 1, "i1": 1, "i2": 2, "i3": 1, "c": 1}
    first_key, second_key = jobs.keys("i2")
    assert first_key == second_key
    assert str(first_key).startswith("apiq-")
    assert len(set(jobs.keys("a") + jobs.keys("i0") + jobs.keys("i1") + jobs.keys("i3"))) == 4
    # The replay re-emitted every event; each is stored once.
    assert events.count(("step.succeeded", "a")) == 1
    assert events.count(("step.started", "each")) == 1
    assert events.count(("execution.finished", None)) == 1
    assert events[-1] == ("execution.finished", None)


async def collect(executor: DbosExecutor, execution_id: str) -> list[Any]:
    with anyio.fail_after(30):
        return [e async for e in executor.events(ALICE, execution_id)]


async def test_two_workers_share_the_queue_and_one_finishes_what_a_killed_one_began(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with JobsService(delay_s=0.1) as jobs:
        monkeypatch.setenv("APIQ_TEST_JOBS_URL", jobs.base_url)
        env = {"APIQ_TEST_JOBS_URL": jobs.base_url}
        plan = three_steps()
        async with dbos_executor(postgres_url, worker=False) as (executor, approvals):
            ids = {
                await start(executor, approvals, plan, {"tag": f"t{n}"}): f"t{n}" for n in range(50)
            }
            common = ["--database-url", postgres_url, "--concurrency", "5"]
            with (
                WorkerProcess(tmp_path, "a", [*common, "--executor-id", "worker-a"], env) as a,
                WorkerProcess(tmp_path, "b", [*common, "--executor-id", "worker-b"], env) as b,
            ):
                await a.expect("ready")
                await b.expect("ready")
                # Kill worker-a once it finished some executions and is running others.
                with anyio.fail_after(30):
                    while True:
                        done = await DBOS.list_workflows_async(
                            status="SUCCESS", executor_id="worker-a"
                        )
                        held = await DBOS.list_workflows_async(
                            status="PENDING", executor_id="worker-a"
                        )
                        if len(done) >= 2 and held:
                            break
                        await anyio.sleep(0.02)
                a.kill()
                # What it held at its death: read after its last COMMITs reached the server
                # and before any peer may recover it (dead_after_s = 10 s).
                await anyio.sleep(0.3)
                held = await DBOS.list_workflows_async(status="PENDING", executor_id="worker-a")
                assert held
                # Follow the moved executions live, from this process, while worker-b runs them.
                followed: dict[str, list[tuple[str, str | None]]] = {}

                async def follow(execution_id: str) -> None:
                    events = [(e.kind, e.step_id) for e in await collect(executor, execution_id)]
                    followed[execution_id] = events

                with anyio.fail_after(90):
                    async with anyio.create_task_group() as group:
                        for moved in held:
                            group.start_soon(follow, moved.workflow_id)
                        states = {i: await executor.wait(ALICE, i) for i in ids}
                finished_on = {
                    s.workflow_id: s.executor_id
                    for s in await DBOS.list_workflows_async(workflow_ids=list(ids))
                }

    assert {s.status for s in states.values()} == {"succeeded"}, b.log()
    assert {finished_on[h.workflow_id] for h in held} == {"worker-b"}
    for events in followed.values():  # begun on worker-a, replayed on worker-b: each once
        assert [events.count(("step.succeeded", step)) for step in "abc"] == [1, 1, 1]
        assert events.count(("execution.finished", None)) == 1
        assert events[-1] == ("execution.finished", None)
    assert set(finished_on.values()) == {"worker-a", "worker-b"}
    duplicated = 0
    for tag in ids.values():
        for step in "abc":
            keys = jobs.keys(f"{tag}-{step}")
            assert 1 <= len(keys) <= 2, (tag, step, keys)
            assert len(set(keys)) == 1, "a re-sent call carries the same Idempotency-Key"
            duplicated += len(keys) - 1
    assert duplicated <= 5, "only the calls in flight on the killed worker were sent again"


@BACKENDS
async def test_a_hundred_concurrent_three_step_executions(jobs: JobsService, backend: str) -> None:
    problems = _DatabaseTrouble()
    logging.getLogger("dbos").addHandler(problems)
    try:
        async with dbos_executor(backend, concurrency=100) as (executor, approvals):
            plan = three_steps()
            with anyio.fail_after(120):
                ids: dict[str, str] = {}

                async def one(n: int) -> None:
                    ids[await start(executor, approvals, plan, {"tag": f"t{n}"})] = f"t{n}"

                async with anyio.create_task_group() as group:
                    for n in range(100):
                        group.start_soon(one, n)
                states = {i: await executor.wait(ALICE, i) for i in ids}
                finished = [
                    [e.kind for e in await collect(executor, i)].count("execution.finished")
                    for i in ids
                ]
    finally:
        logging.getLogger("dbos").removeHandler(problems)
    assert len(ids) == 100
    assert {s.status for s in states.values()} == {"succeeded"}, {s.error for s in states.values()}
    assert finished == [1] * 100
    assert jobs.names() == {f"t{n}-{step}": 1 for n in range(100) for step in "abc"}
    assert problems.records == []


class _DatabaseTrouble(logging.Handler):
    """Collects DBOS's warnings about locks, pools and retried database errors."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().lower()
        if any(word in text for word in ("locked", "pool", "timeout", "retry", "busy")):
            self.records.append(record.getMessage())


async def test_cancel_stops_before_the_next_call(jobs: JobsService, sqlite_url: str) -> None:
    jobs.hold("t-b")
    async with dbos_executor(sqlite_url) as (executor, approvals):
        execution_id = await start(executor, approvals, three_steps(), {"tag": "t"})
        assert await anyio.to_thread.run_sync(jobs.wait_for, "t-b")
        await executor.cancel(ALICE, execution_id)
        jobs.release("t-b")
        state = await executor.wait(ALICE, execution_id)
    assert state.status == "cancelled"
    assert jobs.names() == {"t-a": 1, "t-b": 1}


async def test_another_principal_cannot_see_or_cancel_an_execution(
    jobs: JobsService, sqlite_url: str
) -> None:
    async with dbos_executor(sqlite_url) as (executor, approvals):
        execution_id = await start(executor, approvals, three_steps(), {"tag": "t"})
        for attempt in (
            executor.state(MALLORY, execution_id),
            executor.cancel(MALLORY, execution_id),
            executor.state(ALICE, "no-such-execution"),
        ):
            with pytest.raises(ExecutionError, match="no execution"):
                await attempt
        with pytest.raises(ExecutionError, match="no execution"):
            await anext(aiter(executor.events(MALLORY, execution_id)))
        assert (await executor.wait(ALICE, execution_id)).status == "succeeded"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"database_url": "mysql://db/x"}, "not supported"),
        ({"concurrency": 0}, "concurrency"),
        ({"events_poll_s": 0}, "events_poll_s"),
        ({"heartbeat_s": 5, "dead_after_s": 6}, "dead_after_s"),
        ({"sqlite_synchronous": "OFF"}, "synchronous"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DbosSettings(**settings)


def test_a_missing_dbos_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from apiq.errors import MissingDependencyError

    for name in [
        m for m in sys.modules if m == "apiq_adapters.dbos" or m.startswith("apiq_adapters.dbos.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dbos", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'apiq-adapters\[dbos\]'"):
        import apiq_adapters.dbos  # noqa: F401


FLAKY_SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "flaky", "version": "1"},
    "paths": {
        "/ratelimited/{n}": {
            "get": {
                "operationId": "limited",
                "parameters": [
                    {"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {"name": "key", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "ok"}},
            }
        }
    },
}


def limited(n: int, key: str, retries: int) -> Plan:
    """One GET that answers 429 (Retry-After: 1) `n` times, retried by the plan."""
    step = {
        "stepId": "limited",
        "operationId": "limited",
        "parameters": [
            {"name": "n", "in": "path", "value": n},
            {"name": "key", "in": "query", "value": key},
        ],
        "onFailure": [{"name": "again", "type": "retry", "retryAfter": 0, "retryLimit": retries}],
        "outputs": {"calls": "$response.body#/calls"},
    }
    return Plan(
        workflow=Workflow.model_validate({"workflowId": "flaky", "steps": [step]}),
        sources=(SourceDescription(name="flaky", url="https://flaky.example/openapi.json"),),
    )


async def test_a_retry_wait_is_a_durable_step_and_a_cancel_cuts_it_short(
    flaky_service: FlakyService, sqlite_url: str
) -> None:
    async def no_sleep(seconds: float) -> None:
        return None

    connection = Connection("flaky", "acme", "alice", "flaky", flaky_service.base_url)
    catalog = build_catalog(FLAKY_SPEC, source="flaky.json", name="flaky")
    audit = MemoryAuditSink()
    approvals = Approvals()
    async with egress_client(flaky_service.egress_policy) as client:
        outbound = Outbound(
            Caller(client, sleep=no_sleep),  # the caller's own retries do not wait
            secrets=MemorySecretStore(),
            audit=audit,
            redactor=Redactor(hmac_key=b"dbos-executor-test-hmac-key-01234"),
        )
        connections = OwnConnections({"flaky": (connection, catalog)})
        settings = DbosSettings(database_url=sqlite_url)
        async with DbosExecutor(
            outbound, connections, approvals=approvals, audit=audit, settings=settings
        ) as executor:
            # 3 attempts answer 429; the plan waits the upstream's Retry-After (1 s), then
            # the 4th call succeeds.
            retried = await executor.start(ALICE, limited(3, "retried", 2))
            events = await collect(executor, retried)
            state = await executor.wait(ALICE, retried)
            steps = await DBOS.list_workflow_steps_async(retried)
            # A cancel during the wait ends it at once; nothing more is sent.
            cancelled = await executor.start(ALICE, limited(50, "cancelled", 10))
            async for event in executor.events(ALICE, cancelled):
                if event.kind == "step.retrying":
                    await executor.cancel(ALICE, cancelled)
            cancelled_state = await executor.state(ALICE, cancelled)
    assert state.status == "succeeded", state.error
    assert state.steps["limited"]["outputs"]["calls"] == 4
    [retrying] = [e for e in events if e.kind == "step.retrying"]
    assert retrying.detail["wait_s"] == 1.0
    assert [s["function_name"] for s in steps] == [
        "apiq.call limited/-/0",
        "apiq.sleep limited/-/0/0",
        "apiq.call limited/-/1",
    ]
    assert isinstance(steps[1]["output"], float), "the wake-up time is what is recorded"
    assert cancelled_state.status == "cancelled"
    assert flaky_service.calls("/ratelimited/50", "cancelled") == 3


def test_the_worker_command_line(tmp_path: Path) -> None:
    import argparse

    from apiq_adapters.dbos.worker import load_setup
    from apiq_adapters.worker_command import register

    parser = argparse.ArgumentParser(prog="apiq")
    register(parser.add_subparsers())
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    args = parser.parse_args(
        ["worker", "--setup", "tests.adapters.dbos_worker:parts", "--database-url", url]
    )
    assert (args.database_url, args.concurrency, args.dead_after_s) == (url, 100, 15.0)
    assert callable(args.handler)
    assert load_setup(args.setup) is parts
    for reference, message in (
        ("no-colon", "must look like"),
        ("tests.adapters.nowhere:parts", "cannot be loaded"),
        ("tests.adapters.dbos_worker:ALICE", "not callable"),
    ):
        with pytest.raises(ConfigurationError, match=message):
            load_setup(reference)


class BrokenAfterAdmission:
    """Resolves once (for `admit`), then fails as a bug would: not an APIQ error."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def resolve(self, principal: Principal, connection_id: str) -> Any:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("connection store crashed")
        return await self.inner.resolve(principal, connection_id)


async def test_a_workflow_that_crashes_ends_failed_and_its_events_end(
    jobs: JobsService, sqlite_url: str
) -> None:
    async with parts() as worker:
        approvals = Approvals()
        executor = DbosExecutor(
            worker.outbound,
            BrokenAfterAdmission(worker.connections),
            approvals=approvals,
            audit=worker.audit,
            settings=DbosSettings(database_url=sqlite_url),
        )
        async with executor:
            execution_id = await start(executor, approvals, three_steps(), {"tag": "t"})
            with anyio.fail_after(30):
                events = [e async for e in executor.events(ALICE, execution_id)]
                state = await executor.wait(ALICE, execution_id)
            with pytest.raises(ConfigurationError, match="already running"):
                async with DbosExecutor(
                    worker.outbound, worker.connections, approvals=approvals, audit=worker.audit
                ):
                    pass
    assert state.status == "failed"
    assert "ERROR" in (state.error or "")
    assert "connection store crashed" in (state.error or "")
    assert events == []
    assert jobs.names() == {}


# The checks DBOS made at every step, now made by APIQ's own checkpoints
# (`apiq_adapters.dbos.checkpoints`) before each call: a run whose workflow another process
# took over writes nothing more, a DBOS cancel stops the run before its next call, and a
# checkpoint written twice is idempotent while a conflicting one is refused.


async def _until_run_ends(executor: DbosExecutor, execution_id: str) -> None:
    with anyio.fail_after(20):
        while execution_id in executor._host.runs:  # type: ignore[union-attr]  # noqa: ASYNC110 - polls another task's state
            await anyio.sleep(0.05)


async def test_a_run_that_lost_its_workflow_writes_nothing_more(
    jobs: JobsService, sqlite_url: str
) -> None:
    jobs.hold("t-b")
    async with dbos_executor(sqlite_url) as (executor, approvals):
        execution_id = await start(executor, approvals, three_steps(), {"tag": "t"})
        assert await anyio.to_thread.run_sync(jobs.wait_for, "t-b")
        path = sqlite_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:  # as if another process recovered it
            conn.execute(
                "UPDATE workflow_status SET owner_xid='someone-else' WHERE workflow_uuid=?",
                (execution_id,),
            )
        jobs.release("t-b")
        await _until_run_ends(executor, execution_id)
        await anyio.sleep(0.3)
        with sqlite3.connect(path) as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT function_name FROM operation_outputs WHERE workflow_uuid=? "
                    "ORDER BY function_id",
                    (execution_id,),
                )
            ]
            (status,) = conn.execute(
                "SELECT status FROM apiq_executions WHERE execution_id=?", (execution_id,)
            ).fetchone()
            kinds = [
                r[0]
                for r in conn.execute(
                    "SELECT kind FROM apiq_execution_events WHERE execution_id=? ORDER BY seq",
                    (execution_id,),
                )
            ]
    assert names == ["apiq.call a/-/0"]
    assert status == "running"
    assert "execution.finished" not in kinds
    assert kinds.count("step.succeeded") == 1
    assert jobs.names() == {"t-a": 1, "t-b": 1}


async def test_a_dbos_cancel_stops_before_the_next_call(jobs: JobsService, sqlite_url: str) -> None:
    jobs.hold("t-b")
    async with dbos_executor(sqlite_url) as (executor, approvals):
        execution_id = await start(executor, approvals, three_steps(), {"tag": "t"})
        assert await anyio.to_thread.run_sync(jobs.wait_for, "t-b")
        await DBOS.cancel_workflow_async(execution_id)
        jobs.release("t-b")
        await _until_run_ends(executor, execution_id)
        state = await executor.state(ALICE, execution_id)
    assert jobs.names() == {"t-a": 1, "t-b": 1}
    assert state.status == "cancelled"


async def test_a_rewritten_checkpoint_is_idempotent(jobs: JobsService, sqlite_url: str) -> None:
    from apiq_adapters.dbos.checkpoints import Checkpoint

    async with dbos_executor(sqlite_url) as (executor, approvals):
        execution_id = await start(executor, approvals, three_steps(), {"tag": "t"})
        await executor.wait(ALICE, execution_id)
        path = sqlite_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            row = conn.execute(
                "SELECT function_id, function_name, output, serialization, "
                "started_at_epoch_ms, completed_at_epoch_ms FROM operation_outputs "
                "WHERE workflow_uuid=? ORDER BY function_id LIMIT 1",
                (execution_id,),
            ).fetchone()
        store = executor._store
        same = Checkpoint(execution_id, row[0], row[1], row[2], None, *row[3:], None)
        assert await store.run(store.write, [same]) == {}
        other = Checkpoint(execution_id, row[0], "apiq.call x/-/0", row[2], None, *row[3:], None)
        stops = await store.run(store.write, [other])
        assert type(next(iter(stops.values()))).__name__ == "DBOSStepNondeterminismError"
