"""The redirect trap: two loopback servers on different ports, i.e. two origins.

The entry origin (`trap.entry`) redirects; the target origin (`trap.target`) records what
arrived, so a test can assert that credentials were stripped when a redirect left the origin.

Entry routes (any method; `code` is one of 301, 302, 303, 307, 308):
- `/cross/{code}`        `code` to `<target>/landing` (absolute Location, other origin);
- `/same/{code}`         `code` to `/landing` (relative Location, same origin);
- `/same-then-cross`     302 to `/cross/302` (one same-origin hop, then a cross-origin one);
- `/loop`                302 to `/loop` forever (for redirect limits);
- `/landing`             200 with the description of the request (see below).
Target routes: `/landing` (and any other path) answer 200 with the description.

The description is `{"origin": "entry"|"target", "method", "path", "headers", "body"}`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Self

from apiq.egress import EgressPolicy
from tests.services import LoopbackService, Reply, ServiceRequest, json_reply

__all__ = ["CREDENTIAL_HEADERS", "RedirectTrap", "TrapServer"]

CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie", "x-api-key", "api_key")
"""Header names the trap treats as credentials by default (`RedirectTrap.leaked`)."""

_CODES = {"301", "302", "303", "307", "308"}


class TrapServer(LoopbackService):
    """One side of the trap; `role` is "entry" or "target"."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role
        self.target_base_url = ""

    def handle(self, request: ServiceRequest) -> Reply:
        segments = request.segments
        if self.role == "entry":
            if len(segments) == 2 and segments[0] == "cross" and segments[1] in _CODES:
                return _redirect(int(segments[1]), f"{self.target_base_url}/landing")
            if len(segments) == 2 and segments[0] == "same" and segments[1] in _CODES:
                return _redirect(int(segments[1]), "/landing")
            if segments == ["same-then-cross"]:
                return _redirect(302, "/cross/302")
            if segments == ["loop"]:
                return _redirect(302, "/loop")
            if segments != ["landing"]:
                return json_reply(404, {"error": f"no route {request.path}"})
        return json_reply(
            200,
            {
                "origin": self.role,
                "method": request.method,
                "path": request.path,
                "headers": dict(request.headers),
                "body": request.body.decode("utf-8", "replace"),
            },
        )


def _redirect(status: int, location: str) -> Reply:
    return Reply(status, b"redirecting", {"Location": location, "Content-Type": "text/plain"})


class RedirectTrap:
    """The two servers; `base_url`, `port` and `requests` are the entry's.

    Example:
        >>> with RedirectTrap() as trap:
        ...     # send to trap.url("/cross/302") with an Authorization header, then:
        ...     assert trap.leaked() == set()
    """

    def __init__(self) -> None:
        self.entry = TrapServer("entry")
        self.target = TrapServer("target")

    @property
    def base_url(self) -> str:
        """The entry origin, `http://127.0.0.1:<entry port>`."""
        return self.entry.base_url

    @property
    def port(self) -> int:
        """The entry server's port."""
        return self.entry.port

    @property
    def ports(self) -> tuple[int, int]:
        """(entry port, target port)."""
        return (self.entry.port, self.target.port)

    @property
    def requests(self) -> list[ServiceRequest]:
        """Requests that reached the entry origin."""
        return self.entry.requests

    @property
    def arrived(self) -> list[ServiceRequest]:
        """Requests that reached the target (other) origin."""
        return self.target.requests

    def url(self, path: str) -> str:
        """An entry-origin URL."""
        return self.entry.url(path)

    def leaked(self, names: Collection[str] = CREDENTIAL_HEADERS) -> set[str]:
        """Which of `names` (case-insensitive) arrived at the target origin, in any request."""
        wanted = {name.lower() for name in names}
        return {name for request in self.arrived for name in request.headers if name in wanted}

    @property
    def egress_policy(self) -> EgressPolicy:
        """An egress policy allowing exactly the two servers' 127.0.0.1 ports."""
        return EgressPolicy(allow=frozenset(("127.0.0.1", port) for port in self.ports))

    def reset(self) -> None:
        """Forget the requests recorded on both sides."""
        self.entry.reset()
        self.target.reset()

    def __enter__(self) -> Self:
        self.target.start()
        try:
            self.entry.target_base_url = self.target.base_url
            self.entry.start()
        except BaseException:
            self.target.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.entry.stop()
        finally:
            self.target.stop()
