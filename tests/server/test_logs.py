"""`GET /api/logs`: who may read the audit log, its filters and pages, and no secret in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService
from tests.server.harness import Api, connect_petstore, error_of, plan, wait_final

Rex = {"photoUrls": ["https://example.com/rex.png"]}


def logs(api: Api, **params: Any) -> dict[str, Any]:
    """One page of `GET /api/logs` with `params`."""
    page: dict[str, Any] = api.data("GET", "/api/logs", params=params)
    return page


def approved_run(alice: Api, petstore: PetstoreService) -> str:
    """Alice connects the Petstore, plans a state change, approves and runs it; its id."""
    connect_petstore(alice, petstore)
    found = plan(alice, "add a pet named Rex")
    body = {"planId": found["id"], "approve": True, "inputs": Rex}
    started = alice.data("POST", "/api/chat/execute", status=201, json=body)
    assert wait_final(alice, started["id"])["status"] == "succeeded"
    return found["id"]


def test_auditors_see_plans_approvals_and_call_attempts(
    alice: Api, auditor: Api, petstore_upstream: PetstoreService
) -> None:
    plan_id = approved_run(alice, petstore_upstream)

    mine = logs(auditor, actor=alice.user["id"], limit=100)["items"]

    by_action = {event["action"]: event for event in mine}
    assert {"plan.created", "plan.approved", "call.attempt"} <= set(by_action)
    assert all(event["actor"] == alice.user["id"] for event in mine)
    created, approved = by_action["plan.created"], by_action["plan.approved"]
    assert created["target"] == approved["target"] == plan_id
    assert len(approved["detail"]["plan_digest"]) == 64
    assert approved["detail"]["changing_steps"] == ["s1"]
    assert by_action["call.attempt"]["outcome"] == "ok"


def test_filters_narrow_by_action_prefix_and_time(
    alice: Api, auditor: Api, petstore_upstream: PetstoreService
) -> None:
    approved_run(alice, petstore_upstream)
    actor = alice.user["id"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(days=1)).replace(tzinfo=None).isoformat()

    plans = logs(auditor, actor=actor, action="plan.")
    assert {e["action"] for e in plans["items"]} == {"plan.created", "plan.approved"}
    assert plans["total"] == 2
    assert logs(auditor, actor=actor, since=future)["total"] == 0
    assert logs(auditor, actor=actor, until=past)["total"] == 0
    everything = logs(auditor, actor=actor, since=past, until=future, limit=100)
    assert everything["total"] == len(everything["items"]) > 2


def test_pages_are_newest_first_and_capped(
    alice: Api, auditor: Api, petstore_upstream: PetstoreService
) -> None:
    approved_run(alice, petstore_upstream)
    actor = alice.user["id"]

    whole = logs(auditor, actor=actor, limit=100)
    pages = [logs(auditor, actor=actor, offset=offset, limit=2) for offset in (0, 2, 4)]

    ids = [event["id"] for page in pages for event in page["items"]]
    assert ids == [event["id"] for event in whole["items"]][:6]
    times = [event["at"] for event in whole["items"]]
    assert times == sorted(times, reverse=True)
    assert {page["total"] for page in pages} == {whole["total"]}
    assert error_of(auditor.get("/api/logs", params={"limit": 101}), 400)["code"] == "bad_request"
    assert error_of(auditor.get("/api/logs", params={"since": "yesterday"}), 400)["code"] == (
        "bad_request"
    )


def test_only_auditors_and_admins_read_the_log(
    alice: Api, admin: Api, anonymous: Api, auditor: Api
) -> None:
    assert error_of(alice.get("/api/logs"), 403)["code"] == "forbidden"
    assert error_of(anonymous.get("/api/logs"), 401)["code"] == "unauthorized"
    assert admin.data("GET", "/api/logs")["total"] > 0
    assert auditor.data("GET", "/api/logs")["total"] > 0


def test_no_secret_reaches_the_log(
    alice: Api, auditor: Api, petstore_upstream: PetstoreService
) -> None:
    approved_run(alice, petstore_upstream)
    inventory = plan(alice, "get the store inventory")  # sends the api_key header
    started = alice.data("POST", "/api/chat/execute", status=201, json={"planId": inventory["id"]})
    assert wait_final(alice, started["id"])["status"] == "succeeded"

    total = logs(auditor, limit=1)["total"]
    pages = [
        auditor.get("/api/logs", params={"offset": o, "limit": 100}) for o in range(0, total, 100)
    ]

    assert pages
    for page in pages:
        assert page.status_code == 200
        assert PETSTORE_API_KEY not in page.text
        assert "correct horse battery staple" not in page.text  # the test users' password
