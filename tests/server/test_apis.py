"""`/api/apis`: registering APIs, their secrets, tests, refreshes, endpoints and isolation.

Every response body of this module is checked for the canary API key (`Canary.check`), and
the server's log is checked once at the end of the module's tests on each backend.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from apiq.testing.petstore import PetstoreService
from apiq_adapters.sql.engine import sync_url
from tests.server.harness import Api, ServerProcess

CANARY = "canary-api-key-" + uuid.uuid4().hex
"""The API key every connection of this module stores; it must never come back out."""
PETSTORE_OPERATIONS = 20


def call(api: Api, method: str, path: str, *, status: int = 200, **kwargs: Any) -> Any:
    """A request whose body must not hold the canary; returns `data` (or the error body)."""
    response = api.request(method, path, **kwargs)
    assert CANARY not in response.text
    assert response.status_code == status, f"{method} {path}: {response.text[:800]}"
    body = response.json()
    return body["data"] if body["success"] else body["error"]


def create(
    api: Api, petstore: PetstoreService, *, name: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Register the loopback Petstore with the canary key."""
    body = {
        "name": name or f"petstore-{uuid.uuid4().hex[:6]}",
        "specUrl": petstore.spec_url,
        "credentials": {"api_key": {"value": CANARY}},
        **extra,
    }
    created: dict[str, Any] = call(api, "POST", "/api/apis", status=201, json=body)
    return created


def database_rows(server: ServerProcess, query: str, **params: Any) -> list[Any]:
    """Rows straight from the server's database (what no route shows)."""
    engine = sa.create_engine(sync_url(server.env["APIQ_DATABASE_URL"]))
    try:
        with engine.connect() as db:
            return list(db.execute(sa.text(query), params))
    finally:
        engine.dispose()


def audit_actions(server: ServerProcess, actor: str) -> list[str]:
    """The audit actions recorded for `actor`, oldest first."""
    rows = database_rows(
        server, "SELECT action FROM apiq_audit_log WHERE actor = :actor ORDER BY seq", actor=actor
    )
    return [row.action for row in rows]


@pytest.fixture(scope="module", autouse=True)
def log_has_no_canary(server: ServerProcess) -> Iterator[None]:
    """After the module's tests on a backend, the server log holds no canary."""
    yield
    assert CANARY not in server.log_path.read_text(errors="replace")


def test_create_list_get_show_counts_and_no_secret(
    alice: Api, server: ServerProcess, petstore_upstream: PetstoreService
) -> None:
    created = create(alice, petstore_upstream, name="my petstore")
    assert created["endpointCount"] == PETSTORE_OPERATIONS
    assert created["status"] == "ready"
    assert created["server"]["url"] == petstore_upstream.base_url
    assert created["specUrl"] == petstore_upstream.spec_url
    assert created["credentials"] == [
        {"scheme": "api_key", "kind": "api_key", "hint": "…" + CANARY[-4:], "connected": None}
    ]
    listed = call(alice, "GET", "/api/apis")
    assert listed["total"] == 1
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert call(alice, "GET", f"/api/apis/{created['id']}") == created
    actions = audit_actions(server, alice.user["id"])
    assert {"connection.created", "credential.stored"} <= set(actions)
    # Fetched for alice, or for an earlier user of this server: the spec cache is shared.
    assert {"spec.fetch", "spec.cache.hit"} & set(actions)
    stored = database_rows(
        server, "SELECT detail FROM apiq_audit_log WHERE action = 'credential.stored' "
        "AND actor = :actor", actor=alice.user["id"],
    )  # fmt: skip
    assert len(json.loads(stored[0].detail)["fingerprint"]) == 64
    assert all(
        CANARY not in row.detail
        for row in database_rows(server, "SELECT detail FROM apiq_audit_log")
    )


def test_upload_by_spec_content_is_reloadable(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    body = {
        "name": "uploaded",
        "specContent": json.dumps(petstore_upstream.served_spec()),
        "credentials": {"api_key": {"value": CANARY}},
    }
    created = call(alice, "POST", "/api/apis", status=201, json=body)
    assert created["specUrl"].startswith("upload:sha256:")
    assert created["endpointCount"] == PETSTORE_OPERATIONS
    refreshed = call(alice, "POST", f"/api/apis/{created['id']}/refresh")
    assert refreshed["endpointCount"] == PETSTORE_OPERATIONS
    found = call(alice, "GET", f"/api/apis/{created['id']}/endpoints", params={"q": "order"})
    assert "placeOrder" in [item["operationId"] for item in found["items"]]


@pytest.mark.parametrize(
    ("content", "code"),
    [("openapi: [unclosed", "spec_invalid"), ('{"not": "an api"}', "spec_invalid")],
)
def test_bad_spec_is_422_with_a_sanitized_message(alice: Api, content: str, code: str) -> None:
    body = {"name": "bad", "specContent": content}
    error = call(alice, "POST", "/api/apis", status=422, json=body)
    assert error["code"] == code
    reference = error["details"]["reference"]
    assert error["message"] == f"Spec invalid, see logs (reference {reference})"
    assert call(alice, "GET", "/api/apis")["total"] == 0


def test_unreachable_spec_is_422(alice: Api, petstore_upstream: PetstoreService) -> None:
    body = {"name": "gone", "specUrl": f"http://127.0.0.1:{petstore_upstream.port}/missing.json"}
    error = call(alice, "POST", "/api/apis", status=422, json=body)
    assert error["code"] == "spec_unreachable"
    assert "reference" in error["details"]


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/spec.json", "http://10.0.0.1/openapi.json"]
)
def test_private_spec_urls_are_refused_before_any_fetch(alice: Api, admin: Api, url: str) -> None:
    error = call(alice, "POST", "/api/apis", status=422, json={"name": "ssrf", "specUrl": url})
    assert error["code"] == "egress_denied"
    assert call(alice, "GET", "/api/apis")["total"] == 0
    assert url not in [entry["url"] for entry in call(admin, "GET", "/api/admin/spec-cache")]


def test_name_taken_is_409(alice: Api, petstore_upstream: PetstoreService) -> None:
    create(alice, petstore_upstream, name="twice")
    body = {"name": "twice", "specUrl": petstore_upstream.spec_url}
    assert call(alice, "POST", "/api/apis", status=409, json=body)["code"] == "conflict"


def test_credentials_that_fit_no_scheme_are_refused(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    body = {
        "name": "wrong",
        "specUrl": petstore_upstream.spec_url,
        "credentials": {"nope": {"value": CANARY}},
    }
    error = call(alice, "POST", "/api/apis", status=400, json=body)
    assert "api_key (api_key)" in error["message"]
    unknown = {**body, "role": "ADMIN"}
    assert call(alice, "POST", "/api/apis", status=400, json=unknown)["code"] == "bad_request"


def test_update_replaces_name_and_credentials_and_delete_forgets_all(
    alice: Api, server: ServerProcess, petstore_upstream: PetstoreService
) -> None:
    first = create(alice, petstore_upstream, name="first")
    other = create(alice, petstore_upstream, name="other")
    path = f"/api/apis/{first['id']}"
    new_key = "replacement-key-" + uuid.uuid4().hex[:8]
    body = {"name": "renamed", "credentials": {"api_key": {"value": new_key}}}
    updated = call(alice, "PUT", path, json=body)
    assert updated["name"] == "renamed"
    assert updated["credentials"][0]["hint"] == "…" + new_key[-4:]
    assert call(alice, "PUT", path, status=409, json={"name": other["name"]})["code"] == "conflict"
    assert (
        call(alice, "PUT", path, json={"server": {"baseUrl": "https://api.example.com/v2"}})[
            "server"
        ]["url"]
        == "https://api.example.com/v2"
    )

    assert call(alice, "DELETE", path) == {"id": first["id"], "deleted": True}
    assert call(alice, "GET", path, status=404)["code"] == "not_found"
    assert call(alice, "GET", path + "/endpoints", status=404)["code"] == "not_found"
    secrets = database_rows(
        server, "SELECT name FROM apiq_secrets WHERE name LIKE :prefix", prefix=first["id"] + "/%"
    )
    assert secrets == []
    endpoints = database_rows(
        server, "SELECT 1 FROM apiq_endpoints WHERE connection_id = :cid", cid=first["id"]
    )
    assert endpoints == []
    assert {"connection.updated", "connection.deleted"} <= set(
        audit_actions(server, alice.user["id"])
    )


def test_another_users_ids_answer_404_on_every_route(
    alice: Api, bob: Api, petstore_upstream: PetstoreService
) -> None:
    created = create(alice, petstore_upstream, name="alice-secret-name")
    item = f"/api/apis/{created['id']}"
    attempts = [
        ("GET", item, None),
        ("PUT", item, {"name": "mine now"}),
        ("POST", item + "/test", None),
        ("POST", item + "/refresh", None),
        ("GET", item + "/endpoints", None),
        ("POST", item + "/oauth/start", {}),
        ("DELETE", item, None),
    ]
    for method, path, body in attempts:
        response = bob.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert "alice-secret-name" not in response.text
    assert call(bob, "GET", "/api/apis")["total"] == 0
    assert call(alice, "GET", item)["name"] == "alice-secret-name"


def test_test_and_refresh_update_status_and_audit(
    alice: Api, server: ServerProcess, petstore_upstream: PetstoreService
) -> None:
    created = create(alice, petstore_upstream)
    item = f"/api/apis/{created['id']}"
    result = call(alice, "POST", item + "/test")
    assert result["reachable"] is True
    assert result["authOk"] is True
    assert result["status"] == "ready"
    assert isinstance(result["httpStatus"], int)
    refreshed = call(alice, "POST", item + "/refresh")
    assert refreshed["endpointCount"] == PETSTORE_OPERATIONS
    actions = audit_actions(server, alice.user["id"])
    assert {"connection.tested", "connection.refreshed"} <= set(actions)
    after_test = actions[actions.index("connection.tested") :]
    assert "spec.fetch" in after_test  # the refresh fetched again, past the fresh cache entry


def test_a_connection_without_credentials_needs_auth(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    body = {"name": "bare", "specUrl": petstore_upstream.spec_url}
    created = call(alice, "POST", "/api/apis", status=201, json=body)
    assert created["status"] == "needs_auth"
    result = call(alice, "POST", f"/api/apis/{created['id']}/test")
    assert result["reachable"] is True
    assert result["authOk"] is False
    assert result["status"] == "auth_failed"


def test_unreachable_server_is_reported_by_test(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    created = create(alice, petstore_upstream, server={"baseUrl": "http://10.0.0.1/v2"})
    result = call(alice, "POST", f"/api/apis/{created['id']}/test")
    assert result == {
        "reachable": False,
        "status": "unreachable",
        "authOk": True,
        "detail": "the egress policy refuses the server URL",
        "httpStatus": None,
    }
    assert call(alice, "GET", f"/api/apis/{created['id']}")["status"] == "unreachable"


def test_endpoints_page_and_search(alice: Api, petstore_upstream: PetstoreService) -> None:
    created = create(alice, petstore_upstream)
    path = f"/api/apis/{created['id']}/endpoints"
    first = call(alice, "GET", path, params={"limit": 5})
    second = call(alice, "GET", path, params={"limit": 5, "offset": 5})
    assert first["total"] == PETSTORE_OPERATIONS
    assert len(first["items"]) == len(second["items"]) == 5
    assert not {e["operationId"] for e in first["items"]} & {
        e["operationId"] for e in second["items"]
    }
    found = call(alice, "GET", path, params={"q": "pets by status"})
    assert found["items"][0]["operationId"] == "findPetsByStatus"
    assert found["items"][0]["method"] == "GET"
    assert call(alice, "GET", path, status=400, params={"limit": 1000})["code"] == "bad_request"


def test_idempotency_key_gives_the_same_connection(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {
        "name": "once",
        "specUrl": petstore_upstream.spec_url,
        "credentials": {"api_key": {"value": CANARY}},
    }
    first = call(alice, "POST", "/api/apis", status=201, json=body, headers=key)
    again = call(alice, "POST", "/api/apis", status=201, json=body, headers=key)
    assert again == first
    assert call(alice, "GET", "/api/apis")["total"] == 1
    changed = {**body, "credentials": {"api_key": {"value": CANARY + "-other"}}}
    assert (
        call(alice, "POST", "/api/apis", status=409, json=changed, headers=key)["code"]
        == "conflict"
    )


def test_auditors_read_but_do_not_write(auditor: Api, petstore_upstream: PetstoreService) -> None:
    assert call(auditor, "GET", "/api/apis")["total"] == 0
    body = {"name": "no", "specUrl": petstore_upstream.spec_url}
    assert call(auditor, "POST", "/api/apis", status=403, json=body)["code"] == "forbidden"
