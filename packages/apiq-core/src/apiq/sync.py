"""`SyncApiq`: the `Apiq` path for scripts and plain notebooks, without `async`/`await`.

It runs one event loop in a background thread (an anyio blocking portal) and forwards each
call to an `Apiq` living there, so the SDK's behaviour is exactly the async one; nothing is
implemented twice. Use it as a context manager, or call `close()`.

Example:
    ```python
    from apiq.sync import SyncApiq

    with SyncApiq() as apiq:
        apiq.connect("https://api.example.com/openapi.json", auth={"api_key": "..."})
        plan = apiq.plan("find the available pets and order the first one")
        print(apiq.review(plan).as_json())
        state = apiq.execute(plan, approval=apiq.approve(plan))
    ```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from anyio.from_thread import BlockingPortal, start_blocking_portal

from apiq.client import Apiq
from apiq.models import AuditQuery

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.connections import Connection
    from apiq.execution import Approval
    from apiq.models import AuditEvent, ExecutionEvent, ExecutionState
    from apiq.review import Review
    from apiq.search import SearchHit
    from apiq.workflows import Plan

__all__ = ["SyncApiq"]


class SyncApiq:
    """Blocking twin of `Apiq`: same keywords, same methods, no `await`.

    Args:
        **options: Passed to `Apiq` (or to `Apiq.from_env` with `from_env=True`).
    """

    def __init__(self, *, from_env: bool = False, **options: Any) -> None:
        self._stack = ExitStack()
        self._portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())

        async def build() -> Apiq:
            return Apiq.from_env(**options) if from_env else Apiq(**options)

        self.apiq = self._portal.call(build)
        """The async `Apiq` this forwards to (its attributes: `audit`, `catalogs`, ...)."""

    def connect(self, spec: str, **options: Any) -> Connection:
        """See `Apiq.connect`."""
        return self._portal.call(lambda: self.apiq.connect(spec, **options))

    def load(self, spec: str, **options: Any) -> Catalog:
        """See `Apiq.load`."""
        return self._portal.call(lambda: self.apiq.load(spec, **options))

    def search(self, text: str, *, k: int = 10) -> Sequence[SearchHit]:
        """See `Apiq.search`."""
        return self._portal.call(lambda: self.apiq.search(text, k=k))

    def plan(self, request: str) -> Plan:
        """See `Apiq.plan`."""
        return self._portal.call(self.apiq.plan, request)

    def review(self, plan: Plan) -> Review:
        """See `Apiq.review`."""
        return self.apiq.review(plan)

    def approve(self, plan: Plan, inputs: Mapping[str, Any] | None = None) -> Approval:
        """See `Apiq.approve`."""
        return self._portal.call(lambda: self.apiq.approve(plan, inputs))

    def execute(
        self,
        plan: Plan,
        *,
        inputs: Mapping[str, Any] | None = None,
        approval: Approval | str | None = None,
        on_event: Callable[[ExecutionEvent], Any] | None = None,
    ) -> ExecutionState:
        """See `Apiq.execute`; `on_event` runs in the portal's thread."""
        return self._portal.call(
            lambda: self.apiq.execute(plan, inputs=inputs, approval=approval, on_event=on_event)
        )

    def run(self, request: str, **options: Any) -> ExecutionState:
        """See `Apiq.run`."""
        return self._portal.call(lambda: self.apiq.run(request, **options))

    def audit_events(self, query: AuditQuery | None = None) -> Sequence[AuditEvent]:
        """Audit events matching `query` (the latest 100 by default), newest first."""
        return self._portal.call(lambda: self.apiq.audit.query(query or AuditQuery()))

    def close(self) -> None:
        """Close the `Apiq` and stop the background event loop."""
        try:
            self._portal.call(self.apiq.aclose)
        finally:
            self._stack.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
