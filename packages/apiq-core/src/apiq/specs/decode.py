"""Turn untrusted spec bytes into plain data, strictly and within bounds (SECURITY.md).

JSON is strict: UTF-8 only, no NaN/Infinity, no duplicate keys, no over-long numbers or
floats that overflow, no lone surrogates, bounded nesting. It stays in the C scanner and pays
for what it must: a hook per object for duplicate keys, a level-by-level depth pass, and walks
that find a culprit's JSON Pointer only after a refusal. YAML goes through the safe event
parser into `_YamlBuilder`, which builds plain data iteratively while counting nodes with
aliases expanded, nesting and tags. Every refusal is a `SpecInvalid` naming its cause.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml
from yaml import events

from apiq.config import SpecLimits
from apiq.errors import SpecInvalid

__all__ = ["decode_document"]

_UTF8_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_MAX_DIGITS = 4300
"""Longest integer literal accepted; Python's own default for `int(str)` (CVE-2020-10735)."""
_NESTED = (dict, list)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_OPENAPI_VERSION = re.compile(r"3\.[01](?:\.\d+)?(?:-[0-9A-Za-z.-]+)?")
_MEDIA_TYPES = dict.fromkeys(["application/json", "text/json"], "json")
_MEDIA_TYPES |= dict.fromkeys(["text/html", "application/xhtml+xml"], "html")
_MEDIA_TYPES |= dict.fromkeys(["application/vnd.oai.openapi", "text/yaml", "text/x-yaml"], "yaml")
_MEDIA_TYPES |= dict.fromkeys(["application/yaml", "application/x-yaml"], "yaml")
_WHAT_TO_DO = "point APIQ at the raw OpenAPI document (JSON or YAML, UTF-8)"


class _Refused(Exception):
    """Raised inside parsing hooks (its text is the cause); becomes SpecInvalid with a place."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The one hook that runs for every object: kept to a dict() and two len()s.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Refused("duplicate key")
    return obj


def _locating_pairs(pairs: list[tuple[str, Any]]) -> dict[Any, Any]:
    obj: dict[Any, Any] = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for i, key in enumerate(keys) if key in keys[:i])
        obj[_Refused("duplicate key")] = duplicate
    return obj


def _json_decoder(locate: bool) -> json.JSONDecoder:
    """The strict decoder, or with `locate` one that leaves a `_Refused` where it would raise."""

    def flag(cause: str) -> Any:
        if not locate:
            raise _Refused(cause)
        return _Refused(cause)

    def integer(text: str) -> Any:
        if (digits := len(text) - text.startswith("-")) <= allowed:
            return int(text)
        return flag(f"an integer has {digits} digits, more than {allowed}")

    def real(text: str) -> Any:
        value = float(text)
        return flag(f"the number {text[:40]!r} is too large") if math.isinf(value) else value

    # A parse_int hook runs for every integer: use it only where Python's own digit limit
    # (quadratic conversion, CVE-2020-10735) was lifted, or to locate a refused literal.
    limit = sys.get_int_max_str_digits()
    allowed = min(limit or _MAX_DIGITS, _MAX_DIGITS)
    return json.JSONDecoder(
        object_pairs_hook=_locating_pairs if locate else _pairs,
        parse_constant=lambda name: flag(f"{name} is not allowed in JSON"),
        parse_float=real,
        parse_int=integer if locate or limit == 0 or limit > _MAX_DIGITS else None,
    )


def _escape(token: Any) -> str:
    # Pointers end up in messages and logs: a lone surrogate must not make them unprintable.
    text = str(token).encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("~", "~0").replace("/", "~1")


def _find(document: Any, wanted: Any) -> tuple[str, str] | None:
    """Pointer and cause of the first node (or key), in document order, `wanted(v, p)` flags."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        node, path = stack.pop()
        cause = wanted(node, path)
        if cause is not None:
            return path, cause
        if isinstance(node, dict):
            children: list[tuple[Any, str]] = []
            for key, value in node.items():
                if isinstance(key, _Refused):
                    return f"{path}/{_escape(value)}", str(key)
                child = f"{path}/{_escape(key)}"
                if (cause := wanted(key, child)) is not None:
                    return child, cause
                children.append((value, child))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend((item, f"{path}/{i}") for i, item in reversed(list(enumerate(node))))
    return None


def _lone_surrogate(value: Any, _: str) -> str | None:
    # json joins a paired escape into one character: any surrogate left stood alone.
    if isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
        return "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair)"
    return None


def _too_deep(document: Any, max_depth: int) -> bool:
    # Level by level: no per-node depth bookkeeping, one comprehension per level.
    level: list[Any] = [document]
    for _ in range(max_depth):
        values: list[Any] = []
        for node in level:
            values.extend(node.values() if type(node) is dict else node)
        level = [v for v in values if type(v) is dict or type(v) is list]
        if not level:
            return False
    return True


def _decode_json(text: str, body: bytes, source: str, limits: SpecLimits) -> Any:
    try:
        document = _json_decoder(locate=False).decode(text)
    except json.JSONDecodeError as exc:
        raise SpecInvalid(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
            f"fix the document or {_WHAT_TO_DO}",
            source=source,
        ) from None
    except RecursionError:
        raise SpecInvalid(
            f"{source}: the JSON nests objects/arrays too deeply to parse "
            f"(the limit is {limits.max_depth} levels)",
            source=source,
        ) from None
    except (_Refused, ValueError) as exc:
        # A bare ValueError is int() refusing a literal over sys.get_int_max_str_digits().
        cause = str(exc) if isinstance(exc, _Refused) else "an integer has too many digits"
        try:  # parse again, marking instead of raising, to tell where
            marked = _json_decoder(locate=True).decode(text)
        except (ValueError, RecursionError):  # broken further on: the cause is enough
            _invalid(source, "JSON", None, cause)
        found = _find(marked, lambda v, _: str(v) if isinstance(v, _Refused) else None)
        _invalid(source, "JSON", *(found or (None, cause)))
    if _SURROGATE_ESCAPE.search(body) and (found := _find(document, _lone_surrogate)):
        _invalid(source, "JSON", *found)
    if isinstance(document, (dict, list)) and _too_deep(document, limits.max_depth):
        deep, limit = f"the document nests deeper than {limits.max_depth} levels", limits.max_depth
        # The first container below `limit` levels: its pointer has `limit` parts.
        found = _find(
            document, lambda v, p: deep if type(v) in _NESTED and p.count("/") >= limit else None
        )
        _invalid(source, "JSON", *(found or (None, deep)))
    return document


def _invalid(source: str, lang: str, pointer: str | None, cause: str, where: str = "") -> NoReturn:
    place = "" if pointer is None else f" at {pointer[:120] or '/'}"
    place += "..." if pointer and len(pointer) > 120 else ""
    raise SpecInvalid(
        f"{source}: refused {lang}{place}{where}: {cause}", source=source, pointer=pointer
    )


# --- YAML -----------------------------------------------------------------------------------

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null")}
_IMPLICIT: dict[Any, list[tuple[str, re.Pattern[str]]]] = {
    # YAML 1.1's implicit types minus timestamps: dates in examples stay the strings written.
    first: [(tag, rx) for tag, rx in rules if tag != _TAG + "timestamp"]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_BOOLS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
_NO_KEY: Any = object()
_MERGE: Any = object()
"""Key placeholder for YAML's merge key `<<` (a plain `<<` only; a quoted one is a key)."""


def _sexagesimal(text: str, cast: type[int] | type[float]) -> Any:
    start: Any = 0
    return functools.reduce(lambda value, part: value * 60 + cast(part), text.split(":"), start)


def _yaml_scalar(text: str, tag: str) -> Any:
    """PyYAML's SafeConstructor rules for the core tags, refusing what JSON cannot hold."""
    if tag == _TAG + "str":
        return text
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        if (flag := _BOOLS.get(text.lower())) is None:
            raise _Refused(f"{text[:40]!r} is not a boolean")
        return flag
    plain = text.replace("_", "")
    sign = -1 if plain[:1] == "-" else 1
    digits = plain[1:] if plain[:1] in "+-" else plain
    if len(digits) > _MAX_DIGITS:
        raise _Refused(f"a number has more than {_MAX_DIGITS} digits")
    if digits.lower() in (".inf", ".nan"):
        raise _Refused(f"{text!r} (infinity or NaN) is not allowed")
    try:
        if tag == _TAG + "float":
            value = sign * (_sexagesimal(digits, float) if ":" in digits else float(digits))
        elif digits[:2] in ("0b", "0x"):
            return sign * int(digits[2:], 2 if digits[1] == "b" else 16)
        elif digits.startswith("0") and digits != "0":
            return sign * int(digits, 8)
        else:
            return sign * (_sexagesimal(digits, int) if ":" in digits else int(digits))
    except (ValueError, IndexError):
        raise _Refused(f"{text[:40]!r} is not a valid {tag.removeprefix(_TAG)}") from None
    if math.isinf(value):
        raise _Refused(f"the number {text[:40]!r} is too large")
    return value


@dataclass(slots=True)
class _Frame:
    """A mapping or sequence being built, with its alias-expanded size and its height."""

    container: Any
    anchor: str | None
    key: Any = _NO_KEY
    size: int = 1
    height: int = 1
    merges: list[Any] = field(default_factory=list)


class _YamlBuilder:
    """Builds plain data from YAML parser events, iteratively and within budget.

    Counting happens with aliases expanded (an alias adds the full size of what it names), so
    a billion-laughs document stops after `yaml_max_nodes` nodes while sharing, not copying.
    Heights travel with anchors, so an alias cannot smuggle nesting past `max_depth`.
    """

    def __init__(self, source: str, limits: SpecLimits) -> None:
        self.source = source
        self.limits = limits
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int, Any]] = {}
        self.open_anchors: set[str] = set()
        self.total = 0
        self.result: Any = None
        self.event: Any = None
        self.documents = 0

    def build(self, body: bytes) -> Any:
        handlers = {
            events.ScalarEvent: self._scalar,
            events.MappingStartEvent: self._start,
            events.SequenceStartEvent: self._start,
            events.MappingEndEvent: self._end,
            events.SequenceEndEvent: self._end,
            events.AliasEvent: self._alias,
            events.DocumentStartEvent: self._document,
        }
        loader = _LOADER(body)
        try:
            for event in iter(loader.get_event, None):  # None once the stream has ended
                self.event = event
                if handler := handlers.get(type(event)):
                    handler(event)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            if "nesting depth" in problem:  # libyaml stops at 1,000 levels
                problem = f"the document nests too deeply ({problem})"
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            raise SpecInvalid(
                f"{self.source}: not valid YAML{where}: {problem}; {_WHAT_TO_DO}",
                source=self.source,
            ) from None
        except _Refused as exc:
            self._refuse(str(exc))
        finally:
            loader.dispose()
        return self.result

    def _refuse(self, cause: str, *, key: Any = _NO_KEY) -> NoReturn:
        parts = [
            len(f.container) if type(f.container) is list else "<<" if f.key is _MERGE else f.key
            for f in self.stack
            if type(f.container) is list or f.key is not _NO_KEY
        ]
        pointer = "".join("/" + _escape(part) for part in [*parts, key] if part is not _NO_KEY)
        mark = getattr(self.event, "start_mark", None)
        where = f" (line {mark.line + 1} column {mark.column + 1})" if mark else ""
        _invalid(self.source, "YAML", pointer, cause, where)

    def _count(self, size: int, height: int) -> None:
        self.total += size
        if self.total > self.limits.yaml_max_nodes:
            self._refuse(
                f"the document expands to more than {self.limits.yaml_max_nodes} nodes "
                "with its aliases expanded (an alias bomb?); if it is a genuine huge spec, "
                "convert it to JSON or raise SpecLimits.yaml_max_nodes"
            )
        if len(self.stack) + height > self.limits.max_depth:
            self._refuse(f"the document nests deeper than {self.limits.max_depth} levels")

    def _scalar(self, event: Any) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _TAG + "str"
            if event.implicit[0]:
                value = event.value
                for candidate, rx in _IMPLICIT.get(value[:1], ()):
                    if rx.match(value):
                        tag = candidate
                        break
        elif tag not in _SCALAR_TAGS:
            self._refuse(f"the explicit tag {tag!r} is not allowed (plain YAML only)")
        self._count(1, 0)
        if tag == _TAG + "merge":
            value, key = event.value, _MERGE
        else:
            value = _yaml_scalar(event.value, tag) if tag in _SCALAR_TAGS else event.value
            key = event.value
        if event.anchor:
            self.anchors[event.anchor] = (value, 1, 0, key)
        self._add(value, 1, 0, key)

    def _document(self, _: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            self._refuse("the stream holds more than one YAML document")

    def _start(self, event: Any) -> None:
        is_map = type(event) is events.MappingStartEvent
        if event.tag not in (None, "!", _TAG + ("map" if is_map else "seq")):
            self._refuse(f"the explicit tag {event.tag!r} is not allowed (plain YAML only)")
        if self.stack and self.stack[-1].key is _NO_KEY and type(self.stack[-1].container) is dict:
            self._refuse("a mapping key is a mapping or a sequence; keys must be scalars")
        self._count(0, 1)
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame({} if is_map else [], event.anchor))

    def _end(self, _: Any) -> None:
        frame = self.stack.pop()
        value = frame.container
        if frame.merges:  # earlier merged mappings win over later ones, own keys over all
            value = {k: v for merged in reversed(frame.merges) for k, v in merged.items()} | value
        self._count(1, 0)
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, frame.size, frame.height, None)
        self._add(value, frame.size, frame.height, None)

    def _alias(self, event: Any) -> None:
        name = event.anchor
        if name in self.open_anchors:
            self._refuse(f"the alias *{name} refers to a node that contains it (recursive)")
        if name not in self.anchors:
            self._refuse(f"the alias *{name} names no anchor defined before it")
        value, size, height, key = self.anchors[name]
        self._count(size, height)
        self._add(value, size, height, key)

    def _add(self, value: Any, size: int, height: int, key: Any) -> None:
        if not self.stack:
            self.result = value
            return
        frame = self.stack[-1]
        frame.size += size
        frame.height = max(frame.height, height + 1)
        container = frame.container
        if type(container) is list:
            container.append(value)
        elif frame.key is _NO_KEY:
            if key is None:
                self._refuse("a mapping key is an alias of a collection; keys must be scalars")
            if key in container:
                self._refuse(f"duplicate key {key!r}", key=key)
            frame.key = key
        elif frame.key is _MERGE:
            merges = value if type(value) is list else [value]
            if not all(type(m) is dict for m in merges):
                self._refuse("the merge key '<<' needs a mapping or a list of mappings")
            frame.merges.extend(merges)
            frame.key = _NO_KEY
        else:
            container[frame.key] = value
            frame.key = _NO_KEY


def _text(content: bytes, source: str) -> tuple[bytes, str]:
    """Strict UTF-8 text (BOM stripped), refusing UTF-16/32 with a message that says so."""
    body = content[3:] if content.startswith(_UTF8_BOM) else content
    head, fix = body[:4], "APIQ reads UTF-8 only: re-encode it as UTF-8"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        raise SpecInvalid(f"{source}: the document is UTF-16 or UTF-32; {fix}", source=source)
    try:
        return body, body.decode("utf-8")
    except UnicodeDecodeError as exc:
        cause = f"the document is not valid UTF-8 (byte {exc.start}: {exc.reason})"
        raise SpecInvalid(f"{source}: {cause}; {fix}", source=source) from None


def _media_kind(media_type: str | None) -> str | None:
    essence = (media_type or "").split(";", 1)[0].strip().lower()
    suffix = essence.rpartition("+")[2]
    return _MEDIA_TYPES.get(essence) or (suffix if suffix in ("json", "yaml") else None)


def _check_openapi(document: Any, source: str) -> dict[str, Any]:
    kind = {list: "an array", str: "a string", type(None): "empty"}.get(type(document))
    is_dict = isinstance(document, dict)
    field = next((f for f in ("openapi", "swagger") if f in document), None) if is_dict else None
    if field is None:
        cause = f"the top level is {kind or 'a scalar'}, not an object"
        cause = "no 'openapi' or 'swagger' field" if is_dict else cause
        message = f"{source}: not an OpenAPI document: {cause}; {_WHAT_TO_DO}"
        raise SpecInvalid(message, source=source)
    spec: dict[str, Any] = document
    version = spec[field]
    if isinstance(version, float):
        # YAML reads an unquoted `swagger: 2.0` or `openapi: 3.1` as a number; keep the text.
        version = spec[field] = repr(version)
    if version == "2.0" if field == "swagger" else _OPENAPI_VERSION.fullmatch(str(version)):
        return spec
    raise SpecInvalid(
        f"{source}: unsupported {field} version {version!r}; "
        "APIQ reads OpenAPI 3.0.x and 3.1.x and Swagger 2.0",
        source=source,
        pointer=f"/{field}",
    )


def decode_document(
    content: bytes,
    *,
    source: str,
    media_type: str | None = None,
    limits: SpecLimits = SpecLimits(),  # noqa: B008 - frozen value object, safe as a default
) -> dict[str, Any]:
    """Decode spec bytes into plain dicts, lists and scalars, refusing anything hostile.

    JSON or YAML is chosen by `media_type` (`application/json`, `*+json`, `application/yaml`,
    ...) and otherwise sniffed: a first non-space byte `{` means JSON, anything else YAML.
    `$ref`s are left as they are; check them with `apiq.specs.refs.check_refs`.

    Args:
        content: The document's bytes, UTF-8 (a UTF-8 byte order mark is ignored).
        source: The spec reference (URL or path), named in every error.
        media_type: The Content-Type it was served with, or None when unknown.
        limits: Nesting depth and YAML node budget.

    Returns:
        The document, a dict with an `openapi` (3.0.x or 3.1.x) or `swagger` ("2.0") field.
        YAML aliases share one object wherever they are used.

    Raises:
        SpecInvalid: Not UTF-8, not strict JSON or safe YAML, breaks a bound, or is not an
            OpenAPI document; the message names the cause and `pointer` the place when known.
    """
    body, text = _text(content, source)
    start = body.lstrip(_WHITESPACE)[:1]
    kind = _media_kind(media_type)
    if kind != "html" and start:
        try:
            if kind == "json" or (kind is None and start == b"{"):
                return _check_openapi(_decode_json(text, body, source, limits), source)
            return _check_openapi(_YamlBuilder(source, limits).build(body), source)
        except SpecInvalid:
            if start != b"<":  # YAML may start with '<'; markup fails, and is named below
                raise
    if not start:
        raise SpecInvalid(f"{source}: the document is empty; {_WHAT_TO_DO}", source=source)
    raise SpecInvalid(
        f"{source}: this looks like an HTML page, not an OpenAPI document (a login or error "
        f"page served instead of the spec?); {_WHAT_TO_DO}",
        source=source,
    )
