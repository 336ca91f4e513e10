"""Workflows in the browser: export a saved plan as an Arazzo download, import that file
as a new workflow, and run it (approval included) into an execution page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from apiq.testing.petstore import PetstoreService
from tests.e2e.conftest import Shoot, log_in
from tests.server.harness import ServerProcess, register
from tests.server.test_chat import connect_petstore, plan


def test_export_import_and_run_a_workflow(
    new_page: Callable[..., Any],
    server: ServerProcess,
    petstore: PetstoreService,
    tmp_path: Path,
    shoot: Shoot,
) -> None:
    with register(server.base_url) as user:
        connect_petstore(user, petstore)
        found = plan(user, "find available pets")
        user.data("POST", "/api/workflows", status=201,
                  json={"name": "pets", "planId": found["id"]})  # fmt: skip
    page = new_page()
    log_in(page, user.user["email"])
    page.get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="pets").click()

    with page.expect_download() as download:
        page.get_by_role("button", name="Export Arazzo").click()
    saved = tmp_path / "pets.arazzo.json"
    download.value.save_as(saved)
    assert json.loads(saved.read_text())["arazzo"].startswith("1.")

    page.get_by_role("link", name="Workflows").click()
    page.get_by_label("Name").fill("pets-imported")
    page.get_by_label("Arazzo file (JSON or YAML)").set_input_files(str(saved))
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r".*/workflows/[0-9a-f]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("pets-imported")
    shoot(page, "workflow")

    page.get_by_role("button", name="Approve and run").click()
    page.wait_for_url(re.compile(r".*/executions/[0-9a-f]+$"))
    for _ in range(50):  # the page shows the state when it loads; reload until it ends
        if page.locator(".facts .badge").inner_text() in ("succeeded", "failed", "cancelled"):
            break
        page.wait_for_timeout(200)
        page.reload()
    expect(page.locator(".facts .badge")).to_have_text("succeeded")
