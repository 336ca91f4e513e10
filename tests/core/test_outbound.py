"""`Outbound.call` against real loopback services: credentials, audit, masking, refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from apiq.audit.memory import MemoryAuditSink
from apiq.calls import Caller
from apiq.calls.outbound import Outbound
from apiq.calls.rate_limit import RateLimiter
from apiq.catalog import Catalog, build_catalog
from apiq.connections import ApiKeyAuth, Connection, OAuthClient, OAuthConfig, secret_name
from apiq.egress import EgressPolicy, egress_client
from apiq.errors import ExecutionError, InvalidArguments
from apiq.models import AuditEvent, AuditQuery, Principal
from apiq.redaction import Redactor
from apiq.secrets import MemorySecretStore
from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService
from tests.services.echo import EchoService
from tests.services.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer

pytestmark = pytest.mark.anyio

ALICE = Principal(id="alice", tenant="acme")
ECHO_KEY = "echo-key-canary-91b7e2"


class FailingSink(MemoryAuditSink):
    """An audit sink whose writes fail, as a full disk or a dead database would."""

    async def record(self, event: AuditEvent) -> None:
        raise OSError("audit storage unavailable")


async def no_sleep(seconds: float) -> None:
    return None


def echo_catalog() -> Catalog:
    get = {
        "security": [{"key": []}],
        "responses": {"200": {"description": "ok"}},
    }
    document = {
        "openapi": "3.0.3",
        "info": {"title": "echo", "version": "1"},
        "components": {
            "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
        },
        "paths": {
            "/echo/header/{name}": {
                "get": {
                    **get,
                    "operationId": "echoHeader",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                }
            },
            "/echo/status/{code}": {
                "get": {
                    **get,
                    "operationId": "echoStatus",
                    "parameters": [
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                }
            },
        },
    }
    return build_catalog(document, source="echo.json", name="echo")


@pytest.fixture
def oauth_server() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture
async def store() -> MemorySecretStore:
    return MemorySecretStore()


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(hmac_key=b"outbound-test-hmac-key-0123456789")


async def all_events(sink: MemoryAuditSink) -> list[AuditEvent]:
    return list(reversed(await sink.query(AuditQuery(limit=10_000))))


@pytest.fixture
async def petstore_client(petstore_service: PetstoreService) -> AsyncIterator[httpx.AsyncClient]:
    async with egress_client(petstore_service.egress_policy) as client:
        yield client


async def petstore_setup(
    service: PetstoreService, store: MemorySecretStore
) -> tuple[Catalog, Connection]:
    catalog = build_catalog(service.spec(), source="petstore.json", name="petstore")
    name = secret_name("pets", "api_key", "api_key")
    await store.put(ALICE, name, PETSTORE_API_KEY.encode())
    connection = Connection(
        id="pets",
        tenant="acme",
        owner_id="alice",
        catalog="petstore",
        base_url=service.base_url,
        auth={"api_key": ApiKeyAuth("api_key", name)},
    )
    return catalog, connection


async def test_get_pet_by_id_sends_the_api_key_and_returns_the_pet(
    petstore_service: PetstoreService,
    petstore_client: httpx.AsyncClient,
    store: MemorySecretStore,
    redactor: Redactor,
) -> None:
    catalog, connection = await petstore_setup(petstore_service, store)
    sink = MemoryAuditSink()
    outbound = Outbound(Caller(petstore_client), secrets=store, audit=sink, redactor=redactor)
    result = await outbound.call(ALICE, connection, catalog, "getPetById", {"path": {"petId": 1}})
    assert result.status_code == 200
    assert isinstance(result.body, dict)
    assert result.body["name"] == "doggie"
    assert (result.method, result.url) == ("GET", f"{petstore_service.base_url}/pet/1")
    [sent] = petstore_service.requests
    assert (sent.method, sent.path) == ("GET", "/v2/pet/1")
    assert sent.headers["api_key"] == PETSTORE_API_KEY

    inventory = await outbound.call(ALICE, connection, catalog, "getInventory", {})
    assert inventory.status_code == 200  # the service refuses a missing or wrong key with 401

    actions = [event.action for event in await all_events(sink)]
    assert actions[:3] == ["call.started", "call.credential_use", "call.attempt"]
    use = (await all_events(sink))[1]
    assert use.detail["schemes"] == ["api_key"]
    assert use.detail["fingerprints"] == [redactor.fingerprint(PETSTORE_API_KEY)]
    assert PETSTORE_API_KEY not in repr(await all_events(sink))


async def test_unknown_pet_is_a_404_result_and_bad_arguments_send_nothing(
    petstore_service: PetstoreService,
    petstore_client: httpx.AsyncClient,
    store: MemorySecretStore,
    redactor: Redactor,
) -> None:
    catalog, connection = await petstore_setup(petstore_service, store)
    sink = MemoryAuditSink()
    outbound = Outbound(Caller(petstore_client), secrets=store, audit=sink, redactor=redactor)
    result = await outbound.call(ALICE, connection, catalog, "getPetById", {"path": {"petId": 999}})
    assert result.status_code == 404
    attempt = [e for e in await all_events(sink) if e.action == "call.attempt"]
    assert [(e.outcome, e.detail["status"]) for e in attempt] == [("error", 404)]

    petstore_service.reset()
    with pytest.raises(InvalidArguments) as caught:
        await outbound.call(ALICE, connection, catalog, "getPetById", {"path": {"petId": "x"}})
    assert any("petId" in error for error in caught.value.errors)
    assert petstore_service.requests == []


async def test_add_pet_posts_json_with_an_oauth_client_credentials_token(
    petstore_service: PetstoreService,
    oauth_server: OAuthServer,
    store: MemorySecretStore,
    redactor: Redactor,
) -> None:
    catalog, connection = await petstore_setup(petstore_service, store)
    client_secret = secret_name("pets", "petstore_auth", "client_secret")
    await store.put(ALICE, client_secret, CLIENT_SECRET.encode())
    config = OAuthConfig(
        scheme="petstore_auth",
        client_id=CLIENT_ID,
        token_url=oauth_server.url("/token"),
        client_secret_name=client_secret,
    )
    allow = frozenset({("127.0.0.1", petstore_service.port), ("127.0.0.1", oauth_server.port)})
    sink = MemoryAuditSink()
    async with egress_client(EgressPolicy(allow=allow)) as client:
        oauth = OAuthClient(client, secrets=store, redactor=redactor)
        outbound = Outbound(
            Caller(client),
            secrets=store,
            audit=sink,
            redactor=redactor,
            oauth=oauth,
            oauth_configs={"pets": {"petstore_auth": config}},
        )
        pet: dict[str, Any] = {"id": 77, "name": "bolt", "photoUrls": [], "status": "available"}
        result = await outbound.call(ALICE, connection, catalog, "addPet", {"body": pet})
        again = await outbound.call(ALICE, connection, catalog, "addPet", {"body": pet})
    assert result.status_code == 200
    assert again.status_code == 200
    assert isinstance(result.body, dict)
    assert result.body["name"] == "bolt"
    assert petstore_service.pets[77]["name"] == "bolt"
    [token] = oauth_server.access_tokens
    assert oauth_server.token_requests == 1  # the stored token is reused
    posts = [r for r in petstore_service.requests if r.method == "POST"]
    assert [r.headers["authorization"] for r in posts] == [f"Bearer {token}"] * 2
    assert posts[0].headers["content-type"] == "application/json"
    uses = [e for e in await all_events(sink) if e.action == "call.credential_use"]
    assert uses[0].detail["schemes"] == ["petstore_auth"]
    assert token not in repr(await all_events(sink))


async def test_an_echoed_credential_is_masked_in_the_result(
    echo_service: EchoService, store: MemorySecretStore, redactor: Redactor
) -> None:
    name = secret_name("echo", "key", "api_key")
    await store.put(ALICE, name, ECHO_KEY.encode())
    connection = Connection(
        "echo", "acme", "alice", "echo", echo_service.base_url, {"key": ApiKeyAuth("key", name)}
    )
    async with egress_client(echo_service.egress_policy) as client:
        outbound = Outbound(
            Caller(client), secrets=store, audit=MemoryAuditSink(), redactor=redactor
        )
        result = await outbound.call(
            ALICE, connection, echo_catalog(), "echoHeader", {"path": {"name": "X-API-Key"}}
        )
    assert echo_service.requests[0].headers["x-api-key"] == ECHO_KEY  # it really was sent
    assert result.body == {"name": "X-API-Key", "value": redactor.marker(ECHO_KEY)}
    assert ECHO_KEY not in repr(result)


async def test_the_result_url_masks_sensitive_query_arguments(
    echo_service: EchoService, store: MemorySecretStore, redactor: Redactor
) -> None:
    # A password passed as an ordinary argument was never registered as a secret: the
    # URL shown in results and execution state still hides it, by its parameter name.
    document = {
        "openapi": "3.0.3",
        "info": {"title": "echo", "version": "1"},
        "paths": {
            "/login": {
                "get": {
                    "operationId": "login",
                    "parameters": [
                        {"name": "user", "in": "query", "schema": {"type": "string"}},
                        {"name": "password", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    catalog = build_catalog(document, source="login.json", name="login")
    connection = Connection("login", "acme", "alice", "login", echo_service.base_url)
    async with egress_client(echo_service.egress_policy) as client:
        outbound = Outbound(
            Caller(client), secrets=store, audit=MemoryAuditSink(), redactor=redactor
        )
        arguments = {"query": {"user": "alice", "password": "hunter2-secret"}}
        result = await outbound.call(ALICE, connection, catalog, "login", arguments)
    assert "password=hunter2-secret" in echo_service.requests[0].raw_query  # it was sent
    assert "hunter2-secret" not in result.url
    assert "user=alice" in result.url


async def test_each_attempt_is_audited_with_the_path_template(
    echo_service: EchoService, store: MemorySecretStore, redactor: Redactor
) -> None:
    name = secret_name("echo", "key", "api_key")
    await store.put(ALICE, name, ECHO_KEY.encode())
    connection = Connection(
        "echo", "acme", "alice", "echo", echo_service.base_url, {"key": ApiKeyAuth("key", name)}
    )
    sink = MemoryAuditSink()
    async with egress_client(echo_service.egress_policy) as client:
        caller = Caller(client, sleep=no_sleep, random=lambda: 0.0)
        outbound = Outbound(caller, secrets=store, audit=sink, redactor=redactor)
        result = await outbound.call(
            ALICE, connection, echo_catalog(), "echoStatus", {"path": {"code": 503}}
        )
    assert result.status_code == 503
    assert len(result.attempts) == 3
    attempts = [e for e in await all_events(sink) if e.action == "call.attempt"]
    assert [e.detail["attempt"] for e in attempts] == [1, 2, 3]
    for event in attempts:
        assert event.detail["method"] == "GET"
        assert event.detail["host"] == f"127.0.0.1:{echo_service.port}"
        assert event.detail["path_template"] == "/echo/status/{code}"
        assert event.detail["status"] == 503
        assert isinstance(event.detail["duration_ms"], float)
        assert event.outcome == "error"
        assert event.actor == "alice"
        assert event.tenant == "acme"
    assert "/echo/status/503" not in repr(await all_events(sink))


async def test_a_failing_audit_sink_stops_the_call_before_anything_is_sent(
    echo_service: EchoService, store: MemorySecretStore, redactor: Redactor
) -> None:
    name = secret_name("echo", "key", "api_key")
    await store.put(ALICE, name, ECHO_KEY.encode())
    connection = Connection(
        "echo", "acme", "alice", "echo", echo_service.base_url, {"key": ApiKeyAuth("key", name)}
    )
    async with egress_client(echo_service.egress_policy) as client:
        outbound = Outbound(Caller(client), secrets=store, audit=FailingSink(), redactor=redactor)
        with pytest.raises(ExecutionError) as caught:
            await outbound.call(
                ALICE, connection, echo_catalog(), "echoHeader", {"path": {"name": "a"}}
            )
    assert "call.started" in str(caught.value)
    assert "not sent" in str(caught.value)
    assert caught.value.operation_id == "echoHeader"
    assert len(echo_service.requests) == 0


async def test_the_rate_limiter_is_asked_before_each_call_and_told_the_headers(
    echo_service: EchoService, store: MemorySecretStore, redactor: Redactor
) -> None:
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    name = secret_name("echo", "key", "api_key")
    await store.put(ALICE, name, ECHO_KEY.encode())
    connection = Connection(
        "echo", "acme", "alice", "echo", echo_service.base_url, {"key": ApiKeyAuth("key", name)}
    )
    limiter = RateLimiter(rate=1.0, burst=1, clock=lambda: 100.0, sleep=record_sleep)
    sink = MemoryAuditSink()
    async with egress_client(echo_service.egress_policy) as client:
        outbound = Outbound(
            Caller(client), secrets=store, audit=sink, redactor=redactor, rate_limiter=limiter
        )
        for _ in range(2):
            result = await outbound.call(
                ALICE, connection, echo_catalog(), "echoHeader", {"path": {"name": "a"}}
            )
            assert result.status_code == 200
    assert waits == [1.0]  # burst 1 at 1/s: the second call waited one interval
    attempts = [e for e in await all_events(sink) if e.action == "call.attempt"]
    assert [e.detail["rate_limited_s"] for e in attempts] == [0.0, 1.0]
    assert len(echo_service.requests) == 2
