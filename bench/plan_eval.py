"""Operation search and the offline planner on the development set.

The set: `bench/data/dev-requests.jsonl`, one request a line, `{"spec": <file under
shared/specs>, "request": <plain English>, "gold": [operationId, ...]}` (gold in call order;
several ids for a multi-step request).

Held-out split: a request is held out when sha256(request text) mod 3 == 0 (about a third,
stable when lines are added or reordered). The index was tuned looking only at the other
two thirds ("tune"); held-out figures are reported separately and their misses are only
printed with `--show-heldout-misses`.

Search metrics, per gold operation (a request with n distinct gold operations counts n
times; each is looked for in the same ranked list of the whole request):
- recall@k: share of gold operations ranked within the first k hits;
- MRR: mean over gold operations of 1/rank, 0 when not in the first 10 (MRR@10);
- all@10: share of requests whose every gold operation is in the first 10.
Two scopes: "per spec" searches an index (or view) holding only the request's spec; "all"
searches one index holding every spec of the set, and a hit counts only in the right spec.
A baseline, plain unweighted BM25 over the same words (bench/plain_bm25.py), runs beside.

Planner: `OfflinePlanner().plan(principal,
request, view)` with a view of the request's spec; exact-sequence rate = share of requests
whose plan's step operationIds equal the gold list in order; correct-operation rate = share
of gold operations that appear among the plan's steps; errors count as misses.

Run: `uv run python bench/plan_eval.py [--show-misses] [--scope per-spec|all|both]`.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from apiq.catalog import Catalog
from apiq.config import SpecLimits
from apiq.models import Principal
from apiq.planning import OfflinePlanner
from apiq.search import CatalogView, OperationIndex
from apiq.specs.parse import parse_spec
from plain_bm25 import PlainBM25

ROOT = Path(__file__).resolve().parents[1]
SPECS_DIR = ROOT.parent / "shared" / "specs"
DATA = ROOT / "bench" / "data" / "dev-requests.jsonl"
LIMITS = SpecLimits(max_bytes=256 * 1024 * 1024, file_max_bytes=256 * 1024 * 1024)
CUTS = (1, 5, 10)

Row = dict[str, Any]
Ranker = Callable[[Row], list[tuple[str, str]]]


def load_rows(path: Path = DATA) -> list[Row]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def source_name(spec: str) -> str:
    """The connection name a spec file is indexed under: `github-api....json.gz` -> github."""
    return spec.replace(".", "-").split("-")[0]


def is_held_out(request: str) -> bool:
    return int(hashlib.sha256(request.encode()).hexdigest(), 16) % 3 == 0


def load_catalog(name: str) -> Catalog:
    content = (SPECS_DIR / name).read_bytes()
    if name.endswith(".gz"):
        content = gzip.decompress(content)
    return parse_spec(content, source=name, limits=LIMITS)


def check_gold(rows: Sequence[Row], catalogs: dict[str, Catalog]) -> None:
    for row in rows:
        for op_id in row["gold"]:
            if catalogs[row["spec"]].get_operation(op_id) is None:
                sys.exit(f"gold {op_id!r} is not an operation of {row['spec']}: {row}")


def evaluate(rows: Sequence[Row], ranker: Ranker, show: Callable[[Row], bool]) -> dict[str, float]:
    found = dict.fromkeys(CUTS, 0)
    reciprocal = 0.0
    golds = 0
    complete = 0
    for row in rows:
        ranked = ranker(row)[:10]
        wanted = list(dict.fromkeys(row["gold"]))
        ranks = []
        for op_id in wanted:
            key = (source_name(row["spec"]), op_id)
            rank = ranked.index(key) + 1 if key in ranked else None
            ranks.append(rank)
            golds += 1
            for cut in CUTS:
                found[cut] += rank is not None and rank <= cut
            reciprocal += 1.0 / rank if rank else 0.0
        complete += all(ranks)
        if show(row) and any(rank is None or rank > 3 for rank in ranks):
            top = ", ".join(op for _, op in ranked[:5])
            print(f"  miss {ranks} {row['request']!r} gold={wanted} top5=[{top}]")
    result = {f"recall@{cut}": found[cut] / golds for cut in CUTS}
    result["MRR"] = reciprocal / golds
    result["all@10"] = complete / len(rows)
    result["requests"] = len(rows)
    return result


def report(label: str, rows: Sequence[Row], ranker: Ranker, show: Callable[[Row], bool]) -> None:
    for split, chosen in (
        ("tune", [r for r in rows if not is_held_out(r["request"])]),
        ("held-out", [r for r in rows if is_held_out(r["request"])]),
        ("all", list(rows)),
    ):
        figures = evaluate(chosen, ranker, show if split != "all" else lambda _: False)
        cells = "  ".join(
            f"{key} {value:.3f}" if key != "requests" else f"n={int(value)}"
            for key, value in figures.items()
        )
        print(f"{label:<28} {split:<9} {cells}")


def bare_operation_id(reference: str) -> str:
    """`$sourceDescriptions.<source>.<operationId>` -> operationId (bare ids unchanged)."""
    prefix = "$sourceDescriptions."
    if not reference.startswith(prefix):
        return reference
    return reference[len(prefix) :].partition(".")[2]


def planner_report(rows: Sequence[Row], views: dict[str, CatalogView]) -> None:
    planner = OfflinePlanner()
    principal = Principal.local()
    outcomes: list[tuple[Row, list[str] | None]] = []
    for row in rows:
        try:
            plan = anyio.run(planner.plan, principal, row["request"], views[row["spec"]])
        except Exception as exc:  # a planner error is a miss, counted and named
            print(f"  planner error {type(exc).__name__}: {row['request']!r}")
            outcomes.append((row, None))
            continue
        steps = [bare_operation_id(step.operation_id or "") for step in plan.workflow.steps]
        outcomes.append((row, steps))
    for split, chosen in (
        ("tune", [o for o in outcomes if not is_held_out(o[0]["request"])]),
        ("held-out", [o for o in outcomes if is_held_out(o[0]["request"])]),
        ("all", outcomes),
    ):
        golds = sum(len(row["gold"]) for row, _ in chosen)
        exact = sum(steps == list(row["gold"]) for row, steps in chosen)
        correct = sum(op in (steps or ()) for row, steps in chosen for op in row["gold"])
        errors = sum(steps is None for _, steps in chosen)
        print(
            f"{'OfflinePlanner':<28} {split:<9} exact-sequence {exact / len(chosen):.3f}  "
            f"correct-operation {correct / golds:.3f}  errors {errors}  n={len(chosen)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show-misses", action="store_true", help="print tune-split misses")
    parser.add_argument("--show-heldout-misses", action="store_true")
    parser.add_argument("--scope", choices=("per-spec", "all", "both"), default="both")
    args = parser.parse_args()
    if not (SPECS_DIR / "MANIFEST.md").is_file():
        sys.exit(f"the spec corpus {SPECS_DIR} is absent")

    def show(row: Row) -> bool:
        held = is_held_out(row["request"])
        return args.show_heldout_misses if held else args.show_misses

    rows = load_rows()
    names = list(dict.fromkeys(row["spec"] for row in rows))
    catalogs = {name: load_catalog(name) for name in names}
    check_gold(rows, catalogs)
    index = OperationIndex()
    plain_all = PlainBM25()
    plain_one: dict[str, PlainBM25] = {}
    for name, catalog in catalogs.items():
        source = source_name(name)
        index.add(source, catalog)
        plain_all.add(source, catalog)
        plain_one[name] = PlainBM25()
        plain_one[name].add(source, catalog)
    views = {name: index.view([source_name(name)]) for name in names}

    def per_spec(row: Row) -> list[tuple[str, str]]:
        return [(h.source, h.operation_id) for h in views[row["spec"]].search(row["request"])]

    def together(row: Row) -> list[tuple[str, str]]:
        return [(h.source, h.operation_id) for h in index.search(row["request"])]

    print(f"{len(rows)} requests over {len(names)} specs; metrics per gold operation")
    if args.scope in ("per-spec", "both"):
        report("apiq.search, per spec", rows, per_spec, show)
        report(
            "plain BM25, per spec",
            rows,
            lambda r: [(s, o) for s, o, _ in plain_one[r["spec"]].search(r["request"])],
            lambda _: False,
        )
    if args.scope in ("all", "both"):
        report("apiq.search, all specs", rows, together, show)
        report(
            "plain BM25, all specs",
            rows,
            lambda r: [(s, o) for s, o, _ in plain_all.search(r["request"])],
            lambda _: False,
        )
    planner_report(rows, views)


if __name__ == "__main__":
    main()
