"""Running plans: the confirmation gate, the runner and the in-process executor.

`LocalExecutor` runs approved plans in this process; `apiq_adapters.dbos.DbosExecutor`
runs the same `Runner` durably. Both admit a plan the same way (`admit`): the principal's
own connections, a plan that validates, inputs that fit, an approval when state changes.
"""

from __future__ import annotations

from apiq.execution.admission import Admitted, Connections, admit
from apiq.execution.approval import Approval, ApprovalLedger, Approvals, changing_steps
from apiq.execution.local import LocalExecutor
from apiq.execution.outbound_call import OutboundStepCall
from apiq.execution.runner import Runner
from apiq.execution.steps import Limits, RunResult, StepCall, StepRequest, StepResponse

__all__ = [
    "Admitted",
    "Approval",
    "ApprovalLedger",
    "Approvals",
    "Connections",
    "Limits",
    "LocalExecutor",
    "OutboundStepCall",
    "RunResult",
    "Runner",
    "StepCall",
    "StepRequest",
    "StepResponse",
    "admit",
    "changing_steps",
]
