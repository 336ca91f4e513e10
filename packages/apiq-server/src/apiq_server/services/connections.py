"""`ConnectionService`: every user's API connections, durably in SQL, for any process.

This is what `Apiq.connect` / `resolve` / `view` do for one notebook user, done per user
over the database: a connection row names its spec (URL, or an uploaded document), the
chosen server, its auth configuration (secret *names*; values are in the SecretStore) and
the digest of the catalog snapshot whose operations are rows of `apiq_endpoints`. Any
server or worker process resolves any connection from that: the executor through
`resolve` (the `apiq.execution.admission.Connections` port), planners through `view`.
The routes' operations on connections (create, update, test, ...) are in
`apiq_server.services.apis`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import anyio
import httpx
import sqlalchemy as sa
from cachetools import LRUCache
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from apiq.catalog import Catalog, Operation
from apiq.connections import Connection, OAuthConfig, ServerChoice
from apiq.egress.policy import display_url
from apiq.errors import ApiqError, ConfigurationError, PolicyViolation, SpecError
from apiq.models import AuditEvent, Principal
from apiq.ports import AuditSink, SecretStore
from apiq.search import CatalogView
from apiq.specs.ingest import SpecIngestor
from apiq_adapters.sql.tables import connections, endpoints
from apiq_server.errors import ServerError
from apiq_server.schemas.apis import (
    ApiOut,
    ApiStatus,
    CredentialOut,
    EndpointOut,
    ServerIn,
    ServerOut,
)
from apiq_server.services.catalogs import CatalogCache, relative_base
from apiq_server.services.connection_auth import StoredConfig

__all__ = [
    "LAST_USED_EVERY_S",
    "PROBE_TIMEOUT_S",
    "ConnectionService",
    "OAuthConfigs",
    "StoredConnection",
    "api_out",
    "endpoint_out",
    "probe",
    "server_url_of",
]

LAST_USED_EVERY_S = 60.0
"""`last_used_at` is written at most this often per connection (a resolve is frequent)."""
PROBE_TIMEOUT_S = 10.0
"""How long `probe` waits for an API's server to answer."""

_C = connections.c


class OAuthConfigs(dict[str, dict[str, OAuthConfig]]):
    """Connection id -> scheme -> `OAuthConfig` of the connections resolved in this process.

    Always true, even when empty: `Outbound` keeps `oauth_configs or {}`, and an empty dict
    there would be swapped for a fresh one that this service never fills.
    """

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class StoredConnection:
    """One row of `apiq_connections`, its auth column parsed."""

    id: str
    tenant: str
    owner_id: str
    name: str
    spec_url: str
    server_url: str
    config: StoredConfig
    status: str
    status_detail: str | None
    digest: str | None
    endpoint_count: int
    last_used_at: float | None
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> StoredConnection:
        """Read a selected row."""
        return cls(
            id=row["id"],
            tenant=row["tenant"],
            owner_id=row["owner_id"],
            name=row["name"],
            spec_url=row["spec_url"],
            server_url=row["server_url"],
            config=StoredConfig.model_validate_json(row["auth"]),
            status=row["status"],
            status_detail=row["status_detail"],
            digest=row["catalog_digest"],
            endpoint_count=row["endpoint_count"],
            last_used_at=row["last_used_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    @property
    def owner(self) -> Principal:
        """The owning principal (whose secrets hold the credentials)."""
        return Principal(id=self.owner_id, tenant=self.tenant)

    def connection(self, catalog: Catalog) -> Connection:
        """The SDK connection over `catalog`."""
        return Connection(
            self.id,
            self.tenant,
            self.owner_id,
            catalog.name,
            self.server_url,
            self.config.auth_configs(),
        )


class ConnectionService:
    """Resolves connections and builds catalog views for principals (one per process).

    Args:
        engine: The database of connections and endpoints.
        ingestor: Loads spec URLs through the egress policy and the shared spec cache.
        secrets: Holds credentials and uploaded documents.
        audit: Where the service's own events go.
        clock: Epoch seconds now.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ingestor: SpecIngestor,
        secrets: SecretStore,
        audit: AuditSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.secrets = secrets
        self.audit = audit
        self.catalogs = CatalogCache(ingestor, secrets)
        self.oauth_configs = OAuthConfigs()
        """What `Outbound` reads to attach OAuth tokens (filled by `resolve`)."""
        self._clock = clock
        self._views: LRUCache[tuple[str, str], tuple[frozenset[tuple[str, str]], CatalogView]]
        self._views = LRUCache(maxsize=1024)

    def __repr__(self) -> str:
        return f"ConnectionService(engine={self.engine.url!r})"

    async def resolve(self, principal: Principal, connection_id: str) -> tuple[Connection, Catalog]:
        """The principal's own connection `connection_id` and its catalog.

        Raises:
            ConfigurationError: The principal has no such connection.
            SpecError, EgressDenied: Its spec can no longer be loaded.
        """
        stored = await self.find(principal, connection_id)
        if stored is None:
            raise ConfigurationError(
                f"no connection {connection_id!r:.80} of this user; list them with GET /api/apis"
            )
        catalog, _ = await self.catalog(stored)
        self.oauth_configs[stored.id] = stored.config.oauth_configs()
        await self._touch(stored)
        return stored.connection(catalog), catalog

    async def view(self, principal: Principal) -> CatalogView:
        """Search and lookups over the principal's connections (what a planner may use).

        A connection whose spec cannot be loaded now is left out, not fatal: the others
        still plan. Views are cached per principal until a connection or digest changes.
        """
        rows = await self.find_all(principal)
        key = (principal.tenant, principal.id)
        wanted = frozenset((row.id, row.digest or "") for row in rows)
        cached = self._views.get(key)
        if cached is not None and cached[0] == wanted:
            return cached[1]
        loaded: dict[str, tuple[str, Catalog]] = {}
        for row in rows:
            try:
                catalog, digest = await self.catalog(row)
            except (SpecError, PolicyViolation):
                continue
            loaded[row.id] = (digest, catalog)
        view = await self.catalogs.view(loaded)
        self._views[key] = (frozenset((cid, d) for cid, (d, _) in loaded.items()), view)
        return view

    async def find(self, principal: Principal, connection_id: str) -> StoredConnection | None:
        """The principal's connection `connection_id`, or None (also for another's id)."""
        query = sa.select(connections).where(*_owned(principal), _C.id == connection_id)
        async with self.engine.connect() as db:
            row = (await db.execute(query)).mappings().first()
        return StoredConnection.from_row(row) if row is not None else None

    async def find_all(
        self, principal: Principal, *, offset: int = 0, limit: int | None = None
    ) -> list[StoredConnection]:
        """The principal's connections by name."""
        query = sa.select(connections).where(*_owned(principal)).order_by(_C.name, _C.id)
        query = query.offset(offset).limit(limit)
        async with self.engine.connect() as db:
            rows = (await db.execute(query)).mappings().all()
        return [StoredConnection.from_row(row) for row in rows]

    async def count(self, principal: Principal) -> int:
        """How many connections the principal has."""
        query = sa.select(sa.func.count()).select_from(connections).where(*_owned(principal))
        async with self.engine.connect() as db:
            return int((await db.execute(query)).scalar_one())

    async def catalog(self, stored: StoredConnection) -> tuple[Catalog, str]:
        """The connection's catalog and digest; re-syncs its endpoints when the document
        changed upstream since the snapshot (another process then finds the new digest)."""
        catalog, digest = await self.catalogs.load(
            stored.owner, stored.id, stored.spec_url, stored.config.upload, stored.digest
        )
        if digest != stored.digest:
            try:
                async with self.engine.begin() as db:
                    count = await self.snapshot(db, stored.id, catalog, digest)
            except sa.exc.IntegrityError:
                return catalog, digest  # another process re-synced it at the same moment
            event = AuditEvent(
                action="connection.resynced", actor=stored.owner_id, tenant=stored.tenant,
                target=stored.id, detail={"digest": digest, "endpoints": count},
            )  # fmt: skip
            await self.audit.record(event)
        return catalog, digest

    async def snapshot(
        self, db: AsyncConnection, connection_id: str, catalog: Catalog, digest: str
    ) -> int:
        """Replace the connection's endpoint rows by `catalog`'s operations; returns how many."""
        rows = [
            {
                "connection_id": connection_id,
                "operation_id": op.operation_id,
                "method": op.method.upper(),
                "path": op.path,
                "summary": op.summary,
                "tags": json.dumps(list(op.tags)),
                "changes_state": op.changes_state,
            }
            for op in catalog.operations
            if len(op.operation_id) <= _OPERATION_ID_MAX
        ]
        await db.execute(endpoints.delete().where(endpoints.c.connection_id == connection_id))
        if rows:
            await db.execute(endpoints.insert(), rows)
        await db.execute(
            connections.update()
            .where(_C.id == connection_id)
            .values(endpoint_count=len(rows), catalog_digest=digest)
        )
        return len(rows)

    async def endpoint_page(
        self, connection_id: str, *, offset: int, limit: int
    ) -> tuple[list[EndpointOut], int]:
        """One page of the connection's endpoint rows by path, and how many there are."""
        where = endpoints.c.connection_id == connection_id
        query = sa.select(endpoints).where(where).order_by(endpoints.c.path, endpoints.c.method)
        total = sa.select(sa.func.count()).select_from(endpoints).where(where)
        async with self.engine.connect() as db:
            rows = (await db.execute(query.offset(offset).limit(limit))).mappings().all()
            count = int((await db.execute(total)).scalar_one())
        items = [
            EndpointOut(
                operation_id=row["operation_id"],
                method=row["method"],
                path=row["path"],
                summary=row["summary"],
                tags=json.loads(row["tags"]),
                changes_state=row["changes_state"],
            )
            for row in rows
        ]
        return items, count

    def forget(self, connection_id: str) -> None:
        """Drop what this process keeps of a connection that changed or was deleted."""
        self.oauth_configs.pop(connection_id, None)

    async def _touch(self, stored: StoredConnection) -> None:
        now = self._clock()
        if stored.last_used_at is not None and now - stored.last_used_at < LAST_USED_EVERY_S:
            return
        async with self.engine.begin() as db:
            await db.execute(
                connections.update().where(_C.id == stored.id).values(last_used_at=now)
            )


def server_url_of(catalog: Catalog, spec_url: str, server: ServerIn) -> str:
    """The absolute base URL a server choice gives (a relative server against the spec URL).

    Raises:
        ServerError: Index out of range, a bad variable, or no absolute URL (400, saying
            which servers the spec lists).
    """
    base = server.base_url
    if base is None and not server.variables and 0 <= server.index < len(catalog.servers):
        base = relative_base(catalog.servers[server.index].url, spec_url)
    choice = ServerChoice(index=server.index, variables=server.variables, base_url=base)
    try:
        return choice.resolve(catalog)
    except ConfigurationError as exc:
        raise ServerError(f"server: {exc}") from None


async def probe(client: httpx.AsyncClient, url: str) -> tuple[bool, int | None, str]:
    """GET `url` without credentials through the egress client: (reachable, HTTP status,
    what happened). Any HTTP answer, whatever its status, means reachable."""
    try:
        with anyio.fail_after(PROBE_TIMEOUT_S):
            request = client.build_request("GET", url)
            response = await client.send(request, stream=True, follow_redirects=False)
            await response.aclose()
    except PolicyViolation:
        return False, None, "the egress policy refuses the server URL"
    except TimeoutError:
        return False, None, f"the server did not answer within {PROBE_TIMEOUT_S:.0f} s"
    except (httpx.HTTPError, ApiqError) as exc:
        return False, None, f"the server could not be reached ({type(exc).__name__})"
    return True, response.status_code, f"the server answered HTTP {response.status_code}"


def api_out(stored: StoredConnection) -> ApiOut:
    """The response shape of a stored connection (no secret, no ciphertext)."""
    config = stored.config
    uploaded = config.upload is not None
    return ApiOut(
        id=stored.id,
        name=stored.name,
        spec_url=stored.spec_url if uploaded else display_url(stored.spec_url),
        title=config.title,
        version=config.version,
        server=ServerOut(
            url=display_url(stored.server_url),
            index=config.server.index,
            variables=dict(config.server.variables),
            base_url=display_url(config.server.base_url) if config.server.base_url else None,
        ),
        credentials=[
            CredentialOut(
                scheme=name,
                kind=scheme.kind,
                hint=scheme.hint,
                connected=scheme.oauth.connected if scheme.oauth else None,
            )
            for name, scheme in sorted(config.schemes.items())
        ],
        status=cast(ApiStatus, stored.status),
        status_detail=stored.status_detail,
        endpoint_count=stored.endpoint_count,
        last_used=_time(stored.last_used_at),
        created_at=datetime.fromtimestamp(stored.created_at, UTC),
        updated_at=datetime.fromtimestamp(stored.updated_at, UTC),
    )


def _time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def endpoint_out(operation: Operation) -> EndpointOut:
    """The response shape of one operation."""
    return EndpointOut(
        operation_id=operation.operation_id,
        method=operation.method.upper(),
        path=operation.path,
        summary=operation.summary,
        tags=list(operation.tags),
        changes_state=operation.changes_state,
    )


_OPERATION_ID_MAX = 200
"""The width of `apiq_endpoints.operation_id`: longer ids are left out of the snapshot
(PostgreSQL would refuse the row)."""


def _owned(principal: Principal) -> Sequence[sa.ColumnElement[bool]]:
    return (_C.tenant == principal.tenant, _C.owner_id == principal.id)
