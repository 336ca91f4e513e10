"""Security headers on every response, CORS closed by default, the request body cap.

The session servers (both backends) show the defaults: CSP, X-Frame-Options DENY,
nosniff and Referrer-Policy on successes, errors, unknown paths and the health check; no
HSTS over plain HTTP; no CORS header for any origin. One more server (SQLite: these are
HTTP behaviours, the database plays no part) runs behind "TLS" with one allowed origin
and a 4 KiB body cap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server.harness import PASSWORD, Api, ServerProcess, login, register

BODY_MAX = 4096
ALLOWED_ORIGIN = "https://a.example"
SAFE_REFERRER_POLICIES = (
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
)


def assert_security_headers(response: httpx.Response, *, hsts: bool = False) -> None:
    """The headers SECURITY.md asks of every response."""
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp, f"{where}: CSP {csp!r}"
    assert "frame-ancestors 'none'" in csp, f"{where}: CSP {csp!r}"
    assert headers.get("x-frame-options") == "DENY", where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") in SAFE_REFERRER_POLICIES, where
    if hsts:
        value = headers.get("strict-transport-security", "")
        assert value.startswith("max-age="), f"{where}: HSTS {value!r}"
        assert int(value.split("=")[1].split(";")[0]) >= 15552000, f"{where}: HSTS {value!r}"
    else:
        assert "strict-transport-security" not in headers, f"{where}: HSTS over plain HTTP"


def assert_error_envelope(response: httpx.Response, status: int, code: str | None = None) -> None:
    """`{success: false, error: {code, message, details}}` with `status`."""
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["success"] is False
    assert set(body["error"]) == {"code", "message", "details"}
    if code is not None:
        assert body["error"]["code"] == code, body


def sample_responses(anonymous: Api, user: Api, auditor: Api) -> list[httpx.Response]:
    """Successes, errors of each kind, unknown paths, the docs and metrics."""
    return [
        anonymous.get("/api/health"),
        anonymous.get("/api/no-such-route"),
        anonymous.get("/no-such-page"),
        anonymous.get("/api/apis"),
        anonymous.delete("/api/health"),
        anonymous.post("/api/auth/register", json={"email": "not an email"}),
        anonymous.post(
            "/api/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
        ),
        anonymous.get("/metrics"),
        anonymous.get("/schema/openapi.json"),
        user.get("/api/auth/me"),
        user.get("/api/apis"),
        user.get("/api/workflows/no-such-workflow"),
        user.get("/api/logs"),
        auditor.post("/api/chat", json={"message": "find pets"}),
    ]


def test_every_response_carries_the_security_headers(
    anonymous: Api, alice: Api, auditor: Api
) -> None:
    responses = sample_responses(anonymous, alice, auditor)
    statuses = {response.status_code for response in responses}
    assert {200, 400, 401, 403, 404, 405} <= statuses, statuses
    assert not _missing_headers(responses, hsts=False)


def _missing_headers(responses: list[httpx.Response], *, hsts: bool) -> list[str]:
    """What `assert_security_headers` finds wrong with each response (all of them at once)."""
    problems = []
    for response in responses:
        try:
            assert_security_headers(response, hsts=hsts)
        except AssertionError as exc:
            problems.append(str(exc).splitlines()[0])
    return problems


def test_errors_use_the_envelope(anonymous: Api, alice: Api, auditor: Api) -> None:
    assert_error_envelope(anonymous.get("/api/no-such-route"), 404, "not_found")
    assert_error_envelope(anonymous.get("/api/apis"), 401, "unauthorized")
    assert_error_envelope(auditor.post("/api/chat", json={"message": "x"}), 403, "forbidden")
    wrong_method = anonymous.delete("/api/health")
    assert_error_envelope(wrong_method, 405)
    assert "GET" in wrong_method.headers.get("allow", ""), "405 without Allow (RFC 9110)"
    assert_error_envelope(alice.get("/api/logs"), 403, "forbidden")
    bad_json = anonymous.post(
        "/api/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error_envelope(bad_json, 400)


def test_cors_is_closed_by_default(anonymous: Api, alice: Api) -> None:
    origin = {"Origin": "https://evil.example"}
    simple = alice.get("/api/apis", headers=origin)
    assert simple.status_code == 200
    preflight = anonymous.request(
        "OPTIONS",
        "/api/apis",
        headers={**origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"},
    )  # fmt: skip
    for response in (simple, preflight, anonymous.get("/api/health", headers=origin)):
        assert "access-control-allow-origin" not in response.headers, response.headers
        assert "access-control-allow-credentials" not in response.headers
    assert_security_headers(preflight)


@dataclass
class Hardened:
    """The hardened server and a client of each kind on it."""

    server: ServerProcess
    anonymous: Api
    user: Api
    auditor: Api


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    """A server behind TLS, with one allowed origin and a small body cap."""
    folder: Path = tmp_path_factory.mktemp("server-hardened")
    process = ServerProcess(
        env={
            "APIQ_DATABASE_URL": f"sqlite:///{folder / 'apiq.sqlite'}",
            "APIQ_KEY_FILE": str(folder / "master.key"),
            "APIQ_MODE": "development",
            "APIQ_BEHIND_TLS": "1",
            "APIQ_CORS_ORIGINS": json.dumps([ALLOWED_ORIGIN]),
            "APIQ_BODY_MAX_BYTES": str(BODY_MAX),
        },
        log_path=folder / "server.log",
    ).start()
    try:
        with ExitStack() as clients:
            admin = clients.enter_context(register(process.base_url, "admin@example.com"))
            with register(process.base_url) as future_auditor:
                change = {"role": "AUDITOR"}
                admin.data("PATCH", f"/api/admin/users/{future_auditor.user['id']}", json=change)
            yield Hardened(
                server=process,
                anonymous=clients.enter_context(Api(process.base_url)),
                user=clients.enter_context(register(process.base_url)),
                auditor=clients.enter_context(
                    login(process.base_url, future_auditor.user["email"])
                ),
            )
    finally:
        process.stop()


def test_behind_tls_every_response_adds_hsts(hardened: Hardened) -> None:
    responses = sample_responses(hardened.anonymous, hardened.user, hardened.auditor)
    assert not _missing_headers(responses, hsts=True)
    session = hardened.anonymous.post(
        "/api/auth/login", json={"email": hardened.user.user["email"], "password": PASSWORD}
    )
    assert "secure" in session.headers.get("set-cookie", "").lower()


def test_cors_opens_for_configured_origins_only(hardened: Hardened) -> None:
    user = hardened.user
    allowed = user.get("/api/apis", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    assert allowed.headers.get("access-control-allow-credentials") != "true"
    preflight = hardened.anonymous.request(
        "OPTIONS",
        "/api/apis",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"},
    )  # fmt: skip
    assert preflight.status_code in (200, 204), preflight.text
    assert preflight.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    assert "POST" in preflight.headers.get("access-control-allow-methods", "")
    other = user.get("/api/apis", headers={"Origin": "https://b.example"})
    assert other.headers.get("access-control-allow-origin") not in ("*", "https://b.example")
    assert_security_headers(preflight, hsts=True)


def test_a_body_over_the_cap_gets_413(hardened: Hardened) -> None:
    anonymous, user = hardened.anonymous, hardened.user
    fits = anonymous.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": "x" * 100}
    )
    assert fits.status_code == 401
    big = {"email": "nobody@example.com", "password": "x" * (BODY_MAX + 1)}
    for response in (
        anonymous.post("/api/auth/login", json=big),
        user.post("/api/chat", json={"message": "y" * (BODY_MAX + 1)}),
        user.post(  # no Content-Length: the cap counts streamed bytes too
            "/api/chat",
            content=iter([b'{"message": "', b"z" * BODY_MAX, b'"}']),
            headers={"Content-Type": "application/json"},
        ),
    ):
        assert_error_envelope(response, 413, "body_too_large")
        assert_security_headers(response, hsts=True)
