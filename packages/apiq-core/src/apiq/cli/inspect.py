"""`apiq inspect SPEC`: what an API description offers, as a table or as JSON."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from apiq.catalog import Catalog, CatalogWarning, Operation
from apiq.client import Apiq

__all__ = ["catalog_as_json", "register", "render_catalog"]

STATE_MARK = "●"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "inspect",
        help="list the operations of an OpenAPI description (URL or file, .gz accepted)",
        description="Fetch (or read) an OpenAPI description and show its operation catalog.",
    )
    parser.add_argument("spec", help="spec URL (http/https) or file path (.json, .yaml, .gz)")
    parser.add_argument("--json", action="store_true", help="print the catalog as JSON")
    parser.add_argument("--tag", help="only operations with this tag")
    parser.add_argument("--limit", type=int, default=None, help="show at most N operations")
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    async with Apiq.from_env() as apiq:
        with err.status(f"Fetching and parsing {args.spec} ...", spinner="dots"):
            catalog = await apiq.load(args.spec)
    if args.json:
        out.print_json(json.dumps(catalog_as_json(catalog, tag=args.tag, limit=args.limit)))
    else:
        render_catalog(catalog, out, tag=args.tag, limit=args.limit)
    return 0


def _selected(catalog: Catalog, tag: str | None, limit: int | None) -> list[Operation]:
    operations = list(catalog.by_tag(tag) if tag else catalog.operations)
    return operations[:limit] if limit is not None else operations


def _warnings(catalog: Catalog) -> tuple[CatalogWarning, ...]:
    """Ingest-time warnings plus schema cycles (found on request: a full schema walk)."""
    return catalog.warnings + catalog.cycle_warnings()


def catalog_as_json(
    catalog: Catalog, *, tag: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    """The catalog as plain JSON: metadata, a top-level `operations` list, tags, warnings."""
    return {
        "title": catalog.title,
        "version": catalog.version,
        "spec_version": catalog.spec_version,
        "source": catalog.source,
        "servers": [server.url for server in catalog.servers],
        "operation_count": len(catalog.operations),
        "operations": [
            {
                "method": op.method.upper(),
                "path": op.path,
                "operation_id": op.operation_id,
                "operation_id_synthesized": op.operation_id_synthesized,
                "summary": op.summary,
                "tags": list(op.tags),
                "changes_state": op.changes_state,
                "deprecated": op.deprecated,
            }
            for op in _selected(catalog, tag, limit)
        ],
        "tags": dict(catalog.tags()),
        "warnings": [
            {"code": w.code, "message": w.message, "pointer": w.pointer} for w in _warnings(catalog)
        ],
    }


def render_catalog(
    catalog: Catalog, out: Console, *, tag: str | None = None, limit: int | None = None
) -> None:
    """Print the operations table, counts by tag and warnings."""
    operations = _selected(catalog, tag, limit)
    servers = ", ".join(server.url for server in catalog.servers) or "none declared"
    out.print(
        f"[bold]{catalog.title}[/] {catalog.version}  ·  "
        f"{'Swagger' if catalog.spec_version.startswith('2') else 'OpenAPI'} "
        f"{catalog.spec_version}  ·  {len(catalog.operations)} operations  ·  servers: {servers}",
        markup=True,
        highlight=False,
    )
    table = Table(show_lines=False, header_style="bold")
    table.add_column(STATE_MARK, justify="center", no_wrap=True)
    table.add_column("Method", no_wrap=True)
    table.add_column("Path", overflow="fold")
    table.add_column("operationId", overflow="fold")
    table.add_column("Summary", overflow="ellipsis", max_width=60)
    for op in operations:
        table.add_row(
            f"[red]{STATE_MARK}[/]" if op.changes_state else "",
            op.method.upper(),
            op.path,
            op.operation_id + (" [dim](made up)[/]" if op.operation_id_synthesized else ""),
            ("[strike]" + op.summary + "[/]") if op.deprecated else op.summary,
        )
    out.print(table)
    shown = f"{len(operations)} of {len(catalog.operations)}"
    out.print(f"{shown} operations shown; [red]{STATE_MARK}[/] = changes state (needs approval)")

    tags = catalog.tags()
    if tags:
        by_tag = Table(title="Operations by tag", header_style="bold")
        by_tag.add_column("Tag")
        by_tag.add_column("Operations", justify="right")
        for name, count in sorted(tags.items(), key=lambda item: (-item[1], item[0])):
            by_tag.add_row(name, str(count))
        out.print(by_tag)

    warnings = _warnings(catalog)
    if warnings:
        counts = Counter(w.code for w in warnings)
        out.print("[yellow]Warnings:[/]")
        for code, count in counts.most_common():
            example = next(w for w in warnings if w.code == code)
            out.print(f"  [yellow]{code}[/] x{count}  e.g. {example.message}", highlight=False)
