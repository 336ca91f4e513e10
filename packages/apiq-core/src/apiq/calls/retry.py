"""How the caller retries: the call policy, Retry-After parsing and jittered backoff.

SECURITY.md "Outbound calls": 429 and 503 honour Retry-After (seconds or HTTP-date) up to
`retry_after_cap_s`; otherwise, and after a connection error or timeout, the caller waits a
"full jitter" exponential backoff (a uniform draw below `min(cap, base * 2**n)`), which
spreads retries of many clients instead of synchronising them. At most `max_attempts`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from email.utils import parsedate_to_datetime

from apiq.errors import ConfigurationError

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "CallPolicy",
    "backoff_s",
    "retry_after_s",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""Methods RFC 9110 §9.2.2 makes idempotent; others are retried only with an Idempotency-Key."""
RETRY_STATUSES = frozenset({429, 503})
"""Upstream statuses that say "try again later"."""


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """Limits and retry settings of one `Caller`."""

    max_attempts: int = 3
    """Attempts per call, the first included."""
    max_response_bytes: int = 10 * 1024 * 1024
    """Largest response body after decoding (gzip, ...), counted while streaming."""
    timeout_s: float = 30.0
    """Connect/read/write/pool timeout, and the deadline of one whole attempt."""
    retry_after_cap_s: float = 30.0
    """A longer Retry-After is not waited for: the 429/503 is returned as the result."""
    backoff_base_s: float = 0.5
    """First backoff ceiling; doubles per attempt."""
    backoff_cap_s: float = 8.0
    """Largest backoff ceiling."""
    breaker_failures: int = 5
    """Consecutive failures (5xx, connection errors, timeouts) that open a host's circuit."""
    breaker_reset_s: float = 30.0
    """How long an open circuit refuses calls before one trial call is let through."""
    max_redirects: int = 3
    """Most redirects followed per attempt (each hop re-checked by the egress policy)."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"CallPolicy.{field.name} must be a number, not {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(
                    f"CallPolicy.{field.name} must be a finite number >= 0, not {value!r}"
                )
        for name in ("max_attempts", "max_response_bytes", "breaker_failures"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"CallPolicy.{name} must be an int >= 1, not {value!r}")
        if self.timeout_s <= 0:
            raise ConfigurationError(f"CallPolicy.timeout_s must be > 0, not {self.timeout_s!r}")


def retry_after_s(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After value asks to wait; None when absent or unparseable.

    Args:
        value: The header value: delay-seconds (`"120"`) or an HTTP-date
            (`"Fri, 27 Nov 2026 18:00:00 GMT"`).
        now: The current wall-clock time (POSIX seconds), to turn a date into a delay.

    Returns:
        The delay in seconds; 0 for a date in the past.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result is a malformed zone
        return None
    return max(0.0, when.timestamp() - now)


def backoff_s(policy: CallPolicy, attempt: int, random: Callable[[], float]) -> float:
    """The full-jitter backoff before attempt `attempt + 1` (`attempt` counts from 1).

    Args:
        policy: Supplies the base and the cap.
        attempt: The attempt that just failed.
        random: A uniform draw in [0, 1).
    """
    ceiling = min(policy.backoff_cap_s, policy.backoff_base_s * 2.0 ** min(attempt - 1, 62))
    return random() * ceiling
