"""One JSON Schema per operation for all of its inputs, built from what the operation uses.

Shape (JSON Schema 2020-12):

```
{"type": "object",
 "properties": {"path": {...}, "query": {...}, "header": {...}, "cookie": {...},
                "body": <schema of the preferred media type>},
 "required": [<groups with a required member>, "body" if the body is required],
 "additionalProperties": false,
 "$defs": {<name>: <schema>, ...}}
```

Each parameter group is an object schema of its own, so a query `id` and a path `id` never
collide. Referenced schemas are not inlined: every `$ref` is rewritten to `#/$defs/<name>`
and the transitive closure of what the operation references is copied into `$defs`. A
recursive schema therefore stays a reference, and the cost is proportional to what the
operation uses, never to the document. Each referenced schema is copied once per catalog
(`SchemaLibrary`) and the copy is shared by every operation's `$defs`: treat argument
schemas as read-only.

Dialect: Swagger 2.0 and OpenAPI 3.0 schemas are brought to 2020-12 as they are copied:
`nullable: true` (and 2.0's `x-nullable`) becomes a type list with `"null"` (or an `anyOf`
with `{"type": "null"}` when there is no `type`), and boolean `exclusiveMinimum` /
`exclusiveMaximum` become the numeric form. Other OpenAPI keywords (`discriminator`,
`example`, `xml`, ...) are kept as written; validators ignore them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from apiq.catalog.models import CatalogWarning, Operation
from apiq.errors import SpecInvalid
from apiq.specs.refs import escape_token, resolve_ref

__all__ = [
    "SUBSCHEMA_KEYWORDS",
    "SUBSCHEMA_LIST_KEYWORDS",
    "SchemaLibrary",
    "find_cycles",
    "preferred_media_type",
]

_LOCATIONS = ("path", "query", "header", "cookie")
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
SUBSCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
"""JSON Schema keywords whose value is a list of subschemas."""
SUBSCHEMA_KEYWORDS = frozenset(
    {
        "items",
        "additionalItems",
        "additionalProperties",
        "not",
        "contains",
        "if",
        "then",
        "else",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contentSchema",
    }
)
"""JSON Schema keywords whose value is one subschema."""
_SCHEMA_LISTS = SUBSCHEMA_LIST_KEYWORDS
_SCHEMA_ONE = SUBSCHEMA_KEYWORDS
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def preferred_media_type(content: Mapping[str, Any]) -> str | None:
    """The media type APIQ sends: JSON first, then any `+json`, then a form, then the first."""
    if not content:
        return None
    lowered = {media_type.split(";")[0].strip().lower(): media_type for media_type in content}
    if "application/json" in lowered:
        return lowered["application/json"]
    for plain, media_type in lowered.items():
        if plain.endswith("+json") or plain.endswith("/json"):
            return media_type
    for form in _FORMS:
        if form in lowered:
            return lowered[form]
    return next(iter(content))


class SchemaLibrary:
    """Referenced schemas of one document, each copied (refs rewritten) once, on first use.

    Every referenced schema gets one `$defs` name for the whole document, so an operation's
    argument schema does not depend on which operations were built before it: component
    schemas keep their own names (made safe, deduplicated in document order); any other
    place, and any name that had to change, gets a short hash of its pointer appended.
    Not thread-safe: the catalog calls it under its lock.
    """

    def __init__(self, document: Mapping[str, Any], *, source: str, spec_version: str) -> None:
        self.document = document
        self.source = source
        self.legacy = not spec_version.startswith("3.1")
        self._names: dict[str, str] | None = None
        self._taken: set[str] = set()
        self._targets: dict[str, str] = {}
        """name -> ref"""
        self._copies: dict[str, Any] = {}
        self._edges: dict[str, list[str]] = {}

    def argument_schema(self, operation: Operation) -> dict[str, Any]:
        """The argument schema of `operation` (module docstring).

        Raises:
            ExternalRefRefused: A schema the operation uses refers outside the document.
            SpecInvalid: A schema nests too deeply to copy.
        """
        refs: list[str] = []
        groups: dict[str, dict[str, Any]] = {}
        try:
            for param in operation.parameters:
                group = groups.get(param.location)
                if group is None:
                    group = {"type": "object", "properties": {}, "additionalProperties": False}
                    groups[param.location] = group
                prop = self.copy(param.schema, refs)
                if param.description and isinstance(prop, dict) and "description" not in prop:
                    prop["description"] = param.description
                group["properties"][param.name] = prop
                if param.required:
                    group.setdefault("required", []).append(param.name)
            properties: dict[str, Any] = {loc: groups[loc] for loc in _LOCATIONS if loc in groups}
            required = [loc for loc, group in properties.items() if "required" in group]
            body = operation.request_body
            media_type = preferred_media_type(body.content) if body is not None else None
            if body is not None and media_type is not None:
                properties["body"] = self.copy(body.content[media_type], refs)
                if body.required:
                    required.append("body")
            defs = self.closure(refs)
        except RecursionError:
            raise SpecInvalid(
                f"{self.source}: a schema of operation {operation.operation_id!r} nests too "
                "deeply to build its argument schema",
                source=self.source,
                pointer=operation.pointer,
            ) from None
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        if defs:
            schema["$defs"] = defs
        return schema

    def closure(self, names: list[str]) -> dict[str, Any]:
        """name -> copied schema for `names` and everything they reach, in discovery order."""
        defs: dict[str, Any] = {}
        stack = list(reversed(names))
        while stack:
            name = stack.pop()
            if name in defs:
                continue
            if name not in self._copies:
                self._fill(name)
            defs[name] = self._copies[name]
            stack.extend(reversed(self._edges[name]))
        return defs

    def _fill(self, name: str) -> None:
        ref = self._targets[name]
        edges: list[str] = []
        try:  # an external ref raises ExternalRefRefused here, out of argument_schema
            target = resolve_ref(self.document, ref, source=self.source)
        except SpecInvalid as exc:
            # One bad reference must not make the operation unusable: accept anything
            # there, and say why.
            copied: Any = {"description": f"unresolved: {exc.message}"}
        else:
            copied = self.copy(target, edges)
        self._edges[name] = edges
        self._copies[name] = copied

    def name(self, ref: str) -> str:
        """The `$defs` name of an internal ref."""
        names = self._names if self._names is not None else self._component_names()
        name = names.get(ref)
        if name is not None:
            return name
        name = self._claim(f"{def_name(ref)}_{_short_hash(ref)}")
        names[ref] = name
        self._targets[name] = ref
        return name

    def _component_names(self) -> dict[str, str]:
        # Keys only, no walk: a few milliseconds even for Microsoft Graph's 4,000 schemas.
        names: dict[str, str] = {}
        for ref, key in _component_refs(self.document):
            safe = _UNSAFE.sub("_", key).strip("_") or "schema"
            name = self._claim(safe if safe == key else f"{safe}_{_short_hash(ref)}")
            names[ref] = name
            self._targets[name] = ref
        self._names = names
        return names

    def _claim(self, name: str) -> str:
        base, n = name, 2
        while name in self._taken:
            name = f"{base}_{n}"
            n += 1
        self._taken.add(name)
        return name

    def copy(self, node: Any, refs: list[str]) -> Any:
        """`node` with refs rewritten to `#/$defs/...`; names it refers to go to `refs`."""
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            return {}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = self.name(value)
                refs.append(name)
                out[key] = "#/$defs/" + name
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                mapped = {}
                for prop, sub in value.items():
                    mapped[prop] = self.copy(sub, refs)
                out[key] = mapped
            elif (key in _SCHEMA_LISTS or key == "items") and isinstance(value, list):
                out[key] = [self.copy(sub, refs) for sub in value]
            elif key in _SCHEMA_ONE and isinstance(value, dict | bool):
                out[key] = self.copy(value, refs)
            else:
                out[key] = value
        return _modernize(out) if self.legacy else out


def def_name(ref: str) -> str:
    """A readable name for an internal ref (`#/components/schemas/Pet` -> `Pet`)."""
    tokens = [
        unquote(token).replace("~1", "/").replace("~0", "~")
        for token in ref[1:].split("/")
        if token
    ]
    if len(tokens) > 2 and tokens[0] == "components" and tokens[1] == "schemas":
        tokens = tokens[2:]
    elif len(tokens) > 1 and tokens[0] in ("definitions", "components"):
        tokens = tokens[1:]
    words = (_UNSAFE.sub("_", token).strip("_") for token in tokens)
    return "_".join(word for word in words if word) or "root"


def _component_refs(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(ref, name) of every component schema: `#/components/schemas/*`, `#/definitions/*`."""
    components = document.get("components")
    for prefix, table in (
        (
            "#/components/schemas/",
            components.get("schemas") if isinstance(components, dict) else None,
        ),
        ("#/definitions/", document.get("definitions")),
    ):
        if isinstance(table, dict):
            yield from ((prefix + escape_token(str(key)), str(key)) for key in table)


def _short_hash(ref: str) -> str:
    return hashlib.blake2s(ref.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def _modernize(out: dict[str, Any]) -> dict[str, Any]:
    """2.0/3.0 keywords in their 2020-12 form (module docstring)."""
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        flag = out.get(exclusive)
        if flag is True and bound in out:
            out[exclusive] = out.pop(bound)
        elif isinstance(flag, bool):
            del out[exclusive]
    nullable = out.pop("nullable", None) is True
    nullable = out.pop("x-nullable", None) is True or nullable
    if not nullable:
        return out
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list):
        if "null" not in kind:
            out["type"] = [*kind, "null"]
    elif "$ref" in out or "allOf" in out or "anyOf" in out or "oneOf" in out:
        return {"anyOf": [out, {"type": "null"}]}
    enum = out.get("enum")
    if isinstance(enum, list) and None not in enum:
        out["enum"] = [*enum, None]
    return out


def find_cycles(document: Mapping[str, Any], *, source: str) -> tuple[CatalogWarning, ...]:
    """One `cycle` warning per strongly connected group of schemas that refer to each other.

    Starts from every component schema (`#/components/schemas/*`, `#/definitions/*`) and
    follows refs wherever they lead; dangling or external refs are skipped here.
    """
    edges: dict[str, list[str]] = {}
    work = [ref for ref, _ in _component_refs(document)][::-1]
    while work:
        ref = work.pop()
        if ref in edges:
            continue
        try:
            target = resolve_ref(document, ref, source=source)
        except SpecInvalid:
            edges[ref] = []
            continue
        found = _refs_under(target)
        edges[ref] = found
        work.extend(r for r in found if r not in edges)
    return tuple(
        CatalogWarning(
            "cycle",
            "schemas refer to themselves in a cycle (kept as references): "
            + " -> ".join(def_name(ref) for ref in group),
            group[0][1:],
        )
        for group in _strongly_connected(edges)
    )


def _refs_under(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str) and ref.startswith("#"):
                found.append(ref)
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found


def _strongly_connected(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; only groups that really cycle are returned."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        call: list[tuple[str, int]] = [(root, 0)]
        while call:
            node, child = call.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = edges.get(node, [])
            if child < len(targets):
                call.append((node, child + 1))
                nxt = targets[child]
                if nxt not in index:
                    call.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if call:
                parent = call[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in edges.get(node, []):
                    groups.append(sorted(group))
    return groups
