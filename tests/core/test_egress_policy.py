"""EgressPolicy.check: which URLs may leave the machine.

Host names are resolved by an injected resolver that records its calls; literal and numeric
hosts must never reach a resolver at all. The autouse network guard in tests/conftest.py
fails any test that even tries a non-loopback lookup or connect.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.egress import CheckedTarget, EgressPolicy
from apiq.egress.policy import display_url
from apiq.egress.target_cache import CheckedTargetCache
from apiq.errors import ConfigurationError, EgressDenied

pytestmark = pytest.mark.anyio


class RecordingResolver:
    """Answers from a table (or raises) and records every (host, port) it is asked."""

    def __init__(self, answers: dict[str, Sequence[str]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        if host not in self.answers:
            raise OSError(f"no such host {host!r}")
        return self.answers[host]


async def refused(policy: EgressPolicy, url: str) -> EgressDenied:
    with pytest.raises(EgressDenied) as info:
        await policy.check(url)
    return info.value


PRIVATE_V4 = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.1.1",
    "100.64.0.1",
    "0.0.0.0",
    "0.1.2.3",
    "192.0.0.192",
    "198.18.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
]
METADATA = ["169.254.169.254", "100.100.100.200", "168.63.129.16", "fd00:ec2::254"]
PRIVATE_V6 = [
    "::1",
    "::",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "2001:db8::1",
    "100::1",
    "::7f00:1",  # deprecated IPv4-compatible 127.0.0.1
]


@pytest.mark.parametrize("address", PRIVATE_V4 + METADATA + PRIVATE_V6)
async def test_literal_non_public_addresses_are_refused(address: str) -> None:
    resolver = RecordingResolver()
    host = f"[{address}]" if ":" in address else address
    error = await refused(EgressPolicy(resolver=resolver), f"http://{host}/latest/meta-data/")
    assert error.address == str(IPv4Address(address) if "." in address else IPv6Address(address))
    assert error.url == f"http://{host}/latest/meta-data/"
    assert "Refused" in str(error)
    assert error.url in str(error)
    assert resolver.calls == []


@pytest.mark.parametrize("address", PRIVATE_V4 + METADATA + PRIVATE_V6)
async def test_host_names_resolving_to_non_public_addresses_are_refused(address: str) -> None:
    resolver = RecordingResolver({"internal.example": [address]})
    error = await refused(EgressPolicy(resolver=resolver), "https://internal.example/x")
    assert error.address is not None
    assert "internal.example resolves to" in str(error)
    assert resolver.calls == [("internal.example", 443)]


@pytest.mark.parametrize("address", METADATA)
async def test_metadata_addresses_are_named(address: str) -> None:
    resolver = RecordingResolver({"metadata.example": [address]})
    error = await refused(EgressPolicy(resolver=resolver), "http://metadata.example/")
    assert "metadata" in str(error)


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("2130706433", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7F.0.0.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("167772161", "10.0.0.1"),
        ("2852039166", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
    ],
)
async def test_decimal_hex_and_short_ipv4_forms_are_refused_without_lookup(
    host: str, canonical: str
) -> None:
    # The system resolver: a lookup of these names would trip the conftest network guard.
    error = await refused(EgressPolicy(), f"http://{host}:8080/")
    assert error.address == canonical


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1/",  # httpx itself refuses octal parts
        "http://1.2.3.4.5/",
        "http://256.1.1.1/",
        "http://1.2.3.0x100/",
        "http://4294967296/",
        "http://09.0.0.1/",
        "http://a.1/",
        "http://example.0x10/",
    ],
)
async def test_malformed_numeric_hosts_are_refused_without_lookup(url: str) -> None:
    resolver = RecordingResolver()
    error = await refused(EgressPolicy(resolver=resolver), url)
    assert error.address is None
    assert resolver.calls == []


WRAPPED = [
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("::ffff:a9fe:a9fe", "169.254.169.254"),
    ("64:ff9b::10.0.0.1", "10.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
    ("64:ff9b:1:0:0:0:c0a8:101", "192.168.1.1"),
    ("2002:c0a8:0101::1", "192.168.1.1"),
    ("2002:7f00:1::", "127.0.0.1"),
    # Teredo: server 65.54.227.120, client 10.0.0.1 stored inverted (0xf5ff:0xfffe).
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),
]


@pytest.mark.parametrize(("address", "embedded"), WRAPPED)
async def test_ipv6_wrappings_of_private_ipv4_are_refused(address: str, embedded: str) -> None:
    resolver = RecordingResolver({"wrapped.example": [address]})
    error = await refused(EgressPolicy(resolver=resolver), "http://wrapped.example/")
    assert error.address == str(IPv6Address(address))
    assert embedded in str(error)


@pytest.mark.parametrize("address", ["::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1"])
async def test_ipv6_wrappings_of_public_ipv4_are_allowed(address: str) -> None:
    resolver = RecordingResolver({"public.example": [address]})
    target = await EgressPolicy(resolver=resolver).check("http://public.example/")
    assert target.addresses == (str(IPv6Address(address)),)


async def test_teredo_and_nat64_local_use_are_refused_even_with_public_ipv4() -> None:
    # Neither is reliably reachable (IANA: not globally reachable / N/A): fail closed.
    teredo = "2001:0:4136:e378:8000:63bf:f7f7:f7f7"  # client 8.8.8.8
    local = "64:ff9b:1::808:808"
    resolver = RecordingResolver({"t.example": [teredo], "l.example": [local]})
    policy = EgressPolicy(resolver=resolver)
    assert "Teredo" in str(await refused(policy, "http://t.example/"))
    assert "NAT64 local-use" in str(await refused(policy, "http://l.example/"))


async def test_public_addresses_are_allowed_and_reported() -> None:
    resolver = RecordingResolver(
        {"api.example": ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]}
    )
    target = await EgressPolicy(resolver=resolver).check("https://API.example:8443/v1?key=1")
    assert target == CheckedTarget(
        "https", "api.example", 8443, ("93.184.216.34", "2606:2800:220:1::1")
    )
    assert resolver.calls == [("api.example", 8443)]


@pytest.mark.parametrize(
    "answers",
    [["93.184.216.34", "10.0.0.7"], ["10.0.0.7", "93.184.216.34"], ["2606:4700::1", "10.0.0.7"]],
)
async def test_one_private_address_among_public_ones_refuses_the_host(answers: list[str]) -> None:
    resolver = RecordingResolver({"mixed.example": answers})
    error = await refused(EgressPolicy(resolver=resolver), "http://mixed.example/")
    assert error.address == "10.0.0.7"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/spec.json",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "ws://example.com/",
        "wss://example.com/",
        "data:application/json,{}",
        "javascript:alert(1)",
        "dict://127.0.0.1:11211/stats",
        "example.com/spec.json",
        "/relative/spec.json",
        "http:///no-host",
        "",
    ],
)
async def test_only_absolute_http_and_https_urls_are_allowed(url: str) -> None:
    resolver = RecordingResolver({"example.com": ["93.184.216.34"]})
    error = await refused(EgressPolicy(resolver=resolver), url)
    assert error.address is None
    assert resolver.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "http://user:s3cr3t-pw@api.example/x",
        "https://s3cr3t-pw@api.example/",
        "https://user:s3cr3t-pw@127.0.0.1:8080/",
        "http://:s3cr3t-pw@api.example/",
    ],
)
async def test_urls_with_user_info_are_refused_without_echoing_the_secret(url: str) -> None:
    resolver = RecordingResolver({"api.example": ["93.184.216.34"]})
    policy = EgressPolicy(resolver=resolver, allow=frozenset({("127.0.0.1", 8080)}))
    error = await refused(policy, url)
    assert "user name or password" in str(error)
    assert "s3cr3t" not in str(error)
    assert "s3cr3t" not in error.url
    assert resolver.calls == []


async def test_query_strings_are_hidden_in_refusals() -> None:
    error = await refused(EgressPolicy(), "http://10.0.0.1/x?api_key=s3cr3t")
    assert "s3cr3t" not in str(error)
    assert error.url == "http://10.0.0.1/x?…"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:s3cr3t@api.example/x?k=s3cr3t#s3cr3t", "https://…@api.example/x?…"),
        ("https://registry.example/@scope/pkg.json", "https://registry.example/@scope/pkg.json"),
        ("https://u:s3cr3t@api.example/@scope", "https://…@api.example/@scope"),
        ("http://u:s3cr/3t@api.example/x", "http://…@api.example/x"),  # too broken to parse
        ("C:\\specs\\api.json", "C:\\specs\\api.json"),
    ],
)
def test_display_url_hides_user_info_and_query_but_keeps_the_host(url: str, shown: str) -> None:
    assert display_url(url) == shown


async def test_resolution_failures_refuse() -> None:
    resolver = RecordingResolver({"empty.example": [], "junk.example": ["not-an-ip"]})
    policy = EgressPolicy(resolver=resolver)
    assert "could not resolve" in str(await refused(policy, "http://nxdomain.example/"))
    assert "no addresses" in str(await refused(policy, "http://empty.example/"))
    assert "not an IP address" in str(await refused(policy, "http://junk.example/"))


# --- the allow-list -----------------------------------------------------------------------


async def test_allow_list_is_off_by_default() -> None:
    error = await refused(EgressPolicy(), "http://127.0.0.1:8080/")
    assert "add 127.0.0.1:8080 to APIQ_EGRESS_ALLOW" in str(error)


async def test_allow_list_admits_exact_loopback_pairs_only() -> None:
    resolver = RecordingResolver({"api.localhost": ["127.0.0.1", "::1"]})
    policy = EgressPolicy(
        resolver=resolver, allow=frozenset({("127.0.0.1", 8080), ("api.localhost", 9000)})
    )
    assert (await policy.check("http://127.0.0.1:8080/x")).addresses == ("127.0.0.1",)
    assert (await policy.check("http://api.localhost:9000/")).addresses == ("127.0.0.1", "::1")
    for url in ("http://127.0.0.1:8081/", "http://127.0.0.2:8080/", "http://api.localhost:9001/"):
        assert "APIQ_EGRESS_ALLOW" in str(await refused(policy, url))


@pytest.mark.parametrize(
    "answers", [["127.0.0.1", "10.0.0.1"], ["93.184.216.34"], ["::1", "fe80::1"]]
)
async def test_allowed_pair_resolving_beyond_loopback_is_refused(answers: list[str]) -> None:
    resolver = RecordingResolver({"api.localhost": answers})
    policy = EgressPolicy(resolver=resolver, allow=frozenset({("api.localhost", 9000)}))
    error = await refused(policy, "http://api.localhost:9000/")
    assert "not a loopback address" in str(error)
    assert error.address == answers[-1]


def test_from_env_parses_loopback_pairs() -> None:
    env = {"APIQ_EGRESS_ALLOW": " 127.0.0.1:8080, LOCALHOST:9000 ,[::1]:8000,,api.localhost:1"}
    assert EgressPolicy.from_env(env).allow == {
        ("127.0.0.1", 8080),
        ("localhost", 9000),
        ("::1", 8000),
        ("api.localhost", 1),
    }
    assert EgressPolicy.from_env({}).allow == frozenset()
    assert EgressPolicy.from_env({"APIQ_EGRESS_ALLOW": " "}).allow == frozenset()


@pytest.mark.parametrize(
    "entry",
    [
        "10.0.0.1:80",
        "example.com:443",
        "169.254.169.254:80",
        "localhost",
        "localhost:",
        ":8080",
        "localhost:http",
        "localhost:0",
        "localhost:65536",
        "::1:8000",
        "[fe80::1]:80",
        "localhost:٨٠",
        "localhost.evil.com:80",
    ],
)
def test_from_env_refuses_non_loopback_or_malformed_entries(entry: str) -> None:
    with pytest.raises(ConfigurationError, match=r"APIQ_EGRESS_ALLOW|allow-list"):
        EgressPolicy.from_env({"APIQ_EGRESS_ALLOW": f"127.0.0.1:1,{entry}"})


def test_constructor_validates_pairs_and_redirect_limit() -> None:
    assert EgressPolicy(allow=frozenset({("[::1]", 5), ("127.1", 6)})).allow == {
        ("::1", 5),
        ("127.0.0.1", 6),
    }
    with pytest.raises(ConfigurationError):
        EgressPolicy(allow=frozenset({("10.0.0.1", 80)}))
    with pytest.raises(ConfigurationError):
        EgressPolicy(max_redirects=-1)


# --- properties ---------------------------------------------------------------------------

DENIED_V4_NETWORKS = [
    IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "192.0.0.0/24",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]

private_v4 = st.sampled_from(DENIED_V4_NETWORKS).flatmap(
    lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(IPv4Address)
)
public_teredo_server = st.sampled_from([IPv4Address("65.54.227.120"), IPv4Address("8.8.4.4")])
bits16 = st.integers(0, 0xFFFF)


def _v6(value: int) -> IPv6Address:
    return IPv6Address(value)


def mapped(v4: IPv4Address, _: int) -> IPv6Address:
    return _v6((0xFFFF << 32) | int(v4))


def nat64(v4: IPv4Address, _: int) -> IPv6Address:
    return _v6((0x0064FF9B << 96) | int(v4))


def nat64_local48(v4: IPv4Address, _: int) -> IPv6Address:
    # RFC 6052 /48 layout: the IPv4 bits skip the reserved "u" octet (bits 64-71).
    packed = bytes.fromhex("0064ff9b0001") + v4.packed[:2] + b"\0" + v4.packed[2:] + bytes(5)
    return _v6(int.from_bytes(packed, "big"))


def sixtofour(v4: IPv4Address, suffix: int) -> IPv6Address:
    return _v6((0x2002 << 112) | (int(v4) << 80) | suffix)


def teredo_client(v4: IPv4Address, suffix: int) -> IPv6Address:
    server = int(IPv4Address("65.54.227.120"))
    return _v6((0x20010000 << 96) | (server << 64) | (suffix << 32) | (int(v4) ^ 0xFFFFFFFF))


def teredo_server(v4: IPv4Address, suffix: int) -> IPv6Address:
    client = int(IPv4Address("8.8.8.8")) ^ 0xFFFFFFFF
    return _v6((0x20010000 << 96) | (int(v4) << 64) | (suffix << 32) | client)


WRAPPINGS = [mapped, nat64, nat64_local48, sixtofour, teredo_client, teredo_server]


@settings(max_examples=300)
@given(v4=private_v4, wrap=st.sampled_from(WRAPPINGS), suffix=bits16, as_literal=st.booleans())
async def test_private_ipv4_in_every_ipv6_wrapping_is_refused(
    v4: IPv4Address, wrap: object, suffix: int, as_literal: bool
) -> None:
    assert callable(wrap)
    address = wrap(v4, suffix)
    resolver = RecordingResolver({"wrapped.example": [str(address)]})
    url = f"http://[{address}]/" if as_literal else "http://wrapped.example/"
    error = await refused(EgressPolicy(resolver=resolver), url)
    assert error.address == str(address)
    assert str(v4) in str(error)  # refused because of the embedded address, not by accident


@settings(max_examples=200)
@given(v4=private_v4, data=st.data())
async def test_private_ipv4_in_any_numeric_spelling_is_refused(
    v4: IPv4Address, data: st.DataObject
) -> None:
    octets = list(v4.packed)
    value = int(v4)
    spelling = data.draw(
        st.sampled_from(
            [
                str(value),
                hex(value),
                f"{octets[0]}.{(value & 0xFFFFFF)}",
                f"{octets[0]}.{octets[1]}.{value & 0xFFFF}",
                ".".join(hex(o) for o in octets),
                ".".join(f"0{o:o}" for o in octets),  # octal: httpx refuses, so do we
                f"{v4}.",
            ]
        )
    )
    resolver = RecordingResolver()
    error = await refused(EgressPolicy(resolver=resolver), f"http://{spelling}/")
    assert error.address in (None, str(v4))
    assert resolver.calls == []


@settings(max_examples=300)
@given(url=st.one_of(st.text(max_size=80), st.from_regex(r"\Ahttps?://[^/]{0,30}/?\Z")))
async def test_arbitrary_text_only_passes_as_a_public_literal(url: str) -> None:
    # Every name resolves to loopback and nothing is allowed: no input may crash, and the
    # only way through is a host that is itself a public IP literal.
    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    try:
        target = await EgressPolicy(resolver=loopback).check(url)
    except EgressDenied:
        return
    assert target.addresses == (target.host,)
    assert target.host != "127.0.0.1"


# --- reusing allowed checks ----------------------------------------------------------------


async def test_a_cached_origin_is_reused_only_for_that_origin_and_policy() -> None:
    resolver = RecordingResolver({"api.example": ["93.184.216.34"]})
    policy = EgressPolicy(resolver=resolver)
    cache = CheckedTargetCache(5.0)
    first = await policy.check("https://api.example/v1?x=1", cache=cache)
    assert await policy.check("https://API.example/other", cache=cache) == first
    assert await policy.check("https://api.example:443/", cache=cache) == first
    assert resolver.calls == [("api.example", 443)]
    await policy.check("http://api.example/", cache=cache)  # another scheme, another origin
    await policy.check("https://api.example:8443/", cache=cache)
    other = EgressPolicy(resolver=resolver)  # equal, but not the policy that checked
    await other.check("https://api.example/", cache=cache)
    assert len(resolver.calls) == 4
    with pytest.raises(EgressDenied, match="user name or password"):
        await policy.check("https://u:p@api.example/", cache=cache)  # vetted despite the hit


async def test_the_cache_keeps_a_bounded_number_of_origins() -> None:
    resolver = RecordingResolver({f"h{i}.example": ["93.184.216.34"] for i in range(3)})
    policy = EgressPolicy(resolver=resolver)
    cache = CheckedTargetCache(5.0, max_entries=2)
    for i in (0, 1, 2, 2, 1, 0):
        await policy.check(f"https://h{i}.example/", cache=cache)
    # h0 made room for h2 and was resolved again; h1 and h2 were still held.
    assert [host for host, _ in resolver.calls] == [
        "h0.example",
        "h1.example",
        "h2.example",
        "h0.example",
    ]
