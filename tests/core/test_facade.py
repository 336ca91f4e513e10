"""The whole SDK path through `Apiq`: connect, search, plan, review, approve, execute, run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from apiq import Apiq, ConfigurationError, ConfirmationRequired
from apiq.egress import EgressPolicy
from apiq.models import AuditQuery, ExecutionEvent
from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService

pytestmark = pytest.mark.anyio


@pytest.fixture
def service() -> Iterator[PetstoreService]:
    with PetstoreService() as petstore:
        yield petstore


@pytest.fixture
async def apiq(service: PetstoreService) -> AsyncIterator[Apiq]:
    policy = EgressPolicy(allow=frozenset({("127.0.0.1", service.port)}))
    async with Apiq(egress=policy) as client:
        await client.connect(service.spec_url, name="pets", auth={"api_key": PETSTORE_API_KEY})
        yield client


async def test_connect_search_plan_approve_execute(apiq: Apiq, service: PetstoreService) -> None:
    hits = await apiq.search("find pets by status")
    assert hits[0].operation_id == "findPetsByStatus"
    assert hits[0].source == "pets"
    plan = await apiq.plan("find the available pets and order the first one")
    review = apiq.review(plan)
    assert [(s.method, s.changes_state) for s in review.steps] == [("GET", False), ("POST", True)]
    assert review.steps[0].url == f"{service.base_url}/pet/findByStatus"
    assert "changes state" in review._repr_html_()
    with pytest.raises(ConfirmationRequired):
        await apiq.execute(plan)
    assert not [r for r in service.requests if r.path.startswith("/v2")]
    seen: list[ExecutionEvent] = []
    state = await apiq.execute(plan, approval=await apiq.approve(plan), on_event=seen.append)
    assert state.status == "succeeded", state.error
    assert seen[0].kind == "execution.started"
    assert [(r.method, r.path) for r in service.requests if r.path.startswith("/v2")] == [
        ("GET", "/v2/pet/findByStatus"),
        ("POST", "/v2/store/order"),
    ]
    events = await apiq.audit.query(AuditQuery(limit=200))
    actions = {event.action for event in events}
    assert {"plan.created", "plan.approved", "execution.started", "call.attempt"} <= actions
    assert PETSTORE_API_KEY not in repr(events)


async def test_run_refuses_an_unapproved_state_change_and_runs_reads(
    apiq: Apiq, service: PetstoreService
) -> None:
    with pytest.raises(ConfirmationRequired, match="not approved"):
        await apiq.run("place an order for pet 2")
    assert not [r for r in service.requests if r.path.startswith("/v2")]
    state = await apiq.run("find the sold pets")
    assert state.status == "succeeded"
    looked = []
    state = await apiq.run("place an order for pet 2", approve=lambda p: looked.append(p) or True)
    assert state.status == "succeeded"
    assert len(looked) == 1


async def test_connect_refuses_a_credential_for_an_unknown_or_oauth_scheme(
    service: PetstoreService,
) -> None:
    policy = EgressPolicy(allow=frozenset({("127.0.0.1", service.port)}))
    async with Apiq(egress=policy) as apiq:
        with pytest.raises(ConfigurationError, match="no security scheme 'token'"):
            await apiq.connect(service.spec_url, auth={"token": "x"})
        with pytest.raises(ConfigurationError, match="OAuthClient"):
            await apiq.connect(service.spec_url, auth={"petstore_auth": "x"})
        with pytest.raises(ConfigurationError, match="connect an API first"):
            await apiq.plan("find pets")


async def test_from_env_picks_the_language_model_planner_only_when_configured() -> None:
    pytest.importorskip("apiq_adapters.openai", reason="apiq-adapters[openai] not installed")
    environ = {"APIQ_LLM_BASE_URL": "http://127.0.0.1:9/v1", "APIQ_LLM_MODEL": "m"}
    async with Apiq.from_env(environ) as configured, Apiq.from_env({}) as offline:
        assert type(configured.planner).__name__ == "OpenAIPlanner"
        assert type(offline.planner).__name__ == "OfflinePlanner"
