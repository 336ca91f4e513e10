"""Bounded decoding of gzip and deflate bodies: a bomb stops at the byte budget.

httpx's own decoder inflates each network chunk in one call, so a 64 KiB chunk of a gzip
bomb becomes 64 MiB in memory before anyone can count it. `BoundedDecoder` inflates with
`max_length`, so no call produces more than the bytes still allowed plus one. The HTTP
source, the file source (`.gz`) and the cache read-back all count decoded bytes with it;
`read_bounded` is the whole read of a streamed httpx response.
"""

from __future__ import annotations

import zlib

import httpx

from apiq.errors import SpecInvalid, SpecTooLarge

__all__ = [
    "ACCEPTED_ENCODINGS",
    "BoundedDecoder",
    "gunzip_bounded",
    "read_bounded",
    "single_encoding",
]

ACCEPTED_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})
"""Content-Encoding values a body may carry (one layer at most; identity is no layer)."""

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
_STEP = 1024 * 1024
"""Most bytes one inflate call may produce, so a bomb never holds more than this at once."""


def single_encoding(header_values: list[str], *, source: str) -> str | None:
    """The one compression layer named by Content-Encoding header values, or None.

    Raises:
        SpecInvalid: stacked encodings, or one other than gzip/deflate.
    """
    layers = [
        token.strip().lower()
        for value in header_values
        for token in value.split(",")
        if token.strip() and token.strip().lower() != "identity"
    ]
    if not layers:
        return None
    if len(layers) > 1 or layers[0] not in ACCEPTED_ENCODINGS:
        raise SpecInvalid(
            f"{source} answered with Content-Encoding {', '.join(layers)!r}; APIQ accepts at "
            "most one gzip or deflate layer: serve the document plain or gzip-compressed once",
            source=source,
        )
    return layers[0]


class BoundedDecoder:
    """Incremental decoder that refuses to produce more than `limit` decoded bytes.

    Args:
        encoding: `gzip`, `x-gzip`, `deflate` or None (bytes pass through, still counted).
        limit: decoded bytes allowed in total.
        source: the spec reference, for error messages.
    """

    def __init__(self, encoding: str | None, *, limit: int, source: str) -> None:
        self.limit = limit
        self.source = source
        self.encoding = encoding
        self.total = 0
        """Decoded bytes produced so far."""
        self._chunks: list[bytes] = []
        self._started = False
        # deflate: the first bytes, held until the 2-byte zlib header can be judged.
        self._head = b""
        self._inflater: zlib._Decompress | None = None
        if encoding is not None and encoding != "deflate":
            self._inflater = zlib.decompressobj(_GZIP_WBITS)

    def _count(self, data: bytes) -> None:
        self.total += len(data)
        if self.total > self.limit:
            raise SpecTooLarge(
                f"{self.source} decodes to more than {self.limit} bytes; raise the limit "
                "(APIQ_SPEC_MAX_BYTES, or SpecLimits) if this document is trusted",
                source=self.source,
                limit=self.limit,
                size=None,
            )
        if data:
            self._chunks.append(data)

    def feed(self, chunk: bytes) -> None:
        """Decode one chunk of the body.

        Raises:
            SpecTooLarge: the decoded bytes exceed the limit.
            SpecInvalid: the bytes are not valid gzip/deflate data.
        """
        if self.encoding is None:
            self._count(chunk)
            return
        self._started = True
        if self._inflater is None:
            # RFC 9110 deflate is zlib-wrapped, but some servers send raw deflate: judge the
            # header once two bytes are in, however the body was cut into chunks.
            chunk, self._head = self._head + chunk, b""
            if len(chunk) < 2:
                self._head = chunk
                return
            wbits = _ZLIB_WBITS if _is_zlib_header(chunk) else _RAW_DEFLATE_WBITS
            self._inflater = zlib.decompressobj(wbits)
        try:
            self._inflate(chunk)
        except zlib.error as exc:
            raise SpecInvalid(
                f"{self.source}: the body is not valid {self.encoding} data ({exc})",
                source=self.source,
            ) from None

    def _inflate(self, data: bytes) -> None:
        while self._inflater is not None:
            inflater = self._inflater
            if inflater.eof:
                if self.encoding == "deflate" or not data:
                    return  # bytes after a complete deflate stream carry nothing
                # gzip allows several members one after another (`cat a.gz b.gz`).
                inflater = self._inflater = zlib.decompressobj(_GZIP_WBITS)
            # max_length bounds the output of this one call: one step, or one byte past the
            # budget, whichever is smaller.
            cap = min(self.limit - self.total + 1, _STEP)
            out = inflater.decompress(data, cap)
            self._count(out)
            if inflater.eof:
                data = inflater.unused_data
            elif inflater.unconsumed_tail or len(out) == cap:
                data = inflater.unconsumed_tail  # b"" still drains output zlib holds back
            else:
                return

    def finish(self) -> bytes:
        """Check the stream ended cleanly and return every decoded byte.

        Raises:
            SpecInvalid: the compressed stream was cut short.
        """
        if self._started and (self._inflater is None or not self._inflater.eof):
            raise SpecInvalid(
                f"{self.source}: the {self.encoding} body ends before its compressed stream "
                "does (truncated download?)",
                source=self.source,
            )
        return b"".join(self._chunks)


def _is_zlib_header(data: bytes) -> bool:
    """Whether `data` starts with a zlib header (RFC 1950) that zlib would accept.

    Deflate method, window <= 32 KiB, no preset dictionary, header checksum right.
    """
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and not flg & 0x20 and (cmf << 8 | flg) % 31 == 0


def gunzip_bounded(data: bytes, *, limit: int, source: str) -> bytes:
    """Decompress a gzip blob, refusing to produce more than `limit` bytes.

    Raises:
        SpecTooLarge: the decompressed size exceeds `limit`.
        SpecInvalid: `data` is not gzip.
    """
    decoder = BoundedDecoder("gzip", limit=limit, source=source)
    decoder.feed(data)
    return decoder.finish()


async def read_bounded(response: httpx.Response, *, limit: int, source: str) -> bytes:
    """The decoded body of a streamed response, refusing more than `limit` decoded bytes.

    Reads `aiter_raw`, not `aiter_bytes`: httpx inflates a whole network chunk in one call
    (a 64 KiB chunk of a gzip bomb becomes 64 MiB); `BoundedDecoder` stops at the budget.

    Raises:
        SpecTooLarge: the decoded body exceeds `limit`.
        SpecInvalid: stacked, unsupported or corrupt Content-Encoding.
    """
    encoding = single_encoding(response.headers.get_list("content-encoding"), source=source)
    decoder = BoundedDecoder(encoding, limit=limit, source=source)
    async for chunk in response.aiter_raw():
        decoder.feed(chunk)
    return decoder.finish()
