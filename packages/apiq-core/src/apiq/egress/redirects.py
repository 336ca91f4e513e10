"""Following redirects by hand: bounded, re-checked, and without leaking credentials.

httpx's own redirect handling keeps API-key headers and cookies when a redirect changes
host, and re-applies the client's `auth` to every hop. `send_following_redirects` follows
redirects itself: each hop goes back through the client's `EgressTransport` (so it is
checked like the first request), and once a hop leaves the origin (scheme, host, port)
every credential is dropped for the rest of the chain.
"""

from __future__ import annotations

from collections.abc import Collection

import httpx

from apiq.egress.policy import EgressPolicy, display_url
from apiq.egress.transport import _EgressClient
from apiq.errors import EgressDenied

__all__ = ["send_following_redirects"]

# Always credentials; callers add their API-key header names through `credential_headers`.
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
_DEFAULT_POLICY = EgressPolicy()
# Headers that describe a body, dropped when a redirect turns the request into a GET.
_BODY_HEADERS = ("content-length", "transfer-encoding", "content-type", "content-encoding")


async def send_following_redirects(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    max_redirects: int | None = None,
    credential_headers: Collection[str] = (),
    stream: bool = False,
) -> httpx.Response:
    """Send `request` with `client`, following at most `max_redirects` redirects.

    Use a client from `egress_client` so every hop passes the egress policy. 303, and 301
    or 302 answering a POST, continue as a GET without body (RFC 9110 §15.4); 307 and 308
    resend the same method and body. Redirect responses are closed unread and kept in
    `response.history`.

    Args:
        client: The client that sends each hop.
        request: The first request.
        max_redirects: Most redirects to follow; one more is refused. None takes the
            limit of the client's egress policy (`EgressPolicy.max_redirects`, default 3).
        credential_headers: Header names that carry credentials (API keys) besides
            Authorization, Proxy-Authorization and Cookie; all are dropped, and the
            client's `auth` is no longer applied, once a hop leaves the first origin.
        stream: Return without reading the final body; the caller must close the response.

    Returns:
        The first response that is not a redirect.

    Raises:
        EgressDenied: A hop was refused by the policy, the Location was not a valid URL,
            or there were more than `max_redirects` redirects.
    """
    if max_redirects is None:
        policy = client.policy if isinstance(client, _EgressClient) else _DEFAULT_POLICY
        max_redirects = policy.max_redirects
    history: list[httpx.Response] = []
    current = request
    left_origin = False
    while True:
        if left_origin:
            # auth=None: the client's own auth must not follow the chain to another origin.
            response = await client.send(current, stream=True, auth=None, follow_redirects=False)
        else:
            response = await client.send(current, stream=True, follow_redirects=False)
        if not response.has_redirect_location:
            break
        await response.aclose()  # unread: a redirect body is not worth a hostile server's bytes
        history.append(response)
        following = _next_request(current, response)
        if len(history) > max_redirects:
            raise EgressDenied(
                f"Refused {display_url(following.url)}: more than {max_redirects} redirects "
                f"starting at {display_url(request.url)}; the server may redirect in a loop, "
                "or call the final URL directly.",
                url=display_url(following.url),
            )
        if left_origin or _origin(following.url) != _origin(current.url):
            left_origin = True
            for name in {name.lower() for name in (*_CREDENTIAL_HEADERS, *credential_headers)}:
                following.headers.pop(name, None)
        current = following
    response.history = history
    if not stream:
        try:
            await response.aread()
        finally:
            if not response.is_closed:
                await response.aclose()
    return response


def _next_request(current: httpx.Request, response: httpx.Response) -> httpx.Request:
    """The request a redirect response asks for; EgressDenied when its Location is bad."""
    location = response.headers["location"]
    try:
        url = current.url.join(location)
    except (httpx.InvalidURL, TypeError, ValueError, UnicodeError) as exc:
        shown = display_url(location)
        raise EgressDenied(
            f"Refused redirect from {display_url(current.url)} to {shown}: the Location is not "
            f"a valid URL ({exc}).",
            url=shown,
        ) from exc
    if current.url.fragment and not url.fragment:
        url = url.copy_with(fragment=current.url.fragment)

    method = current.method
    status = response.status_code
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method = "GET"
    headers = current.headers.copy()
    stream = current.stream
    if method != current.method:
        for name in _BODY_HEADERS:
            headers.pop(name, None)
        stream = httpx.ByteStream(b"")
    headers["Host"] = url.netloc.decode("ascii")
    extensions = {k: v for k, v in current.extensions.items() if k != "sni_hostname"}
    return httpx.Request(method, url, headers=headers, stream=stream, extensions=extensions)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    # httpx keeps an explicit default port in some spellings (`HTTP://a:80/`), so normalize.
    default = {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host, default if url.port is None else url.port)
