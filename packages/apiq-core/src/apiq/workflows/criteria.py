"""Arazzo Criterion conditions: `simple`, `regex` and `jsonpath`, checked against a step.

**simple** is parsed by a recursive-descent parser (no eval): literals (`200`, `-1.5e3`,
`'it''s'`, `true`, `false`, `null`), runtime expressions as operands, `==` `!=` `<` `<=` `>`
`>=`, `!`, `&&`, `||`, grouping with `()` (or `{}`, as in `{$statusCode == 401}`), `[i]` index
and `.name` property. `!` binds tightest, then comparisons (not chainable), `&&`, `||`.
Comparisons follow Arazzo 1.0.1 ("String comparisons MUST be case insensitive") and the rules
1.1.0 spells out:
- strings compare case-insensitively (`str.casefold`), with `==` and with ordering;
- a numeric string (JSON number syntax) becomes a number when compared with a number, and
  with `<` `<=` `>` `>=` also when compared with another numeric string (`'9' < '10'`);
- `null` equals only `null`, and an absent value (missing key, header, output) is `null`;
- booleans equal only booleans; objects and arrays compare deeply (keys exactly, values by
  these rules); ordering anything but two numbers or two strings is false, never an error;
- `!`, `&&`, `||` and the condition itself count only the boolean `true` as true.

**regex** searches `context`'s value (strings as they are, numbers and booleans as JSON, bytes
decoded as UTF-8, objects as compact JSON) with Python `re`, which backtracks: exponential or
polynomial time on hostile input. So a pattern is screened when parsed: backreferences and
conditional groups are refused, as is a repeat that can run more than once over something
variable (`(a+)+`, `(a|b)*`; `(\\.\\d+)?` is fine). What remains takes at most about
`positions * product(choices of each quantifier) * width` steps on `n` characters (positions is
1 for a pattern anchored with `^`, else `n`); `Condition.max_subject` is the longest context
that keeps this within `REGEX_BUDGET` (1 MiB for `^2\\d{2}$`, 1,000 characters for
`^\\d+\\.\\d+$`, 2,235 for `.*x`, 170 for `a*a*x`). A longer context raises `WorkflowError`
rather than being cut, which would change the answer.

**jsonpath** holds when the RFC 9535 query selects at least one node of `context`'s value
(`$[?count(@.pets) > 0]` on `[{"pets": [...]}]` holds; on `{"pets": [...]}` it selects nothing,
per RFC 9535). A `null` or absent context fails regex and jsonpath conditions (Arazzo 1.1.0).
xpath and JSONPath `draft-goessner-dispatch-jsonpath-00` raise `WorkflowError`.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Protocol

from apiq.errors import ExpressionError, WorkflowError
from apiq.workflows.expressions import (
    Expression,
    ExpressionContext,
    evaluate,
    parse_expression,
)
from apiq.workflows.values import select_jsonpath, validate_jsonpath

__all__ = [
    "MAX_CONDITION_CHARS",
    "REGEX_BUDGET",
    "Condition",
    "CriterionType",
    "check",
    "parse_condition",
]

MAX_CONDITION_CHARS = 4_096
"""Longest simple condition accepted."""
MAX_PATTERN_CHARS = 1_000
"""Longest regex pattern or JSONPath query accepted."""
MAX_SUBJECT_CHARS = 1 << 20
"""Longest text a regex condition searches, whatever the pattern."""
REGEX_BUDGET = 5_000_000
"""Estimated backtracking steps a regex condition may take: 10-40 ns each measured, so ~50 ms."""
_MAX_NESTING = 32
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_TOKENS = re.compile(
    r"(?P<space>\s+)|(?P<expr>\$[^\s()\[\]{}=!<>&|',]*)|(?P<number>" + _NUMBER.pattern + ")"
    r"|(?P<string>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\]{}.])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_\-]*)"
)
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_CLOSING = {"(": ")", "[": "]", "{": "}"}
ConditionType = Literal["simple", "regex", "jsonpath"]


class CriterionType(Protocol):
    """A Criterion Expression Type Object (`{type: jsonpath, version: rfc9535}`) as an object."""

    @property
    def type(self) -> str: ...

    @property
    def version(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed criterion condition; `parse_condition` makes and caches them."""

    text: str
    type: ConditionType
    expressions: tuple[Expression, ...] = ()
    """Runtime expressions a simple condition reads, in order (validation checks them)."""
    max_subject: int | None = None
    """For regex: the longest context text, in characters, the pattern may search."""
    compiled: Any = field(default=None, repr=False, compare=False)
    """The simple condition's tree, or the compiled `re.Pattern`."""


def parse_condition(
    text: str, *, type: str | Mapping[str, Any] | CriterionType = "simple"
) -> Condition:
    """Parse and check a criterion condition without evaluating it (for plan validation).

    Args:
        text: The `condition` of a Criterion Object.
        type: `simple` (default), `regex`, `jsonpath`, or a Criterion Expression Type Object
            as a mapping or an object with `type` and `version` (the model's); only JSONPath
            `rfc9535` is evaluated, `draft-goessner-dispatch-jsonpath-00` and xpath raise.

    Raises:
        WorkflowError: Malformed condition, refused regex, unknown or unsupported type; the
            message names the condition and what is wrong (`ExpressionError` for a bad
            runtime expression or JSONPath query).
    """
    kind = _condition_type(type, text)
    if not isinstance(text, str):
        raise WorkflowError(f"a condition must be a string, not {text!r}")
    limit = MAX_CONDITION_CHARS if kind == "simple" else MAX_PATTERN_CHARS
    if len(text) > limit:
        raise WorkflowError(f"condition {_shown(text)!r} is longer than {limit} characters")
    return _parse_cached(text, kind)


def check(
    condition: str,
    *,
    type: str | Mapping[str, Any] | CriterionType = "simple",
    context: str | None = None,
    ctx: ExpressionContext,
) -> bool:
    """Whether a criterion holds for the step `ctx` describes.

    Args:
        condition: The `condition` of a Criterion Object.
        type: As for `parse_condition`.
        context: The `context` runtime expression (`$response.body`); required by regex and
            jsonpath, ignored by simple conditions.
        ctx: What runtime expressions read.

    Raises:
        WorkflowError: As `parse_condition`, a regex or jsonpath condition without a context,
            a context too long for its pattern, or an expression read too early
            (`$statusCode` before the call) or unsupported (`ExpressionError`).
    """
    parsed = parse_condition(condition, type=type)
    if parsed.type == "simple":
        return _evaluate(parsed.compiled, ctx) is True
    if not isinstance(context, str) or not context.strip():
        raise WorkflowError(
            f"{parsed.type} condition {_shown(condition)!r} needs a context, such as $response.body"
        )
    expression = context.strip()
    if expression.startswith("{") and expression.endswith("}"):
        expression = expression[1:-1]
    value = evaluate(expression, ctx, missing_ok=True)
    if value is None:
        return False
    if parsed.type == "jsonpath":
        return bool(select_jsonpath(condition, value, first_only=True))
    subject = _as_subject(value)
    if parsed.max_subject is not None and len(subject) > parsed.max_subject:
        raise WorkflowError(
            f"regex condition {_shown(condition)!r}: the context {context!r} is "
            f"{len(subject)} characters, more than this pattern may search "
            f"({parsed.max_subject}); use fewer open-ended quantifiers (*, +, {{n,}}) or a "
            "narrower context"
        )
    return parsed.compiled.search(subject) is not None


def _shown(text: str) -> str:
    return text if len(text) <= 200 else text[:200] + "..."


def _condition_type(type_: object, text: object) -> ConditionType:
    shown = _shown(text) if isinstance(text, str) else text
    name, version = type_, None
    if isinstance(type_, Mapping):
        name, version = type_.get("type"), type_.get("version")
    elif not isinstance(type_, str):
        name, version = getattr(type_, "type", None), getattr(type_, "version", None)
    if name == "xpath":
        raise WorkflowError(f"condition {shown!r}: xpath criteria are not supported")
    if name == "jsonpath" and version not in (None, "rfc9535"):
        raise WorkflowError(
            f"condition {shown!r}: JSONPath version {version!r} is not supported; APIQ "
            "evaluates RFC 9535 (version rfc9535)"
        )
    kind = _TYPES.get(name) if isinstance(name, str) else None
    if kind is None:
        raise WorkflowError(
            f"condition {shown!r}: unknown criterion type {name!r}: use simple, regex or jsonpath"
        )
    return kind


_TYPES: dict[str, ConditionType] = {"simple": "simple", "regex": "regex", "jsonpath": "jsonpath"}


@lru_cache(maxsize=1024)
def _parse_cached(text: str, kind: ConditionType) -> Condition:
    if kind == "jsonpath":
        validate_jsonpath(text)
        return Condition(text, kind)
    if kind == "regex":
        shape = _regex_shape(text)
        try:
            pattern = re.compile(text)
        except (re.error, OverflowError, RecursionError) as exc:
            raise _refused(text, f"not a valid pattern: {exc}") from exc
        return Condition(text, kind, max_subject=_max_subject(text, shape), compiled=pattern)
    parser = _Parser(text)
    tree = parser.parse()
    return Condition(text, kind, tuple(parser.expressions), compiled=tree)


def _as_subject(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return str(value)


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class _Ref:
    expression: Expression


@dataclass(frozen=True, slots=True)
class _Access:
    target: _Node
    keys: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Not:
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Logic:
    op: str
    operands: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Compare:
    op: str
    left: _Node
    right: _Node


_Node = _Literal | _Ref | _Access | _Not | _Logic | _Compare
_WORDS = {"true": True, "false": False, "null": None}


class _Parser:
    """Recursive descent over the simple-condition grammar (module docstring)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        self.position = 0
        self.depth = 0
        self.expressions: list[Expression] = []
        column = 0
        while column < len(text):
            match = _TOKENS.match(text, column)
            if match is None:
                problem = (
                    "unterminated string" if text[column] == "'" else f"unexpected {text[column]!r}"
                )
                raise self.error(problem, column)
            if match.lastgroup != "space":
                self.tokens.append((match.lastgroup or "", match.group(), column))
            column = match.end()
        self.tokens.append(("end", "", len(text)))

    def error(self, problem: str, column: int) -> WorkflowError:
        return WorkflowError(f"condition {_shown(self.text)!r}: {problem} at column {column + 1}")

    def parse(self) -> _Node:
        node = self._chain("||")
        kind, value, column = self.tokens[self.position]
        if kind != "end":
            raise self.error(f"unexpected {value!r}", column)
        return node

    def _peek(self) -> str:
        kind, value, _ = self.tokens[self.position]
        return value if kind == "op" else kind

    def _next(self) -> tuple[str, str, int]:
        token = self.tokens[self.position]
        self.position += token[0] != "end"
        return token

    def _nested(self, column: int, parse: Callable[[], _Node] | None = None) -> _Node:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise self.error(f"nested deeper than {_MAX_NESTING} levels", column)
        node = parse() if parse else self._chain("||")
        self.depth -= 1
        return node

    def _chain(self, op: str) -> _Node:
        operands = [self._chain("&&") if op == "||" else self._comparison()]
        while self._peek() == op:
            self._next()
            operands.append(self._chain("&&") if op == "||" else self._comparison())
        return operands[0] if len(operands) == 1 else _Logic(op, tuple(operands))

    def _comparison(self) -> _Node:
        left = self._unary()
        if self._peek() not in _COMPARISONS:
            return left
        op = self._next()[1]
        right = self._unary()
        if self._peek() in _COMPARISONS:
            column = self.tokens[self.position][2]
            raise self.error("comparisons do not chain; join them with &&", column)
        return _Compare(op, left, right)

    def _unary(self) -> _Node:
        if self._peek() == "!":
            return _Not(self._nested(self._next()[2], self._unary))
        node = self._primary()
        keys: list[_Node] = []
        while self._peek() in ("[", "."):
            _, symbol, column = self._next()
            if symbol == "[":
                keys.append(self._nested(column))
                self._expect("]")
                continue
            kind, name, column = self._next()
            if kind not in ("word", "number"):
                raise self.error("a property name must follow '.'", column)
            keys.append(_Literal(name))
        return _Access(node, tuple(keys)) if keys else node

    def _primary(self) -> _Node:
        kind, value, column = self._next()
        if kind == "number":
            number = _number(value)
            if number is None:
                raise self.error(f"number {value[:20]!r} is out of range", column)
            return _Literal(number)
        if kind == "string":
            return _Literal(value[1:-1].replace("''", "'"))
        if kind == "word":
            if value not in _WORDS:
                raise self.error(
                    f"unexpected word {value!r} (strings take quotes: '{value}')", column
                )
            return _Literal(_WORDS[value])
        if kind == "expr":
            try:
                expression = parse_expression(value)
            except ExpressionError as exc:
                message = f"condition {_shown(self.text)!r}: {exc.message}"
                raise ExpressionError(message, expression=exc.expression) from exc
            self.expressions.append(expression)
            return _Ref(expression)
        if value in _CLOSING:
            node = self._nested(column)
            self._expect(_CLOSING[value])
            return node
        raise self.error("unexpected end" if kind == "end" else f"unexpected {value!r}", column)

    def _expect(self, symbol: str) -> None:
        kind, value, column = self._next()
        if kind != "op" or value != symbol:
            found = f", found {value!r}" if value else ""
            raise self.error(f"expected {symbol!r}{found}", column)


def _number(text: str) -> int | float | None:
    if len(text) > 400:
        return None
    if not any(mark in text for mark in ".eE"):
        return int(text)
    value = float(text)
    return value if math.isfinite(value) else None


def _evaluate(node: _Node, ctx: ExpressionContext) -> Any:
    if isinstance(node, _Literal):
        return node.value
    if isinstance(node, _Ref):
        return evaluate(node.expression, ctx, missing_ok=True)
    if isinstance(node, _Access):
        value = _evaluate(node.target, ctx)
        for key_node in node.keys:
            value = _item(value, _evaluate(key_node, ctx))
        return value
    if isinstance(node, _Not):
        return _evaluate(node.operand, ctx) is not True
    if isinstance(node, _Logic):
        results = (_evaluate(operand, ctx) is True for operand in node.operands)
        return all(results) if node.op == "&&" else any(results)
    left, right = _evaluate(node.left, ctx), _evaluate(node.right, ctx)
    if node.op in ("==", "!="):
        return _equal(left, right, 0) is (node.op == "==")
    a, b = _numeric(left), _numeric(right)
    if a is not None and b is not None:
        return bool(_ORDER[node.op](a, b))
    if isinstance(left, str) and isinstance(right, str):
        return bool(_ORDER[node.op](left.casefold(), right.casefold()))
    return False


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _item(value: Any, key: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(key, str):
        return value.get(key)
    if isinstance(value, list | tuple):
        if isinstance(key, str) and key.isascii() and key.isdigit():
            key = int(key)
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(value):
            return value[key]
    return None


def _numeric(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return _number(value)
    return None


def _equal(left: Any, right: Any, depth: int) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int | float) or isinstance(right, int | float):
        a, b = _numeric(left), _numeric(right)
        return a is not None and b is not None and a == b
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    if depth > 2 * _MAX_NESTING:
        raise WorkflowError(f"values nested deeper than {2 * _MAX_NESTING} levels to compare")
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(
            _equal(left[key], right[key], depth + 1) for key in left
        )
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(
            _equal(a, b, depth + 1) for a, b in zip(left, right, strict=True)
        )
    return False


@dataclass(slots=True)
class _Atom:
    """One item of a regex sequence: a character, class or escape, or a group of alternatives."""

    group: list[list[_Atom]] | None = None
    low: int = 1
    high: int | None = 1
    """Most repeats; None when open-ended."""


_QUANTIFIER = re.compile(r"[*+?]|\{([0-9]*),([0-9]*)\}|\{([0-9]+)\}")
_FLAGS = re.compile(r"[aiLmsux]*(?:-[imsx]+)?")
_LEADING_FLAGS = re.compile(r"\(\?[aiLsux]+\)")  # without m: `^` stays the start of text
_CAP = REGEX_BUDGET + 1
_NESTED_REPEAT = "a repeated group must not repeat or alternate inside, as in (a+)+ or (a|b)*"


def _regex_shape(pattern: str) -> list[list[_Atom]]:
    """Groups and quantifiers of a pattern; refuses what cannot be bounded or makes re warn."""
    stack: list[list[list[_Atom]]] = [[[]]]
    at = 0
    while at < len(pattern):
        char, sequence = pattern[at], stack[-1][-1]
        quantifier = _QUANTIFIER.match(pattern, at)
        if char == "\\":
            if pattern[at + 1 : at + 2] in set("123456789"):
                raise _refused(pattern, "backreferences are not allowed")
            at = (
                pattern.find("}", at) + 1 or len(pattern)
                if pattern.startswith("\\N{", at)
                else at + 2
            )
            sequence.append(_Atom())
        elif char == "[":
            at = _class_end(pattern, at)
            sequence.append(_Atom())
        elif char == "(":
            at, opens = _group_start(pattern, at)
            if opens and len(stack) > _MAX_NESTING:
                raise _refused(pattern, f"groups nested deeper than {_MAX_NESTING} levels")
            if opens:
                stack.append([[]])
        elif char == ")":
            if len(stack) > 1:
                group = stack.pop()
                stack[-1][-1].append(_Atom(group))
            at += 1
        elif char == "|":
            stack[-1].append([])
            at += 1
        elif quantifier is not None:
            if sequence:
                atom = sequence[-1]
                atom.low, atom.high = _bounds(quantifier)
                repeats = atom.high is None or atom.high > max(atom.low, 1)
                variable = atom.group is not None and _cost(atom.group, MAX_SUBJECT_CHARS) > 1
                if variable and repeats:
                    raise _refused(pattern, _NESTED_REPEAT)
            end = quantifier.end()
            at = end + (pattern[end : end + 1] in ("?", "+"))
        else:
            sequence.append(_Atom())
            at += 1
    return stack[0]


def _refused(pattern: str, problem: str) -> WorkflowError:
    return WorkflowError(f"regex condition {_shown(pattern)!r}: {problem}")


def _bounds(quantifier: re.Match[str]) -> tuple[int, int | None]:
    symbol, low, high, exact = quantifier.group(0), *quantifier.groups()
    if symbol in ("*", "+", "?"):
        return {"*": (0, None), "+": (1, None), "?": (0, 1)}[symbol]
    if exact is not None:
        return int(exact), int(exact)
    return int(low or 0), int(high) if high else None


def _group_start(pattern: str, at: int) -> tuple[int, bool]:
    if not pattern.startswith("(?", at):
        return at + 1, True
    kind = pattern[at + 2 : at + 4]
    if kind.startswith("#"):
        return pattern.find(")", at) + 1 or len(pattern), False
    if kind.startswith(("P=", "(")):
        raise _refused(pattern, "backreferences and conditional groups are not allowed")
    if kind.startswith("P<"):
        return pattern.find(">", at) + 1 or len(pattern), True
    if kind[:1] in (":", "=", "!", ">"):
        return at + 3, True
    if kind in ("<=", "<!"):
        return at + 4, True
    after = _FLAGS.match(pattern, at + 2)
    end = after.end() if after else at + 2
    return end + 1, not pattern.startswith(")", end)


def _class_end(pattern: str, at: int) -> int:
    # `re` warns (FutureWarning) about these; warnings must not reach callers or tests.
    if pattern.startswith("[[", at):
        raise _refused(pattern, "'[' right after '[' is ambiguous; write \\[")
    at += 2 if pattern.startswith("[^", at) else 1
    first = True
    while at < len(pattern):
        char = pattern[at]
        if char == "]" and not first:
            return at + 1
        if char in "-&~|" and pattern.startswith(char, at + 1):
            raise _refused(pattern, f"{char * 2!r} in a set is ambiguous; escape one of them")
        at += 2 if char == "\\" else 1
        first = False
    return at


def _cost(alternatives: list[list[_Atom]], size: int) -> int:
    """Upper bound of the ways to match from one position of a `size`-character text."""
    total = 0
    for sequence in alternatives:
        product = 1
        for atom in sequence:
            product = min(product * _atom_cost(atom, size), _CAP)
        total = min(total + product, _CAP)
    return total


def _atom_cost(atom: _Atom, size: int) -> int:
    inner = 1 if atom.group is None else _cost(atom.group, size)
    if atom.low == atom.high:
        if inner <= 1 or atom.low == 0:
            return 1
        return _CAP if atom.low * inner.bit_length() > 64 else min(inner**atom.low, _CAP)
    if inner == 1:
        span = max((size if atom.high is None else min(atom.high, size)) - atom.low + 1, 1)
        # A repeated group runs re's general REPEAT, measured ~4x slower a step than `a*`.
        return span if atom.group is None else min(span * 4, _CAP)
    if atom.high is not None and atom.high <= 1:
        return min(inner + 1, _CAP)
    return _CAP  # a repeated variable group, refused by _regex_shape


def _width(alternatives: list[list[_Atom]]) -> int:
    """Characters a match needs at least (widest alternative): the work of fixed repeats."""
    widest = 0
    for sequence in alternatives:
        width = sum(
            atom.low * (1 if atom.group is None else _width(atom.group)) for atom in sequence
        )
        widest = max(widest, min(width, _CAP))
    return widest


def _max_subject(pattern: str, shape: list[list[_Atom]]) -> int:
    width = max(_width(shape), 1)
    # `search` tries a pattern anchored at the start (no alternation, no multiline) only once.
    flags = _LEADING_FLAGS.match(pattern)
    head = pattern[flags.end() :] if flags else pattern
    anchored = len(shape) == 1 and head.startswith(("^", "\\A"))

    def fits(size: int) -> bool:
        return (1 if anchored else size) * _cost(shape, size) * width <= REGEX_BUDGET

    if fits(MAX_SUBJECT_CHARS):
        return MAX_SUBJECT_CHARS
    low, high = 0, MAX_SUBJECT_CHARS
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    if low < 16:
        raise _refused(pattern, "too many open-ended quantifiers to bound the search")
    return low
