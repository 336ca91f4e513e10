"""Fixtures shared by every test folder.

Two guarantees hold for the whole run:
- no test sends traffic off this machine: an audit hook refuses any socket connect or name
  lookup that is not loopback, even if the egress policy under test has a bug;
- tests that need `../shared/specs` find it through the `shared_specs` fixture, which skips
  with the reason when it is absent, and fails instead when `APIQ_REQUIRE_SHARED=1` (CI).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Real services on loopback (Petstore, echo, 429/503, redirect trap) as fixtures for every folder.
pytest_plugins = ["tests.services.fixtures"]

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "", None}
_guard_trips: list[str] = []


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _network_guard(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            _guard_trips.append(f"connect to {address!r}")
            raise ConnectionRefusedError(f"test network guard: refused connect to {address!r}")
    elif event == "socket.getaddrinfo":
        host = args[0]
        if not _is_loopback(host):
            _guard_trips.append(f"lookup of {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, f"test network guard: refused lookup {host!r}")


sys.addaudithook(_network_guard)


@pytest.fixture(autouse=True)
def _no_off_machine_traffic() -> Iterator[None]:
    """Fail any test during which something tried to leave the machine."""
    start = len(_guard_trips)
    yield
    tripped = _guard_trips[start:]
    assert not tripped, f"test tried to reach beyond loopback: {tripped}"


SHARED_SPECS = Path(__file__).resolve().parents[1].parent / "shared" / "specs"


@pytest.fixture(scope="session")
def shared_specs() -> Path:
    """`../shared/specs` beside the checkout; skips (or fails under CI) when absent."""
    if (SHARED_SPECS / "MANIFEST.md").is_file():
        return SHARED_SPECS
    reason = f"the spec corpus {SHARED_SPECS} is absent (it sits beside a developer's checkout)"
    if os.environ.get("APIQ_REQUIRE_SHARED") == "1":
        pytest.fail(f"{reason}; APIQ_REQUIRE_SHARED=1 makes that a failure")
    pytest.skip(reason)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
