"""FileSpecSource: local paths and file:// URLs, `.gz` inside the same decoded-byte budget."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest

from apiq.config import SpecLimits
from apiq.errors import SpecInvalid, SpecTooLarge, SpecUnreachable
from apiq.specs.file_source import FileSpecSource, media_type_for_path

pytestmark = pytest.mark.anyio

DOC = b'{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}'


async def test_reads_json_with_media_type_and_sha256_etag(tmp_path: Path) -> None:
    path = tmp_path / "api.json"
    path.write_bytes(DOC)
    fetched = await FileSpecSource().fetch(str(path))
    assert fetched.content == DOC
    assert fetched.media_type == "application/json"
    assert fetched.etag == f'"sha256-{hashlib.sha256(DOC).hexdigest()}"'
    assert fetched.url == str(path)
    assert not fetched.not_modified


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("a.yaml", "application/yaml"),
        ("a.YML", "application/yaml"),
        ("a.json.gz", "application/json"),
        ("a.yaml.gz", "application/yaml"),
        ("a.txt", None),
        ("a.gz", None),
    ],
)
def test_media_type_by_suffix_through_gz(name: str, media_type: str | None) -> None:
    assert media_type_for_path(Path(name)) == media_type


async def test_unchanged_file_answers_not_modified(tmp_path: Path) -> None:
    path = tmp_path / "api.json"
    path.write_bytes(DOC)
    source = FileSpecSource()
    first = await source.fetch(str(path))
    again = await source.fetch(str(path), etag=first.etag)
    assert again.not_modified
    assert again.content == b""
    path.write_bytes(DOC + b" ")
    changed = await source.fetch(str(path), etag=first.etag)
    assert not changed.not_modified
    assert changed.content == DOC + b" "


async def test_gz_file_is_decompressed(tmp_path: Path) -> None:
    path = tmp_path / "api.json.gz"
    path.write_bytes(gzip.compress(DOC))
    fetched = await FileSpecSource().fetch(str(path))
    assert fetched.content == DOC
    assert fetched.media_type == "application/json"


async def test_file_url(tmp_path: Path) -> None:
    path = tmp_path / "with space.yaml"
    path.write_bytes(b"openapi: 3.0.3\n")
    fetched = await FileSpecSource().fetch(path.as_uri())
    assert fetched.content == b"openapi: 3.0.3\n"
    assert fetched.media_type == "application/yaml"


async def test_file_url_of_another_host_is_refused() -> None:
    with pytest.raises(SpecUnreachable, match="only local files"):
        await FileSpecSource().fetch("file://fileserver/share/api.json")


async def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecUnreachable, match="file not found") as caught:
        await FileSpecSource().fetch(str(tmp_path / "absent.json"))
    assert caught.value.source == str(tmp_path / "absent.json")


async def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecUnreachable, match="not a regular file"):
        await FileSpecSource().fetch(str(tmp_path))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
async def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(SpecUnreachable, match="not a regular file"):
        await FileSpecSource().fetch(str(fifo))


async def test_too_large_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 2048)
    with pytest.raises(SpecTooLarge) as caught:
        await FileSpecSource(limits=SpecLimits(file_max_bytes=1024)).fetch(str(path))
    assert (caught.value.limit, caught.value.size) == (1024, 2048)


async def test_gzip_bomb_stops_at_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(gzip.compress(b"\0" * (50 * 1024 * 1024)))  # 50 MiB from ~50 KiB
    source = FileSpecSource(limits=SpecLimits(file_max_bytes=1024 * 1024))
    with pytest.raises(SpecTooLarge) as caught:
        await source.fetch(str(path))
    assert caught.value.limit == 1024 * 1024


async def test_corrupt_gz_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "broken.json.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(SpecInvalid, match="not valid gzip"):
        await FileSpecSource().fetch(str(path))


async def test_truncated_gz_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "cut.json.gz"
    path.write_bytes(gzip.compress(DOC * 100)[:-20])
    with pytest.raises(SpecInvalid, match="ends before"):
        await FileSpecSource().fetch(str(path))


async def test_root_confines_reads(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    root.mkdir()
    (root / "api.json").write_bytes(DOC)
    (tmp_path / "secret.json").write_bytes(b"{}")
    source = FileSpecSource(root=root)
    assert (await source.fetch("api.json")).content == DOC
    for outside in ("../secret.json", str(tmp_path / "secret.json"), "/etc/passwd"):
        with pytest.raises(SpecUnreachable, match="outside the spec directory"):
            await source.fetch(outside)


@pytest.mark.shared
async def test_big_shared_spec_reads_within_the_default_budget(shared_specs: Path) -> None:
    path = shared_specs / "github-api.github.com.json.gz"
    fetched = await FileSpecSource().fetch(str(path))
    assert fetched.content == gzip.decompress(path.read_bytes())
    assert fetched.media_type == "application/json"
