"""The egress policy: may this process send a request to this URL?

`EgressPolicy.check` parses the URL, resolves its host once and judges every address (see
`apiq.egress.addresses`). The result, `CheckedTarget`, lists the addresses that passed, so
the transport can connect to one of them instead of resolving again (DNS rebinding).

URLs with a user name or password (`http://user:pass@host/`) are refused, not stripped:
credentials in URLs end up in logs and follow redirects, and silently dropping them would
send an unauthenticated request the caller did not mean to send.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING

import anyio
import httpx

from apiq.egress.addresses import IPAddress, is_loopback, parse_literal, refusal_reason
from apiq.errors import ConfigurationError, EgressDenied

if TYPE_CHECKING:
    from apiq.egress.target_cache import CheckedTargetCache

__all__ = ["CheckedTarget", "EgressPolicy", "Resolver", "display_url"]

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves (host, port) to IP address strings; raises OSError when the name is unknown."""

_ALLOW_ENV = "APIQ_EGRESS_ALLOW"
_AUTHORITY_USERINFO = re.compile(r"//[^/?#]*@")
_ANY_USERINFO = re.compile(r"//[^?#]*@")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _UnresolvedHost(EgressDenied):
    """The host name did not resolve; the transport reports this as a connect error."""


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """Where a checked URL may connect: its origin and every address that passed."""

    scheme: str
    """`http` or `https`."""
    host: str
    """The URL's host, lowercase and IDNA-encoded; the canonical address for IP literals."""
    port: int
    """The explicit port, or the scheme's default."""
    addresses: tuple[str, ...]
    """Every address the host resolved to, in resolver order; all of them were checked."""


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Refuses outbound requests to anything but public http(s) addresses.

    Example:
        >>> policy = EgressPolicy.from_env()  # APIQ_EGRESS_ALLOW=127.0.0.1:8080 for a test
        >>> target = await policy.check("https://api.example.com/v1/pets")
    """

    allow: frozenset[tuple[str, int]] = frozenset()
    """Exact loopback (host, port) pairs that may be reached, for tests and demos; empty
    by default. A pair is honoured only when every address the host resolves to is loopback."""
    resolver: Resolver | None = None
    """Name resolution; None uses the system resolver (`anyio.getaddrinfo`), once per check."""
    max_redirects: int = 3
    """Most redirect hops a request may follow (`send_following_redirects`)."""

    def __post_init__(self) -> None:
        if isinstance(self.max_redirects, bool) or not isinstance(self.max_redirects, int):
            raise ConfigurationError("max_redirects must be an int, e.g. 3")
        if self.max_redirects < 0:
            raise ConfigurationError(f"max_redirects must be 0 or more, not {self.max_redirects}")
        normalized = frozenset(_allow_pair(host, port) for host, port in self.allow)
        object.__setattr__(self, "allow", normalized)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> EgressPolicy:
        """Build the policy from `APIQ_EGRESS_ALLOW` (unset or empty: nothing allowed).

        Args:
            environ: Where to read the variable, e.g. `{"APIQ_EGRESS_ALLOW":
                "127.0.0.1:8080,localhost:9000,[::1]:8000"}`.

        Raises:
            ConfigurationError: An entry is not `host:port` or names a non-loopback host.
        """
        pairs: list[tuple[str, int]] = []
        for raw in environ.get(_ALLOW_ENV, "").split(","):
            entry = raw.strip()
            if not entry:
                continue
            host, sep, port_text = entry.rpartition(":")
            bracketed = host.startswith("[") and host.endswith("]")
            if not sep or not host or not (port_text.isascii() and port_text.isdigit()):
                raise ConfigurationError(
                    f"{_ALLOW_ENV} entry {entry!r} is not host:port; write for example "
                    f"{_ALLOW_ENV}=127.0.0.1:8080,localhost:9000,[::1]:8000"
                )
            if ":" in host and not bracketed:
                raise ConfigurationError(
                    f"{_ALLOW_ENV} entry {entry!r}: put IPv6 addresses in brackets, e.g. [::1]:8000"
                )
            pairs.append((host, int(port_text)))
        return cls(allow=frozenset(pairs))

    async def check(
        self, url: str | httpx.URL, *, cache: CheckedTargetCache | None = None
    ) -> CheckedTarget:
        """Resolve `url`'s host once and return its addresses if every one may be reached.

        Args:
            url: An absolute http or https URL.
            cache: Recent results of this policy, by origin (`EgressTransport` keeps one);
                a fresh entry stands for the resolution and judgement of its origin. The URL
                itself (scheme, user info, host) is vetted on every call.

        Returns:
            The origin and the checked addresses; connect only to these.

        Raises:
            EgressDenied: The URL is invalid, has another scheme, carries credentials, its
                host does not resolve, or any address is not public (and not allowed).
        """
        parsed = _parse(url)
        scheme = parsed.scheme
        port = _DEFAULT_PORTS[scheme] if parsed.port is None else parsed.port
        try:
            host = parsed.raw_host.decode("ascii").lower()
            if cache is not None:
                cached = cache.get(self, scheme, host, port)
                if cached is not None:
                    return cached
            written = host
            literal = parse_literal(host)
        except (UnicodeError, ValueError) as exc:
            shown = display_url(parsed)
            raise EgressDenied(
                f"Refused {shown}: host {parsed.host!r} looks like a numeric IP address but is "
                "not a valid one; use a host name or a dotted IPv4 / bracketed IPv6 address.",
                url=shown,
            ) from exc
        if literal is not None:
            host = str(literal)
            addresses: list[IPAddress] = [literal]
        else:
            addresses = await self._resolve(host, port, parsed)
        self._judge(host, port, addresses, parsed)
        target = CheckedTarget(scheme, host, port, tuple(str(address) for address in addresses))
        if cache is not None:
            cache.put(self, scheme, written, port, target)
        return target

    async def _resolve(self, host: str, port: int, url: httpx.URL) -> list[IPAddress]:
        resolver = self.resolver or _system_resolver
        try:
            answers = await resolver(host, port)
        except (OSError, UnicodeError, ValueError) as exc:
            shown = display_url(url)
            raise _UnresolvedHost(
                f"Refused {shown}: could not resolve {host} ({exc}); check the host name.",
                url=shown,
            ) from exc
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                address = ip_address(answer)
            except ValueError as exc:
                shown = display_url(url)
                raise EgressDenied(
                    f"Refused {shown}: the resolver answered {answer!r} for {host}, which is not "
                    "an IP address; check the resolver.",
                    url=shown,
                ) from exc
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            shown = display_url(url)
            raise _UnresolvedHost(
                f"Refused {shown}: {host} resolved to no addresses; check the host name.",
                url=shown,
            )
        return addresses

    def _judge(self, host: str, port: int, addresses: list[IPAddress], url: httpx.URL) -> None:
        allowed = (host, port) in self.allow
        for address in addresses:
            # "10.0.0.1 is ..." for a literal, "db.internal resolves to 10.0.0.1, which is ..."
            where = (
                f"{address} is"
                if host == str(address)
                else f"{host} resolves to {address}, which is"
            )
            if allowed:
                if not is_loopback(address):
                    shown = display_url(url)
                    raise EgressDenied(
                        f"Refused {shown}: {_entry(host, port)} is on {_ALLOW_ENV}, but {where} "
                        "not a loopback address; the allow-list admits only loopback.",
                        url=shown,
                        address=str(address),
                    )
                continue
            reason = refusal_reason(address)
            if reason is None:
                continue
            if is_loopback(address) and _is_loopback_name(host):
                advice = f"to reach a local test server, add {_entry(host, port)} to {_ALLOW_ENV}."
            else:
                advice = "APIQ only sends requests to public internet addresses."
            shown = display_url(url)
            raise EgressDenied(
                f"Refused {shown}: {where} {reason}; {advice}",
                url=shown,
                address=str(address),
            )


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]


def display_url(url: str | httpx.URL) -> str:
    """`url` safe for messages and logs: no user info, no query values, no fragment.

    Query strings often carry API keys, so only the fact that there was one is shown.
    """
    if isinstance(url, str):
        # By pattern, so that paths keep their spelling (`C:\\specs`, spaces) in messages.
        try:
            httpx.URL(url)
            userinfo = _AUTHORITY_USERINFO  # user info ends before the first "/" (RFC 3986)
        except (httpx.InvalidURL, TypeError, ValueError, UnicodeError):
            userinfo = _ANY_USERINFO  # too broken to tell: a password may hold a stray "/"
        text = userinfo.sub("//…@", url, count=1)
        text = re.split(r"[?#]", text, maxsplit=1)[0][:200]
        return text + "?…" if "?" in url else text
    shown = str(url.copy_with(userinfo=b"", query=None, fragment=None))
    return shown + "?…" if url.query else shown


def _parse(url: str | httpx.URL) -> httpx.URL:
    """Parse and vet everything but the host's addresses.

    The display form is built only for a refusal: it costs a second URL parse, which every
    allowed request would otherwise pay.
    """
    if isinstance(url, httpx.URL):
        parsed = url
    else:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError, UnicodeError) as exc:
            shown = display_url(str(url))
            raise EgressDenied(
                f"Refused {shown}: not a valid URL ({exc}); use an absolute http or https URL.",
                url=shown,
            ) from exc
    if parsed.scheme not in _DEFAULT_PORTS:
        shown = display_url(parsed)
        what = f"scheme {parsed.scheme!r}" if parsed.scheme else "a URL without a scheme"
        raise EgressDenied(
            f"Refused {shown}: {what} is not allowed; APIQ only sends http and https requests.",
            url=shown,
        )
    if parsed.userinfo:
        shown = display_url(parsed)
        raise EgressDenied(
            f"Refused {shown}: the URL contains a user name or password; remove it and give the "
            "credentials to the connection's auth settings instead.",
            url=shown,
        )
    if not parsed.raw_host:
        shown = display_url(parsed)
        raise EgressDenied(f"Refused {shown}: the URL has no host.", url=shown)
    return parsed


def _is_loopback_name(host: str) -> bool:
    """Whether `host` may appear on the allow-list: a loopback name or address."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        literal = parse_literal(host)
    except ValueError:
        return False
    return literal is not None and is_loopback(literal)


def _allow_pair(host: object, port: object) -> tuple[str, int]:
    """Validate and normalize one allow-list pair; ConfigurationError when it is not loopback."""
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        raise ConfigurationError(
            f"allow-list entries are (host, port) pairs like ('127.0.0.1', 8080), not "
            f"({host!r}, {port!r})"
        )
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not 0 < port < 65536:
        raise ConfigurationError(f"{_ALLOW_ENV} entry {host}:{port}: port must be 1-65535")
    if not name or not _is_loopback_name(name):
        raise ConfigurationError(
            f"{_ALLOW_ENV} entry {host}:{port} is not a loopback name or address; it admits only "
            "localhost, *.localhost, 127.0.0.0/8 and ::1, for local test servers."
        )
    literal = parse_literal(name)
    return (str(literal) if literal is not None else name, port)


def _entry(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
