"""OpenAPI 3.0 and 3.1 operations: parameters, request bodies, responses, security schemes.

Parameters, request bodies and responses that operations share by `$ref` are turned into
catalog objects once per build and shared (GitHub's `owner` parameter serves hundreds of
operations). Schemas are kept as written; `apiq.catalog.arguments` resolves them lazily.
"""

from __future__ import annotations

from typing import Any

from apiq.catalog.build import SpecBuilder, text
from apiq.catalog.models import Parameter, RequestBody, Response, SecurityScheme, Server
from apiq.specs.refs import escape_token

__all__ = ["OpenApi3Builder"]


class OpenApi3Builder(SpecBuilder):
    """OpenAPI 3.0 and 3.1."""

    def __init__(self, document: dict[str, Any], source: str) -> None:
        super().__init__(document, source)
        self.spec_version = str(document.get("openapi"))
        self._bodies: dict[str, RequestBody | None] = {}
        self._responses: dict[str, tuple[str, dict[str, Any]] | None] = {}

    def document_servers(self) -> tuple[Server, ...]:
        # OpenAPI: no servers (or an empty list) means one server with url "/".
        return self.server_list(self.document.get("servers"), "") or (Server("/"),)

    def security_schemes(self) -> dict[str, SecurityScheme]:
        components = self.document.get("components")
        raw = components.get("securitySchemes") if isinstance(components, dict) else None
        schemes: dict[str, SecurityScheme] = {}
        if not isinstance(raw, dict):
            return schemes
        for name, node in raw.items():
            pointer = "/components/securitySchemes/" + escape_token(str(name))
            spec = self.deref(node, pointer)
            if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
                self.warn(
                    "invalid-security-scheme", f"security scheme {name!r} has no type", pointer
                )
                continue
            flows = spec.get("flows")
            schemes[str(name)] = SecurityScheme(
                name=str(name),
                type=spec["type"],
                scheme=spec["scheme"].lower() if isinstance(spec.get("scheme"), str) else None,
                location=spec.get("in") if isinstance(spec.get("in"), str) else None,
                parameter_name=spec.get("name") if isinstance(spec.get("name"), str) else None,
                bearer_format=text(spec.get("bearerFormat")) or None,
                flows=flows if isinstance(flows, dict) else {},
                openid_connect_url=text(spec.get("openIdConnectUrl")) or None,
                description=text(spec.get("description")),
            )
        return schemes

    def convert_parameter(self, node: dict[str, Any]) -> Parameter | None:
        name, location = node["name"], node["in"]
        if not self.accepts_parameter(name, location):
            return None
        style = node.get("style")
        if not isinstance(style, str):
            style = "simple" if location in ("path", "header") else "form"
        explode = node.get("explode")
        schema = node.get("schema")
        content_type = None
        if not isinstance(schema, dict | bool):
            schema = {}
            content = node.get("content")
            if isinstance(content, dict) and content:
                content_type, media = next(iter(content.items()))
                content_type = str(content_type)
                if isinstance(media, dict) and isinstance(media.get("schema"), dict | bool):
                    schema = media["schema"]
        return Parameter(
            name=name,
            location=location,
            required=location == "path" or node.get("required") is True,
            style=style,
            explode=explode if isinstance(explode, bool) else style == "form",
            schema=schema,  # type: ignore[arg-type]  # JSON Schema also allows true/false
            description=text(node.get("description")),
            deprecated=node.get("deprecated") is True,
            content_type=content_type,
        )

    def request_body(self, raw: Any, pointer: str) -> RequestBody | None:
        ref = raw.get("$ref") if isinstance(raw, dict) else None
        if isinstance(ref, str) and ref in self._bodies:
            return self._bodies[ref]
        node = self.deref(raw, pointer, "requestBody")
        body = None
        if isinstance(node, dict):
            body = RequestBody(
                required=node.get("required") is True,
                content=media_schemas(node.get("content")),
                description=text(node.get("description")),
            )
        elif node is not None:
            self.warn(
                "invalid-request-body", "'requestBody' is not an object", pointer, "requestBody"
            )
        if isinstance(ref, str):
            self._bodies[ref] = body
        return body

    def responses(self, raw: Any, pointer: str) -> tuple[Response, ...]:
        if not isinstance(raw, dict):
            return ()
        out = []
        for status, entry in raw.items():
            ref = entry.get("$ref") if isinstance(entry, dict) else None
            if isinstance(ref, str) and ref in self._responses:
                parts = self._responses[ref]
            else:
                node = self.deref(entry, pointer, "responses", status)
                parts = None
                if isinstance(node, dict):
                    parts = (text(node.get("description")), media_schemas(node.get("content")))
                if isinstance(ref, str):
                    self._responses[ref] = parts
            if parts is not None:
                out.append(Response(str(status), parts[0], parts[1]))
        return tuple(out)

    def operation_fields(
        self,
        op: dict[str, Any],
        params: dict[tuple[str, str], dict[str, Any]],
        path_item: dict[str, Any],
        pointer: str,
    ) -> dict[str, Any]:
        parameters = [p for p in map(self.parameter, params.values()) if p is not None]
        body = op.get("requestBody")
        servers = self.server_list(op.get("servers"), pointer)
        if not servers:
            servers = self.server_list(path_item.get("servers"), pointer.rsplit("/", 1)[0])
        return {
            "parameters": tuple(parameters),
            "request_body": None if body is None else self.request_body(body, pointer),
            "responses": self.responses(op.get("responses"), pointer),
            "servers": servers or self.servers,
        }


def media_schemas(content: Any) -> dict[str, Any]:
    """Media type -> schema of a `content` map (empty schema where none is given)."""
    if not isinstance(content, dict):
        return {}
    out: dict[str, Any] = {}
    for media_type, media in content.items():
        schema = media.get("schema") if isinstance(media, dict) else None
        out[str(media_type)] = schema if isinstance(schema, dict | bool) else {}
    return out
