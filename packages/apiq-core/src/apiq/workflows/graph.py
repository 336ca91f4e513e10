"""Which steps read which: the data dependencies of a workflow, and what may run at once.

A step depends on every step whose outputs any of its strings mention (`$steps.<id>`,
whole or embedded in `{...}`). The scan over-approximates on purpose: a mention in a
place that is never evaluated only costs concurrency, never correctness.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from apiq.workflows.model import Action, Step, Workflow

__all__ = ["concurrent_run", "dependencies", "has_control_flow"]

_STEP_REF: Final = re.compile(r"\$steps\.([A-Za-z0-9_\-]+)")


def dependencies(step: Step) -> frozenset[str]:
    """Ids of the steps whose outputs `step` reads (its own id excluded)."""
    found: set[str] = set()
    for text in _strings(step.model_dump(mode="json", by_alias=True, exclude={"description"})):
        found.update(_STEP_REF.findall(text))
    found.discard(step.step_id)
    return frozenset(found)


def has_control_flow(step: Step, workflow: Workflow) -> bool:
    """True when running `step` can change which step runs next (goto / end actions)."""
    actions: tuple[Action, ...] = (
        *(step.on_success or workflow.success_actions),
        *(step.on_failure or workflow.failure_actions),
        *step.else_,
    )
    return any(action.type != "retry" for action in actions)


def concurrent_run(
    workflow: Workflow, start: int, changing: Collection[str] = ()
) -> tuple[Step, ...]:
    """The longest run of steps from `start` that may run at once (at least one step).

    A run holds consecutive steps without control flow none of which reads another's
    outputs. A step in `changing` (its call changes state) always runs alone, in order:
    "create A, then create B" must not become "create B and A at once".
    """
    steps = workflow.steps
    run = [steps[start]]
    if has_control_flow(steps[start], workflow) or steps[start].step_id in changing:
        return tuple(run)
    ids = {steps[start].step_id}
    for step in steps[start + 1 :]:
        alone = has_control_flow(step, workflow) or step.step_id in changing
        if alone or dependencies(step) & ids:
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
