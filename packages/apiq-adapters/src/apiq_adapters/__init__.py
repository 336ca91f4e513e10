"""APIQ adapters: backends for the ports of `apiq.ports`, each behind its own extra.

The OpenAI-compatible planner, the SQL stores, the Redis cache and the DBOS executor arrive
with the issues that need them; this package installs and imports now so the workspace shape
and the one-way dependency arrow (server -> adapters -> core) hold from the start.
"""

from __future__ import annotations

__all__: list[str] = []
