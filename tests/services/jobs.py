"""The jobs service: counts every request per job name, and can hold one open on demand.

Routes:
- `POST /jobs/{name}` records the call (with its `Idempotency-Key`), waits `delay_s` if set,
  and, when `name` is held (`hold`), keeps the request open until `release(name)` (at most
  `hold_timeout_s`); then answers 200 `{"name": name, "calls": <calls so far>}`;
- `GET /jobs/{name}` answers 200 `{"name": name, "calls": <calls so far>}` without counting.

Tests use it to prove what a durable executor sends: how often each job was called, with
which Idempotency-Keys, and what happens when a worker dies while a request is held open.
`jobs_spec(base_url)` is its OpenAPI description (`runJob`, `readJob`).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from tests.services import LoopbackService, Reply, ServiceRequest, json_reply

__all__ = ["JobsService", "jobs_spec"]


def jobs_spec(base_url: str) -> dict[str, Any]:
    """The jobs service's OpenAPI 3.0 description, served at `base_url`."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    answer = {
        "200": {
            "description": "the job and how often it was called",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "jobs", "version": "1"},
        "servers": [{"url": base_url}],
        "paths": {
            "/jobs/{name}": {
                "post": {
                    "operationId": "runJob",
                    "parameters": [name],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": answer,
                },
                "get": {"operationId": "readJob", "parameters": [name], "responses": answer},
            }
        },
    }


class JobsService(LoopbackService):
    """Counts calls per job; `hold(name)` keeps that job's requests open until released.

    Args:
        delay_s: Seconds every POST waits before answering (a slow upstream).
        hold_timeout_s: Longest a held request stays open (so no test can hang on it).
    """

    def __init__(self, *, delay_s: float = 0.0, hold_timeout_s: float = 60.0) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.hold_timeout_s = hold_timeout_s
        self._arrived = threading.Condition(self.lock)
        self._keys: dict[str, list[str | None]] = defaultdict(list)
        self._held: dict[str, threading.Event] = {}

    def reset(self) -> None:
        """Forget every call and hold."""
        super().reset()
        with self.lock:
            self._keys.clear()
            for gate in self._held.values():
                gate.set()
            self._held.clear()

    def hold(self, name: str) -> None:
        """Keep POSTs to `name` open until `release(name)`."""
        with self.lock:
            self._held[name] = threading.Event()

    def release(self, name: str) -> None:
        """Answer the held requests of `name`, and stop holding new ones."""
        with self.lock:
            gate = self._held.pop(name, None)
        if gate is not None:
            gate.set()

    def calls(self, name: str) -> int:
        """POSTs that arrived for `name` (held ones included)."""
        with self.lock:
            return len(self._keys.get(name, ()))

    def keys(self, name: str) -> list[str | None]:
        """The Idempotency-Key of each POST to `name`, in arrival order."""
        with self.lock:
            return list(self._keys.get(name, ()))

    def names(self) -> dict[str, int]:
        """Every job name called, with its count of POSTs."""
        with self.lock:
            return {name: len(keys) for name, keys in self._keys.items()}

    def wait_for(self, name: str, calls: int = 1, timeout: float = 30.0) -> bool:
        """Wait until `name` has `calls` POSTs; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._keys.get(name, ())) < calls:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
            return True

    def handle(self, request: ServiceRequest) -> Reply:
        segments = request.segments
        if len(segments) != 2 or segments[0] != "jobs" or not segments[1]:
            return json_reply(404, {"error": f"no route {request.path}"})
        name = segments[1]
        if request.method == "GET":
            return json_reply(200, {"name": name, "calls": self.calls(name)})
        if request.method != "POST":
            return Reply(405, b"method not allowed", {"Allow": "GET, POST"})
        with self._arrived:
            self._keys[name].append(request.headers.get("idempotency-key"))
            calls = len(self._keys[name])
            gate = self._held.get(name)
            self._arrived.notify_all()
        if self.delay_s:
            time.sleep(self.delay_s)
        if gate is not None:
            gate.wait(self.hold_timeout_s)
        return json_reply(200, {"name": name, "calls": calls})
