"""`/api/workflows`: saving plans, the confirmation gate on execute, Arazzo out and in."""

from __future__ import annotations

import uuid
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiq.testing.petstore import PetstoreService
from apiq.workflows import validate_arazzo
from tests.server.harness import Api, api_calls, connect_petstore, error_of, plan, wait_final

Rex = {"photoUrls": ["https://example.com/rex.png"]}


def save(api: Api, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """`POST /api/workflows`; the workflow."""
    saved: dict[str, Any] = api.data("POST", "/api/workflows", status=201, json=body, **kwargs)
    return saved


def saved_request(api: Api, message: str, name: str = "pets") -> dict[str, Any]:
    """Plan `message` and save the plan as a workflow named `name`."""
    return save(api, {"name": name, "planId": plan(api, message)["id"]})


def test_a_plan_is_saved_read_listed_changed_and_deleted(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    found = plan(alice, "find available pets")

    saved = save(
        alice, {"name": "available", "description": "pets to adopt", "planId": found["id"]}
    )

    assert (saved["name"], saved["description"]) == ("available", "pets to adopt")
    assert (saved["request"], saved["stepCount"], saved["digest"]) == (
        "find available pets", 1, found["digest"],
    )  # fmt: skip
    assert alice.data("GET", f"/api/workflows/{saved['id']}") == saved
    listed = alice.data("GET", "/api/workflows")
    assert (listed["total"], [w["id"] for w in listed["items"]]) == (1, [saved["id"]])

    changed = alice.data("PUT", f"/api/workflows/{saved['id']}", json={"name": "adoptable"})
    assert (changed["name"], changed["description"], changed["digest"]) == (
        "adoptable", "pets to adopt", saved["digest"],
    )  # fmt: skip

    deleted = alice.data("DELETE", f"/api/workflows/{saved['id']}")
    assert deleted == {"id": saved["id"], "deleted": True}
    assert error_of(alice.get(f"/api/workflows/{saved['id']}"), 404)["code"] == "not_found"


def test_a_plan_written_out_is_saved_and_changed_like_one_from_chat(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    first = saved_request(alice, "find available pets")

    copy = save(alice, {"name": "copy", "plan": first["plan"]})
    other = saved_request(alice, "add a pet named Rex", name="rex")
    changed = alice.data("PUT", f"/api/workflows/{copy['id']}", json={"plan": other["plan"]})

    assert copy["digest"] == first["digest"]
    assert (changed["digest"], changed["request"]) == (other["digest"], "add a pet named Rex")


# Any text but control characters for a name; any but NUL for a description.
names = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=200)
descriptions = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=names, description=descriptions)
def test_names_and_descriptions_are_kept_exactly(
    alice: Api, petstore_upstream: PetstoreService, name: str, description: str
) -> None:
    if not alice.data("GET", "/api/apis")["items"]:
        connect_petstore(alice, petstore_upstream)
    written = saved_request(alice, "find available pets")["plan"]

    saved = save(alice, {"name": name, "description": description, "plan": written})

    assert (saved["name"], saved["description"]) == (name, description)
    assert alice.data("GET", f"/api/workflows/{saved['id']}") == saved


def test_control_characters_are_refused_in_names_and_nul_in_any_text(alice: Api) -> None:
    for body in (
        {"name": "a\nb", "planId": "p"},
        {"name": "a", "description": "\x00", "planId": "p"},
    ):
        assert error_of(alice.post("/api/workflows", json=body), 400)["code"] == "bad_request"
    assert (
        error_of(alice.post("/api/chat", json={"message": "pets\x00"}), 400)["code"]
        == "bad_request"
    )


def test_a_malformed_plan_or_one_over_apis_not_connected_is_refused(
    alice: Api, bob: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    written = saved_request(alice, "find available pets")["plan"]

    malformed = error_of(
        alice.post("/api/workflows", json={"name": "x", "plan": {"sources": []}}), 422
    )
    foreign = error_of(bob.post("/api/workflows", json={"name": "x", "plan": written}), 422)
    both = error_of(alice.post("/api/workflows", json={"name": "x"}), 400)

    assert malformed["code"] == "plan_invalid"
    assert malformed["details"]["problems"]
    assert foreign["code"] == "plan_invalid"
    assert any("not one of your connected APIs" in p for p in foreign["details"]["problems"])
    assert both["code"] == "bad_request"


def test_the_same_idempotency_key_gives_the_same_workflow(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    found = plan(alice, "find available pets")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"name": "once", "planId": found["id"]}

    first = save(alice, body, headers=key)
    again = save(alice, body, headers=key)
    other = alice.post("/api/workflows", json={**body, "name": "twice"}, headers=key)

    assert again == first
    assert error_of(other, 409)["code"] == "conflict"
    assert alice.data("GET", "/api/workflows")["total"] == 1


def test_executing_a_state_changing_workflow_needs_approval(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    saved = saved_request(alice, "add a pet named Rex")
    path = f"/api/workflows/{saved['id']}/execute"
    before = api_calls(petstore_upstream)

    refused = error_of(alice.post(path, json={"inputs": Rex}), 409)
    assert refused["code"] == "confirmation_required"
    assert api_calls(petstore_upstream) == before

    started = alice.data("POST", path, status=201, json={"approve": True, "inputs": Rex})
    state = wait_final(alice, started["id"])
    assert (state["status"], state["workflowId"]) == ("succeeded", saved["id"])


def test_a_read_only_workflow_runs_without_approval(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    saved = saved_request(alice, "find available pets")

    started = alice.data("POST", f"/api/workflows/{saved['id']}/execute", status=201, json={})

    assert wait_final(alice, started["id"])["status"] == "succeeded"


def test_export_is_valid_arazzo_pointing_at_the_registered_spec(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connection = connect_petstore(alice, petstore_upstream)
    saved = saved_request(alice, "find available pets", name="Available pets")

    document = alice.data("GET", f"/api/workflows/{saved['id']}/arazzo")

    assert validate_arazzo(document) == []
    assert document["arazzo"] == "1.0.1"
    assert document["info"]["title"] == "Available pets"
    assert document["sourceDescriptions"] == [
        {"name": connection, "url": petstore_upstream.spec_url, "type": "openapi"}
    ]


def test_import_round_trips_an_export_as_json_and_as_yaml(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    saved = saved_request(alice, "add a pet named Rex")
    document = alice.data("GET", f"/api/workflows/{saved['id']}/arazzo")

    for shown in (document, yaml.safe_dump(document)):
        body = {"name": "imported", "document": shown}
        imported = alice.data("POST", "/api/workflows/import", status=201, json=body)
        assert (imported["digest"], imported["request"]) == (saved["digest"], saved["request"])
        assert imported["plan"] == saved["plan"]


def test_import_matches_sources_to_connections_by_spec_url(
    alice: Api, bob: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    document = alice.data(
        "GET", f"/api/workflows/{saved_request(alice, 'find available pets')['id']}/arazzo"
    )
    document["sourceDescriptions"][0]["name"] = "someone_elses_store"
    steps = document["workflows"][0]["steps"]
    for step in steps:
        step["operationId"] = step["operationId"].split(".")[-1]
    bobs = connect_petstore(bob, petstore_upstream, name="my-petstore")

    imported = bob.data(
        "POST", "/api/workflows/import", status=201, json={"name": "theirs", "document": document}
    )

    assert [s["name"] for s in imported["plan"]["sources"]] == [bobs]
    started = bob.data("POST", f"/api/workflows/{imported['id']}/execute", status=201, json={})
    assert wait_final(bob, started["id"])["status"] == "succeeded"


def test_import_refuses_what_is_not_arazzo(alice: Api, petstore_upstream: PetstoreService) -> None:
    connect_petstore(alice, petstore_upstream)
    for document in ("openapi: 3.0.0", {"arazzo": "1.0.1"}, "{not json", "[]"):
        response = alice.post("/api/workflows/import", json={"name": "x", "document": document})
        assert error_of(response, 422)["code"] == "arazzo_invalid", document


def test_another_users_workflow_is_not_found(
    alice: Api, bob: Api, auditor: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    saved = saved_request(alice, "find available pets")
    item = f"/api/workflows/{saved['id']}"

    for response in (
        bob.get(item),
        bob.put(item, json={"name": "mine now"}),
        bob.delete(item),
        bob.post(f"{item}/execute", json={"approve": True}),
        bob.get(f"{item}/arazzo"),
        auditor.get(item),
    ):
        assert error_of(response, 404)["code"] == "not_found"
        assert "find available pets" not in response.text
    assert bob.data("GET", "/api/workflows")["total"] == 0
    assert alice.data("GET", item)["name"] == saved["name"]


def test_auditors_read_but_do_not_write_workflows(auditor: Api) -> None:
    assert auditor.data("GET", "/api/workflows")["items"] == []
    response = auditor.post("/api/workflows", json={"name": "x", "planId": "p"})
    assert error_of(response, 403)["code"] == "forbidden"
