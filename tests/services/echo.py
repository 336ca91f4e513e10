"""The echo service: answers every request with a JSON description of what arrived.

Routes (any method):
- `/echo/status/{code}` answers `code` (200-599) with the same description;
- `/echo/header/{name}` answers 200 `{"name": name, "value": <that header or null>}`,
  the way some APIs echo a credential back (to test redaction of echoed secrets);
- anything else answers 200 with the description.

The description is `{"method", "path", "raw_query", "query", "headers", "body",
"body_encoding", "cookies"}`: `path` and `query` are raw (still percent-encoded; `query` is
a list of [name, value] pairs split on `&` and the first `=`), `headers` has lower-cased
names, `body` is the UTF-8 text or, when not valid UTF-8, base64 (`body_encoding` says which).
"""

from __future__ import annotations

import base64
from typing import Any

from tests.services import LoopbackService, Reply, ServiceRequest, json_reply

__all__ = ["EchoService", "describe"]


def describe(request: ServiceRequest) -> dict[str, Any]:
    """The JSON-ready description of `request` that the echo service answers with."""
    try:
        body, encoding = request.body.decode("utf-8"), "text"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(request.body).decode("ascii"), "base64"
    return {
        "method": request.method,
        "path": request.path,
        "raw_query": request.raw_query,
        "query": [list(pair) for pair in request.raw_query_pairs],
        "headers": dict(request.headers),
        "body": body,
        "body_encoding": encoding,
        "cookies": request.cookies,
    }


class EchoService(LoopbackService):
    """Echoes every request back as JSON (see the module docstring for routes)."""

    def handle(self, request: ServiceRequest) -> Reply:
        segments = request.segments
        if len(segments) == 3 and segments[:2] == ["echo", "status"]:
            code = segments[2]
            if not (code.isascii() and code.isdigit() and 200 <= int(code) <= 599):
                return json_reply(400, {"error": f"status must be 200-599, not {code!r}"})
            return json_reply(int(code), describe(request))
        if len(segments) == 3 and segments[:2] == ["echo", "header"]:
            name = segments[2]
            return json_reply(200, {"name": name, "value": request.headers.get(name.lower())})
        return json_reply(200, describe(request))
