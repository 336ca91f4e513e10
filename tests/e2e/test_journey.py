"""The dashboard end to end, in Chromium against a real server: register, connect the
loopback Petstore, ask a multi-step request, approve it, watch it run live, see results;
then an admin makes another user an AUDITOR in the UI, and the auditor finds the
execution's events in the audit log."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService
from tests.e2e.conftest import ADMIN_EMAIL, Shoot, log_in
from tests.server.harness import PASSWORD, ServerProcess

REQUEST = "find available pets and order the first one"


def _email(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}@example.com"


def test_register_connect_plan_approve_watch_and_audit(
    new_page: Callable[..., Any], petstore: PetstoreService, server: ServerProcess, shoot: Shoot
) -> None:
    page = new_page()
    page.goto("/register")
    shoot(page, "register")
    email = _email("user")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r".*/connections$"))
    expect(page.get_by_text("No connections yet")).to_be_visible()

    # Add the Petstore by its spec URL with its API key.
    page.get_by_role("link", name="Add connection").click()
    page.get_by_label("Name", exact=True).fill("petstore")
    page.get_by_label("Spec URL").fill(petstore.spec_url)
    page.get_by_label("Kind").select_option("apiKey")
    page.get_by_label("Security scheme name").fill("api_key")
    page.get_by_label("API key", exact=True).fill(PETSTORE_API_KEY)
    shoot(page, "connection-new")
    page.get_by_role("button", name="Add connection").click()
    page.wait_for_url(re.compile(r".*/connections/[0-9a-f]+$"))
    expect(page.locator("#endpoints tbody tr").first).to_be_visible()
    page.get_by_label("Search endpoints").fill("place an order")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#endpoints")).to_contain_text("placeOrder")
    shoot(page, "connection-endpoints")

    page.get_by_role("link", name="Connections").click()
    row = page.locator("#connections tbody tr").first
    expect(row).to_contain_text("ready")
    expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^[1-9]\d*$"))
    row.get_by_role("button", name="Test petstore").click()
    expect(page.locator("#notice")).to_contain_text("reachable")

    # Plan, review, approve, watch.
    page.get_by_role("link", name="Chat").click()
    page.get_by_label("What should APIQ do?").fill(REQUEST)
    page.get_by_role("button", name="Plan").click()
    steps = page.locator("#plan-steps tbody tr")
    expect(steps).to_have_count(2)
    expect(steps.nth(0)).to_contain_text("GET")
    expect(steps.nth(0)).to_contain_text("/v2/pet/findByStatus")
    expect(steps.nth(1)).to_contain_text("POST")
    expect(steps.nth(1)).to_contain_text("Yes: changes state")
    assert not any(r.path == "/v2/store/order" for r in list(petstore.requests))
    shoot(page, "chat-plan")
    page.get_by_role("button", name="Approve and run").click()
    progress = page.locator("#progress")
    expect(progress).to_have_attribute("aria-live", "polite")
    expect(progress).to_contain_text("s1: step.started")
    expect(progress).to_contain_text("execution.finished")
    expect(page.locator("#run-status")).to_have_text(re.compile("Execution succeeded"))
    expect(page.locator("#results")).to_contain_text("placed")
    shoot(page, "chat-results")
    assert any(r.path == "/v2/store/order" for r in list(petstore.requests))

    page.get_by_role("link", name="Open the execution").click()
    execution_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#timeline > li")).to_have_count(2)
    expect(page.locator("#timeline")).to_contain_text("/v2/store/order")
    shoot(page, "execution")
    page.get_by_role("link", name="Executions").click()
    expect(page.locator("#executions")).to_contain_text(execution_id[:12])
    shoot(page, "executions")
    page.get_by_role("link", name="Connections").click()
    expect(page.locator("#connections tbody tr").first.locator("td").nth(4)).not_to_have_text(
        "never"
    )
    shoot(page, "connections")

    # The admin makes another account an auditor, in the UI.
    auditor_email = _email("auditor")
    other = new_page()
    other.goto("/register")
    other.get_by_label("Email").fill(auditor_email)
    other.get_by_label("Password", exact=True).fill(PASSWORD)
    other.get_by_role("button", name="Create account").click()
    other.wait_for_url(re.compile(r".*/connections$"))
    expect(other.get_by_role("link", name="Audit log")).to_have_count(0)

    admin = new_page()
    log_in(admin, ADMIN_EMAIL)
    admin.get_by_role("link", name="Admin users").click()
    admin.get_by_label(f"Role of {auditor_email}", exact=True).select_option("AUDITOR")
    admin.get_by_role("button", name=f"Save the role of {auditor_email}").click()
    expect(admin.locator("#notice")).to_contain_text(f"{auditor_email} is now AUDITOR")
    shoot(admin, "admin-users")

    # The role change ended the auditor's sessions: log in again and read the audit log.
    auditor = new_page()
    log_in(auditor, auditor_email)
    auditor.get_by_role("link", name="Audit log").click()
    auditor.get_by_label("Action starts with").fill("execution.")
    auditor.get_by_role("button", name="Filter").click()
    audit = auditor.locator("#audit")
    expect(audit).to_contain_text("execution.finished")
    expect(audit).to_contain_text("execution.started")
    expect(audit).to_contain_text(execution_id)
    shoot(auditor, "audit-log")
    auditor.get_by_label("Action starts with").fill("plan.approved")
    auditor.get_by_role("button", name="Filter").click()
    expect(audit.locator("tbody tr").first).to_contain_text("plan.approved")


def test_errors_are_shown_sanitized(
    new_page: Callable[..., Any], petstore: PetstoreService, server: ServerProcess
) -> None:
    page = new_page()
    page.goto("/register")
    page.get_by_label("Email").fill(_email("user"))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r".*/connections$"))

    page.goto("/chat")
    page.get_by_label("What should APIQ do?").fill("find available pets")
    page.get_by_role("button", name="Plan").click()
    expect(page.get_by_role("alert")).to_contain_text("connect")

    page.goto("/connections/new")
    page.get_by_label("Name", exact=True).fill("broken")
    missing = f"http://127.0.0.1:{petstore.port}/no-such-spec.json?token=s3cr3t-canary"
    page.get_by_label("Spec URL").fill(missing)
    page.get_by_role("button", name="Add connection").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(re.compile(r"see logs", re.IGNORECASE))
    expect(alert).not_to_contain_text("s3cr3t-canary")
    expect(alert).not_to_contain_text("Traceback")
