"""What every executor checks before a plan may start, in one place.

`admit` resolves each connection the plan names for the principal (their own only),
validates the plan against those catalogs and the inputs against the workflow's input
schema, and redeems the approval when any step changes state. It sends nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from apiq.execution.approval import changing_steps
from apiq.models import AuditEvent
from apiq.workflows.checks import check_inputs, check_plan

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.connections import Connection
    from apiq.execution.approval import ApprovalLedger
    from apiq.models import Principal
    from apiq.ports import AuditSink
    from apiq.workflows.model import Plan

__all__ = ["Admitted", "Connections", "admit", "audit_finished", "open_execution"]


class Connections(Protocol):
    """Finds a principal's own connection, and its catalog, by connection id."""

    async def resolve(self, principal: Principal, connection_id: str) -> tuple[Connection, Catalog]:
        """Raises ConfigurationError when the principal has no such connection."""
        ...


@dataclass(frozen=True, slots=True)
class Admitted:
    """A plan cleared to run."""

    digest: str
    inputs: dict[str, Any]
    connections: Mapping[str, tuple[Connection, Catalog]]
    """Source name -> (connection, catalog)."""

    @property
    def catalogs(self) -> dict[str, Catalog]:
        """Source name -> catalog."""
        return {name: catalog for name, (_, catalog) in self.connections.items()}


async def admit(
    principal: Principal,
    plan: Plan,
    inputs: Mapping[str, Any] | None,
    approval: str | None,
    *,
    connections: Connections,
    approvals: ApprovalLedger,
) -> Admitted:
    """Clear `plan` to run with `inputs` for `principal`.

    Raises:
        ConfigurationError: A source names no connection of the principal.
        WorkflowError: The plan or the inputs do not validate (naming step and field).
        ConfirmationRequired: A step changes state and `approval` does not redeem.
    """
    resolved = {s.name: await connections.resolve(principal, s.name) for s in plan.sources}
    admitted = Admitted(plan.digest(dict(inputs or {})), dict(inputs or {}), resolved)
    catalogs = admitted.catalogs
    check_plan(plan, catalogs)
    check_inputs(plan.workflow, admitted.inputs)
    if changing_steps(plan, catalogs):
        await approvals.redeem(principal, plan, admitted.inputs, approval)
    return admitted


async def open_execution(
    principal: Principal,
    plan: Plan,
    inputs: Mapping[str, Any] | None,
    approval: str | None,
    *,
    connections: Connections,
    approvals: ApprovalLedger,
    audit: AuditSink,
) -> tuple[str, Admitted]:
    """`admit` the plan, then give it an execution id and audit `execution.started`.

    Raises:
        As `admit`; and whatever the audit sink raises: an execution that cannot be
        audited does not start.
    """
    admitted = await admit(
        principal, plan, inputs, approval, connections=connections, approvals=approvals
    )
    execution_id = uuid.uuid4().hex
    await audit.record(
        AuditEvent(
            action="execution.started",
            actor=principal.id,
            tenant=principal.tenant,
            target=execution_id,
            detail={"plan_digest": admitted.digest, "steps": len(plan.workflow.steps)},
        )
    )
    return execution_id, admitted


async def audit_finished(
    audit: AuditSink, principal: Principal, execution_id: str, status: str, error: str | None
) -> None:
    """Audit `execution.finished` with its status and error (every executor, one shape)."""
    await audit.record(
        AuditEvent(
            action="execution.finished",
            actor=principal.id,
            tenant=principal.tenant,
            outcome="ok" if status == "succeeded" else "error",
            target=execution_id,
            detail={"status": status, "error": error},
        )
    )
