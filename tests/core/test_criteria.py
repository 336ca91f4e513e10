"""Arazzo Criterion conditions: the specification's examples, the comparison rules, the bounds."""

from __future__ import annotations

import contextlib
import string
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.errors import ExpressionError, WorkflowError
from apiq.workflows import ExpressionContext, ResponseView, check, parse_condition
from apiq.workflows.criteria import MAX_CONDITION_CHARS, REGEX_BUDGET


def ctx_for(
    status: int = 200, body: Any = None, headers: Any = (), **inputs: Any
) -> ExpressionContext:
    return ExpressionContext(inputs=inputs, response=ResponseView(status, headers, body))


PETS_BODY = {"status": "Available", "pets": [{"id": 1, "tags": ["a"]}], "data": {"n": 0}}


# Arazzo 1.0.1 Criterion Object examples, and the conditions of its other examples.
@pytest.mark.parametrize(
    ("condition", "status", "expected"),
    [
        ("$statusCode == 200", 200, True),
        ("$statusCode == 200", 404, False),
        ("$statusCode == 503", 503, True),
        ("$statusCode == 401", 200, False),
        ("{$statusCode == 401}", 401, True),
        ("$statusCode == 200 && $response.body.data != null", 200, True),
        ("$statusCode == 200 && $response.body.missing != null", 200, False),
    ],
)
def test_specification_simple_conditions(condition: str, status: int, expected: bool) -> None:
    assert check(condition, ctx=ctx_for(status, PETS_BODY)) is expected


def test_specification_regex_example() -> None:
    assert check("^200$", type="regex", context="$statusCode", ctx=ctx_for(200)) is True
    assert check("^200$", type="regex", context="$statusCode", ctx=ctx_for(201)) is False
    assert check(r"^2\d{2}$", type="regex", context="$statusCode", ctx=ctx_for(204)) is True


def test_specification_jsonpath_example_follows_rfc_9535() -> None:
    condition, context = "$[?count(@.pets) > 0]", "$response.body"
    # The filter selects children of the root: objects that have a `pets` member.
    assert check(condition, type="jsonpath", context=context, ctx=ctx_for(body=[PETS_BODY]))
    assert not check(condition, type="jsonpath", context=context, ctx=ctx_for(body=PETS_BODY))
    assert not check(condition, type="jsonpath", context=context, ctx=ctx_for(body=[{"x": 1}]))
    # Arazzo 1.1.0's second example: any element in `pets`.
    assert check("$.pets[*]", type="jsonpath", context=context, ctx=ctx_for(body=PETS_BODY))
    assert not check("$.pets[*]", type="jsonpath", context=context, ctx=ctx_for(body={"pets": []}))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # numbers
        ("$statusCode >= 200 && $statusCode < 300", True),
        ("$statusCode > 200", False),
        ("$statusCode <= 200.0", True),
        ("$statusCode == 2e2", True),
        ("-1.5 < 0", True),
        # strings compare case-insensitively
        ("$response.body#/status == 'available'", True),
        ("$response.body.status == 'AVAILABLE'", True),
        ("$response.body.status != 'sold'", True),
        ("'abc' < 'ABD'", True),
        ("'Straße' == 'STRASSE'", True),
        ("'it''s' == 'IT''S'", True),
        ("'' == ''", True),
        # numeric strings become numbers against numbers, and with ordering
        ("$response.header.X-Rate-Limit > 10", True),
        ("$response.header.X-Rate-Limit == 100", True),
        ("$response.header.X-Rate-Limit == '100.0'", False),
        ("'9' < '10'", True),
        ("'9' < 'a'", True),
        ("'abc' < 5", False),
        ("'0x10' == 16", False),
        # null: only itself; absent values are null
        ("null == null", True),
        ("$response.body.missing == null", True),
        ("$response.header.X-None == null", True),
        ("$inputs.absent == null", True),
        ("$steps.never.outputs.x == null", True),
        ("null == 0", False),
        ("null != 0", True),
        ("null < 1", False),
        ("null >= null", False),
        # booleans equal only booleans
        ("true == true", True),
        ("true == 1", False),
        ("true == 'true'", False),
        ("false < true", False),
        # deep equality
        ("$response.body.pets == $response.body.pets", True),
        ("$response.body.pets[0].tags[0] == 'A'", True),
        ("$response.body.pets[0].tags == $response.body.data", False),
        ("$response.body.data < 1", False),
        # logic, precedence, grouping
        ("!($statusCode == 500)", True),
        ("!$statusCode == 500", False),
        ("!!true", True),
        ("true || false && false", True),
        ("(true || false) && false", False),
        ("false || false || true", True),
        ("$response.body.data.n == 0 && ($inputs.count > 2 || $inputs.flag)", True),
        # index and property
        ("$response.body.pets[0].id == 1", True),
        ("$response.body#/pets/0/id == 1", True),
        ("$response.body.pets.0.id == 1", True),
        ("$response.body['data'].n == 0", True),
        ("$response.body.pets[1] == null", True),
        ("$response.body.pets[-1] == null", True),
        ("$response.body.pets[true] == null", True),
        ("$response.body.status[0] == null", True),
        # only the boolean true is true
        ("true", True),
        ("$inputs.flag", True),
        ("$inputs.count", False),
        ("'true'", False),
        ("null", False),
        ("!null", True),
        ("!$inputs.count", True),
        ("$response.body.pets && true", False),
    ],
)
def test_simple_condition_semantics(condition: str, expected: bool) -> None:
    ctx = ctx_for(200, PETS_BODY, (("X-Rate-Limit", "100"),), count=3, flag=True)
    assert check(condition, ctx=ctx) is expected


def test_logic_short_circuits_before_unreadable_parts() -> None:
    no_response = ExpressionContext()
    assert check("false && $statusCode == 200", ctx=no_response) is False
    assert check("true || $statusCode == 200", ctx=no_response) is True
    with pytest.raises(ExpressionError, match="no response yet"):
        check("$statusCode == 200", ctx=no_response)


def test_parse_condition_lists_expressions_and_caches() -> None:
    parsed = parse_condition("$statusCode == 200 && $steps.a.outputs.b[0] != $inputs.c")
    assert [e.text for e in parsed.expressions] == [
        "$statusCode",
        "$steps.a.outputs.b",
        "$inputs.c",
    ]
    assert parsed.type == "simple"
    assert parse_condition("$statusCode == 200 && $steps.a.outputs.b[0] != $inputs.c") is parsed


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ("", "unexpected end at column 1"),
        ("$statusCode ==", "unexpected end at column 15"),
        ("$statusCode = 200", "unexpected '=' at column 13"),
        ("foo == 1", "unexpected word 'foo' (strings take quotes: 'foo') at column 1"),
        ("True", "unexpected word 'True'"),
        ("1 == 2 == 3", "comparisons do not chain; join them with && at column 8"),
        ("'abc", "unterminated string at column 1"),
        ("'a''", "unterminated string"),
        ("($statusCode == 200", "expected ')' at column 20"),
        ("($statusCode == 200}", "expected ')', found '}'"),
        ("$statusCode == 200)", "unexpected ')'"),
        ("$a[0", "runtime expression '$a'"),
        ("$response.body[0", "expected ']'"),
        ("($response.body). == 1", "a property name must follow '.'"),
        ("200 200", "unexpected '200'"),
        ("1e999 > 0", "out of range"),
        ("@ == 1", "unexpected '@'"),
        ("$statusCode == 200 ; drop", "unexpected ';'"),
        ("(" * 40 + "true" + ")" * 40, "nested deeper than 32 levels"),
        ("!" * 40 + "true", "nested deeper than 32 levels"),
        ("x" * (MAX_CONDITION_CHARS + 1), "longer than 4096 characters"),
    ],
)
def test_condition_syntax_errors(condition: str, problem: str) -> None:
    with pytest.raises(WorkflowError, match="condition") as caught:
        parse_condition(condition)
    assert problem in str(caught.value)


def test_bad_expression_in_a_condition_names_both() -> None:
    with pytest.raises(ExpressionError, match=r"condition '\$inputs\. > 1': runtime expression"):
        parse_condition("$inputs. > 1")
    with pytest.raises(WorkflowError, match="must be a string"):
        parse_condition(200)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ExpressionType:
    type: str
    version: str


@pytest.mark.parametrize(
    "type_",
    [
        "jsonpath",
        {"type": "jsonpath", "version": "rfc9535"},
        ExpressionType("jsonpath", "rfc9535"),
    ],
)
def test_jsonpath_type_forms(type_: Any) -> None:
    ctx = ctx_for(body=PETS_BODY)
    assert check("$.pets[0].id", type=type_, context="$response.body", ctx=ctx) is True


@pytest.mark.parametrize(
    ("type_", "problem"),
    [
        ("xpath", "xpath criteria are not supported"),
        ({"type": "xpath", "version": "xpath-30"}, "xpath criteria are not supported"),
        (
            {"type": "jsonpath", "version": "draft-goessner-dispatch-jsonpath-00"},
            "JSONPath version 'draft-goessner-dispatch-jsonpath-00' is not supported",
        ),
        (ExpressionType("jsonpath", "draft-goessner-dispatch-jsonpath-00"), "is not supported"),
        ("glob", "unknown criterion type 'glob'"),
        ({"version": "rfc9535"}, "unknown criterion type None"),
        (["jsonpath"], "unknown criterion type"),
    ],
)
def test_unsupported_types(type_: Any, problem: str) -> None:
    with pytest.raises(WorkflowError, match=r"condition '\$\.a'") as caught:
        check("$.a", type=type_, context="$response.body", ctx=ctx_for())
    assert problem in str(caught.value)


@pytest.mark.parametrize("type_", ["regex", "jsonpath"])
def test_context_rules(type_: str) -> None:
    condition = "available" if type_ == "regex" else "$.status"
    with pytest.raises(WorkflowError, match="needs a context"):
        check(condition, type=type_, ctx=ctx_for(body=PETS_BODY))
    with pytest.raises(WorkflowError, match="needs a context"):
        check(condition, type=type_, context="  ", ctx=ctx_for(body=PETS_BODY))
    braced = check(condition, type=type_, context="{$response.body}", ctx=ctx_for(body=PETS_BODY))
    assert braced is (type_ == "jsonpath")  # the regex is case-sensitive: "Available"
    # A null or absent context fails the condition (Arazzo 1.1.0).
    assert check(condition, type=type_, context="$response.body", ctx=ctx_for()) is False
    assert check(condition, type=type_, context="$inputs.nope", ctx=ctx_for()) is False
    with pytest.raises(ExpressionError, match="no response yet"):
        check(condition, type=type_, context="$response.body", ctx=ExpressionContext())
    with pytest.raises(ExpressionError, match="must start with"):
        check(condition, type=type_, context="response.body", ctx=ctx_for())


def test_simple_conditions_ignore_context() -> None:
    assert check("$statusCode == 200", context="$response.body", ctx=ctx_for()) is True


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("Available", "^avail|Avail"),
        (200, "^200$"),
        (True, "^true$"),
        (None, None),
        (1.5, r"^1\.5$"),
        ({"a": [1, "é"]}, '^{"a":\\[1,"é"\\]}$'),
        (b"caf\xc3\xa9", "^café$"),
        (b"\xff", "^\ufffd$"),
    ],
)
def test_regex_subjects(value: Any, pattern: str | None) -> None:
    ctx = ExpressionContext(inputs={"v": value})
    result = check(pattern or "x", type="regex", context="$inputs.v", ctx=ctx)
    assert result is (pattern is not None)


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(a)\\1", "backreferences are not allowed"),
        ("(?P<x>a)(?P=x)", "backreferences and conditional groups"),
        ("(a)?(?(1)b|c)", "backreferences and conditional groups"),
        ("(a+)+$", "must not repeat or alternate inside"),
        ("(a|b)*", "must not repeat or alternate inside"),
        ("(?:a?){2,}", "must not repeat or alternate inside"),
        ("(?=a*)+", "must not repeat or alternate inside"),
        ("[[a]", "'[' right after '[' is ambiguous"),
        ("[a--b]", "'--' in a set is ambiguous"),
        ("[a&&b]", "'&&' in a set is ambiguous"),
        ("[a||b]", "'||' in a set is ambiguous"),
        ("a*b*c*d*e*f*", "too many open-ended quantifiers"),
        ("(" * 40 + ")" * 40, "groups nested deeper than 32"),
        ("(a", "not a valid pattern: missing ), unterminated subpattern"),
        ("a{3,2}", "not a valid pattern"),
        ("*a", "not a valid pattern"),
        ("x" * 1001, "longer than 1000 characters"),
    ],
)
def test_refused_regexes(pattern: str, problem: str) -> None:
    with pytest.raises(WorkflowError, match="condition") as caught:
        parse_condition(pattern, type="regex")
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("pattern", "max_subject"),
    [
        (r"^2\d{2}$", 1 << 20),
        ("available", 555_555),
        (r"^\d+(\.\d+)?$", 1_290),
        (r"^\d+\.\d+$", 1_000),
        (r"(?i)^application/(json|xml)(;.*)?$", 138_886),
        (".*x", 2_235),
        ("a*a*x", 170),
        ("a{1000}b", 4_995),
        ("(?:ab|cd){2}", 312_500),
    ],
)
def test_regex_subject_bounds(pattern: str, max_subject: int) -> None:
    parsed = parse_condition(pattern, type="regex")
    assert parsed.max_subject == max_subject
    # The worst case the bound allows runs (and returns) rather than backtracking for ever.
    parsed.compiled.search("a" * min(max_subject, 100_000))


def test_regex_context_longer_than_its_bound_raises() -> None:
    ctx = ExpressionContext(inputs={"text": "a" * 400})
    assert check("a$", type="regex", context="$inputs.text", ctx=ctx) is True
    with pytest.raises(WorkflowError, match="is 400 characters, more than this pattern"):
        check("a*a*x", type="regex", context="$inputs.text", ctx=ctx)
    assert REGEX_BUDGET > 0


def test_jsonpath_condition_errors() -> None:
    with pytest.raises(ExpressionError, match="is not RFC 9535 JSONPath"):
        parse_condition("$[?", type="jsonpath")
    with pytest.raises(ExpressionError, match="function 'search' is not defined"):
        parse_condition("$[?search(@.a, 'b')]", type="jsonpath")
    with pytest.raises(WorkflowError, match="longer than 1000"):
        parse_condition("$" + ".a" * 600, type="jsonpath")


# --- properties ---------------------------------------------------------------------------

condition_text = st.lists(
    st.sampled_from(
        [*"$()[]{}!=<>&|'.-_ 0123456789eE", "$statusCode", "$inputs.a", "true", "null", "'x'"]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=80), condition_text))
def test_simple_parser_raises_only_workflow_error(text: str) -> None:
    try:
        parse_condition(text)
    except WorkflowError:
        return
    with contextlib.suppress(WorkflowError):
        assert isinstance(check(text, ctx=ctx_for(200, PETS_BODY, a=1)), bool)


regex_text = st.text(alphabet=st.sampled_from(list("()[]{}|*+?^$\\.,-&~:=!<>Pa1d#")), max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), regex_text), st.text(alphabet="a1-.", max_size=200))
def test_regex_screen_raises_only_workflow_error(pattern: str, subject: str) -> None:
    try:
        parsed = parse_condition(pattern, type="regex")
    except WorkflowError:
        return
    ctx = ExpressionContext(inputs={"s": subject})
    try:
        assert isinstance(check(pattern, type="regex", context="$inputs.s", ctx=ctx), bool)
    except WorkflowError:
        assert len(subject) > (parsed.max_subject or 0)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable, max_size=40))
def test_jsonpath_conditions_raise_only_workflow_error(query: str) -> None:
    try:
        result = check(query, type="jsonpath", context="$response.body", ctx=ctx_for(body=[1]))
    except WorkflowError:
        return
    assert isinstance(result, bool)
