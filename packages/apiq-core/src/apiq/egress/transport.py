"""An httpx transport that checks every request and connects only to the checked address.

`EgressTransport` runs `EgressPolicy.check` on each request (so every redirect hop is
checked too), then rewrites the URL's host to one of the checked IP addresses. The Host
header keeps the original name, and for https the TLS server name (SNI) and certificate
check use the original name as well, so nothing resolves the name a second time and a DNS
answer that changes between check and connect (rebinding) has no effect. An origin's
allowed check is reused for a few seconds (`check_ttl_s`, see `apiq.egress.target_cache`):
the reused target holds the addresses that were checked, so the pinning is the same.

Connection pools key on (scheme, host, port); with the host rewritten to an IP, two https
names on one IP would share a TLS connection whose certificate was checked for only one of
them. The default inner transport therefore keeps one pool per https server name.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx

from apiq.egress.policy import CheckedTarget, EgressPolicy, _UnresolvedHost, display_url
from apiq.egress.target_cache import DEFAULT_CHECK_TTL_S, CheckedTargetCache
from apiq.errors import ConfigurationError, EgressDenied

__all__ = ["EgressTransport", "egress_client"]

# Options that would route requests around the EgressTransport or follow redirects unchecked.
_BYPASSING_OPTIONS = ("transport", "mounts", "proxy", "app")


class EgressTransport(httpx.AsyncBaseTransport):
    """Checks each request against an `EgressPolicy` and pins it to a checked address.

    Args:
        policy: The policy every request must pass.
        inner: The transport that sends the pinned request; it sees URLs whose host is an IP
            address. None builds httpx transports with one pool per https server name. The
            inner transport is closed with this one.
        verify: TLS verification for the default inner transports (`True`, `False` or an
            `ssl.SSLContext`); ignored when `inner` is given.
        check_ttl_s: Seconds an origin's allowed check is reused before its host is
            resolved and judged again; 0 checks every request afresh.
        clock: Monotonic seconds, for `check_ttl_s`.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        verify: ssl.SSLContext | bool = True,
        check_ttl_s: float = DEFAULT_CHECK_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._checked = CheckedTargetCache(check_ttl_s, clock=clock)
        self._inner = inner
        self._verify = verify
        self._ssl_context: ssl.SSLContext | None = None
        self._pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check `request.url`, then send it to the first checked address that connects.

        Raises:
            EgressDenied: The policy refused the URL; nothing was sent.
            httpx.ConnectError: The host did not resolve, or no checked address accepted
                the connection.
        """
        try:
            target = await self.policy.check(request.url, cache=self._checked)
        except _UnresolvedHost as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        transport = self._transport_for(target)
        failure: httpx.ConnectError | None = None
        for address in target.addresses:
            try:
                response = await transport.handle_async_request(_pinned(request, target, address))
            except httpx.ConnectError as exc:
                # Nothing was sent on a failed connect, so the next checked address may try.
                failure = exc
                continue
            await _refuse_invalid_location(request, response)
            return response
        assert failure is not None  # check() never returns an empty address list
        self._checked.forget(target)  # the API may have moved: resolve again next time
        raise failure

    def _transport_for(self, target: CheckedTarget) -> httpx.AsyncBaseTransport:
        if self._inner is not None:
            return self._inner
        key = f"https://{target.host}" if target.scheme == "https" else "http"
        pool = self._pools.get(key)
        if pool is None:
            if self._ssl_context is None:
                verify = self._verify
                self._ssl_context = (
                    verify
                    if isinstance(verify, ssl.SSLContext)
                    else httpx.create_ssl_context(verify=verify)
                )
            pool = self._pools[key] = httpx.AsyncHTTPTransport(verify=self._ssl_context)
        return pool

    async def aclose(self) -> None:
        """Close the inner transport, or every pool this transport opened."""
        pools = [self._inner] if self._inner is not None else list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            await pool.aclose()


async def _refuse_invalid_location(request: httpx.Request, response: httpx.Response) -> None:
    """Refuse a redirect whose Location httpx cannot parse, like any other invalid URL.

    httpx parses Location as soon as a redirect arrives (even when not following) and would
    raise RemoteProtocolError; every unusable URL is an egress refusal here instead.
    """
    if response.status_code not in (301, 302, 303, 307, 308):
        return
    location = response.headers.get("location")
    if location is None:
        return
    try:
        httpx.URL(location)
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        await response.aclose()
        shown = display_url(location)
        raise EgressDenied(
            f"Refused redirect from {display_url(request.url)} to {shown}: the Location is not "
            f"a valid URL ({exc}).",
            url=shown,
        ) from exc


def _pinned(request: httpx.Request, target: CheckedTarget, address: str) -> httpx.Request:
    """`request` addressed to `address`, with the original Host and TLS name."""
    sni = target.host if target.scheme == "https" and target.host not in target.addresses else None
    if (
        sni is None
        and request.url.host == address
        and "host" in request.headers
        and "sni_hostname" not in request.extensions
    ):
        # The URL already names the checked address (an IP literal): connecting to it
        # resolves nothing, and a rewritten copy would be identical.
        return request
    headers = request.headers.copy()
    if "host" not in headers:
        headers["Host"] = request.url.netloc.decode("ascii")
    extensions = dict(request.extensions)
    extensions.pop("sni_hostname", None)
    if sni is not None:
        extensions["sni_hostname"] = sni  # also the name the certificate must match
    return httpx.Request(
        request.method,
        request.url.copy_with(host=address),
        headers=headers,
        stream=request.stream,
        extensions=extensions,
    )


class _UnlearnedCookies(httpx.Cookies):
    """A client cookie jar that never learns from responses.

    One egress client serves every principal: a cookie one API set in answer to Alice's call
    would otherwise ride along on Bob's next call to that host. Cookies a request needs are
    passed with that request (a connection's cookie credentials are).
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        return


class _EgressClient(httpx.AsyncClient):
    """An AsyncClient whose unparseable URLs are egress refusals like every other bad URL.

    It keeps its `policy`, so `send_following_redirects` applies the policy's redirect limit,
    and its cookie jar never learns from responses (see `_UnlearnedCookies`).
    """

    def __init__(self, policy: EgressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.cookies = self._cookies

    @property
    def cookies(self) -> httpx.Cookies:
        """Cookies sent with every request: only those given to the client, never learned."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies = _UnlearnedCookies(cookies)

    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        try:
            return super().build_request(*args, **kwargs)
        except httpx.InvalidURL as exc:
            url = kwargs.get("url", args[1] if len(args) > 1 else "")
            shown = display_url(url) if isinstance(url, str | httpx.URL) else "the URL"
            raise EgressDenied(
                f"Refused {shown}: not a valid URL ({exc}); use an absolute http or https URL.",
                url=shown,
            ) from exc


def egress_client(
    policy: EgressPolicy, *, check_ttl_s: float = DEFAULT_CHECK_TTL_S, **kwargs: Any
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` whose every request passes `policy` and never auto-redirects.

    Follow redirects with `send_following_redirects`, which re-checks each hop, strips
    credentials when a hop leaves the origin and stops after `policy.max_redirects` hops.

    Args:
        policy: The egress policy.
        check_ttl_s: Seconds an origin's allowed check is reused (see `EgressTransport`).
        **kwargs: Passed to `httpx.AsyncClient` (timeout, headers, auth, base_url, ...);
            `verify` configures TLS of the egress transport.

    Raises:
        ConfigurationError: `transport`, `mounts` or `proxy` (which would bypass the policy)
            or `follow_redirects=True` was given.
    """
    for name in _BYPASSING_OPTIONS:
        if name in kwargs:
            raise ConfigurationError(
                f"egress_client() does not accept {name}=: it would route requests around the "
                "egress policy; wrap your transport in EgressTransport(policy, inner=...) instead."
            )
    if kwargs.pop("follow_redirects", False):
        raise ConfigurationError(
            "egress_client() does not follow redirects itself; use send_following_redirects() "
            "so every hop is checked and credentials stay with their origin."
        )
    transport = EgressTransport(policy, verify=kwargs.pop("verify", True), check_ttl_s=check_ttl_s)
    return _EgressClient(policy, transport=transport, follow_redirects=False, **kwargs)
