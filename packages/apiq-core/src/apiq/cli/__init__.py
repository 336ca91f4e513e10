"""The `apiq` command.

Core's subcommands register themselves here; other installed packages add theirs (`serve`,
`worker`, `db`, `admin`) through the `apiq.commands` entry-point group, whose entries are
functions taking the argparse sub-parsers object, so core never names them.

Bad input ends in one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import entry_points

import anyio
from rich.console import Console

from apiq.cli import ask, demo, inspect
from apiq.errors import ApiqError

__all__ = ["main"]

ENTRY_POINT_GROUP = "apiq.commands"
Handler = Callable[[argparse.Namespace, Console, Console], Awaitable[int]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apiq", description="Plain English to safe, reviewed REST API calls."
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    demo.register(commands)
    ask.register(commands)
    inspect.register(commands)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit with its status."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failed, 2 bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    out, err = Console(), Console(stderr=True)
    try:
        return anyio.run(handler, args, out, err)
    except ApiqError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("APIQ_DEBUG") == "1":
            raise
        err.print(
            f"[red]internal error:[/] {type(exc).__name__}: {exc} "
            "(set APIQ_DEBUG=1 for the traceback, and please report it)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
