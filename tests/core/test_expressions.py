"""Arazzo runtime expressions: the specification's examples, APIQ's additions, every error."""

from __future__ import annotations

import contextlib
import json
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.errors import ExpressionError, WorkflowError
from apiq.workflows import (
    Expression,
    ExpressionContext,
    RequestView,
    ResponseView,
    escape_text,
    evaluate,
    interpolate,
    parse_expression,
    references,
    resolve_value,
    select_jsonpath,
    validate_jsonpath,
)
from apiq.workflows.expressions import MAX_DEPTH, MAX_NODES

PETS = [{"id": 1, "name": "Rex", "status": "available"}, {"id": 2, "name": "Tom"}]
CTX = ExpressionContext(
    inputs={
        "username": "alice",
        "x-api-key": "k-1",
        "pet_id": 7,
        "quantity": 3,
        "coupon_code": None,
        "user": {"name": "Alice", "tags": ["a", "b"]},
        "a.b": "dotted",
        "a": {"b": "nested", "c": "field"},
    },
    steps={"someStepId": {"pets": PETS}, "browser-authorize": {"code": "c0de"}},
    request=RequestView(
        method="POST",
        url="https://petstore.example/v2/pets/8f1d",
        headers={"Accept": "application/json", "X-Trace": "t1"},
        path={"id": "8f1d"},
        query={"status": "available", "page[size]": "20"},
        body={"user": {"uuid": "8f1d-aa"}, "a/b": {"c~d": 1}},
    ),
    response=ResponseView(
        status_code=200,
        headers=(("Server", "nginx"), ("X-Rate-Limit", "100"), ("Via", "a"), ("via", "b")),
        body={"status": "available", "pets": PETS, "": "empty key"},
    ),
    source_descriptions={"petstore": "https://petstore.example/openapi.yaml"},
    outputs={"bar": {"name": "out"}},
)


# Arazzo 1.0.1 "Runtime Expressions" examples table, plus expressions from its other examples.
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$method", "POST"),
        ("$request.header.accept", "application/json"),
        ("$request.path.id", "8f1d"),
        ("$request.body#/user/uuid", "8f1d-aa"),
        ("$url", "https://petstore.example/v2/pets/8f1d"),
        ("$response.body#/status", "available"),
        ("$response.header.Server", "nginx"),
        ("$inputs.username", "alice"),
        ("$steps.someStepId.outputs.pets", PETS),
        ("$steps.someStepId.outputs.pets#/0/id", 1),
        ("$outputs.bar", {"name": "out"}),
        ("$sourceDescriptions.petstore.url", "https://petstore.example/openapi.yaml"),
        ("$statusCode", 200),
        ("$inputs.x-api-key", "k-1"),
        ("$response.header.X-Rate-Limit", "100"),
        ("$steps.browser-authorize.outputs.code", "c0de"),
        ("$response.body", CTX.response.body if CTX.response else None),
    ],
)
def test_specification_examples(expression: str, expected: Any) -> None:
    assert evaluate(expression, CTX) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "$workflows.foo.inputs.username",
        "$workflows.foo.outputs.bar",
        "$workflows.foo.outputs.mappedResponse#/name",
        "$components.parameters.foo",
        "$components.inputs.pagination",
        "$sourceDescriptions.petstore.findPetsByStatus",
    ],
)
def test_parsed_but_unsupported(expression: str) -> None:
    parsed = parse_expression(expression)
    assert parsed.unsupported
    with pytest.raises(ExpressionError, match="not supported") as caught:
        evaluate(expression, CTX, missing_ok=True)
    assert caught.value.expression == expression


@pytest.mark.parametrize(
    ("expression", "kind", "scope", "name", "fields", "pointer"),
    [
        ("$steps.s1.outputs.pets#/0/id", "steps", "s1", "pets", (), ("0", "id")),
        ("$steps.s1.outputs.pets[0].id", "steps", "s1", "pets", (0, "id"), None),
        ("$inputs.user.tags.1", "inputs", None, "user", ("tags", "1"), None),
        ("$response.body#/a~1b/c~0d", "response", "body", None, (), ("a/b", "c~d")),
        ("$response.body#", "response", "body", None, (), ()),
        ("$response.body#/", "response", "body", None, (), ("",)),
        ("$response.body.data[2]", "response", "body", None, ("data", 2), None),
        ("$request.query.page[size]", "request", "query", "page[size]", (), None),
        ("$request.header.X-Rate.Limit#x", "request", "header", "X-Rate.Limit#x", (), None),
        ("$item", "item", None, None, (), None),
        ("$item.a[1]#/b", "item", None, None, ("a", 1), ("b",)),
        ("$index", "index", None, None, (), None),
        ("$sourceDescriptions.petstore.url", "sourceDescriptions", "petstore", "url", (), None),
    ],
)
def test_parse_structure(
    expression: str,
    kind: str,
    scope: str | None,
    name: str | None,
    fields: tuple[str | int, ...],
    pointer: tuple[str, ...] | None,
) -> None:
    parsed = parse_expression(expression)
    assert (parsed.kind, parsed.scope, parsed.name, parsed.fields, parsed.pointer) == (
        kind,
        scope,
        name,
        fields,
        pointer,
    )
    assert str(parsed) == expression
    assert parse_expression(expression) is parsed  # cached


def test_expression_properties() -> None:
    step = parse_expression("$steps.login.outputs.token.value")
    assert (step.step_id, step.input_name) == ("login", None)
    assert step.name_candidates == ("token.value", "token")
    inputs = parse_expression("$inputs.a.b[0].c")
    assert (inputs.step_id, inputs.input_name) == (None, "a")
    assert inputs.name_candidates == ("a.b", "a")
    assert parse_expression("$statusCode").needs_response
    assert parse_expression("$response.header.X").needs_response
    assert parse_expression("$request.body").needs_request
    assert not parse_expression("$inputs.a").needs_response
    assert parse_expression("$url").name_candidates == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("$", "must start with"),
        ("inputs.x", "must start with"),
        ("$foo.bar", "must start with"),
        ("$input.x", "must start with"),
        ("$inputs", "needs a '.' and a name"),
        ("$inputs.", "needs a '.' and a name"),
        ("$url.x", "takes nothing after it"),
        ("$statusCode#/a", "takes nothing after it"),
        ("$index.x", "takes nothing after it"),
        ("$steps.a", "needs '<id>.<name>'"),
        ("$steps.a.inputs.x", "outputs.<name>"),
        ("$steps.a.outputs.", "outputs.<name>"),
        ("$request.header.", "RFC 9110 token"),
        ("$request.header.a b", "RFC 9110 token"),
        ("$request.header.a(b)", "RFC 9110 token"),
        ("$request.cookie.x", "header, query, path or body"),
        ("$request.query.", "needs a parameter name"),
        ("$request.path.a b", "needs a parameter name"),
        ("$response.query.x", "header.<name> or body"),
        ("$response.path.x", "header.<name> or body"),
        ("$response.bodyx", "header.<name> or body"),
        ("$inputs.a..b", "unexpected"),
        ("$inputs.a[01]", "unexpected"),
        ("$inputs.a[x]", "unexpected"),
        ("$inputs.a b", "unexpected"),
        ("$inputs.a{b}", "unexpected"),
        ("$inputs.#/a", "a name is missing"),
        ("$inputs.a#x", "must be empty or start with '/'"),
        ("$inputs.a#/~2", "~0 or ~1"),
        ("$inputs.a#/b~", "~0 or ~1"),
        ("$request.body#/a}", "no braces"),
        ("$item.", "unexpected"),
        ("$steps..outputs.x", "needs '<id>.<name>'"),
        ("$inputs." + "a" * 3000, "longer than 2048"),
    ],
)
def test_parse_errors(text: str, problem: str) -> None:
    with pytest.raises(ExpressionError, match="runtime expression") as caught:
        parse_expression(text)
    assert problem in str(caught.value)
    assert caught.value.expression.startswith(text[:200])
    assert isinstance(caught.value, WorkflowError)


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(ExpressionError, match="must be a string"):
        parse_expression(123)  # type: ignore[arg-type]


def test_dotted_names_prefer_the_longest_key() -> None:
    assert evaluate("$inputs.a.b", CTX) == "dotted"
    assert evaluate("$inputs.a.c", CTX) == "field"
    assert evaluate("$inputs.user.tags[1]", CTX) == "b"
    assert evaluate("$inputs.user.tags.0", CTX) == "a"
    assert evaluate("$inputs.user#/tags/1", CTX) == "b"


def test_headers_match_case_insensitively_and_join_repeats() -> None:
    assert evaluate("$response.header.server", CTX) == "nginx"
    assert evaluate("$response.header.VIA", CTX) == "a, b"
    assert evaluate("$request.header.x-trace", CTX) == "t1"


def test_pointer_escapes_and_empty_keys() -> None:
    assert evaluate("$request.body#/a~1b/c~0d", CTX) == 1
    assert evaluate("$response.body#/", CTX) == "empty key"
    assert evaluate("$response.body#", CTX) == CTX.response.body  # type: ignore[union-attr]


def test_for_each_item_and_index() -> None:
    ctx = ExpressionContext(item={"a": {"b": [10, 20]}}, index=3)
    assert evaluate("$item.a.b[1]", ctx) == 20
    assert evaluate("$item#/a/b/0", ctx) == 10
    assert evaluate("$index", ctx) == 3
    assert evaluate("$item", ExpressionContext(item=None, index=0)) is None


@pytest.mark.parametrize(
    ("expression", "missing"),
    [
        ("$inputs.nope", "no input named 'nope' (known: a, a.b, coupon_code"),
        ("$outputs.nope", "no workflow output named 'nope' (known: bar)"),
        ("$steps.never.outputs.x", "step 'never' has not run (run so far: browser-authorize,"),
        ("$steps.someStepId.outputs.cats", "no output of step 'someStepId' named 'cats'"),
        ("$steps.someStepId.outputs.pets#/5", "has no item '5' in the array at /"),
        ("$steps.someStepId.outputs.pets#/01", "has no item '01'"),
        ("$steps.someStepId.outputs.pets#/-", "has no item '-'"),
        ("$steps.someStepId.outputs.pets#/0/owner", "has no key 'owner' at /0"),
        ("$steps.someStepId.outputs.pets#/0/id/x", "holds int at /0/id, which has no 'x'"),
        ("$response.body#/status/0", "holds str at /status"),
        ("$response.header.X-Missing", "the response has no X-Missing header"),
        ("$request.query.limit", "no query parameter 'limit'"),
        ("$request.path.petId", "no path parameter 'petId'"),
        ("$sourceDescriptions.other.url", "no source description named 'other'"),
        ("$inputs.coupon_code.x", "holds null at /"),
    ],
)
def test_absent_values_raise_naming_them(expression: str, missing: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression, CTX)
    assert missing in str(caught.value)
    assert expression in str(caught.value)
    assert caught.value.expression == expression
    assert evaluate(expression, CTX, missing_ok=True) is None


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("$statusCode", "no response yet"),
        ("$response.body", "no response yet"),
        ("$url", "no request yet"),
        ("$method", "no request yet"),
        ("$request.body", "no request yet"),
        ("$item", "only inside an x-apiq-forEach"),
        ("$index", "only inside an x-apiq-forEach"),
    ],
)
def test_reading_too_early_raises_even_when_missing_is_ok(expression: str, problem: str) -> None:
    with pytest.raises(ExpressionError, match=problem):
        evaluate(expression, ExpressionContext(), missing_ok=True)


def test_string_bodies_are_never_decoded() -> None:
    ctx = ExpressionContext(response=ResponseView(200, body='{"a": 1}'))
    assert evaluate("$response.body", ctx) == '{"a": 1}'
    with pytest.raises(ExpressionError, match="holds str"):
        evaluate("$response.body#/a", ctx)
    raw = ExpressionContext(response=ResponseView(200, body=b"\x00\x01"))
    assert evaluate("$response.body", raw) == b"\x00\x01"


def test_values_are_shared_not_copied() -> None:
    assert evaluate("$steps.someStepId.outputs.pets", CTX) is PETS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$inputs.pet_id", 7),
        ("{$inputs.pet_id}", 7),
        ("$inputs.user", {"name": "Alice", "tags": ["a", "b"]}),
        ("$inputs.coupon_code", None),
        ("pet-{$inputs.pet_id}", "pet-7"),
        ("{$inputs.username}:{$inputs.quantity}", "alice:3"),
        ("tags={$inputs.user.tags}", 'tags=["a","b"]'),
        ("c={$inputs.coupon_code}", "c=null"),
        ("unicode {$steps.someStepId.outputs.pets#/0/name} é", "unicode Rex é"),
        ("no expression here", "no expression here"),
        ("$100 off", "$100 off"),
        ("$ref", "$ref"),
        ("$index fund", "$index fund"),
        ("$items", "$items"),
        ("{not an expression}", "{not an expression}"),
        ("cost: $5 {$inputs.quantity}", "cost: $5 3"),
        ("\\{$inputs.pet_id}", "{$inputs.pet_id}"),
        ("\\$inputs.pet_id", "$inputs.pet_id"),
        ("a\\b", "a\\b"),
        (
            "{$sourceDescriptions.petstore.url}#/paths/~1pet~1findByStatus/get",
            "https://petstore.example/openapi.yaml#/paths/~1pet~1findByStatus/get",
        ),
    ],
)
def test_interpolate(text: str, expected: Any) -> None:
    assert interpolate(text, CTX) == expected


def test_specification_payload_templates() -> None:
    json_template = (
        '{"petOrder": {"petId": "{$inputs.pet_id}", "couponCode": "{$inputs.coupon_code}",'
        ' "quantity": "{$inputs.quantity}", "status": "placed", "complete": false}}'
    )
    assert json.loads(interpolate(json_template, CTX))["petOrder"] == {
        "petId": "7",
        "couponCode": "null",
        "quantity": "3",
        "status": "placed",
        "complete": False,
    }
    xml = "<petOrder><petId>{$inputs.pet_id}</petId><quantity>{$inputs.quantity}</quantity>"
    assert interpolate(xml, CTX) == "<petOrder><petId>7</petId><quantity>3</quantity>"
    # The specification's form example ends in `scope=$inputs.scope}`, which has no `{`.
    form = "client_id={$inputs.username}&code{$steps.browser-authorize.outputs.code}&scope=$x}"
    assert interpolate(form, CTX) == "client_id=alice&codec0de&scope=$x}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("id={$inputs.pet_id", "has no closing '}'"),
        ("id={$foo}", "must start with"),
        ("id={$inputs.nope}", "no input named 'nope'"),
        ("$inputs.pet_id$", "no input named 'pet_id$'"),
        ("{$inputs.a b}", "unexpected"),
        ("body={$response.body}", "is bytes"),
        ("n={$inputs.nan}", "cannot be written as JSON"),
        ("s={$inputs.set}", "cannot be written as JSON"),
    ],
)
def test_interpolate_errors(text: str, problem: str) -> None:
    ctx = ExpressionContext(
        inputs={"pet_id": 1, "nan": float("nan"), "set": {1}},
        response=ResponseView(200, body=b"\x00"),
    )
    with pytest.raises(ExpressionError, match="runtime expression") as caught:
        interpolate(text, ctx)
    assert problem in str(caught.value)


def test_resolve_value_specification_request_body() -> None:
    payload = {
        "petOrder": {
            "petId": "$inputs.pet_id",
            "couponCode": "$inputs.coupon_code",
            "quantity": "$inputs.quantity",
            "status": "placed",
            "complete": False,
        },
        "lines": ("{$inputs.username} x{$inputs.quantity}", 2.5, None),
    }
    assert resolve_value(payload, CTX) == {
        "petOrder": {
            "petId": 7,
            "couponCode": None,
            "quantity": 3,
            "status": "placed",
            "complete": False,
        },
        "lines": ["alice x3", 2.5, None],
    }


def test_resolve_value_jsonpath_selections() -> None:
    transform = {
        "ids": {"$jsonpath": "$[*].id", "from": "$steps.someStepId.outputs.pets"},
        "firstAvailable": {
            "$jsonpath": "$[?@.status == 'available'].name",
            "from": "{$steps.someStepId.outputs.pets}",
            "first": True,
        },
        "none": {"$jsonpath": "$[?@.id > 99]", "from": "$response.body#/pets", "first": True},
        "count": "$inputs.quantity",
    }
    assert resolve_value(transform, CTX) == {
        "ids": [1, 2],
        "firstAvailable": "Rex",
        "none": None,
        "count": 3,
    }


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ({"$jsonpath": "$.a", "from": "$inputs.user", "extra": 1}, "exactly"),
        ({"$jsonpath": "$.a"}, "exactly"),
        ({"$jsonpath": 3, "from": "$inputs.user"}, "exactly"),
        ({"$jsonpath": "$.a", "from": "$inputs.user", "first": "yes"}, "exactly"),
        ({"$jsonpath": "$.a", "from": "inputs.user"}, "must be one runtime expression"),
        ({"$jsonpath": "$.a", "from": "x {$inputs.user}"}, "must be one runtime expression"),
        ({"$jsonpath": "$[", "from": "$inputs.user"}, "is not RFC 9535 JSONPath"),
        ({"$jsonpath": "$.a", "from": "$inputs.nope"}, "no input named 'nope'"),
    ],
)
def test_resolve_value_selector_errors(selector: dict[str, Any], problem: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        resolve_value({"out": [selector]}, CTX)
    assert problem in str(caught.value)
    assert "at /out/0" in str(caught.value)


def test_resolve_value_errors_say_where() -> None:
    with pytest.raises(ExpressionError, match=r"at /a~1b/0: runtime expression '\$inputs\.x'"):
        resolve_value({"a/b": ["$inputs.x"]}, CTX)


def test_resolve_value_bounds() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ExpressionError, match=f"nested deeper than {MAX_DEPTH}"):
        resolve_value(deep, CTX)
    with pytest.raises(ExpressionError, match=f"more than {MAX_NODES} nodes"):
        resolve_value([0] * MAX_NODES, CTX)
    assert len(resolve_value([0] * (MAX_NODES - 1), CTX)) == MAX_NODES - 1
    many = ExpressionContext(inputs={"xs": list(range(MAX_NODES))})
    with pytest.raises(ExpressionError, match="selects more than"):
        resolve_value({"$jsonpath": "$[*]", "from": "$inputs.xs"}, many)


def test_references_for_ordering_and_validation() -> None:
    step_parts = {
        "parameters": [
            {"name": "Authorization", "in": "header", "value": "$steps.login.outputs.token"},
            {"name": "status", "in": "query", "value": "available"},
            {"name": "q", "in": "query", "value": "{$inputs.kind}-{$steps.search.outputs.id}"},
        ],
        "payload": {"pick": {"$jsonpath": "$[0]", "from": "$steps.list.outputs.pets"}},
        "criteria": "$statusCode",
    }
    found = references(step_parts)
    assert [(r.expression.text, r.location) for r in found] == [
        ("$steps.login.outputs.token", "/parameters/0/value"),
        ("$inputs.kind", "/parameters/2/value"),
        ("$steps.search.outputs.id", "/parameters/2/value"),
        ("$steps.list.outputs.pets", "/payload/pick/from"),
        ("$statusCode", "/criteria"),
    ]
    assert found[2].text == "{$inputs.kind}-{$steps.search.outputs.id}"
    assert {r.expression.step_id for r in found} - {None} == {"login", "search", "list"}
    assert {r.expression.input_name for r in found} - {None} == {"kind"}
    assert [r.expression.text for r in found if r.expression.needs_response] == ["$statusCode"]
    assert references({"plain": ["text", 1, None, "$100"]}) == ()


def test_references_errors_say_where() -> None:
    with pytest.raises(ExpressionError, match=r"at /a/1: runtime expression '\$inputs\.'"):
        references({"a": ["ok", "{$inputs.}"]})
    deep: Any = "$inputs.x"
    for _ in range(MAX_DEPTH + 1):
        deep = {"k": deep}
    with pytest.raises(ExpressionError, match="nested deeper"):
        references(deep)


@pytest.mark.parametrize(
    "query", ["$..a", "$[?@.name == 'a..b']", "$[?@.a]..b", '$[?@.a == "]..["]']
)
def test_jsonpath_descendants_outside_filters_are_fine(query: str) -> None:
    validate_jsonpath(query)


def test_select_jsonpath() -> None:
    body = {"pets": PETS}
    assert select_jsonpath("$.pets[*].name", body) == ["Rex", "Tom"]
    assert select_jsonpath("$.pets[*].name", body, first_only=True) == ["Rex"]
    assert select_jsonpath("$", "text") == ["text"]
    assert select_jsonpath("$[0]", '["not", "decoded"]') == []
    assert select_jsonpath("$..id", body) == [1, 2]
    with pytest.raises(ExpressionError, match="selects more than 1 nodes"):
        select_jsonpath("$..id", body, limit=1)


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("$[?match(@.name, 'R.*')]", "function 'match' is not defined"),
        ("$[?search(@.name, 'R')]", "function 'search' is not defined"),
        ("pets[0]", "is not RFC 9535 JSONPath"),
        ("$.pets[0] ", "is not RFC 9535 JSONPath"),
        ("$." + "a" * 1000, "longer than 1000"),
        ("$..a..b", "at most one descendant segment (..), and none in a filter"),
        ("$[?@..a]", "at most one descendant segment"),
        ("$[?count(@..*) > 0]", "at most one descendant segment"),
        ("$[1, ?@..x]", "at most one descendant segment"),
    ],
)
def test_jsonpath_errors(query: str, problem: str) -> None:
    with pytest.raises(ExpressionError, match="JSONPath") as caught:
        validate_jsonpath(query)
    assert problem in str(caught.value)


# --- properties ---------------------------------------------------------------------------

no_dollar_text = st.text(alphabet=st.characters(blacklist_characters="$"), max_size=20)
json_without_dollars = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | no_dollar_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=30,
)


@given(json_without_dollars)
def test_values_without_dollars_resolve_to_themselves(value: Any) -> None:
    assert resolve_value(value, CTX) == value
    assert references(value) == ()


@given(st.text(max_size=60))
def test_escaped_text_comes_back_unchanged(text: str) -> None:
    assert interpolate(escape_text(text), CTX) == text
    assert references(escape_text(text)) == ()


@given(
    st.sampled_from(["$", "$inputs.a", "\\", "{", "}", "{$", " ", "\\{$"]).flatmap(
        lambda piece: st.lists(st.sampled_from([piece, "x", "$url", "\\$inputs.b"]), max_size=6)
    )
)
def test_escaping_round_trips_tricky_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert interpolate(escape_text(text), CTX) == text


template_literal = st.text(
    alphabet=st.characters(blacklist_characters="{}$\\", blacklist_categories=("Cs",)), max_size=10
)
json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=10)


@given(
    st.lists(st.tuples(template_literal, json_scalars), min_size=1, max_size=4), template_literal
)
def test_embedded_expressions_round_trip(pairs: list[tuple[str, Any]], tail: str) -> None:
    inputs = {f"v{index}": value for index, (_, value) in enumerate(pairs)}
    template = "".join(f"{text}{{$inputs.v{index}}}" for index, (text, _) in enumerate(pairs))
    expected = "".join(
        text + (value if isinstance(value, str) else json.dumps(value)) for text, value in pairs
    )
    result = interpolate("<" + template + tail, ExpressionContext(inputs=inputs))
    assert result == "<" + expected + tail


expression_like = st.builds(
    lambda root, rest: root + rest,
    st.sampled_from(["$", "$inputs", "$steps", "$request", "$response", "$item", "$url", "{$"]),
    st.text(alphabet=string.printable + "é~#/[]{}.", max_size=30),
)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=40), expression_like))
def test_parsing_raises_only_expression_error(text: str) -> None:
    try:
        parsed = parse_expression(text)
    except ExpressionError:
        return
    assert isinstance(parsed, Expression)
    with contextlib.suppress(ExpressionError):
        evaluate(parsed, CTX, missing_ok=True)
        interpolate(text, CTX)
