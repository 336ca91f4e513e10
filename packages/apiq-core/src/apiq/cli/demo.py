"""`apiq demo`: the whole path, offline, on embedded defaults, with nothing to set up.

It starts a real Petstore service on loopback (`apiq.testing.petstore`: an in-memory store,
real validation and status codes) that serves its own OpenAPI description, connects it with
the egress allow-list scoped to exactly that port and its API key, and runs three plain-
English requests end to end with the offline planner: a read, a multi-step read with data
flowing from one step to the next, and one that changes state and so needs approval
(prompted, or `--yes`). It prints each plan, the approval, live progress, the results and
the audit trail.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from apiq.cli.ask import confirm, progress_printer
from apiq.client import Apiq
from apiq.egress import EgressPolicy
from apiq.models import AuditQuery
from apiq.review import results_table
from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService

__all__ = ["DEMO_REQUESTS", "register"]

DEMO_REQUESTS = (
    "find the pets that are available",
    "find the sold pets and then get the details of the first one",
    "find the available pets and order the first one",
)
"""A read, a multi-step read with chaining, and a request that changes state."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo",
        help="run plain-English requests end to end against a bundled demo API on loopback",
        description="Connect a bundled Petstore on loopback and run three requests end to end.",
    )
    parser.add_argument("--yes", action="store_true", help="approve state changes unasked")
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    with PetstoreService() as service:
        policy = EgressPolicy(allow=frozenset({("127.0.0.1", service.port)}))
        async with Apiq(egress=policy) as apiq:
            out.rule("[bold]Connect an API by its OpenAPI description")
            out.print(
                f"Demo API on {service.base_url}; egress allowed to 127.0.0.1:{service.port} "
                "only; its API key goes to an encrypted store, never into a plan or a log.",
                highlight=False,
            )
            connection = await apiq.connect(
                service.spec_url, name="petstore", auth={"api_key": PETSTORE_API_KEY}
            )
            catalog = apiq.catalog(connection.catalog)
            out.print(f"Connected [bold]{connection.id}[/]: {len(catalog)} operations.")
            failures = 0
            for number, request in enumerate(DEMO_REQUESTS, 1):
                out.rule(f"[bold]{number}. “{request}”")
                plan = await apiq.plan(request)
                shown = apiq.review(plan)
                out.print(shown)
                approval = None
                if shown.needs_approval:
                    changing = ", ".join(s.step_id for s in shown.steps if s.changes_state)
                    question = f"{changing} change state. Approve? [y/N] "
                    if not (args.yes or confirm(err, question)):
                        out.print("Not approved: nothing was sent.")
                        continue
                    approval = await apiq.approve(plan)
                    out.print(f"Approved {changing} (single-use token bound to this plan).")
                state = await apiq.execute(plan, approval=approval, on_event=progress_printer(out))
                out.print(results_table(state))
                failures += state.status != "succeeded"

            out.rule("[bold]The audit trail (secrets only as keyed fingerprints)")
            for event in reversed(await apiq.audit.query(AuditQuery(limit=40))):
                out.print(
                    f"{event.at:%H:%M:%S} {event.actor:<6} {event.action:<22} {event.outcome:<6}"
                    f" {event.target or ''}",
                    highlight=False,
                )
    out.rule()
    out.print(
        'Next: [bold]uv run apiq plan "..." --spec path/or/url/to/openapi.json[/] '
        "(or search, run; add --json)."
    )
    return 1 if failures else 0
