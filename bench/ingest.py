"""Ingestion benchmark over the big specs of ../shared/specs (issue 2, "Prove").

For each spec, all in one run:
  (a) json.loads of the document bytes: the floor;
  (b) parse_spec to a full catalog (strict decode, ref check, catalog build);
  (c) building every operation's argument schema on a fresh catalog;
  (d) a warm cache load through `SpecIngestor` (entry cached, catalog memoized), and
      (d') a load from the cache entry that parses again (gunzip + parse_spec).

Time: median of N runs (perf_counter; a gc.collect() before each, the collector left on
as in real use). Memory: tracemalloc peak of one separate run (tracing slows code down, so
it never overlaps a timed run); for (c) and (d) it is the extra memory on top of the
already-built catalog. Ratios are to the floor (a). Never asserts a time.

Run: `uv run python bench/ingest.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from apiq.audit.memory import MemoryAuditSink
from apiq.catalog import Catalog
from apiq.config import SpecLimits
from apiq.models import FetchedSpec
from apiq.specs.cache import MemorySpecCache, pack_spec
from apiq.specs.ingest import SpecIngestor
from apiq.specs.parse import parse_spec

SPECS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "specs"
SPECS = [
    ("github-api.github.com.json.gz", 5),
    ("stripe.json", 5),
    ("kubernetes-swagger2.json", 5),
    ("msgraph-v1.0.json.gz", 3),
]
# The user named these files; GitHub's and Graph's exceed the 5 MiB budget of a fetch.
LIMITS = SpecLimits(max_bytes=256 * 1024 * 1024, file_max_bytes=256 * 1024 * 1024)
MB = 1024 * 1024


def warm_cache_loaders(content: bytes, source: str) -> tuple[Callable[[], Any], ...]:
    """(d): loaders for a warm cache load and a re-parse from the cache entry.

    Returns `(warm, from_entry)`, zero-argument callables. Both go through
    `SpecIngestor.catalog_of`, the path a cache hit takes: `warm` after a first load has
    memoized the catalog, `from_entry` with memoization off (decompress within budget, then
    parse again).
    """
    fetched = FetchedSpec(url=source, content=content, media_type="application/json")
    entry = pack_spec(fetched, fetched_at=datetime.now(UTC))
    ingestor = SpecIngestor(
        sources={}, cache=MemorySpecCache(), audit=MemoryAuditSink(), limits=LIMITS
    )

    def warm() -> Any:
        return anyio.run(lambda: ingestor.catalog_of(entry))

    def from_entry() -> Any:
        return anyio.run(lambda: ingestor.catalog_of(entry, memoize=False))

    warm()  # the first load parses and memoizes; later ones are warm
    return warm, from_entry


def median_time(runs: int, setup: Callable[[], Any], work: Callable[[Any], Any]) -> float:
    times = []
    for _ in range(runs):
        state = setup()
        gc.collect()
        start = time.perf_counter()
        work(state)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_bytes(setup: Callable[[], Any], work: Callable[[Any], Any]) -> int:
    state = setup()
    gc.collect()
    tracemalloc.start()
    try:
        result = work(state)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak


def all_argument_schemas(catalog: Catalog) -> int:
    for op in catalog.operations:
        catalog.argument_schema(op.operation_id)
    return len(catalog)


def read(name: str) -> bytes:
    content = (SPECS_DIR / name).read_bytes()
    return gzip.decompress(content) if name.endswith(".gz") else content


def bench(content: bytes, name: str, runs: int) -> list[tuple[str, float, int]]:

    def fresh() -> Catalog:
        return parse_spec(content, source=name, limits=LIMITS)

    def nothing() -> None:
        return None

    warm, from_entry = warm_cache_loaders(content, name)
    rows: list[tuple[str, Callable[[], Any], Callable[[Any], Any]]] = [
        ("(a) json.loads", nothing, lambda _: json.loads(content)),
        ("(b) parse_spec", nothing, lambda _: parse_spec(content, source=name, limits=LIMITS)),
        ("(c) all argument schemas", fresh, all_argument_schemas),
        ("(d) warm cache load", nothing, lambda _: warm()),
        ("(d') parse from cache entry", nothing, lambda _: from_entry()),
    ]
    return [
        (label, median_time(runs, setup, work), peak_bytes(setup, work))
        for label, setup, work in rows
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=0, help="runs per figure (default 5; 3 for Graph)"
    )
    args = parser.parse_args()
    if not SPECS_DIR.is_dir():
        print(f"spec corpus not found at {SPECS_DIR}; nothing to measure")
        return 0
    print(f"python {sys.version.split()[0]}; median of N runs; peak = tracemalloc, one run\n")
    header = (
        f"{'spec':32} {'stage':30} {'median s':>9} {'x floor':>8} {'peak MB':>9} {'x floor':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, default_runs in SPECS:
        if not (SPECS_DIR / name).is_file():
            print(f"{name:32} (absent)")
            continue
        content = read(name)
        figures = bench(content, name, args.runs or default_runs)
        _, floor_s, floor_b = figures[0]
        for label, seconds, peak in figures:
            print(
                f"{name:32} {label:30} {seconds:9.3f} {seconds / floor_s:8.2f} "
                f"{peak / MB:9.1f} {peak / floor_b:8.2f}"
            )
        ops = len(parse_spec(content, source=name, limits=LIMITS))
        print(f"{'':32} {ops} operations\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
