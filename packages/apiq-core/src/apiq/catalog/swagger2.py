"""Swagger 2.0 -> the same catalog model as OpenAPI 3.x.

What changes shape on the way:
- `in: body` becomes the request body, one entry per `consumes` media type
  (default `application/json`);
- `in: formData` parameters become one object schema, sent as
  `application/x-www-form-urlencoded`, or `multipart/form-data` when `consumes` lists it
  or a `type: file` field exists;
- `host`/`basePath`/`schemes` become servers (no host: a relative server, the base path);
- `securityDefinitions` become security schemes (`basic` -> http/basic, oauth2 flows renamed
  as 3.x names them);
- `produces` gives the response media types; `collectionFormat` gives style and explode;
- a parameter's `type`/`format`/`items`/`enum`/`default`/bounds become its schema.

`#/definitions/X` references stay as they are: the argument schema builder maps them.
"""

from __future__ import annotations

from typing import Any

from apiq.catalog.build import SpecBuilder, text
from apiq.catalog.models import Parameter, RequestBody, Response, SecurityScheme, Server
from apiq.specs.refs import escape_token

__all__ = ["Swagger2Builder"]

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_SCHEMA_KEYS = (
    "type",
    "format",
    "items",
    "enum",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "x-nullable",
)
_FLOWS = {
    "implicit": ("implicit", ("authorizationUrl",)),
    "password": ("password", ("tokenUrl",)),
    "application": ("clientCredentials", ("tokenUrl",)),
    "accessCode": ("authorizationCode", ("authorizationUrl", "tokenUrl")),
}
_QUERY_STYLES = {
    "csv": ("form", False),
    "ssv": ("spaceDelimited", False),
    "pipes": ("pipeDelimited", False),
    "multi": ("form", True),
}


def parameter_schema(node: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """The JSON Schema a 2.0 non-body parameter (or its `items`) describes inline."""
    schema = {key: node[key] for key in _SCHEMA_KEYS if key in node}
    if schema.get("type") == "file":
        schema["type"] = "string"
        schema["format"] = "binary"
    items = schema.get("items")
    if isinstance(items, dict) and "$ref" not in items and depth < 16:
        schema["items"] = parameter_schema(items, depth + 1)
    return schema


class Swagger2Builder(SpecBuilder):
    """Swagger 2.0 documents."""

    def __init__(self, document: dict[str, Any], source: str) -> None:
        super().__init__(document, source)
        self.spec_version = str(document.get("swagger"))
        self.consumes = self.media_types(document.get("consumes"), ("application/json",))
        self.produces = self.media_types(document.get("produces"), ("application/json",))
        self._responses: dict[tuple[Any, ...], Response] = {}
        self._servers: dict[tuple[str, ...], tuple[Server, ...]] = {}

    @staticmethod
    def media_types(raw: Any, default: tuple[str, ...]) -> tuple[str, ...]:
        if raw is None:
            return default
        if isinstance(raw, list):
            types = tuple(t for t in raw if isinstance(t, str))
            if types:
                return types
        return default

    def document_servers(self) -> tuple[Server, ...]:
        return self.servers_for(self.document.get("schemes")) or (Server("/"),)

    def servers_for(self, schemes: Any) -> tuple[Server, ...]:
        names = tuple(s for s in schemes if isinstance(s, str)) if isinstance(schemes, list) else ()
        servers = self._servers.get(names)
        if servers is None:
            host = self.document.get("host")
            base = text(self.document.get("basePath")).rstrip("/")
            if not isinstance(host, str) or not host:
                servers = (Server(base or "/"),)
            else:
                # With no schemes 2.0 means "the scheme the spec came from"; https is the
                # safe guess.
                servers = tuple(
                    Server(f"{scheme.lower()}://{host}{base}") for scheme in names or ("https",)
                )
            self._servers[names] = servers
        return servers

    def security_schemes(self) -> dict[str, SecurityScheme]:
        raw = self.document.get("securityDefinitions")
        schemes: dict[str, SecurityScheme] = {}
        if not isinstance(raw, dict):
            return schemes
        for name, spec in raw.items():
            pointer = "/securityDefinitions/" + escape_token(str(name))
            kind = spec.get("type") if isinstance(spec, dict) else None
            if not isinstance(spec, dict) or kind not in ("basic", "apiKey", "oauth2"):
                self.warn("invalid-security-scheme", f"security definition {name!r}", pointer)
                continue
            description = text(spec.get("description"))
            if kind == "basic":
                schemes[str(name)] = SecurityScheme(
                    str(name), "http", scheme="basic", description=description
                )
            elif kind == "apiKey":
                schemes[str(name)] = SecurityScheme(
                    str(name),
                    "apiKey",
                    location=text(spec.get("in")) or None,
                    parameter_name=text(spec.get("name")) or None,
                    description=description,
                )
            else:
                flow_name, urls = _FLOWS.get(text(spec.get("flow")), ("", ()))
                scopes = spec.get("scopes")
                flow: dict[str, Any] = {url: text(spec.get(url)) for url in urls}
                flow["scopes"] = scopes if isinstance(scopes, dict) else {}
                schemes[str(name)] = SecurityScheme(
                    str(name),
                    "oauth2",
                    flows={flow_name: flow} if flow_name else {},
                    description=description,
                )
        return schemes

    def convert_parameter(self, node: dict[str, Any]) -> Parameter | None:
        """One resolved non-body parameter object as a `Parameter` (None: ignored)."""
        name, location = node["name"], node["in"]
        if not self.accepts_parameter(name, location):
            return None
        if location in ("path", "header"):
            style, explode = "simple", False
        elif node.get("type") == "array":
            fmt = text(node.get("collectionFormat")) or "csv"
            if fmt not in _QUERY_STYLES:
                self.warn("collection-format", f"parameter {name!r}: {fmt!r} is read as csv")
            style, explode = _QUERY_STYLES.get(fmt, ("form", False))
        else:
            style, explode = "form", True
        return Parameter(
            name=name,
            location=location,
            required=location == "path" or node.get("required") is True,
            style=style,
            explode=explode,
            schema=parameter_schema(node),
            description=text(node.get("description")),
        )

    def operation_fields(
        self,
        op: dict[str, Any],
        params: dict[tuple[str, str], dict[str, Any]],
        path_item: dict[str, Any],
        pointer: str,
    ) -> dict[str, Any]:
        consumes = self.media_types(op.get("consumes"), self.consumes)
        produces = self.media_types(op.get("produces"), self.produces)
        parameters = []
        body: dict[str, Any] | None = None
        form: list[dict[str, Any]] = []
        for (_, location), node in params.items():
            if location == "body":
                body = node
            elif location == "formData":
                form.append(node)
            elif (param := self.parameter(node)) is not None:
                parameters.append(param)
        return {
            "parameters": tuple(parameters),
            "request_body": self.request_body(body, form, consumes),
            "responses": self.responses(op.get("responses"), produces, pointer),
            "servers": self.servers_for(op["schemes"]) if "schemes" in op else self.servers,
        }

    def request_body(
        self, body: dict[str, Any] | None, form: list[dict[str, Any]], consumes: tuple[str, ...]
    ) -> RequestBody | None:
        if body is not None:
            raw = body.get("schema")
            body_schema: dict[str, Any] = raw if isinstance(raw, dict) else {}
            return RequestBody(
                required=body.get("required") is True,
                content=dict.fromkeys(consumes, body_schema),
                description=text(body.get("description")),
            )
        if not form:
            return None
        properties: dict[str, Any] = {}
        required: list[str] = []
        has_file = False
        for node in form:
            field = parameter_schema(node)
            has_file = has_file or node.get("type") == "file"
            if isinstance(node.get("description"), str):
                field["description"] = node["description"]
            properties[node["name"]] = field
            if node.get("required") is True:
                required.append(node["name"])
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        types = [t for t in consumes if t.split(";")[0].strip().lower() in (FORM, MULTIPART)]
        if has_file and not any(t.lower().startswith(MULTIPART) for t in types):
            types = [MULTIPART]
        return RequestBody(required=bool(required), content=dict.fromkeys(types or [FORM], schema))

    def responses(self, raw: Any, produces: tuple[str, ...], pointer: str) -> tuple[Response, ...]:
        if not isinstance(raw, dict):
            return ()
        out = []
        for status, entry in raw.items():
            node = self.deref(entry, pointer, "responses", status)
            if not isinstance(node, dict):
                continue
            schema = node.get("schema")
            description = text(node.get("description"))
            # Kubernetes repeats `401 Unauthorized` and `200 -> $ref` on every operation:
            # equal responses share one object.
            ref = schema.get("$ref") if isinstance(schema, dict) and len(schema) == 1 else None
            key = (str(status), description, ref if isinstance(ref, str) else id(schema), produces)
            response = self._responses.get(key)
            if response is None:
                content = dict.fromkeys(produces, schema) if isinstance(schema, dict) else {}
                response = Response(str(status), description, content)
                self._responses[key] = response
            out.append(response)
        return tuple(out)
