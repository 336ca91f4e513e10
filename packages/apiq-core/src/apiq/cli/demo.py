"""`apiq demo`: the whole ingestion path on embedded defaults, with nothing to set up.

It serves the Petstore description bundled with the package over real HTTP on loopback,
registers it through the egress policy (allowing exactly that loopback port), fetches and
parses it into a catalog, loads it again from the cache, and shows the audit trail and one
operation's argument schema. Planning and execution join the demo as their issues land.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files

from rich.console import Console
from rich.syntax import Syntax

from apiq.cli.inspect import render_catalog
from apiq.client import Apiq
from apiq.egress import EgressPolicy
from apiq.models import AuditQuery

__all__ = ["register"]

BUNDLED_SPEC = "petstore-oas30.json"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo",
        help="ingest the bundled Petstore API over loopback HTTP and show its catalog",
        description="Run APIQ's ingestion path end to end on embedded defaults.",
    )
    parser.set_defaults(handler=run)


@contextmanager
def _serve_bundled_spec() -> Iterator[int]:
    """Serve the bundled spec at http://127.0.0.1:<port>/openapi.json with an ETag."""
    body = files("apiq.data").joinpath(BUNDLED_SPEC).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            if self.path != "/openapi.json":
                self.send_error(404)
                return
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    with _serve_bundled_spec() as port:
        url = f"http://127.0.0.1:{port}/openapi.json"
        policy = EgressPolicy(allow=frozenset({("127.0.0.1", port)}))
        async with Apiq(egress=policy) as apiq:
            out.rule("[bold]1. Register an API by its OpenAPI description")
            out.print(f"Fetching {url} through the egress policy (only this loopback port allowed)")
            catalog = await apiq.load(url, name="petstore")
            render_catalog(catalog, out)

            out.rule("[bold]2. Load it again: served from the spec cache")
            await apiq.load(url, name="petstore")
            for entry in await apiq.spec_cache.entries():
                out.print(
                    f"cached {entry.url}: {entry.size_bytes} bytes, etag {entry.etag}, "
                    f"fresh for {entry.ttl_remaining / 3600:.1f} h",
                    highlight=False,
                )

            out.rule("[bold]3. The audit trail")
            for event in reversed(await apiq.audit.query(AuditQuery(limit=20))):
                out.print(
                    f"{event.at:%H:%M:%S} {event.actor:<6} {event.action:<24} {event.outcome:<7}"
                    f" {event.target}",
                    highlight=False,
                )

            operation = next(op for op in catalog.operations if op.request_body is not None)
            out.rule(f"[bold]4. What {operation.operation_id} takes: one JSON Schema of arguments")
            schema = catalog.argument_schema(operation.operation_id)
            out.print(Syntax(json.dumps(schema, indent=2)[:3000], "json", word_wrap=True))

    out.rule()
    out.print(
        "Next: [bold]uv run apiq inspect path/or/url/to/openapi.json[/] (add --json for JSON).",
    )
    return 0
