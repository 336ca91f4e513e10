"""Which steps read which: the data dependencies of a workflow, and what may run at once.

A step depends on every step whose outputs it reads anywhere (parameters, body, criteria,
loops, transforms, outputs), as `references` finds them. The runner computes `step_reads`
once per execution and asks `concurrent_run` at each position.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from apiq.workflows.values import references

if TYPE_CHECKING:
    from apiq.workflows.model import Action, Step, Workflow

__all__ = ["concurrent_run", "has_control_flow", "step_reads"]


def step_reads(workflow: Workflow) -> dict[str, frozenset[str]]:
    """Step id -> ids of the other steps whose outputs it reads."""
    reads: dict[str, frozenset[str]] = {}
    for step in workflow.steps:
        dumped = step.model_dump(mode="json", by_alias=True, exclude={"description"})
        found = {ref.expression.step_id for ref in references(dumped)}
        reads[step.step_id] = frozenset(s for s in found if s and s != step.step_id)
    return reads


def has_control_flow(step: Step, workflow: Workflow) -> bool:
    """True when running `step` can change which step runs next (goto / end actions)."""
    actions: tuple[Action, ...] = (
        *(step.on_success or workflow.success_actions),
        *(step.on_failure or workflow.failure_actions),
        *step.else_,
    )
    return any(action.type != "retry" for action in actions)


def concurrent_run(
    workflow: Workflow,
    start: int,
    reads: Mapping[str, frozenset[str]],
    changing: Collection[str] = (),
) -> tuple[Step, ...]:
    """The longest run of steps from `start` that may run at once (at least one step).

    A run holds consecutive steps without control flow none of which reads another's
    outputs (`reads`, from `step_reads`). A step in `changing` (its call changes state)
    always runs alone, in order: "create A, then create B" must not become "at once".
    """
    steps = workflow.steps
    run = [steps[start]]
    if has_control_flow(steps[start], workflow) or steps[start].step_id in changing:
        return tuple(run)
    ids = {steps[start].step_id}
    for step in steps[start + 1 :]:
        alone = has_control_flow(step, workflow) or step.step_id in changing
        if alone or reads[step.step_id] & ids:
            break
        run.append(step)
        ids.add(step.step_id)
    return tuple(run)
