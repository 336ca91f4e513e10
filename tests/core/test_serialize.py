"""Parameter styles serialize exactly as OpenAPI's "Style Examples" table says.

The table is the one of OpenAPI 3.1.1 / 3.0.4 (which corrected earlier tables to follow
RFC 6570 and to show the required percent-encoding), for a parameter named `color` with the
values "blue", ["blue", "black", "brown"] and {"R": 100, "G": 200, "B": 150}; the "undefined"
column is shown with the empty string, the value the 3.0.3 table's "empty" column used.
Every row goes through `build_request`, so what is asserted is the exact URL (or header,
or cookie) that would be sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apiq.calls import build_request
from apiq.calls.serialize import cookie_pairs, header_value, path_text, query_pairs
from apiq.catalog import Catalog, build_catalog
from apiq.errors import InvalidArguments
from apiq.specs.parse import parse_spec

SERVER = "https://api.example.com/v1"
STRING, ARRAY, OBJECT = "blue", ["blue", "black", "brown"], {"R": 100, "G": 200, "B": 150}
VALUES = {"empty": "", "string": STRING, "array": ARRAY, "object": OBJECT}

# (style, explode) -> {value kind: serialization}; kinds the table marks n/a are absent.
PATH_TABLE: dict[tuple[str, bool], dict[str, str]] = {
    ("matrix", False): {
        "empty": ";color",
        "string": ";color=blue",
        "array": ";color=blue,black,brown",
        "object": ";color=R,100,G,200,B,150",
    },
    ("matrix", True): {
        "empty": ";color",
        "string": ";color=blue",
        "array": ";color=blue;color=black;color=brown",
        "object": ";R=100;G=200;B=150",
    },
    ("label", False): {
        "empty": ".",
        "string": ".blue",
        "array": ".blue,black,brown",
        "object": ".R,100,G,200,B,150",
    },
    ("label", True): {
        "empty": ".",
        "string": ".blue",
        "array": ".blue.black.brown",
        "object": ".R=100.G=200.B=150",
    },
    ("simple", False): {
        "string": "blue",
        "array": "blue,black,brown",
        "object": "R,100,G,200,B,150",
    },
    ("simple", True): {
        "string": "blue",
        "array": "blue,black,brown",
        "object": "R=100,G=200,B=150",
    },
}
QUERY_TABLE: dict[tuple[str, bool], dict[str, str]] = {
    ("form", False): {
        "empty": "color=",
        "string": "color=blue",
        "array": "color=blue,black,brown",
        "object": "color=R,100,G,200,B,150",
    },
    ("form", True): {
        "empty": "color=",
        "string": "color=blue",
        "array": "color=blue&color=black&color=brown",
        "object": "R=100&G=200&B=150",
    },
    ("spaceDelimited", False): {
        "array": "color=blue%20black%20brown",
        "object": "color=R%20100%20G%20200%20B%20150",
    },
    ("pipeDelimited", False): {
        "array": "color=blue%7Cblack%7Cbrown",
        "object": "color=R%7C100%7CG%7C200%7CB%7C150",
    },
    ("deepObject", True): {
        "object": "color%5BR%5D=100&color%5BG%5D=200&color%5BB%5D=150",
    },
}


def one_parameter_catalog(location: str, style: str, explode: bool) -> Catalog:
    path = "/things/{color}/x" if location == "path" else "/things"
    document = {
        "openapi": "3.1.0",
        "info": {"title": "styles", "version": "1"},
        "paths": {
            path: {
                "get": {
                    "operationId": "op",
                    "parameters": [
                        {
                            "name": "color",
                            "in": location,
                            "required": location == "path",
                            "style": style,
                            "explode": explode,
                            "schema": {"type": ["string", "array", "object"]},
                        }
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    return build_catalog(document, source="styles.json")


PATH_CASES = [
    (style, explode, kind, expected)
    for (style, explode), row in PATH_TABLE.items()
    for kind, expected in row.items()
]
QUERY_CASES = [
    (style, explode, kind, expected)
    for (style, explode), row in QUERY_TABLE.items()
    for kind, expected in row.items()
]


@pytest.mark.parametrize(("style", "explode", "kind", "expected"), PATH_CASES)
def test_path_styles_follow_the_table(style: str, explode: bool, kind: str, expected: str) -> None:
    catalog = one_parameter_catalog("path", style, explode)
    assert path_text("color", style, explode, VALUES[kind]) == expected
    arguments = {"path": {"color": VALUES[kind]}}
    if expected == ".":
        # A whole segment of "." would be a dot-segment: refused, never sent (see
        # test_build_request for the path-escape rules).
        with pytest.raises(InvalidArguments) as caught:
            build_request(catalog, "op", arguments, server_url=SERVER)
        assert caught.value.errors[0].startswith("path.color: ")
        return
    request = build_request(catalog, "op", arguments, server_url=SERVER)
    assert request.url == f"{SERVER}/things/{expected}/x"


@pytest.mark.parametrize(("style", "explode", "kind", "expected"), QUERY_CASES)
def test_query_styles_follow_the_table(style: str, explode: bool, kind: str, expected: str) -> None:
    catalog = one_parameter_catalog("query", style, explode)
    request = build_request(catalog, "op", {"query": {"color": VALUES[kind]}}, server_url=SERVER)
    assert request.url == f"{SERVER}/things?{expected}"


@pytest.mark.parametrize("explode", [False, True])
@pytest.mark.parametrize("kind", ["string", "array", "object"])
def test_header_simple_follows_the_table(explode: bool, kind: str) -> None:
    catalog = one_parameter_catalog("header", "simple", explode)
    request = build_request(catalog, "op", {"header": {"color": VALUES[kind]}}, server_url=SERVER)
    assert request.headers == (("color", PATH_TABLE[("simple", explode)][kind]),)
    assert request.url == f"{SERVER}/things"


@pytest.mark.parametrize(
    ("explode", "kind", "expected"),
    [
        (False, "string", [("color", "blue")]),
        (False, "array", [("color", "blue,black,brown")]),
        (False, "object", [("color", "R,100,G,200,B,150")]),
        (True, "string", [("color", "blue")]),
        (True, "array", [("color", "blue"), ("color", "black"), ("color", "brown")]),
        (True, "object", [("R", "100"), ("G", "200"), ("B", "150")]),
    ],
)
def test_cookie_form_pairs(explode: bool, kind: str, expected: list[tuple[str, str]]) -> None:
    catalog = one_parameter_catalog("cookie", "form", explode)
    request = build_request(catalog, "op", {"cookie": {"color": VALUES[kind]}}, server_url=SERVER)
    assert list(request.cookies) == expected
    assert cookie_pairs("color", explode, VALUES[kind]) == expected


RESERVED = "a b/c?d#e&f=g,h;i|j[k]%l+m"
RESERVED_ENCODED = "a%20b%2Fc%3Fd%23e%26f%3Dg%2Ch%3Bi%7Cj%5Bk%5D%25l%2Bm"


@pytest.mark.parametrize(
    ("style", "explode", "value", "expected"),
    [
        ("form", True, RESERVED, [("color", RESERVED_ENCODED)]),
        ("form", False, [RESERVED, "x"], [("color", RESERVED_ENCODED + ",x")]),
        ("form", True, {"k&=": RESERVED}, [("k%26%3D", RESERVED_ENCODED)]),
        ("pipeDelimited", False, ["a|b", "c"], [("color", "a%7Cb%7Cc")]),
        ("deepObject", True, {"a]b": "1"}, [("color%5Ba%5Db%5D", "1")]),
        ("form", True, "é€😀", [("color", "%C3%A9%E2%82%AC%F0%9F%98%80")]),
    ],
)
def test_reserved_characters_are_percent_encoded(
    style: str, explode: bool, value: Any, expected: list[tuple[str, str]]
) -> None:
    assert query_pairs("color", style, explode, value) == expected


def test_path_values_encode_every_reserved_character() -> None:
    assert path_text("id", "simple", False, RESERVED) == RESERVED_ENCODED
    assert path_text("id", "simple", False, [RESERVED, "x"]) == RESERVED_ENCODED + ",x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "color=true"),
        (False, "color=false"),
        (0, "color=0"),
        (1.5, "color=1.5"),
        ([1, None, 2], "color=1&color=2"),
        ({"a": None, "b": 1}, "b=1"),
        ([], ""),
        ({}, ""),
        (None, ""),
        ([{"x": 1}], "color=%7B%22x%22%3A1%7D"),
    ],
)
def test_primitives_undefined_and_nested_values(value: Any, expected: str) -> None:
    pairs = query_pairs("color", "form", True, value)
    assert "&".join(f"{k}={v}" for k, v in pairs) == expected


def test_deep_object_nests_like_qs() -> None:
    pairs = query_pairs("f", "deepObject", True, {"a": {"b": 1, "c": ["x", "y"]}})
    assert pairs == [
        ("f%5Ba%5D%5Bb%5D", "1"),
        ("f%5Ba%5D%5Bc%5D%5B0%5D", "x"),
        ("f%5Ba%5D%5Bc%5D%5B1%5D", "y"),
    ]


def test_header_values_keep_ascii_and_encode_the_rest() -> None:
    assert header_value("simple", False, "a b,c%d") == "a b,c%d"
    assert header_value("simple", False, "café") == "caf%C3%A9"
    assert header_value("simple", False, None) is None


# --- every operation of the shared parameters-style spec ------------------------------------

SAMPLE = {
    "primitive": "blue",
    "array": ["blue", "black", "brown"],
    "object": {"name": "Ann Lee", "description": "a,b"},
}
HOST = "https://httpbin.org"
# operation id -> (url, headers, cookies); values written out from the table by hand.
EXPECTED_STYLE_SPEC: dict[str, tuple[str, list[tuple[str, str]], list[tuple[str, str]]]] = {
    "cookies_standard": (
        f"{HOST}/cookies",
        [],
        [
            ("primitive", "blue"),
            ("array", "blue"),
            ("array", "black"),
            ("array", "brown"),
            ("name", "Ann%20Lee"),
            ("description", "a%2Cb"),
        ],
    ),
    "cookies_form_nonExploded": (
        f"{HOST}/cookies",
        [],
        [
            ("primitive", "blue"),
            ("array", "blue,black,brown"),
            ("object", "name,Ann%20Lee,description,a%2Cb"),
        ],
    ),
    "cookies_form_exploded": (
        f"{HOST}/cookies",
        [],
        [
            ("primitive", "blue"),
            ("array", "blue"),
            ("array", "black"),
            ("array", "brown"),
            ("name", "Ann%20Lee"),
            ("description", "a%2Cb"),
        ],
    ),
    "headers_standard": (
        f"{HOST}/anything/headers",
        [
            ("primitive", "blue"),
            ("array", "blue,black,brown"),
            ("object", "name,Ann Lee,description,a,b"),
        ],
        [],
    ),
    "headers_simple_nonExploded": (
        f"{HOST}/anything/headers/simple",
        [
            ("primitive", "blue"),
            ("array", "blue,black,brown"),
            ("object", "name,Ann Lee,description,a,b"),
        ],
        [],
    ),
    "headers_simple_exploded": (
        f"{HOST}/anything/headers/simple",
        [
            ("primitive", "blue"),
            ("array", "blue,black,brown"),
            ("object", "name=Ann Lee,description=a,b"),
        ],
        [],
    ),
    "paths_standard": (
        f"{HOST}/anything/path/blue/blue,black,brown/name,Ann%20Lee,description,a%2Cb",
        [],
        [],
    ),
    "paths_matrix_nonExploded": (
        f"{HOST}/anything/path/matrix/;primitive=blue/;array=blue,black,brown"
        "/;object=name,Ann%20Lee,description,a%2Cb",
        [],
        [],
    ),
    "paths_matrix_exploded": (
        f"{HOST}/anything/path/matrix/;primitive=blue/;array=blue;array=black;array=brown"
        "/;name=Ann%20Lee;description=a%2Cb",
        [],
        [],
    ),
    "paths_label_nonExploded": (
        f"{HOST}/anything/path/label/.blue/.blue,black,brown/.name,Ann%20Lee,description,a%2Cb",
        [],
        [],
    ),
    "paths_label_exploded": (
        f"{HOST}/anything/path/label/.blue/.blue.black.brown/.name=Ann%20Lee.description=a%2Cb",
        [],
        [],
    ),
    "paths_simple_nonExploded": (
        f"{HOST}/anything/path/simple/blue/blue,black,brown/name,Ann%20Lee,description,a%2Cb",
        [],
        [],
    ),
    "paths_simple_exploded": (
        f"{HOST}/anything/path/simple/blue/blue,black,brown/name=Ann%20Lee,description=a%2Cb",
        [],
        [],
    ),
    "query_standard": (
        f"{HOST}/anything/query?primitive=blue&array=blue&array=black&array=brown"
        "&name=Ann%20Lee&description=a%2Cb",
        [],
        [],
    ),
    "query_form_nonExploded": (
        f"{HOST}/anything/query/form?primitive=blue&array=blue,black,brown"
        "&object=name,Ann%20Lee,description,a%2Cb",
        [],
        [],
    ),
    "query_form_exploded": (
        f"{HOST}/anything/query/form?primitive=blue&array=blue&array=black&array=brown"
        "&name=Ann%20Lee&description=a%2Cb",
        [],
        [],
    ),
    "query_spaceDelimited_nonExploded": (
        f"{HOST}/anything/query/spaceDelimited?array=blue%20black%20brown"
        "&object=name%20Ann%20Lee%20description%20a%2Cb",
        [],
        [],
    ),
    "query_pipeDelimited_nonExploded": (
        f"{HOST}/anything/query/pipeDelimited?array=blue%7Cblack%7Cbrown"
        "&object=name%7CAnn%20Lee%7Cdescription%7Ca%2Cb",
        [],
        [],
    ),
    "query_deepObject_nonExploded": (
        f"{HOST}/anything/query/deepObject?object%5Bname%5D=Ann%20Lee"
        "&object%5Bdescription%5D=a%2Cb",
        [],
        [],
    ),
}


@pytest.mark.shared
def test_every_operation_of_the_style_spec(shared_specs: Path) -> None:
    raw = (shared_specs / "parameters-style-oas30.json").read_bytes()
    catalog = parse_spec(raw, source="parameters-style-oas30.json")
    assert len(catalog) == 25
    seen = set()
    for operation in catalog:
        arguments: dict[str, Any] = {}
        for param in operation.parameters:
            arguments.setdefault(param.location, {})[param.name] = SAMPLE[param.name]
        if operation.request_body is not None:
            arguments["body"] = {"array": ["a", "b"], "object": {"foo": "1", "bar": "2"}}
        request = build_request(
            catalog, operation.operation_id, arguments, server_url=catalog.servers[0].url
        )
        assert request.method == operation.method.upper()
        assert request.path_template == operation.path
        if operation.request_body is not None:
            # multipart bodies: checked part by part in test_build_request
            assert request.content_type is not None
            assert request.content_type.startswith("multipart/form-data; boundary=")
            continue
        seen.add(operation.operation_id)
        url, headers, cookies = EXPECTED_STYLE_SPEC[operation.operation_id]
        assert (request.url, list(request.headers), list(request.cookies)) == (
            url,
            headers,
            cookies,
        ), operation.operation_id
    assert seen == set(EXPECTED_STYLE_SPEC)
