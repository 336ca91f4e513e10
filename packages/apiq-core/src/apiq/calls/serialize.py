"""Parameter values -> URL, header and cookie text, as OpenAPI 3's style tables say.

Every style of the specification's "Style Examples" table is here (3.1.1 / 3.0.4, which
corrected earlier tables to follow RFC 6570): `matrix`, `label` and `simple` for paths,
`form`, `spaceDelimited`, `pipeDelimited` and `deepObject` for queries, `simple` for headers
and `form` for cookies, each with `explode` on and off, for primitives, arrays and objects.

Percent-encoding follows RFC 6570 with `allowReserved: false` (the only setting the catalog
keeps): every character outside RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`) is encoded
as UTF-8 `%XX`, inside values *and* names, while the style's own delimiters (`,` `;` `=`
`&`, and the already-encoded `%20`, `%7C`, `%5B`/`%5D`) stay literal. A value can therefore
never add a path segment, a query pair or a cookie.

Where the tables say "n/a" APIQ picks the common reading and says so:
- `spaceDelimited` / `pipeDelimited` with `explode: true`, and arrays under `deepObject`,
  serialize as `form` with `explode: true` (repeated `name=value` pairs);
- a primitive under a query-only array style serializes as `name=value`;
- `deepObject` nests (`a[b][c]=1`, arrays as `a[b][0]=x`), the convention of Rails, qs and
  Stripe, since OpenAPI leaves nested values undefined;
- a nested value inside an array or object for the other styles is sent as compact JSON.

`None` (JSON null) is RFC 6570's "undefined": the parameter, item or property is left out; an
empty array or object counts as undefined too. Header values are not percent-encoded (HTTP
carries them as text) except for non-ASCII characters; control characters are refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

__all__ = [
    "ValueNotEncodable",
    "content_text",
    "cookie_pairs",
    "header_value",
    "path_text",
    "percent_encode",
    "query_pairs",
    "scalar_text",
]

_PATH_STYLES = {
    # style -> (prefix, separator between exploded members, named)
    "simple": ("", ",", False),
    "label": (".", ".", False),
    "matrix": (";", ";", True),
}
_DELIMITERS = {"spaceDelimited": "%20", "pipeDelimited": "%7C"}
# Values that are neither arrays nor objects under any style (bool is an int).
_PRIMITIVES = (str, int, float)


class ValueNotEncodable(Exception):
    """A value cannot be put into a request.

    Internal: `apiq.calls.build_request` turns it into `InvalidArguments` naming the field.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        """Where inside the argument the problem is, relative to it (`[0]`, `.name`)."""


def percent_encode(text: str) -> str:
    """`text` with everything but RFC 3986 unreserved characters as UTF-8 `%XX`.

    Raises:
        ValueNotEncodable: The text holds a lone surrogate (not valid Unicode).
    """
    try:
        return quote(text, safe="")
    except UnicodeEncodeError:
        raise ValueNotEncodable("is not valid Unicode text (it holds a lone surrogate)") from None


def scalar_text(value: Any) -> str:
    """The text of one primitive: `true`/`false`, numbers as JSON writes them, strings as-is.

    Arrays and objects nested where a style has no rule for them become compact JSON.

    Raises:
        ValueNotEncodable: NaN or an infinity (JSON has neither), or a value JSON cannot hold.
    """
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueNotEncodable(f"{value!r} is not a number JSON or a URL can carry")
        return repr(value)
    return content_text(value, "application/json")


def content_text(value: Any, content_type: str | None) -> str:
    """A parameter described by `content`: JSON text (compact), or a string as-is for text.

    Raises:
        ValueNotEncodable: The value cannot be written as JSON.
    """
    plain = (content_type or "").split(";")[0].strip().lower()
    if isinstance(value, str) and plain.startswith("text/"):
        return value
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueNotEncodable(f"cannot be written as JSON ({exc})") from None


def _is_array(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def _items(value: Sequence[Any]) -> list[Any]:
    return [item for item in value if item is not None]


def _members(value: Mapping[Any, Any]) -> list[tuple[str, Any]]:
    return [(str(key), item) for key, item in value.items() if item is not None]


def path_text(name: str, style: str, explode: bool, value: Any) -> str:
    """The already-encoded text that replaces `{name}` in a path template.

    `simple`, `label` and `matrix` follow RFC 6570's `{x}`, `{.x}` and `{;x}`; any other
    style is read as `simple`. An undefined or empty value gives the table's empty form
    (``""``, ``.``, ``;name``).
    """
    prefix, separator, named = _PATH_STYLES.get(style, _PATH_STYLES["simple"])
    if not named and isinstance(value, _PRIMITIVES):
        # The common `{id}`: one value, no name, no list or object to tell apart.
        return prefix + percent_encode(scalar_text(value))
    key = percent_encode(name)

    def one(text: str) -> str:
        encoded = percent_encode(text)
        if not named:
            return encoded
        return f"{key}={encoded}" if encoded else key

    if _is_array(value):
        items = [scalar_text(item) for item in _items(value)]
        if not items:
            return prefix + (key if named else "")
        if explode:
            return prefix + separator.join(one(item) for item in items)
        joined = ",".join(percent_encode(item) for item in items)
        return prefix + (f"{key}={joined}" if named else joined)
    if isinstance(value, Mapping):
        members = [(k, scalar_text(v)) for k, v in _members(value)]
        if not members:
            return prefix + (key if named else "")
        if explode:
            return prefix + separator.join(
                f"{percent_encode(k)}={percent_encode(v)}" for k, v in members
            )
        joined = ",".join(f"{percent_encode(k)},{percent_encode(v)}" for k, v in members)
        return prefix + (f"{key}={joined}" if named else joined)
    return prefix + one("" if value is None else scalar_text(value))


def query_pairs(name: str, style: str, explode: bool, value: Any) -> list[tuple[str, str]]:
    """Encoded `(name, value)` pairs for a query parameter (or a form-urlencoded field).

    Join them as `name=value` with `&`; both halves are already percent-encoded.
    """
    if value is None:
        return []
    key = percent_encode(name)
    if isinstance(value, _PRIMITIVES):  # the common `?name=value`, whatever the style
        return [(key, percent_encode(scalar_text(value)))]
    if style == "deepObject":
        if isinstance(value, Mapping):
            return _deep_pairs(name, value)
        style, explode = "form", True
    delimiter = _DELIMITERS.get(style)
    if delimiter is not None and explode:
        delimiter = None  # "n/a" in the table: the common reading is exploded form
    if _is_array(value):
        items = [percent_encode(scalar_text(item)) for item in _items(value)]
        if not items:
            return []
        if explode:
            return [(key, item) for item in items]
        return [(key, (delimiter or ",").join(items))]
    if isinstance(value, Mapping):
        members = [(percent_encode(k), percent_encode(scalar_text(v))) for k, v in _members(value)]
        if not members:
            return []
        if explode:
            return members
        return [(key, (delimiter or ",").join(f"{k}{delimiter or ','}{v}" for k, v in members))]
    return [(key, percent_encode(scalar_text(value)))]


def _deep_pairs(name: str, value: Any) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [(name, value)]
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, Mapping):
            children = [(f"{prefix}[{k}]", v) for k, v in _members(node)]
        elif _is_array(node):
            children = [(f"{prefix}[{i}]", v) for i, v in enumerate(node) if v is not None]
        else:
            pairs.append((percent_encode(prefix), percent_encode(scalar_text(node))))
            continue
        if len(pairs) + len(stack) > 10_000:
            raise ValueNotEncodable("has more than 10,000 members to send as deepObject")
        stack.extend(reversed(children))
    return pairs


def header_value(style: str, explode: bool, value: Any) -> str | None:
    """The text of a `simple` header parameter; None when the value is undefined.

    Raises:
        ValueNotEncodable: The text holds a control character (CR and LF would let a value
            start a header of its own).
    """
    del style  # `simple` is the only style OpenAPI defines for headers
    if value is None:
        return None
    if _is_array(value):
        text = ",".join(scalar_text(item) for item in _items(value))
    elif isinstance(value, Mapping):
        join = "=" if explode else ","
        text = ",".join(f"{k}{join}{scalar_text(v)}" for k, v in _members(value))
    else:
        text = scalar_text(value)
    return checked_header_text(text)


def checked_header_text(text: str) -> str:
    """`text` safe for a header: control characters refused, non-ASCII percent-encoded.

    Raises:
        ValueNotEncodable: The text holds a control character other than a tab.
    """
    for char in text:
        if (char < " " and char != "\t") or char == "\x7f":
            raise ValueNotEncodable(
                f"holds the control character {char!r}, which no header value may carry"
            )
    if text.isascii():
        return text
    return "".join(char if char.isascii() else percent_encode(char) for char in text)


def cookie_pairs(name: str, explode: bool, value: Any) -> list[tuple[str, str]]:
    """`(name, value)` cookies for a `form` cookie parameter, percent-encoded.

    `form` with `explode: true` gives one cookie per array item or object member, as the
    query table does with pairs; `explode: false` gives one cookie with a `,`-joined value.
    """
    return query_pairs(name, "form", explode, value)
