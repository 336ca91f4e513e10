"""`apiq serve --demo`: the reference server with a demo admin and the Petstore API.

The Petstore runs on loopback in this process (the same service the tests and `apiq demo`
use), the egress policy lets exactly its port through, and the database and key file live
in a temporary folder unless `APIQ_DATABASE_URL` says otherwise. The admin's password is
random and printed once, on this terminal only.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from litestar import Litestar
from pydantic import SecretStr

from apiq.models import Principal
from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService
from apiq_server.app import create_app
from apiq_server.schemas.apis import ApiCreate, CredentialIn
from apiq_server.services.apis import ApiService
from apiq_server.services.users import TENANT, UserService
from apiq_server.settings import Settings
from apiq_server.wiring import build_services

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["DEMO_EMAIL", "demo_app"]

DEMO_EMAIL = "admin@demo.apiq"


@asynccontextmanager
async def demo_app(out: Console) -> AsyncIterator[Litestar]:
    """The app in demo mode, with its services built and the demo data in place."""
    with tempfile.TemporaryDirectory(prefix="apiq-demo-") as folder, PetstoreService() as petstore:
        settings = Settings(
            mode="demo",
            database_url=os.environ.get(
                "APIQ_DATABASE_URL", f"sqlite:///{Path(folder) / 'apiq.sqlite'}"
            ),
            key_file=Path(folder) / "apiq-master.key",
            egress_allow=f"127.0.0.1:{petstore.port}",
        )
        async with build_services(settings) as services:
            password = secrets.token_urlsafe(12)
            admin = await UserService(services).create_admin(DEMO_EMAIL, password)
            principal = Principal(id=admin.id, tenant=TENANT, roles=frozenset({"ADMIN"}))
            await ApiService(services).create(
                principal,
                ApiCreate(
                    name="petstore",
                    spec_url=petstore.spec_url,
                    credentials={"api_key": CredentialIn(value=SecretStr(PETSTORE_API_KEY))},
                ),
                key=None,
            )
            out.print(
                f"Demo: log in as [bold]{DEMO_EMAIL}[/] with password [bold]{password}[/] "
                f"(shown once). The Petstore API is connected as 'petstore'."
            )
            yield create_app(settings, services=services)
