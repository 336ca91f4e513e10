"""`Catalog`: the operations of one API description, with lookups and lazy argument schemas.

A catalog is immutable once built and holds no global state, so any number can be loaded
at once (one per registered API). It keeps the decoded document, because schemas are
resolved lazily: `argument_schema` builds an operation's schema on first use and caches it.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from apiq.catalog.arguments import SchemaLibrary, find_cycles
from apiq.catalog.models import CatalogWarning, Operation, SecurityScheme, Server
from apiq.errors import OperationNotFound

__all__ = ["Catalog"]


@dataclass(frozen=True, slots=True, eq=False, repr=False, weakref_slot=True)
class Catalog:
    """Every operation of one API, normalized across Swagger 2.0 and OpenAPI 3.0/3.1.

    Build one with `apiq.specs.parse.parse_spec` (bytes) or `apiq.catalog.build_catalog`
    (a decoded document).
    """

    name: str
    """Short name: the one given at build time, else a slug of `info.title`."""
    title: str
    version: str
    """`info.version`."""
    spec_version: str
    """`2.0`, `3.0.3`, `3.1.0`, ..."""
    source: str
    """The spec reference it was built from (URL or file path)."""
    servers: tuple[Server, ...]
    """Document-level servers (Swagger 2.0: from host/basePath/schemes); never empty."""
    security_schemes: Mapping[str, SecurityScheme]
    security: tuple[Mapping[str, tuple[str, ...]], ...]
    """Default requirements (alternatives); `()` means no authentication by default."""
    operations: tuple[Operation, ...]
    """In document order."""
    warnings: tuple[CatalogWarning, ...]
    """What ingestion found but did not stop for; `cycle_warnings()` adds reference cycles."""
    document: Mapping[str, Any] = field(repr=False)
    """The decoded document, read (never changed) when schemas are resolved."""
    _by_id: dict[str, Operation] = field(init=False, repr=False)
    _by_route: dict[tuple[str, str], Operation] = field(init=False, repr=False)
    _by_tag: dict[str, tuple[Operation, ...]] = field(init=False, repr=False)
    _schemas: dict[str, dict[str, Any]] = field(init=False, repr=False)
    _library: SchemaLibrary = field(init=False, repr=False)
    _cycles: list[tuple[CatalogWarning, ...]] = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_tag: dict[str, list[Operation]] = {}
        for op in self.operations:
            for tag in op.tags:
                by_tag.setdefault(tag, []).append(op)
        init = object.__setattr__  # frozen: the indexes are set once, here
        init(self, "_by_id", {op.operation_id: op for op in self.operations})
        init(self, "_by_route", {(op.method, op.path): op for op in self.operations})
        init(self, "_by_tag", {tag: tuple(ops) for tag, ops in by_tag.items()})
        init(self, "_schemas", {})
        init(
            self,
            "_library",
            SchemaLibrary(self.document, source=self.source, spec_version=self.spec_version),
        )
        init(self, "_cycles", [])
        init(self, "_lock", threading.Lock())

    def __repr__(self) -> str:
        # Short on purpose: a catalog can hold 10,000 operations, and reprs end up in logs.
        return (
            f"Catalog(name={self.name!r}, spec_version={self.spec_version!r}, "
            f"operations={len(self.operations)}, source={self.source!r})"
        )

    def __len__(self) -> int:
        return len(self.operations)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)

    def get_operation(self, operation_id: str) -> Operation | None:
        """The operation with this operationId, or None."""
        return self._by_id.get(operation_id)

    def operation(self, operation_id: str) -> Operation:
        """The operation with this operationId.

        Raises:
            OperationNotFound: No operation has that id; the message names close matches.
        """
        op = self._by_id.get(operation_id)
        if op is not None:
            return op
        close = difflib.get_close_matches(operation_id, self._by_id, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise OperationNotFound(
            f"{self.name}: no operation {operation_id!r}{hint}",
            source=self.source,
            operation_id=operation_id,
        )

    def find(self, method: str, path: str) -> Operation | None:
        """The operation at `method` and path template (e.g. `/pets/{petId}`), or None.

        A concrete path (`/pets/42`) also matches a template; the template with the most
        literal segments wins, as OpenAPI asks.
        """
        method = method.lower()
        op = self._by_route.get((method, path))
        if op is not None or "?" in path:
            return op
        segments = path.split("/")
        best: tuple[int, Operation] | None = None
        for candidate in self.operations:
            if candidate.method != method:
                continue
            template = candidate.path.split("/")
            if len(template) != len(segments):
                continue
            literal = 0
            for want, got in zip(template, segments, strict=True):
                if want == got:
                    literal += 1
                elif not (want.startswith("{") and want.endswith("}") and got):
                    break
            else:
                if best is None or literal > best[0]:
                    best = (literal, candidate)
        return best[1] if best else None

    def by_tag(self, tag: str) -> tuple[Operation, ...]:
        """Operations carrying `tag`, in document order."""
        return self._by_tag.get(tag, ())

    def tags(self) -> Mapping[str, int]:
        """Tag -> number of operations, in order of first use."""
        return {tag: len(ops) for tag, ops in self._by_tag.items()}

    def argument_schema(self, operation_id: str) -> dict[str, Any]:
        """One JSON Schema (2020-12) object for every input of an operation.

        Shape: `{"type": "object", "properties": {"path": {...}, "query": {...}, "header":
        {...}, "cookie": {...}, "body": <schema>}, "required": [...], "additionalProperties":
        false, "$defs": {...}}`; a group appears only when the operation has inputs there.
        Referenced schemas live in `$defs` (recursive ones stay references). Built on first
        use and cached: treat the result as read-only (`copy.deepcopy` it to change it).

        Raises:
            OperationNotFound: No operation has that id.
            ExternalRefRefused: A schema refers outside the document.
            SpecInvalid: A schema nests too deep to copy.
        """
        cached = self._schemas.get(operation_id)
        if cached is not None:
            return cached
        operation = self.operation(operation_id)
        with self._lock:
            cached = self._schemas.get(operation_id)
            if cached is None:
                # Referenced schemas are copied once per catalog and shared by every
                # operation's `$defs`, so building is serialized here.
                cached = self._library.argument_schema(operation)
                self._schemas[operation_id] = cached
            return cached

    def cycle_warnings(self) -> tuple[CatalogWarning, ...]:
        """One `cycle` warning per reference cycle among the document's schemas.

        This walks every component schema (a cost ingestion does not pay), once: cycles are
        harmless to APIQ, which keeps them as references, but worth showing in `inspect`.
        """
        with self._lock:
            if not self._cycles:
                self._cycles.append(find_cycles(self.document, source=self.source))
            return self._cycles[0]
