"""Admin user management over HTTP, and `UserService`'s invariants under concurrency.

The HTTP tests run against the shared servers. The concurrency tests build the server's
services in this process on a fresh database of each backend, so that "the first user"
and "the last admin" are theirs alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path

import anyio
import pytest

from apiq_server.auth.current import CurrentUser
from apiq_server.errors import Conflict, RateLimited, Unauthorized
from apiq_server.policy import Role
from apiq_server.schemas.users import UserOut, UserPatch
from apiq_server.services.users import UserService
from apiq_server.settings import Settings
from apiq_server.wiring import Services, build_services
from tests.server.harness import PASSWORD, Api, ServerProcess, scratch_postgres
from tests.server.test_auth import Clients, db_rows


@pytest.fixture(name="clients")
def clients_of(server: ServerProcess) -> Iterator[Clients]:
    """Logs in through clients that are closed after the test."""
    made = Clients(server.base_url)
    yield made
    made.close()


def test_users_and_auditors_cannot_use_admin_routes(
    alice: Api, auditor: Api, anonymous: Api
) -> None:
    target = f"/api/admin/users/{alice.user['id']}"
    for client in (alice, auditor):
        assert client.get("/api/admin/users").status_code == 403
        assert client.patch(target, json={"role": "ADMIN"}).status_code == 403
    assert anonymous.get("/api/admin/users").status_code == 401
    assert anonymous.patch(target, json={"role": "ADMIN"}).status_code == 401
    assert alice.data("GET", "/api/auth/me")["role"] == "USER"


def test_admin_lists_users_with_filters_and_pages(admin: Api, alice: Api, bob: Api) -> None:
    everyone = admin.data("GET", "/api/admin/users", params={"limit": 100})
    assert everyone["total"] >= 3
    assert everyone["offset"] == 0
    assert everyone["limit"] == 100
    assert "passwordHash" not in json.dumps(everyone)
    assert "password" not in json.dumps(everyone)
    found = admin.data("GET", "/api/admin/users", params={"email": alice.user["email"].upper()})
    assert [user["id"] for user in found["items"]] == [alice.user["id"]]
    admins = admin.data("GET", "/api/admin/users", params={"role": "ADMIN", "limit": 100})
    assert all(user["role"] == "ADMIN" for user in admins["items"])
    assert admins["total"] >= 1
    first = admin.data("GET", "/api/admin/users", params={"limit": 1})
    second = admin.data("GET", "/api/admin/users", params={"limit": 1, "offset": 1})
    assert len(first["items"]) == len(second["items"]) == 1
    assert first["items"][0]["id"] != second["items"][0]["id"]
    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"role": "ROOT"}):
        assert admin.get("/api/admin/users", params=params).status_code == 400, params


def test_role_change_takes_effect_and_ends_sessions(
    server: ServerProcess, admin: Api, alice: Api, clients: Clients
) -> None:
    path = f"/api/admin/users/{alice.user['id']}"
    changed = admin.data("PATCH", path, json={"role": "AUDITOR"})
    assert changed["role"] == "AUDITOR"
    assert changed["id"] == alice.user["id"]
    assert alice.get("/api/auth/me").status_code == 401
    auditor = clients.login(alice.user["email"])
    assert auditor.data("GET", "/api/auth/me")["role"] == "AUDITOR"
    assert auditor.get("/api/admin/users").status_code == 403
    (event,) = db_rows(
        server,
        "SELECT actor, detail FROM apiq_audit_log "
        "WHERE action = 'admin.user_updated' AND target = :id",
        id=alice.user["id"],
    )
    assert event.actor == admin.user["id"]
    detail = json.loads(event.detail)
    assert detail["changes"] == {"role": {"from": "USER", "to": "AUDITOR"}}
    assert detail["sessionsRevoked"] >= 1


def test_disable_ends_sessions_and_enable_allows_login(
    server: ServerProcess, admin: Api, alice: Api, clients: Clients
) -> None:
    path = f"/api/admin/users/{alice.user['id']}"
    assert admin.data("PATCH", path, json={"disabled": True})["disabled"] is True
    assert alice.get("/api/auth/me").status_code == 401
    filtered = admin.data("GET", "/api/admin/users", params={"disabled": True, "limit": 100})
    assert alice.user["id"] in {user["id"] for user in filtered["items"]}
    assert admin.data("PATCH", path, json={"disabled": False})["disabled"] is False
    assert clients.login(alice.user["email"]).data("GET", "/api/auth/me")["role"] == "USER"


def test_patch_refuses_bad_requests(admin: Api, alice: Api) -> None:
    path = f"/api/admin/users/{alice.user['id']}"
    for body in ({"role": "ROOT"}, {"email": "x@example.com"}, {"disabled": "maybe"}):
        assert admin.patch(path, json=body).status_code == 400, body
    unchanged = admin.data("PATCH", path, json={})
    assert (unchanged["role"], unchanged["disabled"]) == ("USER", False)
    assert alice.data("GET", "/api/auth/me")["id"] == alice.user["id"]  # nothing changed
    missing = admin.patch(f"/api/admin/users/{uuid.uuid4().hex}", json={"role": "USER"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


# In-process: the service's invariants on a fresh database of each backend.


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            yield f"sqlite:///{tmp_path / 'apiq.sqlite'}"
        else:
            yield stack.enter_context(scratch_postgres("apiq_users"))


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(
        database_url=database_url, key_file=tmp_path / "master.key", executor="local"
    )
    async with build_services(settings) as built:
        yield built


def _as_admin(user: UserOut) -> CurrentUser:
    return CurrentUser(
        id=user.id, tenant="default", email=user.email, role=user.role,
        session_hash="-", csrf_token="-", via_cookie=False,
    )  # fmt: skip


@pytest.mark.anyio
async def test_concurrent_first_registrations_make_exactly_one_admin(services: Services) -> None:
    created: list[UserOut] = []

    async def one(index: int) -> None:
        email = f"first-{index}@example.com"
        created.append(await UserService(services).register(email, PASSWORD, client="test"))

    async with anyio.create_task_group() as group:
        for index in range(6):
            group.start_soon(one, index)
    assert sorted(user.role for user in created) == [Role.ADMIN] + [Role.USER] * 5


@pytest.mark.anyio
async def test_the_last_active_admin_cannot_demote_or_disable_themself(services: Services) -> None:
    users = UserService(services)
    first = await users.register("only-admin@example.com", PASSWORD, client="test")
    me = _as_admin(first)
    for patch in (
        UserPatch(role=Role.USER),
        UserPatch(role=Role.AUDITOR),
        UserPatch(disabled=True),
    ):
        with pytest.raises(Conflict):
            await users.update_user(me, first.id, patch)
    assert (await users.me(me)).role == Role.ADMIN
    other = await users.register("second-admin@example.com", PASSWORD, client="test")
    await users.update_user(me, other.id, UserPatch(role=Role.ADMIN))
    demoted = await users.update_user(me, first.id, UserPatch(role=Role.USER))
    assert demoted.role == Role.USER


@pytest.mark.anyio
async def test_two_admins_demoting_each_other_at_once_leave_one_admin(services: Services) -> None:
    users = UserService(services)
    one = await users.register("admin-one@example.com", PASSWORD, client="test")
    two = await users.register("admin-two@example.com", PASSWORD, client="test")
    await users.update_user(_as_admin(one), two.id, UserPatch(role=Role.ADMIN))
    outcomes: list[str] = []

    async def demote(actor: UserOut, target: UserOut) -> None:
        try:
            await UserService(services).update_user(
                _as_admin(actor), target.id, UserPatch(role=Role.USER)
            )
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    async with anyio.create_task_group() as group:
        group.start_soon(demote, one, two)
        group.start_soon(demote, two, one)
    assert sorted(outcomes) == ["conflict", "ok"]
    page = await users.list_users(_as_admin(one), offset=0, limit=10, role=Role.ADMIN)
    assert page.total == 1


@pytest.mark.anyio
async def test_parallel_guesses_cannot_slip_under_the_login_limit(services: Services) -> None:
    users = UserService(services)
    await users.register("guessed@example.com", PASSWORD, client="test")
    outcomes: list[str] = []

    async def guess(index: int) -> None:
        try:
            await UserService(services).login("guessed@example.com", f"guess {index}", client="x")
        except Unauthorized:
            outcomes.append("wrong")
        except RateLimited as refused:
            outcomes.append(f"throttled, retry after {refused.retry_after_s > 0}")

    async with anyio.create_task_group() as group:
        for index in range(12):
            group.start_soon(guess, index)
    limit = services.settings.login_attempts
    refused = ["throttled, retry after True"] * (12 - limit)
    assert sorted(outcomes) == [*refused, *["wrong"] * limit]
    with pytest.raises(RateLimited):  # the right password too, until the window ends
        await users.login("guessed@example.com", PASSWORD, client="elsewhere")
