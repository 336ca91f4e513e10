"""The model's function calls as a plan: one step per call, references turned into outputs.

A call names a tool (`apiq.planning.Tool`), which names one operation of one source: a name
the planner did not offer is a problem, never a guess. Arguments are the groups of the
operation's argument schema (`path`, `query`, `header`, `cookie`, `body`); a flat object of
parameter names is accepted too, for models that ignore the grouping.

References: `$steps.stepN.response#/ptr` (a whole string) and `{$steps.stepN.response#/ptr}`
(inside text) become an output `oK: $response.body#/ptr` declared on stepN and the runtime
expression `$steps.stepN.outputs.oK` on the consumer. Every other string is escaped
(`apiq.workflows.escape_text`), so the model cannot slip any other runtime expression
(`$inputs...`, `$sourceDescriptions...`) into a plan; an object with a `$jsonpath` key is
refused for the same reason. Steps never carry a URL: only catalog operations can be named,
so every call goes to its connection's registered server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from apiq.workflows import Plan, SourceDescription, Workflow, escape_text
from apiq.workflows.model import MAX_STEPS

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.planning import Tool
    from apiq_adapters.openai.prompt import ModelCall

__all__ = ["MAX_ARGUMENT_CHARS", "plan_from_calls"]

MAX_ARGUMENT_CHARS = 100_000
"""Longest arguments JSON of one call."""
_GROUPS = ("path", "query", "header", "cookie")
_REFERENCE = r"\$steps\.step([1-9][0-9]{0,2})\.response(?:#([^\s{}]*))?"
_WHOLE = re.compile(_REFERENCE)
_EMBEDDED = re.compile(r"\{" + _REFERENCE + r"\}")


class _Refusal(Exception):
    """One problem with one call's arguments."""


class _Steps:
    """Outputs declared so far, per step, as references are found."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.outputs: list[dict[str, str]] = [{} for _ in range(count)]

    def output(self, position: int, number: str, pointer: str | None) -> str:
        """`$steps.stepN.outputs.oK` for a reference made by the step at `position`."""
        source = int(number)
        if source > position:
            raise _Refusal(
                f"'$steps.step{number}.response' refers to a step that does not run before "
                f"step{position + 1}: refer to earlier steps only"
            )
        if pointer and not pointer.startswith("/"):
            raise _Refusal(f"'#{pointer}' is not a JSON pointer (it must start with '/')")
        expression = "$response.body" + (f"#{pointer}" if pointer else "")
        outputs = self.outputs[source - 1]
        name = next((n for n, e in outputs.items() if e == expression), f"o{len(outputs) + 1}")
        outputs[name] = expression
        return f"$steps.step{source}.outputs.{name}"

    def value(self, value: Any, position: int) -> Any:
        """`value` with references translated and every other string made literal."""
        if isinstance(value, str):
            whole = _WHOLE.fullmatch(value)
            if whole:
                return self.output(position, whole[1], whole[2])
            found = list(_EMBEDDED.finditer(value))
            if not found:
                return escape_text(value)
            if value.startswith(("$", "\\")):
                # A leading `$`/`\` has its own escaping rule for whole strings; keep it out.
                raise _Refusal("text that embeds a reference must not start with '$' or '\\'")
            pieces: list[str] = []
            last = 0
            for embedded in found:
                literal = value[last : embedded.start()]
                if literal.endswith("\\"):
                    raise _Refusal("a backslash right before '{$steps' would make it literal")
                pieces.append(literal.replace("{$", "\\{$"))
                pieces.append("{" + self.output(position, embedded[1], embedded[2]) + "}")
                last = embedded.end()
            pieces.append(value[last:].replace("{$", "\\{$"))
            return "".join(pieces)
        if isinstance(value, dict):
            if "$jsonpath" in value:
                raise _Refusal("objects with a '$jsonpath' key are not allowed in arguments")
            return {key: self.value(item, position) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item, position) for item in value]
        return value


def plan_from_calls(
    calls: Sequence[ModelCall],
    tools: Mapping[str, Tool],
    catalogs: Mapping[str, Catalog],
    request: str,
) -> tuple[Plan | None, list[str]]:
    """The plan the calls describe, or None and every problem found (for a repair round).

    The plan is not validated against the catalogs here: `apiq.workflows.check_plan` does.
    """
    if len(calls) > MAX_STEPS:
        return None, [f"a plan has at most {MAX_STEPS} steps, not {len(calls)}"]
    steps = _Steps(len(calls))
    drafts: list[dict[str, Any]] = []
    problems: list[str] = []
    for position, call in enumerate(calls):
        tool = tools.get(call.name)
        where = f"step{position + 1} ({call.name!r:.80})"
        if tool is None:
            problems.append(
                f"{where}: there is no function of that name; use only the functions given"
            )
            continue
        try:
            drafts.append(_draft(position, tool, call.arguments, steps, catalogs))
        except _Refusal as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        return None, problems
    for draft, outputs in zip(drafts, steps.outputs, strict=True):
        if outputs:
            draft["outputs"] = outputs
    used = dict.fromkeys(tools[call.name].source for call in calls)
    try:
        plan = Plan(
            workflow=Workflow.model_validate({"workflowId": "plan", "steps": drafts}),
            sources=tuple(
                SourceDescription(name=source, url=catalogs[source].source) for source in used
            ),
            request=request,
        )
    except (ValidationError, KeyError) as exc:
        return None, [f"the calls do not form a valid plan: {exc}"]
    return plan, []


def _draft(
    position: int,
    tool: Tool,
    arguments_text: str,
    steps: _Steps,
    catalogs: Mapping[str, Catalog],
) -> dict[str, Any]:
    """The camelCase step document of one call."""
    arguments = _arguments(arguments_text)
    operation = catalogs[tool.source].operation(tool.operation_id)
    parameters: list[dict[str, Any]] = []
    draft: dict[str, Any] = {
        "stepId": f"step{position + 1}",
        "description": tool.description,
        "operationId": f"$sourceDescriptions.{tool.source}.{tool.operation_id}",
    }
    for key, value in arguments.items():
        if key in _GROUPS:
            if not isinstance(value, dict):
                raise _Refusal(f"arguments.{key} must be an object of parameter values")
            for name, item in value.items():
                parameters.append({"name": name, "in": key, "value": steps.value(item, position)})
        elif key == "body":
            draft["requestBody"] = {"payload": steps.value(value, position)}
        else:
            places = [p.location for p in operation.parameters if p.name == key]
            if not places:
                raise _Refusal(
                    f"{key!r:.80} is neither an argument group (path, query, header, cookie, "
                    "body) nor a parameter of this operation"
                )
            parameter = {"name": key, "value": steps.value(value, position)}
            if len(places) == 1:
                parameter["in"] = places[0]
            parameters.append(parameter)
    if parameters:
        draft["parameters"] = parameters
    return draft


def _arguments(text: str) -> dict[str, Any]:
    if len(text) > MAX_ARGUMENT_CHARS:
        raise _Refusal(f"the arguments are longer than {MAX_ARGUMENT_CHARS} characters")
    if not text.strip():
        return {}
    try:
        arguments = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise _Refusal(f"the arguments are not valid JSON ({exc})") from None
    if not isinstance(arguments, dict):
        raise _Refusal("the arguments must be a JSON object")
    return arguments


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
