"""`apiq serve`, `apiq db` and `apiq admin` (entry points of the `apiq.commands` group).

apiq serve --host 127.0.0.1 --port 8000       # settings from APIQ_* variables
apiq serve --demo                             # a demo admin and the Petstore API
apiq db upgrade | downgrade | current         # Alembic migrations of APIQ_DATABASE_URL
apiq admin create --email ops@example.com     # password from APIQ_ADMIN_PASSWORD or a prompt
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar import Litestar
    from rich.console import Console

__all__ = ["register_admin", "register_db", "register_serve"]


def register_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `apiq serve`."""
    parser = commands.add_parser(
        "serve", help="run the APIQ reference server", description="Run the reference server."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="demo mode: a local key file, a demo admin and the Petstore API served on loopback",
    )
    parser.set_defaults(handler=_serve)


def register_db(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `apiq db`."""
    parser = commands.add_parser("db", help="database migrations ($APIQ_DATABASE_URL)")
    parser.add_argument("action", choices=("upgrade", "downgrade", "current"))
    parser.add_argument("--revision", default=None, help="target (default: head / base)")
    parser.set_defaults(handler=_db)


def register_admin(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `apiq admin`."""
    parser = commands.add_parser("admin", help="manage server users")
    parser.add_argument("action", choices=("create",))
    parser.add_argument("--email", required=True, help="the admin's login")
    parser.set_defaults(handler=_admin)


async def _serve(args: argparse.Namespace, out: Console, err: Console) -> int:
    from apiq_server.app import create_app
    from apiq_server.demo import demo_app
    from apiq_server.settings import Settings

    if args.demo:
        async with demo_app(out) as app:
            await _run_uvicorn(app, args)
        return 0
    await _run_uvicorn(create_app(Settings()), args)
    return 0


async def _run_uvicorn(app: Litestar, args: argparse.Namespace) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        lifespan="on",
        access_log=False,
    )
    await uvicorn.Server(config).serve()


async def _db(args: argparse.Namespace, out: Console, err: Console) -> int:
    from apiq_adapters.sql import migrate
    from apiq_server.settings import Settings

    url = Settings().database_url
    if args.action == "upgrade":
        await migrate.upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        await migrate.downgrade(url, args.revision or "base")
    out.print(f"database at revision {await migrate.current(url) or 'base (empty)'}")
    return 0


async def _admin(args: argparse.Namespace, out: Console, err: Console) -> int:
    from apiq_server.services.users import UserService
    from apiq_server.settings import Settings
    from apiq_server.wiring import build_services

    password = os.environ.get("APIQ_ADMIN_PASSWORD") or getpass.getpass("Password: ")
    settings = Settings().model_copy(update={"executor": "local"})
    async with build_services(settings) as services:
        user = await UserService(services).create_admin(args.email, password)
    out.print(f"admin {user.email} created (id {user.id})")
    return 0
