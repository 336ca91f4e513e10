"""From a step's Arazzo parameters and request body to `build_request` arguments.

Parameter values and the payload are resolved against the expression context (inputs,
earlier steps' outputs, the forEach item); a parameter without `in` takes the place of the
operation's parameter of that name. Workflow-level parameters apply to every step that
does not set its own of the same name and place.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from apiq.errors import WorkflowError
from apiq.workflows.expressions import ExpressionContext
from apiq.workflows.values import resolve_value

if TYPE_CHECKING:
    from apiq.catalog.models import Operation
    from apiq.workflows.model import Parameter, Step, Workflow

__all__ = ["as_declared", "step_arguments"]


def step_arguments(
    workflow: Workflow, step: Step, operation: Operation, ctx: ExpressionContext
) -> dict[str, Any]:
    """`{"path": {...}, "query": {...}, "header": {...}, "cookie": {...}, "body": ...}`.

    Raises:
        WorkflowError: A parameter the operation does not take, or whose place is ambiguous.
        ExpressionError: A value refers to something missing.
    """
    arguments: dict[str, Any] = {}
    own = {(p.name, _place(p, step, operation)) for p in step.parameters}
    inherited = [
        p
        for p in workflow.parameters
        if (p.name, _place(p, step, operation, strict=False)) not in own
        and _place(p, step, operation, strict=False) is not None
    ]
    for parameter in (*inherited, *step.parameters):
        place = _place(parameter, step, operation)
        assert place is not None  # strict lookup raised otherwise
        value = resolve_value(parameter.value, ctx)
        arguments.setdefault(place, {})[parameter.name] = as_declared(
            value, place, parameter.name, operation
        )
    if step.request_body is not None:
        body = resolve_value(step.request_body.payload, ctx)
        for replacement in step.request_body.replacements:
            body = _replace(body, replacement.target, resolve_value(replacement.value, ctx), step)
        arguments["body"] = body
    return arguments


def as_declared(value: Any, place: str, name: str, operation: Operation) -> Any:
    """`value`, or `[value]` when the parameter is an array and one item was given.

    Planners (and people) write `status: available` for an array parameter; on the wire a
    one-item array is that very value, so it is accepted rather than refused.
    """
    if isinstance(value, list):
        return value
    for declared in operation.parameters:
        if (declared.name, declared.location) == (name, place):
            return [value] if declared.schema.get("type") == "array" else value
    return value


def _place(
    parameter: Parameter, step: Step, operation: Operation, *, strict: bool = True
) -> str | None:
    """Where `parameter` goes; None (not strict) when the operation does not take it."""
    if parameter.in_ is not None:
        return parameter.in_
    places = [p.location for p in operation.parameters if p.name == parameter.name]
    if len(places) == 1:
        return str(places[0])
    if not strict:
        return None
    if not places:
        known = ", ".join(sorted(p.name for p in operation.parameters)) or "none"
        raise WorkflowError(
            f"step {step.step_id!r}: operation {operation.operation_id!r} takes no parameter "
            f"{parameter.name!r} (it takes: {known})",
            step_id=step.step_id,
            field=f"parameters.{parameter.name}",
        )
    raise WorkflowError(
        f"step {step.step_id!r}: parameter {parameter.name!r} exists in {', '.join(places)}; "
        "say which with 'in'",
        step_id=step.step_id,
        field=f"parameters.{parameter.name}",
    )


def _replace(body: Any, pointer: str, value: Any, step: Step) -> Any:
    """`body` with `value` at JSON Pointer `pointer` (the parent must exist)."""
    if pointer in ("", "/"):
        return value
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.lstrip("/").split("/")]
    body = copy.deepcopy(body)
    parent = body
    try:
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last = tokens[-1]
        if isinstance(parent, list):
            if last == "-":
                parent.append(value)
            else:
                parent[int(last)] = value
        elif isinstance(parent, dict):
            parent[last] = value
        else:
            raise TypeError(type(parent).__name__)
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise WorkflowError(
            f"step {step.step_id!r}: request body replacement target {pointer!r} does not "
            f"exist in the payload ({type(exc).__name__})",
            step_id=step.step_id,
            field="requestBody.replacements",
        ) from None
    return body
