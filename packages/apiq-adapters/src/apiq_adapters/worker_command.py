"""The `apiq worker` command line (entry point `apiq.commands: worker`).

Declared apart from `apiq_adapters.dbos` so that `apiq` lists the command, and explains the
missing extra when it runs, on an install without DBOS (`pip install 'apiq-adapters[dbos]'`).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["register"]

DEFAULT_DATABASE_URL = "sqlite:///apiq-executions.sqlite"
"""As `apiq_adapters.dbos.DEFAULT_DATABASE_URL` (not imported: DBOS may be missing)."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `apiq worker` to the `apiq` command."""
    parser = commands.add_parser(
        "worker",
        help="run queued plan executions (DBOS on PostgreSQL or SQLite)",
        description="Run executions from the DBOS queue until SIGTERM or SIGINT.",
    )
    parser.add_argument(
        "--setup",
        required=True,
        metavar="MODULE:CALLABLE",
        help="composition root: a callable returning an async context manager of WorkerParts",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("APIQ_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="sqlite:///file or postgresql://... (default: $APIQ_DATABASE_URL, else a SQLite file)",
    )
    parser.add_argument("--concurrency", type=int, default=100, help="executions run at once")
    parser.add_argument("--executor-id", default=None, help="DBOS executor id of this process")
    parser.add_argument(
        "--heartbeat-s", type=float, default=2.0, help="seconds between liveness heartbeats"
    )
    parser.add_argument(
        "--dead-after-s",
        type=float,
        default=15.0,
        help="silence after which a worker counts as dead and its executions move on",
    )
    parser.set_defaults(handler=_run)


async def _run(args: argparse.Namespace, out: Console, err: Console) -> int:
    from apiq_adapters.dbos import worker  # raises MissingDependencyError without the extra

    return await worker.run(args, out, err)
