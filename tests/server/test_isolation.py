"""Object-level isolation: another user's ids answer 404 and hold none of their data.

Alice makes one of each object (a connection to the loopback Petstore, a plan, a
workflow, an execution). Bob (USER), an ADMIN and an AUDITOR then call every route of the
app's route table that takes an id, with Alice's ids and a valid body, and the routes
that take a plan id in the body. Each answer must be 404 (or 403 where the role's policy
refuses the route first) and contain none of Alice's names, URLs or other ids. Afterwards
Alice's objects are unchanged, the Petstore saw no request, and nobody else's lists show
her objects.

Tenancy: one deployment is one tenant, and isolation is per user inside it. Objects
(connections, secrets, plans, workflows, executions) belong to their owner alone: an ADMIN
manages users, not other users' objects. The audit log is the tenant's: AUDITORs and
ADMINs read all of it by design (that is their job), a USER reads none of it (403), so no
USER sees another user's audit entries.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from apiq.testing.petstore import PetstoreService
from apiq_server.policy import Role
from tests.server.harness import Api, connect_petstore, plan, wait_final
from tests.server.test_policy_matrix import route_table, send

IDS = {"api": "api_id", "workflow": "workflow_id", "execution": "execution_id"}
VALID_BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/api/apis/{api_id}"): {"name": "taken-over"},
    ("POST", "/api/apis/{api_id}/oauth/start"): {},
    ("PUT", "/api/workflows/{workflow_id}"): {"name": "taken-over", "description": "x"},
    ("POST", "/api/workflows/{workflow_id}/execute"): {"approve": True},
}
"""Bodies that would succeed on the caller's own object, so a 404 can only mean "not yours"."""


def test_other_users_ids_answer_404_without_data(
    alice: Api, bob: Api, admin: Api, auditor: Api, petstore_upstream: PetstoreService
) -> None:
    marker = uuid.uuid4().hex[:8]
    objects = _alice_objects(alice, petstore_upstream, marker)
    before = _snapshot(alice, objects)
    requests_before = len(petstore_upstream.requests)
    secrets = _alice_data(alice, objects, petstore_upstream, marker)

    cases = [case for case in route_table() if case.parameters and case.method != "OPTIONS"]
    assert {name for case in cases for name in case.parameters} >= set(IDS.values())
    cases.sort(key=lambda case: case.method == "DELETE")  # deletes last: nothing hides behind them
    problems = []
    for intruder in (bob, admin, auditor):
        role = intruder.user["role"]
        for case in cases:
            if set(case.parameters) - set(IDS.values()):
                continue  # /api/admin/users/{user_id}: users are the admin's objects by design
            assert case.policy is not None
            ids = {IDS[kind]: objects[kind] for kind in IDS}
            body = VALID_BODIES.get((case.method, case.path), {})
            answer = send(intruder, case, ids, body)
            status, text = answer.status, answer.text
            allowed = case.policy.public or Role(role) in case.policy.roles
            expected = 404 if allowed else 403
            leaked = [value for value in secrets if value in text and value not in ids.values()]
            if status != expected or leaked:
                problems.append(f"{case} as {role}: {status} (want {expected}) leaked {leaked}")
        for status, text, what in _body_id_requests(intruder, objects):
            leaked = [value for value in secrets if value in text and value != objects["plan"]]
            if status not in (403, 404) or leaked:
                problems.append(f"{what} as {role}: {status} leaked {leaked}: {text[:200]}")
        problems += _lists_show(intruder, _private(alice, objects, marker))
    assert not problems, "\n".join(problems)

    assert _snapshot(alice, objects) == before, "another user changed Alice's objects"
    assert len(petstore_upstream.requests) == requests_before, "another user reached her API"
    assert bob.get("/api/logs").status_code == 403  # a USER reads no audit entries at all


def test_an_imported_arazzo_document_never_binds_to_another_users_connection(
    alice: Api, bob: Api, petstore_upstream: PetstoreService
) -> None:
    objects = _alice_objects(alice, petstore_upstream, uuid.uuid4().hex[:8])
    document = alice.data("GET", f"/api/workflows/{objects['workflow']}/arazzo")
    unknown = uuid.uuid4().hex[: len(objects["api"])]
    forged = json.loads(json.dumps(document).replace(objects["api"], unknown))
    answers = [
        bob.post("/api/workflows/import", json={"name": "mine now", "document": sent})
        for sent in (document, forged)
    ]
    for answer in answers:
        assert answer.status_code in (404, 422), answer.text[:500]
    # Alice's connection id is Bob's own input here; the answer must not tell it from an
    # id that exists nowhere (no oracle for other users' ids).
    errors = [answer.json()["error"] for answer in answers]
    assert errors[0]["code"] == errors[1]["code"]
    assert errors[0]["message"].replace(objects["api"], unknown) == errors[1]["message"]
    assert bob.data("GET", "/api/workflows")["items"] == []


def _alice_objects(alice: Api, petstore: PetstoreService, marker: str) -> dict[str, str]:
    api = connect_petstore(alice, petstore, name=f"alice-petstore-{marker}")
    found = plan(alice, "find available pets")
    workflow = alice.data(
        "POST", "/api/workflows", status=201,
        json={"name": f"alice-workflow-{marker}", "description": f"private {marker}",
              "planId": found["id"]},
    )  # fmt: skip
    started = alice.data("POST", "/api/chat/execute", status=201, json={"planId": found["id"]})
    assert wait_final(alice, started["id"])["status"] == "succeeded"
    return {"api": api, "plan": found["id"], "workflow": workflow["id"], "execution": started["id"]}


def _private(alice: Api, objects: dict[str, str], marker: str) -> list[str]:
    """Values only Alice's objects hold: no answer to anyone else may show them."""
    return [*objects.values(), marker, alice.user["id"], alice.user["email"]]


def _alice_data(
    alice: Api, objects: dict[str, str], petstore: PetstoreService, marker: str
) -> list[str]:
    """Her private values and her API's URLs (others may connect the same API, so the URLs
    are checked only in answers about her objects, not in other users' lists)."""
    return [*_private(alice, objects, marker), petstore.spec_url, petstore.base_url]


def _snapshot(alice: Api, objects: dict[str, str]) -> str:
    state = {
        "api": alice.data("GET", f"/api/apis/{objects['api']}"),
        "endpoints": alice.data("GET", f"/api/apis/{objects['api']}/endpoints"),
        "workflow": alice.data("GET", f"/api/workflows/{objects['workflow']}"),
        "execution": alice.data("GET", f"/api/executions/{objects['execution']}"),
        "lists": [alice.data("GET", path) for path in
                  ("/api/apis", "/api/workflows", "/api/executions")],
    }  # fmt: skip
    return json.dumps(state, sort_keys=True)


def _body_id_requests(intruder: Api, objects: dict[str, str]) -> list[tuple[int, str, str]]:
    """Routes that take Alice's plan id in the body rather than the path."""
    sent = [
        ("POST /api/chat/execute", "/api/chat/execute",
         {"planId": objects["plan"], "approve": True}),
        ("POST /api/workflows", "/api/workflows", {"name": "stolen", "planId": objects["plan"]}),
    ]  # fmt: skip
    answers = []
    for what, path, body in sent:
        response = intruder.post(path, json=body)
        answers.append((response.status_code, response.text, what))
    return answers


def _lists_show(intruder: Api, secrets: list[str]) -> list[str]:
    problems = []
    role = intruder.user["role"]
    for path in ("/api/apis", "/api/workflows", "/api/executions"):
        response = intruder.get(path)
        assert response.status_code == 200, f"{path} as {role}: {response.text[:300]}"
        shown = [value for value in secrets if value in response.text]
        if shown:
            problems.append(f"GET {path} as {role} shows Alice's {shown}")
    return problems
