"""Swagger 2.0 normalized to the same catalog model as OpenAPI 3.x."""

from __future__ import annotations

from typing import Any

import pytest

from apiq.catalog import Catalog, build_catalog


def swagger(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"swagger": "2.0", "info": {"title": "Old API", "version": "2"}, "paths": paths, **extra}


def ok(op_id: str, **fields: Any) -> dict[str, Any]:
    return {"operationId": op_id, "responses": {"200": {"description": "OK"}}, **fields}


def build(document: dict[str, Any]) -> Catalog:
    return build_catalog(document, source="old.json")


def test_host_base_path_and_schemes_become_servers() -> None:
    catalog = build(swagger({}, host="api.example.com", basePath="/v1/", schemes=["https", "http"]))
    assert [s.url for s in catalog.servers] == [
        "https://api.example.com/v1",
        "http://api.example.com/v1",
    ]
    assert catalog.spec_version == "2.0"


@pytest.mark.parametrize(
    ("extra", "urls"),
    [
        ({"basePath": "/api"}, ["/api"]),
        ({}, ["/"]),
        ({"host": "h.example"}, ["https://h.example"]),
    ],
)
def test_servers_without_host_or_schemes(extra: dict[str, Any], urls: list[str]) -> None:
    assert [s.url for s in build(swagger({}, **extra)).servers] == urls


def test_operation_schemes_override_servers() -> None:
    catalog = build(swagger({"/a": {"get": ok("a", schemes=["wss"])}}, host="h", schemes=["https"]))
    assert [s.url for s in catalog.operation("a").servers] == ["wss://h"]


def test_body_parameter_becomes_the_request_body_per_consumes() -> None:
    body = {
        "in": "body",
        "name": "pet",
        "required": True,
        "description": "the pet",
        "schema": {"$ref": "#/definitions/Pet"},
    }
    catalog = build(
        swagger(
            {
                "/a": {"post": ok("a", parameters=[body])},
                "/b": {
                    "post": ok(
                        "b", parameters=[body], consumes=["application/xml", "application/json"]
                    )
                },
            },
            definitions={"Pet": {"type": "object"}},
        )
    )
    a, b = catalog.operation("a").request_body, catalog.operation("b").request_body
    assert a is not None
    assert b is not None
    assert (a.required, a.description) == (True, "the pet")
    assert dict(a.content) == {"application/json": {"$ref": "#/definitions/Pet"}}
    assert list(b.content) == ["application/xml", "application/json"]
    assert catalog.operation("a").parameters == ()


def form_field(name: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"in": "formData", "name": name, "type": kind, **extra}


def test_form_data_becomes_an_object_schema() -> None:
    catalog = build(
        swagger(
            {
                "/urlencoded": {
                    "post": ok(
                        "u",
                        parameters=[
                            form_field("a", required=True, description="A"),
                            form_field("n", "integer"),
                        ],
                    )
                },
                "/file": {"post": ok("f", parameters=[form_field("upload", "file")])},
                "/multi": {
                    "post": ok("m", parameters=[form_field("a")], consumes=["multipart/form-data"])
                },
            }
        )
    )
    urlencoded = catalog.operation("u").request_body
    assert urlencoded is not None
    assert urlencoded.required
    assert dict(urlencoded.content) == {
        "application/x-www-form-urlencoded": {
            "type": "object",
            "properties": {"a": {"type": "string", "description": "A"}, "n": {"type": "integer"}},
            "required": ["a"],
        }
    }
    file_body = catalog.operation("f").request_body
    assert file_body is not None
    assert dict(file_body.content) == {
        "multipart/form-data": {
            "type": "object",
            "properties": {"upload": {"type": "string", "format": "binary"}},
        }
    }
    multi = catalog.operation("m").request_body
    assert multi is not None
    assert list(multi.content) == ["multipart/form-data"]


def test_security_definitions_become_security_schemes() -> None:
    catalog = build(
        swagger(
            {"/a": {"get": ok("a", security=[{"oauth": ["read"]}])}},
            securityDefinitions={
                "basic": {"type": "basic"},
                "key": {"type": "apiKey", "in": "query", "name": "api_key"},
                "implicit": {
                    "type": "oauth2",
                    "flow": "implicit",
                    "authorizationUrl": "https://a",
                    "scopes": {"r": "read"},
                },
                "password": {
                    "type": "oauth2",
                    "flow": "password",
                    "tokenUrl": "https://t",
                    "scopes": {},
                },
                "oauth": {
                    "type": "oauth2",
                    "flow": "application",
                    "tokenUrl": "https://t",
                    "scopes": {},
                },
                "code": {
                    "type": "oauth2",
                    "flow": "accessCode",
                    "authorizationUrl": "https://a",
                    "tokenUrl": "https://t",
                    "scopes": {},
                },
            },
            security=[{"basic": []}],
        )
    )
    schemes = catalog.security_schemes
    assert (schemes["basic"].type, schemes["basic"].scheme) == ("http", "basic")
    assert (schemes["key"].type, schemes["key"].location, schemes["key"].parameter_name) == (
        "apiKey",
        "query",
        "api_key",
    )
    assert schemes["implicit"].flows == {
        "implicit": {"authorizationUrl": "https://a", "scopes": {"r": "read"}}
    }
    assert list(schemes["password"].flows) == ["password"]
    assert schemes["oauth"].flows == {"clientCredentials": {"tokenUrl": "https://t", "scopes": {}}}
    assert schemes["code"].flows["authorizationCode"]["tokenUrl"] == "https://t"
    assert catalog.security == ({"basic": ()},)
    assert catalog.operation("a").security == ({"oauth": ("read",)},)


def test_produces_gives_response_media_types() -> None:
    catalog = build(
        swagger(
            {
                "/a": {
                    "get": {
                        "operationId": "a",
                        "produces": ["application/xml"],
                        "responses": {
                            "200": {"description": "ok", "schema": {"type": "string"}},
                            "404": {"description": "no"},
                        },
                    }
                },
                "/b": {
                    "get": {"operationId": "b", "responses": {"200": {"$ref": "#/responses/Thing"}}}
                },
            },
            produces=["application/json"],
            responses={"Thing": {"description": "thing", "schema": {"$ref": "#/definitions/T"}}},
        )
    )
    ok_a, missing = catalog.operation("a").responses
    assert (ok_a.status, dict(ok_a.content)) == ("200", {"application/xml": {"type": "string"}})
    assert (missing.status, dict(missing.content)) == ("404", {})
    (thing,) = catalog.operation("b").responses
    assert (thing.description, dict(thing.content)) == (
        "thing",
        {"application/json": {"$ref": "#/definitions/T"}},
    )


@pytest.mark.parametrize(
    ("fmt", "style", "explode"),
    [
        (None, "form", False),
        ("csv", "form", False),
        ("ssv", "spaceDelimited", False),
        ("pipes", "pipeDelimited", False),
        ("multi", "form", True),
    ],
)
def test_collection_format_gives_style_and_explode(
    fmt: str | None, style: str, explode: bool
) -> None:
    param: dict[str, Any] = {
        "in": "query",
        "name": "tags",
        "type": "array",
        "items": {"type": "string"},
    }
    if fmt:
        param["collectionFormat"] = fmt
    (p,) = build(swagger({"/a": {"get": ok("a", parameters=[param])}})).operation("a").parameters
    assert (p.style, p.explode) == (style, explode)


def test_parameter_fields_become_a_schema() -> None:
    params = [
        {"in": "path", "name": "id", "type": "integer", "format": "int64", "minimum": 1},
        {
            "in": "query",
            "name": "status",
            "type": "string",
            "enum": ["a", "b"],
            "default": "a",
            "description": "the status",
            "required": True,
        },
        {
            "in": "header",
            "name": "X-Ids",
            "type": "array",
            "items": {"type": "integer", "maximum": 9},
        },
    ]
    got = build(
        swagger({"/a/{id}": {"parameters": params[:1], "get": ok("a", parameters=params[1:])}})
    )
    path, query, header = got.operation("a").parameters
    assert (path.required, path.style, path.explode, dict(path.schema)) == (
        True,
        "simple",
        False,
        {"type": "integer", "format": "int64", "minimum": 1},
    )
    assert (query.required, query.style, query.explode, query.description) == (
        True,
        "form",
        True,
        "the status",
    )
    assert dict(query.schema) == {"type": "string", "enum": ["a", "b"], "default": "a"}
    assert (header.style, dict(header.schema)) == (
        "simple",
        {"type": "array", "items": {"type": "integer", "maximum": 9}},
    )


def test_shared_parameter_refs_resolve() -> None:
    catalog = build(
        swagger(
            {
                "/a": {
                    "parameters": [{"$ref": "#/parameters/pretty"}],
                    "get": ok("a"),
                    "put": ok("b"),
                }
            },
            parameters={"pretty": {"in": "query", "name": "pretty", "type": "string"}},
        )
    )
    (a,), (b,) = catalog.operation("a").parameters, catalog.operation("b").parameters
    assert a.name == "pretty"
    assert a is b


def test_argument_schema_maps_definitions_refs() -> None:
    catalog = build(
        swagger(
            {
                "/a": {
                    "post": ok(
                        "a",
                        parameters=[
                            {"in": "body", "name": "b", "schema": {"$ref": "#/definitions/Node"}}
                        ],
                    )
                }
            },
            definitions={
                "Node": {
                    "type": "object",
                    "x-nullable": True,
                    "properties": {"next": {"$ref": "#/definitions/Node"}},
                }
            },
        )
    )
    schema = catalog.argument_schema("a")
    assert schema["properties"]["body"] == {"$ref": "#/$defs/Node"}
    assert schema["$defs"]["Node"] == {
        "type": ["object", "null"],
        "properties": {"next": {"$ref": "#/$defs/Node"}},
    }
