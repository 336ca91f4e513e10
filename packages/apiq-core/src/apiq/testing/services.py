"""The base of real HTTP services on loopback, for tests and the demo (`apiq.testing.petstore`).

Each service is a `LoopbackService`: a stdlib `ThreadingHTTPServer` on an ephemeral
127.0.0.1 port, run in a daemon thread by `apiq.testing.loopback.serve` (the same machinery as
`loopback_server`), whose `handle(request) -> Reply` is plain Python,
so the behaviour under test is readable in one place. Every request is recorded (method,
raw path, raw query, headers, body) in `service.requests` before it is answered, so tests
can assert what actually arrived on the wire. `service.egress_policy` allows exactly this
service's port, so APIQ's egress client can reach it and nothing else.

APIQ's own test services (echo, flaky 429/503, redirect trap, OAuth server) and their pytest
fixtures live in the repository's `tests/services`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, unquote

from apiq.egress import EgressPolicy
from apiq.testing.loopback import respond, serve

__all__ = ["MAX_BODY", "LoopbackService", "Reply", "ServiceRequest", "json_reply"]

MAX_BODY = 16 * 1024 * 1024
"""Largest request body a service reads; a larger one is answered 413."""


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """One request as it arrived on the wire.

    `path` and `raw_query` are exactly as sent (still percent-encoded), so tests can check
    serialization byte for byte; `headers` has lower-cased names, repeated headers joined
    with ", ".
    """

    method: str
    path: str
    raw_query: str
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def query(self) -> list[tuple[str, str]]:
        """The query decoded into (name, value) pairs, in order, blanks kept."""
        return parse_qsl(self.raw_query, keep_blank_values=True)

    @property
    def raw_query_pairs(self) -> list[tuple[str, str]]:
        """The query split on `&` and the first `=`, without any percent-decoding."""
        pairs = []
        for part in self.raw_query.split("&") if self.raw_query else []:
            name, _, value = part.partition("=")
            pairs.append((name, value))
        return pairs

    @property
    def segments(self) -> list[str]:
        """The path's segments, percent-decoded (`/v2/pet/1` -> `["v2", "pet", "1"]`)."""
        return [unquote(segment) for segment in self.path.split("/")[1:]]

    @property
    def cookies(self) -> dict[str, str]:
        """The Cookie header parsed leniently into name -> value."""
        cookies: dict[str, str] = {}
        for part in self.headers.get("cookie", "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                cookies[name] = value
        return cookies

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON."""
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete response; Content-Length is always added."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_reply(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON response with `data` as its body."""
    body = json.dumps(data).encode()
    return Reply(status, body, {"Content-Type": "application/json", **(headers or {})})


class LoopbackService:
    """Base of every test service: a threaded HTTP server on 127.0.0.1 plus a request log.

    Subclasses implement `handle`. Use as a context manager (or `start()` / `stop()`).
    """

    def __init__(self) -> None:
        self.requests: list[ServiceRequest] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._running = ExitStack()

    def handle(self, request: ServiceRequest) -> Reply:
        """Answer one request (runs in the server's request thread)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget recorded requests; subclasses also reset their state."""
        with self.lock:
            self.requests.clear()

    @property
    def port(self) -> int:
        """The ephemeral port the service listens on (only while started)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started; use it as a context")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>` (the Petstore adds its `/v2`)."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """`base_url` + `path`."""
        return self.base_url + path

    @property
    def egress_policy(self) -> EgressPolicy:
        """An egress policy allowing exactly this service's 127.0.0.1 port."""
        return EgressPolicy(allow=frozenset({("127.0.0.1", self.port)}))

    def start(self) -> Self:
        """Bind an ephemeral port and serve in a daemon thread."""
        self._server = self._running.enter_context(serve(_handler_for(self)))
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._running.close()
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class _BadRequest(Exception):
    """The request framing was unreadable; answered 400 and the connection closed."""


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            line = handler.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _BadRequest(f"bad chunk size line {line!r}") from exc
            total += size
            if total > MAX_BODY:
                raise _BadRequest("body too large")
            if size == 0:
                while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are not recorded
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline(1024)
    text = handler.headers.get("Content-Length") or "0"
    if not text.isdigit() or int(text) > MAX_BODY:
        raise _BadRequest(f"bad Content-Length {text!r}")
    return handler.rfile.read(int(text))


def _handler_for(service: LoopbackService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes: with Nagle's algorithm on, the client's delayed
        # ACK holds the body back ~40 ms on every keep-alive response.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            return

        def _dispatch(self) -> None:
            path, _, raw_query = self.path.partition("?")
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            try:
                body = _read_body(self)
            except _BadRequest as exc:
                self.close_connection = True
                self._write(Reply(400, str(exc).encode(), {"Connection": "close"}))
                return
            request = ServiceRequest(self.command, path, raw_query, headers, body)
            with service.lock:
                service.requests.append(request)
            try:
                reply = service.handle(request)
            except Exception as exc:  # a bug in a test service must show, not hang a client
                reply = Reply(500, f"{type(exc).__name__}: {exc}".encode())
            self._write(reply)

        def _write(self, reply: Reply) -> None:
            respond(self, reply.status, reply.body, dict(reply.headers))

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    return Handler
