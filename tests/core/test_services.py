"""The loopback test services behave as their docstrings say, over real HTTP with httpx.

Later tests lean on these services (retries, auth, redaction, redirects), so each promised
status, body, header and recording is pinned here; the last tests drive APIQ's own
`send_following_redirects` through the redirect trap.
"""

from __future__ import annotations

import base64
from email.utils import parsedate_to_datetime

import httpx
import pytest

from apiq.egress import egress_client, send_following_redirects
from apiq.testing.petstore import PETSTORE_API_KEY, PETSTORE_USER, PetstoreService
from tests.services.echo import EchoService
from tests.services.flaky import FlakyService
from tests.services.redirect_trap import RedirectTrap

NEW_PET = {"name": "bolt", "photoUrls": ["https://example.com/bolt.png"], "status": "pending"}


def ids(response: httpx.Response) -> list[int]:
    return [pet["id"] for pet in response.json()]


# --- Petstore -------------------------------------------------------------------------------


def test_petstore_serves_the_spec_server_path(petstore_service: PetstoreService) -> None:
    assert petstore_service.base_url == f"http://127.0.0.1:{petstore_service.port}/v2"
    assert petstore_service.spec()["servers"] == [{"url": petstore_service.base_url}]
    assert httpx.get(f"http://127.0.0.1:{petstore_service.port}/pet/1").status_code == 404
    assert httpx.get(petstore_service.url("/pet/1")).json()["name"] == "doggie"


def test_find_by_status_accepts_repeated_and_comma_forms(
    petstore_service: PetstoreService,
) -> None:
    url = petstore_service.url("/pet/findByStatus")
    repeated = httpx.get(url, params=[("status", "available"), ("status", "pending")])
    comma = httpx.get(url, params={"status": "available,pending"})
    assert repeated.status_code == comma.status_code == 200
    assert ids(repeated) == ids(comma) == [1, 2, 3, 4]
    assert ids(httpx.get(url, params={"status": "sold"})) == [5, 6]
    assert httpx.get(url, params={"status": "lost"}).status_code == 400
    assert httpx.get(url).status_code == 400


def test_find_by_tags(petstore_service: PetstoreService) -> None:
    url = petstore_service.url("/pet/findByTags")
    assert ids(httpx.get(url, params=[("tags", "friendly"), ("tags", "lazy")])) == [1, 5, 6]
    assert ids(httpx.get(url, params={"tags": "guard,nothing"})) == [3]
    assert httpx.get(url).status_code == 400


def test_add_pet_validates_against_the_spec(petstore_service: PetstoreService) -> None:
    url = petstore_service.url("/pet")
    created = httpx.post(url, json=NEW_PET)
    assert created.status_code == 200
    assert created.json() == {"id": 7, **NEW_PET}
    assert httpx.get(petstore_service.url("/pet/7")).json()["name"] == "bolt"
    invalid: object
    for invalid in ({"name": "x"}, {"photoUrls": []}, {**NEW_PET, "status": "lost"}, [1]):
        response = httpx.post(url, json=invalid)
        assert response.status_code == 405, invalid
        assert "invalid Pet" in response.json()["message"]
    not_json = httpx.post(url, content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 405
    assert httpx.post(url, content=b"<pet/>").status_code == 405


def test_update_pet_statuses(petstore_service: PetstoreService) -> None:
    url = petstore_service.url("/pet")
    assert httpx.put(url, json=NEW_PET).status_code == 400  # no id
    assert httpx.put(url, json={**NEW_PET, "id": "one"}).status_code == 400
    assert httpx.put(url, json={**NEW_PET, "id": 99}).status_code == 404
    assert httpx.put(url, json={"id": 1, "name": "x"}).status_code == 405
    updated = httpx.put(url, json={**NEW_PET, "id": 1})
    assert updated.status_code == 200
    assert httpx.get(petstore_service.url("/pet/1")).json()["name"] == "bolt"


def test_pet_by_id_get_form_update_delete(petstore_service: PetstoreService) -> None:
    assert httpx.get(petstore_service.url("/pet/abc")).status_code == 400
    assert httpx.get(petstore_service.url("/pet/99")).status_code == 404
    form = httpx.post(petstore_service.url("/pet/2"), data={"name": "tom", "status": "sold"})
    assert form.status_code == 200
    assert form.json()["name"] == "tom"
    assert form.json()["status"] == "sold"
    assert httpx.post(petstore_service.url("/pet/2"), data={"status": "lost"}).status_code == 405
    assert httpx.post(petstore_service.url("/pet/2"), json={"name": "x"}).status_code == 405
    assert httpx.post(petstore_service.url("/pet/x"), data={"name": "y"}).status_code == 400
    deleted = httpx.delete(petstore_service.url("/pet/2"), headers={"api_key": "k"})
    assert deleted.status_code == 200
    assert httpx.delete(petstore_service.url("/pet/2")).status_code == 404
    assert httpx.delete(petstore_service.url("/pet/two")).status_code == 400
    assert petstore_service.requests[-3].headers["api_key"] == "k"


def test_inventory_needs_the_api_key(petstore_service: PetstoreService) -> None:
    url = petstore_service.url("/store/inventory")
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"api_key": "wrong"}).status_code == 401
    response = httpx.get(url, headers={"api_key": PETSTORE_API_KEY})
    assert response.status_code == 200
    assert response.json() == {"available": 2, "pending": 2, "sold": 2}


def test_orders(petstore_service: PetstoreService) -> None:
    placed = httpx.post(petstore_service.url("/store/order"), json={"petId": 1, "quantity": 2})
    assert placed.status_code == 200
    assert placed.json() == {"id": 1, "petId": 1, "quantity": 2, "status": "placed",
                             "complete": False}  # fmt: skip
    assert httpx.get(petstore_service.url("/store/order/1")).json()["quantity"] == 2
    bad = [{"quantity": "two"}, {"petId": 99}, {"status": "lost"}]
    for order in bad:
        assert httpx.post(petstore_service.url("/store/order"), json=order).status_code == 400
    assert httpx.get(petstore_service.url("/store/order/0")).status_code == 400
    assert httpx.get(petstore_service.url("/store/order/x")).status_code == 400
    assert httpx.delete(petstore_service.url("/store/order/1")).status_code == 200
    assert httpx.get(petstore_service.url("/store/order/1")).status_code == 404
    assert httpx.delete(petstore_service.url("/store/order/1")).status_code == 404


def test_users_login_logout(petstore_service: PetstoreService) -> None:
    user = {"username": "ana", "password": "pw", "email": "ana@example.com"}
    assert httpx.post(petstore_service.url("/user"), json=user).status_code == 200
    assert httpx.post(petstore_service.url("/user"), json={"userStatus": "x"}).status_code == 400
    assert httpx.get(petstore_service.url("/user/ana")).json()["email"] == "ana@example.com"
    assert httpx.get(petstore_service.url("/user/bob")).status_code == 404
    renamed = httpx.put(petstore_service.url("/user/ana"), json={**user, "firstName": "Ana"})
    assert renamed.json()["firstName"] == "Ana"
    assert httpx.put(petstore_service.url("/user/bob"), json=user).status_code == 404
    assert httpx.delete(petstore_service.url("/user/ana")).status_code == 200
    assert httpx.get(petstore_service.url("/user/ana")).status_code == 404
    login = httpx.get(
        petstore_service.url("/user/login"),
        params={"username": PETSTORE_USER[0], "password": PETSTORE_USER[1]},
    )
    assert login.status_code == 200
    assert login.json() == "logged in user session:1"
    assert login.headers["X-Rate-Limit"] == "5000"
    assert "X-Expires-After" in login.headers
    wrong = {"username": "ana", "password": "nope"}
    assert httpx.get(petstore_service.url("/user/login"), params=wrong).status_code == 400
    assert httpx.get(petstore_service.url("/user/login")).status_code == 400
    assert httpx.get(petstore_service.url("/user/logout")).status_code == 200


def test_unknown_methods_and_paths(petstore_service: PetstoreService) -> None:
    patched = httpx.patch(petstore_service.url("/pet"))
    assert patched.status_code == 405
    assert patched.headers["Allow"] == "POST, PUT"
    assert httpx.put(petstore_service.url("/store/inventory")).headers["Allow"] == "GET"
    assert httpx.get(petstore_service.url("/nothing/here")).status_code == 404


def test_petstore_records_requests_and_resets(petstore_service: PetstoreService) -> None:
    httpx.post(petstore_service.url("/pet?trace=1"), json=NEW_PET, headers={"X-Trace": "t"})
    httpx.delete(petstore_service.url("/pet/1"))
    recorded = petstore_service.requests[0]
    assert (recorded.method, recorded.path, recorded.query) == ("POST", "/v2/pet", [("trace", "1")])
    assert recorded.headers["x-trace"] == "t"
    assert recorded.json() == NEW_PET
    petstore_service.reset()
    assert petstore_service.requests == []
    assert sorted(petstore_service.pets) == [1, 2, 3, 4, 5, 6]


# --- Echo -----------------------------------------------------------------------------------


def test_echo_describes_the_request_raw(echo_service: EchoService) -> None:
    response = httpx.put(
        echo_service.url("/a%2Fb/c?x=1&x=2&y=a%20b&flag"),
        content=b"hello",
        headers={"X-One": "1", "Cookie": "sid=abc; theme=dark"},
    )
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["method"] == "PUT"
    assert echoed["path"] == "/a%2Fb/c"
    assert echoed["raw_query"] == "x=1&x=2&y=a%20b&flag"
    assert echoed["query"] == [["x", "1"], ["x", "2"], ["y", "a%20b"], ["flag", ""]]
    assert echoed["headers"]["x-one"] == "1"
    assert echoed["cookies"] == {"sid": "abc", "theme": "dark"}
    assert (echoed["body"], echoed["body_encoding"]) == ("hello", "text")


def test_echo_base64_for_binary_bodies(echo_service: EchoService) -> None:
    echoed = httpx.post(echo_service.url("/bin"), content=b"\xff\x00\xfe").json()
    assert echoed["body_encoding"] == "base64"
    assert base64.b64decode(echoed["body"]) == b"\xff\x00\xfe"
    chunked = httpx.post(echo_service.url("/chunked"), content=iter([b"ab", b"c"])).json()
    assert chunked["headers"]["transfer-encoding"] == "chunked"
    assert chunked["body"] == "abc"


def test_echo_status_and_header_routes(echo_service: EchoService) -> None:
    response = httpx.delete(echo_service.url("/echo/status/418"))
    assert response.status_code == 418
    assert response.json()["method"] == "DELETE"
    assert httpx.get(echo_service.url("/echo/status/204")).status_code == 204
    assert httpx.get(echo_service.url("/echo/status/99")).status_code == 400
    header = httpx.get(echo_service.url("/echo/header/X-Api-Key"), headers={"X-Api-Key": "s3"})
    assert header.json() == {"name": "X-Api-Key", "value": "s3"}
    assert httpx.get(echo_service.url("/echo/header/X-None")).json()["value"] is None
    assert [r.path for r in echo_service.requests][-1] == "/echo/header/X-None"


# --- Flaky ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "status"), [("ratelimited", 429), ("unavailable", 503)])
def test_failures_with_retry_after_seconds(
    flaky_service: FlakyService, route: str, status: int
) -> None:
    url = flaky_service.url(f"/{route}/2")
    answers = [httpx.get(url) for _ in range(3)]
    assert [a.status_code for a in answers] == [status, status, 200]
    assert [a.headers.get("Retry-After") for a in answers] == ["1", "1", None]
    assert answers[2].json() == {"ok": True, "calls": 3}
    assert httpx.get(url, params={"key": "other"}).status_code == status
    assert flaky_service.calls(f"/{route}/2") == 3
    assert flaky_service.calls(f"/{route}/2", key="other") == 1


@pytest.mark.parametrize(("route", "status"), [("ratelimited", 429), ("unavailable", 503)])
def test_failures_with_retry_after_http_date(
    flaky_service: FlakyService, route: str, status: int
) -> None:
    first = httpx.post(flaky_service.url(f"/{route}-date/1"))
    assert first.status_code == status
    retry_at = parsedate_to_datetime(first.headers["Retry-After"])
    assert first.headers["Retry-After"].endswith(" GMT")
    assert retry_at > parsedate_to_datetime(first.headers["Date"])  # in the future when sent
    assert httpx.post(flaky_service.url(f"/{route}-date/1")).status_code == 200


def test_dead_quota_and_reset(flaky_service: FlakyService) -> None:
    assert {httpx.get(flaky_service.url("/dead")).status_code for _ in range(4)} == {503}
    first, second, third = (httpx.get(flaky_service.url("/quota/2")) for _ in range(3))
    assert first.headers["X-RateLimit-Limit"] == first.headers["RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert second.headers["RateLimit-Remaining"] == "0"
    assert (third.status_code, third.headers["Retry-After"]) == (429, "1")
    assert httpx.get(flaky_service.url("/nowhere")).status_code == 404
    flaky_service.reset()
    assert flaky_service.calls("/dead") == 0
    assert flaky_service.requests == []
    assert httpx.get(flaky_service.url("/ratelimited/0")).status_code == 200


# --- Redirect trap --------------------------------------------------------------------------


def test_trap_redirects_and_records(redirect_trap: RedirectTrap) -> None:
    entry_port, target_port = redirect_trap.ports
    assert entry_port != target_port
    cross = httpx.get(redirect_trap.url("/cross/307"))
    assert cross.status_code == 307
    assert cross.headers["Location"] == f"http://127.0.0.1:{target_port}/landing"
    assert httpx.get(redirect_trap.url("/same/301")).headers["Location"] == "/landing"
    assert httpx.get(redirect_trap.url("/same-then-cross")).headers["Location"] == "/cross/302"
    assert httpx.get(redirect_trap.url("/loop")).headers["Location"] == "/loop"
    assert httpx.get(redirect_trap.url("/cross/300")).status_code == 404
    landed = httpx.get(cross.headers["Location"], headers={"Authorization": "Bearer t"})
    assert landed.json()["origin"] == "target"
    assert redirect_trap.leaked() == {"authorization"}
    assert len(redirect_trap.requests) == 5


def test_each_policy_allows_exactly_its_ports(
    petstore_service: PetstoreService,
    echo_service: EchoService,
    flaky_service: FlakyService,
    redirect_trap: RedirectTrap,
) -> None:
    for service in (petstore_service, echo_service, flaky_service):
        assert service.egress_policy.allow == {("127.0.0.1", service.port)}
    assert redirect_trap.egress_policy.allow == {("127.0.0.1", p) for p in redirect_trap.ports}


CREDENTIALS = {"Authorization": "Bearer canary", "Cookie": "sid=canary", "X-Api-Key": "canary"}


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "method"), [("/cross/302", "GET"), ("/cross/307", "POST"),
                                              ("/same-then-cross", "GET")])  # fmt: skip
async def test_apiq_redirects_strip_credentials_at_the_other_origin(
    redirect_trap: RedirectTrap, path: str, method: str
) -> None:
    body = b"payload" if method == "POST" else None
    async with egress_client(redirect_trap.egress_policy) as client:
        request = client.build_request(
            method, redirect_trap.url(path), headers=CREDENTIALS, content=body
        )
        response = await send_following_redirects(client, request, credential_headers=["X-Api-Key"])
    assert response.status_code == 200
    assert response.json()["origin"] == "target"
    assert response.json()["body"] == ("payload" if method == "POST" else "")
    assert len(redirect_trap.arrived) == 1
    assert redirect_trap.leaked() == set()
    assert "canary" not in str(dict(redirect_trap.arrived[0].headers))
    assert all(r.headers["authorization"] == "Bearer canary" for r in redirect_trap.requests)


@pytest.mark.anyio
async def test_apiq_same_origin_redirect_keeps_credentials(redirect_trap: RedirectTrap) -> None:
    async with egress_client(redirect_trap.egress_policy) as client:
        request = client.build_request("GET", redirect_trap.url("/same/302"), headers=CREDENTIALS)
        response = await send_following_redirects(client, request)
    assert response.json()["origin"] == "entry"
    assert response.json()["headers"]["x-api-key"] == "canary"
    assert redirect_trap.arrived == []
