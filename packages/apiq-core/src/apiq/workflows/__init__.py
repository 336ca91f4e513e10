"""Arazzo 1.0 compatible workflows: the model, expressions, criteria, checks, import/export.

- `Plan` / `Workflow` / `Step` (`apiq.workflows.model`) hold a plan as data, with APIQ's
  `x-apiq-forEach`, `x-apiq-if` / `x-apiq-else` and `x-apiq-transform` extensions;
- `parse_expression` / `evaluate` read Arazzo runtime expressions (`$inputs.x`,
  `$steps.s.outputs.o`, `$response.body#/ptr`, `$statusCode`, APIQ's `$item` / `$index`)
  against an `ExpressionContext`;
- `interpolate` and `resolve_value` put them into strings and JSON-like values (with
  `$jsonpath` selections), `references` finds them for validation and step ordering;
- `check` / `parse_condition` evaluate Criterion Objects: simple, regex (bounded) and
  RFC 9535 JSONPath;
- `check_plan` validates a plan against its connections' catalogs before anything runs;
- `export_arazzo` / `import_arazzo` turn plans into Arazzo 1.0.1 documents and back.
"""

from __future__ import annotations

from apiq.workflows.arazzo import export_arazzo, import_arazzo, validate_arazzo
from apiq.workflows.checks import check_inputs, check_plan
from apiq.workflows.criteria import Condition, check, parse_condition
from apiq.workflows.expressions import (
    Expression,
    ExpressionContext,
    RequestView,
    ResponseView,
    evaluate,
    parse_expression,
)
from apiq.workflows.model import (
    Criterion,
    FailureAction,
    ForEach,
    Parameter,
    PayloadReplacement,
    Plan,
    RequestBody,
    SourceDescription,
    Step,
    SuccessAction,
    Workflow,
)
from apiq.workflows.values import (
    Reference,
    escape_text,
    interpolate,
    references,
    resolve_value,
    select_jsonpath,
    validate_jsonpath,
)

__all__ = [
    "Condition",
    "Criterion",
    "Expression",
    "ExpressionContext",
    "FailureAction",
    "ForEach",
    "Parameter",
    "PayloadReplacement",
    "Plan",
    "Reference",
    "RequestBody",
    "RequestView",
    "ResponseView",
    "SourceDescription",
    "Step",
    "SuccessAction",
    "Workflow",
    "check",
    "check_inputs",
    "check_plan",
    "escape_text",
    "evaluate",
    "export_arazzo",
    "import_arazzo",
    "interpolate",
    "parse_condition",
    "parse_expression",
    "references",
    "resolve_value",
    "select_jsonpath",
    "validate_arazzo",
    "validate_jsonpath",
]
