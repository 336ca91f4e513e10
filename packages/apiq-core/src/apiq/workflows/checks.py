"""Static validation of a plan against the catalogs of its connections: before anything runs.

`check_plan` reports every problem at once (a planner's repair round needs them all), each
a `WorkflowError` naming its step and field: an unknown source or operation, a parameter
the operation does not take or a required one missing, a literal value of the wrong type,
an expression that is malformed, reads an unknown input, a step that does not exist or has
not run yet, an output that step does not declare, reads the response before the call, a
malformed criterion, a goto to nowhere, and a goto loop that nothing can leave.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from referencing import Registry

from apiq.errors import PlanInvalid, WorkflowError
from apiq.workflows.arguments import as_declared
from apiq.workflows.criteria import parse_condition
from apiq.workflows.values import Reference, references

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.catalog.models import Operation
    from apiq.workflows.model import Plan, Step, Workflow

__all__ = ["check_inputs", "check_plan"]


def _no_retrieval(uri: str) -> Any:
    raise WorkflowError(f"schemas may not refer to other documents ({uri!r:.100})")


_REGISTRY: Registry[Any] = Registry(retrieve=_no_retrieval)  # type: ignore[call-arg]


def check_plan(plan: Plan, catalogs: Mapping[str, Catalog]) -> None:
    """Raise `PlanInvalid` listing every problem of `plan`; return when there is none.

    Args:
        plan: The plan to check.
        catalogs: Source name -> the catalog of the connection it names.
    """
    problems = list(_problems(plan, catalogs))
    if problems:
        lines = "; ".join(str(p) for p in problems[:20])
        raise PlanInvalid(
            f"the plan has {len(problems)} problem(s): {lines}", problems=tuple(problems)
        )


def check_inputs(workflow: Workflow, inputs: Mapping[str, Any]) -> None:
    """Raise `WorkflowError` naming the field when `inputs` do not fit `workflow.inputs`."""
    if not workflow.inputs:
        return
    validator = Draft202012Validator(workflow.inputs, registry=_REGISTRY)
    for error in validator.iter_errors(dict(inputs)):
        where = "/".join(str(p) for p in error.absolute_path) or "(the inputs)"
        raise WorkflowError(
            f"workflow {workflow.workflow_id!r}: input {where}: {error.message:.300}",
            field=f"inputs/{where}",
        )


def _problems(plan: Plan, catalogs: Mapping[str, Catalog]) -> Iterator[WorkflowError]:
    workflow = plan.workflow
    ids = [step.step_id for step in workflow.steps]
    outputs = {step.step_id: {*step.outputs, *step.transform} for step in workflow.steps}
    declared_inputs = set(workflow.inputs.get("properties", {}))
    open_inputs = not workflow.inputs or "properties" not in workflow.inputs
    for position, step in enumerate(workflow.steps):
        operation: Operation | None = None
        try:
            source, operation_id = plan.target(step)
        except ValueError as exc:
            yield WorkflowError(str(exc), step_id=step.step_id, field="operationId")
        else:
            catalog = catalogs.get(source)
            operation = catalog.get_operation(operation_id) if catalog else None
            if operation is None:
                yield WorkflowError(
                    f"step {step.step_id!r}: source {source!r} has no operation {operation_id!r}",
                    step_id=step.step_id,
                    field="operationId",
                )
        if operation is not None:
            yield from _parameter_problems(workflow, step, operation)
        earlier = set(ids[:position])
        for field, value in _evaluated_parts(step):
            yield from _reference_problems(
                step, field, value, earlier, outputs, declared_inputs, open_inputs
            )
        yield from _criteria_problems(step)
        for action in step.actions:
            if action.type == "goto" and (action.workflow_id or action.step_id not in ids):
                yield WorkflowError(
                    f"step {step.step_id!r}: action {action.name!r} goes to "
                    f"{action.step_id or action.workflow_id!r}, which is not a step of this "
                    "workflow",
                    step_id=step.step_id,
                    field="onSuccess/onFailure",
                )
    yield from _endless_loops(workflow)


def _parameter_problems(
    workflow: Workflow, step: Step, operation: Operation
) -> Iterator[WorkflowError]:
    takes = {(p.name, str(p.location)): p for p in operation.parameters}
    given: set[tuple[str, str]] = set()
    for index, parameter in enumerate((*workflow.parameters, *step.parameters)):
        inherited = index < len(workflow.parameters)
        places = [loc for (name, loc) in takes if name == parameter.name]
        place = parameter.in_ or (places[0] if len(places) == 1 else None)
        if place is None or (parameter.name, place) not in takes:
            if not inherited:
                known = ", ".join(sorted(f"{n} ({loc})" for n, loc in takes)) or "none"
                yield WorkflowError(
                    f"step {step.step_id!r}: operation {operation.operation_id!r} takes no "
                    f"parameter {parameter.name!r}"
                    + (f" in {parameter.in_}" if parameter.in_ else "")
                    + f" (it takes: {known})",
                    step_id=step.step_id,
                    field=f"parameters.{parameter.name}",
                )
            continue
        given.add((parameter.name, place))
        schema = takes[(parameter.name, place)].schema
        if not _is_dynamic(parameter.value) and schema:
            value = as_declared(parameter.value, place, parameter.name, operation)
            yield from _literal_problems(step, f"parameters.{parameter.name}", value, schema)
    for (name, place), declared in takes.items():
        if declared.required and (name, place) not in given:
            yield WorkflowError(
                f"step {step.step_id!r}: required {place} parameter {name!r} of "
                f"{operation.operation_id!r} is missing",
                step_id=step.step_id,
                field=f"parameters.{name}",
            )
    body = operation.request_body
    if body is not None and body.required and step.request_body is None:
        yield WorkflowError(
            f"step {step.step_id!r}: {operation.operation_id!r} requires a request body",
            step_id=step.step_id,
            field="requestBody",
        )


def _literal_problems(
    step: Step, field: str, value: Any, schema: Mapping[str, Any]
) -> Iterator[WorkflowError]:
    try:
        validator = Draft202012Validator(dict(schema), registry=_REGISTRY)
        error = next(validator.iter_errors(value), None)
    except (WorkflowError, LookupError, ValueError):
        return  # a schema with references is checked when the call is built
    if error is not None:
        yield WorkflowError(
            f"step {step.step_id!r}: {field} = {value!r:.100} does not fit the operation's "
            f"schema: {error.message:.200}",
            step_id=step.step_id,
            field=field,
        )


def _is_dynamic(value: Any) -> bool:
    try:
        return bool(references(value))
    except WorkflowError:
        return True  # reported by _reference_problems


def _evaluated_parts(step: Step) -> Iterator[tuple[str, Any]]:
    """(field, value) of every part of a step holding runtime expressions."""
    for parameter in step.parameters:
        yield f"parameters.{parameter.name}", parameter.value
    if step.request_body is not None:
        yield "requestBody.payload", step.request_body.payload
        for replacement in step.request_body.replacements:
            yield f"requestBody.replacements{replacement.target}", replacement.value
    for name, expression in step.outputs.items():
        yield f"outputs.{name}", expression
    for name, template in step.transform.items():
        yield f"x-apiq-transform.{name}", template
    if step.for_each is not None:
        yield "x-apiq-forEach.items", step.for_each.items
    for index, criterion in enumerate(step.success_criteria):
        if criterion.context:
            yield f"successCriteria[{index}].context", criterion.context


_AFTER_CALL = ("outputs.", "x-apiq-transform.", "successCriteria")


def _reference_problems(
    step: Step,
    field: str,
    value: Any,
    earlier: set[str],
    outputs: Mapping[str, set[str]],
    declared_inputs: set[str],
    open_inputs: bool,
) -> Iterator[WorkflowError]:
    try:
        found = references(value)
    except WorkflowError as exc:
        yield WorkflowError(
            f"step {step.step_id!r}: {field}: {exc}", step_id=step.step_id, field=field
        )
        return
    for ref in found:
        problem = _reference_problem(
            ref, field, earlier, outputs, declared_inputs, open_inputs, step.for_each is not None
        )
        if problem:
            yield WorkflowError(
                f"step {step.step_id!r}: {field}: {ref.expression.text!r} {problem}",
                step_id=step.step_id,
                field=field,
            )


def _reference_problem(
    ref: Reference,
    field: str,
    earlier: set[str],
    outputs: Mapping[str, set[str]],
    declared_inputs: set[str],
    open_inputs: bool,
    in_loop: bool,
) -> str | None:
    expression = ref.expression
    if expression.unsupported:
        return f"cannot be evaluated: {expression.unsupported}"
    if (expression.needs_response or expression.needs_request) and not field.startswith(
        _AFTER_CALL
    ):
        return "reads the step's own request or response, which does not exist yet here"
    if expression.kind in ("item", "index") and (not in_loop or field.startswith("x-apiq-forEach")):
        return "is only defined for the items of an x-apiq-forEach step"
    step_id = expression.step_id
    if step_id is not None:
        if step_id not in outputs:
            return f"names no step of this workflow ({', '.join(sorted(outputs))})"
        if step_id not in earlier:
            return f"reads step {step_id!r}, which runs later or is this step"
        names = expression.name_candidates
        if names and not any(name in outputs[step_id] for name in names):
            declared = ", ".join(sorted(outputs[step_id])) or "none"
            return f"reads an output step {step_id!r} does not declare (it declares: {declared})"
    name = expression.input_name
    known_input = any(candidate in declared_inputs for candidate in expression.name_candidates)
    if name is not None and not open_inputs and not known_input:
        known = ", ".join(sorted(declared_inputs)) or "none"
        return f"reads an input the workflow does not declare (it declares: {known})"
    return None


def _criteria_problems(step: Step) -> Iterator[WorkflowError]:
    criteria = [(f"successCriteria[{i}]", c) for i, c in enumerate(step.success_criteria)]
    if step.if_ is not None:
        criteria.append(("x-apiq-if", step.if_))
    for action in step.actions:
        criteria += [(f"action {action.name!r} criteria", c) for c in action.criteria]
    for field, criterion in criteria:
        try:
            parse_condition(criterion.condition, type=criterion.type)
        except WorkflowError as exc:
            yield WorkflowError(
                f"step {step.step_id!r}: {field}: {exc}", step_id=step.step_id, field=field
            )


def _endless_loops(workflow: Workflow) -> Iterator[WorkflowError]:
    """Goto cycles every edge of which is taken unconditionally after success."""
    always: dict[str, str] = {}
    for step in workflow.steps:
        first = step.on_success[0] if step.on_success else None
        if first is not None and first.type == "goto" and not first.criteria and first.step_id:
            always[step.step_id] = first.step_id
    for start in always:
        seen = [start]
        current = always[start]
        while current in always and current not in seen:
            seen.append(current)
            current = always[current]
        if current == start:
            yield WorkflowError(
                f"steps {' -> '.join([*seen, start])} go to each other unconditionally: the "
                "loop has no way out; give a goto criteria or an end action",
                step_id=start,
                field="onSuccess",
            )
