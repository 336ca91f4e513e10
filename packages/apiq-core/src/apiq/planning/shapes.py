"""What an operation takes (slots) and what it answers (a shape), read from its schemas.

A `Slot` is one value an operation takes: a path, query, header or cookie parameter, or a
top-level property of an object request body. A `Shape` is what a successful response
holds: one object, or a list of objects (a bare array, or wrapped as `{"data": [...]}`),
with the item's properties and the nouns that name it (`Pet`, `customer`, `issue`).
Schemas are resolved one level at a time through the catalog's own document, so a
recursive schema costs nothing and GitHub's 13 MB document is never inlined.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apiq.catalog.arguments import def_name, preferred_media_type
from apiq.errors import SpecError
from apiq.planning.words import ID_WORDS, STOP_WORDS, VERB_METHODS, identifier_words, singular
from apiq.specs.refs import resolve

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.catalog.models import Operation

__all__ = [
    "Shape",
    "Slot",
    "object_properties",
    "resolved",
    "response_shape",
    "schema_nouns",
    "slot_nouns",
    "slots_of",
]

JsonSchema = Mapping[str, Any]
_LIST_KEYS = ("data", "items", "results", "values", "records", "entries", "elements", "value")


@dataclass(frozen=True, slots=True)
class Slot:
    """One value an operation takes."""

    name: str
    location: str
    """`path`, `query`, `header`, `cookie`, or `body` for a property of the request body."""
    schema: JsonSchema = field(hash=False, compare=False)
    """The value's schema, its top-level `$ref` resolved."""
    required: bool = False
    description: str = field(default="", hash=False, compare=False)

    @property
    def kind(self) -> str:
        """The JSON type (`string`, `integer`, `array`, ...), `""` when the schema has none."""
        kind = self.schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "")
        return kind if isinstance(kind, str) else ""

    @property
    def item_kind(self) -> str:
        """The type of one value: the items' type for an array, else `kind`."""
        items = self.schema.get("items")
        if self.kind == "array" and isinstance(items, Mapping):
            kind = items.get("type")
            return kind if isinstance(kind, str) else "string"
        return self.kind

    @property
    def enum(self) -> tuple[Any, ...]:
        """Allowed values (of the items, for an array), or `()`."""
        source = self.schema.get("items") if self.kind == "array" else self.schema
        values = source.get("enum") if isinstance(source, Mapping) else None
        return tuple(v for v in values if v is not None) if isinstance(values, list) else ()


@dataclass(frozen=True, slots=True)
class Shape:
    """What a 2xx response body holds."""

    list_pointer: str | None
    """JSON Pointer of the list (`""` for a bare array, `/data`), or None for one object."""
    fields: Mapping[str, JsonSchema]
    """Properties of one item (or of the object), each schema's `$ref` resolved."""
    nouns: frozenset[str]
    """Singular words naming the item (`pet`, `customer`), from its schema name or path."""


def resolved(catalog: Catalog, schema: Any) -> JsonSchema:
    """`schema` with its `$ref` chain followed; `{}` when it dangles or is not an object."""
    try:
        node, _ = resolve(catalog.document, schema, source=catalog.source)
    except SpecError:
        return {}
    return node if isinstance(node, Mapping) else {}


def object_properties(catalog: Catalog, schema: Any) -> dict[str, JsonSchema]:
    """Property name -> resolved schema, through `allOf`, `anyOf` and `oneOf` branches."""
    found: dict[str, JsonSchema] = {}
    for part in _branches(catalog, schema):
        properties = part.get("properties")
        if isinstance(properties, Mapping):
            for name, sub in properties.items():
                found.setdefault(str(name), resolved(catalog, sub))
    return found


def slots_of(catalog: Catalog, operation: Operation) -> tuple[tuple[Slot, ...], JsonSchema | None]:
    """The operation's slots, and the request body's schema when it is not an object of
    properties (an array or a file: the body is then one value, filled as a whole).
    """
    slots = [
        Slot(p.name, p.location, resolved(catalog, p.schema), p.required, p.description)
        for p in operation.parameters
    ]
    body = operation.request_body
    media_type = preferred_media_type(body.content) if body is not None else None
    if body is None or media_type is None:
        return tuple(slots), None
    schema = resolved(catalog, body.content[media_type])
    properties = object_properties(catalog, schema)
    if not properties:
        return tuple(slots), schema
    required: set[str] = set()
    for part in _branches(catalog, schema):
        listed = part.get("required")
        if isinstance(listed, list):  # required whenever a body is sent, and one is
            required.update(str(name) for name in listed)
    for name, sub in properties.items():
        if sub.get("readOnly") is True:
            continue
        description = sub.get("description")
        slots.append(
            Slot(
                name,
                "body",
                sub,
                name in required,
                description if isinstance(description, str) else "",
            )
        )
    return tuple(slots), None


def response_shape(catalog: Catalog, operation: Operation) -> Shape | None:
    """The shape of the first 2xx JSON response, or None when it declares no object."""
    for response in sorted(operation.responses, key=lambda r: r.status):
        if not response.status.startswith("2") or not response.content:
            continue
        media_type = preferred_media_type(response.content)
        if media_type is None:
            continue
        raw = response.content[media_type]
        schema = resolved(catalog, raw)
        items = schema.get("items") if schema.get("type") == "array" else None
        if isinstance(items, Mapping):
            return _shape(catalog, items, "", operation)
        fields = object_properties(catalog, raw)
        for key, sub in _wrapped_lists(fields):
            return _shape(catalog, sub, "/" + key, operation)
        if fields:
            return Shape(None, fields, schema_nouns(raw, operation))
    return None


def _shape(catalog: Catalog, item: Any, pointer: str, operation: Operation) -> Shape | None:
    fields = object_properties(catalog, item)
    return Shape(pointer, fields, schema_nouns(item, operation)) if fields else None


def _wrapped_lists(fields: Mapping[str, JsonSchema]) -> Iterator[tuple[str, Any]]:
    """Properties that hold the page of a list response (`data`, `items`, ...).

    A conventional key wins; else the one array of objects of a small envelope, or of one
    whose other fields are all scalars. A detail object with an array property (a pet's
    `tags`) is not a list.
    """
    arrays = {
        key: sub["items"]
        for key, sub in fields.items()
        if sub.get("type") == "array" and isinstance(sub.get("items"), Mapping)
    }
    for key in _LIST_KEYS:
        if key in arrays:
            yield key, arrays[key]
            return
    # One list beside paging scalars (`available_phone_numbers`, `page`, `next_page_uri`);
    # a detail object has object fields too (a pet's `category`).
    objects = [sub for sub in fields.values() if sub.get("type") == "object" or "$ref" in sub]
    if len(arrays) == 1 and (len(fields) <= 4 or not objects):
        yield next(iter(arrays.items()))


def schema_nouns(schema: Any, operation: Operation) -> frozenset[str]:
    """Singular words naming what a schema describes: its `$ref` name, else the path's nouns."""
    ref = _first_ref(schema)
    if ref is not None:  # `api.v2010.account.call` names a call
        words = identifier_words(def_name(ref).rsplit(".", 1)[-1])
    else:  # an inline schema: the path's nouns (`/pet/findByStatus` -> pet, status)
        words = [
            w
            for segment in operation.path.split("/")
            if "{" not in segment
            for w in identifier_words(segment)
            if w not in VERB_METHODS
        ]
    return frozenset(singular(w) for w in words if w not in STOP_WORDS and len(w) > 1)


def _first_ref(schema: Any) -> str | None:
    """The schema's own `$ref`, or that of its first `allOf`/`anyOf`/`oneOf` branch."""
    if not isinstance(schema, Mapping):
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return ref
    for key in ("allOf", "anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            return _first_ref(branches[0])
    return None


def _branches(catalog: Catalog, schema: Any, depth: int = 0) -> Iterator[JsonSchema]:
    """`schema` resolved, then its `allOf`/`anyOf`/`oneOf` branches, a few levels deep."""
    node = resolved(catalog, schema)
    yield node
    if depth >= 3:
        return
    for key in ("allOf", "anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list):
            for branch in branches:
                yield from _branches(catalog, branch, depth + 1)


def slot_nouns(slot: Slot, path: str) -> list[str]:
    """The thing a slot identifies: `petId` -> pet; `username` -> user; `{id}` in `/pets/{id}`
    -> pet; `subscription_exposed_id` -> exposed, subscription (last and first words); `[]`
    when its name says nothing and it is not in the path."""
    words = identifier_words(slot.name)
    while words and words[-1] in ID_WORDS:
        words = words[:-1]
    if len(words) == 1:
        for suffix in ID_WORDS:
            if words[0].endswith(suffix) and len(words[0]) - len(suffix) >= 3:
                return [words[0][: -len(suffix)]]
    if words:
        return list(dict.fromkeys((words[-1], words[0])))
    if slot.location != "path":
        return []
    before = path.split("{" + slot.name + "}")[0].rstrip("/").rsplit("/", 1)[-1]
    nouns = identifier_words(before)
    return nouns[-1:]
