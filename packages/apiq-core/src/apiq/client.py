"""`Apiq`: the SDK's front door and its one composition root.

Everything concrete (HTTP client, egress transport, sources, cache, audit sink) is chosen
here, from keywords; nothing is built at import time. An `Apiq` owns the HTTP client it
creates and closes it; a client passed in is borrowed and left open.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from apiq.audit import MemoryAuditSink
from apiq.catalog import Catalog
from apiq.config import CacheSettings, SpecLimits
from apiq.egress import EgressPolicy, egress_client
from apiq.models import Principal
from apiq.ports import AuditSink, SpecCache
from apiq.specs.cache import MemorySpecCache
from apiq.specs.file_source import FileSpecSource
from apiq.specs.http_source import HttpSpecSource
from apiq.specs.ingest import SpecIngestor

__all__ = ["Apiq"]


class Apiq:
    """Register API descriptions and work with their catalogs.

    Example:
        ```python
        async with Apiq() as apiq:
            catalog = await apiq.load("openapi.yaml")
            print(catalog.operation("getPetById").path)
        ```

    Args:
        principal: who acts; defaults to the single local user of a notebook or script.
        egress: the outbound policy for every request; defaults to public addresses only.
        limits: fetch and parse bounds.
        cache_settings: spec cache TTL and bounds.
        spec_cache: where fetched specs are kept; defaults to an in-memory cache.
        audit: where audit events go; defaults to an in-memory sink (`apiq.audit`).
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
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.principal = principal or Principal.local()
        self.egress = egress or EgressPolicy()
        self.limits = limits or SpecLimits()
        cache_settings = cache_settings or CacheSettings()
        self.spec_cache: SpecCache = spec_cache or MemorySpecCache(cache_settings)
        self.audit: AuditSink = audit or MemoryAuditSink()
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> Apiq:
        """Build from the documented environment variables; keywords win."""
        settings: dict[str, Any] = {
            "egress": EgressPolicy.from_env(environ),
            "limits": SpecLimits.from_env(environ),
            "cache_settings": CacheSettings.from_env(environ),
        }
        return cls(**{**settings, **overrides})

    @property
    def catalogs(self) -> Mapping[str, Catalog]:
        """Every catalog loaded so far, by name."""
        return dict(self._catalogs)

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

    async def aclose(self) -> None:
        """Close what this instance owns."""
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
