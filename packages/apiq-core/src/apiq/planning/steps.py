"""From the planner's drafts to an Arazzo workflow: arguments, outputs, loops, conditions.

A `Draft` is one chosen operation with the values found for its slots: from the text,
reused from an earlier step's text, linked to an earlier step's response (`chain`), or a
default. `build_workflow` writes the steps:

- a link reads an output the producing step declares: the first item of a list
  (`$response.body#/0/id`), or the object's field; when the clause says "each", the step
  gets `x-apiq-forEach` over the producer's items and reads `$item#/id`;
- a required slot with no value becomes a workflow input (`$inputs.<name>`), so the user
  fills it in when reviewing the plan, and the plan's confidence drops;
- a clause's `if` becomes `x-apiq-if` on an earlier object's field, or, per item, a
  JSONPath filter of the list the step loops over.
The runner keeps steps that change state in order, so independent steps need no ordering.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apiq.catalog.arguments import preferred_media_type
from apiq.planning.chain import Condition, Link
from apiq.planning.fill import Filled
from apiq.planning.values import has_ref

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.catalog.models import Operation
    from apiq.planning.shapes import JsonSchema, Shape, Slot
    from apiq.planning.split import Clause

__all__ = ["Draft", "build_workflow"]

_JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(slots=True)
class Draft:
    """One step being planned."""

    step_id: str
    clause: Clause
    source: str
    catalog: Catalog
    operation: Operation
    score: float
    """The search score after re-ranking."""
    margin: float
    """How far ahead of the runner-up, 0 to 1."""
    slots: tuple[Slot, ...]
    whole_body: JsonSchema | None
    """The request body's schema when it is one value, not an object of slots."""
    values: dict[Slot, Filled]
    links: dict[Slot, Link]
    shape: Shape | None
    condition: Condition | None = None
    """The clause's `if`."""
    outputs: dict[str, str] = field(default_factory=dict)
    transform: dict[str, Any] = field(default_factory=dict)

    @property
    def fill_ratio(self) -> float:
        """Share of required values found (a default counts half, an input nothing)."""
        required = [slot for slot in self.slots if slot.required]
        total = len(required) + (1 if self._needs_whole_body else 0)
        if not total:
            return 1.0
        got = sum(
            0.5 if self.values[s].origin in ("default", "words") else 1.0
            for s in required
            if s in self.values
        )
        got += sum(1.0 for s in required if s in self.links and s not in self.values)
        return got / total

    @property
    def per_item(self) -> bool:
        """Whether the step loops over an earlier list (its outputs are then lists)."""
        return _loop_producer(self) is not None

    @property
    def _needs_whole_body(self) -> bool:
        body = self.operation.request_body
        return self.whole_body is not None and body is not None and body.required


def build_workflow(drafts: Sequence[Draft], *, qualify: bool) -> tuple[dict[str, Any], float]:
    """The workflow document (camelCase) for `drafts`, and the plan's confidence.

    Args:
        drafts: The steps, in order; their producers' outputs are added here.
        qualify: Write operationIds as `$sourceDescriptions.<source>.<id>` (several sources).
    """
    inputs: dict[str, Any] = {}
    required_inputs: list[str] = []
    steps: list[dict[str, Any]] = []
    by_id = {draft.step_id: draft for draft in drafts}
    for draft in drafts:
        loop = _loop_producer(draft)
        notes: list[str] = []
        args: dict[tuple[str, str], Any] = {}
        for slot in draft.slots:
            value = _value(draft, slot, loop, by_id, notes)
            if value is None and slot.required:
                name = _input_name(slot.name, slot.schema, inputs, draft.step_id)
                inputs[name] = _input_schema(slot)
                required_inputs.append(name)
                value = f"$inputs.{name}"
                notes.append(f"{slot.name}: not in the request, asked as input '{name}'")
            if value is not None:
                args[(slot.location, slot.name)] = value
        step = _step(draft, args, qualify)
        if draft._needs_whole_body:
            name = _input_name(f"{draft.step_id}_body", {}, inputs, draft.step_id)
            inputs[name] = {"description": "the request body"}
            required_inputs.append(name)
            step["requestBody"] = _body(draft.operation, f"$inputs.{name}")
            notes.append(f"request body: asked as input '{name}'")
        if loop is not None:
            producer = by_id[loop]
            step["x-apiq-forEach"] = {"items": f"$steps.{loop}.outputs.{_items(producer, draft)}"}
        if draft.condition is not None and draft.condition.step_id != loop:
            step["x-apiq-if"] = {"condition": _criterion(draft, by_id)}
        step["description"] = "; ".join([_matched(draft), *notes])
        steps.append(step)
    for step, draft in zip(steps, drafts, strict=True):
        if draft.outputs:
            step["outputs"] = dict(draft.outputs)
        if draft.transform:
            step["x-apiq-transform"] = dict(draft.transform)
    workflow: dict[str, Any] = {"workflowId": "plan", "steps": steps}
    last = steps[-1]
    if "x-apiq-if" not in last:  # a skipped step has no answer to give
        # What the user asked for is the last step's answer: it becomes the plan's output.
        last.setdefault("outputs", {})["result"] = "$response.body"
        workflow["outputs"] = {"result": f"$steps.{last['stepId']}.outputs.result"}
    if inputs:
        workflow["inputs"] = {
            "type": "object",
            "properties": inputs,
            "required": sorted(set(required_inputs)),
        }
    return workflow, _confidence(drafts)


def _value(
    draft: Draft, slot: Slot, loop: str | None, by_id: Mapping[str, Draft], notes: list[str]
) -> Any:
    filled = draft.values.get(slot)
    if filled is not None:
        notes.append(f"{slot.name}={filled.value!r} ({filled.reason})")
        return filled.value
    link = draft.links.get(slot)
    if link is None:
        return None
    producer = by_id[link.step_id]
    if loop == link.step_id:
        notes.append(f"{slot.name} from {link.reason}, for each item")
        return f"$item#{link.field_pointer}"
    pointer = link.field_pointer
    if link.list_pointer is not None:
        pointer = f"{link.list_pointer}/0{link.field_pointer}"
    producer.outputs[link.output_name] = f"$response.body#{pointer}"
    first = " (the first one)" if link.list_pointer is not None else ""
    notes.append(f"{slot.name} from {link.reason}{first}")
    return f"$steps.{link.step_id}.outputs.{link.output_name}"


def _loop_producer(draft: Draft) -> str | None:
    """The step whose list this step loops over, when its clause says "each"."""
    if not draft.clause.each:
        return None
    lists = [link.step_id for link in draft.links.values() if link.list_pointer is not None]
    return lists[-1] if lists else None


def _items(producer: Draft, consumer: Draft) -> str:
    """Declare the producer's list (filtered by the consumer's `if`) and return its name."""
    assert producer.shape is not None
    pointer = producer.shape.list_pointer or ""
    condition = consumer.condition
    if condition is None or condition.step_id != producer.step_id:
        producer.outputs["items"] = "$response.body" + (f"#{pointer}" if pointer else "")
        return "items"
    field_pointer, value, negated = condition.field_pointer, condition.value, condition.negated
    path = "$" + "".join(f"[{_quote(t)}]" for t in _tokens(pointer))
    test = "@" + "".join(f"[{_quote(t)}]" for t in _tokens(field_pointer))
    name = _UNSAFE.sub("_", f"items_{'not_' if negated else ''}{value}")[:64]
    operator = "!=" if negated else "=="
    query = f"{path}[?{test} {operator} {_quote(value)}]"
    producer.transform[name] = {"$jsonpath": query, "from": "$response.body"}
    return name


def _criterion(draft: Draft, by_id: Mapping[str, Draft]) -> str:
    assert draft.condition is not None
    producer_id, field_pointer = draft.condition.step_id, draft.condition.field_pointer
    value, negated = draft.condition.value, draft.condition.negated
    producer = by_id[producer_id]
    assert producer.shape is not None
    first = producer.shape.list_pointer
    pointer = f"{first}/0{field_pointer}" if first is not None else field_pointer
    name = ("first_" if first is not None else "") + _UNSAFE.sub("_", field_pointer.strip("/"))
    producer.outputs[name] = f"$response.body#{pointer}"
    quoted = "'" + value.replace("'", "''") + "'" if isinstance(value, str) else None
    literal = quoted or str(value).lower()
    return f"$steps.{producer_id}.outputs.{name} {'!=' if negated else '=='} {literal}"


def _step(draft: Draft, args: Mapping[tuple[str, str], Any], qualify: bool) -> dict[str, Any]:
    op_id = draft.operation.operation_id
    step: dict[str, Any] = {
        "stepId": draft.step_id,
        "operationId": f"$sourceDescriptions.{draft.source}.{op_id}" if qualify else op_id,
    }
    parameters = [
        {"name": name, "in": place, "value": value}
        for (place, name), value in args.items()
        if place != "body"
    ]
    if parameters:
        step["parameters"] = parameters
    payload = {name: value for (place, name), value in args.items() if place == "body"}
    body = draft.operation.request_body
    if payload or (body is not None and body.required and draft.whole_body is None):
        step["requestBody"] = _body(draft.operation, payload)
    return step


def _body(operation: Operation, payload: Any) -> dict[str, Any]:
    body = operation.request_body
    media_type = preferred_media_type(body.content) if body is not None else None
    return {"contentType": media_type, "payload": payload} if media_type else {"payload": payload}


def _matched(draft: Draft) -> str:
    op = draft.operation
    return (
        f"{draft.clause.text!r} matched {op.operation_id} ({op.method.upper()} {op.path}, "
        f"score {draft.score:.2f})"
    )


def _confidence(drafts: Sequence[Draft]) -> float:
    """The weakest step's: its lead over the runner-up operation times its values found."""
    per_step = [(0.5 + 0.5 * d.margin) * (0.4 + 0.6 * d.fill_ratio) for d in drafts]
    return round(max(0.0, min(1.0, min(per_step, default=0.0))), 3)


def _input_name(name: str, schema: Any, inputs: Mapping[str, Any], step_id: str) -> str:
    clean = _UNSAFE.sub("_", name).strip("_") or "value"
    if clean not in inputs or _plain_schema(inputs[clean]) == _plain_schema(schema):
        return clean
    return f"{clean}_{step_id}"


def _input_schema(slot: Slot) -> dict[str, Any]:
    schema = _plain_schema(slot.schema)
    if slot.description and "description" not in schema:
        schema["description"] = slot.description[:300]
    return schema


def _plain_schema(schema: Any) -> dict[str, Any]:
    """A copy of a small schema without references (inputs cannot reach the spec's)."""
    if not isinstance(schema, Mapping) or has_ref(schema):
        return {}
    kept = ("enum", "format", "minimum", "maximum", "items", "default", "pattern")
    plain = {key: schema[key] for key in kept if key in schema}
    if schema.get("type") in _JSON_TYPES:  # not Swagger 2.0's `file`
        plain["type"] = schema["type"]
    return plain


def _tokens(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _quote(value: object) -> str:
    if not isinstance(value, str):
        return str(value).lower()
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
