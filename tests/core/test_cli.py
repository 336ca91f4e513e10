"""The `apiq` command as a user runs it: a real process, real files, real loopback HTTP."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

from tests.loopback import loopback_server, respond

BUNDLED = files("apiq.data").joinpath("petstore-oas30.json").read_bytes()


def apiq(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI in a child process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "apiq", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


@pytest.fixture
def petstore_file(tmp_path: Path) -> Path:
    path = tmp_path / "petstore.json"
    path.write_bytes(BUNDLED)
    return path


def test_inspect_prints_the_operations_table(petstore_file: Path) -> None:
    result = apiq("inspect", str(petstore_file))
    assert result.returncode == 0, result.stderr
    assert "Swagger Petstore" in result.stdout
    for operation_id in ("addPet", "findPetsByStatus", "deleteOrder"):
        assert operation_id in result.stdout
    assert "Operations by tag" in result.stdout
    assert "20 of 20 operations shown" in result.stdout


def test_inspect_json_has_a_top_level_operations_list(petstore_file: Path) -> None:
    result = apiq("inspect", str(petstore_file), "--json")
    assert result.returncode == 0, result.stderr
    catalog = json.loads(result.stdout)
    assert len(catalog["operations"]) == 20
    by_id = {op["operation_id"]: op for op in catalog["operations"]}
    assert by_id["addPet"]["method"] == "POST"
    assert by_id["addPet"]["changes_state"] is True
    assert by_id["getPetById"]["changes_state"] is False
    assert catalog["tags"] == {"pet": 8, "store": 4, "user": 8}


def test_inspect_reads_gzip_files(tmp_path: Path) -> None:
    path = tmp_path / "petstore.json.gz"
    path.write_bytes(gzip.compress(BUNDLED))
    result = apiq("inspect", str(path), "--json", "--tag", "store")
    assert result.returncode == 0, result.stderr
    assert {op["operation_id"] for op in json.loads(result.stdout)["operations"]} == {
        "getInventory",
        "placeOrder",
        "getOrderById",
        "deleteOrder",
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "not found"),
        (b'{"openapi": "3.0.0", "info": ', "JSON"),
        (b'{"hello": "world"}', "not an OpenAPI document"),
        (b"<html><body>Please log in</body></html>", "HTML"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "spec.json"
    if content is not None:
        path.write_bytes(content)
    result = apiq("inspect", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected.lower() in lines[0].lower()


def test_a_url_outside_the_egress_allow_list_is_refused() -> None:
    hits: list[str] = []

    def spec(handler: object) -> None:
        hits.append("served")
        respond(handler, 200, BUNDLED, {"Content-Type": "application/json"})  # type: ignore[arg-type]

    with loopback_server({"/openapi.json": spec}) as server:
        result = apiq("inspect", server.url("/openapi.json"))
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert "APIQ_EGRESS_ALLOW" in result.stderr
        assert hits == []

        allowed = apiq(
            "inspect",
            server.url("/openapi.json"),
            "--json",
            env={"APIQ_EGRESS_ALLOW": f"127.0.0.1:{server.port}"},
        )
        assert allowed.returncode == 0, allowed.stderr
        assert len(json.loads(allowed.stdout)["operations"]) == 20


def test_demo_runs_the_ingestion_path_end_to_end() -> None:
    result = apiq("demo")
    assert result.returncode == 0, result.stderr
    assert "findPetsByStatus" in result.stdout
    assert "spec.fetch" in result.stdout
    assert "spec.cache.hit" in result.stdout
    assert '"body"' in result.stdout


@pytest.mark.shared
def test_inspect_counts_githubs_operations(shared_specs: Path) -> None:
    result = apiq("inspect", str(shared_specs / "github-api.github.com.json.gz"), "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["operations"]) == 1223
