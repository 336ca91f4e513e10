"""The role x route matrix, generated from the app's own route table.

The table comes from the app built in-process (`create_app`, lifespan never started):
every HTTP route handler and method with its declared policy. A route without a policy
fails the first test (and `check_policies` refuses to start such an app). The matrix then
sends every (route, method) to the running server as each role (anonymous, USER, AUDITOR,
ADMIN), path parameters filled with fresh random ids and an empty body, and checks the
answer against the policy:

- anonymous: 401 unless the route is PUBLIC;
- a role the policy leaves out: 403;
- a role the policy admits: anything but 401, 403 or a server error (404, 400, 422 are
  the usual answers to random ids and empty bodies);
- AUDITOR is read-only: no 2xx on a write method except its own account's routes.

`route_table` is shared with test_isolation.py, which sends another user's ids.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar, get
from litestar.exceptions import LitestarDeprecationWarning
from litestar.handlers.base import BaseRouteHandler
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from apiq_server.app import create_app
from apiq_server.plugin import ApiqPlugin
from apiq_server.policy import DOCUMENTATION_PREFIX, Policy, Role, check_policies, policy_of
from apiq_server.settings import Settings
from apiq_server.wiring import Services
from tests.server.harness import Api, ServerProcess

ROLES = ("anonymous", Role.USER, Role.AUDITOR, Role.ADMIN)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
ACCOUNT_ROUTES = frozenset({"/api/auth/login", "/api/auth/logout", "/api/auth/password"})
"""Write routes an AUDITOR may use: they act on its own session, never on data."""
ENDS_SESSION = "/api/auth/logout"
"""Sent last by the matrix: a 2xx ends the session every other request relies on."""


@dataclass(frozen=True, slots=True)
class RouteCase:
    """One method of one route, as the app declares it."""

    method: str
    path: str
    """The OpenAPI form of the path (`/api/apis/{api_id}`)."""
    parameters: Mapping[str, type]
    policy: Policy | None
    handler: str
    in_schema: bool
    generated: bool
    """Litestar's own OPTIONS answer (the `Allow` header), added to every route."""

    def fill(self, ids: Mapping[str, str] | None = None) -> str:
        """The path with each parameter set from `ids`, else a fresh random value."""
        values = {
            name: (ids or {}).get(name) or (str(uuid.uuid4().int % 10**9) if kind is int
                                            else uuid.uuid4().hex)
            for name, kind in self.parameters.items()
        }  # fmt: skip
        return self.path.format(**values)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@contextmanager
def litestar_deprecations_ignored() -> Iterator[None]:
    """Litestar 2.23+ deprecates what every handler does (`services`/`user` taken by name
    without `NamedDependency[...]`, `data` without a body marker) and warns while an app is
    built and started; reported to the lead. The running servers are unaffected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LitestarDeprecationWarning)
        yield


def build_app() -> Litestar:
    """The app as `apiq serve` builds it; nothing is opened until its lifespan runs."""
    with litestar_deprecations_ignored():
        return create_app(
            Settings(database_url="sqlite:///never-opened.sqlite", mode="development")
        )


@cache
def route_table() -> tuple[RouteCase, ...]:
    """Every (route, method) of the app, documentation pages left out, sorted."""
    cases = []
    for route in build_app().routes:
        assert isinstance(route, HTTPRoute), f"a route that is not HTTP: {route.path}"
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                cases.append(
                    RouteCase(
                        method=method,
                        path=route.path_format,
                        parameters={n: p.type for n, p in route.path_parameters.items()},
                        policy=policy_of(handler),
                        handler=handler.handler_name,
                        in_schema=handler.resolve_include_in_schema(),
                        generated=_generated_options(handler),
                    )
                )
    return tuple(sorted((c for c in cases if not _documentation(c)), key=_order))


def _generated_options(handler: BaseRouteHandler) -> bool:
    """Whether `handler` is the OPTIONS handler Litestar adds to each route: it answers the
    `Allow` header and runs no code of ours, so it carries no policy of ours either."""
    methods: set[str] = getattr(handler, "http_methods", set())
    return methods == {"OPTIONS"} and handler.fn.__module__ == "litestar.routes.http"


def _documentation(case: RouteCase) -> bool:
    return case.path == DOCUMENTATION_PREFIX or case.path.startswith(DOCUMENTATION_PREFIX + "/")


def _order(case: RouteCase) -> tuple[bool, str, str]:
    return (case.path == ENDS_SESSION, case.path, case.method)


def test_every_route_declares_a_policy() -> None:
    table = route_table()
    missing = [str(case) for case in table if case.policy is None and not case.generated]
    assert not missing, f"routes without an access policy: {missing}"
    paths = {case.path for case in table}
    for expected in ("/api/apis", "/api/workflows/{workflow_id}", "/api/logs", "/api/health"):
        assert expected in paths, f"{expected} missing from the route table"


def test_only_the_documentation_is_exempt() -> None:
    exempt = [
        f"{method} {route.path}"
        for route in build_app().routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        for method in handler.http_methods
        if policy_of(handler) is None and not _generated_options(handler)
    ]
    assert all(item.split(" ", 1)[1].startswith(DOCUMENTATION_PREFIX) for item in exempt), (
        f"routes without a policy outside {DOCUMENTATION_PREFIX}: {exempt}"
    )


def test_check_policies_refuses_a_handler_without_one() -> None:
    @get("/api/forgotten", sync_to_thread=False)
    def forgotten() -> None:
        """A handler that declares no policy."""

    with pytest.raises(RuntimeError, match=r"GET /api/forgotten"):
        check_policies([("/api/forgotten", forgotten)])


def test_the_app_starts_and_refuses_to_with_a_route_without_a_policy(tmp_path: Path) -> None:
    @get("/api/forgotten", sync_to_thread=False)
    def forgotten() -> None:
        """A handler that declares no policy."""

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'never-opened.sqlite'}")
    # Services are never used: startup checks the policies before anything is served.
    unused = cast(Services, object())
    with litestar_deprecations_ignored():
        with TestClient(Litestar(plugins=[ApiqPlugin(settings, unused)])):
            pass  # the real route table passes its own check
        app = Litestar(route_handlers=[forgotten], plugins=[ApiqPlugin(settings, unused)])
        refused = pytest.RaisesExc(
            RuntimeError, match="without an access policy: GET /api/forgotten"
        )
        with (
            pytest.RaisesGroup(refused, allow_unwrapped=True, flatten_subgroups=True),
            TestClient(app),
        ):
            pass


def test_the_openapi_document_lists_every_route() -> None:
    documented = {
        (method.upper(), path)
        for path, item in (build_app().openapi_schema.paths or {}).items()
        for method in ("get", "put", "post", "delete", "patch")
        if getattr(item, method, None) is not None
    }
    expected = {
        (case.method, case.path)
        for case in route_table()
        if case.in_schema and case.method not in ("OPTIONS", "HEAD")
    }
    assert expected - documented == set(), "routes missing from /schema/openapi.json"


def test_the_auditor_is_read_only_by_policy() -> None:
    writes = [
        str(case)
        for case in route_table()
        if case.method not in READ_METHODS
        and case.policy is not None
        and (case.policy.public or Role.AUDITOR in case.policy.roles)
        and case.path not in ACCOUNT_ROUTES | {"/api/auth/register"}
    ]
    assert not writes, f"write routes open to AUDITOR: {writes}"


def test_role_route_matrix(
    server: ServerProcess, admin: Api, alice: Api, auditor: Api, anonymous: Api
) -> None:
    clients: dict[str, Api] = {
        "anonymous": anonymous,
        Role.USER: alice,
        Role.AUDITOR: auditor,
        Role.ADMIN: admin,
    }
    problems = []
    checked = 0
    for case in route_table():
        if case.method in ("OPTIONS", "HEAD"):
            continue  # Litestar's own answers (Allow, CORS preflight); they run no handler
        assert case.policy is not None
        for role in ROLES:
            answer = send(clients[role], case)
            checked += 1
            problem = _judge(case, case.policy, role, answer)
            if problem:
                problems.append(
                    f"{case} as {role}: {answer.status} ({problem}) {answer.text[:200]}"
                )
    assert checked >= 4 * 20, f"only {checked} requests: is the route table complete?"
    assert not problems, "\n".join(problems)


def _judge(case: RouteCase, policy: Policy, role: str, answer: Answer) -> str | None:
    status = answer.status
    if status >= 500:
        return "server error"
    if role == "anonymous":
        if policy.public:
            return "refused a public route" if status in (401, 403) else None
        if (
            status == 303
            and not case.path.startswith("/api/")
            and answer.location.startswith("/login")
        ):
            return None  # a dashboard page sends the browser to the login page
        return None if status == 401 else "expected 401"
    admitted = policy.public or Role(role) in policy.roles
    if not admitted:
        return None if status == 403 else "expected 403"
    if status in (401, 403):
        return "refused a role the policy admits"
    if role == Role.AUDITOR and case.method not in READ_METHODS and 200 <= status < 300:
        return None if case.path in ACCOUNT_ROUTES else "AUDITOR wrote"
    return None


@dataclass(frozen=True, slots=True)
class Answer:
    """What `send` got back: the status, up to 4 KiB of the body, the redirect target."""

    status: int
    text: str
    location: str


def send(api: Api, case: RouteCase, ids: Mapping[str, str] | None = None,
         body: Any = None) -> Answer:  # fmt: skip
    """Send `case` as `api`'s user (an event stream is never waited on)."""
    headers = {"Authorization": f"Bearer {api.token}"} if api.token else {}
    kwargs: dict[str, Any] = {}
    if case.method in BODY_METHODS:
        kwargs["json"] = {} if body is None else body
    url = api.base_url + case.fill(ids)
    with api.client.stream(case.method, url, headers=headers, **kwargs) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            text = _first_bytes(response)
        else:
            text = response.read().decode("utf-8", "replace")[:4096]
        return Answer(response.status_code, text, response.headers.get("location", ""))


def _first_bytes(response: httpx.Response) -> str:
    for chunk in response.iter_bytes():
        return chunk.decode("utf-8", "replace")[:4096]
    return ""
