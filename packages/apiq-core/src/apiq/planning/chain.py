"""Chaining: which field of an earlier step's response fills a slot of a later step.

An earlier step's `Shape` (one object, or a list of them) is matched against the slot:

- the slot is named like a field (`username` <- `username`; `owner` <- `owner`, an object,
  through its `login`, `name`, `id`, `slug` or `key`);
- the slot names the earlier step's item and the field that identifies it (`petId` <- `id`
  of a Pet, `issue_number` <- `number` of an issue, `customer` <- `id` of a customer,
  `repo` <- `name` of a repository, as `repo` is a string and the repository's id is not).

A slot that does not identify the earlier item (`description`, `quantity`) is filled by a
same-named field only when the operation requires it; a bare `id` only when the later
step's own noun is the earlier step's item, so an order never takes a pet's id as its own.
From a list, a link reads the first item, or every item when the clause says "each".
A literal an earlier step took from the text is reused by a later slot of the same name
(`owner`, `repo`); an `if` becomes a `Condition` on an earlier response's field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from apiq.errors import PlanningError
from apiq.planning.reading import Filled
from apiq.planning.shapes import (
    JsonSchema,
    Shape,
    Slot,
    object_properties,
    slot_nouns,
)
from apiq.planning.values import mentions
from apiq.planning.words import ID_WORDS, identifier_words, matches
from apiq.specs.refs import escape_token

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.catalog.models import Operation

__all__ = ["Condition", "Earlier", "Link", "find_condition", "find_link", "reuse_literal"]

_HANDLES = ("id", "login", "name", "slug", "key", "sid", "number")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
_ID_LIKE = re.compile(r"[A-Za-z][_\d]|\d[A-Za-z]")


@dataclass(frozen=True, slots=True)
class Earlier:
    """What the planner knows of a step that runs before the one being filled."""

    step_id: str
    operation: Operation
    catalog: Catalog
    shape: Shape | None
    literals: Mapping[str, object] = field(default_factory=dict)
    """Slot name -> the literal value the step was given from the text."""


@dataclass(frozen=True, slots=True)
class Link:
    """A slot's value read from an earlier step's response."""

    step_id: str
    list_pointer: str | None
    """Where the producer's list is (`""`, `/data`), or None when it answers one object."""
    field_pointer: str
    """The field within one item (or the object): `/id`, `/owner/login`."""
    field_type: str
    reason: str
    identifies: bool = False
    """The value identifies the earlier step's item (`petId` <- a pet's `id`), rather than
    copying a field of the same name (`owner`, `currency`)."""

    @property
    def output_name(self) -> str:
        """A name for the producer's output holding the value (of the first item)."""
        name = _UNSAFE.sub("_", self.field_pointer.strip("/")) or "value"
        return f"first_{name}" if self.list_pointer is not None else name


@dataclass(frozen=True, slots=True)
class Condition:
    """An `if` on an earlier response: `<field> == <value>` (or `!=`)."""

    step_id: str
    field_pointer: str
    """The field within the earlier step's object, or within each item of its list."""
    value: object
    negated: bool


def find_condition(text: str, earlier: Sequence[Earlier]) -> Condition:
    """The check an `if` clause asks for: a value of an earlier response's field that the
    text names (an enum value: `if it is sold`; a boolean field: `if it is private`).

    Raises:
        PlanningError: No earlier step, or no field of theirs holds such a value.
    """
    words = [m.word for m in mentions(text)]
    negated = any(w in ("not", "no", "never") or w.endswith("n't") for w in words)
    for step in reversed(earlier):
        for name, schema in (step.shape.fields if step.shape else {}).items():
            enum = schema.get("enum")
            for value in enum if isinstance(enum, list) else []:
                if isinstance(value, str) and value.lower() in words:
                    return Condition(step.step_id, f"/{escape_token(name)}", value, negated)
            if schema.get("type") == "boolean" and name.lower() in words:
                return Condition(step.step_id, f"/{escape_token(name)}", True, negated)
    if not earlier:
        problem = "no step before it reads anything to check; ask for the thing first"
        example = " (e.g. 'get the order, then if it is <a status> cancel it')"
    else:
        names = ", ".join(step.operation.operation_id for step in earlier)
        problem = f"the responses of {names} hold no field with such a value"
        example = "; name a value the API lists (a status, a state) or drop the 'if'"
    raise PlanningError(f"cannot check the condition {text!r}: {problem}{example}")


def find_link(
    slot: Slot, consumer: Operation, consumer_nouns: frozenset[str], earlier: Sequence[Earlier]
) -> Link | None:
    """A field of the latest earlier step that can fill `slot` (its best one), or None.

    Args:
        slot: The slot to fill.
        consumer: The operation of the step being filled.
        consumer_nouns: Words naming what that operation acts on (its body's schema name).
        earlier: The steps before it, in order.
    """
    best: tuple[int, int, Link] | None = None
    for position, step in enumerate(earlier):
        if step.shape is None:
            continue
        found = _match(slot, consumer, consumer_nouns, step)
        # The latest step that fits wins (`it` is what was just made), then the best fit.
        if found is not None and (best is None or (position, found[0]) >= best[:2]):
            best = (position, found[0], found[1])
    return best[2] if best else None


def reuse_literal(slot: Slot, before: list[Earlier]) -> Filled | None:
    """The literal an earlier step gave a slot of the same name (`owner`, `repo`, `petId`):
    for a required or path slot, or for any slot when the value is an id (`cus_4`, 42)."""
    for step in reversed(before):
        if slot.name in step.literals:
            value = step.literals[slot.name]
            if slot.required or slot.location == "path" or _looks_like_id(value):
                return Filled(value, f"as in step {step.step_id}", "reused")
    return None


def _looks_like_id(value: object) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and " " not in value and _ID_LIKE.search(value) is not None


def _match(
    slot: Slot, consumer: Operation, consumer_nouns: frozenset[str], step: Earlier
) -> tuple[int, Link] | None:
    assert step.shape is not None
    shape = step.shape
    fields = shape.fields
    words = identifier_words(slot.name)
    nouns = slot_nouns(slot, consumer.path)
    # The slot's main (last) noun names the item; its first word only in an id's name
    # (`subscription_exposed_id` names a subscription; `custom_fields` no customer).
    naming = nouns if words and words[-1] in ID_WORDS else nouns[:1]
    names_item = any(matches(n, item, 3) for n in naming for item in shape.nouns)
    generic = not words or all(w in ID_WORDS for w in words)
    # A bare `id` names the consumer's own thing: its path noun, or its body's schema.
    own = consumer_nouns if generic and slot.location != "path" else frozenset(nouns)
    same_thing = any(matches(n, item, 3) for n in own for item in shape.nouns)
    exact = next((name for name in fields if _norm(name) == _norm(slot.name)), None)
    # An object field of the slot's name refers to a thing (`owner`): its id, login or name.
    inner = object_properties(step.catalog, fields[exact]) if exact is not None else {}
    refers = names_item or (generic and same_thing)  # `username` of a user, `id` of an order
    if exact is not None and (slot.required or refers) and (not generic or same_thing):
        if inner:
            found = _pick(inner, _HANDLES, slot, prefix="/" + escape_token(exact))
        else:
            found = _pick(fields, (exact,), slot)
        if found is not None:
            reason = f"the {exact!r} of step {step.step_id}"
            return 4, _link(step, found, reason, refers)
    if names_item and not generic:
        wanted = (words[-1],) if words[-1] in ID_WORDS else _HANDLES
        found = _pick(fields, wanted, slot)
        if found is not None:
            item = "/".join(sorted(shape.nouns))
            reason = f"the {found[0][1:]!r} of the {item} of step {step.step_id}"
            return 3, _link(step, found, reason, True)
    return None


def _pick(
    fields: Mapping[str, JsonSchema], names: Sequence[str], slot: Slot, prefix: str = ""
) -> tuple[str, str] | None:
    """(pointer, type) of the first of `names` of the slot's type, else of a compatible one."""
    for strict in (True, False):
        for name in names:
            if name not in fields:
                continue
            kind = _type(fields[name])
            fits = kind == slot.item_kind if strict else _compatible(slot.item_kind, kind)
            if kind != "object" and fits:
                return f"{prefix}/{escape_token(name)}", kind
    return None


def _link(step: Earlier, found: tuple[str, str], reason: str, identifies: bool) -> Link:
    assert step.shape is not None
    return Link(step.step_id, step.shape.list_pointer, found[0], found[1], reason, identifies)


def _compatible(wanted: str, given: str) -> bool:
    if wanted in ("", given) or given == "":
        return True
    if wanted == "string":
        return given in ("integer", "number")
    return wanted == "number" and given == "integer"


def _type(schema: JsonSchema) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "")
    if not kind and "properties" in schema:
        return "object"
    return kind if isinstance(kind, str) else ""


def _norm(name: str) -> str:
    return "".join(identifier_words(name))
