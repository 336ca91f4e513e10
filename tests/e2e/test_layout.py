"""Keyboard-only use of the chat, visible focus, and every page at a phone's width (375 px)
without horizontal scrolling. Screenshots of every page are saved for the docs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from apiq.testing.petstore import PetstoreService
from tests.e2e.conftest import Shoot
from tests.server.harness import PASSWORD, Api, ServerProcess, register
from tests.server.test_chat import connect_petstore, plan, wait_final

MAX_TABS = 40


def _signed_in(page: Any, email: str) -> None:
    """Log the page's browser context in through the API (the cookie is shared)."""
    response = page.request.post("/api/auth/login", data={"email": email, "password": PASSWORD})
    assert response.status == 200, response.text()


def _tab_to(page: Any, element_id: str) -> None:
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def test_the_chat_works_with_the_keyboard_alone(
    new_page: Callable[..., Any], server: ServerProcess, petstore: PetstoreService, shoot: Shoot
) -> None:
    with register(server.base_url) as user:
        connect_petstore(user, petstore)
    page = new_page()
    _signed_in(page, user.user["email"])
    page.goto("/chat")

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    _tab_to(page, "message")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus must be visible"
    page.keyboard.type("find available pets and order the first one")
    page.keyboard.press("Enter")
    expect(page.locator("#plan-steps tbody tr")).to_have_count(2)
    expect(page.locator("#plan-heading")).to_be_focused()
    _tab_to(page, "approve")
    page.keyboard.press("Enter")
    expect(page.locator("#progress")).to_contain_text("execution.finished")
    expect(page.locator("#run-status")).to_have_text("Execution succeeded.")
    expect(page.locator("#results")).to_contain_text("placed")


def _seed(admin: Api, petstore: PetstoreService) -> dict[str, str]:
    """A connection, an execution and a workflow of the admin, for pages with content."""
    connection = connect_petstore(admin, petstore, name="petstore-admin")
    found = plan(admin, "find available pets")
    started = admin.data("POST", "/api/chat/execute", status=201, json={"planId": found["id"]})
    wait_final(admin, started["id"])
    workflow = admin.data(
        "POST", "/api/workflows", status=201,
        json={"name": "available-pets", "planId": found["id"], "description": "Available pets"},
    )  # fmt: skip
    return {"connection": connection, "execution": started["id"], "workflow": workflow["id"]}


def test_every_page_fits_a_phone_and_a_desktop(
    new_page: Callable[..., Any],
    server: ServerProcess,
    petstore: PetstoreService,
    admin_api: Api,
    shoot: Shoot,
) -> None:
    ids = _seed(admin_api, petstore)
    pages = {
        "connections": "/connections",
        "connection-new": "/connections/new",
        "connection": f"/connections/{ids['connection']}",
        "chat": "/chat",
        "workflows": "/workflows",
        "workflow": f"/workflows/{ids['workflow']}",
        "executions": "/executions",
        "execution": f"/executions/{ids['execution']}",
        "audit-log": "/audit",
        "admin-users": "/admin/users",
        "spec-cache": "/admin/spec-cache",
    }
    anonymous = {"login": "/login", "register": "/register"}
    phone, desktop, visitor = new_page(375, 812), new_page(), new_page(375, 812)
    _signed_in(phone, "admin@example.com")
    _signed_in(desktop, "admin@example.com")

    for name, path in [*pages.items(), *anonymous.items()]:
        browser_page = visitor if name in anonymous else phone
        response = browser_page.goto(path)
        assert response is not None
        assert response.status == 200, (path, response.status)
        expect(browser_page.get_by_role("main")).to_be_visible()
        width = browser_page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} scrolls sideways at 375 px ({width} px wide)"
        shoot(browser_page, f"phone-{name}")
    for name, path in pages.items():
        desktop.goto(path)
        shoot(desktop, f"desktop-{name}")


def test_each_page_has_landmarks_and_labelled_inputs(
    new_page: Callable[..., Any], server: ServerProcess
) -> None:
    page = new_page()
    _signed_in(page, "admin@example.com")
    for path in ["/connections/new", "/chat", "/audit", "/admin/users", "/workflows"]:
        page.goto(path)
        expect(page.get_by_role("banner")).to_have_count(1)
        expect(page.get_by_role("main")).to_have_count(1)
        expect(page.get_by_role("navigation", name="Main")).to_have_count(1)
        unlabelled = page.evaluate(
            """() => Array.from(document.querySelectorAll('input, select, textarea'))
                 .filter((e) => e.type !== 'hidden' && !(e.labels && e.labels.length)
                         && !e.getAttribute('aria-label'))
                 .map((e) => e.id || e.name)"""
        )
        assert unlabelled == [], (path, unlabelled)
