"""Recent egress checks by origin, so a hot API is not resolved and judged on every request.

`EgressPolicy.check(url, cache=...)` still parses and vets each URL (scheme, user info, host);
only the resolution of `(scheme, host, port)` and the judgement of its addresses are reused,
for `ttl_s` seconds. A reused `CheckedTarget` carries the addresses that were checked, so the
transport still connects only to a checked address and never resolves a second time (DNS
rebinding): a changed DNS answer is seen, and judged, at the first check after the entry
expires. Only allowed targets are kept; a refusal is decided afresh every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from apiq.egress.policy import CheckedTarget, EgressPolicy

__all__ = ["DEFAULT_CHECK_TTL_S", "CheckedTargetCache"]

DEFAULT_CHECK_TTL_S: Final = 5.0
"""How long an allowed check is reused: short, so a moved API is followed within seconds."""

_Key = tuple[str, str, int]


class CheckedTargetCache:
    """Allowed `CheckedTarget`s by (scheme, host as written, port), each for `ttl_s` seconds.

    An entry belongs to the policy that made it: a check under another policy (another
    allow-list or resolver) never sees it.

    Args:
        ttl_s: Seconds an entry is reused; 0 turns the cache off (every check resolves).
        clock: Monotonic seconds.
        max_entries: Most origins kept; the oldest entry makes room for a new one.
    """

    def __init__(
        self,
        ttl_s: float = DEFAULT_CHECK_TTL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 1024,
    ) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[_Key, tuple[float, EgressPolicy, CheckedTarget]] = {}

    def get(self, policy: EgressPolicy, scheme: str, host: str, port: int) -> CheckedTarget | None:
        """The target `policy` allowed for this origin less than `ttl_s` ago, or None."""
        entry = self._entries.get((scheme, host, port))
        if entry is None:
            return None
        expires, owner, target = entry
        if owner is not policy or self._clock() >= expires:
            return None
        return target

    def put(
        self, policy: EgressPolicy, scheme: str, host: str, port: int, target: CheckedTarget
    ) -> None:
        """Keep `target`, just allowed by `policy`, for `ttl_s` seconds."""
        if self.ttl_s <= 0:
            return
        key = (scheme, host, port)
        self._entries.pop(key, None)  # re-inserted last: the eviction order stays by age
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._clock() + self.ttl_s, policy, target)

    def forget(self, target: CheckedTarget) -> None:
        """Drop every entry holding `target`'s addresses, e.g. after none of them connected."""
        stale = [key for key, (_, _, held) in self._entries.items() if held == target]
        for key in stale:
            self._entries.pop(key, None)
