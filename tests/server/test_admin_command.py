"""`apiq admin create`: an ADMIN account made from the command line, on each backend."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from apiq_adapters.sql import sync_url
from apiq_server.policy import Role
from apiq_server.services.users import UserService
from apiq_server.settings import Settings
from apiq_server.wiring import build_services
from tests.server.harness import scratch_postgres

ADMIN_PASSWORD = "an operator's long passphrase ✓"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            yield f"sqlite:///{tmp_path / 'apiq.sqlite'}"
        else:
            yield stack.enter_context(scratch_postgres("apiq_admin"))


def admin_create(
    database_url: str, key_file: Path, email: str, password: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "APIQ_DATABASE_URL": database_url,
        "APIQ_KEY_FILE": str(key_file),
        "APIQ_ADMIN_PASSWORD": password,
        "APIQ_MODE": "development",
    }
    return subprocess.run(
        [sys.executable, "-m", "apiq", "admin", "create", "--email", email],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def users_of(database_url: str) -> list[sa.Row[object]]:
    engine = sa.create_engine(sync_url(database_url))
    try:
        with engine.connect() as db:
            query = "SELECT id, email, role, password_hash FROM apiq_users ORDER BY created_at"
            return list(db.execute(sa.text(query)).all())
    finally:
        engine.dispose()


@pytest.mark.anyio
async def test_admin_create_makes_an_admin_who_can_log_in(
    database_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "master.key"
    result = admin_create(database_url, key_file, "  Ops@Example.com ", ADMIN_PASSWORD)
    assert result.returncode == 0, result.stderr
    (row,) = users_of(database_url)
    assert (row.email, row.role) == ("ops@example.com", "ADMIN")
    assert f"admin ops@example.com created (id {row.id})" in " ".join(result.stdout.split())
    assert row.password_hash.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in result.stdout + result.stderr
    taken = admin_create(database_url, key_file, "OPS@example.com", "another long password")
    assert taken.returncode == 2
    assert "exists" in taken.stderr
    assert [user.id for user in users_of(database_url)] == [row.id]

    settings = Settings(database_url=database_url, key_file=key_file, executor="local")
    async with build_services(settings) as services:
        users = UserService(services)
        session = await users.login("ops@example.com", ADMIN_PASSWORD, client="test")
        assert session.user.role == Role.ADMIN
        # The database had a user already, so a registration is no longer the first one.
        later = await users.register("later@example.com", ADMIN_PASSWORD, client="test")
        assert later.role == Role.USER


def test_admin_create_refuses_a_bad_email_and_a_short_password(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'apiq.sqlite'}"
    refused = admin_create(database_url, tmp_path / "master.key", "not-an-email", "short")
    assert refused.returncode == 2
    message = " ".join(refused.stderr.split())
    assert "must be an email address" in message
    assert "at least 8 characters" in message
    assert users_of(database_url) == []
