"""HttpSpecSource over real loopback HTTP: statuses, ETags, encodings, deadlines, budgets."""

from __future__ import annotations

import gzip
import itertools
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiq.config import SpecLimits
from apiq.egress import EgressPolicy, egress_client
from apiq.errors import EgressDenied, SpecInvalid, SpecTooLarge, SpecUnreachable
from apiq.specs.content_encoding import BoundedDecoder, single_encoding
from apiq.specs.http_source import HttpSpecSource, media_type_of
from tests.core import spec_routes
from tests.core.spec_routes import ETAG, PETSTORE_JSON, PETSTORE_YAML
from tests.loopback import LoopbackServer, loopback_server

pytestmark = pytest.mark.anyio

SMALL = SpecLimits(max_bytes=1024 * 1024, timeout_s=1.0)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with loopback_server(spec_routes.routes()) as running:
        yield running


@pytest.fixture
async def source(server: LoopbackServer) -> AsyncIterator[HttpSpecSource]:
    policy = EgressPolicy(allow=frozenset({("127.0.0.1", server.port)}))
    async with egress_client(policy) as client:
        yield HttpSpecSource(client, limits=SMALL)


async def test_200_json_with_etag(source: HttpSpecSource, server: LoopbackServer) -> None:
    fetched = await source.fetch(server.url("/petstore.json"))
    assert fetched.content == PETSTORE_JSON
    assert (fetched.media_type, fetched.etag, fetched.not_modified) == (
        "application/json",
        ETAG,
        False,
    )
    assert fetched.url == server.url("/petstore.json")


async def test_304_when_the_etag_matches(source: HttpSpecSource, server: LoopbackServer) -> None:
    fetched = await source.fetch(server.url("/petstore.json"), etag=ETAG)
    assert fetched.not_modified
    assert (fetched.content, fetched.etag) == (b"", ETAG)
    method, _, headers = server.requests[-1]
    assert method == "GET"
    assert headers["If-None-Match"] == ETAG


async def test_200_when_the_etag_is_old(source: HttpSpecSource, server: LoopbackServer) -> None:
    fetched = await source.fetch(server.url("/petstore.json"), etag='"old"')
    assert not fetched.not_modified
    assert fetched.content == PETSTORE_JSON


@pytest.mark.parametrize(
    ("path", "media_type", "content"),
    [
        ("/petstore.yaml", "application/yaml", PETSTORE_YAML),
        ("/petstore.txt", None, PETSTORE_JSON),
        ("/vendor.json", "application/json", PETSTORE_JSON),
        ("/gzip.json", "application/json", PETSTORE_JSON),
        ("/deflate.json", "application/json", PETSTORE_JSON),
        ("/raw-deflate.json", "application/json", PETSTORE_JSON),
        ("/to-petstore", "application/json", PETSTORE_JSON),
    ],
)
async def test_media_types_encodings_and_same_origin_redirect(
    source: HttpSpecSource,
    server: LoopbackServer,
    path: str,
    media_type: str | None,
    content: bytes,
) -> None:
    fetched = await source.fetch(server.url(path))
    assert (fetched.media_type, fetched.content) == (media_type, content)


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/error.json", 500)])
async def test_http_errors_are_unreachable_with_status(
    source: HttpSpecSource, server: LoopbackServer, path: str, status: int
) -> None:
    with pytest.raises(SpecUnreachable, match=f"HTTP {status}") as caught:
        await source.fetch(server.url(path))
    assert caught.value.status_code == status


async def test_errors_name_the_url_without_its_query(
    source: HttpSpecSource, server: LoopbackServer
) -> None:
    with pytest.raises(SpecUnreachable) as caught:
        await source.fetch(server.url("/missing?api_key=s3cr3t"))
    assert caught.value.source == server.url("/missing?…")
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("path", ["/login", "/login-untyped"])
async def test_html_login_page_is_invalid(
    source: HttpSpecSource, server: LoopbackServer, path: str
) -> None:
    with pytest.raises(SpecInvalid, match=r"HTML page.*behind a login"):
        await source.fetch(server.url(path))


async def test_slow_drip_stops_at_the_total_deadline(
    source: HttpSpecSource, server: LoopbackServer
) -> None:
    # A byte every 0.2 s never trips a per-read timeout; only a total deadline ends this.
    with pytest.raises(SpecUnreachable, match=r"timed out after 1 s") as caught:
        await source.fetch(server.url("/drip.json"))
    assert caught.value.status_code is None


async def test_too_large_by_content_length(source: HttpSpecSource, server: LoopbackServer) -> None:
    with pytest.raises(SpecTooLarge, match="Content-Length") as caught:
        await source.fetch(server.url("/declared-big.json"))
    assert (caught.value.limit, caught.value.size) == (SMALL.max_bytes, 100 * 1024 * 1024)


@pytest.mark.parametrize("path", ["/chunked-big.json", "/close-delimited-big.json"])
async def test_too_large_while_streaming(
    source: HttpSpecSource, server: LoopbackServer, path: str
) -> None:
    with pytest.raises(SpecTooLarge) as caught:
        await source.fetch(server.url(path))
    assert caught.value.limit == SMALL.max_bytes


async def test_gzip_bomb_stops_at_the_cap_in_bounded_memory(
    source: HttpSpecSource, server: LoopbackServer
) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(SpecTooLarge, match="decodes to more than") as caught:
            await source.fetch(server.url("/bomb.json"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.limit == SMALL.max_bytes
    # 256 MiB behind the gzip; httpx's own decoder would hold 64 MiB per network chunk.
    assert peak < 8 * SMALL.max_bytes


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("/stacked.json", "at most one gzip or deflate layer"),
        ("/brotli.json", "'br'"),
        ("/corrupt-gzip.json", "not valid gzip"),
    ],
)
async def test_unsupported_or_corrupt_encodings_are_invalid(
    source: HttpSpecSource, server: LoopbackServer, path: str, match: str
) -> None:
    with pytest.raises(SpecInvalid, match=match):
        await source.fetch(server.url(path))


@pytest.mark.parametrize("path", ["/to-private", "/to-metadata"])
async def test_redirect_into_a_private_range_is_denied(
    source: HttpSpecSource, server: LoopbackServer, path: str
) -> None:
    with pytest.raises(EgressDenied):
        await source.fetch(server.url(path))


async def test_unlisted_loopback_port_is_denied(server: LoopbackServer) -> None:
    async with egress_client(EgressPolicy()) as client:
        with pytest.raises(EgressDenied):
            await HttpSpecSource(client).fetch(server.url("/petstore.json"))


async def test_connection_refused_is_unreachable() -> None:
    with loopback_server() as stopped:
        port = stopped.port
    policy = EgressPolicy(allow=frozenset({("127.0.0.1", port)}))
    async with egress_client(policy) as client:
        with pytest.raises(SpecUnreachable, match="could not fetch"):
            await HttpSpecSource(client).fetch(f"http://127.0.0.1:{port}/x.json")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("application/json; charset=utf-8", "application/json"),
        ("application/problem+json", "application/json"),
        ("application/x-yaml", "application/yaml"),
        ("text/yaml", "application/yaml"),
        ("application/openapi+yaml", "application/yaml"),
        ("text/plain", None),
        ("application/octet-stream", None),
    ],
)
def test_media_type_of(header: str | None, expected: str | None) -> None:
    assert media_type_of(header, source="s") == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], None), (["identity"], None), (["GZIP"], "gzip"), (["identity, deflate"], "deflate")],
)
def test_single_encoding(values: list[str], expected: str | None) -> None:
    assert single_encoding(values, source="s") == expected


def test_stacked_encodings_over_two_headers_are_refused() -> None:
    with pytest.raises(SpecInvalid):
        single_encoding(["gzip", "deflate"], source="s")


def _raw_deflate(content: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(content) + packer.flush()


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(st.binary(max_size=20_000), st.lists(st.integers(min_value=0), max_size=8))
def test_bounded_decoder_round_trips_any_chunking(content: bytes, cuts: list[int]) -> None:
    for encoding, packed in (
        ("gzip", gzip.compress(content)),
        ("deflate", zlib.compress(content)),
        ("deflate", _raw_deflate(content)),  # unwrapped, as some servers send it
        (None, content),
    ):
        decoder = BoundedDecoder(encoding, limit=len(content), source="s")
        for chunk in _chunks(packed, cuts):
            decoder.feed(chunk)
        assert decoder.finish() == content


@given(st.binary(min_size=1, max_size=20_000), st.integers(min_value=0, max_value=19_999))
def test_bounded_decoder_refuses_one_byte_past_the_limit(content: bytes, limit: int) -> None:
    decoder = BoundedDecoder("gzip", limit=min(limit, len(content) - 1), source="s")
    with pytest.raises(SpecTooLarge):
        decoder.feed(gzip.compress(content))


@pytest.mark.parametrize("packed", [zlib.compress(PETSTORE_JSON), _raw_deflate(PETSTORE_JSON)])
def test_deflate_fed_one_byte_at_a_time(packed: bytes) -> None:
    # The zlib-or-raw choice must not depend on how the first bytes were split.
    decoder = BoundedDecoder("deflate", limit=len(PETSTORE_JSON), source="s")
    for index in range(len(packed)):
        decoder.feed(packed[index : index + 1])
    assert decoder.finish() == PETSTORE_JSON


def test_truncated_deflate_header_is_invalid() -> None:
    decoder = BoundedDecoder("deflate", limit=100, source="s")
    decoder.feed(b"x")
    with pytest.raises(SpecInvalid, match="ends before"):
        decoder.finish()


def test_concatenated_gzip_members_are_one_document() -> None:
    decoder = BoundedDecoder("gzip", limit=100, source="s")
    decoder.feed(gzip.compress(b"hello ") + gzip.compress(b"world"))
    assert decoder.finish() == b"hello world"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_bounded_decoder_drains_output_larger_than_one_step(encoding: str) -> None:
    content = bytes(3 * 1024 * 1024 + 17)  # inflates past several 1 MiB steps per chunk
    packed = gzip.compress(content) if encoding == "gzip" else zlib.compress(content)
    decoder = BoundedDecoder(encoding, limit=len(content), source="s")
    decoder.feed(packed)
    assert decoder.finish() == content
