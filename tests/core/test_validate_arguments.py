"""`validate_arguments`: errors name their field, every problem is listed, nothing is fetched."""

from __future__ import annotations

import copy
import gc
import math
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.calls import FilePart, validate_arguments
from apiq.calls.plain_schema import compile_plain_check
from apiq.calls.validate import (
    MAX_REPORTED_ERRORS,
    _ArgumentValidator,
    _validator_for,
    _validators,
    field_path,
)
from apiq.catalog import Catalog, build_catalog
from apiq.errors import ExecutionError, InvalidArguments, OperationNotFound

PET = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "parent": {"$ref": "#/components/schemas/Pet"},
        "photo": {"type": "string", "format": "binary"},
    },
}


def make_catalog(version: str = "3.0.3", body: dict[str, Any] | None = None) -> Catalog:
    document = {
        "openapi": version,
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/pets/{petId}": {
                "put": {
                    "operationId": "updatePet",
                    "parameters": [
                        {
                            "name": "petId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "maximum": 100},
                        },
                        {"name": "mode", "in": "query", "schema": {"enum": ["a", "b"]}},
                        {
                            "name": "X-Id",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": body or {"$ref": "#/components/schemas/Pet"}
                            }
                        },
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/ping": {"get": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}},
        },
        "components": {"schemas": {"Pet": PET}},
    }
    return build_catalog(document, source="t.json")


CATALOG = make_catalog()
GOOD = {"path": {"petId": 1}, "header": {"X-Id": "x"}, "body": {"name": "Rex"}}


def errors_of(arguments: Any, catalog: Catalog = CATALOG, op: str = "updatePet") -> tuple[str, ...]:
    with pytest.raises(InvalidArguments) as caught:
        validate_arguments(catalog, op, arguments)
    assert caught.value.operation_id == op
    return caught.value.errors


def test_valid_arguments_pass() -> None:
    validate_arguments(CATALOG, "updatePet", GOOD)
    validate_arguments(CATALOG, "ping", {})


def test_type_error_names_the_field() -> None:
    with pytest.raises(InvalidArguments) as caught:
        validate_arguments(CATALOG, "updatePet", {**GOOD, "query": {"limit": "abc"}})
    assert caught.value.errors == ("query.limit: 'abc' is not of type 'integer'",)
    assert "query.limit: 'abc' is not of type 'integer'" in str(caught.value)
    assert caught.value.public_message == "Invalid arguments, see logs"


def test_every_problem_is_listed() -> None:
    arguments = {
        "path": {"petId": "x"},
        "query": {"limit": 101, "mode": "c"},
        "body": {"tags": ["ok", 3], "parent": {"name": ""}},
    }
    assert sorted(errors_of(arguments)) == sorted(
        [
            "path.petId: 'x' is not of type 'integer'",
            "query.limit: 101 is greater than the maximum of 100",
            "query.mode: 'c' is not one of ['a', 'b']",
            "header: is required",
            "body.name: is required",
            "body.tags[1]: 3 is not of type 'string'",
            "body.parent.name: '' should be non-empty",
        ]
    )


def test_missing_required_members() -> None:
    assert errors_of({"path": {}, "header": {"X-Id": "x"}, "body": {"name": "a"}}) == (
        "path.petId: is required",
    )
    assert set(errors_of({})) == {"path: is required", "header: is required", "body: is required"}


def test_unknown_groups_and_names_are_refused() -> None:
    assert errors_of({**GOOD, "query": {"limit": 1, "offset": 2}}) == (
        "query.offset: unknown (expected: limit, mode)",
    )
    assert errors_of({**GOOD, "cookie": {"a": "b"}}) == (
        "cookie: unknown (expected: path, query, header, body)",
    )
    assert errors_of({"query": {}}, op="ping") == ("query: unknown (expected: none)",)


def test_errors_are_capped() -> None:
    catalog = make_catalog(body={"type": "array", "items": {"type": "integer"}})
    arguments = {**GOOD, "body": ["x"] * 500}
    with pytest.raises(InvalidArguments) as caught:
        validate_arguments(catalog, "updatePet", arguments)
    assert len(caught.value.errors) == MAX_REPORTED_ERRORS
    assert caught.value.errors[0] == "body[0]: 'x' is not of type 'integer'"
    assert "(and 15 more)" in str(caught.value)


def test_long_values_are_clipped_in_messages() -> None:
    errors = errors_of({**GOOD, "query": {"limit": "x" * 10_000}})
    assert len(errors[0]) <= 300


def test_files_mappings_and_tuples_are_accepted() -> None:
    body = MappingProxyType({"name": "Rex", "tags": ("a", "b"), "photo": b"\x89PNG"})
    validate_arguments(CATALOG, "updatePet", {**GOOD, "body": body})
    validate_arguments(
        CATALOG, "updatePet", {**GOOD, "body": {"name": "a", "photo": FilePart(b"")}}
    )


def test_nullable_from_openapi_30() -> None:
    catalog = make_catalog(body={"type": "string", "nullable": True})
    validate_arguments(catalog, "updatePet", {**GOOD, "body": None})


def test_arguments_must_be_a_mapping() -> None:
    assert errors_of(["path"]) == ("updatePet: arguments must be an object of groups, not list",)


def test_unknown_operation() -> None:
    with pytest.raises(OperationNotFound):
        validate_arguments(CATALOG, "nope", {})


def test_deep_nesting_is_a_clear_error() -> None:
    node: dict[str, Any] = {"name": "leaf"}
    for _ in range(5_000):
        node = {"name": "n", "parent": node}
    errors = errors_of({**GOOD, "body": node})
    assert errors == ("updatePet: the arguments nest too deeply to check; flatten them",)


def test_validator_never_fetches() -> None:
    # 2020-12 keywords that could name a remote schema; the registry holds none and refuses
    # to retrieve (the conftest network guard would also fail the test on any lookup).
    body = {"$dynamicRef": "https://schemas.example.com/evil.json"}
    catalog = make_catalog(version="3.1.0", body=body)
    with pytest.raises(ExecutionError, match="cannot be applied"):
        validate_arguments(catalog, "updatePet", {**GOOD, "body": {}})


def test_validator_is_built_once_per_operation() -> None:
    schema = CATALOG.argument_schema("updatePet")
    validate_arguments(CATALOG, "updatePet", GOOD)
    first = _validator_for(CATALOG, "updatePet", schema)
    assert _validator_for(CATALOG, "updatePet", schema) is first
    ping = CATALOG.argument_schema("ping")
    assert _validator_for(CATALOG, "ping", ping) is not first


def test_validators_go_with_their_catalog() -> None:
    catalog = build_catalog(copy.deepcopy(CATALOG.document), source="short-lived.json")
    validate_arguments(catalog, "updatePet", GOOD)
    assert catalog in _validators
    del catalog
    gc.collect()
    assert all(c.source != "short-lived.json" for c in _validators)


def test_field_path() -> None:
    assert field_path(["body", "items", 0, "name"]) == "body.items[0].name"
    assert field_path([]) == ""


# --- the fast check for plain schemas -----------------------------------------------------

_NAMES = st.sampled_from(["a", "b", "petId", "x-y"])
_TYPE_NAMES = ["string", "integer", "number", "boolean", "null", "array", "object"]
_ANNOTATIONS = st.fixed_dictionaries(
    {},
    optional={
        "format": st.sampled_from(["int64", "binary", "date-time"]),
        "description": st.text(max_size=5),
        "nullable": st.booleans(),
        "x-vendor": st.integers(),
    },
)


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    bound = st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False))
    return st.fixed_dictionaries(
        {},
        optional={
            "type": st.one_of(
                st.sampled_from(_TYPE_NAMES),
                st.lists(st.sampled_from(_TYPE_NAMES), min_size=1, max_size=3, unique=True),
            ),
            "enum": st.lists(st.text(max_size=3), min_size=1, max_size=3),
            "minimum": bound,
            "maximum": bound,
            "exclusiveMinimum": bound,
            "exclusiveMaximum": bound,
            "minLength": st.integers(0, 3),
            "maxLength": st.integers(0, 3),
            "minItems": st.integers(0, 3),
            "maxItems": st.integers(0, 3),
        },
    )


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    obj = st.fixed_dictionaries(
        {"properties": st.dictionaries(_NAMES, children, max_size=3)},
        optional={
            "type": st.just("object"),
            "required": st.lists(_NAMES, max_size=3, unique=True),
            "additionalProperties": st.one_of(st.booleans(), children),
        },
    )
    arr = st.fixed_dictionaries({"items": children}, optional={"type": st.just("array")})
    return st.one_of(obj, arr)


PLAIN_SCHEMAS = st.recursive(st.one_of(_leaf(), st.just(True)), _extend, max_leaves=6).flatmap(
    lambda schema: _ANNOTATIONS.map(
        lambda notes: {**notes, **schema} if isinstance(schema, dict) else schema
    )
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.0, -0.0, math.nan, Decimal("1.5"), Decimal("NaN")]),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.builds(FilePart, st.binary(max_size=2)),
)
INSTANCES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(_NAMES, children, max_size=4),
        st.dictionaries(_NAMES, children, max_size=4).map(MappingProxyType),
    ),
    max_leaves=8,
)


@settings(max_examples=600, deadline=None)
@given(schema=PLAIN_SCHEMAS, instance=INSTANCES)
def test_the_fast_check_accepts_only_what_the_validator_accepts(schema: Any, instance: Any) -> None:
    check = compile_plain_check(schema, formats_asserted=False)
    assert check is not None  # every generated schema is plain
    if check(instance):
        assert list(_ArgumentValidator(schema).iter_errors(instance)) == []


@settings(max_examples=200, deadline=None)
@given(schema=PLAIN_SCHEMAS, instance=INSTANCES)
def test_the_fast_check_accepts_most_valid_instances(schema: Any, instance: Any) -> None:
    # Not a guarantee, a sanity check: ints, strs, lists and dicts never need the validator.
    check = compile_plain_check(schema, formats_asserted=False)
    assert check is not None
    plain = not any(isinstance(v, float | Decimal | bytes | FilePart) for v in _leaves(instance))
    if plain and not list(_ArgumentValidator(schema).iter_errors(instance)):
        assert check(instance)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict | MappingProxyType):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/Pet"},
        {"type": "string", "pattern": "^a"},
        {"anyOf": [{"type": "string"}]},
        {"const": 1},
        {"type": "array", "prefixItems": [{"type": "string"}]},
        {"$schema": "https://json-schema.org/draft/2020-12/schema"},
        {"properties": {"a": {"type": "object", "patternProperties": {"^x": {}}}}},
        {"enum": [1, True]},
        {"type": "color"},
        {"minimum": True},
        {"items": False},
        False,
    ],
)
def test_schemas_beyond_the_plain_subset_get_no_fast_check(schema: Any) -> None:
    assert compile_plain_check(schema, formats_asserted=False) is None


def test_format_disables_the_fast_check_only_when_formats_are_asserted() -> None:
    schema = {"type": "string", "format": "date"}
    assert compile_plain_check(schema, formats_asserted=False) is not None
    assert compile_plain_check(schema, formats_asserted=True) is None


def test_plain_operations_get_a_fast_check_and_errors_still_come_from_the_validator() -> None:
    document = copy.deepcopy(CATALOG.document)
    del document["paths"]["/pets/{petId}"]["put"]["requestBody"]  # the body holds a $ref
    catalog = build_catalog({**document, "components": {}}, source="plain.json")
    arguments = {"path": {"petId": 1}, "query": {"limit": 3}, "header": {"X-Id": "x"}}
    validate_arguments(catalog, "updatePet", arguments)
    _, fast = _validator_for(catalog, "updatePet", catalog.argument_schema("updatePet"))
    assert fast is not None
    assert fast(arguments)
    bad = {**arguments, "query": {"limit": 101, "mode": "a"}}
    assert not fast(bad)
    assert errors_of(bad, catalog=catalog) == (
        "query.limit: 101 is greater than the maximum of 100",
    )
