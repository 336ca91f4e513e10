"""Adding a connection from an uploaded spec with OAuth 2.0: the form's Connect runs the
authorization-code flow in the browser (loopback authorization server), and the connection
shows as connected; the client secret never appears on a page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Shoot, log_in
from tests.server.harness import ServerProcess, register
from tests.services.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer


def _spec(oauth: OAuthServer) -> dict[str, Any]:
    flow = {
        "authorizationUrl": oauth.url("/authorize"),
        "tokenUrl": oauth.url("/token"),
        "scopes": {"read": "read the resource"},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Protected", "version": "1"},
        "servers": [{"url": oauth.base_url}],
        "components": {
            "securitySchemes": {"oauth": {"type": "oauth2", "flows": {"authorizationCode": flow}}}
        },
        "security": [{"oauth": ["read"]}],
        "paths": {
            "/resource": {
                "get": {"operationId": "getResource", "responses": {"200": {"description": "ok"}}}
            }
        },
    }


def test_upload_a_spec_and_connect_with_oauth(
    new_page: Callable[..., Any],
    server: ServerProcess,
    oauth_server: OAuthServer,
    tmp_path: Path,
    shoot: Shoot,
) -> None:
    spec = tmp_path / "protected.json"
    spec.write_text(json.dumps(_spec(oauth_server)))
    with register(server.base_url) as user:
        pass
    page = new_page()
    log_in(page, user.user["email"])
    page.goto("/connections/new")
    page.get_by_label("Name", exact=True).fill("protected")
    page.get_by_label("Upload a file").check()
    page.get_by_label("Spec file (JSON or YAML)").set_input_files(str(spec))
    page.get_by_label("Kind").select_option("oauth2")
    page.get_by_label("Security scheme name").fill("oauth")
    page.get_by_label("Client ID").fill(CLIENT_ID)
    page.get_by_label("Client secret (optional)").fill(CLIENT_SECRET)
    page.get_by_label("Scopes (space separated)").fill("read")
    shoot(page, "connection-new-oauth")

    page.get_by_role("button", name="Add connection").click()
    # The provider approves at once and sends the browser back to the callback.
    page.wait_for_url(re.compile(r".*/api/oauth/callback\?.*"))
    assert oauth_server.access_tokens

    page.goto("/connections")
    page.get_by_role("link", name="protected").click()
    expect(page.locator(".facts")).to_contain_text("ready")
    credential = page.get_by_role("listitem").filter(has_text="oauth2")
    expect(credential).to_contain_text("connected")
    expect(credential).not_to_contain_text("not connected")
    assert CLIENT_SECRET not in page.content()
    page.get_by_role("button", name="Test").click()
    expect(page.locator("#notice")).to_contain_text("auth ok")
