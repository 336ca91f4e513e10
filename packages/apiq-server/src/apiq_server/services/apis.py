"""`ApiService`: what the `/api/apis` routes do, for one request.

Create, list, read, update and delete a user's connections; test one (does its server
answer, can its credentials be read); refresh its spec; page or search its endpoints.
Every query filters on the caller's (tenant, owner); another user's id is not found.
Credentials go to the SecretStore and only their fingerprints to the audit log. OAuth
connect (start, callback) is in `apiq_server.services.oauth_connect`.
"""

from __future__ import annotations

import contextlib
import json
import secrets as _secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import anyio
import sqlalchemy as sa

from apiq.egress.policy import display_url
from apiq.errors import ApiqError, PolicyViolation, SpecError, SpecTooLarge
from apiq.models import AuditEvent, JsonValue, Outcome, Principal
from apiq_adapters.sql.tables import connections, endpoints
from apiq_server.errors import Conflict, NotFound
from apiq_server.schemas.apis import (
    ApiCreate,
    ApiDeleted,
    ApiOut,
    ApiStatus,
    ApiTestResult,
    ApiUpdate,
    EndpointOut,
)
from apiq_server.schemas.common import Page
from apiq_server.services.catalogs import upload_ref
from apiq_server.services.connection_auth import (
    StoredConfig,
    StoredScheme,
    check_auth,
    check_schemes,
    forget_schemes,
    mark_connected,
    needs_auth,
    status_of,
    store_schemes,
)
from apiq_server.services.connections import (
    StoredConnection,
    api_out,
    endpoint_out,
    probe,
    server_url_of,
)
from apiq_server.services.idempotency import idempotent

if TYPE_CHECKING:
    from apiq_server.wiring import Services

__all__ = ["ApiService"]

_C = connections.c
_E = endpoints.c


class ApiService:
    """The connection operations of one request.

    Args:
        services: The process's services.
    """

    def __init__(self, services: Services) -> None:
        self._s = services
        self._registry = services.connections

    async def list(self, user: Principal, *, offset: int, limit: int) -> Page[ApiOut]:
        """One page of the user's connections, by name."""
        rows = await self._registry.find_all(user, offset=offset, limit=limit)
        total = await self._registry.count(user)
        return Page[ApiOut](
            items=[api_out(r) for r in rows], total=total, offset=offset, limit=limit
        )

    async def get(self, user: Principal, api_id: str) -> ApiOut:
        """One connection. Raises NotFound (also for another user's id)."""
        return api_out(await self.owned(user, api_id))

    async def owned(self, user: Principal, api_id: str) -> StoredConnection:
        """The user's connection `api_id`. Raises NotFound."""
        stored = await self._registry.find(user, api_id)
        if stored is None:
            raise NotFound("API connection", api_id)
        return stored

    async def create(self, user: Principal, body: ApiCreate, *, key: str | None) -> ApiOut:
        """Register an API (at most `rate_limit_per_minute` a minute per user).

        Raises:
            RateLimited, Conflict (name taken; Idempotency-Key reused otherwise), ServerError
            (credentials that do not fit), SpecError, EgressDenied, ConfigurationError.
        """
        settings = self._s.settings
        await self._s.limiter.hit("registration", user.id, limit=settings.rate_limit_per_minute)
        return await idempotent(
            self._s.engine,
            owner_id=user.id,
            key=key,
            route="POST /api/apis",
            payload=self._payload(body),
            create=lambda: self._create(user, body),
            model=ApiOut,
        )

    async def _create(self, user: Principal, body: ApiCreate) -> ApiOut:
        await self._free_name(user, body.name)
        catalogs = self._registry.catalogs
        entry = None
        if body.spec_content is not None:
            content = body.spec_content.encode("utf-8", "surrogatepass")
            limit = self._s.settings.spec_max_bytes
            if len(content) > limit:
                raise SpecTooLarge(
                    f"the uploaded document is {len(content)} bytes, over the {limit} limit",
                    source="upload",
                    limit=limit,
                    size=len(content),
                )
            catalog, entry = await catalogs.parse_upload(content)
            spec_url = upload_ref(content)
        else:
            spec_url = (body.spec_url or "").strip()
            catalog = await catalogs.fetch(user, spec_url)
        server_url = server_url_of(catalog, spec_url, body.server)
        check_schemes(catalog, body.credentials, body.oauth)
        cid = _secrets.token_hex(12)
        schemes, values = await store_schemes(
            self._s.secrets, user, cid, catalog, body.credentials, body.oauth
        )
        upload = None
        try:
            if entry is not None:
                upload = await catalogs.store_upload(user, cid, entry)
            config = StoredConfig(
                server=body.server,
                schemes=schemes,
                upload=upload,
                title=catalog.title,
                version=catalog.version,
            )
            digest = await catalogs.digest(catalog)
            now = time.time()
            async with self._s.engine.begin() as db:
                await db.execute(
                    connections.insert().values(
                        id=cid,
                        tenant=user.tenant,
                        owner_id=user.id,
                        name=body.name,
                        spec_url=spec_url,
                        server_url=server_url,
                        auth=config.model_dump_json(),
                        status=status_of(catalog, config),
                        status_detail=None,
                        catalog_digest=None,
                        endpoint_count=0,
                        last_used_at=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
                count = await self._registry.snapshot(db, cid, catalog, digest)
        except BaseException as exc:
            with anyio.CancelScope(shield=True), contextlib.suppress(ApiqError):
                # Best effort: a failure here must not hide why the create failed.
                await forget_schemes(self._s.secrets, self._s.oauth, user, cid, schemes)
                if upload is not None:
                    await catalogs.delete_upload(user, cid, upload)
            if isinstance(exc, sa.exc.IntegrityError):
                raise _name_taken(body.name) from None
            raise
        await self._audit(
            user,
            "connection.created",
            cid,
            {
                "name": body.name,
                "spec": display_url(spec_url),
                "endpoints": count,
                "digest": digest,
                "schemes": sorted(schemes),
            },
        )
        await self._audit_credentials(user, cid, schemes, values)
        return api_out(await self.owned(user, cid))

    async def update(self, user: Principal, api_id: str, body: ApiUpdate) -> ApiOut:
        """Rename, choose another server, or replace credentials (each given field).

        Raises:
            NotFound, Conflict (name taken), ServerError, ConfigurationError.
        """
        stored = await self.owned(user, api_id)
        if body.name is not None and body.name != stored.name:
            await self._free_name(user, body.name)
        catalog, _ = await self._registry.catalog(stored)
        config, server_url = stored.config, stored.server_url
        if body.server is not None:
            server_url = server_url_of(catalog, stored.spec_url, body.server)
            config = config.model_copy(update={"server": body.server})
        values: dict[str, str] = {}
        new: dict[str, StoredScheme] = {}
        if body.credentials is not None or body.oauth is not None:
            check_schemes(catalog, body.credentials or {}, body.oauth or {})
            replaced = {
                name: scheme
                for name, scheme in config.schemes.items()
                if (scheme.oauth is None and body.credentials is not None)
                or (scheme.oauth is not None and body.oauth is not None)
            }
            await forget_schemes(self._s.secrets, self._s.oauth, user, api_id, replaced)
            new, values = await store_schemes(
                self._s.secrets, user, api_id, catalog, body.credentials or {}, body.oauth or {}
            )
            kept = {n: s for n, s in config.schemes.items() if n not in replaced}
            config = config.model_copy(update={"schemes": kept | new})
        name = body.name if body.name is not None else stored.name
        try:
            async with self._s.engine.begin() as db:
                await db.execute(
                    connections.update()
                    .where(_C.id == api_id)
                    .values(
                        name=name,
                        server_url=server_url,
                        auth=config.model_dump_json(),
                        status=status_of(catalog, config),
                        status_detail=None,
                        updated_at=time.time(),
                    )
                )
        except sa.exc.IntegrityError:
            raise _name_taken(name) from None
        self._registry.forget(api_id)
        changed = sorted(k for k, v in body.model_dump(exclude_none=True).items() if v is not None)
        await self._audit(user, "connection.updated", api_id, {"fields": cast(Any, changed)})
        await self._audit_credentials(user, api_id, new, values)
        return api_out(await self.owned(user, api_id))

    async def delete(self, user: Principal, api_id: str) -> ApiDeleted:
        """Delete a connection, its endpoints and secrets; revoke OAuth grants (best effort)."""
        stored = await self.owned(user, api_id)
        failed = await forget_schemes(
            self._s.secrets, self._s.oauth, user, api_id, stored.config.schemes
        )
        if stored.config.upload is not None:
            await self._registry.catalogs.delete_upload(user, api_id, stored.config.upload)
        async with self._s.engine.begin() as db:
            await db.execute(endpoints.delete().where(_E.connection_id == api_id))
            await db.execute(connections.delete().where(_C.id == api_id))
        self._registry.forget(api_id)
        detail: dict[str, JsonValue] = {"name": stored.name, "revocation_failed": list(failed)}
        await self._audit(user, "connection.deleted", api_id, detail)
        return ApiDeleted(id=api_id)

    async def test(self, user: Principal, api_id: str) -> ApiTestResult:
        """Does the server URL answer (any HTTP status), and can each credential be used?"""
        stored = await self.owned(user, api_id)
        catalog, _ = await self._registry.catalog(stored)
        reachable, http_status, said = await probe(
            self._s.outbound.caller.client, stored.server_url
        )
        usable, problems = await check_auth(
            self._s.secrets, self._s.oauth, user, api_id, stored.config.schemes
        )
        config = mark_connected(stored.config, usable)
        missing = needs_auth(catalog, {name for name, ok in usable.items() if ok})
        if missing and not problems:
            problems.append("no configured credentials authorize the API's operations")
        status: ApiStatus = (
            "unreachable" if not reachable else "auth_failed" if problems else "ready"
        )
        detail = "; ".join([said, *problems])
        changes: dict[str, Any] = {"status": status, "status_detail": detail[:2000]}
        if config != stored.config:  # an OAuth scheme became (un)usable
            changes["auth"] = config.model_dump_json()
        async with self._s.engine.begin() as db:
            await db.execute(connections.update().where(_C.id == api_id).values(**changes))
        outcome: Outcome = "ok" if status == "ready" else "warning"
        await self._audit(
            user,
            "connection.tested",
            api_id,
            {
                "reachable": reachable,
                "http_status": http_status,
                "auth_ok": not problems,
                "status": status,
            },
            outcome=outcome,
        )
        return ApiTestResult(
            reachable=reachable,
            status=status,
            auth_ok=not problems,
            detail=detail,
            http_status=http_status,
        )

    async def refresh(self, user: Principal, api_id: str) -> ApiOut:
        """Fetch the spec again (bypassing a fresh cache entry) and re-sync the endpoints.

        Raises:
            SpecError, EgressDenied: The spec cannot be had now (the status says so; the
                previous snapshot stays).
        """
        stored = await self.owned(user, api_id)
        catalogs = self._registry.catalogs
        try:
            if stored.config.upload is None:
                catalog = await catalogs.fetch(user, stored.spec_url, refresh=True)
            else:  # an upload has nothing to fetch: its stored document is read again
                catalog, _ = await catalogs.load(
                    user, api_id, stored.spec_url, stored.config.upload, None
                )
            server_url = server_url_of(catalog, stored.spec_url, stored.config.server)
        except (SpecError, PolicyViolation) as exc:
            await self._set_status(api_id, "spec_error", exc.public_message)
            raise
        digest = await catalogs.digest(catalog)
        config = stored.config.model_copy(
            update={"title": catalog.title, "version": catalog.version}
        )
        async with self._s.engine.begin() as db:
            count = await self._registry.snapshot(db, api_id, catalog, digest)
            await db.execute(
                connections.update()
                .where(_C.id == api_id)
                .values(
                    server_url=server_url,
                    auth=config.model_dump_json(),
                    updated_at=time.time(),
                    status=status_of(catalog, config),
                    status_detail=None,
                )
            )
        await self._audit(
            user,
            "connection.refreshed",
            api_id,
            {
                "endpoints_before": stored.endpoint_count,
                "endpoints": count,
                "digest": digest,
                "changed": digest != stored.digest,
            },
        )
        return api_out(await self.owned(user, api_id))

    async def endpoints(
        self, user: Principal, api_id: str, *, q: str | None, offset: int, limit: int
    ) -> Page[EndpointOut]:
        """A page of the connection's endpoints; with `q`, those matching it, best first."""
        stored = await self.owned(user, api_id)
        if q is None or not q.strip():
            items, total = await self._registry.endpoint_page(api_id, offset=offset, limit=limit)
            return Page[EndpointOut](items=items, total=total, offset=offset, limit=limit)
        catalog, digest = await self._registry.catalog(stored)
        hits = await self._registry.catalogs.search(api_id, digest, catalog, q)
        items = [endpoint_out(hit.operation) for hit in hits[offset : offset + limit]]
        return Page[EndpointOut](items=items, total=len(hits), offset=offset, limit=limit)

    async def save_auth(
        self, user: Principal, stored: StoredConnection, config: StoredConfig
    ) -> ApiStatus:
        """Write a connection's new auth configuration; returns its new status."""
        catalog, _ = await self._registry.catalog(stored)
        status = status_of(catalog, config)
        async with self._s.engine.begin() as db:
            await db.execute(
                connections.update()
                .where(_C.id == stored.id, _C.owner_id == user.id)
                .values(
                    auth=config.model_dump_json(),
                    status=status,
                    status_detail=None,
                    updated_at=time.time(),
                )
            )
        self._registry.forget(stored.id)
        return status

    # --- internals ---------------------------------------------------------------------

    async def _free_name(self, user: Principal, name: str) -> None:
        query = sa.select(_C.id).where(
            _C.tenant == user.tenant, _C.owner_id == user.id, _C.name == name
        )
        async with self._s.engine.connect() as db:
            if (await db.execute(query)).first() is not None:
                raise _name_taken(name)

    async def _set_status(self, api_id: str, status: ApiStatus, detail: str | None) -> None:
        async with self._s.engine.begin() as db:
            await db.execute(
                connections.update()
                .where(_C.id == api_id)
                .values(status=status, status_detail=detail)
            )

    def _payload(self, body: ApiCreate) -> bytes:
        """The request as the Idempotency-Key compares it: secrets as keyed fingerprints."""
        data = body.model_dump(mode="json", by_alias=True)
        fingerprint = self._s.redactor.fingerprint
        for name, given in body.credentials.items():
            data["credentials"][name] = {
                "value": fingerprint(given.value.get_secret_value()) if given.value else None,
                "username": given.username,
                "password": fingerprint(given.password.get_secret_value())
                if given.password
                else None,
            }
        for name, client in body.oauth.items():
            secret = client.client_secret
            data["oauth"][name]["clientSecret"] = (
                fingerprint(secret.get_secret_value()) if secret else None
            )
        return json.dumps(data, sort_keys=True).encode()

    async def _audit(
        self,
        user: Principal,
        action: str,
        target: str,
        detail: Mapping[str, JsonValue],
        *,
        outcome: Outcome = "ok",
    ) -> None:
        await self._s.audit.record(
            AuditEvent(
                action=action,
                actor=user.id,
                tenant=user.tenant,
                outcome=outcome,
                target=target,
                detail=detail,
            )
        )

    async def _audit_credentials(
        self,
        user: Principal,
        api_id: str,
        schemes: Mapping[str, StoredScheme],
        values: Mapping[str, str],
    ) -> None:
        for name, scheme in schemes.items():
            detail: dict[str, JsonValue] = {"scheme": name, "kind": scheme.kind}
            if name in values:
                detail["fingerprint"] = self._s.redactor.fingerprint(values[name])
            await self._audit(user, "credential.stored", api_id, detail)


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"you already have an API named {name!r:.80}; choose another name",
        details={"field": "name"},
    )
