"""decode_document: strict JSON, safe bounded YAML, OpenAPI sniffing, round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from apiq.config import SpecLimits
from apiq.errors import SpecInvalid
from apiq.specs.decode import decode_document

OAS = b'{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}'


def decode(content: bytes, **kwargs: Any) -> dict[str, Any]:
    return decode_document(content, source="spec.test", **kwargs)


def refused(content: bytes, **kwargs: Any) -> SpecInvalid:
    with pytest.raises(SpecInvalid) as info:
        decode(content, **kwargs)
    assert info.value.source == "spec.test"
    assert "spec.test" in str(info.value)
    return info.value


# --- JSON -----------------------------------------------------------------------------------


def test_json_decodes_like_json_loads() -> None:
    assert decode(OAS) == json.loads(OAS)


def test_utf8_bom_is_ignored() -> None:
    assert decode(b"\xef\xbb\xbf" + OAS)["openapi"] == "3.0.3"


@pytest.mark.parametrize(
    ("body", "pointer", "cause"),
    [
        (b'{"openapi": "3.0.0", "a": {"b": 1, "b": 2}}', "/a/b", "duplicate key"),
        (b'{"openapi": "3.0.0", "a": [1, NaN]}', "/a/1", "NaN"),
        (b'{"openapi": "3.0.0", "a": Infinity}', "/a", "Infinity"),
        (b'{"openapi": "3.0.0", "a": -Infinity}', "/a", "-Infinity"),
        (b'{"openapi": "3.0.0", "a": {"x": 1e999}}', "/a/x", "too large"),
        (b'{"openapi": "3.0.0", "n": ' + b"7" * 5000 + b"}", "/n", "5000 digits"),
        (b'{"openapi": "3.0.0", "s": ["\\ud800"]}', "/s/0", "lone UTF-16 surrogate"),
        (b'{"openapi": "3.0.0", "s": {"\\udfff": 1}}', "/s/\\udfff", "lone UTF-16 surrogate"),
    ],
)
def test_strict_json_refusals_name_cause_and_place(body: bytes, pointer: str, cause: str) -> None:
    error = refused(body)
    assert error.pointer == pointer
    assert cause in str(error)


def test_refusal_is_reported_even_when_the_rest_is_broken() -> None:
    error = refused(b'{"openapi": "3.0.0", "a": NaN, "b": ')
    assert "NaN" in str(error)


def test_paired_surrogates_and_escaped_backslashes_are_fine() -> None:
    body = b'{"openapi": "3.0.0", "e": "\\ud83d\\ude00", "t": "\\\\ud800"}'
    assert decode(body)["e"] == "\U0001f600"
    assert decode(body)["t"] == "\\ud800"


def test_invalid_json_names_line_and_column() -> None:
    error = refused(b'{"openapi": "3.0.0",\n "a": [1,, 2]}')
    assert "not valid JSON" in str(error)
    assert "line 2" in str(error)


@pytest.mark.parametrize("depth", [5, 6])
def test_max_depth_is_enforced_exactly(depth: int) -> None:
    # A scalar at the deepest allowed level comes first: it must not be blamed.
    nest = b'{"x": [[[1]]], "a": ' + b"[" * (depth - 2) + b"]" * (depth - 2) + b"}"
    body = b'{"openapi": "3.0.0", "a": ' + nest + b"}"
    limits = SpecLimits(max_depth=5)
    if depth <= 5:
        assert decode(body, limits=limits)["openapi"] == "3.0.0"
    else:
        error = refused(body, limits=limits)
        assert "deeper than 5 levels" in str(error)
        assert error.pointer == "/a/a/0/0/0"


def test_int_digit_limit_holds_even_when_the_process_lifted_it() -> None:
    import sys

    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        error = refused(b'{"openapi": "3.0.0", "n": ' + b"1" * 5000 + b"}")
    finally:
        sys.set_int_max_str_digits(before)
    assert error.pointer == "/n"


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        (b"[1, 2]", "top level is an array"),
        (b"42", "top level is a scalar"),
        (b"- a\n- b\n", "top level is an array"),
        (b"~", "top level is empty"),
        (b'{"info": {}}', "no 'openapi' or 'swagger' field"),
        (b'{"openapi": "3.2.0"}', "unsupported openapi version '3.2.0'"),
        (b'{"openapi": 3}', "unsupported openapi version 3"),
        (b'{"swagger": "1.2"}', "unsupported swagger version '1.2'"),
        (b"   ", "empty"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "looks like an HTML page"),
        ("openapi: 3.0.0".encode("utf-16"), "UTF-16 or UTF-32"),
        ('{"openapi": "3.0.0"}'.encode("utf-32-le"), "UTF-16 or UTF-32"),
        (b'{"openapi": "3.0.0", "a": "\xc3\x28"}', "not valid UTF-8 (byte 27"),
        (b'{"openapi": "3.0.0", "a": "\xed\xa0\x80"}', "not valid UTF-8"),
    ],
)
def test_not_an_openapi_document(body: bytes, cause: str) -> None:
    assert cause in str(refused(body))


@pytest.mark.parametrize("version", ["3.0.0", "3.0.3", "3.1.0", "3.1.1"])
def test_supported_openapi_versions(version: str) -> None:
    assert decode(json.dumps({"openapi": version}).encode())["openapi"] == version


def test_markup_is_named_whatever_the_media_type_but_yaml_may_start_with_a_bracket() -> None:
    page = b"<html><body><form action=/login></form></body></html>"
    assert "HTML" in str(refused(page, media_type="application/json"))
    assert "HTML" in str(refused(page, media_type="application/yaml"))
    assert decode(b"<: 1\nopenapi: 3.0.0\n") == {"<": 1, "openapi": "3.0.0"}


def test_html_media_type_is_refused_whatever_the_body() -> None:
    assert "HTML" in str(refused(OAS, media_type="text/html; charset=utf-8"))


@pytest.mark.parametrize(
    ("media_type", "language"),
    [
        ("application/json", "JSON"),
        ("application/vnd.oai.openapi+json;version=3.0", "JSON"),
        ("application/yaml", "YAML"),
        ("application/vnd.oai.openapi", "YAML"),
        ("text/plain", "YAML"),  # unknown: sniffed; this body does not start with '{'
        (None, "YAML"),
    ],
)
def test_media_type_chooses_the_parser(media_type: str | None, language: str) -> None:
    # JSON reading finds the YAML syntax invalid, YAML reading finds the duplicate key.
    body = b"openapi: 3.0.0\nopenapi: 3.0.1\n"
    assert f"{language}" in str(refused(body, media_type=media_type))


# --- YAML -----------------------------------------------------------------------------------

YAML_OK = b"""\
swagger: 2.0
info: {title: t, version: 1.0}
paths:
  /pets:
    get:
      responses:
        200: {description: ok}
        default: {description: error}
x-dates: [2001-12-14, 2001-12-14t21:59:43.10-05:00]
x-numbers: [0x1A, 017, 1_000, 190:20:30, 1.5, -2.5e+3, ~, yes, Off]
x-base: &base {a: 1, b: 2}
x-merged:
  <<: *base
  b: 3
x-quoted-merge-key: {"<<": 1}
x-tagged: [!!str 12, !!int "7", !!float "1.5", !!bool "true", !!null ""]
"""


def test_yaml_becomes_plain_json_compatible_data() -> None:
    doc = decode(YAML_OK)
    assert doc["swagger"] == "2.0"  # an unquoted 2.0 is read as a number; the text is kept
    assert doc["info"]["version"] == 1.0
    assert list(doc["paths"]["/pets"]["get"]["responses"]) == ["200", "default"]
    assert doc["x-dates"] == ["2001-12-14", "2001-12-14t21:59:43.10-05:00"]
    assert doc["x-numbers"] == [26, 15, 1000, 685230, 1.5, -2500.0, None, True, False]
    assert doc["x-merged"] == {"a": 1, "b": 3}
    assert doc["x-quoted-merge-key"] == {"<<": 1}
    assert doc["x-tagged"] == ["12", 7, 1.5, True, None]
    json.dumps(doc, allow_nan=False)


def test_yaml_aliases_share_one_object() -> None:
    doc = decode(b"openapi: 3.1.0\na: &x {k: [1, 2]}\nb: *x\n")
    assert doc["a"] == doc["b"] == {"k": [1, 2]}


@pytest.mark.parametrize(
    ("body", "pointer", "cause"),
    [
        (b"openapi: 3.0.0\na:\n  b: 1\n  b: 2\n", "/a/b", "duplicate key 'b'"),
        (b"openapi: 3.0.0\n200: x\n'200': y\n", "/200", "duplicate key '200'"),
        (b"openapi: 3.0.0\nx: !!python/object/apply:os.system [id]\n", "/x", "python/object"),
        (b"openapi: 3.0.0\nx: !!python/name:os.system\n", "/x", "python/name"),
        (b"openapi: 3.0.0\nx: !foo bar\n", "/x", "'!foo'"),
        (b"openapi: 3.0.0\nx: !!binary aGk=\n", "/x", "binary"),
        (b"openapi: 3.0.0\nx: !!timestamp 2001-01-01\n", "/x", "timestamp"),
        (b"openapi: 3.0.0\nx: !!set {a, b}\n", "/x", "set"),
        (b"openapi: 3.0.0\nx: !custom {a: 1}\n", "/x", "'!custom'"),
        (b"openapi: 3.0.0\nx: [.nan]\n", "/x/0", "NaN"),
        (b"openapi: 3.0.0\nx: -.inf\n", "/x", "infinity"),
        (b"openapi: 3.0.0\nx: !!int abc\n", "/x", "not a valid int"),
        (b"openapi: 3.0.0\nx: !!bool maybe\n", "/x", "not a boolean"),
        (b"openapi: 3.0.0\nx: " + b"9" * 5000 + b"\n", "/x", "more than 4300 digits"),
        (b"openapi: 3.0.0\nx: 0x" + b"f" * 5000 + b"\n", "/x", "more than 4300 digits"),
        (b"openapi: 3.0.0\n? [a, b]\n: c\n", "", "keys must be scalars"),
        (b"openapi: 3.0.0\nx: &a [1]\n*a : c\n", "", "keys must be scalars"),
        (b"openapi: 3.0.0\nx: *nowhere\n", "/x", "no anchor"),
        (b"openapi: 3.0.0\nx: &a [1, *a]\n", "/x/1", "recursive"),
        (b"openapi: 3.0.0\nx: {<<: 1}\n", "/x/<<", "merge key"),
        (b"openapi: 3.0.0\n---\nopenapi: 3.0.0\n", "", "more than one YAML document"),
    ],
)
def test_yaml_refusals_name_cause_and_place(body: bytes, pointer: str, cause: str) -> None:
    error = refused(body)
    assert error.pointer == pointer
    assert cause in str(error)
    assert "line " in str(error)


def test_yaml_syntax_error_names_line() -> None:
    error = refused(b"openapi: 3.0.0\npaths: [\n")
    assert "not valid YAML at line 3" in str(error)


def test_yaml_node_budget_counts_aliases_expanded() -> None:
    body = b"openapi: 3.0.0\na: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a, *a, *a, *a]\n"
    assert len(decode(body)["b"]) == 6
    error = refused(body, limits=SpecLimits(yaml_max_nodes=50))
    assert "more than 50 nodes" in str(error)


def test_yaml_depth_counts_through_aliases() -> None:
    body = b"openapi: 3.0.0\na: &a [[[[1]]]]\nb: [[[*a]]]\n"
    assert decode(body, limits=SpecLimits(max_depth=8))["b"] == [[[[[[[1]]]]]]]
    assert "deeper than 7 levels" in str(refused(body, limits=SpecLimits(max_depth=7)))


# --- Round trips ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.text(max_size=8), json_values, max_size=5).map(
    lambda doc: {**doc, "openapi": "3.1.0"}
)


@settings(max_examples=200, deadline=None)
@given(documents, st.booleans())
def test_json_round_trip(doc: dict[str, Any], ascii_only: bool) -> None:
    assert decode(json.dumps(doc, ensure_ascii=ascii_only).encode()) == doc


@settings(max_examples=200, deadline=None)
@given(documents, st.booleans(), st.booleans())
def test_yaml_round_trip(doc: dict[str, Any], unicode: bool, flow: bool) -> None:
    # PyYAML's emitter writes NEL/LS/PS raw when allow_unicode is on, and YAML folds them.
    assume(not unicode or not set("\x85\u2028\u2029") & set(json.dumps(doc, ensure_ascii=False)))
    text = yaml.safe_dump(doc, allow_unicode=unicode, default_flow_style=flow)
    assert decode(text.encode(), media_type="application/yaml") == doc
