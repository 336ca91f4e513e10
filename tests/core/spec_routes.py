"""Loopback routes that serve specs the way friendly and hostile servers do.

Shared by the HTTP source and ingest tests: each route writes a whole response itself
(see `tests.loopback`), so bodies can drip, lie about their length or inflate to gigabytes.
"""

from __future__ import annotations

import functools
import gzip
import json
import time
import zlib
from http.server import BaseHTTPRequestHandler

from tests.loopback import Route, respond

PETSTORE = {
    "openapi": "3.0.3",
    "info": {"title": "Tiny Petstore", "version": "1.0.0"},
    "servers": [{"url": "https://petstore.example.com/v1"}],
    "paths": {
        "/pets": {
            "get": {
                "operationId": "listPets",
                "summary": "List all pets",
                "responses": {"200": {"description": "A list of pets"}},
            },
            "post": {
                "operationId": "createPet",
                "responses": {"201": {"description": "Created"}},
            },
        },
        "/pets/{petId}": {
            "get": {
                "operationId": "showPetById",
                "parameters": [
                    {"name": "petId", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "A pet"}},
            }
        },
    },
}
PETSTORE_JSON = json.dumps(PETSTORE).encode()
PETSTORE_YAML = b"""\
openapi: 3.0.3
info: {title: Tiny Petstore YAML, version: 1.0.0}
paths:
  /pets:
    get:
      operationId: listPets
      responses: {'200': {description: ok}}
"""
ETAG = '"petstore-v1"'


@functools.cache
def gzip_bomb(mebibytes: int = 256) -> bytes:
    """`mebibytes` MiB of zeros gzip-compressed (about 1 KiB per MiB), built in 1 MiB steps."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    return b"".join(packer.compress(zeros) for _ in range(mebibytes)) + packer.flush()


HTML = b"<!DOCTYPE html><html><body><form action='/login'>Sign in</form></body></html>"


def json_with_etag(handler: BaseHTTPRequestHandler) -> None:
    if handler.headers.get("If-None-Match") == ETAG:
        respond(handler, 304, headers={"ETag": ETAG, "Content-Length": "0"})
    else:
        respond(handler, 200, PETSTORE_JSON, {"Content-Type": "application/json", "ETag": ETAG})


def body(
    content: bytes, content_type: str | None = "application/json", status: int = 200, **headers: str
) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        extra = {name.replace("_", "-"): value for name, value in headers.items()}
        if content_type is not None:
            extra["Content-Type"] = content_type
        # One response per connection: a client that stops reading early (as it must for a
        # bomb) resets the socket, which is no error of the server's.
        handler.close_connection = True
        try:
            respond(handler, status, content, extra)
        except OSError:
            return

    return route


def drip(handler: BaseHTTPRequestHandler) -> None:
    """Headers at once, then one byte every 0.2 s for a minute: no read ever times out."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    try:
        for _ in range(300):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.2)
    except OSError:
        return  # the client gave up, as it should


def _stream_forever(handler: BaseHTTPRequestHandler, *, chunked: bool) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Connection", "close")
    handler.end_headers()
    block = b" " * 65536
    try:
        for _ in range(1024):  # 64 MiB at most
            if chunked:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            else:
                handler.wfile.write(block)
        if chunked:
            handler.wfile.write(b"0\r\n\r\n")
    except OSError:
        return
    handler.close_connection = True


def chunked_big(handler: BaseHTTPRequestHandler) -> None:
    _stream_forever(handler, chunked=True)


def close_delimited_big(handler: BaseHTTPRequestHandler) -> None:
    _stream_forever(handler, chunked=False)


def declared_big(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(100 * 1024 * 1024))
    handler.end_headers()
    try:
        handler.wfile.write(b"{}")
    except OSError:
        return
    handler.close_connection = True


def redirect_to(location: str) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        respond(handler, 302, headers={"Location": location})

    return route


def routes() -> dict[str, Route]:
    """Every route by path."""
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    deflated_raw = raw_deflate.compress(PETSTORE_JSON) + raw_deflate.flush()
    return {
        "/petstore.json": json_with_etag,
        "/petstore.yaml": body(PETSTORE_YAML, "application/yaml"),
        "/petstore.txt": body(PETSTORE_JSON, "text/plain; charset=utf-8"),
        "/vendor.json": body(PETSTORE_JSON, "application/vnd.oai.openapi+json;version=3.0"),
        "/gzip.json": body(gzip.compress(PETSTORE_JSON), Content_Encoding="gzip"),
        "/deflate.json": body(zlib.compress(PETSTORE_JSON), Content_Encoding="deflate"),
        "/raw-deflate.json": body(deflated_raw, Content_Encoding="deflate"),
        "/stacked.json": body(
            gzip.compress(gzip.compress(PETSTORE_JSON)), Content_Encoding="gzip, gzip"
        ),
        "/brotli.json": body(PETSTORE_JSON, Content_Encoding="br"),
        "/corrupt-gzip.json": body(b"\x1f\x8b not really", Content_Encoding="gzip"),
        "/missing": body(b"not found", "text/plain", status=404),
        "/error.json": body(b'{"error": "boom"}', status=500),
        "/invalid.json": body(b'{"openapi": "3.0.3", "paths": {', "application/json"),
        "/not-openapi.json": body(b'{"hello": "world"}', "application/json"),
        "/login": body(HTML, "text/html; charset=utf-8"),
        "/login-untyped": body(HTML, None),
        "/drip.json": drip,
        "/declared-big.json": declared_big,
        "/chunked-big.json": chunked_big,
        "/close-delimited-big.json": close_delimited_big,
        "/bomb.json": body(gzip_bomb(), Content_Encoding="gzip"),
        "/to-private": redirect_to("http://10.0.0.1/openapi.json"),
        "/to-metadata": redirect_to("http://169.254.169.254/latest/meta-data/"),
        "/to-petstore": redirect_to("/petstore.json"),
    }
