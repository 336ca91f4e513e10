"""Calls: from an operation and its arguments to a sent request and its result.

- `validate_arguments` checks arguments against `Catalog.argument_schema` (Draft 2020-12,
  no remote retrieval) and raises `InvalidArguments` naming each field as a path;
- `build_request` validates, then serializes every parameter as OpenAPI's style tables say
  and encodes the body (JSON, form, multipart, text, bytes) into a `PreparedRequest`;
- `Caller.send` sends it through the egress client: decoded size cap, retries on 429/503
  honouring Retry-After (seconds or HTTP-date) else jittered backoff, non-idempotent methods
  retried only with an Idempotency-Key, a per-host circuit breaker. Upstream 4xx/5xx are
  results (`CallResult`), not exceptions.

`Outbound.call` is the one path for an API call through a connection: build, attach
credentials (OAuth included), audit `call.started` before sending (no audit, no call), pace
with a `RateLimiter`, send, audit every attempt with the path template and credential
fingerprints only, and mask the result.
"""

from __future__ import annotations

from apiq.calls.bodies import FilePart
from apiq.calls.build import PreparedRequest, build_request
from apiq.calls.caller import AttemptRecord, Caller, CallResult
from apiq.calls.outbound import Outbound
from apiq.calls.rate_limit import RateLimiter
from apiq.calls.retry import CallPolicy
from apiq.calls.validate import validate_arguments

__all__ = [
    "AttemptRecord",
    "CallPolicy",
    "CallResult",
    "Caller",
    "FilePart",
    "Outbound",
    "PreparedRequest",
    "RateLimiter",
    "build_request",
    "validate_arguments",
]
