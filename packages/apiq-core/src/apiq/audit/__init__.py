"""Audit sinks in core: memory, JSON Lines file, standard logging.

Each implements `apiq.ports.AuditSink`; `apiq.testing.AuditSinkContract` is the suite a
third-party sink runs against itself. Durable, queryable storage for servers lives in
`apiq_adapters.sql`.
"""

from __future__ import annotations

from apiq.audit.jsonl import JsonlAuditSink
from apiq.audit.logging_sink import LoggingAuditSink
from apiq.audit.memory import MemoryAuditSink

__all__ = ["JsonlAuditSink", "LoggingAuditSink", "MemoryAuditSink"]
