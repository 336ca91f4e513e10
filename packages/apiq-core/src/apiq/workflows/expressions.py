"""Arazzo runtime expressions: parse them, evaluate them, put them into values, find them.

The grammar is Arazzo 1.0.1 "Runtime Expressions" plus APIQ's `x-apiq-forEach` names:

    $url  $method  $statusCode  $item  $index
    $request.header.<token>  $request.query.<name>  $request.path.<name>  $request.body
    $response.header.<token>  $response.body
    $inputs.<name>  $outputs.<name>  $steps.<stepId>.outputs.<name>
    $sourceDescriptions.<name>.url  $workflows.<id>...  $components.<section>.<name>

Header, query and path names run to the end of the expression, as the ABNF says
(`$request.query.page[size]` is the parameter `page[size]`). After an input, output, step
output, `$item` or a body, `.field` and `[n]` segments may follow (`$steps.s.outputs.pets[0]`,
an APIQ leniency), then an optional `#/json/pointer` (RFC 6901). A dotted name that is itself
a key wins over field access: `$inputs.a.b` is the input `a.b` when one is given, else field
`b` of input `a`. `$workflows` and `$components` parse but do not evaluate: a plan is one
workflow and components are resolved when a document is loaded.

Putting expressions into strings and values, finding them, and JSONPath selection live in
`apiq.workflows.values`. JSON Pointers resolve by RFC 6901 alone: python-jsonpath's resolver
also accepts `#name`/`~name` key selectors and indexes like `+1`, and JSON-decodes string
documents, which a plan must not see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from apiq.errors import ExpressionError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "Expression",
    "ExpressionContext",
    "ExpressionKind",
    "RequestView",
    "ResponseView",
    "evaluate",
    "parse_expression",
]

MAX_EXPRESSION_CHARS = 2_048
"""Longest runtime expression accepted."""
MAX_DEPTH = 64
"""Deepest nesting `resolve_value` and `references` walk."""
MAX_NODES = 10_000
"""Most nodes `resolve_value` produces (JSONPath matches included)."""

ExpressionKind = Literal[
    "url", "method", "statusCode", "request", "response", "inputs", "outputs", "steps",
    "workflows", "sourceDescriptions", "components", "item", "index",
]  # fmt: skip
_ROOT = re.compile(
    r"\$(url|method|statusCode|request|response|inputs|outputs|steps|workflows"
    r"|sourceDescriptions|components|item|index)(?![A-Za-z0-9_])"
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NAME = re.compile(r"[^.\[\]{}#\s\x00-\x1f\x7f]+")
_STEP = re.compile(r"\.([^.\[\]{}#\s\x00-\x1f\x7f]+)|\[(0|[1-9][0-9]{0,8})\]")
_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_POINTER = re.compile(r"~(?![01])|[{}\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Expression:
    """One parsed runtime expression; `parse_expression` makes and caches them."""

    text: str
    """The expression as written, `$` included, braces not."""
    kind: ExpressionKind
    """Its root: `steps` for `$steps.s.outputs.o`, `statusCode` for `$statusCode`, ..."""
    scope: str | None = None
    """`header`/`query`/`path`/`body` for request and response, the step id for `steps`, the
    workflow id for `workflows`, the source name for `sourceDescriptions`, the section for
    `components`."""
    name: str | None = None
    """The header, parameter, input or output name (first dotted part), or the source field."""
    fields: tuple[str | int, ...] = ()
    """`.field` (str) and `[n]` (int) segments after the name, in order."""
    pointer: tuple[str, ...] | None = None
    """Unescaped JSON Pointer tokens after `#`; None when there is no `#`."""

    def __str__(self) -> str:
        return self.text

    @property
    def step_id(self) -> str | None:
        """The step whose outputs this reads, for `$steps.<id>.outputs...`; else None."""
        return self.scope if self.kind == "steps" else None

    @property
    def input_name(self) -> str | None:
        """The input this reads (first dotted part), for `$inputs.<name>...`; else None."""
        return self.name if self.kind == "inputs" else None

    @property
    def name_candidates(self) -> tuple[str, ...]:
        """Names this may refer to, longest first: `("a.b", "a")` for `$inputs.a.b`."""
        if self.name is None:
            return ()
        dotted = [self.name]
        for part in self.fields:
            if not isinstance(part, str):
                break
            dotted.append(f"{dotted[-1]}.{part}")
        return tuple(reversed(dotted))

    @property
    def needs_request(self) -> bool:
        """True when it reads the step's own request: `$url`, `$method`, `$request...`."""
        return self.kind in ("url", "method", "request")

    @property
    def needs_response(self) -> bool:
        """True when it reads the step's own response: `$statusCode`, `$response...`."""
        return self.kind in ("statusCode", "response")

    @property
    def unsupported(self) -> str | None:
        """Why APIQ cannot evaluate it, or None when it can."""
        if self.kind == "workflows":
            return "APIQ plans are single workflows; `$workflows` cannot be evaluated"
        if self.kind == "components":
            return "components are resolved when a document is loaded, not evaluated in a plan"
        if self.kind == "sourceDescriptions" and self.name != "url":
            return "it names an operation or workflow of a source description, not a value"
        return None


@dataclass(frozen=True, slots=True)
class RequestView:
    """What `$url`, `$method` and `$request.*` read: the request a step sent."""

    method: str
    url: str
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = ()
    """Header names match case-insensitively; repeated headers are joined with `, `."""
    path: Mapping[str, Any] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True, slots=True)
class ResponseView:
    """What `$statusCode` and `$response.*` read: the response a step received."""

    status_code: int
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = ()
    """Header names match case-insensitively; repeated headers are joined with `, `."""
    body: Any = None
    """Parsed JSON, text or bytes."""


@dataclass(frozen=True, slots=True)
class ExpressionContext:
    """Everything an expression can read while one step runs. Values are read, never copied."""

    inputs: Mapping[str, Any] = field(default_factory=dict)
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Step id -> the outputs of that step, for the steps that have run."""
    request: RequestView | None = None
    response: ResponseView | None = None
    item: Any = None
    """The current element of `x-apiq-forEach`; meaningful only when `index` is set."""
    index: int | None = None
    """Position of `item` in the `x-apiq-forEach` list; None outside a loop."""
    source_descriptions: Mapping[str, str] = field(default_factory=dict)
    """Source name -> URL."""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    """The workflow's outputs so far, for `$outputs.<name>`."""


@dataclass(frozen=True, slots=True)
class _Absent:
    """A lookup found nothing; `reason` says what was missing."""

    reason: str


def _fail(text: str, problem: str) -> ExpressionError:
    shown = text if len(text) <= 200 else text[:200] + "..."
    return ExpressionError(f"runtime expression {shown!r}: {problem}", expression=shown)


def parse_expression(text: str) -> Expression:
    """Parse one runtime expression such as `$steps.login.outputs.token`.

    Args:
        text: The expression, starting with `$` (no surrounding braces).

    Returns:
        The parsed expression; equal texts give the same cached object.

    Raises:
        ExpressionError: The text is not a runtime expression; the message says why.
    """
    if not isinstance(text, str):
        raise _fail(repr(text), "an expression must be a string")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise _fail(text, f"longer than {MAX_EXPRESSION_CHARS} characters")
    return _parse_cached(text)


@lru_cache(maxsize=2048)
def _parse_cached(text: str) -> Expression:
    root = _ROOT.match(text)
    if root is None:
        raise _fail(text, "must start with $url, $method, $statusCode, $request., $response., "
                    "$inputs., $outputs., $steps., $workflows., $sourceDescriptions., "
                    "$components., $item or $index")  # fmt: skip
    kind: ExpressionKind = root.group(1)  # type: ignore[assignment]
    rest = text[root.end() :]
    if kind in ("url", "method", "statusCode", "index"):
        if rest:
            raise _fail(text, f"${kind} takes nothing after it")
        return Expression(text, kind)
    if kind == "item":
        fields, pointer = _tail(text, rest)
        return Expression(text, kind, fields=fields, pointer=pointer)
    if not rest.startswith(".") or len(rest) == 1:
        raise _fail(text, f"${kind} needs a '.' and a name after it")
    rest = rest[1:]
    if kind in ("request", "response"):
        return _parse_message(text, kind, rest)
    if kind in ("inputs", "outputs"):
        name, fields, pointer = _named(text, rest)
        return Expression(text, kind, name=name, fields=fields, pointer=pointer)
    scope, dot, after = rest.partition(".")
    if not dot or not _NAME.fullmatch(scope) or not after:
        raise _fail(text, f"${kind} needs '<id>.<name>' after it")
    if kind == "steps":
        if not after.startswith("outputs.") or after == "outputs.":
            raise _fail(text, "a step is read as $steps.<stepId>.outputs.<name>")
        name, fields, pointer = _named(text, after.removeprefix("outputs."))
        return Expression(text, kind, scope=scope, name=name, fields=fields, pointer=pointer)
    return Expression(text, kind, scope=scope, name=after)


def _parse_message(text: str, kind: ExpressionKind, rest: str) -> Expression:
    source, dot, name = rest.partition(".")
    if source == "body" or rest.startswith(("body#", "body[")):
        fields, pointer = _tail(text, rest.removeprefix("body"))
        return Expression(text, kind, scope="body", fields=fields, pointer=pointer)
    if source == "header":
        if not dot or not _TOKEN.fullmatch(name):
            raise _fail(text, "a header name must be an RFC 9110 token, such as X-Rate-Limit")
        return Expression(text, kind, scope=source, name=name)
    if source in ("query", "path") and kind == "request":
        if not dot or not name or any(c.isspace() or c in "{}" for c in name):
            raise _fail(text, f"${kind}.{source}. needs a parameter name (no spaces or braces)")
        return Expression(text, kind, scope=source, name=name)
    allowed = "header.<name> or body" if kind == "response" else "header, query, path or body"
    raise _fail(text, f"${kind}. must be followed by {allowed}")


def _named(text: str, rest: str) -> tuple[str, tuple[str | int, ...], tuple[str, ...] | None]:
    match = _NAME.match(rest)
    if match is None:
        raise _fail(text, "a name is missing or has a character names cannot hold")
    fields, pointer = _tail(text, rest[match.end() :])
    return match.group(), fields, pointer


def _tail(text: str, rest: str) -> tuple[tuple[str | int, ...], tuple[str, ...] | None]:
    head, hash_mark, pointer_text = rest.partition("#")
    fields: list[str | int] = []
    position = 0
    while position < len(head):
        step = _STEP.match(head, position)
        if step is None:
            raise _fail(text, f"unexpected {head[position:][:20]!r}: use .field, [n] or #/ptr")
        fields.append(step.group(1) if step.group(1) is not None else int(step.group(2)))
        position = step.end()
    if not hash_mark:
        return tuple(fields), None
    if pointer_text and not pointer_text.startswith("/"):
        raise _fail(text, "a JSON Pointer after '#' must be empty or start with '/'")
    if _BAD_POINTER.search(pointer_text):
        raise _fail(text, "a JSON Pointer may hold '~' only as ~0 or ~1, and no braces")
    tokens = pointer_text.split("/")[1:]
    return tuple(fields), tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens)


def evaluate(
    expression: str | Expression, ctx: ExpressionContext, *, missing_ok: bool = False
) -> Any:
    """The value a runtime expression names, with its type (no copy is made).

    Args:
        expression: `$...` text or a parsed `Expression`.
        ctx: What the expression can read.
        missing_ok: Give None instead of raising when the value is absent: an input, step,
            output, header or parameter that is not there, or a field or pointer that finds
            nothing. Criteria use it; a context that does not exist yet (no response) and an
            unsupported expression still raise.

    Raises:
        ExpressionError: Malformed or unsupported, read too early (`$response` before the
            call), or absent (unless `missing_ok`); the message names what is missing.
    """
    parsed = expression if isinstance(expression, Expression) else parse_expression(expression)
    value = _value(parsed, ctx)
    if isinstance(value, _Absent):
        if missing_ok:
            return None
        raise _fail(parsed.text, value.reason)
    return value


def _value(expr: Expression, ctx: ExpressionContext) -> Any:
    if expr.unsupported is not None:
        raise _fail(expr.text, f"not supported: {expr.unsupported}")
    kind = expr.kind
    if kind in ("url", "method", "request"):
        if ctx.request is None:
            raise _fail(expr.text, "no request yet: $url, $method and $request are readable "
                        "once the step's request is built")  # fmt: skip
        if kind == "url":
            return ctx.request.url
        if kind == "method":
            return ctx.request.method
        request = ctx.request
        return _message_part(expr, "request", request.headers, request.body, request)
    if kind in ("statusCode", "response"):
        if ctx.response is None:
            raise _fail(expr.text, "no response yet: $statusCode and $response are readable "
                        "in successCriteria, onSuccess/onFailure criteria and outputs")  # fmt: skip
        if kind == "statusCode":
            return ctx.response.status_code
        return _message_part(expr, "response", ctx.response.headers, ctx.response.body, None)
    if kind in ("index", "item"):
        if ctx.index is None:
            raise _fail(expr.text, f"${kind} exists only inside an x-apiq-forEach step")
        if kind == "index":
            return ctx.index
        return _walk(ctx.item, expr, "$item")
    if kind == "sourceDescriptions":
        url = ctx.source_descriptions.get(expr.scope or "")
        return _Absent(f"no source description named {expr.scope!r}") if url is None else url
    if kind == "inputs":
        return _named_value(ctx.inputs, expr, "input")
    if kind == "outputs":
        return _named_value(ctx.outputs, expr, "workflow output")
    outputs = ctx.steps.get(expr.scope or "")
    if outputs is None:
        return _Absent(f"step {expr.scope!r} has not run (run so far: {_known(ctx.steps)})")
    return _named_value(outputs, expr, f"output of step {expr.scope!r}")


def _message_part(
    expr: Expression,
    which: str,
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
    body: Any,
    request: RequestView | None,
) -> Any:
    name = expr.name or ""
    if expr.scope == "body":
        return _walk(body, expr, f"the {which} body")
    if expr.scope == "header":
        wanted = name.lower()
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        values = [value for key, value in pairs if key.lower() == wanted]
        return ", ".join(values) if values else _Absent(f"the {which} has no {name} header")
    params = (request.query if expr.scope == "query" else request.path) if request else {}
    if name not in params:
        return _Absent(f"the request has no {expr.scope} parameter {name!r}")
    return params[name]


def _named_value(values: Mapping[str, Any], expr: Expression, what: str) -> Any:
    for candidate in expr.name_candidates:
        if candidate in values:
            skip = candidate.count(".") - (expr.name or "").count(".")
            return _walk(values[candidate], expr, f"{what} {candidate!r}", skip=skip)
    return _Absent(f"no {what} named {expr.name!r} (known: {_known(values)})")


def _known(values: Mapping[str, Any]) -> str:
    names = sorted(str(key) for key in values)
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    return shown or "none"


def _walk(value: Any, expr: Expression, where: str, *, skip: int = 0) -> Any:
    trail = ""
    for part in (*expr.fields[skip:], *(expr.pointer or ())):
        if isinstance(value, Mapping) and isinstance(part, str):
            if part not in value:
                return _Absent(f"{where} has no key {part!r} at {trail or '/'}")
            value = value[part]
        elif isinstance(value, list | tuple):
            index = part if isinstance(part, int) else None
            if isinstance(part, str) and _INDEX.fullmatch(part):
                index = int(part)
            if index is None or index >= len(value):
                return _Absent(f"{where} has no item {part!r} in the array at {trail or '/'}")
            value = value[index]
        else:
            found = "null" if value is None else type(value).__name__
            return _Absent(f"{where} holds {found} at {trail or '/'}, which has no {part!r}")
        trail += "/" + str(part).replace("~", "~0").replace("/", "~1")
    return value
