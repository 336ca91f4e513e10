"""Fixtures of the dashboard's browser tests: a real `apiq serve` on loopback (SQLite), the
loopback Petstore API, and Debian's Chromium driven by Playwright.

The tests skip with a clear reason when `/usr/bin/chromium` or Playwright is missing, unless
`APIQ_REQUIRE_SERVICES` is set (CI), which makes that a failure. Every page a test visits is
saved as a screenshot under the session's tmp folder (or `APIQ_E2E_SCREENSHOTS` when set);
the best of them are copied to docs/screenshots by hand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apiq.testing.petstore import PetstoreService
from tests.server.harness import PASSWORD, Api, ServerProcess, login, register
from tests.services.oauth_server import OAuthServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_EMAIL = "admin@example.com"
TIMEOUT_MS = 20_000
"""How long a page step may wait for the page (a bound for slow machines, not a timing)."""


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing"
    return None


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Chromium, headless."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("APIQ_REQUIRE_SERVICES"):
            pytest.fail(f"browser tests need Chromium: {reason}")
        pytest.skip(f"browser tests need Chromium: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="package")
def petstore() -> Iterator[PetstoreService]:
    """The Petstore API on loopback."""
    with PetstoreService() as service:
        yield service


@pytest.fixture(scope="package")
def oauth_server() -> Iterator[OAuthServer]:
    """An OAuth 2.0 authorization server (and protected resource) on loopback."""
    with OAuthServer() as service:
        yield service


@pytest.fixture(scope="package")
def server(
    browser: Any,
    tmp_path_factory: pytest.TempPathFactory,
    petstore: PetstoreService,
    oauth_server: OAuthServer,
) -> Iterator[ServerProcess]:
    """`apiq serve` on SQLite; its first user (`ADMIN_EMAIL`) is the admin."""
    folder = tmp_path_factory.mktemp("e2e-server")
    process = ServerProcess(
        env={
            "APIQ_DATABASE_URL": f"sqlite:///{folder / 'apiq.sqlite'}",
            "APIQ_KEY_FILE": str(folder / "master.key"),
            "APIQ_EGRESS_ALLOW": f"127.0.0.1:{petstore.port},127.0.0.1:{oauth_server.port}",
            "APIQ_MODE": "development",
            "APIQ_RATE_LIMIT_PER_MINUTE": "100000",
        },
        log_path=folder / "server.log",
    ).start()
    try:
        register(process.base_url, ADMIN_EMAIL).client.close()
        yield process
    finally:
        process.stop()


@pytest.fixture
def admin_api(server: ServerProcess) -> Iterator[Api]:
    """The admin, over the REST API (bearer token)."""
    with login(server.base_url, ADMIN_EMAIL) as api:
        yield api


@pytest.fixture(scope="package")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save their screenshots."""
    chosen = os.environ.get("APIQ_E2E_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


Shoot = Callable[[Any, str], Path]


@pytest.fixture
def shoot(screenshots: Path) -> Shoot:
    """`shoot(page, name)` saves a full-page screenshot as `<name>.png`."""

    def save(page: Any, name: str) -> Path:
        path = screenshots / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
def new_page(browser: Any, server: ServerProcess) -> Iterator[Callable[..., Any]]:
    """`new_page(width=1280)`: a page in a fresh browser context (its own cookies)."""
    contexts: list[Any] = []

    def make(width: int = 1280, height: int = 900) -> Any:
        context = browser.new_context(
            base_url=server.base_url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page: Any, email: str, password: str = PASSWORD) -> None:
    """Log `page`'s browser context in through the login form."""
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/connections$"))
