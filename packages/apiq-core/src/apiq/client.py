"""`Apiq`: the SDK's front door and its one composition root.

Everything concrete (HTTP client, egress transport, sources, cache, secrets, audit sink,
search index, planner, executor) is chosen here, from keywords; nothing is built at import
time. An `Apiq` owns the HTTP client it creates and closes it; a client passed in is
borrowed and left open. The path: `connect` an API, then `search`, `plan`, `approve`,
`execute` — or `run` for all of it.
"""

from __future__ import annotations

import os
import secrets as _secrets
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import httpx

from apiq.audit import MemoryAuditSink
from apiq.calls import Caller
from apiq.calls.outbound import Outbound
from apiq.catalog import Catalog
from apiq.config import CacheSettings, SpecLimits
from apiq.connections import Connection, ServerChoice
from apiq.connections.credentials import Credential, store_credentials
from apiq.egress import EgressPolicy, egress_client
from apiq.errors import ConfigurationError, ConfirmationRequired, MissingDependencyError
from apiq.execution import Approval, Approvals, Limits, LocalExecutor
from apiq.models import AuditEvent, ExecutionEvent, ExecutionState, Principal
from apiq.planning import OfflinePlanner
from apiq.ports import AuditSink, Planner, SecretStore, SpecCache
from apiq.redaction import Redactor
from apiq.review import Review, review
from apiq.search import CatalogView, OperationIndex, SearchHit
from apiq.secrets import MemorySecretStore
from apiq.specs.cache import MemorySpecCache
from apiq.specs.file_source import FileSpecSource
from apiq.specs.http_source import HttpSpecSource
from apiq.specs.ingest import SpecIngestor
from apiq.workflows import Plan

__all__ = ["Apiq"]


class Apiq:
    """Register APIs, then turn plain English into reviewed, executed API calls.

    Example:
        ```python
        async with Apiq() as apiq:
            await apiq.connect("https://petstore3.swagger.io/api/v3/openapi.json",
                               auth={"api_key": "..."})
            plan = await apiq.plan("find the available pets and order the first one")
            print(plan)                      # review it: state-changing steps are marked
            approval = await apiq.approve(plan)
            state = await apiq.execute(plan, approval=approval, on_event=print)
        ```

    Args:
        principal: who acts; defaults to the single local user of a notebook or script.
        egress: the outbound policy for every request; defaults to public addresses only.
        limits: fetch and parse bounds.
        cache_settings: spec cache TTL and bounds.
        spec_cache: where fetched specs are kept; defaults to an in-memory cache.
        audit: where audit events go; defaults to an in-memory sink (`apiq.audit`).
        secrets: where credentials go; defaults to memory (nothing written to disk).
        planner: turns requests into plans; defaults to the offline `OfflinePlanner`.
        execution_limits: bounds on every execution (steps, time, concurrency).
        redactor: masks secrets in results and audit events; a fresh random key by default.
        http_client: an httpx client to borrow; it must route through
            `apiq.egress.EgressTransport`. By default `Apiq` builds and owns one.
    """

    def __init__(
        self,
        *,
        principal: Principal | None = None,
        egress: EgressPolicy | None = None,
        limits: SpecLimits | None = None,
        cache_settings: CacheSettings | None = None,
        spec_cache: SpecCache | None = None,
        audit: AuditSink | None = None,
        secrets: SecretStore | None = None,
        planner: Planner | None = None,
        execution_limits: Limits | None = None,
        redactor: Redactor | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.principal = principal or Principal.local()
        self.egress = egress or EgressPolicy()
        self.limits = limits or SpecLimits()
        cache_settings = cache_settings or CacheSettings()
        self.spec_cache: SpecCache = spec_cache or MemorySpecCache(cache_settings)
        self.audit: AuditSink = audit or MemoryAuditSink()
        self.secrets: SecretStore = secrets or MemorySecretStore()
        self.planner: Planner = planner or OfflinePlanner()
        self._owns_client = http_client is None
        self._http = http_client or egress_client(self.egress)
        http = HttpSpecSource(self._http, limits=self.limits)
        self._ingestor = SpecIngestor(
            sources={"http": http, "https": http, "file": FileSpecSource(limits=self.limits)},
            cache=self.spec_cache,
            audit=self.audit,
            settings=cache_settings,
            limits=self.limits,
        )
        self._catalogs: dict[str, Catalog] = {}
        self._connections: dict[str, tuple[Connection, Catalog]] = {}
        self._index = OperationIndex()
        self.approvals = Approvals()
        redactor = redactor or Redactor(hmac_key=_secrets.token_bytes(32))
        outbound = Outbound(Caller(self._http), secrets=self.secrets, audit=self.audit,
                            redactor=redactor)  # fmt: skip
        self.executor = LocalExecutor(
            outbound, self, approvals=self.approvals, audit=self.audit,
            limits=execution_limits or Limits(),
        )  # fmt: skip

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> Apiq:
        """Build from the documented environment variables; keywords win."""
        settings: dict[str, Any] = {
            "egress": EgressPolicy.from_env(environ),
            "limits": SpecLimits.from_env(environ),
            "cache_settings": CacheSettings.from_env(environ),
        }
        if "planner" not in overrides and any(environ.get(v) for v in _LLM_VARIABLES):
            settings["planner"] = llm_planner(environ)
        return cls(**{**settings, **overrides})

    @property
    def catalogs(self) -> Mapping[str, Catalog]:
        """Every catalog loaded so far, by name."""
        return dict(self._catalogs)

    @property
    def connections(self) -> Mapping[str, Connection]:
        """Every connection made so far, by id."""
        return {cid: connection for cid, (connection, _) in self._connections.items()}

    def catalog(self, name: str) -> Catalog:
        """The catalog loaded under `name`. Raises ConfigurationError when there is none."""
        try:
            return self._catalogs[name]
        except KeyError:
            known = ", ".join(sorted(self._catalogs)) or "none yet; call connect() or load()"
            raise ConfigurationError(f"no catalog {name!r} (loaded: {known})") from None

    async def load(
        self, spec: str | os.PathLike[str], *, name: str | None = None, refresh: bool = False
    ) -> Catalog:
        """Fetch (or read), cache and parse an API description into a catalog.

        Args:
            spec: an http(s) URL or a local path (`.json`, `.yaml`, `.yml`, optionally `.gz`).
            name: the catalog's name; defaults to a slug of the spec's title.
            refresh: revalidate with the source even when the cached copy is fresh.

        Raises:
            SpecError: the spec could not be fetched or parsed (see the subclass).
            EgressDenied: the URL, or a redirect, points somewhere the policy refuses.
        """
        catalog = await self._ingestor.load(
            self.principal, os.fspath(spec), name=name, refresh=refresh
        )
        self._catalogs[catalog.name] = catalog
        return catalog

    async def connect(
        self,
        spec: str | os.PathLike[str] | Catalog,
        *,
        name: str | None = None,
        auth: Mapping[str, Credential] | None = None,
        server: ServerChoice | None = None,
        base_url: str | None = None,
    ) -> Connection:
        """Load an API and make it callable: its server, its credentials, its search entries.

        Args:
            spec: as for `load`, or a catalog `load` already returned.
            name: the connection id (and catalog name); defaults to a slug of the title.
            auth: security scheme name -> credential (a key or token string, or a
                `(username, password)` pair); stored in `secrets`, never kept here.
            server: which of the spec's servers, with variables; the first by default.
            base_url: call this base URL instead of the spec's servers.

        Raises:
            SpecError, EgressDenied: as for `load`.
            ConfigurationError: no usable server URL, or a credential that does not fit.
        """
        catalog = spec if isinstance(spec, Catalog) else await self.load(spec, name=name)
        choice = server or ServerChoice(base_url=base_url or _relative_base(catalog))
        resolved = choice.resolve(catalog)
        configs = await store_credentials(
            self.secrets, self.principal, catalog.name, catalog, auth or {}
        )
        connection = Connection(
            catalog.name, self.principal.tenant, self.principal.id, catalog.name, resolved, configs
        )
        self._connections[connection.id] = (connection, catalog)
        self._index.add(connection.id, catalog)
        return connection

    async def resolve(self, principal: Principal, connection_id: str) -> tuple[Connection, Catalog]:
        """The connection `connection_id` of `principal` (`apiq.execution.Connections`)."""
        found = self._connections.get(connection_id)
        if found is None or not found[0].owned_by(principal):
            known = ", ".join(sorted(self._connections)) or "none yet; call connect()"
            raise ConfigurationError(f"no connection {connection_id!r} (connected: {known})")
        return found

    def view(self) -> CatalogView:
        """What the principal may plan over: their connections' catalogs and search."""
        return self._index.view({cid: cat for cid, (_, cat) in self._connections.items()})

    async def search(self, text: str, *, k: int = 10) -> Sequence[SearchHit]:
        """The operations of the connected APIs that best match `text`, best first."""
        return self.view().search(text, k=k)

    async def plan(self, request: str) -> Plan:
        """A validated plan for `request` (nothing is sent). Raises PlanningError."""
        if not self._connections:
            raise ConfigurationError("connect an API first: await apiq.connect(spec, auth=...)")
        plan = await self.planner.plan(self.principal, request, self.view())
        await self._record("plan.created", plan)
        return plan

    def review(self, plan: Plan) -> Review:
        """`plan` laid out for approval: each step's method, full URL, arguments, and
        whether it changes state — from the connections, not from the plan's own say."""
        return review(plan, self._connections)

    async def approve(self, plan: Plan, inputs: Mapping[str, Any] | None = None) -> Approval:
        """Approve exactly this plan with these inputs, once, for a limited time."""
        approval = await self.approvals.grant(self.principal, plan, inputs)
        await self._record("plan.approved", plan, digest=approval.plan_digest)
        return approval

    async def _record(self, action: str, plan: Plan, *, digest: str | None = None) -> None:
        steps = [f"{source}.{op}" for source, op in map(plan.target, plan.workflow.steps)]
        detail = {"plan_digest": digest or plan.digest(), "steps": steps}
        await self.audit.record(
            AuditEvent(
                action=action,
                actor=self.principal.id,
                tenant=self.principal.tenant,
                target=plan.workflow.workflow_id,
                detail=detail,
            )
        )

    async def execute(
        self,
        plan: Plan,
        *,
        inputs: Mapping[str, Any] | None = None,
        approval: Approval | str | None = None,
        on_event: Callable[[ExecutionEvent], Any] | None = None,
    ) -> ExecutionState:
        """Run `plan`; `on_event` sees each step as it happens. Returns the final state.

        Raises:
            ConfirmationRequired: the plan changes state and `approval` does not fit it.
            PlanInvalid, ConfigurationError: the plan does not fit the connections.
        """
        token = approval.token if isinstance(approval, Approval) else approval
        return await self.executor.run(
            self.principal, plan, inputs=inputs, approval=token, on_event=on_event
        )

    async def run(
        self,
        request: str,
        *,
        approve: bool | Callable[[Plan], bool] = False,
        inputs: Mapping[str, Any] | None = None,
        on_event: Callable[[ExecutionEvent], Any] | None = None,
    ) -> ExecutionState:
        """Plan `request`, ask for approval when it changes state, execute it.

        Args:
            approve: True approves any plan; a callable is shown the plan and decides;
                False refuses plans that change state (read-only plans run).

        Raises:
            PlanningError: no plan could be made.
            ConfirmationRequired: the plan changes state and was not approved; nothing sent.
        """
        plan = await self.plan(request)
        approval = None
        if self.review(plan).needs_approval:
            approved = approve(plan) if callable(approve) else approve
            if not approved:
                raise ConfirmationRequired(
                    "the plan changes state and was not approved; review it with "
                    "apiq.plan(...) and pass approve=True or an approval callback"
                )
            approval = await self.approve(plan, inputs)
        return await self.execute(plan, inputs=inputs, approval=approval, on_event=on_event)

    async def aclose(self) -> None:
        """Close what this instance owns (the HTTP client it built, the planner's client)."""
        if self._owns_client:
            await self._http.aclose()
        closer = getattr(self.planner, "aclose", None)
        if closer is not None:
            await closer()  # a planner closes only a client it made itself

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


_LLM_VARIABLES = ("OPENAI_API_KEY", "APIQ_LLM_BASE_URL")
PLANNER_ENTRY_POINTS = "apiq.planners"
"""Entry-point group of planner factories `(environ) -> Planner`; `apiq-adapters` adds
`openai`. Core finds them by name, so it never imports an adapter."""


def llm_planner(environ: Mapping[str, str]) -> Planner:
    """The language-model planner the `apiq.planners` entry point `openai` makes from
    `environ`.

    Raises:
        MissingDependencyError: No such planner is installed.
    """
    found = entry_points(group=PLANNER_ENTRY_POINTS, name="openai")
    if not found:
        raise MissingDependencyError(
            f"{' or '.join(_LLM_VARIABLES)} is set, but no language-model planner is "
            "installed: pip install 'apiq-adapters[openai]' (or unset them to plan offline)"
        )
    factory = next(iter(found)).load()
    planner: Planner = factory(environ)
    return planner


def _relative_base(catalog: Catalog) -> str | None:
    """The first server URL resolved against the spec's own URL when it is relative.

    OpenAPI says a relative server URL is relative to where the document was served; a
    document read from a file has no such place, so it needs `base_url`.
    """
    ref = catalog.source
    if not catalog.servers or urlsplit(catalog.servers[0].url).scheme:
        return None
    if urlsplit(ref).scheme in ("http", "https"):
        return urljoin(ref, catalog.servers[0].url)
    return None
