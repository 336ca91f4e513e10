"""A real HTTP server on 127.0.0.1 for tests and demos: scripted per path, run in a thread.

A route is a function that receives the request handler and writes the whole response
itself, so tests can send anything a hostile server would: slow drips, lying
Content-Length, gzip bombs, redirects.

`serve` is the thread-and-port machinery underneath; `apiq.testing.services` runs its
services on it too, and a test that needs its own handler class (TLS, say) calls it directly.
"""

from __future__ import annotations

import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LoopbackServer", "Route", "loopback_server", "respond", "serve"]

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
    """Write a complete response with Content-Length unless the headers set their own.

    A handler that will close the connection afterwards (`close_connection` set before the
    call) announces it with `Connection: close`.

    1xx, 204 and 304 responses have no body (RFC 9110 §6.4.1): neither Content-Length nor
    `body` is sent for them unless the headers name a length explicitly.
    """
    no_body = status in (204, 304) or 100 <= status < 200
    handler.send_response(status)
    merged = ({} if no_body else {"Content-Length": str(len(body))}) | (headers or {})
    if handler.close_connection:
        # Say so: a client that is not told reuses the connection and can race the close
        # ("Server disconnected without sending a response").
        merged.setdefault("Connection", "close")
    for name, value in merged.items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD" and not no_body:
        handler.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up mid-exchange (closing a redirect unread) are not test errors."""

    daemon_threads = True
    request_queue_size = 512  # the default backlog of 5 drops connections under load tests

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve(
    handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None
) -> Iterator[ThreadingHTTPServer]:
    """Serve `handler` on an ephemeral 127.0.0.1 port in a daemon thread for the block.

    Args:
        handler: The request handler class.
        tls: A server-side context to speak https with; None serves plain http.
    """
    server = _QuietServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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

    with serve(Handler) as server:
        state.port = server.server_address[1]
        yield state
