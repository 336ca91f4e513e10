"""Whole-pipeline fuzzing: mutated real specs give a catalog or an ApiqError, nothing else.

Byte-level mutations mostly stop at the decoder; these mutate the decoded document's
structure (replace any node with any JSON value, drop keys) so that the builders and the
argument-schema code meet every shape a stranger's spec can take.
"""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiq.errors import ApiqError
from apiq.specs.parse import parse_spec

PETSTORE = json.loads(files("apiq.data").joinpath("petstore-oas30.json").read_bytes())
SWAGGER2 = {
    "swagger": "2.0",
    "info": {"title": "t", "version": "1"},
    "host": "api.example.com",
    "basePath": "/v1",
    "securityDefinitions": {"key": {"type": "apiKey", "in": "header", "name": "X-Key"}},
    "definitions": {
        "Node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Node"}}}
    },
    "parameters": {"limit": {"name": "limit", "in": "query", "type": "integer"}},
    "paths": {
        "/nodes/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "type": "string"}],
            "get": {
                "parameters": [{"$ref": "#/parameters/limit"}],
                "responses": {
                    "200": {"description": "ok", "schema": {"$ref": "#/definitions/Node"}}
                },
            },
            "post": {
                "consumes": ["multipart/form-data"],
                "parameters": [{"name": "f", "in": "formData", "type": "file"}],
                "responses": {"201": {"description": "made"}},
            },
        }
    },
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.text(max_size=12)
    | st.sampled_from(["#/components/schemas/Pet", "#/definitions/Node", "#/", "#/paths", "#"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["$ref", "type", "items", "properties", "in", "name", "schema", "x"]),
            children,
            max_size=3,
        )
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        candidates = [path for path in _paths(document) if path]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return document


def _ingest_everything(document: dict[str, Any]) -> None:
    try:
        catalog = parse_spec(json.dumps(document).encode(), source="fuzz.json")
    except ApiqError:
        return
    for operation in catalog.operations:
        try:
            schema = catalog.argument_schema(operation.operation_id)
        except ApiqError:
            continue
        json.dumps(schema)  # argument schemas are plain JSON


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(PETSTORE))
def test_mutated_openapi3_specs_raise_only_apiq_errors(document: dict[str, Any]) -> None:
    _ingest_everything(document)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(SWAGGER2))
def test_mutated_swagger2_specs_raise_only_apiq_errors(document: dict[str, Any]) -> None:
    _ingest_everything(document)
