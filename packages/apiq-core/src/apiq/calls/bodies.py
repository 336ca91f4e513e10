"""Request bodies: the `body` argument -> bytes and a Content-Type.

The media type is the one the argument schema was built for
(`apiq.catalog.arguments.preferred_media_type`: JSON, then `+json`, then a form, then the
first listed), so what is validated is what is sent:

- JSON (`application/json`, `*/*+json`): compact UTF-8 JSON, NaN and infinities refused;
- `application/x-www-form-urlencoded`: an object; each member serialized as a query
  parameter with the Encoding Object's `style`/`explode` (default `form`, exploded);
- `multipart/form-data`: an object; primitives are text parts, `bytes` or `FilePart` values
  are file parts, arrays give one part per item, objects a JSON part; a random boundary;
- `text/*`: a string (or number) as UTF-8, `; charset=utf-8` added when the type has none;
- anything else (`application/octet-stream`, `image/png`, ...): `bytes` (or a string, sent
  as UTF-8); `*/*` takes bytes as octet-stream and anything else as JSON.
A `bytes` value is sent as it is, whatever the media type.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apiq.calls.serialize import ValueNotEncodable, content_text, query_pairs, scalar_text
from apiq.catalog.catalog import Catalog
from apiq.catalog.models import Operation
from apiq.errors import SpecError
from apiq.specs.refs import resolve

__all__ = ["EncodedBody", "FilePart", "encode_body", "media_encoding"]

FORM = "application/x-www-form-urlencoded"
OCTETS = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class FilePart:
    """A file to upload in a multipart body (plain `bytes` work too, named after the field)."""

    content: bytes
    filename: str | None = None
    """Sent in Content-Disposition; defaults to the field name."""
    content_type: str | None = None
    """The part's Content-Type; defaults to the Encoding Object's, else octet-stream."""


@dataclass(frozen=True, slots=True)
class EncodedBody:
    content: bytes
    content_type: str
    """The Content-Type header value (with `boundary=` for multipart)."""


def media_encoding(catalog: Catalog, operation: Operation, media_type: str) -> Mapping[str, Any]:
    """The Encoding Object map of an operation's request body media type, or `{}`.

    The catalog keeps media types and schemas only, so this reads the document at the
    operation's pointer. Anything unexpected there means "no encoding given": the defaults.
    """
    if catalog.spec_version.startswith("2"):
        return {}
    node: Any = catalog.document
    for token in operation.pointer.split("/")[1:]:
        if not isinstance(node, Mapping):
            return {}
        node = node.get(token.replace("~1", "/").replace("~0", "~"))
    body = node.get("requestBody") if isinstance(node, Mapping) else None
    try:
        body, _ = resolve(catalog.document, body, source=catalog.source, max_hops=8)
    except SpecError:
        return {}
    content = body.get("content") if isinstance(body, Mapping) else None
    media = content.get(media_type) if isinstance(content, Mapping) else None
    encoding = media.get("encoding") if isinstance(media, Mapping) else None
    return encoding if isinstance(encoding, Mapping) else {}


def encode_body(
    media_type: str, value: Any, *, encoding: Mapping[str, Any] | None = None
) -> EncodedBody:
    """`value` as the bytes of a `media_type` body (module docstring).

    Raises:
        ValueNotEncodable: The value does not fit the media type (a list for a form, a dict
            for octet-stream, NaN in JSON, ...).
    """
    plain = media_type.split(";")[0].strip().lower()
    if isinstance(value, FilePart):
        return EncodedBody(value.content, value.content_type or _concrete(media_type, OCTETS))
    if isinstance(value, bytes | bytearray):
        return EncodedBody(bytes(value), _concrete(media_type, OCTETS))
    if plain == "application/json" or plain.endswith(("+json", "/json")):
        return EncodedBody(_json(value), media_type)
    if plain == FORM:
        return EncodedBody(_form(_fields(value, media_type), encoding or {}), media_type)
    if plain.startswith("multipart/"):
        return _multipart(media_type, _fields(value, media_type), encoding or {})
    if plain.startswith("text/"):
        if isinstance(value, Mapping | list | tuple) or value is None:
            raise ValueNotEncodable(f"must be text for a {plain} body, not {_kind(value)}")
        charset = "" if "charset=" in media_type.lower() else "; charset=utf-8"
        return EncodedBody(_utf8(scalar_text(value)), media_type + charset)
    if isinstance(value, str):
        return EncodedBody(_utf8(value), _concrete(media_type, "text/plain; charset=utf-8"))
    if plain == "*/*":
        return EncodedBody(_json(value), "application/json")
    raise ValueNotEncodable(f"must be bytes for a {plain} body, not {_kind(value)}")


def _concrete(media_type: str, fallback: str) -> str:
    """The media type itself unless it is a range (`*/*`, `image/*`)."""
    return fallback if "*" in media_type.split(";")[0] else media_type


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueNotEncodable("is not valid Unicode text (it holds a lone surrogate)") from None


def _json(value: Any) -> bytes:
    return _utf8(content_text(value, "application/json"))


def _fields(value: Any, media_type: str) -> list[tuple[str, Any]]:
    if not isinstance(value, Mapping):
        raise ValueNotEncodable(f"must be an object of fields for a {media_type} body")
    return [(str(name), item) for name, item in value.items() if item is not None]


def _form(fields: list[tuple[str, Any]], encoding: Mapping[str, Any]) -> bytes:
    pairs: list[tuple[str, str]] = []
    for name, value in fields:
        rule = encoding.get(name)
        rule = rule if isinstance(rule, Mapping) else {}
        declared = rule.get("style")
        style = declared if isinstance(declared, str) else "form"
        explode = rule.get("explode")
        try:
            pairs.extend(
                query_pairs(
                    name, style, explode if isinstance(explode, bool) else style == "form", value
                )
            )
        except ValueNotEncodable as exc:
            raise ValueNotEncodable(exc.message, field=f".{name}{exc.field}") from None
    return "&".join(f"{key}={text}" for key, text in pairs).encode("ascii")


def _disposition(text: str) -> str:
    # The escapes browsers use (WHATWG HTML, multipart/form-data encoding algorithm), so a
    # field or file name can never end the header or start another one.
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _multipart(
    media_type: str, fields: list[tuple[str, Any]], encoding: Mapping[str, Any]
) -> EncodedBody:
    parts: list[tuple[str, str | None, str | None, bytes]] = []
    for name, value in fields:
        rule = encoding.get(name)
        declared = rule.get("contentType") if isinstance(rule, Mapping) else None
        declared = declared.split(",")[0].strip() if isinstance(declared, str) else None
        items = value if isinstance(value, list | tuple) else [value]
        for index, item in enumerate(items):
            if item is None:
                continue
            where = f".{name}" + (f"[{index}]" if items is value else "")
            parts.append(_part(name, item, declared, where))
    boundary = secrets.token_hex(16)
    while any(boundary.encode() in content for *_, content in parts):
        boundary = secrets.token_hex(16)  # 128 random bits: practically never loops
    chunks: list[bytes] = []
    for name, filename, content_type, content in parts:
        disposition = f'form-data; name="{_disposition(name)}"'
        if filename is not None:
            disposition += f'; filename="{_disposition(filename)}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type is not None:
            head += f"Content-Type: {_disposition(content_type)}\r\n"
        chunks += [_utf8(head), b"\r\n", content, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    base = media_type.split(";")[0].strip()
    return EncodedBody(b"".join(chunks), f"{base}; boundary={boundary}")


def _part(
    name: str, value: Any, declared: str | None, where: str
) -> tuple[str, str | None, str | None, bytes]:
    """(name, filename, content type, content) of one multipart part."""
    if isinstance(value, FilePart):
        return name, value.filename or name, value.content_type or declared or OCTETS, value.content
    if isinstance(value, bytes | bytearray):
        return name, name, declared or OCTETS, bytes(value)
    try:
        if isinstance(value, Mapping | list | tuple):
            return name, None, declared or "application/json", _json(value)
        # RFC 7578: a part without Content-Type is text/plain; say so only when declared.
        return name, None, declared, _utf8(scalar_text(value))
    except ValueNotEncodable as exc:
        raise ValueNotEncodable(exc.message, field=where + exc.field) from None
