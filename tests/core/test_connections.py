"""Connections: server choice, auth kinds, and credentials attached only where they belong."""

from __future__ import annotations

import base64
import importlib.resources
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from apiq.calls import PreparedRequest, build_request
from apiq.catalog import Catalog, build_catalog
from apiq.connections import (
    ApiKeyAuth,
    AuthConfig,
    BasicAuth,
    BearerAuth,
    Connection,
    ServerChoice,
    attach_credentials,
    default_auth_kinds,
    secret_name,
)
from apiq.errors import ApiqError, ConfigurationError, PolicyViolation, SecretNotFound
from apiq.models import Principal
from apiq.redaction import Redactor
from apiq.secrets import MemorySecretStore
from apiq.specs.parse import parse_spec

pytestmark = pytest.mark.anyio

ALICE = Principal(id="alice", tenant="acme")
MALLORY = Principal(id="mallory", tenant="acme")
BASE = "https://api.example.com/v1"
KEY = "canary-apikey-7f3a9c"
TOKEN = "canary-bearer-Zq81xk"
PASSWORD = "canary-pass-w0rd:&=?"


def catalog_of(paths: dict[str, Any] | None = None, **extra: Any) -> Catalog:
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": paths or {},
    }
    document.update(extra)
    return build_catalog(document, source="t.json", name="t")


def op(operation_id: str, **fields: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "responses": {"200": {"description": "ok"}}, **fields}


SCHEMES = {
    "hdr": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "qry": {"type": "apiKey", "in": "query", "name": "api key"},
    "ck": {"type": "apiKey", "in": "cookie", "name": "sid"},
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "basic": {"type": "http", "scheme": "Basic"},
    "oauth": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/t", "scopes": {}}}},
    "oidc": {"type": "openIdConnect", "openIdConnectUrl": "https://id.example.com/.wk"},
    "digest": {"type": "http", "scheme": "digest"},
}

API = catalog_of(
    {
        "/items": {
            "get": op(
                "listItems",
                parameters=[{"name": "q", "in": "query", "schema": {"type": "string"}}],
                security=[{"oauth": []}, {"bearer": []}, {"hdr": []}],
            ),
            "post": op("createItem", security=[{"hdr": [], "basic": []}]),
        },
        "/public": {"get": op("health", security=[])},
        "/anyone": {"get": op("optional", security=[{"hdr": []}, {}])},
        "/default": {"get": op("inherits")},
        "/query": {"get": op("byQuery", security=[{"qry": []}])},
        "/cookie": {"get": op("byCookie", security=[{"ck": []}])},
        "/basic": {"get": op("byBasic", security=[{"basic": []}])},
    },
    servers=[{"url": BASE}],
    components={"securitySchemes": SCHEMES},
    security=[{"bearer": []}],
)


def connection(*configs: AuthConfig, base_url: str = BASE, owner: Principal = ALICE) -> Connection:
    return Connection(
        id="c1",
        tenant=owner.tenant,
        owner_id=owner.id,
        catalog="t",
        base_url=base_url,
        auth={config.scheme: config for config in configs},
    )


HDR = ApiKeyAuth("hdr", secret_name("c1", "hdr", "api_key"))
QRY = ApiKeyAuth("qry", secret_name("c1", "qry", "api_key"))
CK = ApiKeyAuth("ck", secret_name("c1", "ck", "api_key"))
BEARER = BearerAuth("bearer", secret_name("c1", "bearer", "token"))
BASIC = BasicAuth("basic", "ada", secret_name("c1", "basic", "password"))


async def store() -> MemorySecretStore:
    secrets = MemorySecretStore()
    for config, value in ((HDR, KEY), (QRY, KEY), (CK, KEY), (BEARER, TOKEN), (BASIC, PASSWORD)):
        await secrets.put(ALICE, config.secret_name, value.encode())
    return secrets


async def attach(
    conn: Connection,
    operation_id: str,
    *,
    url: str | None = None,
    principal: Principal = ALICE,
    secrets: MemorySecretStore | None = None,
    redactor: Redactor | None = None,
) -> tuple[PreparedRequest, tuple[str, ...]]:
    request = build_request(API, operation_id, {}, server_url=conn.base_url)
    if url is not None:
        request = PreparedRequest(**{**_fields(request), "url": url})
    return await attach_credentials(
        conn,
        API,
        operation_id,
        request,
        principal=principal,
        secrets=secrets or await store(),
        redactor=redactor,
    )


def _fields(request: PreparedRequest) -> dict[str, Any]:
    names = "method url headers cookies content content_type path_template operation_id"
    return {name: getattr(request, name) for name in names.split()}


# --- server choice -------------------------------------------------------------------------

VARIABLE_API = catalog_of(
    servers=[
        {
            "url": "https://{region}.example.com:{port}/{version}",
            "variables": {
                "region": {"default": "eu", "enum": ["eu", "us"]},
                "port": {"default": "443"},
                "version": {"default": "v2"},
            },
        },
        {"url": "/relative"},
    ]
)


def test_server_defaults_and_variables() -> None:
    assert ServerChoice().resolve(VARIABLE_API) == "https://eu.example.com:443/v2"
    chosen = ServerChoice(variables={"region": "us", "port": "8443"}).resolve(VARIABLE_API)
    assert chosen == "https://us.example.com:8443/v2"


def test_server_enum_is_checked() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServerChoice(variables={"region": "ap"}).resolve(VARIABLE_API)
    assert "'region'" in str(caught.value)
    assert "eu, us" in str(caught.value)


def test_server_unknown_variable_and_index() -> None:
    with pytest.raises(ConfigurationError, match="no variable 'zone'"):
        ServerChoice(variables={"zone": "x"}).resolve(VARIABLE_API)
    with pytest.raises(ConfigurationError, match="out of range"):
        ServerChoice(index=5).resolve(VARIABLE_API)


def test_relative_server_needs_base_url() -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        ServerChoice(index=1).resolve(VARIABLE_API)
    chosen = ServerChoice(index=1, base_url="http://127.0.0.1:8080/relative")
    assert chosen.resolve(VARIABLE_API) == "http://127.0.0.1:8080/relative"
    with pytest.raises(ConfigurationError, match="absolute http"):
        ServerChoice(base_url="ftp://example.com/").resolve(VARIABLE_API)


def test_swagger_without_host_is_relative() -> None:
    document = {"swagger": "2.0", "info": {"title": "s", "version": "1"}, "basePath": "/v2"}
    swagger = build_catalog({**document, "paths": {}}, source="s.json")
    with pytest.raises(ConfigurationError, match="relative"):
        ServerChoice().resolve(swagger)
    assert ServerChoice(base_url="https://h.example/v2").resolve(swagger) == "https://h.example/v2"


def test_petstore_server_and_kinds() -> None:
    raw = importlib.resources.files("apiq.data").joinpath("petstore-oas30.json").read_bytes()
    petstore = parse_spec(raw, source="petstore-oas30.json")
    assert ServerChoice().resolve(petstore) == "http://petstore.swagger.io/v2"
    kinds = default_auth_kinds(petstore)
    assert kinds["api_key"].kind == "api_key"
    assert (kinds["api_key"].location, kinds["api_key"].parameter_name) == ("header", "api_key")
    assert kinds["petstore_auth"].kind == "oauth2"
    assert kinds["petstore_auth"].fields == ()


async def test_petstore_get_pet_by_id_sends_api_key() -> None:
    raw = importlib.resources.files("apiq.data").joinpath("petstore-oas30.json").read_bytes()
    petstore = parse_spec(raw, source="petstore-oas30.json")
    base = ServerChoice().resolve(petstore)
    config = ApiKeyAuth("api_key", secret_name("pets", "api_key", "api_key"))
    conn = Connection("pets", "acme", "alice", petstore.name, base, {"api_key": config})
    secrets = MemorySecretStore()
    await secrets.put(ALICE, config.secret_name, KEY.encode())
    request = build_request(petstore, "getPetById", {"path": {"petId": 7}}, server_url=base)
    sent, carriers = await attach_credentials(
        conn, petstore, "getPetById", request, principal=ALICE, secrets=secrets, redactor=None
    )
    assert ("api_key", KEY) in sent.headers
    assert carriers == ("api_key",)
    # `addPet` accepts only OAuth, which this connection does not configure.
    add = build_request(
        petstore, "addPet", {"body": {"name": "x", "photoUrls": []}}, server_url=base
    )
    with pytest.raises(ConfigurationError, match="petstore_auth"):
        await attach_credentials(conn, petstore, "addPet", add, principal=ALICE, secrets=secrets)


def test_default_auth_kinds_fields() -> None:
    kinds = default_auth_kinds(API)
    assert {name: kind.kind for name, kind in kinds.items()} == {
        "hdr": "api_key",
        "qry": "api_key",
        "ck": "api_key",
        "bearer": "http_bearer",
        "basic": "http_basic",
        "oauth": "oauth2",
        "oidc": "openid_connect",
        "digest": "unsupported",
    }
    assert kinds["basic"].fields == ("username", "password")
    assert kinds["bearer"].fields == ("token",)
    assert kinds["ck"].location == "cookie"
    assert kinds["qry"].fields == ("api_key",)


# --- attaching -----------------------------------------------------------------------------


async def test_api_key_header() -> None:
    sent, carriers = await attach(connection(HDR), "listItems")
    assert ("X-API-Key", KEY) in sent.headers
    assert carriers == ("X-API-Key",)


async def test_api_key_query_is_appended_percent_encoded() -> None:
    conn = connection(QRY)
    request = build_request(API, "byQuery", {}, server_url=BASE)
    request = PreparedRequest(**{**_fields(request), "url": request.url + "?a=1"})
    sent, carriers = await attach_credentials(
        conn, API, "byQuery", request, principal=ALICE, secrets=await store()
    )
    assert sent.url.endswith("?a=1&api%20key=canary-apikey-7f3a9c")
    assert parse_qsl(urlsplit(sent.url).query) == [("a", "1"), ("api key", KEY)]
    assert carriers == ()
    assert sent.headers == ()


async def test_api_key_cookie() -> None:
    sent, carriers = await attach(connection(CK), "byCookie")
    assert sent.cookies == (("sid", KEY),)
    assert carriers == ("Cookie",)


async def test_bearer_and_basic() -> None:
    sent, carriers = await attach(connection(BEARER), "inherits")
    assert ("Authorization", f"Bearer {TOKEN}") in sent.headers
    assert carriers == ("Authorization",)
    sent, _ = await attach(connection(BASIC), "byBasic")
    expected = base64.b64encode(f"ada:{PASSWORD}".encode()).decode()
    assert ("Authorization", f"Basic {expected}") in sent.headers


async def test_first_satisfiable_alternative_wins() -> None:
    # listItems accepts oauth, bearer, hdr in that order; oauth is not configured here.
    sent, carriers = await attach(connection(HDR, BEARER), "listItems")
    assert carriers == ("Authorization",)
    assert all(name != "X-API-Key" for name, _ in sent.headers)


async def test_alternative_needing_two_schemes() -> None:
    _sent, carriers = await attach(connection(HDR, BASIC), "createItem")
    assert set(carriers) == {"X-API-Key", "Authorization"}
    with pytest.raises(ConfigurationError, match=r"hdr \+ basic"):
        await attach(connection(HDR), "createItem")


async def test_no_auth_operations_send_nothing() -> None:
    for op_id, conn in (("health", connection(HDR, BEARER)), ("optional", connection())):
        request = build_request(API, op_id, {}, server_url=BASE)
        sent, carriers = await attach(conn, op_id)
        assert sent == request
        assert carriers == ()


async def test_missing_config_lists_accepted_schemes() -> None:
    with pytest.raises(ConfigurationError) as caught:
        await attach(connection(CK), "listItems")
    message = str(caught.value)
    assert "listItems" in message
    assert "oauth or bearer or hdr" in message
    assert "ck" in message


async def test_config_kind_must_match_scheme() -> None:
    wrong = BearerAuth("hdr", secret_name("c1", "hdr", "token"))
    with pytest.raises(
        ConfigurationError, match="scheme is api_key, but the connection configures BearerAuth"
    ):
        await attach(connection(wrong), "listItems")


async def test_other_host_or_port_or_scheme_is_refused() -> None:
    for url in (
        "https://evil.example.com/v1/items",
        "https://api.example.com:8443/v1/items",
        "http://api.example.com/v1/items",
    ):
        with pytest.raises(PolicyViolation, match="refusing to attach"):
            await attach(connection(BEARER), "listItems", url=url)
    # The default port written out is the same origin.
    sent, _ = await attach(connection(BEARER), "listItems", url="https://API.example.com:443/v1/x")
    assert ("Authorization", f"Bearer {TOKEN}") in sent.headers


async def test_principal_isolation() -> None:
    secrets = await store()
    # Mallory's own connection with Alice's secret names finds nothing of Alice's.
    with pytest.raises(SecretNotFound):
        await attach(
            connection(BEARER, owner=MALLORY), "inherits", principal=MALLORY, secrets=secrets
        )
    # Alice's connection cannot be used by Mallory at all.
    with pytest.raises(PolicyViolation, match="another principal"):
        await attach(connection(BEARER), "inherits", principal=MALLORY, secrets=secrets)


async def test_redactor_masks_attached_secrets() -> None:
    redactor = Redactor(hmac_key=b"k" * 32)
    sent, _ = await attach(connection(HDR, BASIC), "createItem", redactor=redactor)
    sent2, _ = await attach(connection(BEARER), "inherits", redactor=redactor)
    text = redactor.mask_text(repr(sent) + repr(sent2))
    for secret in (KEY, TOKEN, PASSWORD, base64.b64encode(f"ada:{PASSWORD}".encode()).decode()):
        assert secret not in text


async def test_unusable_stored_values() -> None:
    secrets = await store()
    await secrets.put(ALICE, BEARER.secret_name, b"canary\r\nX-Evil: 1")
    with pytest.raises(ConfigurationError, match="control characters") as caught:
        await attach(connection(BEARER), "inherits", secrets=secrets)
    assert "canary" not in str(caught.value)
    await secrets.put(ALICE, BEARER.secret_name, b"\xffcanary")
    with pytest.raises(ConfigurationError, match="UTF-8"):
        await attach(connection(BEARER), "inherits", secrets=secrets)


@pytest.mark.parametrize("char", [chr(c) for c in (*range(0x20), 0x7F)])
async def test_every_control_character_in_a_stored_value_is_refused(char: str) -> None:
    secrets = await store()
    await secrets.put(ALICE, BEARER.secret_name, f"canary{char}tail".encode())
    with pytest.raises(ConfigurationError, match="control characters"):
        await attach(connection(BEARER), "inherits", secrets=secrets)


async def test_a_replaced_or_deleted_credential_is_never_used_again() -> None:
    # Credentials are read from the store on every call: nothing keeps an old value.
    secrets = await store()
    sent, _ = await attach(connection(BEARER), "inherits", secrets=secrets)
    assert ("Authorization", f"Bearer {TOKEN}") in sent.headers
    await secrets.put(ALICE, BEARER.secret_name, b"rotated-token-9f2c")
    sent, _ = await attach(connection(BEARER), "inherits", secrets=secrets)
    assert ("Authorization", "Bearer rotated-token-9f2c") in sent.headers
    await secrets.delete(ALICE, BEARER.secret_name)
    with pytest.raises(SecretNotFound):
        await attach(connection(BEARER), "inherits", secrets=secrets)


def test_connection_validation() -> None:
    with pytest.raises(ConfigurationError, match="connection id"):
        Connection("a/b", "t", "o", "t", BASE)
    with pytest.raises(ConfigurationError, match="must start with"):
        Connection("c1", "t", "o", "t", BASE, {"hdr": ApiKeyAuth("hdr", "other/hdr/api_key")})
    with pytest.raises(ConfigurationError, match="configures scheme"):
        Connection("c1", "t", "o", "t", BASE, {"x": HDR})
    with pytest.raises(ConfigurationError, match="RFC 7617"):
        Connection(
            "c1", "t", "o", "t", BASE, {"basic": BasicAuth("basic", "a:b", BASIC.secret_name)}
        )
    with pytest.raises(ConfigurationError, match="absolute http"):
        Connection("c1", "t", "o", "t", "/relative")


async def test_other_catalog_refused() -> None:
    conn = Connection("c1", "acme", "alice", "other", BASE, {"bearer": BEARER})
    request = build_request(API, "inherits", {}, server_url=BASE)
    with pytest.raises(ConfigurationError, match="for API 'other'"):
        await attach_credentials(
            conn, API, "inherits", request, principal=ALICE, secrets=await store()
        )


async def test_no_secret_in_any_error() -> None:
    secrets = await store()
    failures: list[ApiqError] = []
    cases: list[tuple[Connection, str, dict[str, Any]]] = [
        (connection(HDR, BEARER, BASIC), "listItems", {"url": "https://evil.example/v1/items"}),
        (connection(BEARER), "inherits", {"principal": MALLORY}),
        (connection(BEARER, owner=MALLORY), "inherits", {"principal": MALLORY}),
        (connection(CK), "listItems", {}),
    ]
    for conn, op_id, kwargs in cases:
        with pytest.raises(ApiqError) as caught:
            await attach(conn, op_id, secrets=secrets, **kwargs)
        failures.append(caught.value)
    for error in failures:
        for secret in (KEY, TOKEN, PASSWORD):
            assert secret not in str(error)
            assert secret not in repr(error)
