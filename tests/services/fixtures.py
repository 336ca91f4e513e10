"""Pytest fixtures starting each loopback service for one test and stopping it after.

Register with `pytest_plugins = ["tests.services.fixtures"]` in tests/conftest.py. Every
fixture is function-scoped (fresh state per test; starting a server takes about a
millisecond) and yields the running service: `.base_url`, `.port`, `.url(path)`,
`.requests` (list of `ServiceRequest`), `.reset()` and `.egress_policy` (an
`apiq.egress.EgressPolicy` allowing exactly that service's 127.0.0.1 port or ports).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apiq.testing.petstore import PetstoreService
from tests.services.echo import EchoService
from tests.services.flaky import FlakyService
from tests.services.llm import LlmService
from tests.services.redirect_trap import RedirectTrap

__all__ = ["echo_service", "flaky_service", "llm_service", "petstore_service", "redirect_trap"]


@pytest.fixture
def petstore_service() -> Iterator[PetstoreService]:
    """A seeded Petstore at `http://127.0.0.1:<port>/v2` (see apiq.testing.petstore)."""
    with PetstoreService() as service:
        yield service


@pytest.fixture
def echo_service() -> Iterator[EchoService]:
    """The echo service (see tests.services.echo)."""
    with EchoService() as service:
        yield service


@pytest.fixture
def flaky_service() -> Iterator[FlakyService]:
    """The 429/503 service with `Retry-After: 1` (see tests.services.flaky)."""
    with FlakyService() as service:
        yield service


@pytest.fixture
def redirect_trap() -> Iterator[RedirectTrap]:
    """Two origins: `trap.entry` redirects, `trap.target` records what arrived."""
    with RedirectTrap() as trap:
        yield trap


@pytest.fixture
def llm_service() -> Iterator[LlmService]:
    """A chat-completions server with scripted answers at `.url("/v1")` (tests.services.llm)."""
    with LlmService() as service:
        yield service
