"""Operation search benchmark (issue 5): index build time and search latency at scale.

All in one run:
  (a) `OperationIndex.add` for GitHub alone (~1,200 operations; the spec is parsed before
      timing): median of N builds, and the tracemalloc peak of one separate build;
  (b) with GitHub, Stripe, Kubernetes and Microsoft Graph indexed together (~14,000
      operations), search latency p50/p95 over the development requests for GitHub and
      Stripe plus a few written for Kubernetes and Graph, each searched over all sources;
  (c) the same searches with a baseline in the same process: plain unweighted BM25 over
      each operation's text (bench/plain_bm25.py), and a plain substring scan that counts
      request words found in each operation's summary, id and path; ratios are to (b).
Time is perf_counter; figures are printed, never asserted.

Run: `uv run python bench/search.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from apiq.catalog import Catalog
from apiq.search import OperationIndex, tokenize
from plain_bm25 import PlainBM25
from plan_eval import SPECS_DIR, load_catalog, load_rows

SPECS = (
    "github-api.github.com.json.gz",
    "stripe.json",
    "kubernetes-swagger2.json",
    "msgraph-v1.0.json.gz",
)
EXTRA_REQUESTS = (
    "list the pods in namespace default",
    "delete the deployment web in namespace prod",
    "scale a deployment to 3 replicas",
    "read the logs of pod api-0",
    "create a config map in kube-system",
    "list all nodes in the cluster",
    "send an email from my mailbox",
    "list the members of a group",
    "create a calendar event for tomorrow",
    "get my OneDrive root folder",
    "add a user to a team channel",
    "list the messages in my inbox",
)


class SubstringScan:
    """Baseline: count request words (lower case) found in each operation's short text."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str, str]] = []

    def add(self, source: str, catalog: Catalog) -> None:
        for op in catalog.operations:
            text = f"{op.operation_id} {op.summary} {op.path}".lower()
            self.texts.append((source, op.operation_id, text))

    def search(self, request: str, k: int = 10) -> list[tuple[str, str, int]]:
        words = [word for word in request.lower().split() if len(word) > 2]
        scored = [
            (source, op_id, sum(word in text for word in words))
            for source, op_id, text in self.texts
        ]
        scored.sort(key=lambda hit: hit[2], reverse=True)
        return scored[:k]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def time_searches(search: Callable[[str], Any], requests: list[str], rounds: int) -> list[float]:
    """Per request, the median of `rounds` timings (other processes on a shared machine
    otherwise decide the tail)."""
    times: dict[str, list[float]] = {request: [] for request in requests}
    for _ in range(rounds):
        for request in requests:
            start = time.perf_counter()
            search(request)
            times[request].append(time.perf_counter() - start)
    return [statistics.median(samples) for samples in times.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    catalogs = {name: load_catalog(name) for name in SPECS}
    github = catalogs[SPECS[0]]

    build_times = []
    for _ in range(args.runs):
        # Cold: the tokenizer's caches would otherwise remember this very catalog's text.
        tokenize.word_terms.cache_clear()
        tokenize._text_terms.cache_clear()
        gc.collect()
        start = time.perf_counter()
        OperationIndex().add("github", github)
        build_times.append(time.perf_counter() - start)
    tokenize.word_terms.cache_clear()
    tokenize._text_terms.cache_clear()
    tracemalloc.start()
    kept = OperationIndex()
    kept.add("github", github)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del kept
    print(
        f"(a) build, GitHub ({len(github)} ops): median {statistics.median(build_times) * 1e3:.0f}"
        f" ms of {args.runs} (min {min(build_times) * 1e3:.0f} ms); peak {peak / 2**20:.1f} MiB"
    )

    index = OperationIndex()
    plain = PlainBM25()
    scan = SubstringScan()
    start = time.perf_counter()
    for name, catalog in catalogs.items():
        index.add(name, catalog)
    all_build = time.perf_counter() - start
    for name, catalog in catalogs.items():
        plain.add(name, catalog)
        scan.add(name, catalog)
    total = sum(len(catalog) for catalog in catalogs.values())
    print(f"    build, all four specs ({total} ops): {all_build * 1e3:.0f} ms")

    wanted = {"github-api.github.com.json.gz", "stripe.json"}
    requests = [row["request"] for row in load_rows() if row["spec"] in wanted]
    requests += list(EXTRA_REQUESTS)
    for request in requests[:5]:
        index.search(request)  # warm-up
    rounds = args.runs
    ours = percentiles(time_searches(index.search, requests, rounds))
    print(
        f"(b) search, {total} ops, {len(requests)} requests, median of {rounds} each: "
        f"p50 {ours[0] * 1e3:.2f} ms, p95 {ours[1] * 1e3:.2f} ms"
    )
    for label, engine in (("plain BM25", plain.search), ("substring scan", scan.search)):
        theirs = percentiles(time_searches(engine, requests, 3))
        print(
            f"(c) {label:<15} p50 {theirs[0] * 1e3:.2f} ms, p95 {theirs[1] * 1e3:.2f} ms; "
            f"apiq.search / baseline p50 {ours[0] / theirs[0]:.2f}x"
        )
    print(f"specs from {SPECS_DIR}")


if __name__ == "__main__":
    main()
