"""EgressTransport, egress_client and send_following_redirects over real loopback HTTP.

The loopback servers themselves are reached through the allow-list; every hostile target
(private ranges, metadata, other schemes) must end in EgressDenied before any connect, which
the conftest network guard would otherwise report.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from apiq.egress import EgressPolicy, EgressTransport, egress_client, send_following_redirects
from apiq.errors import ConfigurationError, EgressDenied
from tests.loopback import LoopbackServer, Route, loopback_server, respond, serve

pytestmark = pytest.mark.anyio


class ScriptedResolver:
    """Gives each name its scripted answers in turn (the last one repeats); records calls."""

    def __init__(self, script: dict[str, list[Sequence[str]]]) -> None:
        self.script = script
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        answers = self.script.get(host)
        if not answers:
            raise OSError(f"no such host {host!r}")
        return answers.pop(0) if len(answers) > 1 else answers[0]


def _drain(handler: BaseHTTPRequestHandler) -> bytes:
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def ok(bodies: list[bytes] | None = None) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        body = _drain(handler)
        if bodies is not None:
            bodies.append(body)
        respond(handler, 200, b"final", {"Content-Type": "text/plain"})

    return route


def redirect(location: str, status: int = 302) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        _drain(handler)
        respond(handler, status, b"moved", {"Location": location})

    return route


def allowing(*servers: LoopbackServer, **extra: object) -> EgressPolicy:
    pairs = frozenset(("127.0.0.1", server.port) for server in servers)
    return EgressPolicy(allow=pairs, **extra)  # type: ignore[arg-type]


def recording_inner(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")

    return httpx.MockTransport(handler)


# --- pinning the checked address ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address", "sni"),
    [
        ("http://api.example/v1/pets?limit=2", "93.184.216.34", None),
        ("https://api.example:8443/v1/pets?limit=2", "93.184.216.34", "api.example"),
        ("https://api.example/v1/pets?limit=2", "2606:4700::1", "api.example"),
        ("https://93.184.216.34/v1/pets?limit=2", "93.184.216.34", None),
    ],
)
async def test_requests_go_to_the_checked_address_with_host_and_sni_kept(
    url: str, address: str, sni: str | None
) -> None:
    seen: list[httpx.Request] = []
    resolver = ScriptedResolver({"api.example": [[address]]})
    transport = EgressTransport(EgressPolicy(resolver=resolver), recording_inner(seen))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(url, headers={"X-Trace": "1"})
    original = httpx.URL(url)
    [sent] = seen
    assert response.status_code == 200
    assert response.request.url == original
    assert sent.url.host == address
    assert sent.url.port == original.port
    assert sent.url.raw_path == original.raw_path
    assert sent.headers["host"] == original.netloc.decode()
    assert sent.headers["x-trace"] == "1"
    assert sent.extensions.get("sni_hostname") == sni
    assert resolver.calls == ([] if original.host == address else ["api.example"])


class ManualClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_dns_rebinding_is_defeated_one_lookup_per_check() -> None:
    # The name first answers a public address, then loopback: every request goes to the
    # public one while its check is reused, and the loopback answer is only ever seen (and
    # refused) by the next check once the reuse period is over.
    seen: list[httpx.Request] = []
    clock = ManualClock()
    resolver = ScriptedResolver({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    transport = EgressTransport(
        EgressPolicy(resolver=resolver), recording_inner(seen), check_ttl_s=5, clock=clock
    )
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://rebind.example/")
        clock.now += 4.9
        await client.get("http://rebind.example/other?page=2")
        assert resolver.calls == ["rebind.example"]
        assert [request.url.host for request in seen] == ["93.184.216.34", "93.184.216.34"]
        clock.now += 0.1
        with pytest.raises(EgressDenied) as info:
            await client.get("http://rebind.example/")
    assert info.value.address == "127.0.0.1"
    assert resolver.calls == ["rebind.example", "rebind.example"]
    assert len(seen) == 2


async def test_a_changed_dns_answer_is_used_once_the_check_expires() -> None:
    seen: list[httpx.Request] = []
    clock = ManualClock()
    resolver = ScriptedResolver({"moved.example": [["93.184.216.34"], ["93.184.216.35"]]})
    transport = EgressTransport(
        EgressPolicy(resolver=resolver), recording_inner(seen), check_ttl_s=5, clock=clock
    )
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://moved.example/")
        clock.now += 5
        await client.get("http://moved.example/")
        await client.get("http://moved.example/")
    assert [request.url.host for request in seen] == ["93.184.216.34"] + ["93.184.216.35"] * 2
    assert resolver.calls == ["moved.example", "moved.example"]


async def test_every_request_is_checked_afresh_with_a_zero_ttl() -> None:
    seen: list[httpx.Request] = []
    resolver = ScriptedResolver({"api.example": [["93.184.216.34"]]})
    transport = EgressTransport(
        EgressPolicy(resolver=resolver), recording_inner(seen), check_ttl_s=0
    )
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            await client.get("http://api.example/")
    assert resolver.calls == ["api.example"] * 3


async def test_a_reused_check_still_vets_each_url_and_belongs_to_its_policy() -> None:
    seen: list[httpx.Request] = []
    resolver = ScriptedResolver({"api.example": [["93.184.216.34"]]})
    transport = EgressTransport(EgressPolicy(resolver=resolver), recording_inner(seen))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://api.example/")
        with pytest.raises(EgressDenied, match="user name or password"):
            await client.get("http://user:pw@api.example/")
        # Another policy (here: another resolver) judges the origin itself.
        other = ScriptedResolver({"api.example": [["10.0.0.1"]]})
        transport.policy = EgressPolicy(resolver=other)
        with pytest.raises(EgressDenied) as info:
            await client.get("http://api.example/")
    assert info.value.address == "10.0.0.1"
    assert resolver.calls == ["api.example"]
    assert len(seen) == 1


async def test_refusals_are_not_reused() -> None:
    resolver = ScriptedResolver({"flip.example": [["10.0.0.1"], ["93.184.216.34"]]})
    seen: list[httpx.Request] = []
    transport = EgressTransport(EgressPolicy(resolver=resolver), recording_inner(seen))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(EgressDenied):
            await client.get("http://flip.example/")
        await client.get("http://flip.example/")
    assert resolver.calls == ["flip.example", "flip.example"]
    assert [request.url.host for request in seen] == ["93.184.216.34"]


async def test_dns_rebinding_over_real_loopback_connects_to_the_checked_address() -> None:
    # No lookup of rebind.localhost may happen outside the resolver: the conftest guard
    # refuses non-loopback names, so reaching the server proves the checked address was used.
    resolver = ScriptedResolver({"rebind.localhost": [["127.0.0.1"], ["10.0.0.1"]]})
    with loopback_server({"/": ok()}) as server:
        policy = EgressPolicy(
            allow=frozenset({("rebind.localhost", server.port)}), resolver=resolver
        )
        async with egress_client(policy, check_ttl_s=0) as client:
            response = await client.get(f"http://rebind.localhost:{server.port}/")
            assert response.status_code == 200
            with pytest.raises(EgressDenied) as info:
                await client.get(f"http://rebind.localhost:{server.port}/")
    assert info.value.address == "10.0.0.1"
    assert resolver.calls == ["rebind.localhost", "rebind.localhost"]
    [(_, _, headers)] = server.requests
    assert headers["Host"] == f"rebind.localhost:{server.port}"


async def test_next_checked_address_is_tried_when_a_connect_fails() -> None:
    # Nothing listens on 127.0.0.2 (the server binds 127.0.0.1 only): connect refused.
    resolver = ScriptedResolver({"two.localhost": [["127.0.0.2", "127.0.0.1"]]})
    with loopback_server({"/": ok()}) as server:
        policy = EgressPolicy(allow=frozenset({("two.localhost", server.port)}), resolver=resolver)
        async with egress_client(policy) as client:
            response = await client.get(f"http://two.localhost:{server.port}/")
    assert response.status_code == 200
    assert len(server.requests) == 1


async def test_a_target_that_no_longer_connects_is_resolved_again() -> None:
    # 127.0.0.2 refuses connections: after that failure the next request must not reuse the
    # dead address but resolve, and the new answer (the server's address) connects.
    resolver = ScriptedResolver({"moved.localhost": [["127.0.0.2"], ["127.0.0.1"]]})
    with loopback_server({"/": ok()}) as server:
        allow = frozenset({("moved.localhost", server.port)})
        async with egress_client(EgressPolicy(allow=allow, resolver=resolver)) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://moved.localhost:{server.port}/")
            response = await client.get(f"http://moved.localhost:{server.port}/")
    assert response.status_code == 200
    assert resolver.calls == ["moved.localhost", "moved.localhost"]


async def test_the_client_never_learns_cookies_from_responses() -> None:
    # One egress client serves every principal: a cookie set in answer to one call must not
    # ride along on the next call, whoever makes it.
    def login(handler: BaseHTTPRequestHandler) -> None:
        respond(handler, 200, b"ok", {"Set-Cookie": "session=alice-secret; Path=/"})

    with loopback_server({"/login": login, "/next": ok()}) as server:
        async with egress_client(allowing(server), cookies={"given": "1"}) as client:
            await client.get(server.url("/login"))
            await client.get(server.url("/next"))
            client.cookies = {"later": "2"}
            await client.get(server.url("/next"))
            assert "session" not in client.cookies
    cookies = [headers.get("Cookie") for _, _, headers in server.requests]
    assert cookies == ["given=1", "given=1", "later=2"]


async def test_system_resolver_reaches_an_allowed_localhost_server() -> None:
    # localhost may resolve to ::1 first; the server listens on 127.0.0.1 only.
    with loopback_server({"/": ok()}) as server:
        policy = EgressPolicy.from_env({"APIQ_EGRESS_ALLOW": f"localhost:{server.port}"})
        async with egress_client(policy) as client:
            response = await client.get(f"http://localhost:{server.port}/")
            with pytest.raises(EgressDenied, match="add localhost:1 "):
                await client.get("http://localhost:1/")
    assert response.status_code == 200
    assert server.requests[0][2]["Host"] == f"localhost:{server.port}"


async def test_unresolvable_host_is_a_connect_error_from_the_transport() -> None:
    async with egress_client(EgressPolicy(resolver=ScriptedResolver({}))) as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.get("http://nxdomain.example/")
    assert isinstance(info.value.__cause__, EgressDenied)


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1/",
        "http://2130706433/",
        "http://127.1/",
        "http://0x7f.1/",
        "http://[::ffff:10.0.0.1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "http://user:pw@example.com/",
        "http://1.2.3.4.5/",
    ],
)
async def test_hostile_urls_through_the_client_end_in_egress_denied(url: str) -> None:
    async with egress_client(EgressPolicy(resolver=ScriptedResolver({}))) as client:
        with pytest.raises(EgressDenied):
            await client.get(url)


@pytest.mark.parametrize(
    "options",
    [
        {"transport": httpx.AsyncHTTPTransport()},
        {"mounts": {}},
        {"proxy": "http://127.0.0.1:3128"},
        {"follow_redirects": True},
    ],
)
async def test_egress_client_refuses_options_that_bypass_the_policy(
    options: dict[str, object],
) -> None:
    with pytest.raises(ConfigurationError):
        egress_client(EgressPolicy(), **options)
    transport = options.get("transport")
    if isinstance(transport, httpx.AsyncHTTPTransport):
        await transport.aclose()


async def test_egress_client_does_not_follow_redirects_by_itself() -> None:
    with loopback_server({"/r": redirect("http://10.0.0.1/")}) as server:
        async with egress_client(allowing(server)) as client:
            response = await client.get(server.url("/r"))
    assert response.status_code == 302
    assert len(server.requests) == 1


# --- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://192.168.0.1:8080/admin",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://internal.example/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "http://user:pw@127.0.0.1/",
        "http://127.0.0.1:1/not-on-the-allow-list",
    ],
)
async def test_redirects_into_private_ranges_are_refused_before_connecting(location: str) -> None:
    resolver = ScriptedResolver({"internal.example": [["10.1.2.3"]]})
    with loopback_server({"/start": redirect(location)}) as server:
        async with egress_client(allowing(server, resolver=resolver)) as client:
            request = client.build_request("GET", server.url("/start"))
            with pytest.raises(EgressDenied) as info:
                await send_following_redirects(client, request)
    assert len(server.requests) == 1
    assert "pw" not in str(info.value)


async def test_three_redirects_are_followed_and_a_fourth_is_refused() -> None:
    routes: dict[str, Route] = {f"/r{i}": redirect(f"/r{i + 1}") for i in range(1, 4)}
    routes["/r4"] = ok()
    with loopback_server(routes) as server:
        async with egress_client(allowing(server)) as client:
            response = await send_following_redirects(
                client, client.build_request("GET", server.url("/r1"))
            )
            assert response.status_code == 200
            assert response.text == "final"
            assert [r.status_code for r in response.history] == [302, 302, 302]

            server.routes["/r4"] = redirect("/r5")
            server.routes["/r5"] = ok()
            server.requests.clear()
            with pytest.raises(EgressDenied, match="more than 3 redirects") as info:
                await send_following_redirects(
                    client, client.build_request("GET", server.url("/r1"))
                )
    assert info.value.url == server.url("/r5")
    assert [path for _, path, _ in server.requests] == ["/r1", "/r2", "/r3", "/r4"]


async def test_max_redirects_zero_refuses_the_first_redirect() -> None:
    with loopback_server({"/r": redirect("/final"), "/final": ok()}) as server:
        async with egress_client(allowing(server)) as client:
            with pytest.raises(EgressDenied):
                await send_following_redirects(
                    client, client.build_request("GET", server.url("/r")), max_redirects=0
                )
    assert len(server.requests) == 1


async def test_the_policy_redirect_limit_applies_when_none_is_given() -> None:
    routes: dict[str, Route] = {"/r1": redirect("/r2"), "/r2": redirect("/r3"), "/r3": ok()}
    with loopback_server(routes) as server:
        async with egress_client(allowing(server, max_redirects=1)) as client:
            with pytest.raises(EgressDenied, match="more than 1 redirects"):
                await send_following_redirects(
                    client, client.build_request("GET", server.url("/r1"))
                )
            # An explicit limit wins over the policy's.
            response = await send_following_redirects(
                client, client.build_request("GET", server.url("/r1")), max_redirects=2
            )
    assert response.text == "final"
    assert [path for _, path, _ in server.requests] == ["/r1", "/r2", "/r1", "/r2", "/r3"]


CREDENTIALS = {
    "Authorization": "Bearer s3cr3t-token",
    "Proxy-Authorization": "Basic cHJveHk6cHc=",
    "Cookie": "session=s3cr3t-cookie",
    "X-API-Key": "s3cr3t-key",
}


async def test_credentials_are_dropped_on_a_redirect_to_another_origin() -> None:
    with loopback_server({"/land": ok()}) as other, loopback_server({}) as first:
        first.routes["/start"] = redirect(other.url("/land"), 307)
        async with egress_client(allowing(first, other)) as client:
            request = client.build_request(
                "GET", first.url("/start"), headers={**CREDENTIALS, "X-Trace": "t-1"}
            )
            response = await send_following_redirects(
                client, request, credential_headers=["x-api-key"]
            )
    assert response.status_code == 200
    [(_, _, sent_first)] = first.requests
    [(_, _, sent_other)] = other.requests
    assert {name: sent_first[name] for name in CREDENTIALS} == CREDENTIALS
    assert not {name.lower() for name in sent_other} & {name.lower() for name in CREDENTIALS}
    assert sent_other["X-Trace"] == "t-1"
    assert sent_other["Host"] == f"127.0.0.1:{other.port}"


async def test_credentials_are_kept_on_a_same_origin_redirect() -> None:
    with loopback_server({"/start": redirect("/land", 308), "/land": ok()}) as server:
        async with egress_client(allowing(server)) as client:
            request = client.build_request("GET", server.url("/start"), headers=CREDENTIALS)
            await send_following_redirects(client, request, credential_headers=["X-API-Key"])
    [(_, _, first), (_, path, second)] = server.requests
    assert path == "/land"
    assert (
        {name: second[name] for name in CREDENTIALS}
        == CREDENTIALS
        == {name: first[name] for name in CREDENTIALS}
    )


async def test_client_auth_does_not_follow_the_chain_to_another_origin_and_back() -> None:
    # first -> other -> first: once the chain left, nothing re-adds the credentials.
    with loopback_server({"/land": ok()}) as first, loopback_server({}) as other:
        first.routes["/start"] = redirect(other.url("/bounce"))
        other.routes["/bounce"] = redirect(first.url("/land"))
        policy = allowing(first, other)
        async with egress_client(policy, auth=httpx.BasicAuth("user", "s3cr3t")) as client:
            request = client.build_request("GET", first.url("/start"))
            response = await send_following_redirects(client, request)
    assert response.status_code == 200
    assert "Authorization" in first.requests[0][2]
    assert "Authorization" not in other.requests[0][2]
    assert "Authorization" not in first.requests[1][2]


@pytest.mark.parametrize(
    ("status", "method", "expected_method", "expected_body"),
    [
        (303, "POST", "GET", b""),
        (303, "PUT", "GET", b""),
        (302, "POST", "GET", b""),
        (301, "POST", "GET", b""),
        (302, "PUT", "PUT", b'{"a": 1}'),
        (307, "POST", "POST", b'{"a": 1}'),
        (308, "PATCH", "PATCH", b'{"a": 1}'),
    ],
)
async def test_redirect_method_and_body_follow_rfc_9110(
    status: int, method: str, expected_method: str, expected_body: bytes
) -> None:
    bodies: list[bytes] = []
    with loopback_server({"/start": redirect("/land", status), "/land": ok(bodies)}) as server:
        async with egress_client(allowing(server)) as client:
            request = client.build_request(
                method,
                server.url("/start"),
                content=b'{"a": 1}',
                headers={"Content-Type": "application/json"},
            )
            response = await send_following_redirects(client, request)
    assert response.status_code == 200
    (_, _, _), (landed_method, _, headers) = server.requests
    assert landed_method == expected_method
    assert bodies == [expected_body]
    assert ("Content-Type" in headers) == bool(expected_body)


async def test_stream_returns_an_unread_response() -> None:
    with loopback_server({"/start": redirect("/land"), "/land": ok()}) as server:
        async with egress_client(allowing(server)) as client:
            request = client.build_request("GET", server.url("/start"))
            response = await send_following_redirects(client, request, stream=True)
            assert not response.is_stream_consumed
            assert await response.aread() == b"final"
            await response.aclose()


# --- TLS: certificate and SNI use the original name; pools never mix server names -------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed; the TLS tests need it to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=a.localhost",
            "-addext",
            "subjectAltName=DNS:a.localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[tuple[int, list[str | None], list[str]]]:
    """An https server on 127.0.0.1; yields its port, the SNI names and Host headers seen."""
    names: list[str | None] = []
    hosts: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            hosts.append(self.headers["Host"])
            respond(self, 200, b"tls ok")

    with serve(Handler, tls=context) as server:
        yield server.server_address[1], names, hosts


async def test_tls_verifies_the_original_name_and_keeps_one_pool_per_name(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    trust = ssl.create_default_context(cafile=str(cert))
    resolver = ScriptedResolver({"a.localhost": [["127.0.0.1"]], "b.localhost": [["127.0.0.1"]]})
    with tls_server(cert, key) as (port, names, hosts):
        allow = frozenset({("a.localhost", port), ("b.localhost", port)})
        async with egress_client(
            EgressPolicy(allow=allow, resolver=resolver), verify=trust
        ) as client:
            # The certificate names a.localhost only (no IP): this works only if TLS checks
            # the original name, not the address the transport connected to.
            response = await client.get(f"https://a.localhost:{port}/")
            assert response.text == "tls ok"
            # Same IP and port, other name: a pool keyed by address would reuse the
            # a.localhost connection; a fresh handshake must fail the certificate check.
            with pytest.raises(httpx.ConnectError):
                await client.get(f"https://b.localhost:{port}/")
    assert names[:2] == ["a.localhost", "b.localhost"]
    assert hosts == [f"a.localhost:{port}"]
