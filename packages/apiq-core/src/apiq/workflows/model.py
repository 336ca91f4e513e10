"""The workflow model: Arazzo 1.0 objects, plus APIQ's `x-apiq-*` extensions, as data.

A plan is a `Plan`: the plain-English request, the `Workflow` that answers it and the
connections its steps call (Arazzo `sourceDescriptions`, each named after a connection id).
Field names follow Arazzo in their JSON form (`stepId`, `successCriteria`, ...); Python code
uses snake_case. Every object accepts `x-` extensions and refuses other unknown fields, so a
typo in an imported document is an error, not a silently ignored key.

APIQ's extensions, all on `Step`:
- `x-apiq-forEach`: run the step once per item of a list (`$item`, `$index` in expressions),
  at most `maxItems` times; each output becomes the list of per-item values.
- `x-apiq-if` / `x-apiq-else`: a criterion checked before the step; when it is false the
  step is skipped and the `x-apiq-else` actions (goto / end) apply.
- `x-apiq-transform`: extra outputs built declaratively from the response (object and list
  construction with runtime expressions, `{"$jsonpath": ..., "from": ...}` selections).
No field is ever evaluated as code.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "MAX_FOR_EACH_ITEMS",
    "MAX_STEPS",
    "Action",
    "Criterion",
    "CriterionExpressionType",
    "FailureAction",
    "ForEach",
    "Parameter",
    "PayloadReplacement",
    "Plan",
    "RequestBody",
    "SourceDescription",
    "Step",
    "SuccessAction",
    "Workflow",
]

MAX_STEPS = 50
"""Most steps one workflow may hold (SECURITY.md: the plan length is capped)."""
MAX_FOR_EACH_ITEMS = 1000
"""Upper bound of `ForEach.max_items`."""

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
"""Arazzo's id syntax (`stepId`, `workflowId`, source names), bounded to 64 characters."""


class _ArazzoObject(BaseModel):
    """Frozen, camelCase on the wire, `x-` extensions kept, other unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="allow",
        serialize_by_alias=True,
    )

    @model_validator(mode="after")
    def _only_extensions_extra(self) -> _ArazzoObject:
        unknown = [key for key in self.model_extra or {} if not key.startswith("x-")]
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(sorted(unknown))}; only the fields of the Arazzo "
                "object and 'x-' extensions are allowed"
            )
        return self


class CriterionExpressionType(_ArazzoObject):
    """A criterion type with the version of its expression language."""

    type: Literal["jsonpath", "xpath"]
    version: str


class Criterion(_ArazzoObject):
    """A condition over the context of a step (`$statusCode == 200`, a regex, a JSONPath)."""

    condition: str = Field(min_length=1, max_length=4096)
    context: str | None = None
    """A runtime expression; required for regex and JSONPath criteria."""
    type: Literal["simple", "regex", "jsonpath", "xpath"] | CriterionExpressionType = "simple"

    @property
    def kind(self) -> str:
        """The type as one word, whichever form it was written in."""
        return self.type if isinstance(self.type, str) else self.type.type

    @model_validator(mode="after")
    def _context_when_needed(self) -> Criterion:
        if self.kind != "simple" and self.context is None:
            raise ValueError(f"a {self.kind} criterion needs a 'context' runtime expression")
        return self


class SuccessAction(_ArazzoObject):
    """What happens after a step succeeds: end the workflow, or go to another step."""

    name: str
    type: Literal["end", "goto"]
    step_id: Identifier | None = None
    workflow_id: str | None = None
    criteria: tuple[Criterion, ...] = ()


class FailureAction(_ArazzoObject):
    """What happens after a step fails: end, go to another step, or retry it."""

    name: str
    type: Literal["end", "goto", "retry"]
    step_id: Identifier | None = None
    workflow_id: str | None = None
    retry_after: float | None = Field(default=None, ge=0, le=3600)
    """Seconds to wait before a retry; an upstream Retry-After header wins."""
    retry_limit: int | None = Field(default=None, ge=0, le=10)
    criteria: tuple[Criterion, ...] = ()


Action = SuccessAction | FailureAction
"""Any step action: what happens after a step succeeds, fails, or is skipped."""


class Parameter(_ArazzoObject):
    """One argument of a step's operation; `value` may hold runtime expressions."""

    name: str = Field(min_length=1)
    in_: Literal["path", "query", "header", "cookie"] | None = Field(default=None, alias="in")
    """Where the operation takes it; inferred from the operation when only one place fits."""
    value: Any = None


class PayloadReplacement(_ArazzoObject):
    """A value put at a JSON Pointer of the request body after the payload is resolved."""

    target: str
    value: Any = None


class RequestBody(_ArazzoObject):
    """The body of a step's request; expressions inside `payload` are resolved."""

    content_type: str | None = None
    payload: Any = None
    replacements: tuple[PayloadReplacement, ...] = ()


class ForEach(_ArazzoObject):
    """`x-apiq-forEach`: repeat the step for each item of a list."""

    items: str = Field(min_length=2)
    """A runtime expression that yields a list (`$steps.find.outputs.pets`)."""
    max_items: int = Field(default=100, ge=1, le=MAX_FOR_EACH_ITEMS)
    """More items than this fails the step instead of silently dropping any."""


class Step(_ArazzoObject):
    """One call of an operation, its success criteria, actions and outputs."""

    step_id: Identifier
    description: str = ""
    """Why this step is there (a planner's rationale)."""
    operation_id: str | None = None
    """An operationId, or `$sourceDescriptions.<connection>.<operationId>`."""
    operation_path: str | None = None
    workflow_id: str | None = None
    parameters: tuple[Parameter, ...] = ()
    request_body: RequestBody | None = None
    success_criteria: tuple[Criterion, ...] = ()
    on_success: tuple[SuccessAction, ...] = ()
    on_failure: tuple[FailureAction, ...] = ()
    outputs: dict[str, str] = Field(default_factory=dict)
    """Output name -> runtime expression (`$response.body#/id`)."""
    for_each: ForEach | None = Field(default=None, alias="x-apiq-forEach")
    if_: Criterion | None = Field(default=None, alias="x-apiq-if")
    else_: tuple[SuccessAction, ...] = Field(default=(), alias="x-apiq-else")
    transform: dict[str, Any] = Field(default_factory=dict, alias="x-apiq-transform")
    """Output name -> a template of runtime expressions, lists and objects."""

    @property
    def actions(self) -> tuple[Action, ...]:
        """Every action of the step: onSuccess, onFailure, then x-apiq-else."""
        return (*self.on_success, *self.on_failure, *self.else_)

    @model_validator(mode="after")
    def _one_target(self) -> Step:
        targets = [t for t in (self.operation_id, self.operation_path, self.workflow_id) if t]
        if len(targets) != 1:
            raise ValueError(
                f"step {self.step_id!r} must name exactly one of operationId, operationPath "
                f"and workflowId (it names {len(targets)})"
            )
        return self


class Workflow(_ArazzoObject):
    """An Arazzo workflow: inputs, steps run in order (with actions), outputs."""

    workflow_id: Identifier
    summary: str = ""
    description: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """A JSON Schema (type object) of the workflow's inputs."""
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)
    success_actions: tuple[SuccessAction, ...] = ()
    failure_actions: tuple[FailureAction, ...] = ()
    outputs: dict[str, Any] = Field(default_factory=dict)
    parameters: tuple[Parameter, ...] = ()
    """Parameters every step receives unless it sets its own of the same name and place."""

    @model_validator(mode="after")
    def _unique_step_ids(self) -> Workflow:
        seen: set[str] = set()
        for step in self.steps:
            if step.step_id in seen:
                raise ValueError(f"stepId {step.step_id!r} appears more than once")
            seen.add(step.step_id)
        return self

    def step(self, step_id: str) -> Step:
        """The step named `step_id`. Raises KeyError."""
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(step_id)


class SourceDescription(_ArazzoObject):
    """An API a workflow calls: in APIQ, `name` is the id of a connection."""

    name: Identifier
    url: str
    type: Literal["openapi", "arazzo"] = "openapi"


class Plan(_ArazzoObject):
    """What a user approves and an executor runs: one workflow over named connections."""

    workflow: Workflow
    sources: tuple[SourceDescription, ...] = Field(min_length=1)
    request: str = ""
    """The plain-English request the plan answers (empty for hand-written workflows)."""
    confidence: float = Field(default=1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _unique_sources(self) -> Plan:
        names = [source.name for source in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique: {names}")
        return self

    def digest(self, inputs: dict[str, Any] | None = None) -> str:
        """SHA-256 over what runs: the workflow, the sources and the inputs.

        The request text and the confidence do not change what is sent, so they are left
        out; any change to a step, argument, criterion or connection changes the digest.
        """
        what = {
            "workflow": self.workflow.model_dump(mode="json", by_alias=True),
            "sources": [s.model_dump(mode="json", by_alias=True) for s in self.sources],
            "inputs": inputs or {},
        }
        canonical = json.dumps(what, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def target(self, step: Step) -> tuple[str, str]:
        """(connection id, operationId) of `step`.

        Raises:
            ValueError: The step names no operationId, an unknown source, or a bare
                operationId while the plan has several sources.
        """
        ref = step.operation_id
        if ref is None:
            raise ValueError(f"step {step.step_id!r}: only operationId steps can run")
        if ref.startswith("$sourceDescriptions."):
            name, _, operation_id = ref.removeprefix("$sourceDescriptions.").partition(".")
            if name not in {s.name for s in self.sources} or not operation_id:
                raise ValueError(
                    f"step {step.step_id!r}: {ref!r} names no source of this plan "
                    f"({', '.join(s.name for s in self.sources)})"
                )
            return name, operation_id
        if len(self.sources) > 1:
            raise ValueError(
                f"step {step.step_id!r}: with several sources the operationId must be written "
                f"'$sourceDescriptions.<name>.{ref}'"
            )
        return self.sources[0].name, ref
