"""The interpreter of a plan: steps in order, actions, retries, forEach, if, concurrency.

`Runner` is deterministic given the answers of its calls, which is what lets a durable
engine replay it: `LocalExecutor` gives it calls through `Outbound`, `DbosExecutor` wraps
each call in a DBOS step and the whole run in a DBOS workflow.

Rules (Arazzo 1.0 where it speaks):
- A step succeeds when all its `successCriteria` hold; with none, when the status is 2xx.
- After a step, the first `onSuccess` / `onFailure` action whose criteria hold applies
  (the workflow's `successActions` / `failureActions` when the step has none). `retry`
  waits `retryAfter` seconds — an upstream Retry-After header wins — at most `retryLimit`
  times (default 1); `goto` jumps; `end` stops. A failure no action handles fails the run.
- Consecutive read-only steps with no actions of their own that do not read each other's
  outputs run concurrently (at most `Limits.concurrency` calls in flight); so do forEach
  items. A step that changes state runs alone, in its place.
- Errors that mean "refused" (policy, arguments, expressions) fail the step without retry.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from apiq.calls.retry import retry_after_s
from apiq.errors import ApiqError, WorkflowError
from apiq.execution.approval import changing_steps
from apiq.execution.steps import Emit, Limits, RunResult, StepCall, StepRequest, StepResponse
from apiq.workflows.arguments import step_arguments
from apiq.workflows.criteria import check
from apiq.workflows.expressions import ExpressionContext, RequestView, ResponseView, evaluate
from apiq.workflows.graph import concurrent_run, step_reads
from apiq.workflows.values import resolve_value

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.workflows.model import Criterion, FailureAction, Plan, Step, SuccessAction

__all__ = ["Runner"]


class Cancelled(Exception):
    """The execution was asked to stop."""


@dataclass(slots=True)
class _Outcome:
    ok: bool
    action: SuccessAction | FailureAction | None = None
    error: str | None = None


class Runner:
    """Runs one plan once. Build a new one per execution.

    Args:
        plan: The approved plan.
        inputs: The workflow inputs.
        execution_id: Stable id; idempotency keys derive from it.
        catalogs: Source name -> catalog of the connection it names.
        call: Makes each call.
        emit: Receives step and execution events.
        sleep: Waits between retries (a durable engine passes its durable sleep).
        cancelled: True once the user asked to stop; checked before every call.
        limits: Bounds on steps, time and concurrency.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        *,
        execution_id: str,
        catalogs: Mapping[str, Catalog],
        call: StepCall,
        emit: Emit,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        cancelled: Callable[[], bool] = lambda: False,
        limits: Limits = Limits(),  # noqa: B008 - frozen value object
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plan = plan
        self._workflow = plan.workflow
        self._inputs = dict(inputs)
        self._execution_id = execution_id
        self._catalogs = catalogs
        self._call = call
        self._emit = emit
        self._sleep = sleep
        self._cancelled = cancelled
        self._limits = limits
        self._clock = clock
        self._deadline = clock() + limits.max_duration_s
        self._outputs: dict[str, dict[str, Any]] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._runs = 0
        self._limiter = anyio.CapacityLimiter(limits.concurrency)
        self._changing = {step.step_id for step in changing_steps(plan, catalogs)}
        self._reads = step_reads(plan.workflow)
        self._sources = {source.name: source.url for source in plan.sources}

    async def run(self) -> RunResult:
        """Run to the end; never raises for a failing step (see `RunResult.status`)."""
        await self._emit("execution.started", None, {"steps": len(self._workflow.steps)})
        try:
            status, error = await self._loop()
        except Cancelled:
            status, error = "cancelled", "the execution was cancelled before its next call"
        outputs: dict[str, Any] = {}
        if status == "succeeded":
            try:
                outputs = resolve_value(self._workflow.outputs, self._context())
            except ApiqError as exc:
                status, error = "failed", f"workflow outputs: {exc}"
        result = RunResult(status, outputs, self._records, error)
        await self._emit(
            "execution.finished", None, {"status": status, "error": error, "outputs": outputs}
        )
        return result

    async def _loop(self) -> tuple[Any, str | None]:
        steps = self._workflow.steps
        index = 0
        while index < len(steps):
            wave = concurrent_run(self._workflow, index, self._reads, self._changing)
            if len(wave) > 1:
                outcomes: dict[str, _Outcome] = {}
                await _together([partial(self._run_into, step, outcomes) for step in wave])
                failed = [s.step_id for s in wave if not outcomes[s.step_id].ok]
                if failed:
                    return "failed", f"step {failed[0]!r} failed: {outcomes[failed[0]].error}"
                index += len(wave)
                continue
            step = steps[index]
            outcome = await self._run_step(step)
            action = outcome.action
            if action is None or action.type == "retry":
                if not outcome.ok:
                    return "failed", f"step {step.step_id!r} failed: {outcome.error}"
                index += 1
            elif action.type == "end":
                if outcome.ok:
                    return "succeeded", None
                return "failed", f"step {step.step_id!r} failed and ended the workflow"
            else:
                index = self._goto(step, action)
        return "succeeded", None

    async def _run_into(self, step: Step, outcomes: dict[str, _Outcome]) -> None:
        outcomes[step.step_id] = await self._run_step(step)

    def _goto(self, step: Step, action: SuccessAction | FailureAction) -> int:
        if action.workflow_id or not action.step_id:
            raise WorkflowError(
                f"step {step.step_id!r}: action {action.name!r} must go to a stepId of this "
                "workflow (workflowId targets are not supported)",
                step_id=step.step_id,
                field="onSuccess/onFailure",
            )
        for position, candidate in enumerate(self._workflow.steps):
            if candidate.step_id == action.step_id:
                return position
        raise WorkflowError(
            f"step {step.step_id!r}: action {action.name!r} goes to unknown step "
            f"{action.step_id!r}",
            step_id=step.step_id,
            field="onSuccess/onFailure",
        )

    async def _run_step(self, step: Step) -> _Outcome:
        record = self._records.setdefault(step.step_id, {"runs": 0})
        record["runs"] += 1
        ctx = self._context()
        try:
            if step.if_ is not None and not self._holds(step.if_, ctx, strict=True):
                record.update(status="skipped", error=None)
                await self._emit("step.skipped", step.step_id, {"reason": "x-apiq-if is false"})
                return _Outcome(True, self._first(step.else_, ctx))
            await self._emit("step.started", step.step_id, {"description": step.description})
            if step.for_each is not None:
                return await self._run_items(step, record)
            response, ctx = await self._attempts(step, record, ctx, None)
        except Cancelled:
            raise
        except ApiqError as exc:
            return await self._failed(step, record, str(exc), ctx, False)
        return await self._judged(step, record, response, ctx)

    async def _run_items(self, step: Step, record: dict[str, Any]) -> _Outcome:
        assert step.for_each is not None
        items = evaluate(step.for_each.items, self._context())
        if not isinstance(items, list):
            raise WorkflowError(
                f"step {step.step_id!r}: x-apiq-forEach items {step.for_each.items!r} gave "
                f"{type(items).__name__}, not a list",
                step_id=step.step_id,
                field="x-apiq-forEach.items",
            )
        if len(items) > step.for_each.max_items:
            raise WorkflowError(
                f"step {step.step_id!r}: {len(items)} items exceed maxItems "
                f"{step.for_each.max_items}; raise it or narrow the list",
                step_id=step.step_id,
                field="x-apiq-forEach.maxItems",
            )
        results: list[tuple[StepResponse, ExpressionContext] | None] = [None] * len(items)

        async def one(index: int) -> None:
            ctx = self._context(item=items[index], index=index)
            results[index] = await self._attempts(step, record, ctx, index)

        await _together([partial(one, index) for index in range(len(items))])
        outputs: dict[str, list[Any]] = {}
        for index, done in enumerate(results):
            assert done is not None
            response, ctx = done
            if not self._succeeded(step, response, ctx):
                return await self._failed(
                    step, record, f"item {index}: status {response.status_code}", ctx, False
                )
            for name, value in self._step_outputs(step, ctx).items():
                outputs.setdefault(name, []).append(value)
        return await self._succeeded_with(step, record, outputs, self._context())

    async def _attempts(
        self, step: Step, record: dict[str, Any], ctx: ExpressionContext, item: int | None
    ) -> tuple[StepResponse, ExpressionContext]:
        """Call until the step succeeds or no retry action applies."""
        source, operation_id = self._plan.target(step)
        operation = self._catalogs[source].operation(operation_id)
        retries = 0
        while True:
            arguments = step_arguments(self._workflow, step, operation, ctx)
            key = None
            if operation.changes_state:
                key = self._idempotency_key(step, item, retries, record["runs"])
            request = StepRequest(
                self._execution_id, step.step_id, source, operation_id, arguments, key, item
            )
            response = await self._send(request)
            record["attempts"] = record.get("attempts", 0) + response.attempts
            record["request"] = {
                "method": response.method,
                "url": response.url,
                "status": response.status_code,
                "duration_ms": round(response.duration_ms, 3),
            }
            called = self._context(
                item=ctx.item, index=ctx.index, response=response, arguments=arguments
            )
            if self._succeeded(step, response, called):
                return response, called
            action = self._first(step.on_failure or self._workflow.failure_actions, called)
            if action is None or action.type != "retry":
                return response, called
            if retries >= (action.retry_limit if action.retry_limit is not None else 1):
                return response, called
            retries += 1
            wait = self._retry_wait(action, response)
            await self._emit(
                "step.retrying",
                step.step_id,
                {"status": response.status_code, "wait_s": wait, "retry": retries, "item": item},
            )
            await self._sleep(wait)

    async def _send(self, request: StepRequest) -> StepResponse:
        if self._cancelled():
            raise Cancelled
        self._runs += 1
        if self._runs > self._limits.max_step_runs:
            raise WorkflowError(
                f"the execution made more than {self._limits.max_step_runs} step runs; a goto "
                "or retry loop may not end (raise Limits.max_step_runs if it is intended)",
                step_id=request.step_id,
                field=None,
            )
        if self._clock() > self._deadline:
            raise WorkflowError(
                f"the execution ran longer than {self._limits.max_duration_s:g} s",
                step_id=request.step_id,
                field=None,
            )
        async with self._limiter:
            return await self._call(request)

    async def _judged(
        self, step: Step, record: dict[str, Any], response: StepResponse, ctx: ExpressionContext
    ) -> _Outcome:
        if not self._succeeded(step, response, ctx):
            return await self._failed(step, record, f"status {response.status_code}", ctx, True)
        try:
            outputs = self._step_outputs(step, ctx)
        except ApiqError as exc:
            return await self._failed(step, record, f"outputs: {exc}", ctx, False)
        return await self._succeeded_with(step, record, outputs, ctx)

    async def _succeeded_with(
        self, step: Step, record: dict[str, Any], outputs: dict[str, Any], ctx: ExpressionContext
    ) -> _Outcome:
        self._outputs[step.step_id] = outputs
        record.update(status="succeeded", outputs=outputs, error=None)
        await self._emit(
            "step.succeeded",
            step.step_id,
            {"request": record.get("request"), "outputs": sorted(outputs)},
        )
        return _Outcome(True, self._first(step.on_success or self._workflow.success_actions, ctx))

    async def _failed(
        self,
        step: Step,
        record: dict[str, Any],
        error: str,
        ctx: ExpressionContext,
        actions: bool,
    ) -> _Outcome:
        record.update(status="failed", error=error)
        await self._emit("step.failed", step.step_id, {"error": error, **_request(record)})
        action = None
        if actions:
            action = self._first(step.on_failure or self._workflow.failure_actions, ctx)
            if action is not None and action.type == "retry":
                action = None  # retries were spent in _attempts
        return _Outcome(False, action, error)

    def _succeeded(self, step: Step, response: StepResponse, ctx: ExpressionContext) -> bool:
        if not step.success_criteria:
            return 200 <= response.status_code < 300
        return all(self._holds(c, ctx, strict=True) for c in step.success_criteria)

    def _step_outputs(self, step: Step, ctx: ExpressionContext) -> dict[str, Any]:
        outputs = {name: evaluate(expression, ctx) for name, expression in step.outputs.items()}
        outputs.update(resolve_value(step.transform, ctx))
        return outputs

    def _first(
        self, actions: tuple[Any, ...], ctx: ExpressionContext
    ) -> SuccessAction | FailureAction | None:
        for action in actions:
            if all(self._holds(c, ctx, strict=False) for c in action.criteria):
                return action  # type: ignore[no-any-return]
        return None

    def _holds(self, criterion: Criterion, ctx: ExpressionContext, *, strict: bool) -> bool:
        """Whether `criterion` holds; a criterion that cannot be evaluated is false for
        actions (they are alternatives) and an error for success criteria and `if`."""
        try:
            return check(
                criterion.condition, type=criterion.type, context=criterion.context, ctx=ctx
            )
        except ApiqError:
            if strict:
                raise
            return False

    def _retry_wait(self, action: FailureAction, response: StepResponse) -> float:
        wait = action.retry_after or 0.0
        asked = retry_after_s(response.header("retry-after"), time.time())
        if asked is not None:
            wait = asked
        return min(max(wait, 0.0), self._limits.max_retry_wait_s)

    def _idempotency_key(self, step: Step, item: int | None, retry: int, run: int) -> str:
        seed = f"{self._execution_id}/{step.step_id}/{run}/{item}/{retry}"
        return "apiq-" + hashlib.sha256(seed.encode()).hexdigest()[:40]

    def _context(
        self,
        *,
        item: Any = None,
        index: int | None = None,
        response: StepResponse | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> ExpressionContext:
        request = view = None
        if response is not None:
            arguments = arguments or {}
            request = RequestView(
                method=response.method,
                url=response.url,
                headers=arguments.get("header", {}),
                path=arguments.get("path", {}),
                query=arguments.get("query", {}),
                body=arguments.get("body"),
            )
            view = ResponseView(
                status_code=response.status_code, headers=response.headers, body=response.body
            )
        return ExpressionContext(
            inputs=self._inputs,
            steps=self._outputs,
            request=request,
            response=view,
            item=item,
            index=index,
            source_descriptions=self._sources,
        )


def _request(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"request": record["request"]} if "request" in record else {}


async def _together(jobs: list[Callable[[], Awaitable[None]]]) -> None:
    """Run `jobs` concurrently; the first error is raised as itself, not wrapped in an
    ExceptionGroup, so `except ApiqError` / `except Cancelled` above still see it."""
    errors: list[Exception] = []

    async def guarded(job: Callable[[], Awaitable[None]]) -> None:
        try:
            await job()
        except Exception as exc:
            errors.append(exc)

    async with anyio.create_task_group() as group:
        for job in jobs:
            group.start_soon(guarded, job)
    if errors:
        raise errors[0]
