"""The AuditSink contract over every in-tree adapter of core."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from apiq.audit import JsonlAuditSink, LoggingAuditSink, MemoryAuditSink
from apiq.ports import AuditSink
from apiq.testing import AuditSinkContract


class TestAuditSink(AuditSinkContract):
    @pytest.fixture(params=["memory", "jsonl", "logging"])
    def audit_sink(self, request: pytest.FixtureRequest, tmp_path: Path) -> AuditSink:
        if request.param == "jsonl":
            return JsonlAuditSink(tmp_path / "audit.jsonl")
        if request.param == "logging":
            return LoggingAuditSink(logging.getLogger("apiq.audit.contract"))
        return MemoryAuditSink()
