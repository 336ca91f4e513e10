"""`ChatService`: plain English -> a stored, reviewed plan; and running a stored plan.

The planner sees only the caller's own connections. Each plan is checked against those
connections and stored in `apiq_plans` (owner, request, plan JSON, digest) before the
user sees it; what the user reviews — each step's method, full URL and whether it changes
state — comes from the connections and their specs (`apiq.review`), never from the plan.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from apiq.errors import PlanningError
from apiq.models import AuditEvent
from apiq.review import Review
from apiq.workflows import Plan
from apiq_adapters.sql.tables import plans
from apiq_server.auth.current import CurrentUser
from apiq_server.errors import NotFound
from apiq_server.schemas.chat import PlanOut, PlanStep
from apiq_server.schemas.executions import ExecutionStarted
from apiq_server.services.executions import ExecutionService
from apiq_server.wiring import Services

__all__ = ["ChatService", "plan_steps"]

_T = plans.c


class ChatService:
    """One user's plans.

    Args:
        services: The process's services.
        user: The caller; plans are theirs only.
    """

    def __init__(self, services: Services, user: CurrentUser) -> None:
        self._services = services
        self._user = user
        self._principal = user.principal

    async def plan(self, message: str) -> PlanOut:
        """Plan `message` over the caller's connections and store the plan; nothing is sent.

        Raises:
            RateLimited: Too many planning requests this minute.
            PlanningError: No plan fits the request (the message names the closest
                operations), or the caller has no connection yet.
            PlanInvalid: The planner's plan does not fit the connections.
        """
        services, principal = self._services, self._principal
        limit = services.settings.rate_limit_per_minute
        await services.limiter.hit("planning", self._user.id, limit=limit)
        view = await services.connections.view(principal)
        if not len(view):
            raise PlanningError("connect an API first (POST /api/apis), then ask again")
        plan = await services.planner.plan(principal, message, view)
        laid_out = await ExecutionService(services, self._user).review(plan)
        plan_id, digest, now = uuid.uuid4().hex, plan.digest(), time.time()
        async with services.engine.begin() as db:
            await db.execute(
                plans.insert().values(
                    id=plan_id, tenant=principal.tenant, owner_id=principal.id, request=message,
                    plan=plan.model_dump_json(by_alias=True), digest=digest, created_at=now,
                )
            )  # fmt: skip
        await services.audit.record(
            AuditEvent(
                action="plan.created",
                actor=principal.id,
                tenant=principal.tenant,
                target=plan_id,
                detail={
                    "plan_digest": digest,
                    "steps": [f"{step.source}.{step.operation_id}" for step in laid_out.steps],
                    "needs_approval": laid_out.needs_approval,
                },
            )
        )
        return PlanOut(
            id=plan_id,
            request=message,
            confidence=round(plan.confidence, 3),
            needs_approval=laid_out.needs_approval,
            inputs=dict(plan.workflow.inputs),
            steps=plan_steps(laid_out),
            digest=digest,
            created_at=datetime.fromtimestamp(now, UTC),
        )

    async def execute(
        self, plan_id: str, *, approve: bool, inputs: Mapping[str, Any] | None
    ) -> ExecutionStarted:
        """Run the stored plan `plan_id` (see `ExecutionService.start`).

        Raises:
            NotFound: No such plan of the caller's.
            ConfirmationRequired: The plan changes state and `approve` is not true.
        """
        plan = await self.load(plan_id)
        return await ExecutionService(self._services, self._user).start(
            plan, inputs=inputs, approve=approve, plan_id=plan_id
        )

    async def load(self, plan_id: str) -> Plan:
        """The caller's stored plan `plan_id`. Raises NotFound for anyone else's."""
        mine = (_T.id == plan_id, _T.tenant == self._principal.tenant)
        async with self._services.engine.connect() as db:
            found = await db.execute(
                sa.select(_T.plan).where(*mine, _T.owner_id == self._principal.id)
            )
            text = found.scalar_one_or_none()
        if text is None:
            raise NotFound("plan", plan_id)
        return Plan.model_validate_json(text)


def plan_steps(laid_out: Review) -> list[PlanStep]:
    """The steps of a review as the API shows them."""
    return [
        PlanStep(
            id=step.step_id,
            source=step.source,
            operation=step.operation_id,
            method=step.method,
            url=step.url,
            arguments=step.arguments,
            changes_state=step.changes_state,
            rationale=step.rationale,
            for_each=step.for_each,
        )
        for step in laid_out.steps
    ]
