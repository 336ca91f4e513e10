"""Argument schemas: groups, required, `$defs` closure, recursion, dialect, failures."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.catalog import Catalog, build_catalog
from apiq.catalog.arguments import preferred_media_type
from apiq.errors import ExternalRefRefused, SpecInvalid
from tests.core.schema_refs import refs_in


def build(
    schemas: dict[str, Any], op: dict[str, Any], version: str = "3.0.3", **paths: Any
) -> Catalog:
    document = {
        "openapi": version,
        "info": {"title": "t", "version": "1"},
        "paths": {"/things/{id}": {"post": {"operationId": "op", "responses": {}, **op}}, **paths},
        "components": {"schemas": schemas},
    }
    return build_catalog(document, source="t.json")


def assert_self_contained(schema: dict[str, Any]) -> None:
    defs = schema.get("$defs", {})
    for ref in refs_in({k: v for k, v in schema.items() if k != "$defs"}) | refs_in(defs):
        assert ref.startswith("#/$defs/"), ref
        assert ref.removeprefix("#/$defs/") in defs, ref


BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}},
}


def test_groups_by_location_without_name_collisions() -> None:
    catalog = build(
        {},
        {
            "parameters": [
                {"name": "id", "in": "path", "schema": {"type": "string"}, "description": "the id"},
                {"name": "id", "in": "query", "schema": {"type": "integer"}},
                {"name": "X-Trace", "in": "header", "required": True},
                {"name": "session", "in": "cookie"},
            ]
        },
    )
    schema = catalog.argument_schema("op")
    assert schema == {
        "type": "object",
        "properties": {
            "path": {
                "type": "object",
                "properties": {"id": {"type": "string", "description": "the id"}},
                "additionalProperties": False,
                "required": ["id"],
            },
            "query": {
                "type": "object",
                "properties": {"id": {"type": "integer"}},
                "additionalProperties": False,
            },
            "header": {
                "type": "object",
                "properties": {"X-Trace": {}},
                "additionalProperties": False,
                "required": ["X-Trace"],
            },
            "cookie": {
                "type": "object",
                "properties": {"session": {}},
                "additionalProperties": False,
            },
        },
        "required": ["path", "header"],
        "additionalProperties": False,
    }


def test_no_inputs_gives_an_empty_object() -> None:
    schema = build({}, {}).argument_schema("op")
    assert schema == {"type": "object", "properties": {}, "additionalProperties": False}


def test_recursive_schemas_stay_references_in_defs() -> None:
    schemas = {
        "Node": {
            "type": "object",
            "properties": {
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                "leaf": {"$ref": "#/components/schemas/Leaf"},
            },
        },
        "Leaf": {"type": "string"},
        "Unused": {"type": "integer"},
    }
    schema = build(schemas, {"requestBody": BODY}).argument_schema("op")
    assert schema["properties"]["body"] == {"$ref": "#/$defs/Node"}
    assert schema["required"] == ["body"]
    assert set(schema["$defs"]) == {"Node", "Leaf"}  # only what the operation reaches
    assert schema["$defs"]["Node"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert_self_contained(schema)


def test_mutual_cycles_are_kept_and_reported_on_demand() -> None:
    schemas = {
        "A": {"properties": {"b": {"$ref": "#/components/schemas/B"}}},
        "B": {"properties": {"a": {"$ref": "#/components/schemas/A"}}},
        "Self": {"items": {"$ref": "#/components/schemas/Self"}},
        "Fine": {"properties": {"a": {"$ref": "#/components/schemas/A"}}},
    }
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}
    catalog = build(schemas, {"requestBody": body})
    schema = catalog.argument_schema("op")
    assert set(schema["$defs"]) == {"A", "B"}
    assert_self_contained(schema)
    cycles = catalog.cycle_warnings()
    assert [w.code for w in cycles] == ["cycle", "cycle"]
    assert {w.pointer for w in cycles} == {"/components/schemas/A", "/components/schemas/Self"}
    assert catalog.cycle_warnings() is cycles


def test_refs_to_non_schema_places_get_pointer_names() -> None:
    schemas = {
        "A": {"type": "object", "properties": {"b": {"type": "string"}}},
        "A_properties_b": {"type": "integer"},
    }
    op = {
        "parameters": [
            {"name": "q", "in": "query", "schema": {"$ref": "#/components/schemas/A/properties/b"}}
        ],
        "requestBody": {
            "content": {"application/json": {"schema": {"$ref": "#/paths/~1other/get/x-schema"}}}
        },
    }
    other = {"/other": {"get": {"responses": {}, "x-schema": {"type": "boolean"}}}}
    schema = build(schemas, op, **other).argument_schema("op")
    query_ref = schema["properties"]["query"]["properties"]["q"]["$ref"]
    body_ref = schema["properties"]["body"]["$ref"]
    assert query_ref.startswith("#/$defs/A_properties_b_")  # never the component's own name
    assert body_ref.startswith("#/$defs/paths_other_get_x-schema_")
    assert schema["$defs"][query_ref.removeprefix("#/$defs/")] == {"type": "string"}
    assert schema["$defs"][body_ref.removeprefix("#/$defs/")] == {"type": "boolean"}
    assert_self_contained(schema)


def test_names_do_not_depend_on_build_order() -> None:
    schemas = {"a b": {"type": "string"}, "a_b": {"type": "integer"}}

    def op(op_id: str, target: str) -> dict[str, Any]:
        media = {"application/json": {"schema": {"$ref": f"#/components/schemas/{target}"}}}
        return {"post": {"operationId": op_id, "responses": {}, "requestBody": {"content": media}}}

    paths = {"/x": op("x", "a b"), "/y": op("y", "a_b")}
    first, second = build(schemas, {}, **paths), build(schemas, {}, **paths)
    x1, y1 = first.argument_schema("x"), first.argument_schema("y")
    y2, x2 = second.argument_schema("y"), second.argument_schema("x")
    assert (x1, y1) == (x2, y2)
    assert y1["properties"]["body"] == {"$ref": "#/$defs/a_b"}
    assert x1["properties"]["body"]["$ref"].startswith("#/$defs/a_b_")


def test_openapi_30_nullable_and_exclusive_bounds_become_2020_12() -> None:
    schemas = {
        "N": {
            "type": "integer",
            "nullable": True,
            "minimum": 1,
            "exclusiveMinimum": True,
            "maximum": 9,
            "exclusiveMaximum": False,
            "enum": [2, 3],
        },
        "R": {"nullable": True, "allOf": [{"$ref": "#/components/schemas/N"}]},
    }
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/R"}}}}
    schema = build(schemas, {"requestBody": body}).argument_schema("op")
    assert schema["$defs"]["N"] == {
        "type": ["integer", "null"],
        "exclusiveMinimum": 1,
        "maximum": 9,
        "enum": [2, 3, None],
    }
    assert schema["$defs"]["R"] == {"anyOf": [{"allOf": [{"$ref": "#/$defs/N"}]}, {"type": "null"}]}


def test_openapi_31_schemas_are_copied_as_written() -> None:
    schemas = {"N": {"type": ["string", "null"], "nullable": True, "exclusiveMinimum": 3}}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/N"}}}}
    schema = build(schemas, {"requestBody": body}, version="3.1.0").argument_schema("op")
    assert schema["$defs"]["N"] == schemas["N"]


def test_properties_named_like_keywords_are_not_keywords() -> None:
    inline = {
        "type": "object",
        "properties": {"$ref": {"type": "string"}, "nullable": {"type": "boolean"}},
        "example": {"$ref": "not a reference"},
    }
    body = {"content": {"application/json": {"schema": inline}}}
    schema = build({}, {"requestBody": body}).argument_schema("op")
    assert schema["properties"]["body"] == inline
    assert "$defs" not in schema


@pytest.mark.parametrize(
    ("content", "chosen"),
    [
        ({"text/plain": {}, "application/json": {}}, "application/json"),
        ({"text/plain": {}, "application/vnd.api+json": {}}, "application/vnd.api+json"),
        ({"application/json; charset=utf-8": {}}, "application/json; charset=utf-8"),
        ({"text/plain": {}, "multipart/form-data": {}}, "multipart/form-data"),
        ({"text/plain": {}, "application/xml": {}}, "text/plain"),
        ({}, None),
    ],
)
def test_preferred_media_type(content: dict[str, Any], chosen: str | None) -> None:
    assert preferred_media_type(content) == chosen


def test_body_uses_the_preferred_media_type() -> None:
    body = {
        "content": {
            "application/xml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        }
    }
    assert build({}, {"requestBody": body}).argument_schema("op")["properties"]["body"] == {
        "type": "object"
    }


def test_an_external_ref_inside_a_schema_is_refused() -> None:
    body = {
        "content": {
            "application/json": {
                "schema": {"properties": {"a": {"$ref": "https://evil.example/s.json"}}}
            }
        }
    }
    with pytest.raises(ExternalRefRefused) as info:
        build({}, {"requestBody": body}).argument_schema("op")
    assert info.value.ref == "https://evil.example/s.json"


def test_a_dangling_schema_ref_accepts_anything_and_says_why() -> None:
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Gone"}}}}
    schema = build({}, {"requestBody": body}).argument_schema("op")
    (gone,) = schema["$defs"].values()
    assert set(gone) == {"description"}
    assert "unresolved" in gone["description"]


def test_deep_nesting_is_a_spec_error_not_a_recursion_error() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(5000):
        deep = {"type": "array", "items": deep}
    body = {"content": {"application/json": {"schema": deep}}}
    with pytest.raises(SpecInvalid) as info:
        build({}, {"requestBody": body}).argument_schema("op")
    assert info.value.pointer == "/paths/~1things~1{id}/post"


names = st.from_regex(r"[A-Za-z][A-Za-z0-9 ._/~-]{0,6}", fullmatch=True)


@st.composite
def schema_graphs(draw: st.DrawFn) -> dict[str, Any]:
    """Component schemas that refer to each other at random (cycles included)."""
    keys = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    pointer = {k: "#/components/schemas/" + k.replace("~", "~0").replace("/", "~1") for k in keys}
    leaf = st.sampled_from([{"type": "string"}, {"type": "integer", "nullable": True}, True])
    ref = st.sampled_from(keys).map(lambda k: {"$ref": pointer[k]})
    schema = st.recursive(
        leaf | ref,
        lambda inner: (
            st.fixed_dictionaries({"properties": st.dictionaries(names, inner, max_size=3)})
            | st.fixed_dictionaries({"items": inner})
            | st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=3)})
        ),
        max_leaves=6,
    )
    return {k: draw(schema) for k in keys}


@settings(max_examples=150, deadline=None)
@given(schemas=schema_graphs(), data=st.data())
def test_random_schema_graphs_give_self_contained_argument_schemas(
    schemas: dict[str, Any], data: st.DataObject
) -> None:
    start = data.draw(st.sampled_from(sorted(schemas)))
    ref = "#/components/schemas/" + start.replace("~", "~0").replace("/", "~1")
    body = {"content": {"application/json": {"schema": {"$ref": ref}}}}
    catalog = build(schemas, {"requestBody": body})
    schema = catalog.argument_schema("op")
    assert_self_contained(schema)
    assert schema["properties"]["body"]["$ref"].removeprefix("#/$defs/") in schema["$defs"]
    for warning in catalog.cycle_warnings():
        assert warning.code == "cycle"
