"""`/api/executions`: state, live events (server-sent), listing, cancelling, isolation."""

from __future__ import annotations

import json
from typing import Any

from apiq.testing.petstore import PetstoreService
from tests.server.harness import Api, connect_petstore, error_of, plan, wait_final


def run_plan(api: Api, message: str, **body: Any) -> str:
    """Plan `message` and start it; the execution id."""
    found = plan(api, message)
    started = api.data(
        "POST", "/api/chat/execute", status=201, json={"planId": found["id"], **body}
    )
    assert started["status"] in ("pending", "running", "succeeded"), started
    return str(started["id"])


def stream(api: Api, execution_id: str) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The content type and every (event, data) of the execution's event stream, to its end."""
    events: list[tuple[str, dict[str, Any]]] = []
    kind, data = "", ""
    url = f"{api.base_url}/api/executions/{execution_id}/events"
    headers = {"Authorization": f"Bearer {api.token}"}
    with api.client.stream("GET", url, headers=headers, timeout=60) as response:
        assert response.status_code == 200, response.read()[:500]
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data += line.removeprefix("data: ")
            elif not line and data:
                events.append((kind, json.loads(data)))
                kind, data = "", ""
        return response.headers["content-type"], events


def slow_plan(connection: str, spec_url: str) -> dict[str, Any]:
    """A read-only plan whose step never succeeds and waits ten minutes between retries."""
    step = {
        "stepId": "find",
        "operationId": "findPetsByStatus",
        "parameters": [{"name": "status", "in": "query", "value": ["available"]}],
        "successCriteria": [{"condition": "$statusCode == 201"}],
        "onFailure": [{"name": "again", "type": "retry", "retryAfter": 600, "retryLimit": 3}],
    }
    return {
        "workflow": {"workflowId": "slow", "steps": [step]},
        "sources": [{"name": connection, "url": spec_url}],
    }


def test_state_reports_each_steps_request(alice: Api, petstore_upstream: PetstoreService) -> None:
    connect_petstore(alice, petstore_upstream)
    execution_id = run_plan(alice, "find available pets")

    state = wait_final(alice, execution_id)

    assert (state["id"], state["status"], state["error"]) == (execution_id, "succeeded", None)
    [step] = state["steps"]
    assert (step["id"], step["status"], step["runs"], step["attempts"]) == ("s1", "succeeded", 1, 1)
    request = step["request"]
    assert request["url"] == f"{petstore_upstream.base_url}/pet/findByStatus?status=available"
    assert (request["method"], request["status"]) == ("GET", 200)
    assert request["durationMs"] >= 0
    assert {pet["name"] for pet in step["outputs"]["result"]} >= {"doggie", "kitty"}
    assert state["outputs"]["result"] == step["outputs"]["result"]


def test_events_stream_in_order_and_end_with_the_execution(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    execution_id = run_plan(alice, "find available pets")

    content_type, events = stream(alice, execution_id)

    assert content_type.startswith("text/event-stream")
    assert [(kind, data["kind"], data["stepId"]) for kind, data in events] == [
        ("execution.started", "execution.started", None),
        ("step.started", "step.started", "s1"),
        ("step.succeeded", "step.succeeded", "s1"),
        ("execution.finished", "execution.finished", None),
    ]
    assert {data["executionId"] for _, data in events} == {execution_id}
    assert events[-1][1]["detail"]["status"] == "succeeded"
    assert events[2][1]["detail"]["request"]["method"] == "GET"


def test_executions_are_listed_newest_first_in_pages(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    started = [run_plan(alice, "find available pets") for _ in range(3)]

    listed = alice.data("GET", "/api/executions")
    first = alice.data("GET", "/api/executions", params={"limit": 2})
    rest = alice.data("GET", "/api/executions", params={"offset": 2, "limit": 2})

    assert [item["id"] for item in listed["items"]] == started[::-1]
    assert (listed["total"], first["total"], rest["total"]) == (3, 3, 3)
    assert [i["id"] for i in first["items"] + rest["items"]] == started[::-1]
    assert all(item["planId"] and item["workflowId"] is None for item in listed["items"])
    too_many = alice.get("/api/executions", params={"limit": 1000})
    assert error_of(too_many, 400)["code"] == "bad_request"


def test_a_cancelled_execution_stops_waiting_and_its_stream_ends(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connection = connect_petstore(alice, petstore_upstream)
    body = {"name": "slow", "plan": slow_plan(connection, petstore_upstream.spec_url)}
    saved = alice.data("POST", "/api/workflows", status=201, json=body)
    started = alice.data("POST", f"/api/workflows/{saved['id']}/execute", status=201, json={})

    cancelled = alice.data("POST", f"/api/executions/{started['id']}/cancel")
    state = wait_final(alice, started["id"])
    _, events = stream(alice, started["id"])

    assert cancelled["id"] == started["id"]
    assert state["status"] == "cancelled", state
    assert events[-1][0] == "execution.finished"
    assert events[-1][1]["detail"]["status"] == "cancelled"


def test_another_users_execution_is_not_found(
    alice: Api, bob: Api, auditor: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    execution_id = run_plan(alice, "find available pets")
    wait_final(alice, execution_id)
    item = f"/api/executions/{execution_id}"

    for response in (
        bob.get(item),
        bob.get(f"{item}/events"),
        bob.post(f"{item}/cancel"),
        auditor.get(item),
    ):
        assert error_of(response, 404)["code"] == "not_found"
        assert "doggie" not in response.text
    assert bob.data("GET", "/api/executions")["total"] == 0
    assert error_of(auditor.post(f"{item}/cancel"), 403)["code"] == "forbidden"
