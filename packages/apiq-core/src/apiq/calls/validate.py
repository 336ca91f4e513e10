"""Arguments of a call checked against the operation's argument schema, before anything else.

The schema is `Catalog.argument_schema` (JSON Schema 2020-12; the catalog already brought
2.0/3.0 keywords to that dialect), checked with jsonschema's Draft 2020-12 validator with
three deliberate differences:

- the validator can never fetch anything: its registry refuses every URI it does not hold
  (jsonschema's default would still fetch remote `$ref`s, with a warning), so a hostile spec
  cannot make validation reach the network (SECURITY.md, "Hostile specs");
- `bytes` and `FilePart` count as strings (file uploads are described as
  `type: string, format: binary`), tuples as arrays and any Mapping as an object;
- formats stay annotations, as 2020-12 says (`int64`, `binary`, ... are not assertions).

One validator per operation, built on first use and kept for as long as its catalog lives
(a weak mapping from catalog to validators: nothing outlives the catalog it belongs to).
Plain schemas also get an accept-only fast check (`apiq.calls.plain_schema`): when it
accepts, the validator would too; otherwise the validator decides.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import UnknownType, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

from apiq.calls.plain_schema import (
    ARRAY_TYPES,
    OBJECT_TYPES,
    STRING_TYPES,
    PlainCheck,
    compile_plain_check,
)
from apiq.catalog.catalog import Catalog
from apiq.errors import ExecutionError, InvalidArguments

__all__ = ["MAX_REPORTED_ERRORS", "field_path", "validate_arguments"]

MAX_REPORTED_ERRORS = 20
"""At most this many problems are collected (`InvalidArguments.errors`)."""
_IN_MESSAGE = 5
_MAX_LINE = 300


def _refuse_retrieval(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs class, untyped here


_REGISTRY: Registry[Any] = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]
_TYPES = Draft202012Validator.TYPE_CHECKER.redefine_many(
    {
        # The same tuples as the fast check's, so the two cannot disagree on a type.
        "string": lambda _, v: isinstance(v, STRING_TYPES),
        "array": lambda _, v: isinstance(v, ARRAY_TYPES),
        "object": lambda _, v: isinstance(v, OBJECT_TYPES),
    }
)
_ArgumentValidator = extend(Draft202012Validator, type_checker=_TYPES)  # type: ignore[no-untyped-call]
_Checks = tuple[Validator, PlainCheck | None]
_validators: weakref.WeakKeyDictionary[Catalog, dict[str, _Checks]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _validator_for(catalog: Catalog, operation_id: str, schema: dict[str, Any]) -> _Checks:
    with _lock:
        per_catalog = _validators.setdefault(catalog, {})
        checks = per_catalog.get(operation_id)
        if checks is None:
            validator = _ArgumentValidator(schema, registry=_REGISTRY)
            asserted = validator.format_checker is not None
            fast = compile_plain_check(schema, formats_asserted=asserted)
            checks = per_catalog[operation_id] = (validator, fast)
        return checks


def field_path(parts: Iterable[Any]) -> str:
    """`("query", "limit")` -> `query.limit`; `("body", "tags", 0)` -> `body.tags[0]`."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_LINE else text[: _MAX_LINE - 3] + "..."


def _describe(error: ValidationError) -> list[str]:
    where = field_path(error.absolute_path)
    instance, schema = error.instance, error.schema
    wanted = error.validator_value
    if error.validator == "required" and isinstance(instance, Mapping) and isinstance(wanted, list):
        missing = [n for n in wanted if isinstance(n, str) and n not in instance]
        return [f"{field_path([*error.absolute_path, n])}: is required" for n in missing]
    if (
        error.validator == "additionalProperties"
        and error.validator_value is False
        and isinstance(instance, Mapping)
        and isinstance(schema, Mapping)
        and "patternProperties" not in schema
    ):
        known = list(schema.get("properties") or {})
        expected = ", ".join(known) if known else "none"
        return [
            _clip(f"{field_path([*error.absolute_path, k])}: unknown (expected: {expected})")
            for k in instance
            if k not in known
        ]
    return [_clip(f"{where or 'arguments'}: {error.message}")]


def validate_arguments(catalog: Catalog, operation_id: str, arguments: Mapping[str, Any]) -> None:
    """Check `arguments` (`{"path": {...}, "query": {...}, ..., "body": ...}`) for a call.

    Raises:
        OperationNotFound: The catalog has no such operation.
        InvalidArguments: The arguments do not match; the message names each field as a
            path (`query.limit: 'abc' is not of type 'integer'`), `.errors` lists them all
            (at most `MAX_REPORTED_ERRORS`).
        ExecutionError: The operation's own schema cannot be applied (an unresolvable
            reference, an unknown type, a broken regular expression in the spec).
    """
    schema = catalog.argument_schema(operation_id)
    if not isinstance(arguments, OBJECT_TYPES):
        message = f"arguments must be an object of groups, not {type(arguments).__name__}"
        raise InvalidArguments(f"{operation_id}: {message}", operation_id=operation_id)
    validator, fast = _validator_for(catalog, operation_id, schema)
    if fast is not None and fast(arguments):
        return
    try:
        found = list(islice(validator.iter_errors(arguments), MAX_REPORTED_ERRORS))
    except RecursionError:
        raise InvalidArguments(
            f"{operation_id}: the arguments nest too deeply to check; flatten them",
            operation_id=operation_id,
        ) from None
    except (Unresolvable, UnknownType, re.error, TypeError, ValueError) as exc:
        raise ExecutionError(
            f"{operation_id}: the operation's argument schema cannot be applied "
            f"({type(exc).__name__}: {_clip(str(exc))}); the spec needs fixing",
            operation_id=operation_id,
        ) from None
    if not found:
        return
    problems: list[str] = []
    for error in found:
        problems.extend(_describe(error))
    errors = tuple(dict.fromkeys(problems))[:MAX_REPORTED_ERRORS]
    shown = "; ".join(errors[:_IN_MESSAGE])
    more = f" (and {len(errors) - _IN_MESSAGE} more)" if len(errors) > _IN_MESSAGE else ""
    raise InvalidArguments(
        f"{operation_id}: invalid arguments: {shown}{more}; fix these fields and try again",
        operation_id=operation_id,
        errors=errors,
    )
