"""`SqlApprovals` on SQLite and PostgreSQL: the in-memory ledger's rules, across processes.

Single use holds under concurrency: 20 tasks, each on its own engine (as separate server
processes would be), redeem one token and exactly one succeeds. Only token hashes are stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from apiq.errors import ConfirmationRequired
from apiq.execution.approval import DEFAULT_TTL_S
from apiq.models import Principal
from apiq.workflows import Plan, SourceDescription, Workflow
from apiq_adapters.sql import SqlApprovals, StorageError, open_engine
from apiq_adapters.sql.tables import approvals as approvals_table
from tests.adapters.sql_backends import BACKENDS, empty_engine, migrated_database

pytestmark = pytest.mark.anyio

ALICE = Principal(id="alice", tenant="acme")
BOB = Principal(id="bob", tenant="acme")
ALICE_ELSEWHERE = Principal(id="alice", tenant="other")
CONTENDERS = 20


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with migrated_database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with empty_engine(database_url) as engine:
        yield engine


def plan_of(pet_id: Any) -> Plan:
    step = {
        "stepId": "order",
        "operationId": "placeOrder",
        "requestBody": {"contentType": "application/json", "payload": {"petId": pet_id}},
    }
    return Plan(
        workflow=Workflow.model_validate({"workflowId": "w", "steps": [step]}),
        sources=(SourceDescription(name="pets", url="https://petstore.example/openapi.json"),),
    )


async def stored_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(approvals_table))).mappings().all()
    return [dict(row) for row in rows]


async def test_a_granted_token_is_redeemed_once(engine: AsyncEngine) -> None:
    ledger = SqlApprovals(engine)
    plan = plan_of(1)
    granted = await ledger.grant(ALICE, plan, {"x": 1})
    assert granted.plan_digest == plan.digest({"x": 1})
    await ledger.redeem(ALICE, plan, {"x": 1}, granted.token)
    with pytest.raises(ConfirmationRequired, match="already used"):
        await ledger.redeem(ALICE, plan, {"x": 1}, granted.token)
    assert await stored_rows(engine) == []


async def test_only_the_hash_of_a_token_is_stored(engine: AsyncEngine) -> None:
    granted = await SqlApprovals(engine).grant(ALICE, plan_of(1))
    (row,) = await stored_rows(engine)
    assert row["token_hash"] == hashlib.sha256(granted.token.encode()).hexdigest()
    assert granted.token not in repr(row)
    assert (row["tenant"], row["owner_id"], row["plan_digest"]) == (
        "acme",
        "alice",
        plan_of(1).digest(),
    )


@pytest.mark.parametrize(
    ("who", "inputs", "message"),
    [
        (BOB, {"x": 1}, "another user"),
        (ALICE_ELSEWHERE, {"x": 1}, "another user"),
        (ALICE, {"x": 2}, "changed"),
    ],
    ids=["other-user", "other-tenant", "changed-inputs"],
)
async def test_a_token_is_refused_to_anyone_else_or_for_other_inputs_and_is_spent(
    engine: AsyncEngine, who: Principal, inputs: dict[str, Any], message: str
) -> None:
    ledger = SqlApprovals(engine)
    plan = plan_of(1)
    token = (await ledger.grant(ALICE, plan, {"x": 1})).token
    with pytest.raises(ConfirmationRequired, match=message):
        await ledger.redeem(who, plan, inputs, token)
    # As in memory: a token that failed is spent; the rightful redeem needs a new approval.
    with pytest.raises(ConfirmationRequired, match="already used"):
        await ledger.redeem(ALICE, plan, {"x": 1}, token)


async def test_a_changed_plan_is_refused(engine: AsyncEngine) -> None:
    ledger = SqlApprovals(engine)
    token = (await ledger.grant(ALICE, plan_of(1))).token
    with pytest.raises(ConfirmationRequired, match="changed after approval"):
        await ledger.redeem(ALICE, plan_of(2), None, token)


async def test_an_expired_token_is_refused_and_expired_rows_are_purged_on_grant(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    ledger = SqlApprovals(engine, ttl_s=60, clock=clock)
    plan = plan_of(1)
    stale = (await ledger.grant(ALICE, plan)).token
    kept = (await ledger.grant(BOB, plan)).token
    clock.now += 61
    with pytest.raises(ConfirmationRequired, match="expired"):
        await ledger.redeem(ALICE, plan, None, stale)
    left_over = (await ledger.grant(ALICE, plan)).token  # purges BOB's expired row
    assert [row["owner_id"] for row in await stored_rows(engine)] == ["alice"]
    with pytest.raises(ConfirmationRequired, match="unknown"):
        await ledger.redeem(BOB, plan, None, kept)
    await ledger.redeem(ALICE, plan, None, left_over)


async def test_the_default_lifetime_is_the_in_memory_one(engine: AsyncEngine) -> None:
    clock = Clock()
    granted = await SqlApprovals(engine, clock=clock).grant(ALICE, plan_of(1))
    assert granted.expires_at == clock.now + DEFAULT_TTL_S


@pytest.mark.parametrize("token", [None, ""], ids=["none", "empty"])
async def test_no_token_means_approval_is_required(engine: AsyncEngine, token: str | None) -> None:
    with pytest.raises(ConfirmationRequired, match="needs the user's approval"):
        await SqlApprovals(engine).redeem(ALICE, plan_of(1), None, token)


async def test_a_token_from_another_ledger_is_unknown(engine: AsyncEngine) -> None:
    with pytest.raises(ConfirmationRequired, match="unknown"):
        await SqlApprovals(engine).redeem(ALICE, plan_of(1), None, "not-a-granted-token")


async def test_concurrent_redeems_of_one_token_let_exactly_one_win(
    engine: AsyncEngine, database_url: str
) -> None:
    plan = plan_of(1)
    token = (await SqlApprovals(engine).grant(ALICE, plan, {"x": 1})).token
    engines = [open_engine(database_url, pool_size=1) for _ in range(CONTENDERS)]
    won: list[int] = []
    refused: list[str] = []
    start = anyio.Event()

    async def contender(index: int) -> None:
        await start.wait()
        try:
            await SqlApprovals(engines[index]).redeem(ALICE, plan, {"x": 1}, token)
        except ConfirmationRequired as exc:
            refused.append(str(exc))
        else:
            won.append(index)

    try:
        async with anyio.create_task_group() as group:
            for index in range(CONTENDERS):
                group.start_soon(contender, index)
            start.set()
    finally:
        for contender_engine in engines:
            await contender_engine.dispose()
    assert len(won) == 1
    assert len(refused) == CONTENDERS - 1
    assert all("already used" in message for message in refused)
    assert await stored_rows(engine) == []


async def test_a_database_failure_is_a_storage_error_and_approves_nothing(
    database_url: str,
) -> None:
    broken = open_engine(database_url)
    async with broken.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE apiq_approvals RENAME TO apiq_approvals_away"))
    try:
        with pytest.raises(StorageError, match="approvals could not be read or written") as caught:
            await SqlApprovals(broken).redeem(ALICE, plan_of(1), None, "some-token")
        assert caught.value.operation == "approvals.redeem"
        assert not isinstance(caught.value, ConfirmationRequired)
    finally:
        async with broken.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE apiq_approvals_away RENAME TO apiq_approvals"))
        await broken.dispose()
