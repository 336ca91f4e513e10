"""`FileSpecSource`: read an API description from a local path or `file://` URL.

Local files are the user's own, so their budget is larger (`SpecLimits.file_max_bytes`, big
specs such as GitHub's), but it is still counted on decoded bytes: a `.gz` file inflates
through the same bounded decoder as an HTTP body. The ETag is the sha256 of the file's bytes,
so an unchanged file answers `not_modified` without being decompressed or parsed again.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

import anyio.to_thread

from apiq.config import SpecLimits
from apiq.errors import SpecTooLarge, SpecUnreachable
from apiq.models import FetchedSpec
from apiq.specs.content_encoding import BoundedDecoder

__all__ = ["FileSpecSource", "media_type_for_path"]

_DEFAULT_LIMITS = SpecLimits()

_SUFFIX_MEDIA_TYPES = {
    ".json": "application/json",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}


def media_type_for_path(path: Path) -> str | None:
    """Media type from the suffix, looking through a trailing `.gz` (`x.json.gz` is JSON)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    return _SUFFIX_MEDIA_TYPES.get(os.path.splitext(name)[1])


class FileSpecSource:
    """SpecSource over the local file system.

    Args:
        limits: `file_max_bytes` is the decoded byte budget of one file.
        root: when set, only files inside this directory may be read (relative references
            are taken from it); a server that lets users name files should set it.
    """

    def __init__(self, *, limits: SpecLimits = _DEFAULT_LIMITS, root: Path | None = None) -> None:
        self._limits = limits
        self._root = root.resolve() if root is not None else None

    def resolve(self, ref: str) -> Path:
        """The absolute path `ref` (a path or `file://` URL) names.

        Raises:
            SpecUnreachable: a `file://` URL for another host, or a path outside `root`.
        """
        raw = ref
        if ref.lower().startswith("file:"):
            parts = urlsplit(ref)
            if parts.netloc not in ("", "localhost"):
                raise SpecUnreachable(
                    f"{ref} names a file on host {parts.netloc!r}; only local files can be read",
                    source=ref,
                )
            raw = url2pathname(parts.path)
        path = Path(raw).expanduser()
        if self._root is None:
            return path.resolve()
        resolved = (self._root / path).resolve()
        if not resolved.is_relative_to(self._root):
            raise SpecUnreachable(
                f"{ref} is outside the spec directory {self._root}; put the file there",
                source=ref,
            )
        return resolved

    async def fetch(self, ref: str, *, etag: str | None = None) -> FetchedSpec:
        """Read the file; with the `etag` of its current bytes, answer `not_modified`.

        Raises:
            SpecUnreachable: missing, unreadable, not a regular file, or outside `root`.
            SpecTooLarge: the decoded document exceeds `limits.file_max_bytes`.
            SpecInvalid: a `.gz` file that is not valid gzip.
        """
        path = self.resolve(ref)
        return await anyio.to_thread.run_sync(self._read, ref, path, etag)

    def _read(self, ref: str, path: Path, etag: str | None) -> FetchedSpec:
        limit = self._limits.file_max_bytes
        try:
            # stat before open: opening a FIFO for reading would block until a writer comes.
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise SpecUnreachable(
                    f"{path} is not a regular file; give the path of a JSON or YAML file",
                    source=ref,
                )
            if info.st_size > limit:
                raise SpecTooLarge(
                    f"{path} is {info.st_size} bytes, more than the {limit}-byte budget "
                    "for local files (SpecLimits.file_max_bytes)",
                    source=ref,
                    limit=limit,
                    size=info.st_size,
                )
            with path.open("rb") as handle:
                # Bounded even if the file grows between stat and read.
                raw = handle.read(limit + 1)
        except FileNotFoundError:
            raise SpecUnreachable(
                f"file not found: {path}; check the path (relative paths start from the "
                "current directory)",
                source=ref,
            ) from None
        except OSError as exc:
            raise SpecUnreachable(
                f"cannot read {path}: {exc.strerror or exc}", source=ref
            ) from None
        current = f'"sha256-{hashlib.sha256(raw).hexdigest()}"'
        if etag is not None and etag == current:
            return FetchedSpec(url=ref, content=b"", etag=current, not_modified=True)
        gzipped = path.name.lower().endswith(".gz")
        decoder = BoundedDecoder("gzip" if gzipped else None, limit=limit, source=str(path))
        decoder.feed(raw)
        return FetchedSpec(
            url=ref, content=decoder.finish(), media_type=media_type_for_path(path), etag=current
        )


if TYPE_CHECKING:
    from apiq.ports import SpecSource

    _: type[SpecSource] = FileSpecSource
