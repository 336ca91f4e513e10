"""Test-side handles on `tests.adapters.dbos_worker` processes and on DBOS's recorded steps."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import anyio

__all__ = ["WorkerProcess", "recorded_calls"]

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """A worker subprocess; its JSON stdout lines are read by `expect`, stderr goes to a file.

    Leaving the `with` block stops it (SIGTERM, then SIGKILL after 15 s).
    """

    def __init__(self, tmp: Path, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self._stderr_path = tmp / f"worker-{name}.stderr"
        self._stderr = self._stderr_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.adapters.dbos_worker", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                self._lines.put(json.loads(line))
            except ValueError:
                continue

    async def expect(self, key: str, within_s: float = 30.0) -> Any:
        """The value of the next stdout message holding `key` (AssertionError after
        `within_s` seconds without one)."""
        return await anyio.to_thread.run_sync(self._expect, key, within_s)

    def _expect(self, key: str, timeout: float) -> Any:
        while True:
            try:
                message = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"worker {self.name} said no {key!r}:\n{self.log()}") from None
            if key in message:
                return message[key]

    def log(self) -> str:
        """The end of the worker's stderr."""
        if not self._stderr.closed:
            self._stderr.flush()
        return self._stderr_path.read_text()[-4000:]

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs in the worker."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(10)  # EOF once the process is gone
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._stderr.close()


def recorded_calls(database_url: str, execution_id: str) -> int:
    """How many calls of the execution DBOS has checkpointed (`apiq.call ...` steps)."""
    query = (
        "SELECT count(*) FROM {table} WHERE workflow_uuid = {mark} AND function_name LIKE {like}"
    )
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            sql = query.format(table="operation_outputs", mark="?", like="'apiq.call %'")
            return int(conn.execute(sql, (execution_id,)).fetchone()[0])
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        sql = query.format(table="dbos.operation_outputs", mark="%s", like="'apiq.call %%'")
        row = conn.execute(sql, (execution_id,)).fetchone()
        return int(row[0]) if row else 0
