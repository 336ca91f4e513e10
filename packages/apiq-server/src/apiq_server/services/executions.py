"""`ExecutionService`: the confirmation gate, starting plans, and reading what they did.

Every plan (from `POST /api/chat` or a saved workflow) runs through `start`: it is checked
against the caller's own connections, a plan that changes state is refused unless the user
approved it in this very request, and the approval is granted bound to the user and the
plan's hash (single-use, expiring: the executor redeems it). The executor records the
execution before `start` returns; `apiq_server_executions` then says whose it is, so any
other user's execution id answers 404.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from apiq.catalog import Catalog
from apiq.connections import Connection
from apiq.errors import (
    ConfigurationError,
    ConfirmationRequired,
    ExecutionError,
    PlanInvalid,
    WorkflowError,
)
from apiq.models import AuditEvent, ExecutionState
from apiq.review import Review, review
from apiq.workflows import Plan, check_inputs, check_plan
from apiq_adapters.sql.tables import executions
from apiq_server.auth.current import CurrentUser
from apiq_server.errors import NotFound
from apiq_server.schemas.common import Page
from apiq_server.schemas.executions import (
    ExecutionEventOut,
    ExecutionOut,
    ExecutionStarted,
    ExecutionSummary,
    RequestSummary,
    StepResult,
)
from apiq_server.wiring import Services

__all__ = ["ExecutionService"]

_T = executions.c
_LOST = "the execution's state is gone (its server restarted while it ran without durability)"


class ExecutionService:
    """One user's executions.

    Args:
        services: The process's services.
        user: The caller; every query is theirs only.
    """

    def __init__(self, services: Services, user: CurrentUser) -> None:
        self._services = services
        self._user = user
        self._principal = user.principal

    async def review(self, plan: Plan) -> Review:
        """`plan` laid out for approval, after checking it against the caller's connections.

        Raises:
            PlanInvalid: A source is not one of the caller's connections, or a step does not
                fit its operation (every problem listed).
        """
        connections: dict[str, tuple[Connection, Catalog]] = {}
        missing: list[WorkflowError] = []
        for source in plan.sources:
            try:
                connections[source.name] = await self._services.connections.resolve(
                    self._principal, source.name
                )
            except ConfigurationError:
                missing.append(
                    WorkflowError(
                        f"source {source.name!r} is not one of your connected APIs; connect it "
                        "(POST /api/apis) or name one of yours",
                        field="sources",
                    )
                )
        catalogs = {name: catalog for name, (_, catalog) in connections.items()}
        problems: list[WorkflowError] = list(missing)
        try:
            check_plan(plan, catalogs)
        except PlanInvalid as exc:
            problems.extend(exc.problems)
        if problems:
            lines = "; ".join(str(problem) for problem in problems[:20])
            raise PlanInvalid(
                f"the plan has {len(problems)} problem(s): {lines}", problems=tuple(problems)
            )
        return review(plan, connections)

    async def start(
        self,
        plan: Plan,
        *,
        inputs: Mapping[str, Any] | None,
        approve: bool,
        plan_id: str | None = None,
        workflow_id: str | None = None,
    ) -> ExecutionStarted:
        """Start `plan`; a plan that changes state needs `approve`.

        Raises:
            RateLimited: Too many executions this minute.
            PlanInvalid: The plan or `inputs` do not fit the caller's connections.
            ConfirmationRequired: The plan changes state and `approve` is not true;
                nothing was sent.
        """
        services, principal = self._services, self._principal
        limit = services.settings.rate_limit_per_minute
        await services.limiter.hit("executions", self._user.id, limit=limit)
        laid_out = await self.review(plan)
        values = dict(inputs or {})
        try:
            check_inputs(plan.workflow, values)
        except WorkflowError as exc:
            raise PlanInvalid(f"the inputs do not fit the plan: {exc}", problems=(exc,)) from None
        token = None
        if laid_out.needs_approval:
            changing = [step.step_id for step in laid_out.steps if step.changes_state]
            if not approve:
                raise ConfirmationRequired(
                    f"step(s) {', '.join(changing)} change state: review the plan and send "
                    "approve: true to run it; nothing was sent"
                )
            approval = await services.approvals.grant(principal, plan, values)
            # Audited before anything runs: if the audit write fails, nothing is sent.
            await services.audit.record(
                AuditEvent(
                    action="plan.approved",
                    actor=principal.id,
                    tenant=principal.tenant,
                    target=plan_id or workflow_id,
                    detail={
                        "plan_digest": approval.plan_digest,
                        "plan_id": plan_id,
                        "workflow_id": workflow_id,
                        "changing_steps": changing,
                    },
                )
            )
            token = approval.token
        execution_id = await services.executor.start(principal, plan, inputs=values, approval=token)
        async with services.engine.begin() as db:
            await db.execute(
                executions.insert().values(
                    id=execution_id, tenant=principal.tenant, owner_id=principal.id,
                    plan_id=plan_id, workflow_id=workflow_id, digest=plan.digest(values),
                    created_at=time.time(),
                )
            )  # fmt: skip
        state = await self._state(execution_id)
        return ExecutionStarted(id=execution_id, status=state.status)

    async def page(self, *, offset: int, limit: int) -> Page[ExecutionSummary]:
        """The caller's executions, newest first."""
        mine = (_T.tenant == self._principal.tenant, _T.owner_id == self._principal.id)
        async with self._services.engine.connect() as db:
            rows = (
                await db.execute(
                    sa.select(executions).where(*mine)
                    .order_by(_T.created_at.desc(), _T.id.desc()).offset(offset).limit(limit)
                )
            ).all()  # fmt: skip
            total = (
                await db.execute(sa.select(sa.func.count()).select_from(executions).where(*mine))
            ).scalar_one()
        items = [
            ExecutionSummary(
                id=row.id,
                status=(await self._state(row.id)).status,
                plan_id=row.plan_id,
                workflow_id=row.workflow_id,
                created_at=datetime.fromtimestamp(row.created_at, UTC),
            )
            for row in rows
        ]
        return Page[ExecutionSummary](items=items, total=total, offset=offset, limit=limit)

    async def get(self, execution_id: str) -> ExecutionOut:
        """The execution's state. Raises NotFound unless it is the caller's."""
        row = await self._owned(execution_id)
        state = await self._state(execution_id)
        redactor = self._services.redactor
        return ExecutionOut(
            id=execution_id,
            status=state.status,
            plan_id=row.plan_id,
            workflow_id=row.workflow_id,
            created_at=datetime.fromtimestamp(row.created_at, UTC),
            steps=[self._step(step_id, record) for step_id, record in state.steps.items()],
            outputs=_mapping(redactor.mask(dict(state.outputs))),
            error=redactor.mask_text(state.error) if state.error else None,
        )

    async def events(self, execution_id: str) -> AsyncIterator[ExecutionEventOut]:
        """The execution's events from its start, live, ending when it ends.

        Ownership is checked now, so a stranger's id is a 404 before anything streams.

        Raises:
            NotFound: Not the caller's execution.
        """
        await self._owned(execution_id)
        return self._stream(execution_id)

    async def _stream(self, execution_id: str) -> AsyncIterator[ExecutionEventOut]:
        redactor = self._services.redactor
        try:
            async for event in self._services.executor.events(self._principal, execution_id):
                yield ExecutionEventOut(
                    execution_id=event.execution_id,
                    kind=event.kind,
                    step_id=event.step_id,
                    detail=_mapping(redactor.mask(dict(event.detail))),
                    at=event.at,
                )
        except ExecutionError:
            return  # the executor lost it (see `_LOST`): the stream simply ends

    async def cancel(self, execution_id: str) -> ExecutionStarted:
        """Ask the execution to stop before its next call; returns where it stands."""
        await self._owned(execution_id)
        await self._services.executor.cancel(self._principal, execution_id)
        state = await self._state(execution_id)
        return ExecutionStarted(id=execution_id, status=state.status)

    async def _owned(self, execution_id: str) -> sa.Row[Any]:
        async with self._services.engine.connect() as db:
            row = (
                await db.execute(
                    sa.select(executions).where(
                        _T.id == execution_id,
                        _T.tenant == self._principal.tenant,
                        _T.owner_id == self._principal.id,
                    )
                )
            ).first()
        if row is None:
            raise NotFound("execution", execution_id)
        return row

    async def _state(self, execution_id: str) -> ExecutionState:
        try:
            return await self._services.executor.state(self._principal, execution_id)
        except ExecutionError:
            return ExecutionState(execution_id, "failed", error=_LOST)

    def _step(self, step_id: str, record: Any) -> StepResult:
        record = record if isinstance(record, dict) else {}
        request = record.get("request")
        summary = None
        if isinstance(request, dict):
            summary = RequestSummary(
                method=str(request.get("method", "")),
                url=self._services.redactor.mask_url(str(request.get("url", ""))),
                status=request.get("status"),
                duration_ms=request.get("duration_ms"),
            )
        error = record.get("error")
        return StepResult(
            id=step_id,
            status=str(record.get("status", "pending")),
            runs=int(record.get("runs", 0)),
            attempts=int(record.get("attempts", 0)),
            request=summary,
            outputs=_mapping(self._services.redactor.mask(record.get("outputs") or {})),
            error=self._services.redactor.mask_text(str(error)) if error else None,
        )


def _mapping(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {"value": value}
