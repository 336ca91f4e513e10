"""`POST /api/chat` and `POST /api/chat/execute`: planning, the confirmation gate, isolation."""

from __future__ import annotations

import json

from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService
from tests.server.harness import Api, api_calls, connect_petstore, error_of, plan, wait_final


def test_a_read_only_request_is_planned_from_the_connection(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connection = connect_petstore(alice, petstore_upstream)
    before = api_calls(petstore_upstream)

    found = plan(alice, "find available pets")

    assert found["request"] == "find available pets"
    assert found["needsApproval"] is False
    [step] = found["steps"]
    assert step["source"] == connection
    assert step["operation"] == "findPetsByStatus"
    assert step["method"] == "GET"
    assert step["url"] == f"{petstore_upstream.base_url}/pet/findByStatus"
    assert step["arguments"] == {"query": {"status": ["available"]}}
    assert step["changesState"] is False
    assert api_calls(petstore_upstream) == before  # planning sends nothing


def test_a_read_only_plan_runs_without_approval(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    found = plan(alice, "find available pets")

    started = alice.data("POST", "/api/chat/execute", status=201, json={"planId": found["id"]})
    state = wait_final(alice, started["id"])

    assert state["status"] == "succeeded", state
    [step] = state["steps"]
    assert step["status"] == "succeeded"
    assert step["request"]["method"] == "GET"
    assert step["request"]["status"] == 200
    assert step["request"]["url"].startswith(f"{petstore_upstream.base_url}/pet/findByStatus")
    assert state["planId"] == found["id"]


def test_a_state_change_is_refused_without_approval_and_nothing_is_sent(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    found = plan(alice, "add a pet named Rex")
    assert found["needsApproval"] is True
    [step] = found["steps"]
    assert (step["method"], step["changesState"]) == ("POST", True)
    assert step["url"] == f"{petstore_upstream.base_url}/pet"
    before = api_calls(petstore_upstream)
    inputs = {"photoUrls": ["https://example.com/rex.png"]}

    for approve in ({}, {"approve": False}):
        body = {"planId": found["id"], "inputs": inputs, **approve}
        error = error_of(alice.post("/api/chat/execute", json=body), 409)
        assert error["code"] == "confirmation_required"

    assert api_calls(petstore_upstream) == before
    assert alice.data("GET", "/api/executions")["total"] == 0


def test_an_approved_state_change_runs(alice: Api, petstore_upstream: PetstoreService) -> None:
    connect_petstore(alice, petstore_upstream)
    found = plan(alice, "add a pet named Rex")
    body = {
        "planId": found["id"],
        "approve": True,
        "inputs": {"photoUrls": ["https://x.test/r.png"]},
    }

    started = alice.data("POST", "/api/chat/execute", status=201, json=body)
    state = wait_final(alice, started["id"])

    assert state["status"] == "succeeded", state
    assert state["steps"][0]["request"]["method"] == "POST"
    sent = [
        r for r in list(petstore_upstream.requests) if (r.method, r.path) == ("POST", "/v2/pet")
    ]
    assert any(json.loads(r.body)["name"] == "Rex" for r in sent)


def test_inputs_that_do_not_fit_are_refused_before_anything_is_sent(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    found = plan(alice, "add a pet named Rex")
    before = api_calls(petstore_upstream)

    response = alice.post("/api/chat/execute", json={"planId": found["id"], "approve": True})

    error = error_of(response, 422)
    assert error["code"] == "plan_invalid"
    assert "photoUrls" in error["message"]
    assert api_calls(petstore_upstream) == before


def test_another_users_plan_is_not_found(
    alice: Api, bob: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)
    connect_petstore(bob, petstore_upstream)
    found = plan(alice, "find available pets")

    response = bob.post("/api/chat/execute", json={"planId": found["id"], "approve": True})

    error = error_of(response, 404)
    assert error["code"] == "not_found"
    assert "find available pets" not in response.text


def test_a_request_no_operation_fits_is_a_clear_planning_error(
    alice: Api, petstore_upstream: PetstoreService
) -> None:
    connect_petstore(alice, petstore_upstream)

    response = alice.post("/api/chat", json={"message": "xyzzy frobnicate quux"})

    error = error_of(response, 422)
    assert error["code"] == "planning_failed"
    assert "rephrase" in error["message"]
    assert PETSTORE_API_KEY not in response.text


def test_planning_without_a_connection_says_to_connect_one(alice: Api) -> None:
    error = error_of(alice.post("/api/chat", json={"message": "find available pets"}), 422)

    assert error["code"] == "planning_failed"
    assert "POST /api/apis" in error["message"]


def test_chat_refuses_auditors_anonymous_callers_and_unknown_fields(
    alice: Api, auditor: Api, anonymous: Api
) -> None:
    body = {"message": "find available pets"}
    assert error_of(auditor.post("/api/chat", json=body), 403)["code"] == "forbidden"
    assert error_of(anonymous.post("/api/chat", json=body), 401)["code"] == "unauthorized"
    smuggled = {"message": "find pets", "ownerId": "someone-else"}
    assert error_of(alice.post("/api/chat", json=smuggled), 400)["code"] == "bad_request"
    assert error_of(alice.post("/api/chat", json={"message": ""}), 400)["code"] == "bad_request"
