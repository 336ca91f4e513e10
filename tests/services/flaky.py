"""The flaky service: 429s and 503s with Retry-After in both forms, counted per key.

Routes (any method; `n` is a count of failures before success):
- `/ratelimited/{n}`       429 `Retry-After: <seconds>` for the first n calls, then 200;
- `/ratelimited-date/{n}`  the same with `Retry-After: <HTTP-date>` (RFC 9110 §10.2.3);
- `/unavailable/{n}`       503 `Retry-After: <seconds>` for the first n calls, then 200;
- `/unavailable-date/{n}`  the same with an HTTP-date;
- `/dead`                  always 503 with `Retry-After: <seconds>`;
- `/quota/{limit}`         200 with `X-RateLimit-Limit/Remaining/Reset` and the IETF draft
                           `RateLimit-Limit/Remaining/Reset` headers while calls <= limit,
                           then 429 with `Retry-After`.

Calls are counted per key = path plus the `key` query parameter (`/ratelimited/2?key=a`
and `?key=b` fail independently). A success answers `{"ok": true, "calls": <count>}`;
a failure answers `{"error": ..., "calls": <count>}`. The seconds value is
`retry_after` (constructor, default 1); the HTTP-date is the next whole second plus
`retry_after`, so it is never in the past when sent.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from email.utils import formatdate

from tests.services import LoopbackService, Reply, ServiceRequest, json_reply

__all__ = ["FlakyService"]

_FAILING = {
    "ratelimited": (429, "seconds"),
    "ratelimited-date": (429, "date"),
    "unavailable": (503, "seconds"),
    "unavailable-date": (503, "date"),
}


class FlakyService(LoopbackService):
    """Fails the first n calls per key with 429/503 and Retry-After, then succeeds."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__()
        self.retry_after = retry_after
        self.counts: Counter[str] = Counter()

    def reset(self) -> None:
        """Forget every count and recorded request."""
        super().reset()
        with self.lock:
            self.counts.clear()

    def calls(self, path: str, key: str = "") -> int:
        """How many calls the key (path, `key` query value) has received."""
        with self.lock:
            return self.counts[f"{path}?key={key}"]

    def retry_after_value(self, form: str) -> str:
        """The Retry-After value in `form` ("seconds" or "date") as sent right now."""
        if form == "date":
            return formatdate(math.floor(time.time()) + 1 + self.retry_after, usegmt=True)
        return str(self.retry_after)

    def handle(self, request: ServiceRequest) -> Reply:
        key = dict(request.query).get("key", "")
        with self.lock:
            self.counts[f"{request.path}?key={key}"] += 1
            calls = self.counts[f"{request.path}?key={key}"]
        segments = request.segments
        if segments == ["dead"]:
            return self._fail(503, "seconds", calls)
        if len(segments) != 2 or not (segments[1].isascii() and segments[1].isdigit()):
            return json_reply(404, {"error": f"no route {request.path}", "calls": calls})
        route, n = segments[0], int(segments[1])
        if route == "quota":
            if calls > n:
                return self._fail(429, "seconds", calls)
            remaining = str(n - calls)
            headers: dict[str, str] = {}
            for prefix in ("X-RateLimit-", "RateLimit-"):
                headers |= {
                    f"{prefix}Limit": str(n),
                    f"{prefix}Remaining": remaining,
                    f"{prefix}Reset": str(self.retry_after),
                }
            return json_reply(200, {"ok": True, "calls": calls}, headers)
        if route not in _FAILING:
            return json_reply(404, {"error": f"no route {request.path}", "calls": calls})
        status, form = _FAILING[route]
        if calls <= n:
            return self._fail(status, form, calls)
        return json_reply(200, {"ok": True, "calls": calls})

    def _fail(self, status: int, form: str, calls: int) -> Reply:
        reason = "rate limited" if status == 429 else "unavailable"
        headers = {"Retry-After": self.retry_after_value(form)}
        return json_reply(status, {"error": reason, "calls": calls}, headers)
