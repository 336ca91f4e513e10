"""A real HTTP server on 127.0.0.1 for tests: scripted per path, run in a thread.

A route is a function that receives the request handler and writes the whole response
itself, so tests can send anything a hostile server would: slow drips, lying
Content-Length, gzip bombs, redirects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class LoopbackServer:
    """Routes by path; `requests` records (method, path, headers) of every request served."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path


def respond(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    """Write a complete response with Content-Length unless the headers set their own."""
    handler.send_response(status)
    merged = {"Content-Length": str(len(body)), **(headers or {})}
    for name, value in merged.items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


@contextmanager
def loopback_server(routes: dict[str, Route] | None = None) -> Iterator[LoopbackServer]:
    """Serve `routes` on an ephemeral 127.0.0.1 port for the duration of the block."""
    state = LoopbackServer(routes=dict(routes or {}))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            return

        def _dispatch(self) -> None:
            path = self.path.split("?", 1)[0]
            state.requests.append((self.command, self.path, dict(self.headers.items())))
            route = state.routes.get(path)
            if route is None:
                respond(self, 404, b"not found", {"Content-Type": "text/plain"})
            else:
                route(self)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
