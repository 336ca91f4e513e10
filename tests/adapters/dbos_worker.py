"""A DBOS worker process for tests, built the way a real one is (`apiq worker --setup`).

`parts` is a `--setup` composition root: this process's own egress client, `Outbound` and
connections, reaching the jobs service named by `APIQ_TEST_JOBS_URL`. Run as a module it is
a worker the tests can SIGKILL:

    python -m tests.adapters.dbos_worker --database-url URL [--start PLAN.json]
        [--until-finished ID] [--executor-id ID] [--concurrency N] [--exit-after-s S]

`--start` starts the plan in this process (approving it as ALICE) and prints
`{"execution_id": ...}`; `--until-finished` prints `{"state": ...}` once that execution
ended and exits. Otherwise it serves until SIGTERM. It always exits after `--exit-after-s`
or when its parent dies, so no test leaves a worker behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio

from apiq.audit.memory import MemoryAuditSink
from apiq.calls import Caller
from apiq.calls.outbound import Outbound
from apiq.catalog import Catalog, build_catalog
from apiq.connections import Connection
from apiq.egress import EgressPolicy, egress_client
from apiq.errors import ConfigurationError
from apiq.execution import Approvals
from apiq.models import Principal
from apiq.redaction import Redactor
from apiq.secrets import MemorySecretStore
from apiq.workflows.model import Plan, SourceDescription, Workflow
from apiq_adapters.dbos import DbosExecutor, DbosSettings
from apiq_adapters.dbos.worker import WorkerParts, serve
from tests.services.jobs import jobs_spec

__all__ = ["ALICE", "JobsConnections", "jobs_plan", "parts"]

ALICE = Principal(id="alice", tenant="acme")


class JobsConnections:
    """ALICE's one connection, `jobs`, to the jobs service at `base_url`."""

    def __init__(self, base_url: str) -> None:
        self.connection = Connection("jobs", "acme", "alice", "jobs", base_url)
        self.catalog = build_catalog(jobs_spec(base_url), source="jobs.json", name="jobs")

    async def resolve(self, principal: Principal, connection_id: str) -> tuple[Connection, Catalog]:
        if connection_id != "jobs" or not self.connection.owned_by(principal):
            raise ConfigurationError(f"no connection {connection_id!r}")
        return self.connection, self.catalog


def jobs_plan(steps: list[dict[str, Any]], **workflow: Any) -> Plan:
    """A plan over the `jobs` connection."""
    document = {"workflowId": "jobs", "steps": steps, **workflow}
    return Plan(
        workflow=Workflow.model_validate(document),
        sources=(SourceDescription(name="jobs", url="https://jobs.example/openapi.json"),),
    )


@asynccontextmanager
async def parts() -> AsyncIterator[WorkerParts]:
    """The worker's composition root (`--setup tests.adapters.dbos_worker:parts`)."""
    base_url = os.environ["APIQ_TEST_JOBS_URL"]
    address = urlsplit(base_url)
    allow = frozenset({(address.hostname or "127.0.0.1", address.port or 80)})
    audit = MemoryAuditSink()
    async with egress_client(EgressPolicy(allow=allow)) as client:
        outbound = Outbound(
            Caller(client),
            secrets=MemorySecretStore(),
            audit=audit,
            redactor=Redactor(hmac_key=b"dbos-worker-test-hmac-key-0123456"),
        )
        yield WorkerParts(outbound, JobsConnections(base_url), audit)


def _say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def _start_and_wait(settings: DbosSettings, plan_file: str, stop: anyio.Event) -> None:
    """Start the plan in `plan_file` here, as an application process would, and wait."""
    spec = json.loads(await anyio.Path(plan_file).read_text(encoding="utf-8"))
    plan = Plan.model_validate(spec["plan"])
    approvals = Approvals()
    async with parts() as worker:
        executor = DbosExecutor(
            worker.outbound,
            worker.connections,
            approvals=approvals,
            audit=worker.audit,
            settings=settings,
        )
        async with executor:
            _say({"ready": executor.executor_id})
            approval = await approvals.grant(ALICE, plan, spec.get("inputs"))
            execution_id = await executor.start(
                ALICE, plan, inputs=spec.get("inputs"), approval=approval.token
            )
            _say({"execution_id": execution_id})
            async with anyio.create_task_group() as group:  # `stop` ends the wait
                group.start_soon(_cancel_on, stop, group.cancel_scope)
                await _report(executor, execution_id)
                group.cancel_scope.cancel()


async def _cancel_on(stop: anyio.Event, scope: anyio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()


async def _report(executor: DbosExecutor, execution_id: str) -> None:
    state = await executor.wait(ALICE, execution_id)
    _say({"state": {"status": state.status, "error": state.error, "outputs": state.outputs}})


async def _stop_when_orphaned(stop: anyio.Event) -> None:
    parent = os.getppid()
    while os.getppid() == parent:  # noqa: ASYNC110 - no event tells a process its parent died
        await anyio.sleep(0.5)
    stop.set()


async def _stop_after(stop: anyio.Event, seconds: float) -> None:
    await anyio.sleep(seconds)
    stop.set()


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--executor-id")
    parser.add_argument("--start")
    parser.add_argument("--until-finished")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--exit-after-s", type=float, default=90.0)
    args = parser.parse_args(argv)
    settings = DbosSettings(
        database_url=args.database_url,
        executor_id=args.executor_id,
        concurrency=args.concurrency,
        queue_poll_s=0.05,
        heartbeat_s=0.2,
        dead_after_s=10.0,  # 50 heartbeats: a starved worker on a loaded machine is not dead
    )
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(_stop_after, stop, args.exit_after_s)
        group.start_soon(_stop_when_orphaned, stop)
        if args.start:
            await _start_and_wait(settings, args.start, stop)
        else:

            async def until_finished(executor: DbosExecutor) -> None:
                await _report(executor, args.until_finished)
                stop.set()

            def ready(executor: DbosExecutor) -> None:
                _say({"ready": executor.executor_id})
                if args.until_finished:
                    group.start_soon(until_finished, executor)

            await serve(parts, settings, ready=ready, stop=stop)
        group.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
