"""LocalExecutor against the real loopback Petstore and 429 services (issue 4, "Prove")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from apiq.audit.memory import MemoryAuditSink
from apiq.calls import Caller
from apiq.calls.outbound import Outbound
from apiq.catalog import Catalog, build_catalog
from apiq.connections import ApiKeyAuth, Connection, secret_name
from apiq.egress import EgressPolicy, egress_client
from apiq.errors import ConfigurationError, ConfirmationRequired, ExecutionError, WorkflowError
from apiq.execution import Approvals, Limits, LocalExecutor
from apiq.models import AuditQuery, Principal
from apiq.redaction import Redactor
from apiq.secrets import MemorySecretStore
from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService
from apiq.workflows import Plan, SourceDescription, Workflow
from tests.services.flaky import FlakyService

pytestmark = pytest.mark.anyio

ALICE = Principal(id="alice", tenant="acme")
MALLORY = Principal(id="mallory", tenant="acme")


class Registry:
    """Connections by id, each usable only by its owner."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Connection, Catalog]] = {}

    def add(self, connection: Connection, catalog: Catalog) -> None:
        self.entries[connection.id] = (connection, catalog)

    async def resolve(self, principal: Principal, connection_id: str) -> tuple[Connection, Catalog]:
        found = self.entries.get(connection_id)
        if found is None or not found[0].owned_by(principal):
            raise ConfigurationError(f"no connection {connection_id!r}")
        return found


async def no_sleep(seconds: float) -> None:
    return None


class Setup:
    def __init__(self, executor: LocalExecutor, approvals: Approvals, sink: MemoryAuditSink):
        self.executor = executor
        self.approvals = approvals
        self.sink = sink

    async def run(self, plan: Plan, inputs: dict[str, Any] | None = None) -> Any:
        approval = await self.approvals.grant(ALICE, plan, inputs)
        execution_id = await self.executor.start(
            ALICE, plan, inputs=inputs, approval=approval.token
        )
        events = [e async for e in self.executor.events(ALICE, execution_id)]
        return await self.executor.state(ALICE, execution_id), events


@pytest.fixture
async def setup(
    petstore_service: PetstoreService, flaky_service: FlakyService
) -> AsyncIterator[Setup]:
    store = MemorySecretStore()
    name = secret_name("pets", "api_key", "api_key")
    await store.put(ALICE, name, PETSTORE_API_KEY.encode())
    registry = Registry()
    pets = build_catalog(petstore_service.served_spec(), source="pets.json", name="petstore")
    registry.add(
        Connection(
            "pets",
            "acme",
            "alice",
            "petstore",
            petstore_service.base_url,
            {"api_key": ApiKeyAuth("api_key", name)},
        ),
        pets,
    )
    registry.add(
        Connection("flaky", "acme", "alice", "flaky", flaky_service.base_url),
        build_catalog(FLAKY_SPEC, source="flaky.json", name="flaky"),
    )
    allow = petstore_service.egress_policy.allow | flaky_service.egress_policy.allow
    sink = MemoryAuditSink()
    approvals = Approvals()
    async with egress_client(EgressPolicy(allow=allow)) as client:
        outbound = Outbound(
            Caller(client, sleep=no_sleep),
            secrets=store,
            audit=sink,
            redactor=Redactor(hmac_key=b"executor-test-hmac-key-012345678"),
        )
        async with LocalExecutor(outbound, registry, approvals=approvals, audit=sink) as executor:
            yield Setup(executor, approvals, sink)


FLAKY_SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "flaky", "version": "1"},
    "paths": {
        "/ratelimited/{n}": {
            "get": {
                "operationId": "limited",
                "parameters": [
                    {"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {"name": "key", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "ok"}},
            }
        }
    },
}


def plan_of(steps: list[dict[str, Any]], **workflow: Any) -> Plan:
    document = {"workflowId": "w", "steps": steps, **workflow}
    return Plan(
        workflow=Workflow.model_validate(document),
        sources=(
            SourceDescription(name="pets", url="https://petstore.example/openapi.json"),
            SourceDescription(name="flaky", url="https://flaky.example/openapi.json"),
        ),
    )


def op(name: str, source: str = "pets") -> str:
    return f"$sourceDescriptions.{source}.{name}"


FOUR_STEPS = [
    {
        "stepId": "find",
        "operationId": op("findPetsByStatus"),
        "parameters": [{"name": "status", "in": "query", "value": "$inputs.status"}],
        "outputs": {"first": "$response.body#/0/id", "pets": "$response.body"},
    },
    {
        "stepId": "detail",
        "operationId": op("getPetById"),
        "parameters": [{"name": "petId", "value": "$steps.find.outputs.first"}],
        "successCriteria": [{"condition": "$statusCode == 200"}],
        "outputs": {"name": "$response.body#/name", "id": "$response.body#/id"},
    },
    {
        "stepId": "order",
        "operationId": op("placeOrder"),
        "requestBody": {
            "contentType": "application/json",
            "payload": {"petId": "$steps.detail.outputs.id", "quantity": 1, "status": "placed"},
        },
        "outputs": {"orderId": "$response.body#/id"},
    },
    {
        "stepId": "check",
        "operationId": op("getOrderById"),
        "parameters": [{"name": "orderId", "in": "path", "value": "$steps.order.outputs.orderId"}],
        "outputs": {"status": "$response.body#/status", "petId": "$response.body#/petId"},
    },
]


async def test_four_steps_with_data_flowing_between_them(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    plan = plan_of(
        FOUR_STEPS,
        inputs={"type": "object", "properties": {"status": {"type": "string"}}},
        outputs={"order": "$steps.check.outputs.status", "pet": "$steps.detail.outputs.name"},
    )
    state, events = await setup.run(plan, {"status": "available"})
    assert state.status == "succeeded", state.error
    first = state.steps["find"]["outputs"]["first"]
    assert state.steps["check"]["outputs"]["petId"] == first
    assert state.outputs["order"] == "placed"
    sent = [(r.method, r.path) for r in petstore_service.requests]
    assert sent == [
        ("GET", "/v2/pet/findByStatus"),
        ("GET", f"/v2/pet/{first}"),
        ("POST", "/v2/store/order"),
        ("GET", f"/v2/store/order/{state.steps['order']['outputs']['orderId']}"),
    ]
    # The state-changing call carried an Idempotency-Key derived from execution and step.
    assert petstore_service.requests[2].headers["idempotency-key"].startswith("apiq-")
    assert state.steps["detail"]["request"]["url"] == f"{petstore_service.base_url}/pet/{first}"
    kinds = [(e.kind, e.step_id) for e in events]
    assert kinds[0] == ("execution.started", None)
    assert kinds[-1] == ("execution.finished", None)
    assert kinds.count(("step.succeeded", "order")) == 1
    actions = [e.action for e in await setup.sink.query(AuditQuery(limit=1000))]
    assert "execution.started" in actions
    assert "execution.finished" in actions


async def test_nothing_is_sent_without_approval_and_a_changed_plan_or_reused_token_is_refused(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    plan = plan_of(FOUR_STEPS)
    inputs = {"status": "available"}
    with pytest.raises(ConfirmationRequired):
        await setup.executor.start(ALICE, plan, inputs=inputs)
    approval = await setup.approvals.grant(ALICE, plan, inputs)
    two = {**FOUR_STEPS[2], "requestBody": {"payload": {"petId": 1, "quantity": 2}}}
    changed = plan_of([*FOUR_STEPS[:2], two, FOUR_STEPS[3]])
    with pytest.raises(ConfirmationRequired, match="changed"):
        await setup.executor.start(ALICE, changed, inputs=inputs, approval=approval.token)
    approval = await setup.approvals.grant(ALICE, plan, inputs)
    with pytest.raises(ConfirmationRequired, match="another user"):
        await setup.approvals.redeem(MALLORY, plan, inputs, approval.token)
    approval = await setup.approvals.grant(ALICE, plan, inputs)
    other_inputs = {"status": "sold"}
    with pytest.raises(ConfirmationRequired, match="changed"):
        await setup.executor.start(ALICE, plan, inputs=other_inputs, approval=approval.token)
    assert petstore_service.requests == []
    approval = await setup.approvals.grant(ALICE, plan, inputs)
    execution_id = await setup.executor.start(ALICE, plan, inputs=inputs, approval=approval.token)
    assert (await setup.executor.wait(ALICE, execution_id)).status == "succeeded"
    with pytest.raises(ConfirmationRequired, match="already used"):
        await setup.executor.start(ALICE, plan, inputs=inputs, approval=approval.token)


async def test_a_read_only_plan_needs_no_approval_and_others_cannot_see_it(setup: Setup) -> None:
    plan = plan_of(FOUR_STEPS[:2], inputs={"type": "object"})
    execution_id = await setup.executor.start(ALICE, plan, inputs={"status": "sold"})
    state = await setup.executor.wait(ALICE, execution_id)
    assert state.status == "succeeded", state.error
    with pytest.raises(ExecutionError, match="no execution"):
        await setup.executor.state(MALLORY, execution_id)


async def test_for_each_over_a_list_result_and_a_transform(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    plan = plan_of(
        [
            {
                "stepId": "find",
                "operationId": op("findPetsByStatus"),
                "parameters": [{"name": "status", "in": "query", "value": "available"}],
                "outputs": {"pets": "$response.body"},
                "x-apiq-transform": {
                    "ids": {"$jsonpath": "$[*].id", "from": "$response.body"},
                    "summary": {"count": "$statusCode", "first": "$response.body#/0/name"},
                },
            },
            {
                "stepId": "each",
                "operationId": op("getPetById"),
                "x-apiq-forEach": {"items": "$steps.find.outputs.ids", "maxItems": 10},
                "parameters": [{"name": "petId", "in": "path", "value": "$item"}],
                "outputs": {"name": "$response.body#/name", "index": "$index"},
            },
        ],
        outputs={"names": "$steps.each.outputs.name"},
    )
    state, _events = await setup.run(plan)
    assert state.status == "succeeded", state.error
    ids = state.steps["find"]["outputs"]["ids"]
    assert len(ids) == 2
    assert state.steps["find"]["outputs"]["summary"]["count"] == 200
    assert state.steps["each"]["outputs"]["index"] == [0, 1]
    assert len(state.outputs["names"]) == 2
    paths = sorted(r.path for r in petstore_service.requests[1:])
    assert paths == sorted(f"/v2/pet/{i}" for i in ids)


async def test_for_each_beyond_max_items_fails_before_any_item_is_sent(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    plan = plan_of(
        [
            {
                "stepId": "find",
                "operationId": op("findPetsByStatus"),
                "parameters": [{"name": "status", "in": "query", "value": "available"}],
                "outputs": {"pets": "$response.body"},
            },
            {
                "stepId": "each",
                "operationId": op("getPetById"),
                "x-apiq-forEach": {"items": "$steps.find.outputs.pets", "maxItems": 1},
                "parameters": [{"name": "petId", "in": "path", "value": "$item.id"}],
            },
        ]
    )
    state, _ = await setup.run(plan)
    assert state.status == "failed"
    assert "maxItems" in (state.error or "")
    assert len(petstore_service.requests) == 1


async def test_if_branch_skips_a_step_and_else_goes_elsewhere(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    plan = plan_of(
        [
            {
                "stepId": "find",
                "operationId": op("findPetsByStatus"),
                "parameters": [{"name": "status", "in": "query", "value": "sold"}],
                "outputs": {"count": "$response.body#/0/id"},
            },
            {
                "stepId": "never",
                "operationId": op("getPetById"),
                "x-apiq-if": {"condition": "$steps.find.outputs.count > 1000"},
                "x-apiq-else": [{"name": "skip", "type": "goto", "stepId": "last"}],
                "parameters": [{"name": "petId", "in": "path", "value": 1}],
            },
            {
                "stepId": "jumped",
                "operationId": op("getPetById"),
                "parameters": [{"name": "petId", "in": "path", "value": 2}],
            },
            {
                "stepId": "last",
                "operationId": op("getPetById"),
                "parameters": [{"name": "petId", "in": "path", "value": 3}],
            },
        ]
    )
    state, events = await setup.run(plan)
    assert state.status == "succeeded", state.error
    assert state.steps["never"]["status"] == "skipped"
    assert "jumped" not in state.steps
    assert [r.path for r in petstore_service.requests] == ["/v2/pet/findByStatus", "/v2/pet/3"]
    assert ("step.skipped", "never") in [(e.kind, e.step_id) for e in events]


async def test_goto_and_end_actions(setup: Setup, petstore_service: PetstoreService) -> None:
    plan = plan_of(
        [
            {
                "stepId": "missing",
                "operationId": op("getPetById"),
                "parameters": [{"name": "petId", "in": "path", "value": 999999}],
                "onFailure": [
                    {
                        "name": "fallback",
                        "type": "goto",
                        "stepId": "known",
                        "criteria": [{"condition": "$statusCode == 404"}],
                    }
                ],
            },
            {
                "stepId": "skipped",
                "operationId": op("getPetById"),
                "parameters": [{"name": "petId", "in": "path", "value": 2}],
            },
            {
                "stepId": "known",
                "operationId": op("getPetById"),
                "parameters": [{"name": "petId", "in": "path", "value": 1}],
                "onSuccess": [{"name": "done", "type": "end"}],
            },
            {
                "stepId": "after_end",
                "operationId": op("getPetById"),
                "parameters": [{"name": "petId", "in": "path", "value": 3}],
            },
        ]
    )
    state, _ = await setup.run(plan)
    assert state.status == "succeeded", state.error
    assert [r.path for r in petstore_service.requests] == ["/v2/pet/999999", "/v2/pet/1"]
    assert state.steps["missing"]["status"] == "failed"


async def test_an_unbounded_goto_loop_is_stopped_by_the_step_limit(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    plan = plan_of(
        [
            {
                "stepId": "again",
                "operationId": op("getPetById"),
                "parameters": [{"name": "petId", "in": "path", "value": 1}],
                "onSuccess": [
                    {
                        "name": "loop",
                        "type": "goto",
                        "stepId": "again",
                        "criteria": [{"condition": "$statusCode == 200"}],
                    }
                ],
            }
        ]
    )
    setup.executor._limits = Limits(max_step_runs=5)
    state, _ = await setup.run(plan)
    assert state.status == "failed"
    assert "more than 5 step runs" in (state.error or "")
    assert len(petstore_service.requests) == 5


async def test_a_failing_step_is_retried_honouring_retry_after(
    setup: Setup, flaky_service: FlakyService
) -> None:
    # The caller makes 3 attempts (429, 429, 429); the step's retry action waits for the
    # upstream Retry-After (1 s), not its own retryAfter (0 s), and the 4th call succeeds.
    plan = plan_of(
        [
            {
                "stepId": "limited",
                "operationId": op("limited", "flaky"),
                "parameters": [
                    {"name": "n", "in": "path", "value": 3},
                    {"name": "key", "in": "query", "value": "retry-test"},
                ],
                "onFailure": [{"name": "again", "type": "retry", "retryAfter": 0, "retryLimit": 2}],
                "outputs": {"calls": "$response.body#/calls"},
            }
        ]
    )
    state, events = await setup.run(plan)
    assert state.status == "succeeded", state.error
    assert state.steps["limited"]["outputs"]["calls"] == 4
    [retrying] = [e for e in events if e.kind == "step.retrying"]
    assert retrying.detail["status"] == 429
    assert retrying.detail["wait_s"] == 1.0
    assert state.steps["limited"]["attempts"] == 4


async def test_a_failed_step_fails_the_execution_with_its_reason(setup: Setup) -> None:
    plan = plan_of(
        [
            {
                "stepId": "missing",
                "operationId": op("getPetById"),
                "parameters": [{"name": "petId", "in": "path", "value": 999999}],
            }
        ]
    )
    state, events = await setup.run(plan)
    assert state.status == "failed"
    assert "missing" in (state.error or "")
    assert "404" in (state.error or "")
    assert events[-1].detail["status"] == "failed"


async def test_independent_steps_run_concurrently(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    steps = [
        {
            "stepId": f"pet{i}",
            "operationId": op("getPetById"),
            "parameters": [{"name": "petId", "in": "path", "value": i}],
        }
        for i in range(1, 5)
    ]
    state, events = await setup.run(plan_of(steps))
    assert state.status == "succeeded", state.error
    kinds = [e.kind for e in events]
    # All four started before the first finished: they were in flight together.
    assert kinds[1:5] == ["step.started"] * 4


async def test_cancel_stops_before_the_next_call(setup: Setup, flaky_service: FlakyService) -> None:
    plan = plan_of(
        [
            {
                "stepId": "limited",
                "operationId": op("limited", "flaky"),
                "parameters": [
                    {"name": "n", "in": "path", "value": 50},
                    {"name": "key", "in": "query", "value": "cancel-test"},
                ],
                "onFailure": [{"name": "again", "type": "retry", "retryLimit": 10}],
            }
        ]
    )
    execution_id = await setup.executor.start(ALICE, plan)
    async for event in setup.executor.events(ALICE, execution_id):
        if event.kind == "step.retrying":
            await setup.executor.cancel(ALICE, execution_id)
    state = await setup.executor.state(ALICE, execution_id)
    assert state.status == "cancelled"
    assert flaky_service.counts["/ratelimited/50?key=cancel-test"] == 3


async def test_an_unknown_connection_or_bad_plan_is_refused_before_anything_runs(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    bad = Plan(
        workflow=Workflow.model_validate(
            {"workflowId": "w", "steps": [{"stepId": "a", "operationId": "getPetById"}]}
        ),
        sources=(SourceDescription(name="nope", url="https://x.example/openapi.json"),),
    )
    with pytest.raises(ConfigurationError):
        await setup.executor.start(ALICE, bad)
    unknown_operation = plan_of([{"stepId": "a", "operationId": op("noSuchOperation")}])
    with pytest.raises(WorkflowError, match="noSuchOperation"):
        await setup.executor.start(ALICE, unknown_operation)
    assert petstore_service.requests == []


async def test_steps_that_change_state_run_alone_and_in_order(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    order = {"quantity": 1, "status": "placed"}
    steps = [
        {"stepId": "first", "operationId": op("placeOrder"),
         "requestBody": {"payload": {**order, "petId": 1}}},
        {"stepId": "read", "operationId": op("getPetById"),
         "parameters": [{"name": "petId", "in": "path", "value": 2}]},
        {"stepId": "second", "operationId": op("placeOrder"),
         "requestBody": {"payload": {**order, "petId": 3}}},
    ]  # fmt: skip
    state, events = await setup.run(plan_of(steps))
    assert state.status == "succeeded", state.error
    kinds = [(e.kind, e.step_id) for e in events if e.step_id]
    assert kinds == [
        ("step.started", "first"),
        ("step.succeeded", "first"),
        ("step.started", "read"),
        ("step.succeeded", "read"),
        ("step.started", "second"),
        ("step.succeeded", "second"),
    ]
    sent = [r.json()["petId"] for r in petstore_service.requests if r.method == "POST"]
    assert sent == [1, 3]


async def test_a_condition_on_an_earlier_step_waits_for_that_step(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    # `later` reads `first` only in its condition: it must not run alongside `first`.
    plan = plan_of(
        [
            {
                "stepId": "first",
                "operationId": op("getPetById"),
                "parameters": [{"name": "petId", "in": "path", "value": 1}],
                "outputs": {"id": "$response.body#/id"},
            },
            {
                "stepId": "later",
                "operationId": op("getPetById"),
                "x-apiq-if": {"condition": "$steps.first.outputs.id == 1"},
                "parameters": [{"name": "petId", "in": "path", "value": 2}],
                "successCriteria": [{"condition": "{$statusCode == 200}"}],
            },
        ]
    )
    state, _ = await setup.run(plan)
    assert state.status == "succeeded", state.error
    assert state.steps["later"]["status"] == "succeeded"
    assert [r.path for r in petstore_service.requests] == ["/v2/pet/1", "/v2/pet/2"]


async def test_an_item_that_cannot_be_built_fails_its_step_with_the_reason(
    setup: Setup, petstore_service: PetstoreService
) -> None:
    plan = plan_of(
        [
            {
                "stepId": "each",
                "operationId": op("getPetById"),
                "x-apiq-forEach": {"items": "$inputs.pets", "maxItems": 5},
                "parameters": [{"name": "petId", "in": "path", "value": "$item.id"}],
            }
        ],
        inputs={"type": "object"},
    )
    state, events = await setup.run(plan, {"pets": [{"id": 1}, {"name": "no id"}]})
    assert state.status == "failed"
    assert "TaskGroup" not in (state.error or "")
    assert "each" in (state.error or "")
    assert ("step.failed", "each") in [(e.kind, e.step_id) for e in events]
