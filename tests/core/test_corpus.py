"""Every file of the shared spec corpus ingests, with MANIFEST.md's operation count."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from apiq.catalog import Catalog
from apiq.config import SpecLimits
from apiq.specs.parse import parse_spec
from tests.core.schema_refs import refs_in

pytestmark = pytest.mark.shared

# The corpus holds files far beyond the 5 MiB fetch budget (GitHub's inlined document is
# 73 MB); the user named them, as with `apiq inspect FILE`, so they get a file's budget.
CORPUS_LIMITS = SpecLimits(max_bytes=128 * 1024 * 1024, file_max_bytes=128 * 1024 * 1024)
MEDIA_TYPES = {".json": "application/json", ".yaml": "application/yaml"}


def manifest_counts(specs: Path) -> dict[str, int]:
    """file -> ops, from the MANIFEST.md table (columns located by their header names)."""
    counts: dict[str, int] = {}
    columns: list[str] = []
    for line in (specs / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not columns:
            columns = cells
            continue
        row = dict(zip(columns, cells, strict=False))
        if row.get("ops", "").isdigit():
            counts[row["file"]] = int(row["ops"])
    return counts


def load(path: Path) -> Catalog:
    content = path.read_bytes()
    if path.name.endswith(".gz"):
        content = gzip.decompress(content)
    suffix = Path(path.name.removesuffix(".gz")).suffix
    return parse_spec(
        content, source=path.name, media_type=MEDIA_TYPES.get(suffix), limits=CORPUS_LIMITS
    )


def test_manifest_lists_every_file(shared_specs: Path) -> None:
    files = {p.name for p in shared_specs.iterdir() if p.name != "MANIFEST.md"}
    assert files == set(manifest_counts(shared_specs))


def corpus_files() -> list[str]:
    from tests.conftest import SHARED_SPECS

    if not (SHARED_SPECS / "MANIFEST.md").is_file():
        return ["(corpus absent)"]
    return sorted(manifest_counts(SHARED_SPECS))


@pytest.mark.parametrize("filename", corpus_files())
def test_every_file_ingests_with_the_manifest_operation_count(
    shared_specs: Path, filename: str
) -> None:
    catalog = load(shared_specs / filename)
    assert len(catalog) == manifest_counts(shared_specs)[filename]
    ids = [op.operation_id for op in catalog]
    assert len(set(ids)) == len(ids)
    assert all(catalog.find(op.method, op.path) is not None for op in catalog)


@pytest.mark.parametrize(
    "filename",
    [
        "circular-oas30.json",
        "circular-paths-oas30.json",
        "circular-request-bodies-oas30.json",
        "circular-schema-oas30.json",
        "circular-schema-swagger2.json",
        "petstore-swagger2.json",
        "polymorphism-oas30.json",
        "schema-types-oas31.json",
        "stripe.json",
        "kubernetes-swagger2.json",
    ],
)
def test_argument_schemas_are_self_contained(shared_specs: Path, filename: str) -> None:
    catalog = load(shared_specs / filename)
    for op in catalog:
        schema = catalog.argument_schema(op.operation_id)
        defs = schema.get("$defs", {})
        for ref in refs_in({k: v for k, v in schema.items() if k != "$defs"}) | refs_in(defs):
            assert ref.removeprefix("#/$defs/") in defs, (op.operation_id, ref)


@pytest.mark.parametrize(
    "filename",
    [
        "circular-oas30.json",
        "circular-schema-oas30.json",
        "circular-schema-swagger2.json",
        "kubernetes-swagger2.json",
    ],
)
def test_circular_specs_report_cycles(shared_specs: Path, filename: str) -> None:
    catalog = load(shared_specs / filename)
    assert any(w.code == "cycle" for w in catalog.cycle_warnings())
