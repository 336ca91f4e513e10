"""Small frozen value objects that configure ingestion; the SDK takes them as keywords.

Defaults are DESIGN.md's and SECURITY.md's numbers; `from_env` reads the documented
variables for entry points that want them (the CLI, the server's settings).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from apiq.errors import ConfigurationError

__all__ = ["CacheSettings", "SpecLimits"]

MIB = 1024 * 1024


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number; unset it or give one") from None
    if value <= 0:
        raise ConfigurationError(f"{name}={raw!r} must be greater than zero")
    return value


@dataclass(frozen=True, slots=True)
class SpecLimits:
    """Bounds on fetching and parsing an API description (SECURITY.md "Hostile specs")."""

    max_bytes: int = 5 * MIB
    """Decoded bytes allowed for a fetched spec and for a cache read (`APIQ_SPEC_MAX_BYTES`)."""
    file_max_bytes: int = 64 * MIB
    """Decoded bytes allowed for a local file the user named (big specs such as GitHub's)."""
    timeout_s: float = 10.0
    """Total deadline of one fetch: connect, headers and body (`APIQ_SPEC_TIMEOUT_S`)."""
    max_depth: int = 200
    """Deepest nesting of objects and arrays accepted in a document."""
    yaml_max_nodes: int = 500_000
    """YAML node budget counted with aliases expanded (alias bombs stop here).

    Building YAML costs about 3 us a node in Python, so this bounds a hostile document to
    about 1.5 s; real specs are far below it (Stripe's 3 MB YAML has 134,000 nodes). Raise it
    for a huge local YAML file, or convert that file to JSON, which has no such budget."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SpecLimits:
        return cls(
            max_bytes=int(_number(environ, "APIQ_SPEC_MAX_BYTES", 5 * MIB)),
            timeout_s=_number(environ, "APIQ_SPEC_TIMEOUT_S", 10.0),
        )


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """How long fetched specs stay fresh, and how long a stale one may stand in."""

    ttl_s: float = 24 * 3600.0
    """Seconds an entry is served without revalidation (`SPEC_CACHE_TTL_HOURS` * 3600)."""
    max_stale_s: float = 7 * 24 * 3600.0
    """Seconds past the TTL that a stale entry may be served when a refresh fails."""
    max_entry_bytes: int = 64 * MIB
    """Largest document (before compression) the cache accepts."""
    max_entries: int = 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> CacheSettings:
        return cls(ttl_s=_number(environ, "SPEC_CACHE_TTL_HOURS", 24.0) * 3600)
