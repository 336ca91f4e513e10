"""`OperationIndex` and `CatalogView`: search over every ingested catalog, and per principal.

The index holds one entry per source, built at ingest (`add`), replaced when a spec is
ingested again, dropped with `remove`. Searching takes an optional set of sources; `view`
hands a principal a `CatalogView` that can only ever see the sources it was given.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from types import MappingProxyType

from apiq.catalog.catalog import Catalog
from apiq.catalog.models import Operation
from apiq.errors import ConfigurationError
from apiq.search.bm25 import SearchHit, SourceIndex, build_source_index, rank

__all__ = ["CatalogView", "OperationIndex"]


class OperationIndex:
    """Full-text search over the operations of one or many catalogs.

    Example:
        >>> index = OperationIndex()
        >>> index.add("petstore", catalog)  # doctest: +SKIP
        >>> index.search("find pets by status", k=3)  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._entries: dict[str, SourceIndex] = {}
        # Adding builds outside the lock; only the swap of the mapping is guarded, so a
        # search never sees a half-built entry.
        self._lock = threading.Lock()

    def __contains__(self, source: object) -> bool:
        return source in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def sources(self) -> tuple[str, ...]:
        """The indexed source names, in the order they were added."""
        return tuple(self._entries)

    def add(self, source: str, catalog: Catalog) -> None:
        """Index `catalog` under `source`, replacing what that name held before."""
        entry = build_source_index(source, catalog)
        with self._lock:
            entries = dict(self._entries)
            entries[source] = entry
            self._entries = entries

    def remove(self, source: str) -> None:
        """Forget `source` (no error when it is not indexed)."""
        with self._lock:
            entries = dict(self._entries)
            entries.pop(source, None)
            self._entries = entries

    def catalog(self, source: str) -> Catalog | None:
        """The catalog indexed under `source`, or None."""
        entry = self._entries.get(source)
        return entry.catalog if entry else None

    def search(
        self, text: str, *, k: int = 10, sources: Collection[str] | None = None
    ) -> list[SearchHit]:
        """The `k` operations that best match the request `text`, best first.

        Args:
            text: A plain-English request; cut at `MAX_QUERY_CHARS`. Text without any
                indexed word (empty, punctuation, gibberish) finds nothing.
            k: How many hits at most.
            sources: Only these sources (unknown names are skipped, never widened to all);
                None searches every indexed source.
        """
        entries = self._entries
        if sources is None:
            chosen = list(entries.values())
        else:
            chosen = [entries[name] for name in dict.fromkeys(sources) if name in entries]
        return rank(chosen, text, k)

    def view(self, sources: Mapping[str, Catalog] | Collection[str]) -> CatalogView:
        """A search view limited to `sources`, e.g. the connections one principal may use.

        Args:
            sources: Source names already indexed, or a mapping of source name -> catalog.
                A mapped catalog that is not the one indexed under its name (or not
                indexed at all) is indexed for this view alone, so the view always
                searches exactly the catalogs it reports.

        Raises:
            ConfigurationError: A source name is not indexed (names only).
        """
        entries = self._entries
        chosen: dict[str, SourceIndex] = {}
        if isinstance(sources, Mapping):
            for name, catalog in sources.items():
                entry = entries.get(name)
                if entry is None or entry.catalog is not catalog:
                    entry = build_source_index(name, catalog)
                chosen[name] = entry
        else:
            if isinstance(sources, str):
                sources = (sources,)
            for name in sources:
                entry = entries.get(name)
                if entry is None:
                    raise ConfigurationError(
                        f"no catalog is indexed as {name!r} (indexed: "
                        f"{', '.join(map(repr, entries)) or 'none'}); call "
                        "OperationIndex.add(source, catalog) at ingest, or pass a mapping of "
                        "source name -> catalog"
                    )
                chosen[name] = entry
        return CatalogView(chosen)


class CatalogView:
    """Search and lookups over a fixed set of sources; nothing outside them is reachable.

    Made by `OperationIndex.view`; a planner receives one per request. It holds its own
    snapshot of the sources' index entries, so a later `add`/`remove` on the index does not
    change what an existing view sees.
    """

    __slots__ = ("_catalogs", "_entries")

    def __init__(self, entries: Mapping[str, SourceIndex]) -> None:
        self._entries = dict(entries)
        self._catalogs = MappingProxyType(
            {name: entry.catalog for name, entry in self._entries.items()}
        )

    def __repr__(self) -> str:
        return f"CatalogView(sources={list(self._entries)!r})"

    def __contains__(self, source: object) -> bool:
        return source in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def catalogs(self) -> Mapping[str, Catalog]:
        """Source name -> catalog (read-only)."""
        return self._catalogs

    @property
    def sources(self) -> tuple[str, ...]:
        """The source names this view covers."""
        return tuple(self._entries)

    def search(self, text: str, k: int = 10) -> list[SearchHit]:
        """The `k` operations of this view's sources that best match `text`, best first."""
        return rank(self._entries.values(), text, k)

    def operation(self, source: str, operation_id: str) -> Operation | None:
        """The operation `operation_id` of `source`, or None when either is unknown here."""
        catalog = self._catalogs.get(source)
        return catalog.get_operation(operation_id) if catalog is not None else None

    def operations(self) -> Iterator[tuple[str, Operation]]:
        """Every (source, operation) pair of the view, source by source."""
        for name, catalog in self._catalogs.items():
            for op in catalog.operations:
                yield name, op
