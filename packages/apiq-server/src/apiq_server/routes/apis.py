"""`/api/apis`: register APIs, test and refresh them, search their endpoints, OAuth connect."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, delete, get, post, put
from litestar.params import Parameter, QueryParameter
from litestar.types import ControllerRouterHandler

from apiq_server.auth.current import CurrentUser
from apiq_server.policy import READERS, USERS, allow
from apiq_server.routes.params import IdempotencyKey, Limit, Offset
from apiq_server.schemas import Envelope, Page, ok
from apiq_server.schemas.apis import (
    ApiCreate,
    ApiDeleted,
    ApiOut,
    ApiTestResult,
    ApiUpdate,
    EndpointOut,
    OAuthCallbackOut,
    OAuthStartIn,
    OAuthStartOut,
)
from apiq_server.services.apis import ApiService
from apiq_server.services.oauth_connect import CALLBACK_PATH, OAuthConnect
from apiq_server.wiring import Services

__all__ = ["handlers"]

ITEM = "/api/apis/{api_id:str}"
TAGS = ["apis"]


@get("/api/apis", opt=allow(READERS), summary="List API connections", tags=TAGS)
async def list_apis(
    services: Services, user: CurrentUser, offset: Offset = 0, limit: Limit = 20
) -> Envelope[Page[ApiOut]]:
    """Your API connections, by name, with their endpoint counts and status."""
    return ok(await ApiService(services).list(user.principal, offset=offset, limit=limit))


@post("/api/apis", opt=allow(USERS), status_code=201, summary="Register an API", tags=TAGS)
async def create_api(
    data: ApiCreate, services: Services, user: CurrentUser, idempotency_key: IdempotencyKey = None
) -> Envelope[ApiOut]:
    """Register an API by its OpenAPI/Swagger description (`specUrl`, or the document in
    `specContent`), with credentials per security scheme (write-only). The same
    `Idempotency-Key` gives the same connection back."""
    service = ApiService(services)
    return ok(await service.create(user.principal, data, key=idempotency_key))


@get(ITEM, opt=allow(READERS), summary="Get an API connection", tags=TAGS)
async def get_api(api_id: str, services: Services, user: CurrentUser) -> Envelope[ApiOut]:
    """One of your API connections."""
    return ok(await ApiService(services).get(user.principal, api_id))


@put(ITEM, opt=allow(USERS), summary="Change an API connection", tags=TAGS)
async def update_api(
    api_id: str, data: ApiUpdate, services: Services, user: CurrentUser
) -> Envelope[ApiOut]:
    """Rename it, choose another server, or replace its credentials."""
    return ok(await ApiService(services).update(user.principal, api_id, data))


@delete(ITEM, opt=allow(USERS), status_code=200, summary="Delete an API connection", tags=TAGS)
async def delete_api(api_id: str, services: Services, user: CurrentUser) -> Envelope[ApiDeleted]:
    """Delete it with its endpoints and credentials; OAuth grants are revoked."""
    return ok(await ApiService(services).delete(user.principal, api_id))


@post(
    ITEM + "/test", opt=allow(USERS), status_code=200, summary="Test an API connection", tags=TAGS
)
async def test_api(api_id: str, services: Services, user: CurrentUser) -> Envelope[ApiTestResult]:
    """Does the API's server answer (any HTTP status counts), and can each credential be
    used (for OAuth: can a token be had)? Updates the connection's status."""
    return ok(await ApiService(services).test(user.principal, api_id))


@post(ITEM + "/refresh", opt=allow(USERS), status_code=200, summary="Re-fetch the spec", tags=TAGS)
async def refresh_api(api_id: str, services: Services, user: CurrentUser) -> Envelope[ApiOut]:
    """Fetch the spec again, bypassing the cache, and re-sync the endpoints."""
    return ok(await ApiService(services).refresh(user.principal, api_id))


@get(ITEM + "/endpoints", opt=allow(READERS), summary="List or search endpoints", tags=TAGS)
async def list_endpoints(
    api_id: str,
    services: Services,
    user: CurrentUser,
    q: Annotated[str | None, Parameter(max_length=500)] = None,
    offset: Offset = 0,
    limit: Limit = 20,
) -> Envelope[Page[EndpointOut]]:
    """The API's operations by path; with `q` (plain English), the matching ones, best first."""
    service = ApiService(services)
    return ok(await service.endpoints(user.principal, api_id, q=q, offset=offset, limit=limit))


@post(
    ITEM + "/oauth/start",
    opt=allow(USERS),
    status_code=200,
    summary="Start OAuth connect",
    tags=TAGS,
)
async def start_oauth(
    api_id: str,
    request: Request[Any, Any, Any],
    services: Services,
    user: CurrentUser,
    data: OAuthStartIn | None = None,
) -> Envelope[OAuthStartOut]:
    """The provider's authorization URL (state and PKCE) to send the browser to; the
    provider sends it back to `GET /api/oauth/callback`."""
    scheme = data.scheme if data is not None else None
    redirect_uri = _callback_url(request, behind_tls=services.settings.behind_tls)
    connect = OAuthConnect(services)
    return ok(await connect.start(user.principal, api_id, scheme, redirect_uri=redirect_uri))


@get(CALLBACK_PATH, opt=allow(USERS), summary="Finish OAuth connect", tags=TAGS)
async def oauth_callback(
    services: Services,
    user: CurrentUser,
    oauth_state: Annotated[str, QueryParameter(name="state", min_length=1, max_length=500)],
    code: Annotated[str | None, Parameter(max_length=4000)] = None,
    error: Annotated[str | None, Parameter(max_length=500)] = None,
) -> Envelope[OAuthCallbackOut]:
    """Where the provider sends the browser back: exchanges the code for tokens (stored
    encrypted) and marks the connection's scheme connected."""
    connect = OAuthConnect(services)
    return ok(await connect.callback(user.principal, state=oauth_state, code=code, error=error))


def _callback_url(request: Request[Any, Any, Any], *, behind_tls: bool) -> str:
    base = str(request.base_url).rstrip("/")
    if behind_tls and base.startswith("http://"):
        base = "https://" + base[len("http://") :]  # the proxy ended TLS; the browser did not
    return base + CALLBACK_PATH


handlers: list[ControllerRouterHandler] = [
    list_apis,
    create_api,
    get_api,
    update_api,
    delete_api,
    test_api,
    refresh_api,
    list_endpoints,
    start_oauth,
    oauth_callback,
]
