"""Expressions inside values: templates, JSONPath selections, and finding them.

Strings hold expressions in two ways (`interpolate`). A string that is one expression and has
no whitespace, such as `$inputs.id`, gives that value with its type. Elsewhere `{$...}` is
replaced by the value, as text (strings as they are, anything else as compact JSON); a string
that is exactly one `{$...}` gives the typed value too. A string starting with `$` that is not
a known root (`$100`, `$ref`) or that has whitespace (`$index fund`) stays text. Escapes:
`\\{$` is a literal `{$`, and one leading backslash keeps a would-be expression text
(`\\$inputs.id` is the text `$inputs.id`); `escape_text` adds both, nothing else is special.

`resolve_value` walks dicts and lists (bounded by `MAX_DEPTH` and `MAX_NODES`);
`{"$jsonpath": query, "from": expression}` selects from a value. JSONPath (`select_jsonpath`)
is python-jsonpath in strict RFC 9535 mode, without what can burn CPU on a large response:
the regex functions `match()` and `search()` (backtracking; a `regex` criterion is bounded
instead), `..` inside a filter, and more than one `..`. `references` finds every expression in
a value, for validation and for the executor's dependency graph.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

import jsonpath

from apiq.errors import ExpressionError
from apiq.workflows.expressions import (
    _ROOT,
    MAX_DEPTH,
    MAX_NODES,
    Expression,
    ExpressionContext,
    _fail,
    evaluate,
    parse_expression,
)

__all__ = [
    "MAX_QUERY_CHARS",
    "Reference",
    "escape_text",
    "interpolate",
    "references",
    "resolve_value",
    "select_jsonpath",
    "validate_jsonpath",
]

MAX_QUERY_CHARS = 1_000
"""Longest JSONPath query accepted."""
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_JSONPATH = jsonpath.JSONPathEnvironment(strict=True)
# Regex functions backtrack without a bound on data the plan does not control (see docstring).
del _JSONPATH.function_extensions["match"], _JSONPATH.function_extensions["search"]


@dataclass(frozen=True, slots=True)
class Reference:
    """An expression found in a value by `references`, with where it was found."""

    expression: Expression
    text: str
    """The whole string that holds it, for error messages."""
    location: str
    """JSON Pointer to that string inside the walked value (`""` for the value itself)."""


def escape_text(text: str) -> str:
    """Text that `interpolate` gives back unchanged: the inverse of interpolation's escapes."""
    escaped = text.replace("{$", "\\{$")
    stripped = escaped.lstrip("\\")
    if _ROOT.match(stripped) and not _has_space(escaped):
        return "\\" + escaped
    return escaped


def interpolate(text: str, ctx: ExpressionContext) -> Any:
    """Put runtime expressions in a string to work (module docstring: "Strings").

    Returns:
        The typed value when `text` is one expression; else `text` with each `{$...}`
        replaced (strings as they are, other values as compact JSON) and escapes undone.

    Raises:
        ExpressionError: An expression is malformed, unsupported or absent, a `{$` is not
            closed, or a value cannot be written as text (bytes, NaN).
    """
    if "$" not in text:
        return text
    parts = _template_cached(text) if len(text) <= 4_096 else _parse_template(text)
    if parts is None:
        return text
    if len(parts) == 1 and isinstance(parts[0], Expression):
        return evaluate(parts[0], ctx)
    return "".join(part if isinstance(part, str) else _as_text(part, ctx) for part in parts)


def _has_space(text: str) -> bool:
    return any(char.isspace() for char in text)


def _parse_template(text: str) -> tuple[str | Expression, ...] | None:
    if _ROOT.match(text) and not _has_space(text):
        return (parse_expression(text),)
    # `\$inputs.x` is the literal `$inputs.x`: one leading backslash is dropped.
    position = 1 if _ROOT.match(text.lstrip("\\")) and not _has_space(text) else 0
    if "{$" not in text:
        return (text[position:],) if position else None
    parts: list[str | Expression] = []
    literal = ""
    while (start := text.find("{$", position)) >= 0:
        if start > 0 and text[start - 1] == "\\":
            literal += text[position : start - 1] + "{$"
            position = start + 2
            continue
        end = text.find("}", start)
        if end < 0:
            raise _fail(text[start:], "an embedded '{$' has no closing '}'")
        literal += text[position:start]
        if literal:
            parts.append(literal)
            literal = ""
        parts.append(parse_expression(text[start + 1 : end]))
        position = end + 1
    literal += text[position:]
    if literal:
        parts.append(literal)
    return tuple(parts)


_template_cached = lru_cache(maxsize=1024)(_parse_template)


def _as_text(expr: Expression, ctx: ExpressionContext) -> str:
    value = evaluate(expr, ctx)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        raise _fail(expr.text, "is bytes, which cannot be put into text")
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise _fail(expr.text, f"its {type(value).__name__} cannot be written as JSON") from exc


def resolve_value(value: Any, ctx: ExpressionContext) -> Any:
    """Resolve every expression in a parameter value, a request body or a transform.

    Dicts and lists are walked (tuples become lists); each string is `interpolate`d; other
    leaves stay. A dict shaped exactly `{"$jsonpath": <RFC 9535 query>, "from": <expression>}`,
    optionally with `"first": true`, becomes the list of values the query selects from the
    expression's value (or the first of them, None when there is none).

    Raises:
        ExpressionError: From any expression, a malformed `$jsonpath` selector, or a bound:
            nesting deeper than `MAX_DEPTH`, more than `MAX_NODES` nodes.
    """
    return _resolve(value, ctx, "", 0, [MAX_NODES])


def _resolve(
    value: Any, ctx: ExpressionContext, location: str, depth: int, budget: list[int]
) -> Any:
    _spend(location, depth, budget, 1)
    if isinstance(value, str):
        try:
            return interpolate(value, ctx)
        except ExpressionError as exc:
            raise _located(exc, location) from exc
    if isinstance(value, Mapping):
        if "$jsonpath" in value:
            return _select(value, ctx, location, depth, budget)
        return {
            key: _resolve(item, ctx, f"{location}/{_pointer_token(key)}", depth + 1, budget)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            _resolve(item, ctx, f"{location}/{index}", depth + 1, budget)
            for index, item in enumerate(value)
        ]
    return value


def _spend(location: str, depth: int, budget: list[int], nodes: int) -> None:
    budget[0] -= nodes
    if depth > MAX_DEPTH:
        problem = f"nested deeper than {MAX_DEPTH} levels"
    elif budget[0] < 0:
        problem = f"more than {MAX_NODES} nodes"
    else:
        return
    raise ExpressionError(f"value at {location or '/'}: {problem}", expression=location)


def _located(exc: ExpressionError, location: str) -> ExpressionError:
    return ExpressionError(f"at {location or '/'}: {exc.message}", expression=exc.expression)


def _pointer_token(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _select(
    spec: Mapping[str, Any], ctx: ExpressionContext, location: str, depth: int, budget: list[int]
) -> Any:
    query, source, first = spec.get("$jsonpath"), spec.get("from"), spec.get("first", False)
    if (
        set(spec) - {"$jsonpath", "from", "first"}
        or not isinstance(query, str)
        or not isinstance(source, str)
        or not isinstance(first, bool)
    ):
        raise ExpressionError(
            f"at {location or '/'}: a $jsonpath selector is exactly "
            '{"$jsonpath": "<query>", "from": "<expression>"} with optional "first": true',
            expression=str(query),
        )
    try:
        parts = _parse_template(source)
        if parts is None or len(parts) != 1 or not isinstance(parts[0], Expression):
            raise _fail(source, "'from' of a $jsonpath selector must be one runtime expression")
        matches = select_jsonpath(query, evaluate(parts[0], ctx), limit=max(budget[0], 0))
    except ExpressionError as exc:
        raise _located(exc, location) from exc
    _spend(location, depth, budget, len(matches))
    if first:
        return matches[0] if matches else None
    return matches


def select_jsonpath(
    query: str, value: Any, *, limit: int = MAX_NODES, first_only: bool = False
) -> list[Any]:
    """The values an RFC 9535 JSONPath query selects from `value`, in document order.

    A string or bytes `value` is a JSON string, not a document to decode: only `$` selects it.

    Args:
        query: The JSONPath query, such as `$.pets[?@.status == 'available'].id`.
        value: The JSON-like value to query.
        limit: Most nodes allowed; more raise.
        first_only: Stop at the first node (a list of at most one), for "is there any".

    Raises:
        ExpressionError: The query is malformed, longer than 1,000 characters, uses
            `match()`/`search()`, has `..` in a filter or more than once, fails on the data,
            or selects more than `limit` nodes.
    """
    compiled = _compile_jsonpath(query)
    if isinstance(value, str | bytes | bytearray):
        return [value] if isinstance(compiled, jsonpath.JSONPath) and not compiled.segments else []
    wanted = 1 if first_only else limit + 1
    try:
        found = [match.obj for match in islice(compiled.finditer(value), wanted)]
    except (jsonpath.JSONPathError, RecursionError) as exc:
        raise _fail_query(query, f"could not be evaluated: {_describe(exc)}") from exc
    if len(found) > limit:
        raise _fail_query(query, f"selects more than {limit} nodes")
    return found


def validate_jsonpath(query: str) -> None:
    """Check a JSONPath query the way `select_jsonpath` will, without data.

    Raises:
        ExpressionError: As `select_jsonpath` for a malformed or refused query.
    """
    _compile_jsonpath(query)


def _fail_query(query: str, problem: str) -> ExpressionError:
    shown = query if len(query) <= 200 else query[:200] + "..."
    return ExpressionError(f"JSONPath {shown!r}: {problem}", expression=shown)


def _compile_jsonpath(query: str) -> jsonpath.JSONPath | jsonpath.CompoundJSONPath:
    if not isinstance(query, str):
        raise _fail_query(repr(query), "a JSONPath query must be a string")
    if len(query) > MAX_QUERY_CHARS:
        raise _fail_query(query, f"longer than {MAX_QUERY_CHARS} characters")
    return _compile_cached(query)


@lru_cache(maxsize=512)
def _compile_cached(query: str) -> jsonpath.JSONPath | jsonpath.CompoundJSONPath:
    try:
        compiled = _JSONPATH.compile(query)
    except (jsonpath.JSONPathError, RecursionError) as exc:
        raise _fail_query(query, f"is not RFC 9535 JSONPath: {_describe(exc)}") from exc
    # Each `..` walks a whole subtree: inside a filter it does so for every node tested, and
    # several in a row multiply; both can take hours on a large response.
    count, in_filter = _descendant_segments(query)
    if in_filter or count > 1:
        raise _fail_query(query, "use at most one descendant segment (..), and none in a filter")
    return compiled


def _descendant_segments(query: str) -> tuple[int, bool]:
    bare = _QUOTED.sub("''", query)
    count, in_filter, at = 0, False, 0
    filters: list[bool] = []  # one per open bracket: is it a filter selector?
    while at < len(bare):
        if bare.startswith("..", at):
            count, in_filter = count + 1, in_filter or any(filters)
            at += 1
        elif bare[at] == "[":
            filters.append(False)
        elif bare[at] == "?" and filters:
            filters[-1] = True  # a filter selector, maybe after others: `[1, ?@.a]`
        elif bare[at] == "]" and filters:
            filters.pop()
        at += 1
    return count, in_filter


def _describe(exc: Exception) -> str:
    # python-jsonpath's str() draws a multi-line caret diagram, and fails on an empty query.
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    index = getattr(getattr(exc, "token", None), "index", -1)
    return f"{message} at column {index + 1}" if isinstance(index, int) and index >= 0 else message


def references(value: Any) -> tuple[Reference, ...]:
    """Every runtime expression in a value, whole-string or embedded, in document order.

    The executor asks which steps a step waits for
    (`{r.expression.step_id for r in references(v)} - {None}`); validation asks which
    inputs, steps and response reads appear, and quotes `Reference.text` and `location`.
    `$jsonpath` selectors contribute their `from`.

    Raises:
        ExpressionError: A malformed expression (the message gives its location), or the
            `MAX_DEPTH` / `MAX_NODES` bounds.
    """
    found: list[Reference] = []
    _collect(value, "", 0, [MAX_NODES], found)
    return tuple(found)


def _collect(
    value: Any, location: str, depth: int, budget: list[int], found: list[Reference]
) -> None:
    _spend(location, depth, budget, 1)
    if isinstance(value, str):
        if "$" not in value:
            return
        try:
            parts = _template_cached(value) if len(value) <= 4_096 else _parse_template(value)
        except ExpressionError as exc:
            raise _located(exc, location) from exc
        found.extend(
            Reference(p, value, location) for p in parts or () if isinstance(p, Expression)
        )
    elif isinstance(value, Mapping):
        items: Iterator[tuple[Any, Any]] = iter(value.items())
        if "$jsonpath" in value:
            items = iter([("from", value.get("from"))])
        for key, item in items:
            _collect(item, f"{location}/{_pointer_token(key)}", depth + 1, budget, found)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _collect(item, f"{location}/{index}", depth + 1, budget, found)
