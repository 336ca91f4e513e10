"""`build_request`: exact URLs, path-escape refusal, headers, cookies and every body kind."""

from __future__ import annotations

import email.parser
import email.policy
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from apiq.calls import FilePart, PreparedRequest, build_request
from apiq.catalog import Catalog, build_catalog
from apiq.errors import (
    ConfigurationError,
    ExecutionError,
    InvalidArguments,
    OperationNotFound,
)
from apiq.specs.parse import parse_spec

SERVER = "https://api.example.com/v1"


def catalog_of(paths: dict[str, Any], version: str = "3.0.3", **extra: Any) -> Catalog:
    document = {"openapi": version, "info": {"title": "t", "version": "1"}, "paths": paths}
    document.update(extra)
    return build_catalog(document, source="t.json")


def op(operation_id: str, **fields: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "responses": {"200": {"description": "ok"}}, **fields}


def path_param(name: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


PETS = catalog_of(
    {
        "/pets/{petId}": {
            "get": op(
                "getPet",
                parameters=[
                    path_param("petId"),
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                    {"name": "session", "in": "cookie", "schema": {"type": "string"}},
                ],
            )
        },
        "/files/{dir}/{name}.json": {
            "get": op("getFile", parameters=[path_param("dir"), path_param("name")])
        },
        "/": {"get": op("root")},
        "/search?fixed=1#frag": {
            "get": op(
                "search", parameters=[{"name": "q", "in": "query", "schema": {"type": "string"}}]
            )
        },
    }
)


# --- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ("https://api.example.com/v1", "https://api.example.com/v1/pets/7"),
        ("https://api.example.com/v1/", "https://api.example.com/v1/pets/7"),
        ("https://api.example.com/v1//", "https://api.example.com/v1/pets/7"),
        ("https://api.example.com", "https://api.example.com/pets/7"),
        ("https://api.example.com/", "https://api.example.com/pets/7"),
        ("http://127.0.0.1:8080/a/b", "http://127.0.0.1:8080/a/b/pets/7"),
        ("https://api.example.com/v1?key=x", "https://api.example.com/v1/pets/7?key=x"),
    ],
)
def test_server_url_joined_exactly_once(server: str, url: str) -> None:
    request = build_request(PETS, "getPet", {"path": {"petId": "7"}}, server_url=server)
    assert request.url == url


def test_full_request() -> None:
    request = build_request(
        PETS,
        "getPet",
        {
            "path": {"petId": "a b"},
            "query": {"limit": 10},
            "header": {"X-Trace": "t-1"},
            "cookie": {"session": "s;x=1"},
        },
        server_url=SERVER,
    )
    assert request == PreparedRequest(
        method="GET",
        url=f"{SERVER}/pets/a%20b?limit=10",
        headers=(("X-Trace", "t-1"),),
        cookies=(("session", "s%3Bx%3D1"),),
        content=None,
        content_type=None,
        path_template="/pets/{petId}",
        operation_id="getPet",
    )


def test_root_path_fixed_query_and_fragment() -> None:
    assert build_request(PETS, "root", {}, server_url=SERVER).url == f"{SERVER}/"
    request = build_request(PETS, "search", {"query": {"q": "x y"}}, server_url=SERVER)
    assert request.url == f"{SERVER}/search?fixed=1&q=x%20y"
    assert request.path_template == "/search?fixed=1#frag"


def test_segment_with_literal_text_around_the_value() -> None:
    request = build_request(
        PETS, "getFile", {"path": {"dir": "a/b", "name": "."}}, server_url=SERVER
    )
    assert request.url == f"{SERVER}/files/a%2Fb/..json"


# --- path escapes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("../admin", "..%2Fadmin"),
        ("a/b", "a%2Fb"),
        ("..%2F..%2Fadmin", "..%252F..%252Fadmin"),
        ("...", "..."),
        ("a\\..\\b", "a%5C..%5Cb"),
        ("?x=1#y", "%3Fx%3D1%23y"),
    ],
)
def test_path_values_never_change_the_path(value: str, segment: str) -> None:
    request = build_request(PETS, "getPet", {"path": {"petId": value}}, server_url=SERVER)
    assert request.url == f"{SERVER}/pets/{segment}"
    assert unquote(urlsplit(request.url).path.split("/")[-1]) == value


@pytest.mark.parametrize("value", [".", "..", "", "%2e", "%2e%2e", "%2E%2e", "%252e%252e", ".%2e"])
def test_dot_segment_values_are_refused(value: str) -> None:
    # Encoded forms too: "%2e%2e" would be sent as "%252e%252e", which a server or proxy
    # that decodes twice would read as "..".
    with pytest.raises(InvalidArguments) as caught:
        build_request(PETS, "getPet", {"path": {"petId": value}}, server_url=SERVER)
    assert caught.value.operation_id == "getPet"
    assert caught.value.errors[0].startswith("path.petId: makes the path segment")


def test_label_style_cannot_make_a_dot_segment() -> None:
    catalog = catalog_of(
        {"/a/{x}": {"get": op("op", parameters=[{**path_param("x"), "style": "label"}])}}
    )
    with pytest.raises(InvalidArguments, match=r"path\.x"):
        build_request(catalog, "op", {"path": {"x": "."}}, server_url=SERVER)


SEGMENT_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=400, deadline=None)
@given(value=SEGMENT_TEXT)
@example(value="../admin")
@example(value="%2e%2e")
@example(value="..")
@example(value="%")
def test_path_value_round_trips_in_its_one_segment(value: str) -> None:
    try:
        request = build_request(PETS, "getPet", {"path": {"petId": value}}, server_url=SERVER)
    except InvalidArguments:
        # Only values that are (or decode to) an empty or dot segment are refused.
        decoded = value
        for _ in range(4):
            decoded = unquote(decoded)
        assert value in ("", ".", "..") or unquote(value) in (".", "..") or decoded in (".", "..")
        return
    segments = urlsplit(request.url).path.split("/")
    assert segments[:-1] == ["", "v1", "pets"]
    assert unquote(segments[-1]) == value


def test_lone_surrogate_is_refused_not_crashing() -> None:
    with pytest.raises(InvalidArguments, match="Unicode"):
        build_request(PETS, "getPet", {"path": {"petId": "a\udc80"}}, server_url=SERVER)


# --- headers and cookies --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\x00b", "a\x7f"])
def test_header_injection_is_refused(value: str) -> None:
    with pytest.raises(InvalidArguments) as caught:
        build_request(
            PETS,
            "getPet",
            {"path": {"petId": "1"}, "header": {"X-Trace": value}},
            server_url=SERVER,
        )
    assert caught.value.errors[0].startswith("header.X-Trace: holds the control character")


def test_none_values_leave_parameters_out() -> None:
    catalog = catalog_of(
        {
            "/x": {
                "get": op(
                    "op",
                    parameters=[
                        {"name": n, "in": loc, "schema": {"type": ["string", "null"]}}
                        for n, loc in (("q", "query"), ("h", "header"), ("c", "cookie"))
                    ],
                )
            }
        },
        version="3.1.0",
    )
    arguments = {"query": {"q": None}, "header": {"h": None}, "cookie": {"c": None}}
    request = build_request(catalog, "op", arguments, server_url=SERVER)
    assert (request.url, request.headers, request.cookies) == (f"{SERVER}/x", (), ())


def test_content_parameters_are_json() -> None:
    coordinates = {"application/json": {"schema": {"type": "object"}}}
    catalog = catalog_of(
        {
            "/x/{p}": {
                "get": op(
                    "op",
                    parameters=[
                        {"name": "p", "in": "path", "required": True, "content": coordinates},
                        {"name": "coordinates", "in": "query", "content": coordinates},
                        {"name": "X-Filter", "in": "header", "content": coordinates},
                        {"name": "pref", "in": "cookie", "content": coordinates},
                    ],
                )
            }
        }
    )
    value = {"lat": 1.5, "long": -2, "name": "é"}
    request = build_request(
        catalog,
        "op",
        {
            "path": {"p": value},
            "query": {"coordinates": value},
            "header": {"X-Filter": value},
            "cookie": {"pref": value},
        },
        server_url=SERVER,
    )
    encoded = "%7B%22lat%22%3A1.5%2C%22long%22%3A-2%2C%22name%22%3A%22%C3%A9%22%7D"
    assert request.url == f"{SERVER}/x/{encoded}?coordinates={encoded}"
    assert request.headers == (("X-Filter", '{"lat":1.5,"long":-2,"name":"%C3%A9"}'),)
    assert request.cookies == (("pref", encoded),)


# --- bodies ---------------------------------------------------------------------------------


def body_catalog(content: dict[str, Any], version: str = "3.0.3") -> Catalog:
    return catalog_of(
        {"/things": {"post": op("create", requestBody={"content": content, "required": True})}},
        version=version,
    )


def test_json_body_exact_bytes() -> None:
    catalog = body_catalog({"application/json": {"schema": {"type": "object"}}})
    body = {"name": "Rex", "tags": ["a", "é"], "n": 1.0, "ok": True, "none": None}
    request = build_request(catalog, "create", {"body": body}, server_url=SERVER)
    assert request.method == "POST"
    assert (
        request.content == '{"name":"Rex","tags":["a","é"],"n":1.0,"ok":true,"none":null}'.encode()
    )
    assert request.content_type == "application/json"


def test_plus_json_body_keeps_its_media_type() -> None:
    catalog = body_catalog({"application/vnd.api+json": {"schema": {"type": "object"}}})
    request = build_request(catalog, "create", {"body": {"a": 1}}, server_url=SERVER)
    assert (request.content, request.content_type) == (b'{"a":1}', "application/vnd.api+json")


def test_nan_in_json_body_is_refused() -> None:
    catalog = body_catalog({"application/json": {"schema": {"type": "object"}}})
    with pytest.raises(InvalidArguments) as caught:
        build_request(catalog, "create", {"body": {"x": float("nan")}}, server_url=SERVER)
    assert caught.value.errors[0].startswith("body: cannot be written as JSON")


def test_form_urlencoded_default_encoding() -> None:
    catalog = body_catalog({"application/x-www-form-urlencoded": {"schema": {"type": "object"}}})
    body = {"name": "a b&c", "ids": [1, 2], "color": {"R": 100, "G": 200}, "skip": None}
    request = build_request(catalog, "create", {"body": body}, server_url=SERVER)
    assert request.content == b"name=a%20b%26c&ids=1&ids=2&R=100&G=200"
    assert request.content_type == "application/x-www-form-urlencoded"


def test_form_urlencoded_honours_the_encoding_object() -> None:
    catalog = body_catalog(
        {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object"},
                "encoding": {
                    "ids": {"style": "form", "explode": False},
                    "color": {"style": "deepObject", "explode": True},
                    "tags": {"style": "pipeDelimited"},
                },
            }
        }
    )
    body = {"ids": [1, 2], "color": {"R": 100}, "tags": ["x", "y"]}
    request = build_request(catalog, "create", {"body": body}, server_url=SERVER)
    assert request.content == b"ids=1,2&color%5BR%5D=100&tags=x%7Cy"


def test_encoding_object_is_found_through_a_referenced_request_body() -> None:
    form = {
        "schema": {"type": "object"},
        "encoding": {"ids": {"style": "pipeDelimited", "explode": False}},
    }
    catalog = catalog_of(
        {"/things": {"post": op("create", requestBody={"$ref": "#/components/requestBodies/A"})}},
        components={
            "requestBodies": {
                "A": {"$ref": "#/components/requestBodies/B"},
                "B": {"content": {"application/x-www-form-urlencoded": form}},
            }
        },
    )
    request = build_request(catalog, "create", {"body": {"ids": [1, 2]}}, server_url=SERVER)
    assert request.content == b"ids=1%7C2"


def parse_multipart(request: PreparedRequest) -> list[tuple[dict[str, str], bytes]]:
    assert request.content is not None
    assert request.content_type is not None
    head = f"Content-Type: {request.content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    parts = []
    for part in message.iter_parts():
        headers = {k.lower(): str(v) for k, v in part.items()}
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts.append((headers, payload))
    return parts


def test_multipart_fields_and_files() -> None:
    catalog = body_catalog(
        {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "meta": {"type": "object"},
                        "photo": {"type": "string", "format": "binary"},
                        "more": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                },
                "encoding": {"name": {"contentType": "text/plain; charset=utf-8"}},
            }
        }
    )
    body = {
        "name": 'Rex "the" dog',
        "meta": {"age": 3},
        "photo": b"\x89PNG\r\n--not-a-boundary",
        "more": [FilePart(b"one", filename="a\r\n.txt", content_type="text/plain"), b"two"],
    }
    request = build_request(catalog, "create", {"body": body}, server_url=SERVER)
    assert request.content_type is not None
    assert request.content_type.startswith("multipart/form-data; boundary=")
    parts = parse_multipart(request)
    disposition = [headers["content-disposition"] for headers, _ in parts]
    assert disposition == [
        'form-data; name="name"',
        'form-data; name="meta"',
        'form-data; name="photo"; filename="photo"',
        'form-data; name="more"; filename="a%0D%0A.txt"',
        'form-data; name="more"; filename="more"',
    ]
    # (the parser re-quotes parameters; the raw header is checked just below)
    types = [headers.get("content-type", "").replace('"', "") or None for headers, _ in parts]
    assert types == [
        "text/plain; charset=utf-8",
        "application/json",
        "application/octet-stream",
        "text/plain",
        "application/octet-stream",
    ]
    payloads = [payload for _, payload in parts]
    assert payloads == [
        b'Rex "the" dog',
        b'{"age":3}',
        b"\x89PNG\r\n--not-a-boundary",
        b"one",
        b"two",
    ]
    assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in (request.content or b"")


def test_multipart_boundary_is_random() -> None:
    catalog = body_catalog({"multipart/form-data": {"schema": {"type": "object"}}})
    first = build_request(catalog, "create", {"body": {"a": "1"}}, server_url=SERVER)
    second = build_request(catalog, "create", {"body": {"a": "1"}}, server_url=SERVER)
    assert first.content_type != second.content_type


def test_text_octet_stream_and_wildcard_bodies() -> None:
    text = body_catalog({"text/plain": {"schema": {"type": "string"}}})
    request = build_request(text, "create", {"body": "héllo"}, server_url=SERVER)
    assert (request.content, request.content_type) == (
        "héllo".encode(),
        "text/plain; charset=utf-8",
    )
    octets = body_catalog({"application/octet-stream": {}})
    request = build_request(octets, "create", {"body": b"\x00\x01"}, server_url=SERVER)
    assert (request.content, request.content_type) == (b"\x00\x01", "application/octet-stream")
    with pytest.raises(InvalidArguments, match="body: must be bytes"):
        build_request(octets, "create", {"body": {"a": 1}}, server_url=SERVER)
    anything = body_catalog({"*/*": {}})
    request = build_request(anything, "create", {"body": {"a": 1}}, server_url=SERVER)
    assert (request.content, request.content_type) == (b'{"a":1}', "application/json")
    request = build_request(anything, "create", {"body": b"raw"}, server_url=SERVER)
    assert (request.content, request.content_type) == (b"raw", "application/octet-stream")


def test_swagger2_form_data_with_a_file() -> None:
    document = {
        "swagger": "2.0",
        "info": {"title": "t", "version": "1"},
        "host": "api.example.com",
        "paths": {
            "/upload": {
                "post": {
                    "operationId": "upload",
                    "consumes": ["multipart/form-data"],
                    "parameters": [
                        {"name": "note", "in": "formData", "type": "string", "required": True},
                        {"name": "file", "in": "formData", "type": "file"},
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    catalog = build_catalog(document, source="s.json")
    body = {"note": "hi", "file": FilePart(b"data", filename="d.bin")}
    request = build_request(catalog, "upload", {"body": body}, server_url="https://api.example.com")
    parts = parse_multipart(request)
    assert [payload for _, payload in parts] == [b"hi", b"data"]
    assert parts[1][0]["content-disposition"] == 'form-data; name="file"; filename="d.bin"'


@pytest.mark.shared
def test_style_spec_multipart_operations(shared_specs: Path) -> None:
    raw = (shared_specs / "parameters-style-oas30.json").read_bytes()
    catalog = parse_spec(raw, source="parameters-style-oas30.json")
    body = {"primitive": "blue", "array": ["blue", "black"], "object": {"foo": "1", "bar": "2"}}
    for operation in catalog:
        if operation.request_body is None:
            continue
        request = build_request(
            catalog, operation.operation_id, {"body": body}, server_url=catalog.servers[0].url
        )
        parts = parse_multipart(request)
        # OpenAPI 3.0 applies `style`/`explode` to form-urlencoded only; multipart sends
        # one part per array item and objects as JSON.
        assert [(h["content-disposition"], p) for h, p in parts] == [
            ('form-data; name="primitive"', b"blue"),
            ('form-data; name="array"', b"blue"),
            ('form-data; name="array"', b"black"),
            ('form-data; name="object"', b'{"foo":"1","bar":"2"}'),
        ], operation.operation_id


# --- refusals -------------------------------------------------------------------------------


def test_validation_runs_first() -> None:
    with pytest.raises(InvalidArguments) as caught:
        build_request(
            PETS, "getPet", {"path": {"petId": "1"}, "query": {"limit": "abc"}}, server_url=SERVER
        )
    assert caught.value.errors == ("query.limit: 'abc' is not of type 'integer'",)


def test_unknown_operation() -> None:
    with pytest.raises(OperationNotFound):
        build_request(PETS, "nope", {}, server_url=SERVER)


@pytest.mark.parametrize(
    "server", ["/v1", "ftp://api.example.com", "https://{region}.example.com", "api.example.com"]
)
def test_server_url_must_be_absolute_and_substituted(server: str) -> None:
    with pytest.raises(ConfigurationError):
        build_request(PETS, "getPet", {"path": {"petId": "1"}}, server_url=server)


def test_placeholder_without_parameter_is_a_spec_error() -> None:
    catalog = catalog_of({"/a/{missing}": {"get": op("op")}})
    with pytest.raises(ExecutionError, match=r"\{missing\}"):
        build_request(catalog, "op", {}, server_url=SERVER)
