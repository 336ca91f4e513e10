"""Catalogs of stored connections: loaded once per document, searched per principal.

Any server or worker process can rebuild any connection's catalog: a spec URL goes through
the `SpecIngestor` (and so the shared spec cache), an uploaded document is kept gzip'd and
envelope-encrypted in the owner's `SecretStore` (the spec cache is a cache: it expires and
admins purge it). Parsed catalogs are memoized by the digest of their document, and search
entries by (connection id, digest), so a warm resolve or view parses and indexes nothing.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio.to_thread
from cachetools import LRUCache
from pydantic import BaseModel, ConfigDict

from apiq.catalog import Catalog
from apiq.connections import secret_name
from apiq.errors import SecretNotFound, SpecInvalid
from apiq.models import CachedSpec, FetchedSpec, Principal
from apiq.ports import SecretStore
from apiq.search import CatalogView, SearchHit
from apiq.search.bm25 import SourceIndex, build_source_index
from apiq.specs.cache import pack_spec
from apiq.specs.ingest import SpecIngestor

__all__ = ["UPLOAD_PREFIX", "CatalogCache", "Upload", "relative_base", "upload_ref"]

UPLOAD_PREFIX = "upload:sha256:"
"""How the `spec_url` of an uploaded document reads: `upload:sha256:<hex of its bytes>`."""
UPLOAD_CHUNK_BYTES = 512 * 1024
"""Compressed bytes per secret (the store caps one value at 1 MiB)."""
_THREAD_THRESHOLD = 200
"""Catalogs with more operations are digested and indexed in a worker thread."""


class Upload(BaseModel):
    """Where an uploaded document is kept: `chunks` secrets `<id>/spec/<n>` of the owner."""

    model_config = ConfigDict(frozen=True)

    digest: str
    size_bytes: int
    chunks: int


def upload_ref(content: bytes) -> str:
    """The `spec_url` recorded for an uploaded document."""
    return UPLOAD_PREFIX + hashlib.sha256(content).hexdigest()


def relative_base(server_url: str, spec_url: str) -> str | None:
    """A relative server URL resolved against the spec's own http(s) URL (OpenAPI: relative
    to where the document was served); None when there is nothing to resolve against."""
    if urlsplit(server_url).scheme or urlsplit(spec_url).scheme not in ("http", "https"):
        return None
    return urljoin(spec_url, server_url)


class CatalogCache:
    """Loads, memoizes and indexes the catalogs of stored connections (one per process).

    Args:
        ingestor: Fetches spec URLs through the egress policy and the shared spec cache.
        secrets: Where uploaded documents are kept, under their owner.
        memo_size: Parsed catalogs kept, by document digest.
        index_size: Search entries kept, by (connection id, digest).
    """

    def __init__(
        self,
        ingestor: SpecIngestor,
        secrets: SecretStore,
        *,
        memo_size: int = 64,
        index_size: int = 512,
    ) -> None:
        self._ingestor = ingestor
        self._secrets = secrets
        self._memo: LRUCache[tuple[str, str], Catalog] = LRUCache(maxsize=memo_size)
        self._digests: weakref.WeakKeyDictionary[Catalog, str] = weakref.WeakKeyDictionary()
        self._entries: LRUCache[tuple[str, str], SourceIndex] = LRUCache(maxsize=index_size)

    async def fetch(self, principal: Principal, spec_url: str, *, refresh: bool = False) -> Catalog:
        """The catalog at `spec_url` (cached unless `refresh`).

        Raises:
            SpecError, EgressDenied: As `SpecIngestor.load` (with an audit reference).
        """
        return await self._ingestor.load(principal, spec_url, refresh=refresh)

    async def parse_upload(self, content: bytes) -> tuple[Catalog, CachedSpec]:
        """Parse an uploaded document within the spec byte budget; returns its catalog and
        the packed document for `store_upload`.

        Raises:
            SpecTooLarge, SpecInvalid, ExternalRefRefused: The document cannot be used.
        """
        fetched = FetchedSpec(url=upload_ref(content), content=content)
        entry = pack_spec(fetched, fetched_at=datetime.now(UTC))
        return await self._ingestor.catalog_of(entry), entry

    async def store_upload(self, owner: Principal, connection_id: str, entry: CachedSpec) -> Upload:
        """Keep a packed uploaded document for `connection_id`, encrypted under its owner."""
        parts = [
            entry.compressed[start : start + UPLOAD_CHUNK_BYTES]
            for start in range(0, len(entry.compressed), UPLOAD_CHUNK_BYTES)
        ]
        for number, part in enumerate(parts):
            await self._secrets.put(owner, _chunk_name(connection_id, number), part)
        return Upload(digest=entry.digest, size_bytes=entry.size_bytes, chunks=len(parts))

    async def delete_upload(self, owner: Principal, connection_id: str, upload: Upload) -> None:
        """Forget the stored document of `connection_id`."""
        for number in range(upload.chunks):
            await self._secrets.delete(owner, _chunk_name(connection_id, number))

    async def load(
        self,
        owner: Principal,
        connection_id: str,
        spec_url: str,
        upload: Upload | None,
        digest: str | None,
    ) -> tuple[Catalog, str]:
        """The catalog of a stored connection and its document digest.

        The memo answers when it holds `digest` (the connection's snapshot); otherwise the
        document is loaded again, and the digest returned may differ from `digest` when a
        URL's document changed upstream since the snapshot.

        Raises:
            SpecError, EgressDenied: The document can no longer be had or parsed.
        """
        # Keyed by the URL too: a catalog's `source` names where it was read from, and plans
        # carry it, so two connections of one document at two URLs must not share one.
        if digest is not None and (memo := self._memo.get((digest, spec_url))) is not None:
            return memo, digest
        if upload is None:
            catalog = await self.fetch(owner, spec_url)
        else:
            catalog = await self._read_upload(owner, connection_id, spec_url, upload)
        found = await self.digest(catalog)
        self._memo[(found, spec_url)] = catalog
        return catalog, found

    async def digest(self, catalog: Catalog) -> str:
        """sha256 of the catalog's document in canonical JSON (its identity across processes)."""
        known = self._digests.get(catalog)
        if known is None:
            if len(catalog.operations) > _THREAD_THRESHOLD:
                known = await anyio.to_thread.run_sync(_document_digest, catalog)
            else:
                known = _document_digest(catalog)
            self._digests[catalog] = known
        return known

    async def view(self, catalogs: Mapping[str, tuple[str, Catalog]]) -> CatalogView:
        """A search view over connection id -> (digest, catalog)."""
        entries = {
            cid: await self._entry(cid, digest, catalog)
            for cid, (digest, catalog) in catalogs.items()
        }
        return CatalogView(entries)

    async def search(
        self, connection_id: str, digest: str, catalog: Catalog, text: str
    ) -> list[SearchHit]:
        """Every operation of one connection matching `text`, best first."""
        entry = await self._entry(connection_id, digest, catalog)
        return CatalogView({connection_id: entry}).search(text, k=len(catalog.operations))

    async def _entry(self, connection_id: str, digest: str, catalog: Catalog) -> SourceIndex:
        entry = self._entries.get((connection_id, digest))
        if entry is None:
            if len(catalog.operations) > _THREAD_THRESHOLD:
                entry = await anyio.to_thread.run_sync(build_source_index, connection_id, catalog)
            else:
                entry = build_source_index(connection_id, catalog)
            self._entries[(connection_id, digest)] = entry
        return entry

    async def _read_upload(
        self, owner: Principal, connection_id: str, spec_url: str, upload: Upload
    ) -> Catalog:
        parts: list[bytes] = []
        try:
            for number in range(upload.chunks):
                parts.append(await self._secrets.get(owner, _chunk_name(connection_id, number)))
        except SecretNotFound:
            raise SpecInvalid(
                f"the uploaded document of connection {connection_id!r} is missing from the "
                "secret store; upload it again (create the connection anew)",
                source=spec_url,
            ) from None
        stored = CachedSpec(
            url=spec_url,
            compressed=b"".join(parts),
            size_bytes=upload.size_bytes,
            digest=upload.digest,  # catalog_of checks the bytes against it
            fetched_at=datetime.now(UTC),
        )
        return await self._ingestor.catalog_of(stored)


def _chunk_name(connection_id: str, number: int) -> str:
    return secret_name(connection_id, "spec", str(number))


def _document_digest(catalog: Catalog) -> str:
    text = json.dumps(catalog.document, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _plain(value: Any) -> Any:
    """JSON for what a decoded document may hold besides JSON types (YAML dates, views)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)
