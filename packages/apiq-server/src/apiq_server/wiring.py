"""`build_services`: the server's one composition root.

Everything concrete the server uses is chosen here, from `Settings`: the database engine,
the SQL adapters of the SDK's ports, Redis when configured, the HTTP client behind the
egress policy, the planner and the executor. The lifespan of the app owns what this
builds and closes it in reverse order (`AsyncExitStack`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from apiq.calls import Caller
from apiq.calls.outbound import Outbound
from apiq.client import llm_planner
from apiq.connections import OAuthClient
from apiq.egress import egress_client
from apiq.execution import Limits, LocalExecutor
from apiq.planning import OfflinePlanner
from apiq.ports import Executor, Planner, SpecCache
from apiq.redaction import Redactor
from apiq.specs.http_source import HttpSpecSource
from apiq.specs.ingest import SpecIngestor
from apiq_adapters.sql import SqlApprovals, SqlAuditSink, SqlSecretStore, SqlSpecCache, open_engine
from apiq_adapters.sql.migrate import upgrade
from apiq_server.auth.sessions import SessionStore
from apiq_server.ratelimit import RateLimiter, open_rate_limiter
from apiq_server.services.connections import ConnectionService
from apiq_server.settings import Settings

__all__ = ["Services", "build_services"]


@dataclass(frozen=True, slots=True)
class Services:
    """What route handlers reach through dependency injection; built once per process."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionStore
    audit: SqlAuditSink
    secrets: SqlSecretStore
    spec_cache: SpecCache
    redactor: Redactor
    ingestor: SpecIngestor
    outbound: Outbound
    oauth: OAuthClient
    planner: Planner
    approvals: SqlApprovals
    connections: ConnectionService
    executor: Executor
    limiter: RateLimiter
    redis: Any | None
    """The Redis client when `APIQ_REDIS_URL` is set (health reports it)."""


@asynccontextmanager
async def build_services(settings: Settings) -> AsyncIterator[Services]:
    """Open every backend `settings` names; close them all on exit.

    Raises:
        ConfigurationError: A setting is missing or invalid (production without a key, ...).
    """
    keyring = settings.keyring()
    async with AsyncExitStack() as stack:
        engine = open_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        if settings.mode != "production":
            await upgrade(settings.database_url)  # production runs `apiq db upgrade` itself
        redis, spec_cache, limiter = await _redis_parts(settings, engine, stack)
        audit = SqlAuditSink(engine)
        secrets = SqlSecretStore(engine, keyring)
        redactor = Redactor(hmac_key=_audit_key(settings, keyring.to_text()))
        http = egress_client(settings.egress())
        stack.push_async_callback(http.aclose)
        limits = settings.spec_limits()
        source = HttpSpecSource(http, limits=limits)
        ingestor = SpecIngestor(
            sources={"http": source, "https": source},  # never the server's own files
            cache=spec_cache,
            audit=audit,
            settings=settings.cache_settings(),
            limits=limits,
        )
        oauth = OAuthClient(http, secrets=secrets, redactor=redactor)
        connections = ConnectionService(engine, ingestor=ingestor, secrets=secrets, audit=audit)
        outbound = Outbound(
            Caller(http), secrets=secrets, audit=audit, redactor=redactor, oauth=oauth,
            oauth_configs=connections.oauth_configs,
        )  # fmt: skip
        planner = await _planner(settings, stack)
        approvals = SqlApprovals(engine)
        executor = await _executor(settings, outbound, connections, approvals, audit, stack)
        yield Services(
            settings=settings,
            engine=engine,
            sessions=SessionStore(
                engine,
                idle_s=settings.session_idle_minutes * 60,
                max_s=settings.session_max_hours * 3600,
            ),
            audit=audit,
            secrets=secrets,
            spec_cache=spec_cache,
            redactor=redactor,
            ingestor=ingestor,
            outbound=outbound,
            oauth=oauth,
            planner=planner,
            approvals=approvals,
            connections=connections,
            executor=executor,
            limiter=limiter,
            redis=redis,
        )


def _audit_key(settings: Settings, keyring_text: str) -> bytes:
    """The HMAC key of audit fingerprints: the same in every process of one deployment."""
    if settings.audit_hmac_key is not None:
        return hashlib.sha256(settings.audit_hmac_key.get_secret_value().encode()).digest()
    return hmac.new(keyring_text.encode(), b"apiq audit fingerprints", hashlib.sha256).digest()


async def _redis_parts(
    settings: Settings, engine: AsyncEngine, stack: AsyncExitStack
) -> tuple[Any | None, SpecCache, RateLimiter]:
    if settings.redis_url is None:
        return None, SqlSpecCache(engine, settings.cache_settings()), open_rate_limiter(None)
    from redis.asyncio import Redis

    from apiq_adapters.redis import RedisSpecCache

    client = Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    stack.push_async_callback(client.aclose)
    fallback = SqlSpecCache(engine, settings.cache_settings())
    cache = RedisSpecCache(client, settings.cache_settings(), fallback=fallback)
    return client, cache, open_rate_limiter(client)


async def _planner(settings: Settings, stack: AsyncExitStack) -> Planner:
    environ = settings.llm_environ()
    if not environ:
        return OfflinePlanner()
    planner = llm_planner(environ)
    closer = getattr(planner, "aclose", None)
    if closer is not None:
        stack.push_async_callback(closer)
    return planner


async def _executor(
    settings: Settings,
    outbound: Outbound,
    connections: ConnectionService,
    approvals: SqlApprovals,
    audit: SqlAuditSink,
    stack: AsyncExitStack,
) -> Executor:
    if settings.executor == "local":
        local = LocalExecutor(
            outbound, connections, approvals=approvals, audit=audit, limits=Limits()
        )
        return await stack.enter_async_context(local)
    from apiq_adapters.dbos import DbosExecutor, DbosSettings

    executor = DbosExecutor(
        outbound,
        connections,
        approvals=approvals,
        audit=audit,
        settings=DbosSettings(database_url=settings.database_url, worker=settings.run_executions),
    )
    return await stack.enter_async_context(executor)
