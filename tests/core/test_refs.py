"""check_refs, resolve_ref and resolve: internal JSON Pointers only, never a fetch."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.errors import ExternalRefRefused, SpecInvalid
from apiq.specs.decode import decode_document
from apiq.specs.refs import check_refs, resolve, resolve_ref

EXTERNAL = [
    "file:///etc/passwd",
    "other.yaml#/x",
    "../x.json",
    "http://169.254.169.254/latest",
    "https://example.com/spec.json#/components/schemas/Pet",
    "//example.com/x",
    "other.json",
    "",
    "#anchor",
]


def spec(schemas: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"openapi": "3.1.0", "paths": {}, "components": {"schemas": schemas}, **extra}


def both_ways(doc: dict[str, Any], raw: bytes | None = None) -> list[ExternalRefRefused | None]:
    """check_refs with and without the raw text; each outcome (None or the refusal)."""
    outcomes: list[ExternalRefRefused | None] = []
    for text in (raw if raw is not None else json.dumps(doc).encode(), None):
        try:
            check_refs(doc, source="spec.test", raw=text)
            outcomes.append(None)
        except ExternalRefRefused as exc:
            outcomes.append(exc)
    return outcomes


@pytest.mark.parametrize("ref", EXTERNAL)
def test_external_refs_are_refused_naming_the_ref(ref: str) -> None:
    doc = spec({"Pet": {"type": "object"}}, paths={"/p": {"get": {"responses": {"200": {}}}}})
    doc["paths"]["/p"]["get"]["responses"]["200"] = {"$ref": ref}
    for outcome in both_ways(doc):
        assert outcome is not None
        assert outcome.ref == ref
        assert outcome.source == "spec.test"
        assert repr(ref) in str(outcome)
        assert "/paths/~1p/get/responses/200" in str(outcome)


def test_internal_refs_pass_anywhere() -> None:
    doc = spec(
        {"Pet": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/x/y"}}}}},
        paths={"/p": {"$ref": "#"}},
        x={"y": [{"$ref": "#/components/schemas/Pet"}]},
    )
    assert both_ways(doc) == [None, None]


def test_first_external_ref_in_document_order_is_named() -> None:
    doc = spec({"A": {"$ref": "a.json"}, "B": {"items": [{"$ref": "b.json"}]}})
    assert [o.ref for o in both_ways(doc) if o] == ["a.json", "a.json"]


def test_a_property_named_ref_is_not_a_reference() -> None:
    # Kubernetes' JSONSchemaProps has a property called "$ref" whose value is a schema.
    doc = spec({"Props": {"properties": {"$ref": {"type": "string"}, "x": {"$ref": ["u"]}}}})
    assert both_ways(doc) == [None, None]


def test_ref_text_inside_strings_is_not_a_reference() -> None:
    doc = spec({"A": {"description": 'write "$ref": "http://x/y" to refer', 'a "$ref': "b.js"}})
    assert both_ways(doc) == [None, None]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"openapi": "3.1.0", "a": {"\\u0024ref": "file:///etc/passwd"}}',
        b'{"openapi": "3.1.0", "a": {"$re\\u0066": "file:///etc/passwd"}}',
        b'{"openapi": "3.1.0", "a": {"$ref": "file:\\/\\/\\/etc\\/passwd"}}',
        b'{"openapi": "3.1.0", "a": {"$ref"  :\n  "file:///etc/passwd"}}',
    ],
)
def test_escaped_spellings_in_raw_json_are_caught(raw: bytes) -> None:
    doc = decode_document(raw, source="spec.test")
    assert [o.ref for o in both_ways(doc, raw) if o] == ["file:///etc/passwd"] * 2


@pytest.mark.parametrize(
    "raw",
    [
        b"openapi: 3.1.0\na:\n  $ref: ../x.json\n",
        b"openapi: 3.1.0\na:\n  '$ref': ../x.json\n",
        b'openapi: 3.1.0\na:\n  "$ref": ../x.json\n',
        b"openapi: 3.1.0\na:\n  \"$ref\": '../x.json'\n",
        b'openapi: 3.1.0\na:\n  "\\x24ref": "../x.json"\n',
        b'openapi: 3.1.0\na:\n  ? "$r\\\n     ef"\n  : "../x.json"\n',
        b'openapi: 3.1.0\nb: &r "../x.json"\na:\n  "$ref": *r\n',
        b'openapi: 3.1.0\nd: \'"$ref": "#/\'\na: {"$ref": "../x.json"}\n',
    ],
)
def test_yaml_spellings_are_caught(raw: bytes) -> None:
    doc = decode_document(raw, source="spec.test")
    assert [o.ref for o in both_ways(doc, raw) if o] == ["../x.json"] * 2


def test_resolve_ref_follows_rfc6901_and_percent_encoding() -> None:
    doc = {
        "paths": {"/pets/{id}": {"get": 1}},
        "a~b": {"c d": 2, "%": 3},
        "list": [10, 11],
        "": {"": 4},
    }
    assert resolve_ref(doc, "#/paths/~1pets~1{id}/get", source="s") == 1
    assert resolve_ref(doc, "#/paths/~1pets~1%7Bid%7D/get", source="s") == 1
    assert resolve_ref(doc, "#/a~0b/c%20d", source="s") == 2
    assert resolve_ref(doc, "#/a~0b/%25", source="s") == 3
    assert resolve_ref(doc, "#/list/1", source="s") == 11
    assert resolve_ref(doc, "#//", source="s") == 4
    assert resolve_ref(doc, "#", source="s") is doc


@pytest.mark.parametrize(
    ("ref", "cause"),
    [
        ("#/paths/missing", "'#/paths' has no 'missing'"),
        ("#/list/2", "'#/list' has no '2'"),
        ("#/list/01", "'#/list' has no '01'"),
        ("#/list/-", "'#/list' has no '-'"),
        ("#/list/0/x", "'#/list/0' has no 'x'"),
        ("#/a~2b", "'~' must be followed by 0 or 1"),
        ("#/%ff", "not a valid JSON Pointer"),
    ],
)
def test_resolve_ref_refuses_dangling_and_malformed(ref: str, cause: str) -> None:
    doc = {"paths": {}, "list": [{}, {}]}
    with pytest.raises(SpecInvalid) as info:
        resolve_ref(doc, ref, source="spec.test")
    assert cause in str(info.value)
    assert repr(ref) in str(info.value)


@pytest.mark.parametrize("ref", EXTERNAL)
def test_resolve_ref_refuses_external(ref: str) -> None:
    with pytest.raises(ExternalRefRefused) as info:
        resolve_ref({}, ref, source="spec.test")
    assert info.value.ref == ref


def test_resolve_follows_chains() -> None:
    doc = spec({"A": {"$ref": "#/components/schemas/B"}, "B": {"type": "string"}})
    node, last = resolve(doc, {"$ref": "#/components/schemas/A"}, source="s")
    assert node == {"type": "string"}
    assert last == "#/components/schemas/B"
    assert resolve(doc, {"type": "x"}, source="s") == ({"type": "x"}, None)
    prop = {"$ref": {"type": "string"}}
    assert resolve(doc, prop, source="s") == (prop, None)


def test_resolve_refuses_cycles_naming_the_ref() -> None:
    doc = spec({"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}})
    with pytest.raises(SpecInvalid) as info:
        resolve(doc, {"$ref": "#/components/schemas/A"}, source="s")
    assert "loops back" in str(info.value)
    assert "#/components/schemas/B" in str(info.value)


def test_resolve_stops_after_max_hops() -> None:
    schemas = {f"S{i}": {"$ref": f"#/components/schemas/S{i + 1}"} for i in range(40)}
    doc = spec({**schemas, "S40": {"type": "integer"}})
    assert resolve(doc, schemas["S0"], source="s", max_hops=64)[0] == {"type": "integer"}
    with pytest.raises(SpecInvalid, match="over 32 hops"):
        resolve(doc, schemas["S0"], source="s")


def test_check_refs_survives_shared_and_cyclic_mappings() -> None:
    shared: dict[str, Any] = {"$ref": "#/a"}
    cyclic: dict[str, Any] = {"openapi": "3.1.0", "x": [shared, shared]}
    cyclic["self"] = cyclic
    check_refs(cyclic, source="s")


# --- The raw fast path agrees with the walk ----------------------------------------------

refs = st.sampled_from(["#/a", "#", "#/components/x~1y", *EXTERNAL]) | st.text(max_size=6)
trees = st.recursive(
    st.none() | st.integers() | st.text(max_size=5) | st.builds(lambda r: {"$ref": r}, refs),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["$ref", "a", "b", "$refs", "x$ref"]), children, max_size=3
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(trees, st.sampled_from(["json", "json-ascii", "json-indent", "yaml", "yaml-flow"]))
def test_fast_path_agrees_with_the_walk(tree: Any, form: str) -> None:
    doc = {"openapi": "3.1.0", "t": tree}
    if form.startswith("json"):
        raw = json.dumps(
            doc, ensure_ascii=form == "json-ascii", indent=2 if "indent" in form else None
        )
    else:
        raw = yaml.safe_dump(doc, default_flow_style=form == "yaml-flow", allow_unicode=True)
    content = raw.encode()
    media_type = "application/yaml" if form.startswith("yaml") else "application/json"
    decoded = decode_document(content, source="s", media_type=media_type)
    with_raw, walked = both_ways(decoded, content)
    assert (with_raw and with_raw.ref) == (walked and walked.ref)
