"""A decoded Swagger 2.0 / OpenAPI 3.x document -> `Catalog`, touching only what it must.

The builder never walks the whole document: it loops over `paths`, follows the `$ref`s an
operation names (parameters, request bodies, responses, path items) and leaves schemas as
the document wrote them. Resolved references are cached per build, so a parameter that a
thousand operations share (GitHub's `owner`) is read and turned into a `Parameter` once.

`SpecBuilder` holds what Swagger 2.0 and OpenAPI 3.x share (paths, parameter merging,
servers, security, operationIds); `apiq.catalog.openapi3` and `apiq.catalog.swagger2`
subclass it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from apiq.catalog.catalog import Catalog
from apiq.catalog.models import (
    STATE_CHANGING_METHODS,
    CatalogWarning,
    Operation,
    Parameter,
    SecurityScheme,
    Server,
    ServerVariable,
)
from apiq.errors import SpecInvalid
from apiq.specs.refs import escape_token, resolve

__all__ = ["HTTP_METHODS", "SpecBuilder", "build_catalog", "synthesize_operation_id"]

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
"""The keys of a path item that are operations; every other key is not."""

LOCATIONS = frozenset({"path", "query", "header", "cookie"})
IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
"""OpenAPI says these header parameters SHALL be ignored; dropping `Authorization` also keeps
credentials out of anything a planner is asked to fill in."""

_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SLUG = re.compile(r"[^a-z0-9]+")


def build_catalog(document: Mapping[str, Any], *, source: str, name: str | None = None) -> Catalog:
    """Build the catalog of a decoded Swagger 2.0 or OpenAPI 3.x document.

    Args:
        document: The decoded document (dicts and lists, as `json.loads` gives them). It is
            kept, not copied, by the catalog: do not mutate it afterwards.
        source: The spec reference (URL or path), named in errors and warnings.
        name: The catalog's name; defaults to a slug of `info.title`.

    Raises:
        SpecInvalid: The document is not an OpenAPI/Swagger object or has no usable `paths`.
        ExternalRefRefused: An operation names a `$ref` outside the document.
    """
    if not isinstance(document, dict):
        raise SpecInvalid(f"{source}: the document is not a JSON object", source=source)
    if "swagger" in document:
        from apiq.catalog.swagger2 import Swagger2Builder  # it subclasses SpecBuilder, below

        return Swagger2Builder(document, source).build(name)
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith("3."):
        raise SpecInvalid(
            f"{source}: 'openapi' is {version!r}; APIQ reads Swagger 2.0 and OpenAPI 3.0/3.1",
            source=source,
            pointer="/openapi",
        )
    from apiq.catalog.openapi3 import OpenApi3Builder  # it subclasses SpecBuilder, below

    return OpenApi3Builder(document, source).build(name)


def synthesize_operation_id(method: str, path: str) -> str:
    """A readable id from method and path words.

    `GET /repos/{owner}/{repo}` -> `get_repos_owner_repo`; camelCase words become snake_case.
    """
    words = [_CAMEL.sub("_", word) for word in _WORD.findall(path)]
    return "_".join([method, *words]).lower() if words else f"{method}_root"


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class SpecBuilder:
    """Shared walk over `paths`; subclasses turn one operation object into catalog fields."""

    spec_version = ""

    def __init__(self, document: dict[str, Any], source: str) -> None:
        self.document = document
        self.source = source
        self.warnings: list[CatalogWarning] = []
        self._resolved: dict[str, Any] = {}
        self._params: dict[int, Parameter | None] = {}
        self.servers: tuple[Server, ...] = ()

    # -- hooks -------------------------------------------------------------------------

    def document_servers(self) -> tuple[Server, ...]:
        raise NotImplementedError

    def security_schemes(self) -> dict[str, SecurityScheme]:
        raise NotImplementedError

    def convert_parameter(self, node: dict[str, Any]) -> Parameter | None:
        """One resolved parameter object (with a str `name` and `in`) as a `Parameter`;
        None when the catalog leaves it out."""
        raise NotImplementedError

    def operation_fields(
        self,
        op: dict[str, Any],
        params: dict[tuple[str, str], dict[str, Any]],
        path_item: dict[str, Any],
        pointer: str,
    ) -> dict[str, Any]:
        """The fields of `Operation` that differ between versions: `parameters`,
        `request_body`, `responses` and `servers`.

        `params` are the resolved parameter objects, path-level ones overridden by
        operation-level ones with the same (name, in).
        """
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------

    def accepts_parameter(self, name: str, location: str) -> bool:
        """False for parameters the catalog leaves out: an unknown `in` (warned) and the
        header parameters OpenAPI says to ignore."""
        if location not in LOCATIONS:
            self.warn("invalid-parameter", f"parameter {name!r} is 'in' {location!r}; ignored")
            return False
        return not (location == "header" and name.lower() in IGNORED_HEADERS)

    def parameter(self, node: dict[str, Any]) -> Parameter | None:
        """`convert_parameter(node)`, once per node: shared parameters serve many operations."""
        key = id(node)  # the document keeps every node alive, so ids are stable per build
        if key in self._params:
            return self._params[key]
        param = self._params[key] = self.convert_parameter(node)
        return param

    def warn(self, code: str, message: str, pointer: str | None = None, *tokens: Any) -> None:
        """Record a warning at `pointer` extended by `tokens` (joined only now: rarely needed)."""
        if pointer is not None and tokens:
            pointer = "/".join([pointer, *(escape_token(str(t)) for t in tokens)])
        self.warnings.append(CatalogWarning(code, message, pointer))

    def deref(self, node: Any, pointer: str, *tokens: Any) -> Any:
        """`node` with its `$ref` chain followed; None (and a warning) when it dangles."""
        if not isinstance(node, dict) or "$ref" not in node:
            return node
        ref = node["$ref"]
        if isinstance(ref, str) and ref in self._resolved:
            return self._resolved[ref]
        try:
            target, _ = resolve(self.document, node, source=self.source)
        except SpecInvalid as exc:
            self.warn("dangling-ref", f"{exc.message}; skipped", pointer, *tokens)
            return None
        if isinstance(ref, str):
            self._resolved[ref] = target
        return target

    def build(self, name: str | None) -> Catalog:
        doc = self.document
        info = doc.get("info")
        info = info if isinstance(info, dict) else {}
        title = info.get("title")
        title = str(title) if title is not None else ""
        version = info.get("version")
        self.servers = self.document_servers()
        paths = doc.get("paths", {})
        if paths is None:
            paths = {}
        if not isinstance(paths, dict):
            raise SpecInvalid(
                f"{self.source}: 'paths' is not an object", source=self.source, pointer="/paths"
            )
        drafts: list[tuple[Any, dict[str, Any]]] = []
        for path, raw_item in paths.items():
            item_pointer = "/paths/" + escape_token(str(path))
            item = self.deref(raw_item, item_pointer)
            if not isinstance(item, dict):
                if item is not None:
                    self.warn("invalid-path-item", f"path {path!r} is not an object", item_pointer)
                continue
            shared = self.parameters(item.get("parameters"), {}, item_pointer)
            for method in HTTP_METHODS:
                op = item.get(method)
                if op is None:
                    continue
                pointer = f"{item_pointer}/{method}"
                if not isinstance(op, dict):
                    self.warn("invalid-operation", f"{method} {path} is not an object", pointer)
                    continue
                params = self.parameters(op.get("parameters"), shared, pointer)
                fields = self.operation_fields(op, params, item, pointer)
                fields.update(self.common_fields(op, method, pointer), path=str(path))
                drafts.append((op.get("operationId"), fields))
        operations = self.settle_operation_ids(drafts)
        deprecated = sum(1 for op in operations if op.deprecated)
        if deprecated:
            self.warn("deprecated", f"{deprecated} of {len(operations)} operations are deprecated")
        return Catalog(
            name=name or slug(title),
            title=title,
            version=str(version) if version is not None else "",
            spec_version=self.spec_version,
            source=self.source,
            servers=self.servers,
            security_schemes=self.security_schemes(),
            security=self.security(doc.get("security"), "") or (),
            operations=operations,
            warnings=tuple(self.warnings),
            document=doc,
        )

    def common_fields(self, op: dict[str, Any], method: str, pointer: str) -> dict[str, Any]:
        """The fields of `Operation` that both versions read alike (bar id and path)."""
        tags = op.get("tags")
        return {
            "method": method,
            "pointer": pointer,
            "summary": text(op.get("summary")),
            "description": text(op.get("description")),
            "tags": tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
            "security": self.security(op.get("security"), pointer),
            "deprecated": op.get("deprecated") is True,
            "changes_state": (
                method in STATE_CHANGING_METHODS or op.get("x-apiq-consequential") is True
            ),
        }

    def parameters(
        self, raw: Any, inherited: dict[tuple[str, str], dict[str, Any]], pointer: str
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """`inherited` overridden by, then extended with, the parameter objects in `raw`.

        `pointer` is the pointer of the object holding `raw` as its `parameters`.
        """
        if not raw:
            return inherited
        if not isinstance(raw, list):
            self.warn("invalid-parameters", "'parameters' is not a list; ignored", pointer)
            return inherited
        merged = dict(inherited)
        resolved = self._resolved
        for index, entry in enumerate(raw):
            # Most entries are refs seen before (GitHub, Kubernetes): look them up inline.
            ref = entry.get("$ref") if type(entry) is dict else None
            node = resolved.get(ref) if type(ref) is str else None
            if node is None:
                node = self.deref(entry, pointer, "parameters", index)
                if node is None:
                    continue
            name = node.get("name") if isinstance(node, dict) else None
            location = node.get("in") if isinstance(node, dict) else None
            if not isinstance(name, str) or not isinstance(location, str):
                self.warn(
                    "invalid-parameter",
                    "a parameter lacks 'name' or 'in'",
                    pointer,
                    "parameters",
                    index,
                )
                continue
            merged[(name, location)] = node
        return merged

    def security(self, raw: Any, pointer: str) -> tuple[Mapping[str, tuple[str, ...]], ...] | None:
        """Security requirements; None when absent or unreadable (inherit the default).

        `pointer` is the pointer of the object holding `raw` as its `security`.
        """
        if raw is None:
            return None
        if not isinstance(raw, list):
            self.warn(
                "invalid-security", "'security' is not a list; inherited", pointer, "security"
            )
            return None
        requirements: list[Mapping[str, tuple[str, ...]]] = []
        for entry in raw:
            if not isinstance(entry, dict):
                self.warn("invalid-security", "a requirement is not an object", pointer, "security")
                return None
            requirements.append(
                {
                    str(scheme): tuple(str(s) for s in scopes) if isinstance(scopes, list) else ()
                    for scheme, scopes in entry.items()
                }
            )
        return tuple(requirements)

    def server_list(self, raw: Any, pointer: str) -> tuple[Server, ...]:
        """Servers of `raw`, the `servers` of the object at `pointer`."""
        if not isinstance(raw, list):
            if raw is not None:
                self.warn("invalid-servers", "'servers' is not a list; ignored", pointer, "servers")
            return ()
        servers = []
        for entry in raw:
            if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                self.warn("invalid-servers", "a server has no 'url'; ignored", pointer, "servers")
                continue
            variables = {}
            raw_vars = entry.get("variables")
            if isinstance(raw_vars, dict):
                for var, spec in raw_vars.items():
                    if not isinstance(spec, dict):
                        continue
                    enum = spec.get("enum")
                    variables[str(var)] = ServerVariable(
                        default=str(spec.get("default", "")),
                        enum=tuple(str(v) for v in enum) if isinstance(enum, list) else (),
                        description=text(spec.get("description")),
                    )
            servers.append(Server(entry["url"], text(entry.get("description")), variables))
        return tuple(servers)

    def settle_operation_ids(
        self, drafts: list[tuple[Any, dict[str, Any]]]
    ) -> tuple[Operation, ...]:
        """Keep the first holder of each explicit id; synthesize the rest, deterministically.

        Explicit ids are reserved before any id is made up, so a synthesized or suffixed id
        never takes an id that an operation later in the document states.
        """
        reserved: set[str] = set()
        keep: list[bool] = []
        for raw_id, _ in drafts:
            ok = isinstance(raw_id, str) and raw_id != "" and raw_id not in reserved
            if ok:
                reserved.add(raw_id)
            keep.append(ok)
        next_suffix: dict[str, int] = {}
        operations = []
        for (raw_id, fields), ok in zip(drafts, keep, strict=True):
            if ok:
                operations.append(Operation(operation_id=raw_id, **fields))
                continue
            duplicate = isinstance(raw_id, str) and raw_id != ""
            base = (
                raw_id if duplicate else synthesize_operation_id(fields["method"], fields["path"])
            )
            candidate = base
            n = next_suffix.get(base, 2)
            while candidate in reserved:
                candidate = f"{base}_{n}"
                n += 1
            next_suffix[base] = n
            reserved.add(candidate)
            where = f"{fields['method'].upper()} {fields['path']}"
            if duplicate:
                self.warn(
                    "duplicate-operation-id",
                    f"{where}: operationId {raw_id!r} is already used; renamed {candidate!r}",
                    fields["pointer"],
                )
            else:
                self.warn(
                    "missing-operation-id",
                    f"{where}: no operationId; named {candidate!r}",
                    fields["pointer"],
                )
            operations.append(
                Operation(operation_id=candidate, operation_id_synthesized=True, **fields)
            )
        return tuple(operations)


def slug(title: str) -> str:
    return _SLUG.sub("-", title.lower()).strip("-")[:64].strip("-") or "api"
