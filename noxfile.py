"""Project sessions: `uv run nox` runs lint, typecheck, tests and tests-core; `-s bench` too.

Every session installs from `uv.lock` with uv, so what runs here is what the lock pins.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests", "tests-core"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"

# Imports every module of core and fails if an outer layer or its backend came along.
CORE_ALONE_CHECK = """
import importlib, pkgutil, sys
import apiq
for module in pkgutil.walk_packages(apiq.__path__, "apiq."):
    if module.name != "apiq.__main__":
        importlib.import_module(module.name)
outer = ("apiq_adapters", "apiq_server", "litestar", "sqlalchemy", "openai")
leaked = sorted(name for name in sys.modules if name.split(".")[0] in outer)
sys.exit(f"core imported {leaked}" if leaked else 0)
"""


def _sync(session: nox.Session, *args: str) -> None:
    """Install the locked workspace (or part of it) into this session's virtualenv."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--no-python-downloads",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    _sync(session, "--all-packages")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every package's sources."""
    _sync(session, "--all-packages")
    session.run("mypy")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite with every package installed."""
    _sync(session, "--all-packages")
    session.run("pytest", *session.posargs)


@nox.session(name="tests-core", python=PYTHON)
def tests_core(session: nox.Session) -> None:
    """Core installed alone: proves `apiq` imports nothing from adapters or server."""
    _sync(session, "--package", "apiq-core", "--no-default-groups", "--group", "test")
    session.run("python", "-c", CORE_ALONE_CHECK)
    session.run("pytest", "tests/core", "tests/contract", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks over the big specs of ../shared/specs; prints figures and ratios."""
    _sync(session, "--all-packages")
    for script in ("ingest", "call", "execute", "search", "plan_eval", "serve"):
        session.run("python", f"bench/{script}.py")
