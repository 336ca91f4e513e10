"""Audit sinks beyond the port contract: files, permissions, logging, bounds."""

from __future__ import annotations

import json
import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiq.audit import JsonlAuditSink, LoggingAuditSink, MemoryAuditSink
from apiq.audit.jsonl import event_from_json, event_to_json
from apiq.models import AuditEvent, AuditQuery

pytestmark = pytest.mark.anyio


def event(action: str = "spec.fetch", **detail: object) -> AuditEvent:
    return AuditEvent(action=action, actor="alice", tenant="t1", target="x", detail=detail)


async def test_jsonl_writes_one_object_per_line_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonlAuditSink(path, fsync=True)
    first, second = event(size=1), event("spec.cache.hit", size=2)
    await sink.record(first)
    await sink.record(second)
    lines = path.read_text("utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [first.id, second.id]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_jsonl_skips_a_line_cut_by_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonlAuditSink(path)
    await sink.record(kept := event())
    with path.open("a") as handle:
        handle.write('{"id": "cut", "at": "2024-\n[1, 2]\n{"id": 3}\n')
    await sink.record(later := event())
    got = await sink.query(AuditQuery())
    assert [e.id for e in got] == [later.id, kept.id]


async def test_jsonl_query_of_absent_file_is_empty(tmp_path: Path) -> None:
    assert await JsonlAuditSink(tmp_path / "none.jsonl").query(AuditQuery()) == []


async def test_jsonl_write_failure_raises(tmp_path: Path) -> None:
    sink = JsonlAuditSink(tmp_path / "missing-dir" / "audit.jsonl")
    with pytest.raises(FileNotFoundError):
        await sink.record(event())


async def test_jsonl_concurrent_writers_keep_lines_whole(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = JsonlAuditSink(path)
    async with anyio.create_task_group() as group:
        for i in range(50):
            group.start_soon(sink.record, event(i=i, pad="x" * 5000))
    lines = path.read_text("utf-8").splitlines()
    assert sorted(json.loads(line)["detail"]["i"] for line in lines) == list(range(50))


async def test_jsonl_keeps_non_json_detail_as_text(tmp_path: Path) -> None:
    sink = JsonlAuditSink(tmp_path / "audit.jsonl")
    await sink.record(recorded := event(path=Path("/tmp/x"), when=datetime(2024, 1, 1)))
    (got,) = await sink.query(AuditQuery(event_id=recorded.id))
    assert got.detail == {"path": "/tmp/x", "when": "2024-01-01 00:00:00"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=5), st.text(min_size=1))
def test_json_round_trip(detail: dict[str, object], action: str) -> None:
    original = AuditEvent(action=action, actor="a", tenant="t", outcome="warning", detail=detail)
    again = event_from_json(json.loads(json.dumps(event_to_json(original))))
    assert again == original


async def test_memory_sink_is_bounded() -> None:
    sink = MemoryAuditSink(maxlen=3)
    events = [event(i=i) for i in range(5)]
    for recorded in events:
        await sink.record(recorded)
    assert [e.id for e in await sink.query(AuditQuery())] == [e.id for e in events[:1:-1]]


async def test_memory_sink_orders_by_time_not_arrival() -> None:
    sink = MemoryAuditSink()
    now = datetime.now(UTC)
    late = AuditEvent(action="a", actor="x", tenant="t", at=now)
    early = AuditEvent(action="a", actor="x", tenant="t", at=now - timedelta(hours=1))
    await sink.record(late)
    await sink.record(early)
    assert [e.id for e in await sink.query(AuditQuery())] == [late.id, early.id]
    assert await sink.query(AuditQuery(limit=0)) == []


async def test_logging_sink_logs_structured_lines_by_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("apiq.audit.test")
    sink = LoggingAuditSink(logger)
    failed = AuditEvent(
        action="spec.fetch", actor="bob", tenant="t", outcome="error", detail={"error": "X"}
    )
    with caplog.at_level(logging.INFO, logger="apiq.audit.test"):
        await sink.record(event())
        await sink.record(failed)
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.ERROR]
    record = caplog.records[1]
    assert json.loads(record.getMessage())["id"] == failed.id
    assert record.audit["detail"] == {"error": "X"}  # type: ignore[attr-defined]
    (found,) = await sink.query(AuditQuery(event_id=failed.id))
    assert found == failed


async def test_logging_sink_window_is_bounded() -> None:
    sink = LoggingAuditSink(logging.getLogger("apiq.audit.test"), window=2)
    for i in range(4):
        await sink.record(event(i=i))
    assert [e.detail["i"] for e in await sink.query(AuditQuery())] == [3, 2]
