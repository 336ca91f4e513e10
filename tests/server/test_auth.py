"""Registration, login, sessions and passwords of the reference server, over real HTTP.

Tests that fail logins on purpose send them from their own loopback address
(127.x.y.z), so the per-address throttle they trip never touches other tests' logins.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from apiq_adapters.sql import sync_url
from apiq_server.schemas.users import EMAIL_PATTERN, MAX_EMAIL_LENGTH, normalise_email
from tests.server.harness import PASSWORD, Api, ServerProcess

UNICODE_PASSWORD = ("Zażółć gęślą jaźń 🔐 пароль " * 5)[:100]
"""100 characters, about 150 UTF-8 bytes: longer than bcrypt's 72-byte cut."""


def db_rows(server: ServerProcess, statement: str, **params: Any) -> list[sa.Row[Any]]:
    """Rows of a SQL query on the server's own database (SQLite file or PostgreSQL)."""
    engine = sa.create_engine(sync_url(server.env["APIQ_DATABASE_URL"]))
    try:
        with engine.connect() as db:
            return list(db.execute(sa.text(statement), params).all())
    finally:
        engine.dispose()


class Clients:
    """Registers, logs in and makes anonymous clients; `close` closes every client made."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._made: list[httpx.Client] = []

    def _client(self, transport: httpx.HTTPTransport | None = None) -> httpx.Client:
        self._made.append(httpx.Client(transport=transport, timeout=30))
        return self._made[-1]

    def register(self, email: str | None = None, password: str = PASSWORD) -> Api:
        """A new account (a USER unless it is the server's first), logged in."""
        email = email or new_email()
        body = {"email": email, "password": password}
        Api(self.base_url, client=self._client()).data(
            "POST", "/api/auth/register", status=201, json=body
        )
        return self.login(email, password)

    def login(self, email: str, password: str = PASSWORD) -> Api:
        """A new session of an account."""
        body = {"email": email, "password": password}
        data = Api(self.base_url, client=self._client()).data("POST", "/api/auth/login", json=body)
        return Api(self.base_url, token=data["token"], user=data["user"], client=self._client())

    def elsewhere(self) -> Api:
        """An anonymous client whose requests come from a loopback address of its own."""
        address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        return Api(self.base_url, client=self._client(httpx.HTTPTransport(local_address=address)))

    def close(self) -> None:
        for client in self._made:
            client.close()


@pytest.fixture
def clients(server: ServerProcess) -> Iterator[Clients]:
    """`Clients` of the test's server, closed after the test."""
    made = Clients(server.base_url)
    yield made
    made.close()


def new_email() -> str:
    return f"auth-{uuid.uuid4().hex[:10]}@example.com"


@given(st.from_regex(EMAIL_PATTERN, fullmatch=True))
def test_email_normalisation_is_idempotent_and_keeps_the_pattern(raw: str) -> None:
    try:
        email = normalise_email(raw)
    except ValueError:  # only for what the pattern cannot say
        surrogate = any(0xD800 <= ord(char) <= 0xDFFF for char in raw)
        assert surrogate or len(raw.strip().lower()) > MAX_EMAIL_LENGTH
        return
    assert email == email.strip().lower()
    assert normalise_email(email) == email
    assert re.fullmatch(EMAIL_PATTERN, email)


def test_register_login_me_logout(server: ServerProcess, anonymous: Api) -> None:
    email = new_email()
    created = anonymous.data(
        "POST", "/api/auth/register", status=201, json={"email": email, "password": PASSWORD}
    )
    assert created["email"] == email
    assert created["role"] == "USER"
    assert set(created) == {"id", "email", "role", "disabled", "createdAt"}
    session = anonymous.data("POST", "/api/auth/login", json={"email": email, "password": PASSWORD})
    assert set(session) == {"token", "csrfToken", "expiresAt", "user"}
    assert session["user"]["id"] == created["id"]
    assert len(session["token"]) >= 43  # 32 random bytes, URL-safe base64
    with httpx.Client(timeout=30) as client:
        user = Api(server.base_url, token=session["token"], client=client)
        assert user.data("GET", "/api/auth/me") == created
        assert user.data("POST", "/api/auth/logout") == {"loggedOut": True}
        assert user.get("/api/auth/me").status_code == 401


def test_first_user_is_admin_and_later_users_are_not(admin: Api, alice: Api) -> None:
    assert admin.data("GET", "/api/auth/me")["role"] == "ADMIN"
    assert alice.data("GET", "/api/auth/me")["role"] == "USER"


def test_logins_open_distinct_sessions(server: ServerProcess, alice: Api, clients: Clients) -> None:
    again = clients.login(alice.user["email"])
    assert again.token != alice.token
    alice.data("POST", "/api/auth/logout")
    assert again.data("GET", "/api/auth/me")["id"] == alice.user["id"]


@pytest.mark.parametrize("field", ["role", "ownerId", "owner_id", "id", "tenant"])
def test_register_refuses_privileged_fields(
    server: ServerProcess, anonymous: Api, field: str
) -> None:
    email = new_email()
    body = {"email": email, "password": PASSWORD, field: "ADMIN"}
    response = anonymous.post("/api/auth/register", json=body)
    assert response.status_code == 400
    assert response.json()["success"] is False
    attempt = anonymous.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert attempt.status_code == 401  # nothing was created


def test_emails_are_normalised_and_unique(
    server: ServerProcess, anonymous: Api, clients: Clients
) -> None:
    local = f"Mixed-{uuid.uuid4().hex[:8]}"
    body = {"email": f"  {local}@Example.COM ", "password": PASSWORD}
    created = anonymous.data("POST", "/api/auth/register", status=201, json=body)
    assert created["email"] == f"{local.lower()}@example.com"
    clients.login(f"{local.upper()}@EXAMPLE.com")
    again = anonymous.post("/api/auth/register", json={**body, "email": created["email"]})
    assert again.status_code == 409
    for bad in ["no-at-sign", "two@@example.com", "space in@example.com", "x@nodot", ""]:
        response = anonymous.post("/api/auth/register", json={**body, "email": bad})
        assert response.status_code == 400, bad


@pytest.mark.parametrize(
    ("password", "status"),
    [("short7!", 400), ("x" * 8, 201), ("é" * 256, 201), ("x" * 257, 400), (UNICODE_PASSWORD, 201)],
)
def test_password_length_rules(anonymous: Api, password: str, status: int) -> None:
    body = {"email": new_email(), "password": password}
    assert anonymous.post("/api/auth/register", json=body).status_code == status


def test_lone_surrogate_password_is_refused_not_a_crash(anonymous: Api) -> None:
    body = f'{{"email": "{new_email()}", "password": "abcdefgh\\ud800"}}'
    response = anonymous.post(
        "/api/auth/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_long_unicode_password_is_never_truncated(server: ServerProcess, clients: Clients) -> None:
    email = new_email()
    clients.register(email, password=UNICODE_PASSWORD)
    prefix = UNICODE_PASSWORD.encode()[:72].decode(errors="ignore")
    assert len(prefix) < len(UNICODE_PASSWORD)
    client = clients.elsewhere()
    body = {"email": email, "password": prefix}
    assert client.post("/api/auth/login", json=body).status_code == 401
    assert clients.login(email, UNICODE_PASSWORD).user["email"] == email


def test_stored_hash_is_argon2id_with_owasp_parameters(server: ServerProcess, alice: Api) -> None:
    (row,) = db_rows(
        server, "SELECT password_hash FROM apiq_users WHERE id = :id", id=alice.user["id"]
    )
    algorithm, version, parameters, *_ = row.password_hash.lstrip("$").split("$")
    assert algorithm == "argon2id"
    assert version == "v=19"
    values = dict(item.split("=") for item in parameters.split(","))
    assert int(values["m"]) >= 19456
    assert int(values["t"]) >= 2
    assert PASSWORD not in row.password_hash


def test_login_failures_are_one_generic_error(
    server: ServerProcess, alice: Api, clients: Clients
) -> None:
    client = clients.elsewhere()
    unknown = client.post("/api/auth/login", json={"email": new_email(), "password": PASSWORD})
    wrong = client.post(
        "/api/auth/login", json={"email": alice.user["email"], "password": "wrong password"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert unknown.json()["error"]["message"] == "email or password is wrong"


def test_disabled_user_gets_the_generic_error(
    server: ServerProcess, admin: Api, clients: Clients
) -> None:
    user = clients.register()
    admin.data("PATCH", f"/api/admin/users/{user.user['id']}", json={"disabled": True})
    client = clients.elsewhere()
    body = {"email": user.user["email"], "password": PASSWORD}
    response = client.post("/api/auth/login", json=body)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "email or password is wrong"
    reasons = db_rows(
        server,
        "SELECT detail FROM apiq_audit_log "
        "WHERE action = 'auth.login' AND target = :email ORDER BY at",
        email=user.user["email"],
    )
    assert [json.loads(row.detail).get("reason") for row in reasons][-1] == "disabled"


def test_login_is_throttled_per_account(server: ServerProcess, clients: Clients) -> None:
    email = new_email()
    clients.register(email)
    wrong = {"email": email, "password": "not the password"}
    for _ in range(5):  # APIQ_LOGIN_ATTEMPTS' default
        assert clients.elsewhere().post("/api/auth/login", json=wrong).status_code == 401
    # From yet another address, and even with the right password: refused until the window ends.
    refused = clients.elsewhere().post(
        "/api/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "rate_limited"
    assert email not in refused.text


def test_login_is_throttled_per_address(
    server: ServerProcess, alice: Api, clients: Clients
) -> None:
    client = clients.elsewhere()
    for _ in range(5 * 5):  # five times the per-account limit, spread over many emails
        body = {"email": new_email(), "password": "not the password"}
        assert client.post("/api/auth/login", json=body).status_code == 401
    body = {"email": alice.user["email"], "password": PASSWORD}
    refused = client.post("/api/auth/login", json=body)
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    clients.login(alice.user["email"])  # the same account from elsewhere still works


def test_logout_revokes_the_session(alice: Api) -> None:
    alice.data("POST", "/api/auth/logout")
    assert alice.get("/api/auth/me").status_code == 401
    assert alice.post("/api/auth/logout").status_code == 401


def test_password_change_revokes_every_session(server: ServerProcess, clients: Clients) -> None:
    email = new_email()
    first = clients.register(email)
    second = clients.login(email)
    new_password = "a new and longer passphrase ✓"
    session = first.data(
        "POST",
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": new_password},
    )
    assert session["user"]["email"] == email
    for old in (first, second):
        assert old.get("/api/auth/me").status_code == 401
    with httpx.Client(timeout=30) as client:
        renewed = Api(server.base_url, token=session["token"], client=client)
        assert renewed.data("GET", "/api/auth/me")["email"] == email
    old_password = {"email": email, "password": PASSWORD}
    assert clients.elsewhere().post("/api/auth/login", json=old_password).status_code == 401
    clients.login(email, new_password)


def test_password_change_needs_the_current_password(
    server: ServerProcess, clients: Clients
) -> None:
    registered = clients.register()
    user = clients.elsewhere()  # its failures count against an address of its own
    user.token, user.user = registered.token, registered.user
    wrong = {"currentPassword": "not it at all", "newPassword": "whatever new one"}
    assert user.post("/api/auth/password", json=wrong).status_code == 403
    short = {"currentPassword": PASSWORD, "newPassword": "short"}
    assert user.post("/api/auth/password", json=short).status_code == 400
    assert user.data("GET", "/api/auth/me")["id"] == user.user["id"]  # still logged in


def test_cookie_sessions_need_the_csrf_header(server: ServerProcess, clients: Clients) -> None:
    email = new_email()
    clients.register(email)
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        response = browser.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        cookie = response.headers["set-cookie"]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "path", "max-age"} <= attributes
        assert "samesite=lax" in cookie.lower()
        assert "secure" not in attributes
        csrf = response.json()["data"]["csrfToken"]
        assert browser.get("/api/auth/me").json()["data"]["email"] == email  # cookie only
        refused = browser.post("/api/auth/logout")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        wrong = browser.post("/api/auth/logout", headers={"X-CSRF-Token": "x" + csrf})
        assert wrong.status_code == 403
        assert browser.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert browser.get("/api/auth/me").status_code == 401


def test_tokens_and_passwords_stay_out_of_logs(server: ServerProcess, clients: Clients) -> None:
    email = new_email()
    user = clients.register(email, password=UNICODE_PASSWORD)
    user.data("GET", "/api/auth/me")
    clients.elsewhere().post(
        "/api/auth/login", json={"email": email, "password": UNICODE_PASSWORD + "!"}
    )
    assert user.token is not None
    log = Path(server.log_path).read_text(errors="replace")
    assert user.token not in log
    assert UNICODE_PASSWORD not in log
    audit = db_rows(server, "SELECT target, detail FROM apiq_audit_log WHERE action LIKE 'auth.%'")
    text = " ".join(f"{row.target} {row.detail}" for row in audit)
    assert user.token not in text
    assert UNICODE_PASSWORD not in text
    assert {"auth.register", "auth.login"} <= {
        row.action
        for row in db_rows(
            server,
            "SELECT action FROM apiq_audit_log WHERE actor = :id OR target = :email",
            id=user.user["id"],
            email=email,
        )
    }
    (stored,) = db_rows(
        server, "SELECT count(*) AS n FROM apiq_sessions WHERE token_hash = :t", t=user.token
    )
    assert stored.n == 0  # only its hash is kept


@pytest.fixture(scope="module")
def short_sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server on SQLite whose sessions end after 3 s idle or 10.8 s in all."""
    folder = tmp_path_factory.mktemp("short-sessions")
    process = ServerProcess(
        env={
            "APIQ_DATABASE_URL": f"sqlite:///{folder / 'apiq.sqlite'}",
            "APIQ_KEY_FILE": str(folder / "master.key"),
            "APIQ_MODE": "development",
            "APIQ_EXECUTOR": "local",
            "APIQ_SESSION_IDLE_MINUTES": "0.05",
            "APIQ_SESSION_MAX_HOURS": "0.003",
        },
        log_path=folder / "server.log",
    ).start()
    try:
        yield process
    finally:
        process.stop()


def test_sessions_end_when_idle_and_at_their_absolute_lifetime(
    short_sessions: ServerProcess,
) -> None:
    clients = Clients(short_sessions.base_url)
    try:
        email = new_email()
        busy = clients.register(email)
        idle = clients.login(email)
        started = time.monotonic()
        while time.monotonic() - started < 4.5:  # past the idle timeout, used all along
            assert busy.get("/api/auth/me").status_code == 200
            time.sleep(0.5)
        assert idle.get("/api/auth/me").status_code == 401
        while busy.get("/api/auth/me").status_code == 200:  # until its absolute lifetime ends
            assert time.monotonic() - started < 60, "the session outlived its absolute lifetime"
            time.sleep(0.5)
        assert clients.login(email).data("GET", "/api/auth/me")["email"] == email
    finally:
        clients.close()
