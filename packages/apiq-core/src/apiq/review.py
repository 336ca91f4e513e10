"""What a user reviews before approving a plan, and how plans and results look.

A `Review` shows each step's method and full URL (taken from the connection and its catalog,
never from the plan itself: a planner cannot relabel a DELETE as a GET), its arguments, why
it is there, and marks the steps that change state. It renders in a terminal (rich), in
Jupyter (`_repr_html_`) and as JSON (`as_json`, for `apiq plan --json`). `results_table`
does the same for an execution's final state.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.connections import Connection
    from apiq.models import ExecutionState
    from apiq.workflows.model import Plan

__all__ = ["Review", "ReviewStep", "results_html", "results_table", "review"]


@dataclass(frozen=True, slots=True)
class ReviewStep:
    """One step as the user sees it."""

    step_id: str
    source: str
    operation_id: str
    method: str
    url: str
    """Base URL of the connection + the path template (`{petId}` left as written)."""
    arguments: dict[str, Any]
    """`{"path": {...}, "query": {...}, "body": ...}` as planned, expressions included."""
    changes_state: bool
    rationale: str
    for_each: str | None = None


@dataclass(frozen=True, slots=True)
class Review:
    """A plan laid out for approval."""

    plan: Plan
    steps: tuple[ReviewStep, ...]

    @property
    def needs_approval(self) -> bool:
        """True when any step changes state."""
        return any(step.changes_state for step in self.steps)

    def as_json(self) -> dict[str, Any]:
        """`{"request", "confidence", "needsApproval", "inputs", "steps": [...]}`."""
        return {
            "request": self.plan.request,
            "confidence": round(self.plan.confidence, 3),
            "needsApproval": self.needs_approval,
            "inputs": self.plan.workflow.inputs,
            "steps": [
                {
                    "stepId": s.step_id,
                    "source": s.source,
                    "operationId": s.operation_id,
                    "method": s.method,
                    "path": s.url,
                    "arguments": s.arguments,
                    "changesState": s.changes_state,
                    "forEach": s.for_each,
                    "rationale": s.rationale,
                }
                for s in self.steps
            ],
        }

    def __rich__(self) -> Table:
        table = Table(title=f"Plan: {self.plan.request or self.plan.workflow.workflow_id}")
        for column in ("#", "step", "call", "arguments", "why"):
            table.add_column(column, overflow="fold")
        for number, step in enumerate(self.steps, 1):
            mark = "[bold red]changes state[/]\n" if step.changes_state else ""
            loop = f"\nfor each of {step.for_each}" if step.for_each else ""
            table.add_row(
                str(number),
                step.step_id,
                f"{mark}[bold]{step.method}[/] {step.url}{loop}",
                _compact(step.arguments),
                step.rationale,
            )
        return table

    def _repr_html_(self) -> str:
        rows = "".join(_html_row(number, step) for number, step in enumerate(self.steps, 1))
        title = html.escape(self.plan.request or self.plan.workflow.workflow_id)
        return (
            f"<table><caption>Plan: {title} (confidence {self.plan.confidence:.2f})</caption>"
            "<tr><th>#</th><th>step</th><th>call</th><th>arguments</th><th>why</th></tr>"
            f"{rows}</table>"
        )


def _html_row(number: int, step: ReviewStep) -> str:
    mark = '<b style="color:#b00">changes state</b><br>' if step.changes_state else ""
    loop = f"<br>for each of <code>{html.escape(step.for_each)}</code>" if step.for_each else ""
    return (
        f"<tr><td>{number}</td><td>{html.escape(step.step_id)}</td>"
        f"<td>{mark}<b>{step.method}</b> <code>{html.escape(step.url)}</code>{loop}</td>"
        f"<td><code>{html.escape(_compact(step.arguments))}</code></td>"
        f"<td>{html.escape(step.rationale)}</td></tr>"
    )


def review(plan: Plan, connections: Mapping[str, tuple[Connection, Catalog]]) -> Review:
    """Lay `plan` out for approval using the connections it names.

    Raises:
        ValueError / KeyError: a step names an unknown source or operation (validate the
            plan with `apiq.workflows.check_plan` first).
    """
    steps = []
    for step in plan.workflow.steps:
        source, operation_id = plan.target(step)
        connection, catalog = connections[source]
        operation = catalog.operation(operation_id)
        arguments: dict[str, Any] = {}
        for parameter in step.parameters:
            arguments.setdefault(parameter.in_ or "?", {})[parameter.name] = parameter.value
        if step.request_body is not None:
            arguments["body"] = step.request_body.payload
        steps.append(
            ReviewStep(
                step_id=step.step_id,
                source=source,
                operation_id=operation_id,
                method=operation.method.upper(),
                url=connection.base_url.rstrip("/") + operation.path,
                arguments=arguments,
                changes_state=operation.changes_state,
                rationale=step.description,
                for_each=step.for_each.items if step.for_each else None,
            )
        )
    return Review(plan, tuple(steps))


def results_table(state: ExecutionState) -> Table:
    """An execution's steps: status, call, HTTP status, time and outputs."""
    table = Table(title=f"Execution {state.execution_id[:12]}: {state.status}")
    for column in ("step", "status", "call", "HTTP", "ms", "outputs"):
        table.add_column(column, overflow="fold")
    for step_id, record in state.steps.items():
        request = record.get("request") or {}
        table.add_row(
            step_id,
            str(record.get("status", "")),
            f"{request.get('method', '')} {request.get('url', '')}",
            str(request.get("status", "")),
            str(request.get("duration_ms", "")),
            _compact(record.get("outputs", {}), limit=300) or str(record.get("error") or ""),
        )
    return table


def results_html(state: ExecutionState) -> str:
    """`results_table` as an HTML table, for Jupyter."""
    rows = []
    for step_id, record in state.steps.items():
        request = record.get("request") or {}
        shown = _compact(record.get("outputs", {}), limit=300) or str(record.get("error") or "")
        rows.append(
            f"<tr><td>{html.escape(step_id)}</td><td>{html.escape(str(record.get('status')))}"
            f"</td><td><b>{html.escape(str(request.get('method', '')))}</b> "
            f"<code>{html.escape(str(request.get('url', '')))}</code></td>"
            f"<td>{html.escape(str(request.get('status', '')))}</td>"
            f"<td><code>{html.escape(shown)}</code></td></tr>"
        )
    error = f"<p>{html.escape(state.error)}</p>" if state.error else ""
    return (
        f"<table><caption>Execution {html.escape(state.execution_id[:12])}: "
        f"{html.escape(state.status)}</caption><tr><th>step</th><th>status</th><th>call</th>"
        f"<th>HTTP</th><th>outputs</th></tr>{''.join(rows)}</table>{error}"
    )


def _compact(value: Any, *, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
