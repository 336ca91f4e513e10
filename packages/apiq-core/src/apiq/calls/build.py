"""(operation, arguments) -> the exact HTTP request, without sending it.

`build_request` validates the arguments first (`validate_arguments`), then fills the path
template, the query string, headers, cookies and the body (`apiq.calls.serialize`,
`apiq.calls.bodies`). Credentials are not here: the caller attaches them to the
`PreparedRequest`, for the connection's host only.

The path is where a value could change *which* resource is addressed, so it is guarded
twice: every value is percent-encoded (`/` included, `%` included), and a segment that a
value produced must not be empty, `.` or `..` — also after being percent-decoded again, up
to three times, for servers and proxies that decode twice (`%252e%252e`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from apiq.calls.bodies import encode_body, media_encoding
from apiq.calls.serialize import (
    ValueNotEncodable,
    checked_header_text,
    content_text,
    cookie_pairs,
    header_value,
    path_text,
    percent_encode,
    query_pairs,
)
from apiq.calls.validate import validate_arguments
from apiq.catalog.arguments import preferred_media_type
from apiq.catalog.catalog import Catalog
from apiq.catalog.models import Operation, Parameter
from apiq.errors import ConfigurationError, ExecutionError, InvalidArguments

__all__ = ["PreparedRequest", "build_request"]

_PLACEHOLDER = re.compile(r"\{([^{}/]*)\}")
# RFC 3986 pchar plus "/" and "%": literal text of a template is kept, only what a path
# can never hold (spaces, non-ASCII, ...) is encoded.
_LITERAL_SAFE = "/!$&'()*+,;=:@-._~%"
_DOT_SEGMENTS = frozenset({"", ".", ".."})


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """What will be sent; credentials are attached later, by the caller."""

    method: str
    """Upper case: `GET`, `POST`, ..."""
    url: str
    """Absolute, with the query string; every parameter value percent-encoded."""
    headers: tuple[tuple[str, str], ...]
    """Header parameters, in operation order; without Content-Type (see `content_type`)."""
    cookies: tuple[tuple[str, str], ...]
    """Cookie parameters as `(name, value)`, values percent-encoded."""
    content: bytes | None
    content_type: str | None
    """The Content-Type header value when there is a body (with the multipart boundary)."""
    path_template: str
    """The operation's path as the spec writes it: what audit events record."""
    operation_id: str


def _invalid(operation_id: str, field: str, message: str) -> InvalidArguments:
    problem = f"{field}: {message}"
    return InvalidArguments(
        f"{operation_id}: invalid arguments: {problem}; fix this field and try again",
        operation_id=operation_id,
        errors=(problem,),
    )


def _group(arguments: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    group = arguments.get(name)
    if group is None:
        return {}
    return group if isinstance(group, dict | Mapping) else {}  # dict first: no ABC lookup


def _refused_segment(segment: str) -> bool:
    for _ in range(4):
        if segment in _DOT_SEGMENTS:
            return True
        decoded = unquote(segment)
        if decoded == segment:
            return False
        segment = decoded
    return segment in _DOT_SEGMENTS


@functools.lru_cache(maxsize=1024)
def _template_segments(template: str) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """Per `/` segment of a path template: its literal pieces, already encoded, and the
    placeholder names between them (one fewer). Templates repeat on every call."""
    segments = []
    for raw in template.split("/"):
        literals, names, last = [], [], 0
        for match in _PLACEHOLDER.finditer(raw):
            literals.append(quote(raw[last : match.start()], safe=_LITERAL_SAFE))
            names.append(match.group(1))
            last = match.end()
        literals.append(quote(raw[last:], safe=_LITERAL_SAFE))
        segments.append((tuple(literals), tuple(names)))
    return tuple(segments)


def _path(operation: Operation, template: str, values: Mapping[str, Any]) -> str:
    params = {p.name: p for p in operation.parameters if p.location == "path"}
    segments: list[str] = []
    for literals, names in _template_segments(template):
        if not names:
            segments.append(literals[0])
            continue
        out = [literals[0]]
        for name, literal in zip(names, literals[1:], strict=True):
            param = params.get(name)
            if param is None:
                raise ExecutionError(
                    f"{operation.operation_id}: the path {operation.path!r} names {{{name}}} "
                    "but the operation defines no such path parameter; the spec needs fixing",
                    operation_id=operation.operation_id,
                )
            try:
                if param.content_type is not None:
                    text = percent_encode(content_text(values.get(name), param.content_type))
                else:
                    text = path_text(name, param.style, param.explode, values.get(name))
            except ValueNotEncodable as exc:
                field = f"path.{name}{exc.field}"
                raise _invalid(operation.operation_id, field, exc.message) from None
            out.append(text)
            out.append(literal)
        segment = "".join(out)
        if _refused_segment(segment):
            shown = ", ".join(f"path.{n}" for n in names)
            raise _invalid(
                operation.operation_id,
                shown,
                f"makes the path segment {segment!r}, which would leave or change the "
                "path; give the actual identifier",
            )
        segments.append(segment)
    return "/".join(segments)


def _query(operation: Operation, values: Mapping[str, Any]) -> list[str]:
    pairs: list[str] = []
    for param in operation.parameters:
        if param.location != "query" or param.name not in values:
            continue
        value = values[param.name]
        try:
            if param.content_type is not None:
                if value is None:
                    continue
                text = percent_encode(content_text(value, param.content_type))
                pairs.append(f"{percent_encode(param.name)}={text}")
                continue
            found = query_pairs(param.name, param.style, param.explode, value)
        except ValueNotEncodable as exc:
            field = f"query.{param.name}{exc.field}"
            raise _invalid(operation.operation_id, field, exc.message) from None
        pairs.extend(f"{key}={text}" for key, text in found)
    return pairs


def _headers_and_cookies(
    operation: Operation, arguments: Mapping[str, Any]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    headers: list[tuple[str, str]] = []
    cookies: list[tuple[str, str]] = []
    header_args, cookie_args = _group(arguments, "header"), _group(arguments, "cookie")
    for param in operation.parameters:
        location = param.location
        values = header_args if location == "header" else cookie_args
        if location not in ("header", "cookie") or param.name not in values:
            continue
        value = values[param.name]
        try:
            if location == "header":
                text = _header(param, value)
                if text is not None:
                    headers.append((param.name, text))
            elif param.content_type is not None:
                if value is not None:
                    text = percent_encode(content_text(value, param.content_type))
                    cookies.append((percent_encode(param.name), text))
            else:
                cookies.extend(cookie_pairs(param.name, param.explode, value))
        except ValueNotEncodable as exc:
            field = f"{location}.{param.name}{exc.field}"
            raise _invalid(operation.operation_id, field, exc.message) from None
    return headers, cookies


def _header(param: Parameter, value: Any) -> str | None:
    if param.content_type is None:
        return header_value(param.style, param.explode, value)
    if value is None:
        return None
    return checked_header_text(content_text(value, param.content_type))


# A connection's server URL is the same on every call: parsed and vetted once.
@functools.lru_cache(maxsize=256)
def _base(server_url: str, operation_id: str) -> tuple[str, str, str]:
    """(scheme://authority, base path without trailing slash, query) of a server URL."""
    try:
        parts = urlsplit(server_url)
    except ValueError as exc:
        raise ConfigurationError(f"server URL {server_url!r} is not a URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{operation_id}: server URL {server_url!r} must be an absolute http(s) URL; "
            "resolve relative servers against the spec's URL first"
        )
    if "{" in server_url or "}" in server_url:
        raise ConfigurationError(
            f"{operation_id}: server URL {server_url!r} still holds a {{variable}}; "
            "substitute the server variables first"
        )
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/"), parts.query


def build_request(
    catalog: Catalog, operation_id: str, arguments: Mapping[str, Any], *, server_url: str
) -> PreparedRequest:
    """The exact request for one call of `operation_id` with `arguments`, not sent.

    Args:
        catalog: The API's catalog.
        operation_id: The operation to call.
        arguments: `{"path": {...}, "query": {...}, "header": {...}, "cookie": {...},
            "body": ...}`, groups as `Catalog.argument_schema` describes them.
        server_url: The chosen server, variables already substituted; joined with the
            path template exactly once (its base path kept, no double slash).

    Raises:
        OperationNotFound: The catalog has no such operation.
        InvalidArguments: The arguments do not match the schema, or a value cannot be put
            into the request (a path segment that would be `.`/`..`/empty, a control
            character in a header, NaN, a body that does not fit its media type).
        ConfigurationError: `server_url` is not an absolute http(s) URL.
        ExecutionError: The spec itself makes the request impossible (an unknown
            `{placeholder}` in the path, a schema that cannot be applied).
    """
    operation = catalog.operation(operation_id)
    validate_arguments(catalog, operation_id, arguments)
    origin, base_path, server_query = _base(server_url, operation_id)
    # `#...` is never sent (some specs use it to give one path several operations), and
    # a `?...` written into the template is a fixed part of the query.
    template, _, fixed_query = operation.path.split("#", 1)[0].partition("?")
    path = _path(operation, template, _group(arguments, "path"))
    if not path.startswith("/"):
        path = "/" + path
    query = [part for part in (server_query, fixed_query) if part]
    query += _query(operation, _group(arguments, "query"))
    headers, cookies = _headers_and_cookies(operation, arguments)
    content: bytes | None = None
    content_type: str | None = None
    body = operation.request_body
    media_type = preferred_media_type(body.content) if body is not None else None
    if media_type is not None and arguments.get("body") is not None:
        encoding = media_encoding(catalog, operation, media_type)
        try:
            encoded = encode_body(media_type, arguments["body"], encoding=encoding)
        except ValueNotEncodable as exc:
            raise _invalid(operation_id, f"body{exc.field}", exc.message) from None
        content, content_type = encoded.content, encoded.content_type
    url = origin + base_path + path + ("?" + "&".join(query) if query else "")
    return PreparedRequest(
        method=operation.method.upper(),
        url=url,
        headers=tuple(headers),
        cookies=tuple(cookies),
        content=content,
        content_type=content_type,
        path_template=operation.path,
        operation_id=operation_id,
    )
