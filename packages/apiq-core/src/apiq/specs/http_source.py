"""`HttpSpecSource`: fetch an API description over HTTP(S), bounded in time and bytes.

SECURITY.md "Hostile specs": one total deadline for connect + headers + body (a server that
drips a byte at a time cannot hold a worker past it), a budget on decoded bytes counted while
streaming (refused early when Content-Length already exceeds it), at most one gzip/deflate
layer, and every redirect hop re-checked by the egress policy. The httpx client is borrowed:
the composition root builds it with `apiq.egress.egress_client(policy)` and closes it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import httpx

from apiq.config import SpecLimits
from apiq.egress import send_following_redirects
from apiq.egress.policy import display_url
from apiq.errors import ApiqError, SpecInvalid, SpecTooLarge, SpecUnreachable
from apiq.models import FetchedSpec
from apiq.specs.content_encoding import read_bounded

__all__ = ["HttpSpecSource", "media_type_of"]

_DEFAULT_LIMITS = SpecLimits()

_ACCEPT = "application/json, application/yaml;q=0.9, text/yaml;q=0.9, */*;q=0.1"
_JSON_TYPES = frozenset({"application/json", "text/json"})
_YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_HTML_PAGE = (
    "the server answered with an HTML page, not an API description: is the URL behind a login?"
)


def media_type_of(content_type: str | None, *, source: str) -> str | None:
    """`application/json`, `application/yaml`, or None (sniff) for a Content-Type header.

    Raises:
        SpecInvalid: the server answered with an HTML page.
    """
    if not content_type:
        return None
    essence = content_type.split(";", 1)[0].strip().lower()
    if essence in _HTML_TYPES:
        raise SpecInvalid(f"{source}: {_HTML_PAGE}", source=source)
    if essence in _JSON_TYPES or essence.endswith("+json"):
        return "application/json"
    if essence in _YAML_TYPES or essence.endswith("+yaml"):
        return "application/yaml"
    return None


def _looks_like_html(content: bytes) -> bool:
    head = content[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


class HttpSpecSource:
    """SpecSource over HTTP(S) through a borrowed, egress-checked httpx client.

    Args:
        client: built by the composition root with `apiq.egress.egress_client(policy)`;
            this source never closes it.
        limits: `timeout_s` is the total deadline of one fetch, `max_bytes` the decoded
            byte budget.
    """

    def __init__(self, client: httpx.AsyncClient, *, limits: SpecLimits = _DEFAULT_LIMITS) -> None:
        self._client = client
        self._limits = limits

    async def fetch(self, ref: str, *, etag: str | None = None) -> FetchedSpec:
        """GET `ref`; with `etag`, a 304 answer gives `FetchedSpec(not_modified=True)`.

        Raises:
            SpecUnreachable: network error, total deadline passed, or an HTTP error status.
            SpecTooLarge: Content-Length or the decoded body exceeds `limits.max_bytes`.
            SpecInvalid: an HTML page, or an unsupported or corrupt Content-Encoding.
            EgressDenied: the URL or a redirect hop is refused by the egress policy.
        """
        shown = display_url(ref)
        timeout = self._limits.timeout_s
        started = time.monotonic()
        try:
            with anyio.fail_after(timeout):
                return await self._fetch(ref, etag, shown)
        except ApiqError:
            raise
        except (TimeoutError, httpx.TimeoutException):
            waited = time.monotonic() - started
            raise SpecUnreachable(
                f"fetching {shown} timed out after {timeout:g} s (total deadline for connect, "
                f"headers and body; gave up at {waited:.1f} s); raise APIQ_SPEC_TIMEOUT_S if the "
                "server is slow but trusted",
                source=shown,
            ) from None
        except httpx.HTTPError as exc:
            raise SpecUnreachable(
                f"could not fetch {shown}: {type(exc).__name__}: {exc}; check the URL and that "
                "the server is up",
                source=shown,
            ) from exc
        except httpx.InvalidURL as exc:
            raise SpecUnreachable(
                f"{shown} is not a valid URL ({exc}); give an http(s) URL or a file path",
                source=shown,
            ) from None

    async def _fetch(self, ref: str, etag: str | None, shown: str) -> FetchedSpec:
        headers = {"Accept": _ACCEPT, "Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        request = self._client.build_request("GET", ref, headers=headers)
        response = await send_following_redirects(self._client, request, stream=True)
        try:
            return await self._read(ref, response, etag, shown)
        finally:
            # Shielded so that a deadline that fires mid-body still closes the connection.
            with anyio.CancelScope(shield=True):
                await response.aclose()

    async def _read(
        self, ref: str, response: httpx.Response, etag: str | None, shown: str
    ) -> FetchedSpec:
        status = response.status_code
        if status == 304:
            if etag is None:
                raise SpecUnreachable(
                    f"{shown} answered 304 Not Modified to a request that sent no ETag",
                    source=shown,
                    status_code=status,
                )
            return FetchedSpec(
                url=ref, content=b"", etag=response.headers.get("etag", etag), not_modified=True
            )
        if not 200 <= status < 300:
            raise SpecUnreachable(
                f"{shown} answered HTTP {status} {response.reason_phrase}; check the URL and "
                "that the document is public or the credentials are right",
                source=shown,
                status_code=status,
            )
        media_type = media_type_of(response.headers.get("content-type"), source=shown)
        limit = self._limits.max_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise SpecTooLarge(
                f"{shown} declares {int(declared)} bytes (Content-Length), more than the "
                f"{limit}-byte budget; raise APIQ_SPEC_MAX_BYTES if this document is trusted",
                source=shown,
                limit=limit,
                size=int(declared),
            )
        content = await read_bounded(response, limit=limit, source=shown)
        if media_type is None and _looks_like_html(content):
            raise SpecInvalid(f"{shown}: {_HTML_PAGE}", source=shown)
        return FetchedSpec(
            url=ref, content=content, media_type=media_type, etag=response.headers.get("etag")
        )


if TYPE_CHECKING:
    from apiq.ports import SpecSource

    _: type[SpecSource] = HttpSpecSource
