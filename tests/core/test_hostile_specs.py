"""Hostile documents (SECURITY.md "Hostile specs"): each a typed error naming its cause,
under 200 MB of extra memory, opening no file and making no connection.

Wall times are measured in bench/hostile.py, never asserted here.
"""

from __future__ import annotations

import json
import random
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiq.errors import ApiqError, ExternalRefRefused, SpecInvalid
from apiq.specs.decode import decode_document
from apiq.specs.parse import parse_spec
from apiq.specs.refs import check_refs, resolve, resolve_ref

MB = 1024 * 1024
HEAD = b'{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}, '


def alias_bomb(levels: int = 9, fan: int = 9) -> bytes:
    lines = ["openapi: 3.0.3", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]")
    return "\n".join(lines).encode() + b"\n"


HOSTILE: dict[str, tuple[bytes, str]] = {
    "yaml alias bomb": (alias_bomb(), "aliases expanded"),
    "json 10,000-level nesting": (HEAD + b'"x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "deep"),
    "yaml 10,000-level flow nesting": (b"openapi: 3.0.3\nx: " + b"[" * 10_000 + b"\n", "deep"),
    "yaml 10,000-level block nesting": (b"openapi: 3.0.3\nx:\n" + b"- " * 10_000 + b"1\n", "deep"),
    "json duplicate keys": (HEAD + b'"x": {"a": 1, "a": 2}}', "duplicate key"),
    "yaml duplicate keys": (b"openapi: 3.0.3\nx: 1\nx: 2\n", "duplicate key 'x'"),
    "json NaN": (HEAD + b'"x": NaN}', "NaN is not allowed"),
    "json Infinity": (HEAD + b'"x": -Infinity}', "-Infinity is not allowed"),
    "json lone surrogate": (HEAD + b'"x": "\\udc00"}', "lone UTF-16 surrogate"),
    "invalid UTF-8": (HEAD + b'"x": "\xff\xfe"}', "not valid UTF-8"),
    "UTF-16 document": ('{"openapi": "3.0.3"}'.encode("utf-16"), "UTF-16 or UTF-32"),
    "5,000-digit integer": (HEAD + b'"x": ' + b"1" * 5000 + b"}", "5000 digits"),
    "non-OpenAPI JSON": (b'{"name": "not a spec", "items": [1, 2]}', "no 'openapi' or 'swagger'"),
    "HTML login page": (
        b"<!doctype html>\n<html><head><title>Sign in</title></head><body><form></form></html>",
        "looks like an HTML page",
    ),
    "yaml python tag": (
        b"openapi: 3.0.3\nx: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
        "python/object/apply:os.system",
    ),
    "yaml custom tag": (b"openapi: 3.0.3\nx: !include other.yaml\n", "'!include'"),
    "yaml recursive alias": (b"openapi: 3.0.3\nx: &a {self: *a}\n", "recursive"),
}

EXTERNAL_REFS = [
    "file:///etc/passwd",
    "other.yaml#/x",
    "../x.json",
    "http://169.254.169.254/latest",
]


@contextmanager
def peak_extra_memory() -> Iterator[Callable[[], int]]:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        yield lambda: tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


_events: list[tuple[str, tuple[Any, ...]]] | None = None


def _recorder(event: str, args: tuple[Any, ...]) -> None:
    if _events is not None and (event == "open" or event.startswith(("socket.", "urllib."))):
        _events.append((event, args))


sys.addaudithook(_recorder)  # audit hooks cannot be removed; this one records only when asked


@contextmanager
def io_recorded() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Every file open and socket/urllib audit event raised inside the block."""
    global _events
    _events = recorded = []
    try:
        yield recorded
    finally:
        _events = None


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_document_is_a_typed_error_naming_its_cause(name: str) -> None:
    content, cause = HOSTILE[name]
    with peak_extra_memory() as peak, pytest.raises(SpecInvalid) as info:
        decode_document(content, source=f"hostile:{name}")
    assert cause in str(info.value)
    assert info.value.source == f"hostile:{name}"
    assert peak() < 200 * MB


@pytest.mark.parametrize("ref", EXTERNAL_REFS)
@pytest.mark.parametrize("form", ["json", "yaml"])
def test_external_ref_is_refused_without_opening_or_connecting(ref: str, form: str) -> None:
    doc = {
        "openapi": "3.0.3",
        "paths": {"/p": {"get": {"responses": {"200": {"$ref": ref}}}}},
    }
    if form == "json":
        content = json.dumps(doc).encode()
    else:
        content = (
            "openapi: 3.0.3\npaths:\n  /p:\n    get:\n      responses:\n"
            f"        '200':\n          $ref: '{ref}'\n"
        ).encode()
    with io_recorded() as recorded, peak_extra_memory() as peak:
        decoded = decode_document(content, source="hostile:ref")
        with pytest.raises(ExternalRefRefused) as info:
            check_refs(decoded, source="hostile:ref", raw=content)
        with pytest.raises(ExternalRefRefused):
            parse_spec(content, source="hostile:ref")
        with pytest.raises(ExternalRefRefused):
            check_refs(decoded, source="hostile:ref")
        with pytest.raises(ExternalRefRefused):
            resolve_ref(decoded, ref, source="hostile:ref")
        with pytest.raises(ExternalRefRefused):
            resolve(decoded, {"$ref": ref}, source="hostile:ref")
    assert info.value.ref == ref
    assert repr(ref) in str(info.value)
    assert recorded == []
    assert peak() < 200 * MB


def test_the_recorder_does_see_opens(tmp_path: Path) -> None:
    with io_recorded() as recorded:
        (tmp_path / "x").write_text("x")
    assert [event for event, _ in recorded] == ["open"]


@pytest.mark.parametrize(
    "name",
    [
        "circular-oas30.json",
        "circular-paths-oas30.json",
        "circular-request-bodies-oas30.json",
        "circular-schema-oas30.json",
        "circular-schema-swagger2.json",
    ],
)
def test_circular_specs_decode_and_resolve(shared_specs: Path, name: str) -> None:
    content = (shared_specs / name).read_bytes()
    with peak_extra_memory() as peak:
        doc = decode_document(content, source=name)
        check_refs(doc, source=name, raw=content)
        stack: list[Any] = [doc]
        followed = 0
        while stack:  # follow every ref once: cycles through schemas stay references
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("$ref"), str):
                    resolve(doc, node, source=name)
                    followed += 1
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    assert followed > 0
    assert peak() < 200 * MB


def _mutate(content: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    data = bytearray(content)
    for kind, position, value in edits:
        at = position % (len(data) + 1)
        if kind == 0 and at < len(data):
            data[at] ^= 1 << (value % 8)
        elif kind == 1:
            data.insert(at, value)
        elif kind == 2 and at < len(data):
            del data[at]
    return bytes(data)


edits = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 1 << 20), st.integers(0, 255)),
    min_size=1,
    max_size=8,
)


@pytest.mark.parametrize("name", ["petstore-oas30.json", "petstore-swagger2.yaml"])
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=edits)
def test_mutated_real_specs_raise_only_apiq_errors(
    shared_specs: Path, name: str, edits: list[tuple[int, int, int]]
) -> None:
    content = _mutate((shared_specs / name).read_bytes(), edits)
    with suppress(ApiqError):
        parse_spec(content, source=name)  # decode, ref check and catalog build


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_raise_only_apiq_errors(content: bytes) -> None:
    for media_type in (None, "application/json", "application/yaml"):
        with suppress(ApiqError):
            parse_spec(content, source="fuzz", media_type=media_type)


def test_structural_mutations_raise_only_apiq_errors(shared_specs: Path) -> None:
    # Byte flips rarely reach the deep paths; splice structure-bearing tokens too.
    content = (shared_specs / "petstore-oas30.json").read_bytes()
    tokens = [b"{", b"}", b"[", b"]", b'"', b"\\u", b"\\ud800", b"NaN", b"1e999", b'"$ref"', b":"]
    rng = random.Random(7)
    for _ in range(500):
        data = bytearray(content)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            data[at:at] = rng.choice(tokens)
        with suppress(ApiqError):
            parse_spec(bytes(data), source="mutant")
