"""Value objects that cross the ports: principals, audit events, fetched and cached specs.

The catalog's own model lives in `apiq.catalog.models` and plans (workflows) in
`apiq.workflows`; executions are reported here as events and states.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "AuditEvent",
    "AuditQuery",
    "CachedSpec",
    "ExecutionEvent",
    "ExecutionState",
    "FetchedSpec",
    "Principal",
    "SpecCacheEntry",
    "new_reference_id",
]

JsonValue = Any
"""A JSON-compatible value: dict, list, str, int, float, bool or None."""


def new_reference_id() -> str:
    """A short random id that finds one audit event (e.g. quoted in an error message)."""
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts: every call that touches secrets, audit or executions names one."""

    id: str
    """Stable user id."""
    tenant: str = "default"
    """Isolation boundary; objects of one tenant are invisible to another."""
    roles: frozenset[str] = frozenset({"USER"})

    @classmethod
    def local(cls) -> Principal:
        """The single user of a notebook or a CLI run."""
        return cls(id="local", tenant="local", roles=frozenset({"USER", "ADMIN"}))


Outcome = Literal["ok", "warning", "error"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing that happened: who, what, when, outcome. Never holds a secret in clear."""

    action: str
    """Dotted name, e.g. `spec.fetch`, `spec.cache.hit`, `spec.cache.refresh_failed`."""
    actor: str
    """Id of the acting principal."""
    tenant: str
    outcome: Outcome = "ok"
    target: str | None = None
    """What the action was about, e.g. the spec URL."""
    detail: Mapping[str, JsonValue] = field(default_factory=dict)
    """Structured facts: error type and full cause, sizes, status codes, timings."""
    id: str = field(default_factory=new_reference_id)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for `AuditSink.query`; every field narrows, None means any."""

    tenant: str | None = None
    actor: str | None = None
    action_prefix: str | None = None
    event_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: Outcome | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class FetchedSpec:
    """What a SpecSource returns: the decoded bytes of a document and how to read them."""

    url: str
    """The reference as given (URL or file path); the cache key."""
    content: bytes
    """Decoded body (Content-Encoding removed); empty when `not_modified`."""
    media_type: str | None = None
    """`application/json`, `application/yaml`, or None when the source could not tell."""
    etag: str | None = None
    not_modified: bool = False
    """True when the source answered 304 to the ETag it was given."""


@dataclass(frozen=True, slots=True)
class CachedSpec:
    """A spec document as the cache holds it: compressed at rest, with its provenance."""

    url: str
    compressed: bytes
    """gzip of the document bytes."""
    size_bytes: int
    """Size of the document before compression."""
    digest: str
    """sha256 hex of the document bytes: the identity of a parsed catalog."""
    fetched_at: datetime
    media_type: str | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class SpecCacheEntry:
    """One row of `SpecCache.entries()`, as admins see it."""

    url: str
    fetched_at: datetime
    ttl_remaining: float
    """Seconds until the entry must be revalidated; negative once stale."""
    size_bytes: int
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """Something that happened while a plan ran (started, step finished, ...)."""

    execution_id: str
    kind: str
    step_id: str | None = None
    detail: Mapping[str, JsonValue] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class ExecutionState:
    """Where an execution stands."""

    execution_id: str
    status: Literal["pending", "running", "succeeded", "failed", "cancelled"]
    steps: Mapping[str, JsonValue] = field(default_factory=dict)
    """Step id -> {status, runs, attempts, request {method, url, status, duration_ms},
    outputs, error}; URLs and values have secrets masked."""
    outputs: Mapping[str, JsonValue] = field(default_factory=dict)
    """The workflow's outputs once it succeeded."""
    error: str | None = None
    plan_digest: str = ""

    def __rich__(self) -> Any:
        from apiq.review import results_table

        return results_table(self)

    def _repr_html_(self) -> str:
        from apiq.review import results_html

        return results_html(self)
