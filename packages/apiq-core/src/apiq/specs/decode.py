"""Turn untrusted spec bytes into plain data, strictly and within bounds (SECURITY.md).

JSON is strict: UTF-8 only, no NaN/Infinity, no duplicate keys, no over-long numbers or
floats that overflow, no lone surrogates, bounded nesting. It stays in the C scanner and pays
for what it must: a hook per object for duplicate keys, a level-by-level depth pass, and walks
that find a culprit's JSON Pointer only after a refusal. YAML goes to
`apiq.specs.yaml_decode`, which builds plain data from the safe parser's events within the
same bounds. Every refusal is a `SpecInvalid` naming its cause.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any, NoReturn

from apiq.config import SpecLimits
from apiq.errors import SpecInvalid
from apiq.specs.refs import escape_token

__all__ = ["decode_data", "decode_document"]

_UTF8_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
MAX_DIGITS = 4300
"""Longest integer literal accepted; Python's own default for `int(str)` (CVE-2020-10735)."""
_NESTED = (dict, list)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_OPENAPI_VERSION = re.compile(r"3\.[01](?:\.\d+)?(?:-[0-9A-Za-z.-]+)?")
_MEDIA_TYPES = dict.fromkeys(["application/json", "text/json"], "json")
_MEDIA_TYPES |= dict.fromkeys(["text/html", "application/xhtml+xml"], "html")
_MEDIA_TYPES |= dict.fromkeys(["application/vnd.oai.openapi", "text/yaml", "text/x-yaml"], "yaml")
_MEDIA_TYPES |= dict.fromkeys(["application/yaml", "application/x-yaml"], "yaml")
WHAT_TO_DO = "point APIQ at the raw OpenAPI document (JSON or YAML, UTF-8)"


# Refused, escape and invalid are shared with apiq.specs.yaml_decode, so that both languages
# word and place their refusals alike.


class Refused(Exception):
    """Raised inside parsing hooks (its text is the cause); becomes SpecInvalid with a place."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The one hook that runs for every object: kept to a dict() and two len()s.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise Refused("duplicate key")
    return obj


def _locating_pairs(pairs: list[tuple[str, Any]]) -> dict[Any, Any]:
    obj: dict[Any, Any] = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for i, key in enumerate(keys) if key in keys[:i])
        obj[Refused("duplicate key")] = duplicate
    return obj


def _json_decoder(locate: bool) -> json.JSONDecoder:
    """The strict decoder, or with `locate` one that leaves a `Refused` where it would raise."""

    def flag(cause: str) -> Any:
        if not locate:
            raise Refused(cause)
        return Refused(cause)

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
    allowed = min(limit or MAX_DIGITS, MAX_DIGITS)
    return json.JSONDecoder(
        object_pairs_hook=_locating_pairs if locate else _pairs,
        parse_constant=lambda name: flag(f"{name} is not allowed in JSON"),
        parse_float=real,
        parse_int=integer if locate or limit == 0 or limit > MAX_DIGITS else None,
    )


def escape(token: Any) -> str:
    """`token` as a JSON Pointer reference token that prints (no lone surrogate left)."""
    # Pointers end up in messages and logs: a lone surrogate must not make them unprintable.
    return escape_token(str(token).encode("utf-8", "backslashreplace").decode("utf-8"))


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
                if isinstance(key, Refused):
                    return f"{path}/{escape(value)}", str(key)
                child = f"{path}/{escape(key)}"
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
            f"fix the document or {WHAT_TO_DO}",
            source=source,
        ) from None
    except RecursionError:
        raise SpecInvalid(
            f"{source}: the JSON nests objects/arrays too deeply to parse "
            f"(the limit is {limits.max_depth} levels)",
            source=source,
        ) from None
    except (Refused, ValueError) as exc:
        # A bare ValueError is int() refusing a literal over sys.get_int_max_str_digits().
        cause = str(exc) if isinstance(exc, Refused) else "an integer has too many digits"
        try:  # parse again, marking instead of raising, to tell where
            marked = _json_decoder(locate=True).decode(text)
        except (ValueError, RecursionError):  # broken further on: the cause is enough
            invalid(source, "JSON", None, cause)
        found = _find(marked, lambda v, _: str(v) if isinstance(v, Refused) else None)
        invalid(source, "JSON", *(found or (None, cause)))
    if _SURROGATE_ESCAPE.search(body) and (found := _find(document, _lone_surrogate)):
        invalid(source, "JSON", *found)
    if isinstance(document, (dict, list)) and _too_deep(document, limits.max_depth):
        deep, limit = f"the document nests deeper than {limits.max_depth} levels", limits.max_depth
        # The first container below `limit` levels: its pointer has `limit` parts.
        found = _find(
            document, lambda v, p: deep if type(v) in _NESTED and p.count("/") >= limit else None
        )
        invalid(source, "JSON", *(found or (None, deep)))
    return document


def invalid(source: str, lang: str, pointer: str | None, cause: str, where: str = "") -> NoReturn:
    """Raise the SpecInvalid for a refused `lang` document, naming the place when known."""
    place = "" if pointer is None else f" at {pointer[:120] or '/'}"
    place += "..." if pointer and len(pointer) > 120 else ""
    raise SpecInvalid(
        f"{source}: refused {lang}{place}{where}: {cause}", source=source, pointer=pointer
    )


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
        message = f"{source}: not an OpenAPI document: {cause}; {WHAT_TO_DO}"
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
    from apiq.specs.yaml_decode import YamlBuilder  # it imports the refusal helpers above

    body, text = _text(content, source)
    start = body.lstrip(_WHITESPACE)[:1]
    kind = _media_kind(media_type)
    if kind != "html" and start:
        try:
            if kind == "json" or (kind is None and start == b"{"):
                return _check_openapi(_decode_json(text, body, source, limits), source)
            return _check_openapi(YamlBuilder(source, limits).build(body), source)
        except SpecInvalid:
            if start != b"<":  # YAML may start with '<'; markup fails, and is named below
                raise
    if not start:
        raise SpecInvalid(f"{source}: the document is empty; {WHAT_TO_DO}", source=source)
    raise SpecInvalid(
        f"{source}: this looks like an HTML page, not an OpenAPI document (a login or error "
        f"page served instead of the spec?); {WHAT_TO_DO}",
        source=source,
    )


def decode_data(
    content: bytes,
    *,
    source: str,
    limits: SpecLimits = SpecLimits(),  # noqa: B008 - frozen value object, safe as a default
) -> Any:
    """Any JSON or YAML document as plain data, as strict and bounded as `decode_document`.

    For untrusted documents that are not OpenAPI (Arazzo workflows): a first non-space byte
    `{` means JSON, anything else YAML.

    Raises:
        SpecInvalid: Not UTF-8, not strict JSON or safe YAML, or breaks a bound.
    """
    from apiq.specs.yaml_decode import YamlBuilder

    body, text = _text(content, source)
    if body.lstrip(_WHITESPACE)[:1] == b"{":
        return _decode_json(text, body, source, limits)
    return YamlBuilder(source, limits).build(body)
