"""Hostile-spec and strict-decoding figures: `uv run python bench/hostile.py`.

Prints, for each hostile input, the wall time and tracemalloc peak of `decode_document` (the
issue's target: each refused within 2 s and under 200 MB extra), then for the big JSON specs
the time of `decode_document` and of `check_refs` against plain `json.loads` of the same bytes.
tracemalloc sees Python allocations only (libyaml's own buffers are not counted), so the RSS
growth is printed beside it. Nothing here asserts a time.
"""

from __future__ import annotations

import gzip
import json
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from apiq.config import SpecLimits
from apiq.errors import ApiqError
from apiq.specs.decode import decode_document
from apiq.specs.refs import check_refs

SPECS = Path(__file__).resolve().parents[1].parent / "shared" / "specs"
MIB = 1024 * 1024
HEAD = b'{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}, '


def alias_bomb(levels: int, fan: int) -> bytes:
    lines = ["openapi: 3.0.3", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels + 1)]
    return "\n".join(lines).encode() + b"\n"


def hostile_inputs() -> dict[str, bytes]:
    cap = 5 * MIB  # SpecLimits.max_bytes: the largest body a fetch can hand over
    return {
        "yaml alias bomb (9 levels x 9)": alias_bomb(9, 9),
        "yaml alias bomb (60 levels x 2)": alias_bomb(60, 2),
        "json 10,000-level nesting": HEAD + b'"x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        "json nesting to the 5 MiB cap": HEAD + b'"x": ' + b"[" * (cap // 2),
        "yaml 10,000-level flow nesting": b"openapi: 3.0.3\nx: " + b"[" * 10_000 + b"\n",
        "yaml 10,000-level block nesting": b"openapi: 3.0.3\nx:\n" + b"- " * 10_000 + b"1\n",
        "yaml 199-level nesting x 10,000": b"openapi: 3.0.3\nx: ["
        + b", ".join([b"[" * 198 + b"]" * 198] * 10_000)
        + b"]\n",
        "json duplicate keys": HEAD + b'"x": {"a": 1, "a": 2}}',
        "json 100,000 duplicate keys": HEAD + b'"x": {' + b'"a": 1, ' * 100_000 + b'"a": 1}}',
        "yaml duplicate keys": b"openapi: 3.0.3\nx: 1\nx: 2\n",
        "json NaN": HEAD + b'"x": NaN}',
        "json lone surrogate": HEAD + b'"x": "\\udc00"}',
        "invalid UTF-8": HEAD + b'"x": "\xff\xfe"}',
        "UTF-16 document": '{"openapi": "3.0.3"}'.encode("utf-16"),
        "5,000-digit integer": HEAD + b'"x": ' + b"1" * 5000 + b"}",
        "5 MiB-digit integer (json)": HEAD + b'"x": ' + b"1" * cap + b"}",
        "5 MiB-digit integer (yaml)": b"openapi: 3.0.3\nx: " + b"1" * cap + b"\n",
        "non-OpenAPI JSON": b'{"name": "not a spec", "items": [1, 2]}',
        "HTML login page": b"<!doctype html><html><body><form>Sign in</form></body></html>",
        "yaml python tag": b"openapi: 3.0.3\nx: !!python/object/apply:os.system ['id']\n",
        "yaml recursive alias": b"openapi: 3.0.3\nx: &a {self: *a}\n",
    }


def run_hostile(content: bytes, limits: SpecLimits = SpecLimits()) -> str:  # noqa: B008
    try:
        decode_document(content, source="bench", limits=limits)
    except ApiqError as exc:
        return type(exc).__name__
    return "ACCEPTED"


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hostile_table() -> None:
    print(f"{'hostile input':40} {'bytes':>9} {'result':>12} {'ms':>8} {'peak MB':>8} {'ok':>3}")
    inputs = hostile_inputs()
    for name, content in inputs.items():
        result = run_hostile(content)
        wall = median_ms(lambda c=content: run_hostile(c), 5)
        tracemalloc.start()
        run_hostile(content)
        peak = tracemalloc.get_traced_memory()[1] / MIB
        tracemalloc.stop()
        ok = "yes" if result != "ACCEPTED" and wall < 2000 and peak < 200 else "NO"
        print(f"{name:40} {len(content):>9} {result:>12} {wall:>8.1f} {peak:>8.1f} {ok:>3}")
    # Legal but event-dense YAML costs ~3 us per node: what other node budgets would do.
    dense = inputs["yaml 199-level nesting x 10,000"]
    for budget in (5_000_000, 1_000_000):
        limits = SpecLimits(yaml_max_nodes=budget)
        start = time.perf_counter()
        result = run_hostile(dense, limits)
        wall = (time.perf_counter() - start) * 1000
        print(f"{'  same, yaml_max_nodes=' + format(budget, ','):40} {len(dense):>9} ", end="")
        print(f"{result:>12} {wall:>8.1f}")
    print(f"process max RSS after the hostile inputs: {rss_mib():.0f} MiB\n")


def read(name: str) -> bytes:
    path = SPECS / name
    return gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()


def big_spec_table(runs: int) -> None:
    names = ["github-api.github.com.json.gz", "stripe.json", "kubernetes-swagger2.json"]
    print(f"median of {runs} runs, ms")
    header = f"{'spec':32} {'loads':>7} {'decode':>7} {'ratio':>6} {'refs raw':>9} {'walk':>7}"
    print(header + f" {'decode+refs ratio':>18}")
    for name in names:
        content = read(name)
        doc = decode_document(content, source=name)
        floor = median_ms(lambda c=content: json.loads(c), runs)
        decode = median_ms(lambda c=content: decode_document(c, source="bench"), runs)
        raw = median_ms(lambda d=doc, c=content: check_refs(d, source="bench", raw=c), runs)
        walk = median_ms(lambda d=doc: check_refs(d, source="bench"), runs)
        print(
            f"{name:32} {floor:>7.1f} {decode:>7.1f} {decode / floor:>6.2f} {raw:>9.1f} "
            f"{walk:>7.1f} {(decode + raw) / floor:>18.2f}"
        )
    content = read("stripe-spec3-2022-02.yaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    pyyaml = median_ms(lambda: yaml.load(content, Loader=loader), 3)
    ours = median_ms(lambda: decode_document(content, source="stripe.yaml"), 3)
    print(f"\nstripe-spec3-2022-02.yaml: yaml.load({loader.__name__}) {pyyaml:.0f} ms, ", end="")
    print(f"decode_document {ours:.0f} ms (ratio {ours / pyyaml:.2f})")


def main() -> None:
    print(f"Python {sys.version.split()[0]}, libyaml: {yaml.__with_libyaml__}\n")
    hostile_table()
    if (SPECS / "MANIFEST.md").is_file():
        big_spec_table(runs=int(sys.argv[1]) if len(sys.argv) > 1 else 9)
    else:
        print(f"{SPECS} is absent: big-spec figures skipped")


if __name__ == "__main__":
    main()
