"""`apiq search`, `apiq plan`, `apiq run`: plain English over one or more API descriptions.

Each takes the request and `--spec` once per API. Credentials come from the environment,
never the command line (where every user of the machine can read them): `--auth
SCHEME=ENV_VAR` reads the value of ENV_VAR for the security scheme SCHEME. `--json` prints
machine-readable output: search -> `{"operations": [{method, path, operationId, score,
source, summary}]}`; plan -> `{"steps": [{method, path, operationId, arguments, ...}]}`;
run -> the plan and the final state.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from rich.console import Console

from apiq.client import Apiq
from apiq.errors import ConfigurationError
from apiq.models import ExecutionEvent, ExecutionState
from apiq.review import Review, results_table

__all__ = ["confirm", "progress_printer", "register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, handler, text in (
        ("search", _search, "rank the operations that match a plain-English request"),
        ("plan", _plan, "plan a plain-English request as API calls (nothing is sent)"),
        ("run", _run, "plan, approve and execute a plain-English request"),
    ):
        parser = commands.add_parser(name, help=text, description=text)
        parser.add_argument("request", help='what you want, e.g. "find available pets"')
        parser.add_argument(
            "--spec", action="append", required=True, metavar="SPEC",
            help="OpenAPI description URL or file; repeat for several APIs",
        )  # fmt: skip
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "search":
            parser.add_argument("-k", type=int, default=10, help="how many operations (10)")
        else:
            parser.add_argument(
                "--auth", action="append", default=[], metavar="SCHEME=ENV_VAR",
                help="credential of security scheme SCHEME, read from environment variable",
            )  # fmt: skip
            parser.add_argument("--base-url", help="call this base URL instead of the spec's")
        if name == "run":
            parser.add_argument("--yes", action="store_true", help="approve without asking")
        parser.set_defaults(handler=handler)


async def _connect(apiq: Apiq, args: argparse.Namespace) -> None:
    auth = _auth(getattr(args, "auth", []))
    base_url = getattr(args, "base_url", None)
    if base_url and len(args.spec) > 1:
        raise ConfigurationError("--base-url applies to one --spec only")
    for spec in args.spec:
        catalog = await apiq.load(spec)
        known = set(catalog.security_schemes)
        await apiq.connect(
            catalog, auth={k: v for k, v in auth.items() if k in known}, base_url=base_url
        )


def _auth(pairs: list[str]) -> dict[str, str]:
    auth: dict[str, str] = {}
    for pair in pairs:
        scheme, sep, variable = pair.partition("=")
        if not sep or not scheme or not variable:
            raise ConfigurationError(f"--auth {pair!r}: write SCHEME=ENV_VAR")
        value = os.environ.get(variable)
        if not value:
            raise ConfigurationError(
                f"--auth {scheme}: environment variable {variable} is not set or empty"
            )
        auth[scheme] = value
    return auth


async def _search(args: argparse.Namespace, out: Console, err: Console) -> int:
    async with Apiq.from_env() as apiq:
        await _connect(apiq, args)
        hits = await apiq.search(args.request, k=args.k)
    rows = [
        {
            "source": hit.source,
            "method": hit.operation.method.upper(),
            "path": hit.operation.path,
            "operationId": hit.operation_id,
            "score": round(hit.score, 4),
            "summary": hit.operation.summary,
        }
        for hit in hits
    ]
    if args.json:
        out.print_json(json.dumps({"request": args.request, "operations": rows}))
        return 0
    for rank, row in enumerate(rows, 1):
        out.print(
            f"{rank:>2}. {row['score']:7.3f}  [bold]{row['method']:<6}[/] {row['path']}  "
            f"[cyan]{row['operationId']}[/] ({row['source']}) {row['summary']}",
            highlight=False,
        )
    if not rows:
        err.print("no operation matches; try other words")
    return 0


async def _plan(args: argparse.Namespace, out: Console, err: Console) -> int:
    async with Apiq.from_env() as apiq:
        await _connect(apiq, args)
        plan = await apiq.plan(args.request)
        shown = apiq.review(plan)
    if args.json:
        out.print_json(json.dumps(shown.as_json()))
    else:
        out.print(shown)
    return 0


async def _run(args: argparse.Namespace, out: Console, err: Console) -> int:
    async with Apiq.from_env() as apiq:
        await _connect(apiq, args)
        plan = await apiq.plan(args.request)
        shown = apiq.review(plan)
        if not args.json:
            out.print(shown)
        approval = None
        if shown.needs_approval:
            if not (args.yes or _confirm(shown, err)):
                err.print("not approved; nothing was sent")
                return 1
            approval = await apiq.approve(plan)
        state = await apiq.execute(
            plan, approval=approval, on_event=None if args.json else progress_printer(out)
        )
    if args.json:
        out.print_json(json.dumps({"plan": shown.as_json(), "result": _state_json(state)}))
    else:
        out.print(results_table(state))
        if state.outputs:
            out.print_json(json.dumps(state.outputs, default=str))
    return 0 if state.status == "succeeded" else 1


def _confirm(shown: Review, err: Console) -> bool:
    changing = [s.step_id for s in shown.steps if s.changes_state]
    return confirm(err, f"Steps {', '.join(changing)} change state. Approve this plan? [y/N] ")


def confirm(err: Console, question: str) -> bool:
    """Ask on the terminal; no answer (end of input, no terminal) means no."""
    try:
        answer = err.input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def progress_printer(out: Console) -> Callable[[ExecutionEvent], None]:
    """Prints execution events as one line each, as they happen."""

    def show(event: ExecutionEvent) -> None:
        detail = event.detail
        if event.kind == "step.succeeded":
            request = detail.get("request") or {}
            out.print(
                f"  [green]✓[/] {event.step_id}: {request.get('method')} {request.get('url')} "
                f"-> {request.get('status')} ({request.get('duration_ms')} ms)",
                highlight=False,
            )
        elif event.kind in ("step.failed", "step.retrying", "step.skipped"):
            out.print(f"  [yellow]•[/] {event.step_id}: {event.kind[5:]} {detail}", highlight=False)
        elif event.kind == "execution.finished":
            out.print(f"  finished: {detail.get('status')}", highlight=False)

    return show


def _state_json(state: ExecutionState) -> dict[str, Any]:
    return {
        "executionId": state.execution_id,
        "status": state.status,
        "steps": state.steps,
        "outputs": state.outputs,
        "error": state.error,
    }
