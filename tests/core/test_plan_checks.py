"""Static plan validation and the approval gate (issue 4, "Build" 1 and 4)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.catalog import Catalog, build_catalog
from apiq.errors import ConfirmationRequired, PlanInvalid, WorkflowError
from apiq.execution import Approvals, changing_steps
from apiq.models import Principal
from apiq.testing.petstore import petstore_spec
from apiq.workflows import Plan, SourceDescription, Workflow, check_inputs, check_plan

pytestmark = pytest.mark.anyio

ALICE = Principal(id="alice", tenant="acme")
BOB = Principal(id="bob", tenant="acme")
ALICE_ELSEWHERE = Principal(id="alice", tenant="other")


@pytest.fixture(scope="module")
def catalogs() -> dict[str, Catalog]:
    return {"pets": build_catalog(petstore_spec(), source="petstore.json", name="petstore")}


def plan_of(steps: list[dict[str, Any]], **workflow: Any) -> Plan:
    return Plan(
        workflow=Workflow.model_validate({"workflowId": "w", "steps": steps, **workflow}),
        sources=(SourceDescription(name="pets", url="https://petstore.example/openapi.json"),),
    )


def get_pet(step_id: str, pet_id: Any, **extra: Any) -> dict[str, Any]:
    return {
        "stepId": step_id,
        "operationId": "getPetById",
        "parameters": [{"name": "petId", "in": "path", "value": pet_id}],
        **extra,
    }


def problems(plan: Plan, catalogs: dict[str, Catalog]) -> list[WorkflowError]:
    with pytest.raises(PlanInvalid) as caught:
        check_plan(plan, catalogs)
    return list(caught.value.problems)


def test_a_good_plan_passes(catalogs: dict[str, Catalog]) -> None:
    plan = plan_of(
        [
            {
                "stepId": "find",
                "operationId": "findPetsByStatus",
                "parameters": [{"name": "status", "value": "$inputs.status"}],
                "outputs": {"first": "$response.body#/0/id"},
                "successCriteria": [{"condition": "$statusCode == 200"}],
            },
            get_pet("detail", "$steps.find.outputs.first"),
        ],
        inputs={"type": "object", "properties": {"status": {"type": "string"}}},
    )
    check_plan(plan, catalogs)


@pytest.mark.parametrize(
    ("steps", "step_id", "field", "words"),
    [
        ([{"stepId": "a", "operationId": "nope"}], "a", "operationId", "no operation 'nope'"),
        (
            [{"stepId": "a", "operationId": "$sourceDescriptions.other.getPetById"}],
            "a",
            "operationId",
            "names no source",
        ),
        ([{"stepId": "a", "operationId": "getPetById"}], "a", "parameters.petId", "missing"),
        (
            [
                get_pet(
                    "a",
                    1,
                    parameters=[
                        {"name": "petId", "in": "path", "value": 1},
                        {"name": "colour", "value": "red"},
                    ],
                )
            ],
            "a",
            "parameters.colour",
            "takes no parameter 'colour'",
        ),
        ([get_pet("a", "not-a-number")], "a", "parameters.petId", "does not fit"),
        (
            [
                get_pet("a", "$steps.b.outputs.id"),
                get_pet("b", 1, outputs={"id": "$response.body#/id"}),
            ],
            "a",
            "parameters.petId",
            "runs later",
        ),
        ([get_pet("a", "$steps.zz.outputs.id")], "a", "parameters.petId", "names no step"),
        (
            [get_pet("a", 1), get_pet("b", "$steps.a.outputs.id")],
            "b",
            "parameters.petId",
            "does not declare",
        ),
        ([get_pet("a", "$statusCode")], "a", "parameters.petId", "does not exist yet"),
        ([get_pet("a", "$item")], "a", "parameters.petId", "x-apiq-forEach"),
        ([get_pet("a", "$workflows.other.outputs.x")], "a", "parameters.petId", "single workflows"),
        (
            [get_pet("a", 1, successCriteria=[{"condition": "$statusCode =="}])],
            "a",
            "successCriteria[0]",
            "condition",
        ),
        (
            [get_pet("a", 1, onSuccess=[{"name": "g", "type": "goto", "stepId": "nowhere"}])],
            "a",
            "onSuccess/onFailure",
            "not a step",
        ),
        (
            [
                get_pet("a", 1, onSuccess=[{"name": "g", "type": "goto", "stepId": "b"}]),
                get_pet("b", 2, onSuccess=[{"name": "g", "type": "goto", "stepId": "a"}]),
            ],
            "a",
            "onSuccess",
            "no way out",
        ),
    ],
)
def test_each_problem_names_its_step_and_field(
    catalogs: dict[str, Catalog], steps: list[dict[str, Any]], step_id: str, field: str, words: str
) -> None:
    found = problems(plan_of(steps), catalogs)
    assert any(p.step_id == step_id and p.field == field and words in str(p) for p in found), [
        (p.step_id, p.field, str(p)) for p in found
    ]


def test_an_undeclared_input_is_named(catalogs: dict[str, Catalog]) -> None:
    plan = plan_of(
        [get_pet("a", "$inputs.pet")],
        inputs={"type": "object", "properties": {"petId": {"type": "integer"}}},
    )
    [problem] = problems(plan, catalogs)
    assert "does not declare" in str(problem)
    assert "petId" in str(problem)


def test_all_problems_are_reported_at_once(catalogs: dict[str, Catalog]) -> None:
    plan = plan_of([{"stepId": "a", "operationId": "nope"}, get_pet("b", "x")])
    assert len(problems(plan, catalogs)) == 2


def test_inputs_are_checked_against_the_workflow_schema() -> None:
    workflow = Workflow.model_validate(
        {
            "workflowId": "w",
            "inputs": {
                "type": "object",
                "properties": {"count": {"type": "integer", "minimum": 1}},
                "required": ["count"],
            },
            "steps": [get_pet("a", 1)],
        }
    )
    check_inputs(workflow, {"count": 2})
    with pytest.raises(WorkflowError, match="count"):
        check_inputs(workflow, {"count": 0})
    with pytest.raises(WorkflowError, match="required"):
        check_inputs(workflow, {})


def test_changing_steps_are_those_that_change_state(catalogs: dict[str, Catalog]) -> None:
    plan = plan_of(
        [
            get_pet("read", 1),
            {"stepId": "write", "operationId": "placeOrder", "requestBody": {"payload": {}}},
            {"stepId": "unknown", "operationId": "nope"},
        ]
    )
    assert [s.step_id for s in changing_steps(plan, catalogs)] == ["write", "unknown"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_an_approval_is_single_use_bound_to_user_plan_inputs_and_expires() -> None:
    clock = Clock()
    approvals = Approvals(ttl_s=60, clock=clock)
    plan = plan_of([get_pet("a", 1)])
    granted = await approvals.grant(ALICE, plan, {"x": 1})
    assert granted.plan_digest == plan.digest({"x": 1})
    await approvals.redeem(ALICE, plan, {"x": 1}, granted.token)
    with pytest.raises(ConfirmationRequired, match="already used"):
        await approvals.redeem(ALICE, plan, {"x": 1}, granted.token)
    for who, inputs, message in [
        (BOB, {"x": 1}, "another user"),
        (ALICE_ELSEWHERE, {"x": 1}, "another user"),
        (ALICE, {"x": 2}, "changed"),
    ]:
        token = (await approvals.grant(ALICE, plan, {"x": 1})).token
        with pytest.raises(ConfirmationRequired, match=message):
            await approvals.redeem(who, plan, inputs, token)
    token = (await approvals.grant(ALICE, plan, {"x": 1})).token
    clock.now += 61
    with pytest.raises(ConfirmationRequired, match="expired"):
        await approvals.redeem(ALICE, plan, {"x": 1}, token)
    with pytest.raises(ConfirmationRequired, match="needs the user's approval"):
        await approvals.redeem(ALICE, plan, {"x": 1}, None)


@settings(max_examples=50, deadline=None)
@given(pet_id=st.integers(min_value=1, max_value=10**6), quantity=st.integers(0, 100))
def test_any_change_to_what_runs_changes_the_digest(pet_id: int, quantity: int) -> None:
    base = plan_of([get_pet("a", pet_id)])
    assert base.digest() == plan_of([get_pet("a", pet_id)]).digest()
    assert base.digest() != plan_of([get_pet("a", pet_id + 1)]).digest()
    assert base.digest({"q": quantity}) != base.digest({"q": quantity + 1})
    renamed = Plan(
        workflow=base.workflow,
        sources=(SourceDescription(name="pets2", url="https://petstore.example/openapi.json"),),
    )
    assert renamed.digest() != base.digest()
    described = base.model_copy(update={"request": "something else", "confidence": 0.1})
    assert described.digest() == base.digest()
