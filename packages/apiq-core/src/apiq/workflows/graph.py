"""Which steps read which: the data dependencies of a workflow, and what may run at once.

A step depends on every step whose outputs any of its strings mention (`$steps.<id>`:
parameters, body, conditions, loops, transforms, outputs). The scan over-approximates on
purpose: a mention that is never evaluated only costs concurrency, never correctness, and
it reads conditions, which are not runtime expressions themselves. The runner computes
`step_reads` once per execution and asks `concurrent_run` at each position.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from apiq.workflows.model import Action, Step, Workflow

__all__ = ["concurrent_run", "has_control_flow", "step_reads"]

_STEP_REF: Final = re.compile(r"\$steps\.([A-Za-z0-9_\-]+)")


def step_reads(workflow: Workflow) -> dict[str, frozenset[str]]:
    """Step id -> ids of the other steps whose outputs it reads."""
    reads: dict[str, frozenset[str]] = {}
    for step in workflow.steps:
        dumped = step.model_dump(mode="json", by_alias=True, exclude={"description"})
        found = {name for text in _strings(dumped) for name in _STEP_REF.findall(text)}
        reads[step.step_id] = frozenset(found - {step.step_id})
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


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
