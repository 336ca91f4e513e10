"""A fast first check of call arguments against plain schemas, before jsonschema.

Most operations take a few path and query values whose argument schema uses only `type`,
`properties`, `required`, `additionalProperties`, `items`, string `enum`s and bounds.
`compile_plain_check` turns such a schema into nested closures that run in a few
microseconds, where jsonschema's generic machinery takes tens.

The closures only ever *accept*: True means the Draft 2020-12 validator of
`apiq.calls.validate` accepts the instance too; False means "not sure" and the caller runs
the full validator, which then decides and words every error. So an instance this module
cannot judge (a float for `integer`, a `Decimal`, bytes under `minLength`) is never wrongly
accepted, only checked the slow way. A schema using any keyword the validator implements
and this module does not (`$ref`, `pattern`, `anyOf`, ...) gets no fast check at all.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sized
from typing import Any, Final

from jsonschema import Draft202012Validator

from apiq.calls.bodies import FilePart

__all__ = ["ARRAY_TYPES", "OBJECT_TYPES", "STRING_TYPES", "PlainCheck", "compile_plain_check"]

PlainCheck = Callable[[Any], bool]
"""True when the instance is valid; False when only the full validator can tell."""

STRING_TYPES: Final = (str, bytes, bytearray, FilePart)
"""What counts as a JSON Schema `string` for call arguments (uploads are `format: binary`)."""
ARRAY_TYPES: Final = (list, tuple)
OBJECT_TYPES: Final = (dict, Mapping)  # dict first: matched without the ABC machinery

_MAX_DEPTH: Final = 32  # deeper schemas are left to jsonschema
# Keywords whose meaning is implemented below; every other keyword that jsonschema
# implements disables the fast check, and keywords it ignores (annotations, and `format`
# without a format checker) are ignored here.
_HANDLED: Final = frozenset(
    {
        *("type", "properties", "required", "additionalProperties", "items", "enum"),
        *("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
        *("minLength", "maxLength", "minItems", "maxItems"),
    }
)
_ENFORCED: Final = frozenset(Draft202012Validator.VALIDATORS)
# `$defs` is only reachable through `$ref` (which disables the check); any other `$`
# keyword (`$schema`, `$id`, anchors) changes how the schema is read.
_IGNORED_CORE: Final = frozenset({"$defs", "$comment"})


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_plain_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: Final[dict[str, PlainCheck]] = {
    "string": lambda v: isinstance(v, STRING_TYPES),
    "array": lambda v: isinstance(v, ARRAY_TYPES),
    "object": lambda v: isinstance(v, OBJECT_TYPES),
    # Floats such as 1.0 are integers to the validator; left to it.
    "integer": _is_integer,
    "number": _is_plain_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def compile_plain_check(schema: Any, *, formats_asserted: bool) -> PlainCheck | None:
    """A fast accept-only check for `schema`, or None when it is not a plain schema.

    Args:
        schema: A JSON Schema (2020-12) as `Catalog.argument_schema` gives it.
        formats_asserted: Whether the full validator checks `format` (it has a format
            checker); then `format` disables the fast check, else it is an annotation.
    """
    enforced = _ENFORCED if formats_asserted else _ENFORCED - {"format"}
    return _Compiler(enforced).compile(schema, 0)


def _accept(value: Any) -> bool:
    return True


def _all_of(checks: list[PlainCheck]) -> PlainCheck:
    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:  # the usual `type` plus one keyword, without a generator per call
        first, second = checks
        return lambda value: first(value) and second(value)
    return lambda value: all(check(value) for check in checks)


class _Compiler:
    """Builds the closures; every method answers None when the schema is not plain."""

    def __init__(self, enforced: frozenset[str]) -> None:
        self.enforced = enforced

    def compile(self, schema: Any, depth: int) -> PlainCheck | None:
        if schema is True:
            return _accept
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return None
        for key in schema:
            if not isinstance(key, str) or key in _HANDLED:
                continue
            if key in self.enforced or (key.startswith("$") and key not in _IGNORED_CORE):
                return None
        checks: list[PlainCheck] = []
        parts = (
            _type(schema),
            self._object(schema, depth),
            self._items(schema, depth),
            _enum(schema),
            _bounds(schema),
            _lengths(schema),
        )
        for part in parts:
            if part is None:
                return None
            checks.extend(part)
        return _all_of(checks)

    def _object(self, schema: dict[str, Any], depth: int) -> list[PlainCheck] | None:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        extra_schema = schema.get("additionalProperties", True)
        if not isinstance(properties, dict) or not isinstance(required, list):
            return None
        if not all(isinstance(name, str) for name in (*properties, *required)):
            return None
        compiled: dict[str, PlainCheck] = {}
        for name, subschema in properties.items():
            check = self.compile(subschema, depth + 1)
            if check is None:
                return None
            compiled[name] = check
        closed = extra_schema is False
        extra: PlainCheck | None = None
        if extra_schema is not True and not closed:
            extra = self.compile(extra_schema, depth + 1)
            if extra is None:
                return None
        if not compiled and not required and extra_schema is True:
            return []
        pairs = tuple(compiled.items())
        names = frozenset(compiled)
        needed = tuple(required)

        def check_object(value: Any) -> bool:
            if not isinstance(value, OBJECT_TYPES):
                return True  # these keywords apply to objects only
            for name in needed:
                if name not in value:
                    return False
            for name, check in pairs:
                if name in value and not check(value[name]):
                    return False
            if closed:
                return all(key in names for key in value)
            if extra is not None:
                return all(key in names or extra(item) for key, item in value.items())
            return True

        return [check_object]

    def _items(self, schema: dict[str, Any], depth: int) -> list[PlainCheck] | None:
        if "items" not in schema or schema["items"] is True:
            return []
        check = self.compile(schema["items"], depth + 1)
        if check is None:
            return None
        return [lambda value: not isinstance(value, ARRAY_TYPES) or all(map(check, value))]


def _type(schema: dict[str, Any]) -> list[PlainCheck] | None:
    if "type" not in schema:
        return []
    names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if not names or not all(isinstance(name, str) and name in _TYPES for name in names):
        return None
    predicates = [_TYPES[name] for name in names]
    if len(predicates) == 1:
        return predicates
    return [lambda value: any(predicate(value) for predicate in predicates)]


def _enum(schema: dict[str, Any]) -> list[PlainCheck] | None:
    if "enum" not in schema:
        return []
    values = schema["enum"]
    # Equality of strings is plain `==` to the validator; other values (1 vs True vs 1.0)
    # have their own rules there.
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return None
    allowed = frozenset(values)
    return [lambda value: isinstance(value, str) and value in allowed]


_BOUNDS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "minimum": lambda value, bound: value >= bound,
    "maximum": lambda value, bound: value <= bound,
    "exclusiveMinimum": lambda value, bound: value > bound,
    "exclusiveMaximum": lambda value, bound: value < bound,
}


def _bound(holds: Callable[[Any, Any], bool], bound: Any) -> PlainCheck:
    def check_bound(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Number):
            return True  # bounds apply to numbers only
        # Decimal and friends go to the validator; so does NaN, which fails every comparison.
        return _is_plain_number(value) and holds(value, bound)

    return check_bound


def _bounds(schema: dict[str, Any]) -> list[PlainCheck] | None:
    checks: list[PlainCheck] = []
    for keyword, holds in _BOUNDS.items():
        if keyword in schema:
            if not _is_plain_number(schema[keyword]):
                return None
            checks.append(_bound(holds, schema[keyword]))
    return checks


def _length(
    kinds: tuple[type, ...], measured: tuple[type[Sized], ...], limit: int, least: bool
) -> PlainCheck:
    def check_length(value: Any) -> bool:
        if not isinstance(value, kinds):
            return True  # the keyword applies to other kinds only
        if not isinstance(value, measured):
            return False
        size = len(value)  # a str, list or tuple here
        return size >= limit if least else size <= limit

    return check_length


def _lengths(schema: dict[str, Any]) -> list[PlainCheck] | None:
    checks: list[PlainCheck] = []
    # Only `str` is measured among the string kinds: len() of bytes or a FilePart is left
    # to the validator.
    for keyword, kinds, measured in (
        ("minLength", STRING_TYPES, (str,)),
        ("maxLength", STRING_TYPES, (str,)),
        ("minItems", ARRAY_TYPES, ARRAY_TYPES),
        ("maxItems", ARRAY_TYPES, ARRAY_TYPES),
    ):
        if keyword in schema:
            limit = schema[keyword]
            if not _is_integer(limit) or limit < 0:
                return None
            checks.append(_length(kinds, measured, limit, keyword.startswith("min")))
    return checks
