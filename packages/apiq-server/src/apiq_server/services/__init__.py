"""The server's multi-user services over the SDK: what route handlers call."""

from __future__ import annotations

__all__: list[str] = []
