"""Reference server under load (issue 6). Run: `uv run python bench/serve.py [--quick]`.

Three targets, one after the other in the same run, each for `--duration` seconds (20)
over `--connections` keep-alive connections (50), after an unrecorded warm-up (`--quick`:
5 s, 10 connections; `--rounds N` alternates the three N times, steadier when other work
shares the cores):

  bare    GET /           a Litestar hello-world under uvicorn (same uvicorn settings
                          as `apiq serve`): what the framework and server give at most;
  apis    GET /api/apis   authenticated (bearer token of a USER with Petstore connected):
                          session lookup, policy, the owned rows (page and total);
  chat    POST /api/chat  "find available pets" planned by the OfflinePlanner over the
                          Petstore catalog, the plan stored; nothing is executed.

Each server is a child process with one uvicorn worker, as `apiq serve` runs. `apiq serve`
uses a fresh SQLite file (`--postgres`: a scratch database on `APIQ_BENCH_POSTGRES_URL`,
default postgresql://postgres@127.0.0.1:5432/postgres) and its default executor; this
process serves the Petstore API on loopback (`APIQ_EGRESS_ALLOW`). The load comes from
another process: `wrk` (one thread) when it is on the PATH, else the asyncio HTTP/1.1
generator of this file (`--generator` chooses).

Prints, per target: requests, req/s, p50 and p99 latency (ms), errors (wrk: responses
>= 400 plus socket errors; the Python generator: every non-2xx and failed request), the
ratio req/s(target) / req/s(bare), the server's CPU per request ("CPU ms/r", steadier than
req/s when other work shares the cores) and the share of one core the server and the
generator used (a generator near 100% while the server idles is the bottleneck).
Targets (issue 6): p99 < 100 ms for GET /api/apis and a ratio >= 0.3. The machine's load
average is printed too: other work on the cores skews every figure. Never asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService

POSTGRES = os.environ.get(
    "APIQ_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "correct horse battery staple"
CHAT_MESSAGE = "find available pets"
HERE = Path(__file__).resolve()
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Target:
    """One kind of request to repeat."""

    name: str
    port: int
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass(frozen=True)
class Result:
    """What one load run measured; `*_cpu` are shares of one core, `server_cpu_s` seconds."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    generator_cpu: float
    server_cpu: float
    server_cpu_s: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request_ms(self) -> float:
        """Server CPU per request: steadier than req/s when other work shares the cores."""
        return self.server_cpu_s * 1000 / max(1, self.requests)


# -- the bare app and the Python load generator (run as child processes of this file) ----


def bare_app(port: int) -> None:
    """A Litestar hello-world under uvicorn, with `apiq serve`'s uvicorn settings."""
    import uvicorn
    from litestar import Litestar, get

    @get("/", sync_to_thread=False)
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    uvicorn.run(
        Litestar([hello]), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, whether the server closes the connection)."""
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    status = int(head[9:12])
    # Both apps answer with Content-Length (no chunked bodies: a JSON response is one piece).
    marker = head.find(b"content-length:")
    if marker >= 0:
        await reader.readexactly(int(head[marker + 15 : head.index(b"\r\n", marker)]))
    return status, b"connection: close" in head


async def _connection(
    target: Target, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    headers = {"Host": f"127.0.0.1:{target.port}", **target.headers}
    if target.body:
        headers["Content-Length"] = str(len(target.body.encode()))
    lines = [f"{target.method} {target.path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n" + target.body).encode()
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            if stream is None:
                stream = await asyncio.open_connection("127.0.0.1", target.port)
            reader, writer = stream
            writer.write(request)
            async with asyncio.timeout(10):
                status, closing = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            errors[0] += 1
            if stream is not None:
                stream[1].close()
            stream = None
            continue
        finished = time.perf_counter()
        if finished <= deadline:
            latencies.append(finished - started)
            errors[0] += not 200 <= status < 300
        if closing:
            writer.close()
            stream = None
    if stream is not None:
        stream[1].close()


async def _load(target: Target, duration: float, connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + duration
    await asyncio.gather(
        *(_connection(target, deadline, latencies, errors) for _ in range(connections))
    )
    latencies.sort()
    count = len(latencies)
    return {
        "requests": count,
        "seconds": duration,
        "p50_ms": latencies[(count - 1) // 2] * 1000 if count else 0.0,
        "p99_ms": latencies[int((count - 1) * 0.99)] * 1000 if count else 0.0,
        "errors": errors[0],
    }


def load_generator(spec: str) -> None:
    """Child process: run one load and print its result as JSON."""
    options = json.loads(spec)
    target = Target(**options["target"])
    result = asyncio.run(_load(target, options["duration"], options["connections"]))
    print(json.dumps(result))


# -- running a load from another process ------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _wrk_script(target: Target, folder: Path) -> Path:
    # Long-bracket strings: LuaJIT knows no \u escapes, and the values hold no "]==]".
    lines = [f"wrk.method = [==[{target.method}]==]"]
    lines += [f"wrk.headers[ [==[{k}]==] ] = [==[{v}]==]" for k, v in target.headers.items()]
    if target.body:
        lines.append(f"wrk.body = [==[{target.body}]==]")
    lines.append(
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        '  io.write(string.format(\'\\n{"requests": %d, "seconds": %f, "p50_ms": %f,'
        ' "p99_ms": %f, "errors": %d}\\n\', summary.requests, summary.duration / 1e6,'
        " latency:percentile(50) / 1000, latency:percentile(99) / 1000,"
        " e.status + e.connect + e.read + e.write + e.timeout))\n"
        "end"
    )
    path = folder / f"{target.name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def _generator_command(
    generator: str, target: Target, duration: float, connections: int, folder: Path
) -> list[str]:
    if generator == "wrk":
        script = _wrk_script(target, folder)
        return ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
                "--timeout", "10s", "-s", str(script),
                f"http://127.0.0.1:{target.port}{target.path}"]  # fmt: skip
    spec = {"target": target.__dict__, "duration": duration, "connections": connections}
    return [sys.executable, str(HERE), "load", json.dumps(spec)]


def run_load(
    generator: str, target: Target, duration: float, connections: int, server: int, folder: Path
) -> Result:
    """One load run in a child process, with the CPU the server and the generator used."""
    command = _generator_command(generator, target, duration, connections, folder)
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_server = _cpu_seconds(server)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=duration + 60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    server_cpu_s = _cpu_seconds(server) - before_server
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    generator_cpu_s = (
        after.ru_utime + after.ru_stime - before_children.ru_utime - before_children.ru_stime
    )
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"load generator failed ({process.returncode}): {err.decode()[-2000:]}")
    figures = json.loads(lines[-1])
    # Shares over the measured seconds: the generator's start-up counts against it.
    seconds = figures["seconds"]
    return Result(
        **figures,
        generator_cpu=generator_cpu_s / seconds,
        server_cpu=server_cpu_s / seconds,
        server_cpu_s=server_cpu_s,
    )


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def child(
    name: str,
    command: list[str],
    port: int,
    ready: str,
    log: Path,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process (its own session: Ctrl-C reaches only us, and we stop it)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")
            try:
                httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A new PostgreSQL database, dropped after."""
    import psycopg

    name = f"apiq_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _data(response: httpx.Response) -> Any:
    if not response.is_success:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: "
                           f"{response.status_code} {response.text[:800]}")  # fmt: skip
    return response.json()["data"]


def prepare(base_url: str, petstore: PetstoreService) -> tuple[str, str]:
    """An admin (first user), then a USER with Petstore connected: (token, plan summary)."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for email in ("admin@bench.example", "user@bench.example"):
            credentials = {"email": email, "password": PASSWORD}
            _data(client.post("/api/auth/register", json=credentials))
        token = _data(client.post("/api/auth/login", json=credentials))["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        connection = {
            "name": "petstore",
            "specUrl": petstore.spec_url,
            "credentials": {"api_key": {"value": PETSTORE_API_KEY}},
        }
        _data(client.post("/api/apis", json=connection))
        listed = _data(client.get("/api/apis"))
        plan = _data(client.post("/api/chat", json={"message": CHAT_MESSAGE}))
    steps = ", ".join(f"{step['method']} {step['url']}" for step in plan["steps"])
    count = listed["total"] if isinstance(listed, dict) and "total" in listed else len(listed)
    return token, f"{count} connection listed; {CHAT_MESSAGE!r} plans: {steps}"


# -- the run -----------------------------------------------------------------------------------


def combine(rounds: list[Result]) -> Result:
    """Rounds of one target as one result: requests over time, medians of the rest."""
    return Result(
        requests=sum(result.requests for result in rounds),
        seconds=sum(result.seconds for result in rounds),
        p50_ms=statistics.median(result.p50_ms for result in rounds),
        p99_ms=statistics.median(result.p99_ms for result in rounds),
        errors=sum(result.errors for result in rounds),
        generator_cpu=statistics.median(result.generator_cpu for result in rounds),
        server_cpu=statistics.median(result.server_cpu for result in rounds),
        server_cpu_s=sum(result.server_cpu_s for result in rounds),
    )


def _print_row(target: Target, result: Result, bare: Result) -> None:
    label = f"{target.name:<5} {target.method} {target.path}"
    print(f"  {label:<26} {result.requests:>8} {result.rate:>8.1f} {result.p50_ms:>7.1f}"
          f" {result.p99_ms:>7.1f} {result.errors:>7} {result.rate / bare.rate:>6.2f}"
          f" {result.cpu_per_request_ms:>8.2f} {result.server_cpu:>6.0%}"
          f" {result.generator_cpu:>6.0%}", flush=True)  # fmt: skip


def _verdicts(results: dict[str, Result]) -> None:
    bare, apis, chat = results["bare"], results.get("apis"), results.get("chat")
    if apis is not None:
        meets = "meets" if apis.p99_ms < 100 else "MISSES"
        print(f"  GET /api/apis p99 {apis.p99_ms:.1f} ms ({meets} the < 100 ms target)")
    for name, result in (("GET /api/apis", apis), ("POST /api/chat", chat)):
        if result is not None:
            ratio = result.rate / bare.rate
            meets = "meets" if ratio >= 0.3 else "MISSES"
            print(f"  {name} ratio {ratio:.2f} ({meets} the >= 0.3 target)")


def _print_errors(log: Path) -> None:
    """What the server logged about failures (the temporary folder goes away with us)."""
    text = log.read_text(errors="replace").splitlines()
    lines = [line[:200] for line in text if "ERROR" in line or "Error" in line]
    print(
        f"  the server logged {len(lines)} error lines; the last ones:", *lines[-8:], sep="\n    "
    )


def start(stack: ExitStack, folder: Path, postgres: bool) -> tuple[list[tuple[Target, int]], str]:
    """Petstore, the bare app and `apiq serve`, ready: ([(target, server pid)], summary)."""
    petstore = stack.enter_context(PetstoreService())
    if postgres:
        database, backend = stack.enter_context(scratch_postgres()), "PostgreSQL"
    else:
        database, backend = f"sqlite:///{folder / 'apiq.sqlite'}", "SQLite"
    bare_port, apiq_port = free_port(), free_port()
    bare = stack.enter_context(
        child("bare app", [sys.executable, str(HERE), "bare", str(bare_port)], bare_port, "/",
              folder / "bare.log")
    )  # fmt: skip
    env = {"APIQ_DATABASE_URL": database, "APIQ_KEY_FILE": str(folder / "master.key"),
           "APIQ_EGRESS_ALLOW": f"127.0.0.1:{petstore.port}", "APIQ_MODE": "development",
           "APIQ_RATE_LIMIT_PER_MINUTE": "100000000"}  # fmt: skip
    command = [sys.executable, "-m", "apiq", "serve", "--host", "127.0.0.1",
               "--port", str(apiq_port)]  # fmt: skip
    server = stack.enter_context(
        child("apiq serve", command, apiq_port, "/api/health", folder / "server.log", env)
    )
    token, summary = prepare(f"http://127.0.0.1:{apiq_port}", petstore)
    auth = {"Authorization": f"Bearer {token}"}
    chat = {**auth, "Content-Type": "application/json"}
    targets = [
        (Target("bare", bare_port, "GET", "/"), bare.pid),
        (Target("apis", apiq_port, "GET", "/api/apis", auth), server.pid),
        (Target("chat", apiq_port, "POST", "/api/chat", chat,
                json.dumps({"message": CHAT_MESSAGE})), server.pid),
    ]  # fmt: skip
    return targets, f"apiq serve on {backend}; {summary}"


def run(args: argparse.Namespace) -> None:
    """Start the servers, load each target (alternating over rounds), print the table."""
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    duration, connections = args.duration, args.connections
    warm_up = min(3.0, max(1.0, duration / 10))
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="apiq-bench-")))
        targets, summary = start(stack, folder, args.postgres)
        load1, load5, _ = os.getloadavg()
        print(
            f"apiq serve vs a bare Litestar app, one uvicorn worker each; {generator} load:"
            f" {connections} connections, {duration:g} s per target after {warm_up:g} s warm-up"
        )
        print(f"  {summary}")
        print(f"  {os.cpu_count()} CPUs, load average {load1:.2f} (1 min) {load5:.2f} (5 min)")
        print(f"  {'target':<26} {'requests':>8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
              f" {'errors':>7} {'ratio':>6} {'CPU ms/r':>8} {'server':>6} {'gen':>6}")  # fmt: skip
        rounds: dict[str, list[Result]] = {target.name: [] for target, _ in targets}
        for number in range(args.rounds):
            if args.rounds > 1:
                print(f"  round {number + 1} of {args.rounds}")
            for target, pid in targets:
                run_load(generator, target, warm_up, connections, pid, folder)
                result = run_load(generator, target, duration, connections, pid, folder)
                rounds[target.name].append(result)
                _print_row(target, result, rounds["bare"][-1])
        results = {name: combine(figures) for name, figures in rounds.items()}
        if args.rounds > 1:
            print(f"  all {args.rounds} rounds (req/s over all; p50, p99, CPU: medians of rounds)")
            for target, _ in targets:
                _print_row(target, results[target.name], results["bare"])
        _verdicts(results)
        if any(result.errors for result in results.values()):
            _print_errors(folder / "server.log")
        print(f"  load average after: {os.getloadavg()[0]:.2f} (1 min)")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, as a child process, the bare app or a load generator)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bare"]:
        bare_app(int(argv[1]))
        return
    if argv[:1] == ["load"]:
        load_generator(argv[1])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per target")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate the targets N times (steadier when busy)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="5 s and 10 connections")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="wrk when installed (auto), or the asyncio generator")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.connections = 5.0, 10
    # SIGTERM and SIGHUP unwind like Ctrl-C, so every child server is stopped on the way out.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda signum, frame: sys.exit(128 + signum))
    run(args)


if __name__ == "__main__":
    main()
