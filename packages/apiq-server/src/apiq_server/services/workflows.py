"""`WorkflowService`: saved plans (`apiq_workflows`), their execution, Arazzo in and out.

A workflow is a plan with a name. Its plan is checked against the owner's connections when
it is saved and again when it runs (a connection may have gone or changed in between), and
it runs through the same confirmation gate as a plan from chat. Export writes an Arazzo
1.0.1 document whose `sourceDescriptions` point at the specs the connections registered;
import matches a document's sources to the caller's connections by name, else by that URL.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from apiq.errors import ArazzoInvalid, PlanInvalid, WorkflowError
from apiq.models import AuditEvent
from apiq.workflows import Plan, export_arazzo, import_arazzo
from apiq_adapters.sql.tables import workflows
from apiq_server.auth.current import CurrentUser
from apiq_server.errors import NotFound
from apiq_server.schemas.common import Page
from apiq_server.schemas.executions import ExecutionStarted
from apiq_server.schemas.workflows import (
    WorkflowCreate,
    WorkflowDeleted,
    WorkflowExecute,
    WorkflowImport,
    WorkflowOut,
    WorkflowUpdate,
)
from apiq_server.services.chat import ChatService
from apiq_server.services.executions import ExecutionService
from apiq_server.services.idempotency import idempotent
from apiq_server.wiring import Services

__all__ = ["WorkflowService"]

_T = workflows.c
_DOCUMENT = "the document"


class WorkflowService:
    """One user's workflows.

    Args:
        services: The process's services.
        user: The caller; workflows are theirs only.
    """

    def __init__(self, services: Services, user: CurrentUser) -> None:
        self._services = services
        self._user = user
        self._principal = user.principal
        self._mine = (_T.tenant == self._principal.tenant, _T.owner_id == self._principal.id)

    async def create(self, data: WorkflowCreate, *, idempotency_key: str | None) -> WorkflowOut:
        """Save a stored plan (`planId`) or a plan written out (`plan`).

        Raises:
            NotFound: `planId` is no plan of the caller's.
            PlanInvalid: The plan is malformed or does not fit the caller's connections.
            Conflict: The Idempotency-Key was used for another request.
        """

        async def create() -> WorkflowOut:
            if data.plan_id is not None:
                plan = await ChatService(self._services, self._user).load(data.plan_id)
            else:
                plan = _parse_plan(data.plan)
            return await self._insert(data.name, data.description, plan)

        return await idempotent(
            self._services.engine, owner_id=self._user.id, key=idempotency_key,
            route="POST /api/workflows", payload=data, create=create, model=WorkflowOut,
        )  # fmt: skip

    async def import_document(
        self, data: WorkflowImport, *, idempotency_key: str | None
    ) -> WorkflowOut:
        """Save one workflow of an Arazzo 1.0 document.

        Raises:
            ArazzoInvalid: The document is unreadable, breaks the schema, or holds several
                workflows and `workflowId` chooses none of them.
            PlanInvalid: The workflow does not fit the caller's connections.
        """

        async def create() -> WorkflowOut:
            owned = await self._services.connections.find_all(self._principal)
            plan = _pick(import_arazzo(data.document, source=_DOCUMENT), data.workflow_id)
            by_url = {stored.spec_url: stored.id for stored in owned}
            ids = set(by_url.values())
            renames = {
                source.name: by_url[source.url]
                for source in plan.sources
                if source.name not in ids and source.url in by_url
            }
            if renames:
                imported = import_arazzo(data.document, connections=renames, source=_DOCUMENT)
                plan = _pick(imported, data.workflow_id)
            return await self._insert(data.name, data.description, plan)

        return await idempotent(
            self._services.engine, owner_id=self._user.id, key=idempotency_key,
            route="POST /api/workflows/import", payload=data, create=create, model=WorkflowOut,
        )  # fmt: skip

    async def page(self, *, offset: int, limit: int) -> Page[WorkflowOut]:
        """The caller's workflows, most recently changed first."""
        async with self._services.engine.connect() as db:
            rows = (
                await db.execute(
                    sa.select(workflows).where(*self._mine)
                    .order_by(_T.updated_at.desc(), _T.id.desc()).offset(offset).limit(limit)
                )
            ).all()  # fmt: skip
            total = (
                await db.execute(
                    sa.select(sa.func.count()).select_from(workflows).where(*self._mine)
                )
            ).scalar_one()
        items = [_out(row) for row in rows]
        return Page[WorkflowOut](items=items, total=total, offset=offset, limit=limit)

    async def get(self, workflow_id: str) -> WorkflowOut:
        """The caller's workflow `workflow_id`. Raises NotFound for anyone else's."""
        return _out(await self._row(workflow_id))

    async def update(self, workflow_id: str, data: WorkflowUpdate) -> WorkflowOut:
        """Change the name, description or plan (a new plan is checked as on save)."""
        row = await self._row(workflow_id)
        values: dict[str, Any] = {"updated_at": time.time()}
        if data.name is not None:
            values["name"] = data.name
        if data.description is not None:
            values["description"] = data.description
        if data.plan is not None:
            plan = _parse_plan(data.plan)
            await ExecutionService(self._services, self._user).review(plan)
            values |= {"plan": plan.model_dump_json(by_alias=True), "digest": plan.digest()}
        async with self._services.engine.begin() as db:
            await db.execute(workflows.update().where(_T.id == row.id, *self._mine).values(values))
        await self._audit("workflow.updated", workflow_id, values.get("digest", row.digest))
        return await self.get(workflow_id)

    async def delete(self, workflow_id: str) -> WorkflowDeleted:
        """Delete the caller's workflow (its past executions stay listed)."""
        row = await self._row(workflow_id)
        async with self._services.engine.begin() as db:
            await db.execute(workflows.delete().where(_T.id == row.id, *self._mine))
        await self._audit("workflow.deleted", workflow_id, row.digest)
        return WorkflowDeleted(id=workflow_id)

    async def execute(self, workflow_id: str, data: WorkflowExecute) -> ExecutionStarted:
        """Run the workflow (see `ExecutionService.start`)."""
        plan = Plan.model_validate_json((await self._row(workflow_id)).plan)
        return await ExecutionService(self._services, self._user).start(
            plan, inputs=data.inputs, approve=data.approve, workflow_id=workflow_id
        )

    async def export(self, workflow_id: str) -> dict[str, Any]:
        """The workflow as an Arazzo 1.0.1 document (valid against the Arazzo schema).

        Raises:
            ArazzoInvalid: The plan cannot be written as valid Arazzo (a parameter whose
                place, `in`, is not set).
        """
        row = await self._row(workflow_id)
        plan = Plan.model_validate_json(row.plan)
        # The URL each connection was registered with (a catalog object is shared by every
        # connection of the same document, so its own `source` may name another's URL).
        owned = await self._services.connections.find_all(self._principal)
        registered = {stored.id: stored.spec_url for stored in owned}
        spec_urls = {s.name: registered[s.name] for s in plan.sources if s.name in registered}
        return export_arazzo(plan, spec_urls=spec_urls, title=row.name)

    async def _insert(self, name: str, description: str, plan: Plan) -> WorkflowOut:
        await ExecutionService(self._services, self._user).review(plan)
        workflow_id, now, digest = uuid.uuid4().hex, time.time(), plan.digest()
        async with self._services.engine.begin() as db:
            await db.execute(
                workflows.insert().values(
                    id=workflow_id, tenant=self._principal.tenant, owner_id=self._principal.id,
                    name=name, description=description, plan=plan.model_dump_json(by_alias=True),
                    digest=digest, created_at=now, updated_at=now,
                )
            )  # fmt: skip
        await self._audit("workflow.created", workflow_id, digest)
        return await self.get(workflow_id)

    async def _row(self, workflow_id: str) -> sa.Row[Any]:
        async with self._services.engine.connect() as db:
            found = await db.execute(sa.select(workflows).where(_T.id == workflow_id, *self._mine))
            row = found.first()
        if row is None:
            raise NotFound("workflow", workflow_id)
        return row

    async def _audit(self, action: str, workflow_id: str, digest: str) -> None:
        await self._services.audit.record(
            AuditEvent(
                action=action,
                actor=self._principal.id,
                tenant=self._principal.tenant,
                target=workflow_id,
                detail={"plan_digest": digest},
            )
        )


def _parse_plan(data: dict[str, Any] | None) -> Plan:
    """A plan from its JSON form; PlanInvalid names every malformed field."""
    try:
        return Plan.model_validate(data or {})
    except ValidationError as exc:
        problems = tuple(
            WorkflowError(f"plan.{_loc(error['loc'])}: {error['msg']}", field=_loc(error["loc"]))
            for error in exc.errors(include_url=False, include_input=False)[:20]
        )
        raise PlanInvalid(
            f"the plan is malformed: {'; '.join(str(p) for p in problems)}", problems=problems
        ) from None


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(the plan)"


def _pick(plans: tuple[Plan, ...], workflow_id: str | None) -> Plan:
    ids = [plan.workflow.workflow_id for plan in plans]
    if workflow_id is None and len(plans) == 1:
        return plans[0]
    chosen = [plan for plan in plans if plan.workflow.workflow_id == workflow_id]
    if not chosen:
        asked = f"has no workflow {workflow_id!r}" if workflow_id else "holds several workflows"
        raise ArazzoInvalid(
            f"{_DOCUMENT} {asked}; pass workflowId, one of: {', '.join(ids)}",
            source=_DOCUMENT,
            path="$.workflows",
        )
    return chosen[0]


def _out(row: sa.Row[Any]) -> WorkflowOut:
    plan = Plan.model_validate_json(row.plan)
    return WorkflowOut(
        id=row.id,
        name=row.name,
        description=row.description,
        request=plan.request,
        step_count=len(plan.workflow.steps),
        digest=row.digest,
        plan=plan.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        created_at=datetime.fromtimestamp(row.created_at, UTC),
        updated_at=datetime.fromtimestamp(row.updated_at, UTC),
    )
