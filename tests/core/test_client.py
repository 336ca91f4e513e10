"""`Apiq`, the SDK's front door: composition, many catalogs at once, client ownership."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import anyio
import pytest

from apiq import Apiq, ConfigurationError, EgressDenied, EgressPolicy, SpecLimits
from apiq.egress import egress_client
from apiq.models import AuditQuery
from tests.loopback import loopback_server, respond

PETSTORE = files("apiq.data").joinpath("petstore-oas30.json").read_bytes()


def _spec(title: str, paths: int) -> bytes:
    return json.dumps(
        {
            "openapi": "3.1.0",
            "info": {"title": title, "version": "1"},
            "paths": {
                f"/things{i}": {"get": {"operationId": f"list{i}", "responses": {}}}
                for i in range(paths)
            },
        }
    ).encode()


@pytest.mark.anyio
async def test_many_catalogs_load_concurrently_and_stay_separate(tmp_path: Path) -> None:
    for index in range(5):
        (tmp_path / f"api{index}.json").write_bytes(_spec(f"API {index}", index + 1))
    async with Apiq() as apiq:
        async with anyio.create_task_group() as group:
            for index in range(5):
                group.start_soon(apiq.load, tmp_path / f"api{index}.json")
        assert {name: len(c) for name, c in apiq.catalogs.items()} == {
            f"api-{index}": index + 1 for index in range(5)
        }
        events = await apiq.audit.query(AuditQuery(action_prefix="spec.", limit=1000))
        assert {event.actor for event in events} == {"local"}


@pytest.mark.anyio
async def test_a_borrowed_client_is_left_open() -> None:
    def spec(handler: object) -> None:
        respond(handler, 200, PETSTORE, {"Content-Type": "application/json"})  # type: ignore[arg-type]

    with loopback_server({"/openapi.json": spec}) as server:
        policy = EgressPolicy(allow=frozenset({("127.0.0.1", server.port)}))
        client = egress_client(policy)
        async with Apiq(egress=policy, http_client=client) as apiq:
            catalog = await apiq.load(server.url("/openapi.json"), name="pets")
        assert apiq.catalogs["pets"] is catalog
        assert not client.is_closed
        await client.aclose()


@pytest.mark.anyio
async def test_from_env_reads_the_documented_variables() -> None:
    environ = {
        "APIQ_SPEC_MAX_BYTES": "1000",
        "APIQ_SPEC_TIMEOUT_S": "2.5",
        "SPEC_CACHE_TTL_HOURS": "1",
        "APIQ_EGRESS_ALLOW": "127.0.0.1:9",
    }
    async with Apiq.from_env(environ) as apiq:
        assert apiq.limits == SpecLimits(max_bytes=1000, timeout_s=2.5)
        assert apiq.egress.allow == frozenset({("127.0.0.1", 9)})
    with pytest.raises(ConfigurationError, match="APIQ_SPEC_TIMEOUT_S"):
        Apiq.from_env({"APIQ_SPEC_TIMEOUT_S": "soon"})


@pytest.mark.anyio
async def test_default_policy_refuses_loopback_urls_without_connecting() -> None:
    hits: list[str] = []

    def spec(handler: object) -> None:
        hits.append("served")
        respond(handler, 200, PETSTORE)  # type: ignore[arg-type]

    with loopback_server({"/openapi.json": spec}) as server:
        async with Apiq() as apiq:
            with pytest.raises(EgressDenied) as caught:
                await apiq.load(server.url("/openapi.json"))
    assert hits == []
    assert caught.value.reference_id is not None
    assert caught.value.reference_id in caught.value.public_message


def test_an_owned_client_is_closed_with_apiq() -> None:
    apiq = Apiq()
    anyio.run(apiq.aclose)
    assert apiq._http.is_closed
