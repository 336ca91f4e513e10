"""Outbound call overhead: APIQ's `Outbound.call` against raw httpx (issue 3, "Benchmark").

One run: N sequential GETs (default 1,000) to a tiny stdlib HTTP/1.1 keep-alive server on
127.0.0.1, started in a child process, answering a small JSON body:

  (raw)  `httpx.AsyncClient.get` with the URL and `api_key` header written by hand;
  (apiq) `Outbound.call`: argument validation and serialization (`build_request`), the
         API key read (and decrypted) from a `MemorySecretStore` and attached, the egress
         policy check, the caller (deadline, size cap, breaker), audit events to a
         `MemoryAuditSink` (call.started, call.credential_use, call.attempt) and the masked
         result.

Both use httpx's default pool limits (`httpx.Limits()`; the egress transport keeps one
`AsyncHTTPTransport` with those defaults for plain http). A warm-up of 50 calls each runs
first, so connection setup and first-use costs are not counted; then the two sides run in
alternating blocks of 50 calls, so load from elsewhere falls on both alike. Prints both
totals, the ratio (target <= 1.3), the per-call overhead in microseconds, the same two
figures as medians over the blocks (less sensitive to a burst of load elsewhere) and the
audit events recorded per APIQ call. Never asserts a time.

Run: `uv run python bench/call.py [--calls N]`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import anyio
import httpx

from apiq.audit.memory import MemoryAuditSink
from apiq.calls import Caller
from apiq.calls.outbound import Outbound
from apiq.catalog import Catalog, build_catalog
from apiq.connections import ApiKeyAuth, Connection, secret_name
from apiq.egress import EgressPolicy, egress_client
from apiq.models import AuditQuery, Principal
from apiq.redaction import Redactor
from apiq.secrets import MemorySecretStore

API_KEY = "bench-api-key-0123456789"
ALICE = Principal(id="alice", tenant="bench")
BODY = json.dumps({"id": 7, "name": "doggie", "status": "available", "tags": []}).encode()
WARMUP = 50
BLOCK = 50


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API
    # Headers and body are two writes: without TCP_NODELAY, Nagle plus delayed ACK adds
    # ~40 ms to every call and would hide any overhead.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        return


def _serve(ports: multiprocessing.Queue[int]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    ports.put(int(server.server_address[1]))
    server.serve_forever()


def _catalog(base_url: str) -> Catalog:
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "bench", "version": "1"},
        "servers": [{"url": base_url}],
        "components": {
            "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "api_key"}}
        },
        "security": [{"key": []}],
        "paths": {
            "/pet/{petId}": {
                "get": {
                    "operationId": "getPetById",
                    "parameters": [
                        {
                            "name": "petId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "format": "int64"},
                        },
                        {"name": "verbose", "in": "query", "schema": {"type": "boolean"}},
                    ],
                    "responses": {"200": {"description": "the pet"}},
                }
            }
        },
    }
    return build_catalog(document, source="bench.json", name="bench")


class _Figures(NamedTuple):
    raw_s: list[float]
    """Seconds of each raw block."""
    apiq_s: list[float]
    """Seconds of each APIQ block, paired with the raw block run next to it."""
    blocks: list[int]
    """Calls in each block pair."""
    audit_events: int
    """Audit events the APIQ side recorded, warm-up included."""


async def _compare(base_url: str, port: int, calls: int) -> _Figures:
    """Block times of `calls` GETs each, in alternating blocks."""
    store = MemorySecretStore()
    name = secret_name("bench", "key", "api_key")
    await store.put(ALICE, name, API_KEY.encode())
    auth = {"key": ApiKeyAuth("key", name)}
    connection = Connection("bench", "bench", "alice", "bench", base_url, auth)
    catalog = _catalog(base_url)
    redactor = Redactor(hmac_key=b"bench-hmac-key-0123456789abcdef")
    sink = MemoryAuditSink(maxlen=10 * (calls + WARMUP))
    arguments = {"path": {"petId": 7}, "query": {"verbose": True}}
    url, headers = f"{base_url}/pet/7?verbose=true", {"api_key": API_KEY}
    policy = EgressPolicy(allow=frozenset({("127.0.0.1", port)}))
    async with (
        httpx.AsyncClient(limits=httpx.Limits()) as raw_client,
        egress_client(policy) as client,
    ):
        outbound = Outbound(Caller(client), secrets=store, audit=sink, redactor=redactor)

        async def raw_block(n: int) -> float:
            started = time.perf_counter()
            for _ in range(n):
                response = await raw_client.get(url, headers=headers)
                response.raise_for_status()
                response.json()
            return time.perf_counter() - started

        async def apiq_block(n: int) -> float:
            started = time.perf_counter()
            for _ in range(n):
                result = await outbound.call(ALICE, connection, catalog, "getPetById", arguments)
                assert result.status_code == 200
            return time.perf_counter() - started

        await raw_block(WARMUP)
        await apiq_block(WARMUP)
        # Alternating blocks, each side first in turn: load from elsewhere on the machine
        # then falls on both sides alike instead of on whichever ran second.
        raws: list[float] = []
        apiqs: list[float] = []
        blocks: list[int] = []
        while sum(blocks) < calls:
            n = min(BLOCK, calls - sum(blocks))
            if len(raws) % 2:
                apiqs.append(await apiq_block(n))
                raws.append(await raw_block(n))
            else:
                raws.append(await raw_block(n))
                apiqs.append(await apiq_block(n))
            blocks.append(n)
        events = await sink.query(AuditQuery(limit=10 * (calls + WARMUP)))
        return _Figures(raws, apiqs, blocks, len(events))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=1000)
    calls = parser.parse_args().calls
    # The server runs in its own process: in this one its thread would compete with the
    # client for the GIL, and the side that uses more CPU would also slow the server down.
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        figures = anyio.run(_compare, base_url, port, calls)
    finally:
        server.terminate()
        server.join()
    raw, apiq = sum(figures.raw_s), sum(figures.apiq_s)
    overhead_us = (apiq - raw) / calls * 1e6
    pairs = list(zip(figures.raw_s, figures.apiq_s, figures.blocks, strict=True))
    median_ratio = statistics.median(a / r for r, a, _ in pairs)
    median_overhead_us = statistics.median((a - r) / n * 1e6 for r, a, n in pairs)
    print(f"{calls} sequential GETs to 127.0.0.1 (after {WARMUP} warm-up calls each)")
    print(f"  raw httpx       total {raw * 1000:9.1f} ms   {raw / calls * 1e6:8.1f} us/call")
    print(f"  APIQ Outbound   total {apiq * 1000:9.1f} ms   {apiq / calls * 1e6:8.1f} us/call")
    verdict = "meets" if apiq / raw <= 1.3 else "MISSES"
    print(f"  ratio {apiq / raw:.2f} ({verdict} the <= 1.3 target)")
    print(f"  overhead per call {overhead_us:.1f} us")
    print(
        f"  median over the {len(pairs)} blocks of {BLOCK} calls (less sensitive to load): "
        f"ratio {median_ratio:.2f}, overhead {median_overhead_us:.1f} us/call"
    )
    per_call = figures.audit_events / (calls + WARMUP)
    print(f"  audit events recorded per APIQ call: {per_call:.1f}")


if __name__ == "__main__":
    main()
