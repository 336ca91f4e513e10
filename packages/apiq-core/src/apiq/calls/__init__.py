"""Calls: turning an operation and its arguments into the exact HTTP request to send.

- `validate_arguments` checks arguments against `Catalog.argument_schema` (Draft 2020-12,
  no remote retrieval) and raises `InvalidArguments` naming each field as a path;
- `build_request` validates, then serializes every parameter as OpenAPI's style tables say
  and encodes the body (JSON, form, multipart, text, bytes) into a `PreparedRequest`.

Sending it (egress policy, credentials, retries) is the caller's job.
"""

from __future__ import annotations

from apiq.calls.bodies import FilePart
from apiq.calls.build import PreparedRequest, build_request
from apiq.calls.validate import validate_arguments

__all__ = ["FilePart", "PreparedRequest", "build_request", "validate_arguments"]
