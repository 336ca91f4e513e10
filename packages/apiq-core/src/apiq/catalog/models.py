"""The operation catalog: what one API description offers, normalized across versions.

Swagger 2.0, OpenAPI 3.0 and 3.1 all become these objects. Schemas stay as the document
wrote them (JSON objects that may hold internal `$ref`s); `Catalog.argument_schema` turns
one operation's inputs into a single self-contained JSON Schema, lazily and once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CatalogWarning",
    "Operation",
    "Parameter",
    "ParameterLocation",
    "RequestBody",
    "Response",
    "SecurityScheme",
    "Server",
    "ServerVariable",
]

ParameterLocation = Literal["path", "query", "header", "cookie"]
JsonObject = Mapping[str, Any]

STATE_CHANGING_METHODS = frozenset({"post", "put", "patch", "delete"})
"""Methods other than GET/HEAD/OPTIONS/TRACE change state (DESIGN.md decision 4)."""


@dataclass(frozen=True, slots=True)
class ServerVariable:
    default: str
    enum: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class Server:
    """A base URL, possibly with `{variables}`."""

    url: str
    description: str = ""
    variables: Mapping[str, ServerVariable] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Parameter:
    """One path, query, header or cookie parameter, path-level and operation-level merged."""

    name: str
    location: ParameterLocation
    required: bool = False
    style: str = "form"
    """OpenAPI style; defaults per location (simple for path/header, form for query/cookie)."""
    explode: bool = True
    schema: JsonObject = field(default_factory=dict)
    description: str = ""
    deprecated: bool = False
    content_type: str | None = None
    """Set when the parameter is described by `content` instead of `schema`."""


@dataclass(frozen=True, slots=True)
class RequestBody:
    required: bool = False
    content: Mapping[str, JsonObject] = field(default_factory=dict)
    """Media type -> schema (empty schema when the media type gave none)."""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    status: str
    """`200`, `4XX`, `default`, ..."""
    description: str = ""
    content: Mapping[str, JsonObject] = field(default_factory=dict)
    """Media type -> schema."""


@dataclass(frozen=True, slots=True)
class SecurityScheme:
    """A securitySchemes entry (Swagger 2.0 securityDefinitions normalized to 3.x kinds)."""

    name: str
    type: str
    """`apiKey`, `http`, `oauth2`, `openIdConnect`, `mutualTLS`."""
    scheme: str | None = None
    """For `http`: `basic`, `bearer`, ..."""
    location: str | None = None
    """For `apiKey`: `header`, `query` or `cookie`."""
    parameter_name: str | None = None
    """For `apiKey`: the header, query or cookie name."""
    bearer_format: str | None = None
    flows: JsonObject = field(default_factory=dict)
    """For `oauth2`: flows as OpenAPI 3 names them (authorizationCode, clientCredentials, ...)."""
    openid_connect_url: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Operation:
    """One (method, path) of an API."""

    operation_id: str
    method: str
    """Lower case: get, put, post, delete, options, head, patch, trace."""
    path: str
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    request_body: RequestBody | None = None
    responses: tuple[Response, ...] = ()
    security: tuple[Mapping[str, tuple[str, ...]], ...] | None = None
    """Alternatives (any one suffices); `()` means no auth; None inherits the API default."""
    servers: tuple[Server, ...] = ()
    deprecated: bool = False
    changes_state: bool = False
    """True for POST/PUT/PATCH/DELETE or when the spec sets `x-apiq-consequential: true`."""
    operation_id_synthesized: bool = False
    """True when the spec gave no operationId (or a duplicate) and APIQ made this one."""
    pointer: str = ""
    """JSON Pointer of the operation object in the source document."""


@dataclass(frozen=True, slots=True)
class CatalogWarning:
    """Something a user should know about a spec that did not stop ingestion."""

    code: str
    """`missing-operation-id`, `duplicate-operation-id`, `cycle`, `deprecated`, ..."""
    message: str
    pointer: str | None = None
