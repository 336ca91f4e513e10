"""Which IP addresses an outbound request may reach (public ones only), and literal hosts.

The judgement runs on addresses, never on host names, so every spelling of an address
(`2130706433`, `127.1`, `0x7f.1`, `[::ffff:127.0.0.1]`) meets the same rules once resolved
or parsed. IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo,
IPv4-compatible) are unwrapped and the embedded address is judged too.

Python's own `is_global` tables vary between patch releases (3.11.7 calls `::ffff:127.0.0.1`
and `64:ff9b:1::/48` global), so the ranges that matter are spelled out here and `is_global`
is only the last net.
"""

from __future__ import annotations

import string
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

__all__ = ["IPAddress", "is_loopback", "parse_literal", "refusal_reason"]

IPAddress = IPv4Address | IPv6Address

_HEX = frozenset(string.hexdigits)

# Cloud instance-metadata endpoints: named first so the refusal says what they are.
_METADATA: dict[IPAddress, str] = {
    IPv4Address("169.254.169.254"): "the cloud instance-metadata address (AWS, GCP, Azure, OCI)",
    IPv4Address("169.254.170.2"): "the AWS ECS task-metadata address",
    IPv4Address("100.100.100.200"): "the Alibaba Cloud metadata address",
    # Azure's WireServer sits in public space but answers only inside Azure VMs.
    IPv4Address("168.63.129.16"): "the Azure WireServer metadata address",
    IPv6Address("fd00:ec2::254"): "the AWS IPv6 instance-metadata address",
}


def _v4(cidr: str, what: str) -> tuple[IPv4Network, str]:
    return IPv4Network(cidr), f"{what} ({cidr})"


def _v6(cidr: str, what: str) -> tuple[IPv6Network, str]:
    return IPv6Network(cidr), f"{what} ({cidr})"


# IANA IPv4 special-purpose ranges that are not globally reachable, plus multicast/reserved.
_IPV4_DENIED = (
    _v4("0.0.0.0/8", "the 'this network' range"),
    _v4("10.0.0.0/8", "a private network"),
    _v4("100.64.0.0/10", "carrier-grade NAT shared space"),
    _v4("127.0.0.0/8", "a loopback address"),
    _v4("169.254.0.0/16", "a link-local address"),
    _v4("172.16.0.0/12", "a private network"),
    _v4("192.0.0.0/24", "IETF protocol assignments"),
    _v4("192.0.2.0/24", "a documentation range"),
    _v4("192.88.99.0/24", "the deprecated 6to4 relay range"),
    _v4("192.168.0.0/16", "a private network"),
    _v4("198.18.0.0/15", "a benchmarking range"),
    _v4("198.51.100.0/24", "a documentation range"),
    _v4("203.0.113.0/24", "a documentation range"),
    _v4("224.0.0.0/4", "a multicast address"),
    _v4("240.0.0.0/4", "a reserved or broadcast address"),
)

_IPV6_DENIED = (
    _v6("::/128", "the unspecified address"),
    _v6("::1/128", "a loopback address"),
    _v6("::/96", "the deprecated IPv4-compatible form"),
    _v6("64:ff9b:1::/48", "the NAT64 local-use prefix, not globally reachable"),
    _v6("100::/64", "the discard-only range"),
    _v6("2001::/32", "a Teredo tunnel address, not reliably reachable"),
    _v6("2001::/23", "IETF protocol assignments"),
    _v6("2001:db8::/32", "a documentation range"),
    _v6("3fff::/20", "a documentation range"),
    _v6("fc00::/7", "a unique-local (private) address"),
    _v6("fe80::/10", "a link-local address"),
    _v6("fec0::/10", "a deprecated site-local address"),
    _v6("ff00::/8", "a multicast address"),
)

_GLOBAL_UNICAST = IPv6Network("2000::/3")
_NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_SIXTOFOUR = IPv6Network("2002::/16")
_TEREDO = IPv6Network("2001::/32")
_IPV4_COMPATIBLE = IPv6Network("::/96")


def _ipv4_reason(address: IPv4Address) -> str | None:
    if address in _METADATA:
        return _METADATA[address]
    for network, reason in _IPV4_DENIED:
        if address in network:
            return reason
    if not address.is_global:
        return "an address that is not globally reachable"
    return None


def _embedded_ipv4(address: IPv6Address) -> list[tuple[str, IPv4Address]]:
    """Every IPv4 address an IPv6 address carries, named by the form that carries it."""
    value = int(address)
    low32 = IPv4Address(value & 0xFFFFFFFF)
    if address in _NAT64_WELL_KNOWN:
        return [("NAT64", low32)]
    if address in _NAT64_LOCAL:
        # RFC 6052 /48 layout puts the IPv4 bits around the reserved "u" octet (bits 64-71);
        # the /96 layout is the common deployment. Either may be in use, so judge both.
        packed = address.packed
        as96 = ("NAT64 local-use (/96 layout)", low32)
        if not any(packed[6:12]):
            return [as96]  # zero-filled middle: the /96 layout
        return [("NAT64 local-use (/48 layout)", IPv4Address(packed[6:8] + packed[9:11])), as96]
    if address in _SIXTOFOUR and address.sixtofour is not None:
        return [("6to4", address.sixtofour)]
    if address in _TEREDO and address.teredo is not None:
        server, client = address.teredo  # the client address is stored bit-inverted
        return [("Teredo client", client), ("Teredo server", server)]
    if address in _IPV4_COMPATIBLE and value > 1:
        return [("IPv4-compatible", low32)]
    return []


def refusal_reason(address: IPAddress) -> str | None:
    """Why `address` must not be reached, or None when it is a public address.

    Args:
        address: A resolved or literal address.

    Returns:
        A phrase that completes "the host resolves to X, which is ..."; None when allowed.
    """
    if isinstance(address, IPv4Address):
        return _ipv4_reason(address)
    if address.scope_id:
        return "a scoped (interface-bound) address"
    mapped = address.ipv4_mapped
    if mapped is not None:
        # An IPv4-mapped address is the IPv4 host itself, so only the IPv4 verdict counts.
        inner = _ipv4_reason(mapped)
        return None if inner is None else f"the IPv4-mapped form of {mapped}, {inner}"
    for form, embedded in _embedded_ipv4(address):
        inner = _ipv4_reason(embedded)
        if inner is not None:
            return f"the {form} form of {embedded}, {inner}"
    if address in _NAT64_WELL_KNOWN:
        return None  # the well-known prefix only translates to the (public) embedded address
    if address in _METADATA:
        return _METADATA[address]
    for network, reason in _IPV6_DENIED:
        if address in network:
            return reason
    if address not in _GLOBAL_UNICAST:
        return "outside the global unicast range (2000::/3)"
    if not address.is_global:
        return "an address that is not globally reachable"
    return None


def is_loopback(address: IPAddress) -> bool:
    """Whether `address` is a loopback address, also in its IPv4-mapped IPv6 form."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def parse_literal(host: str) -> IPAddress | None:
    """The address a literal URL host denotes, None for a name; ValueError when malformed.

    Follows the WHATWG URL rule: a host whose last label is a number is an IPv4 address in
    any of inet_aton's forms (`2130706433`, `127.1`, `0x7f.1`, `0177.0.0.1`) or invalid,
    so such hosts never reach a resolver that might read them differently.
    """
    if ":" in host:
        return IPv6Address(host.replace("%25", "%"))  # URLs percent-encode the zone "%"
    labels = host.split(".")
    if len(labels) > 1 and not labels[-1]:
        labels.pop()
    if not _is_number(labels[-1]):
        return None
    if len(labels) > 4:
        raise ValueError(f"too many parts in IPv4 address {host!r}")
    numbers = [_ipv4_number(label) for label in labels]
    if any(number > 255 for number in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"IPv4 address {host!r} is out of range")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return IPv4Address(value)


def _is_number(label: str) -> bool:
    if label[:2] in ("0x", "0X"):
        return _HEX.issuperset(label[2:])
    return label.isascii() and label.isdigit()


def _ipv4_number(label: str) -> int:
    if not label:
        raise ValueError("empty part in IPv4 address")
    if label[:2] in ("0x", "0X"):
        if not _HEX.issuperset(label[2:]):
            raise ValueError(f"bad hexadecimal part {label!r}")
        return int(label[2:] or "0", 16)
    if not (label.isascii() and label.isdigit()):
        raise ValueError(f"bad IPv4 part {label!r}")
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)  # ValueError for 8 and 9, as inet_aton refuses them
    return int(label)
