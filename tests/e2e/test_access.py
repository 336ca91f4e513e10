"""Who sees what: anonymous visitors are sent to the login page, a USER sees no admin or
audit pages (403 page, no links), and errors on pages are HTML, never JSON."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Shoot, log_in
from tests.server.harness import ServerProcess, register

USER_NAV = ["Connections", "Chat", "Workflows", "Executions"]
ADMIN_ONLY = ["/admin/users", "/admin/spec-cache"]


def test_an_anonymous_visitor_is_sent_to_login_and_back(
    new_page: Callable[..., Any], server: ServerProcess, shoot: Shoot
) -> None:
    user = register(server.base_url)
    user.client.close()
    page = new_page()

    response = page.goto("/chat")

    assert response is not None
    assert re.search(r"/login\?next=%2Fchat$", page.url), page.url
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    shoot(page, "login")
    page.get_by_label("Email").fill(user.user["email"])
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"\S"))
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/chat$"))


def test_the_login_page_never_redirects_off_site(
    new_page: Callable[..., Any], server: ServerProcess
) -> None:
    user = register(server.base_url)
    user.client.close()
    page = new_page()
    page.goto("/login?next=//evil.example/x")
    page.get_by_label("Email").fill(user.user["email"])
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/connections$"))


def test_a_user_cannot_open_admin_or_audit_pages(
    new_page: Callable[..., Any], server: ServerProcess, shoot: Shoot
) -> None:
    user = register(server.base_url)
    user.client.close()
    page = new_page()
    log_in(page, user.user["email"])

    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    expect(links).to_have_text(USER_NAV)
    for path in [*ADMIN_ONLY, "/audit"]:
        response = page.goto(path)
        assert response is not None
        assert response.status == 403, path
        assert "text/html" in response.headers["content-type"]
        expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    shoot(page, "forbidden")
    # The API behind the pages refuses too (the page hides nothing the API would give).
    api = page.request.get("/api/admin/users")
    assert api.status == 403


def test_an_unknown_id_is_a_404_page(new_page: Callable[..., Any], server: ServerProcess) -> None:
    user = register(server.base_url)
    user.client.close()
    page = new_page()
    log_in(page, user.user["email"])
    for path in ["/connections/nope", "/executions/nope", "/workflows/nope"]:
        response = page.goto(path)
        assert response is not None
        assert response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")


def test_the_admin_sees_every_area(new_page: Callable[..., Any], server: ServerProcess) -> None:
    page = new_page()
    log_in(page, "admin@example.com")
    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    expect(links).to_have_text([*USER_NAV, "Audit log", "Admin users", "Spec cache"])
