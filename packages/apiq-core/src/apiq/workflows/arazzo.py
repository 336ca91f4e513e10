"""Plans to and from Arazzo 1.0 documents, checked against the official JSON Schema.

The schema is bundled byte for byte as `apiq/data/arazzo-1.0.schema.json`: the published
Arazzo 1.0 iteration `https://spec.openapis.org/arazzo/1.0/schema/2025-10-15` (its `$id`),
maintained in OAI/Arazzo-Specification and copied from OAI/OpenAPI-Specification, path
`arazzo/1.0/schema/2025-10-15`, commit e75807bb487842066110f52c86174e95e402db62 (sha256
b8715bd824fffcb2accf5077977d37c9e7a15be60d785e7a3a51cf600fd46ad4). Where that schema
contradicts the 1.0.1 text, the text wins, as the schema's own readme says; two corrections are
applied in memory, the file stays as published:
- a Criterion's `type` may be a Criterion Expression Type Object (the schema wrongly expects
  `version` beside `type` instead; OAI/Arazzo-Specification issue 336, pull request 338);
- a Payload Replacement's `value` is `Any | {expression}`, not only a string.

Export writes one workflow per document. Arazzo has no place for the request and the
confidence, so they travel as `x-apiq-request` / `x-apiq-confidence` on `info`; `x-` fields of
the plan sit on the document. Import reads documents as untrusted input, like specs: bounded
size, depth and YAML node budget (`apiq.specs.decode`), a schema check that never fetches
anything, then one plan per workflow over all the document's sources, renamed to connection
ids. Reusable objects (`$components.parameters.page`) and `#/components/inputs/...` references
are resolved; steps that call workflows, Arazzo sources and `dependsOn` are refused.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from importlib.resources import files
from itertools import islice
from typing import Any, NoReturn

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.protocols import Validator
from pydantic import ValidationError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from apiq.config import MIB, SpecLimits
from apiq.errors import ArazzoInvalid, ConfigurationError, SpecInvalid

# Private helpers: decode_document would refuse a document that is not OpenAPI.
from apiq.specs.decode import WHAT_TO_DO, decode_data
from apiq.workflows.model import Plan

__all__ = [
    "ARAZZO_VERSION",
    "DEFAULT_LIMITS",
    "MAX_REPORTED_ERRORS",
    "SCHEMA_ID",
    "export_arazzo",
    "import_arazzo",
    "validate_arazzo",
]

ARAZZO_VERSION = "1.0.1"
"""The `arazzo` version exported documents declare."""
SCHEMA_ID = "https://spec.openapis.org/arazzo/1.0/schema/2025-10-15"
"""`$id` of the bundled schema."""
DEFAULT_LIMITS = SpecLimits(max_bytes=1 * MIB, yaml_max_nodes=100_000)
"""Bounds on an imported document: a 50-step workflow is a few dozen kilobytes."""
MAX_REPORTED_ERRORS = 20
"""At most this many problems are collected (`ArazzoInvalid.errors`)."""
_IN_MESSAGE = 5
_MAX_LINE = 300
_VERSION = re.compile(r"1\.0\.\d+(-.+)?")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WHAT_TO_DO = "pass an Arazzo 1.0.x document (JSON or YAML, UTF-8)"


def _refuse_retrieval(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs class, untyped here


# jsonschema adds its bundled meta-schemas (the `inputs` schemas are checked against 2020-12's);
# anything else is refused, so a document can never make validation reach the network.
_REGISTRY: Registry[Any] = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


@functools.cache
def _validator() -> Validator:
    schema = json.loads(files("apiq.data").joinpath("arazzo-1.0.schema.json").read_bytes())
    defs = schema["$defs"]
    criterion = defs["criterion-object"]
    type_names = criterion.pop("anyOf")[0]["properties"]["type"]
    expression_type = {"$ref": "#/$defs/criterion-expression-type-object"}
    criterion["properties"]["type"] = {"anyOf": [type_names, expression_type]}
    defs["payload-replacement-object"]["properties"]["value"] = True
    validator: Validator = Draft202012Validator(schema, registry=_REGISTRY)
    return validator


def _json_path(parts: Iterable[Any]) -> str:
    """`("workflows", 0, "x-apiq-if")` -> `$.workflows[0]['x-apiq-if']`."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(str(part)):
            out += f".{part}"
        else:
            out += "['" + str(part).replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_LINE else text[: _MAX_LINE - 3] + "..."


def _describe(error: SchemaError) -> list[str]:
    """`path: message` lines for a schema error, naming the field that is actually wrong.

    A failed oneOf/anyOf only says "not valid under any of the given schemas": follow the
    branch with the fewest problems (a parameter missing `in` is closer to a Parameter Object
    than to a Reusable Object); when branches fail alike, say each way to fix it.
    """
    if not error.context:
        return [f"{_json_path(error.absolute_path)}: {error.message}"]
    branches: dict[Any, list[SchemaError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fewest = min(len(branch) for branch in branches.values())
    closest = [branch for branch in branches.values() if len(branch) == fewest]
    if len(closest) == 1:
        return [line for sub in closest[0] for line in _describe(sub)]
    ways = " or ".join(dict.fromkeys(sub.message for branch in closest for sub in branch))
    return [f"{_json_path(error.absolute_path)}: {ways}"]


def validate_arazzo(document: Any) -> list[str]:
    """Problems of `document` (parsed JSON data) against the Arazzo 1.0 schema.

    Returns:
        At most `MAX_REPORTED_ERRORS` lines, each a JSON path and what is wrong there
        (`$.workflows[0].steps[1].parameters[0]: 'in' is a required property`); empty when
        the document is valid.
    """
    try:
        found = list(islice(_validator().iter_errors(document), MAX_REPORTED_ERRORS))
    except RecursionError:
        return ["$: the document nests too deeply to check"]
    problems = [_clip(line) for error in found for line in _describe(error)]
    return list(dict.fromkeys(problems))[:MAX_REPORTED_ERRORS]


def _invalid(source: str, what: str, problems: list[str]) -> ArazzoInvalid:
    errors = tuple(problems[:MAX_REPORTED_ERRORS])
    shown = "; ".join(errors[:_IN_MESSAGE])
    more = f" (and {len(errors) - _IN_MESSAGE} more)" if len(errors) > _IN_MESSAGE else ""
    path = errors[0].split(": ", 1)[0] if errors else None
    message = f"{source}: {what}: {shown}{more}"
    return ArazzoInvalid(message, source=source, path=path, errors=errors)


def export_arazzo(
    plan: Plan, *, spec_urls: Mapping[str, str] | None = None, title: str | None = None
) -> dict[str, Any]:
    """`plan` as an Arazzo 1.0.1 document (plain JSON data) that the schema accepts.

    Args:
        plan: The plan to write; its workflow is the document's only workflow.
        spec_urls: Source (connection) name -> URL of its OpenAPI document, for the
            `sourceDescriptions`; sources not named keep their own `url`.
        title: `info.title`; by default the workflow's summary, else its id.

    Raises:
        ConfigurationError: `spec_urls` names a source the plan does not have.
        ArazzoInvalid: The document would break the schema, e.g. a step parameter without
            `in` (Arazzo requires it; set it from the operation before exporting).
    """
    urls = dict(spec_urls or {})
    names = [s.name for s in plan.sources]
    if unknown := sorted(set(urls) - set(names)):
        raise ConfigurationError(
            f"spec_urls names source(s) {', '.join(unknown)} that the plan does not have "
            f"(it has: {', '.join(names)})"
        )
    workflow = plan.workflow.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    # exclude_defaults drops `value: null`, yet Arazzo requires `value` on both objects.
    for parameter in workflow.get("parameters", ()):
        parameter.setdefault("value", None)
    for step in workflow["steps"]:
        for parameter in step.get("parameters", ()):
            parameter.setdefault("value", None)
        for replacement in step.get("requestBody", {}).get("replacements", ()):
            replacement.setdefault("value", None)
    info: dict[str, Any] = {
        "title": title or plan.workflow.summary or plan.workflow.workflow_id,
        "version": "1.0.0",
    }
    if plan.request:
        info |= {"description": plan.request, "x-apiq-request": plan.request}
    if plan.confidence != 1.0:
        info["x-apiq-confidence"] = plan.confidence
    sources = [
        {**s.model_dump(mode="json", by_alias=True), "url": urls.get(s.name, s.url)}
        for s in plan.sources
    ]
    document = {
        "arazzo": ARAZZO_VERSION,
        "info": info,
        "sourceDescriptions": sources,
        "workflows": [workflow],
        **(plan.model_extra or {}),
    }
    if problems := validate_arazzo(document):
        source = f"workflow {plan.workflow.workflow_id!r}"
        raise _invalid(source, "cannot be written as valid Arazzo 1.0", problems)
    return document


def _decode(document: Any, source: str, limits: SpecLimits) -> Any:
    """Plain data from a mapping or JSON/YAML text, within `limits`."""
    try:
        if isinstance(document, Mapping):
            # Through strict JSON text: non-JSON values, cycles and NaN are refused, and a
            # mapping meets the same size and depth bounds as text.
            content = json.dumps(dict(document), allow_nan=False, ensure_ascii=False).encode()
        elif isinstance(document, str):
            content = document.encode()
        elif isinstance(document, bytes | bytearray | memoryview):
            content = bytes(document)
        else:
            raise TypeError(f"a {type(document).__name__}, not a mapping, str or bytes")
    except (TypeError, ValueError, RecursionError) as exc:
        raise ArazzoInvalid(
            f"{source}: not JSON data: {exc}; {_WHAT_TO_DO}", source=source
        ) from None
    if len(content) > limits.max_bytes:
        raise ArazzoInvalid(
            f"{source}: the document is {len(content):,} bytes, more than the {limits.max_bytes:,}"
            " allowed; split it, or raise the limit (import_arazzo(limits=...))",
            source=source,
        )
    try:
        return decode_data(content, source=source, limits=limits)
    except SpecInvalid as exc:
        tokens = (exc.pointer or "").split("/")[1:]
        path = _json_path(t.replace("~1", "/").replace("~0", "~") for t in tokens)
        message = exc.message.replace(WHAT_TO_DO, _WHAT_TO_DO)
        raise ArazzoInvalid(message, source=source, path=path if tokens else None) from None


def _check_version(data: Any, source: str) -> dict[str, Any]:
    if not isinstance(data, dict) or "arazzo" not in data:
        if isinstance(data, dict):
            known = next((f for f in ("openapi", "swagger") if f in data), None)
            cause = f"an OpenAPI document ('{known}' field)" if known else "no 'arazzo' field"
        else:
            cause = "empty" if data is None else f"the top level is a {type(data).__name__}"
        raise ArazzoInvalid(
            f"{source}: not an Arazzo document: {cause}; {_WHAT_TO_DO}", source=source, path="$"
        )
    if not (isinstance(data["arazzo"], str) and _VERSION.fullmatch(data["arazzo"])):
        raise ArazzoInvalid(
            f"{source}: unsupported arazzo version {data['arazzo']!r}; APIQ reads Arazzo 1.0.x",
            source=source,
            path="$.arazzo",
        )
    return data


def _model_path(loc: tuple[int | str, ...], index: int) -> str:
    """JSON path in the document of a Plan validation error's location."""
    head, *rest = loc or ("",)
    if head == "workflow":
        return _json_path(["workflows", index, *rest])
    if head == "sources":
        return _json_path(["sourceDescriptions", *rest])
    if head in ("request", "confidence"):
        return _json_path(["info", f"x-apiq-{head}"])
    return _json_path(loc)


_OPERATION_PATH_SOURCE = re.compile(r"\{\$sourceDescriptions\.([A-Za-z0-9_\-]+)\.url\}")
_REUSABLE = {"parameters": "parameters", "successActions": "successActions"}
_REUSABLE |= {"failureActions": "failureActions", "onSuccess": "successActions"}
_REUSABLE |= {"onFailure": "failureActions"}
_MAX_INPUT_NODES = 100_000
"""Nodes of a workflow's `inputs` schema once `#/components/inputs/...` are inlined."""
_MAX_REF_CHAIN = 32

_Refuse = Callable[..., NoReturn]


def _resolve_reusables(items: list[Any], kind: str, components: Any, refuse: _Refuse) -> list[Any]:
    """Reusable objects (`{reference: $components.parameters.page, value: 2}`) resolved."""
    resolved: list[Any] = []
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and "reference" in item):
            resolved.append(item)
            continue
        prefix, reference = f"$components.{kind}.", item["reference"]
        name = reference.removeprefix(prefix) if reference.startswith(prefix) else None
        target = components.get(kind, {}).get(name) if name else None
        if target is None:
            refuse(f"{reference!r} names no {kind} component (write '{prefix}<name>')", i)
        value = {"value": item["value"]} if "value" in item and kind == "parameters" else {}
        resolved.append({**target, **value})
    return resolved


def _inline_inputs(schema: Any, inputs: Mapping[str, Any], refuse: _Refuse) -> Any:
    """`schema` with every `$ref: '#/components/inputs/<name>'` replaced by what it names.

    The schema is copied node by node, at most `_MAX_INPUT_NODES` of them, so a chain of
    components that each refer to the next twice cannot blow up; cycles are refused.
    """
    budget = [_MAX_INPUT_NODES]

    def inline(node: Any, chain: tuple[str, ...]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            refuse(f"the inputs schema grows past {_MAX_INPUT_NODES:,} nodes once inlined")
        if isinstance(node, list):
            return [inline(item, chain) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if not (isinstance(ref, str) and ref.startswith("#/components/inputs/")):
            return {key: inline(value, chain) for key, value in node.items()}
        name = ref.removeprefix("#/components/inputs/").replace("~1", "/").replace("~0", "~")
        if name not in inputs:
            refuse(f"{ref!r} names no input schema of components.inputs")
        if name in chain:
            refuse(f"{ref!r} refers to itself (through {' -> '.join(chain)})")
        if len(chain) >= _MAX_REF_CHAIN:
            refuse(f"more than {_MAX_REF_CHAIN} input schemas refer one to the next")
        target = inline(inputs[name], (*chain, name))
        rest = {key: inline(value, chain) for key, value in node.items() if key != "$ref"}
        # Beside `$ref`, 2020-12 applies the other keywords too: keep them, joined by allOf.
        return {**rest, "allOf": [*rest.get("allOf", ()), target]} if rest else target

    try:
        return inline(schema, ())
    except RecursionError:
        refuse("the inputs schema nests too deeply once its references are inlined")


def _plannable(
    raw: Mapping[str, Any],
    data: Mapping[str, Any],
    names: Mapping[str, str],
    *,
    source: str,
    index: int,
) -> dict[str, Any]:
    """Workflow `index` as Workflow data: components resolved, sources renamed, refusals."""

    def refuser(*where: Any) -> _Refuse:
        def refuse(cause: str, *more: Any) -> NoReturn:
            path = _json_path(["workflows", index, *where, *more])
            raise ArazzoInvalid(f"{source}: {path}: {cause}", source=source, path=path)

        return refuse

    components = data.get("components", {})
    workflow = dict(raw)
    if workflow.pop("dependsOn", None):
        refuser("dependsOn")(
            "a plan runs one workflow, not the ones it depends on: import them and run each"
        )
    if "inputs" in workflow:
        inputs = components.get("inputs", {})
        workflow["inputs"] = _inline_inputs(workflow["inputs"], inputs, refuser("inputs"))
    for key in ("parameters", "successActions", "failureActions"):
        if key in workflow:
            kind = _REUSABLE[key]
            workflow[key] = _resolve_reusables(workflow[key], kind, components, refuser(key))
    steps: list[dict[str, Any]] = []
    for i, raw_step in enumerate(workflow["steps"]):
        step, refuse = dict(raw_step), refuser("steps", i)
        if "workflowId" in step:
            refuse(
                f"step {step['stepId']!r} runs workflow {step['workflowId']!r}; a plan runs one "
                "workflow: copy that workflow's steps into this one",
                "workflowId",
            )
        operation_id, operation_path = step.get("operationId"), step.get("operationPath")
        if isinstance(operation_id, str) and operation_id.startswith("$sourceDescriptions."):
            name, _, operation = operation_id.removeprefix("$sourceDescriptions.").partition(".")
            if name not in names or not operation:
                refuse(f"{operation_id!r} names no source ({', '.join(names)})", "operationId")
            step["operationId"] = f"$sourceDescriptions.{names[name]}.{operation}"
        elif isinstance(operation_path, str) and (
            match := _OPERATION_PATH_SOURCE.match(operation_path)
        ):
            if (name := match[1]) not in names:
                refuse(f"{operation_path!r} names no source ({', '.join(names)})", "operationPath")
            renamed = "{$sourceDescriptions." + names[name] + ".url}"
            step["operationPath"] = renamed + operation_path[match.end() :]
        for key in ("parameters", "onSuccess", "onFailure"):
            if key in step:
                step[key] = _resolve_reusables(
                    step[key], _REUSABLE[key], components, refuser("steps", i, key)
                )
        steps.append(step)
    workflow["steps"] = steps
    return workflow


def import_arazzo(
    document: Mapping[str, Any] | str | bytes,
    *,
    connections: Mapping[str, str] | None = None,
    source: str = "<arazzo document>",
    limits: SpecLimits = DEFAULT_LIMITS,
) -> tuple[Plan, ...]:
    """One plan per workflow of an Arazzo 1.0 document.

    Args:
        document: Parsed data, or JSON/YAML text (UTF-8 bytes or str).
        connections: Source description name -> APIQ connection id; by default each
            source's own name is its connection id.
        source: Where the document came from (a path, a URL), named in errors.
        limits: Size, nesting depth and YAML node budget of the document.

    Returns:
        The plans, in document order; each holds every source of the document.

    Raises:
        ConfigurationError: `connections` names a source the document does not declare.
        ArazzoInvalid: Not JSON/YAML within `limits`, not Arazzo 1.0.x, breaks the schema,
            or holds what a plan cannot (see the module docstring); `path` names the place.
    """
    data = _check_version(_decode(document, source, limits), source)
    if problems := validate_arazzo(data):
        raise _invalid(source, "does not match the Arazzo 1.0 schema", problems)
    declared = [s["name"] for s in data["sourceDescriptions"]]
    renames = dict(connections or {})
    if unknown := sorted(set(renames) - set(declared)):
        raise ConfigurationError(
            f"connections names source(s) {', '.join(unknown)} that {source} does not declare "
            f"(it declares: {', '.join(declared)})"
        )
    names = {name: renames.get(name, name) for name in declared}
    for i, description in enumerate(data["sourceDescriptions"]):
        if description.get("type") == "arazzo":
            raise ArazzoInvalid(
                f"{source}: source {description['name']!r} is an Arazzo document; plans call "
                "OpenAPI operations only: import that document instead",
                source=source,
                path=_json_path(["sourceDescriptions", i, "type"]),
            )
    sources = [{**s, "name": names[s["name"]]} for s in data["sourceDescriptions"]]
    info = data["info"]
    plan_fields = {
        "sources": sources,
        "request": info.get("x-apiq-request", ""),
        "confidence": info.get("x-apiq-confidence", 1.0),
        **{key: value for key, value in data.items() if key.startswith("x-")},
    }
    plans: list[Plan] = []
    for index, raw in enumerate(data["workflows"]):
        workflow = _plannable(raw, data, names, source=source, index=index)
        try:
            plans.append(Plan.model_validate({**plan_fields, "workflow": workflow}))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            # A failed item also fails its list's length check: report only the item.
            locs = [e["loc"] for e in errors]
            problems = [
                _clip(f"{_model_path(e['loc'], index)}: {e['msg']}")
                for e in errors
                if not any(len(o) > len(e["loc"]) and o[: len(e["loc"])] == e["loc"] for o in locs)
            ]
            raise _invalid(source, "cannot become a plan", problems) from None
    return tuple(plans)
