"""The `apiq` command as a user runs it: a real process, real files, real loopback HTTP."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService
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


def test_demo_runs_three_requests_end_to_end_offline() -> None:
    result = apiq("demo", "--yes")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "findPetsByStatus" in out
    assert "changes state" in out  # the third plan is marked and approved
    assert "Approved" in out
    assert out.count("finished: succeeded") == 3
    assert "POST http://127.0.0.1" in out
    for action in ("spec.fetch", "plan.created", "plan.approved", "call.attempt"):
        assert action in out
    assert "special-key" not in out + result.stderr  # the demo API key never shows


def test_demo_without_yes_sends_nothing_that_was_not_approved() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "apiq", "demo"],
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Not approved: nothing was sent." in result.stdout
    assert "POST http://127.0.0.1" not in result.stdout.split("Not approved")[1]


@pytest.fixture
def petstore() -> Iterator[PetstoreService]:
    with PetstoreService() as service:
        yield service


def ask(service: PetstoreService, *args: str) -> subprocess.CompletedProcess[str]:
    return apiq(
        *args,
        "--spec",
        service.spec_url,
        env={"APIQ_EGRESS_ALLOW": f"127.0.0.1:{service.port}", "DEMO_KEY": PETSTORE_API_KEY},
    )


def test_search_json_ranks_operations(petstore: PetstoreService) -> None:
    result = ask(petstore, "search", "find pets by their status", "--json")
    assert result.returncode == 0, result.stderr
    operations = json.loads(result.stdout)["operations"]
    assert operations[0]["operationId"] == "findPetsByStatus"
    assert set(operations[0]) >= {"method", "path", "operationId", "score"}
    assert operations[0]["method"] == "GET"
    assert [op["score"] for op in operations] == sorted(op["score"] for op in operations)[::-1]


def test_plan_json_has_steps_and_sends_nothing(petstore: PetstoreService) -> None:
    result = ask(petstore, "plan", "find the available pets and order the first one", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [s["operationId"] for s in plan["steps"]] == ["findPetsByStatus", "placeOrder"]
    assert plan["steps"][1]["method"] == "POST"
    assert plan["steps"][1]["changesState"] is True
    assert plan["needsApproval"] is True
    assert all("arguments" in step for step in plan["steps"])
    assert [r.path for r in petstore.requests] == ["/openapi.json"]


def test_run_yes_executes_with_the_key_from_the_environment(petstore: PetstoreService) -> None:
    result = ask(
        petstore, "run", "place an order for pet 2", "--yes", "--json", "--auth", "api_key=DEMO_KEY"
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["result"]["status"] == "succeeded"
    sent = [r for r in petstore.requests if r.path.startswith("/v2")]
    assert [(r.method, r.path) for r in sent] == [("POST", "/v2/store/order")]
    assert sent[0].headers["api_key"] == PETSTORE_API_KEY
    assert PETSTORE_API_KEY not in result.stdout


def test_run_refused_at_the_prompt_sends_nothing(petstore: PetstoreService) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "apiq",
            "run",
            "place an order for pet 2",
            "--spec",
            petstore.spec_url,
        ],
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "APIQ_EGRESS_ALLOW": f"127.0.0.1:{petstore.port}"},
        check=False,
    )
    assert result.returncode == 1
    assert "nothing was sent" in result.stderr
    assert not [r for r in petstore.requests if r.path.startswith("/v2")]


def test_auth_from_a_missing_variable_is_one_clear_line(petstore: PetstoreService) -> None:
    result = ask(petstore, "run", "find available pets", "--auth", "api_key=NOT_SET_ANYWHERE")
    assert result.returncode == 2
    assert "NOT_SET_ANYWHERE is not set" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.shared
def test_inspect_counts_githubs_operations(shared_specs: Path) -> None:
    result = apiq("inspect", str(shared_specs / "github-api.github.com.json.gz"), "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["operations"]) == 1223
