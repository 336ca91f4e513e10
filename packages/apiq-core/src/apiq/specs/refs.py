"""Check and follow `$ref`s without ever leaving the document.

APIQ follows internal JSON Pointer refs only (`#` and `#/...`, RFC 6901 with the fragment
percent-decoded). Anything else — `file:` URLs, relative paths, `http(s)` URLs,
`other.json#/x`, `#anchor` — is refused with `ExternalRefRefused` naming the ref. Nothing
here opens a file or a connection: refs are strings compared and looked up in memory.

Only an object member named `$ref` whose value is a string is a reference; Kubernetes, for
one, has a schema property named `$ref` whose value is an object.

Checking a 13 MB document by walking it costs about as much as parsing it, so `check_refs`
first reads the raw text: when every occurrence of `$ref` in it is a quoted key followed by a
string, an object or an array, and no escape could spell `$ref` (`\\u0024ref`, YAML's
`\\x24ref`, an escaped line break), the refs found there are all the document has. Anything
else, or an external-looking match (which might sit inside a string), falls back to the walk.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from apiq.errors import ExternalRefRefused, SpecInvalid

__all__ = ["check_refs", "escape_token", "resolve", "resolve_ref"]

_REF_MEMBER = re.compile(rb'"\$ref"\s*:\s*(?:("[^"\\]*(?:\\.[^"\\]*)*")|[\[{])', re.DOTALL)
_HIDING_ESCAPE = re.compile(
    rb"\\(?:u00(?:24|72|65|66)|x(?:24|72|65|66)|U000000(?:24|72|65|66)|\r|\n)", re.IGNORECASE
)
_INDEX = re.compile(r"0|[1-9][0-9]*")
_SCALARS = frozenset({str, int, float, bool, type(None)})
_BUNDLE_HINT = (
    "APIQ follows only internal refs ('#/...') and never fetches files or URLs; bundle the "
    "spec into one document (for example `redocly bundle`) and register that"
)


def escape_token(token: str) -> str:
    """One JSON Pointer reference token (RFC 6901): `~` as `~0`, then `/` as `~1`."""
    return token.replace("~", "~0").replace("/", "~1")


def _is_internal(ref: str) -> bool:
    return ref == "#" or ref.startswith("#/")


def _refuse(ref: str, source: str, where: str | None) -> ExternalRefRefused:
    place = f" at {where or '/'}" if where is not None else ""
    return ExternalRefRefused(
        f"{source}: $ref {ref!r}{place} points outside the document; {_BUNDLE_HINT}",
        source=source,
        ref=ref,
    )


def _raw_refs_are_internal(raw: bytes) -> bool:
    """True when the raw text proves every `$ref` internal; False means: walk to be sure."""
    if _HIDING_ESCAPE.search(raw):
        return False
    values = _REF_MEMBER.findall(raw)  # quoted strings; b"" for an object or an array value
    # Without hiding escapes a `$ref` key is spelled `$ref`, `"$ref"` or `'$ref'`. Every
    # occurrence must be a matched `"$ref"` member or end a longer string (`.../$ref"`, as in
    # Microsoft Graph's paths); anything else (a YAML key, prose) is settled by the walk.
    quoted = raw.count(b'"$ref"')
    if len(values) != quoted or raw.count(b"$ref") != raw.count(b'$ref"'):
        return False
    for value in [v for v in values if not v.startswith(b'"#/')]:
        if not value:
            continue  # a property named $ref, not a reference
        try:
            ref = json.loads(value) if b"\\" in value else value[1:-1].decode()
        except ValueError:
            return False
        if not _is_internal(ref):
            return False
    return True


def _pointer(path: tuple[Any, ...]) -> str:
    parts: list[str] = []
    while path:
        path, key = path
        parts.append(escape_token(str(key)))
    return "".join("/" + part for part in reversed(parts))


def _nested(value: Any) -> bool:
    kind = type(value)
    return kind is dict or kind is list or (kind not in _SCALARS and isinstance(value, Mapping))


def _walk_refs(document: Any) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Every string `$ref` in document order, with its path; iterative, each node once."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue  # shared (a YAML alias) or, in a hand-built mapping, a cycle
        seen.add(id(node))
        if type(node) is list:
            children = [(v, (path, i)) for i, v in enumerate(node) if _nested(v)]
        else:
            ref = node.get("$ref")
            if isinstance(ref, str):
                yield ref, path
            children = [(v, (path, k)) for k, v in node.items() if _nested(v)]
        stack.extend(reversed(children))


def check_refs(document: Mapping[str, Any], *, source: str, raw: bytes | None = None) -> None:
    """Refuse the document if any `$ref` in it points outside it.

    Args:
        document: The decoded document.
        source: The spec reference, named in the error.
        raw: The exact bytes (JSON or YAML) `document` was decoded from, when at hand: most
            documents are then checked from the text in a fraction of the time of a walk, and
            any text the scan cannot vouch for (an unquoted YAML key, an escape) is walked.

    Raises:
        ExternalRefRefused: For the first `$ref` in document order that is not `#` or
            `#/...`; its message names the ref and where it sits.
    """
    if raw is not None and _raw_refs_are_internal(raw):
        return
    for ref, path in _walk_refs(document):
        if not _is_internal(ref):
            raise _refuse(ref, source, _pointer(path))


@functools.lru_cache(maxsize=16384)
def _tokens(ref: str) -> tuple[str, ...]:
    """The reference tokens of an internal ref; ValueError says why when it is malformed."""
    fragment = unquote(ref[1:], errors="strict") if "%" in ref else ref[1:]
    if not fragment:
        return ()
    if not fragment.startswith("/"):
        raise ValueError("its fragment is not a JSON Pointer")
    tokens = fragment[1:].split("/")
    for i, token in enumerate(tokens):
        if "~" in token:
            if re.search(r"~(?![01])", token):
                raise ValueError(f"'~' must be followed by 0 or 1 in {token!r}")
            tokens[i] = token.replace("~1", "/").replace("~0", "~")
    return tuple(tokens)


def resolve_ref(document: Mapping[str, Any], ref: str, *, source: str) -> Any:
    """The node an internal `$ref` points to; never fetches anything.

    Args:
        document: The decoded document the ref belongs to.
        ref: `#` or `#/...` (RFC 6901 `~0`/`~1` escapes, percent-encoding allowed).
        source: The spec reference, named in errors.

    Raises:
        ExternalRefRefused: `ref` points outside the document.
        SpecInvalid: `ref` is malformed or points at nothing in the document.
    """
    if not _is_internal(ref):
        raise _refuse(ref, source, None)
    try:
        tokens = _tokens(ref)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecInvalid(
            f"{source}: $ref {ref!r} is not a valid JSON Pointer: {exc}", source=source
        ) from None
    node: Any = document
    for depth, token in enumerate(tokens):
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and _INDEX.fullmatch(token) and int(token) < len(node):
            node = node[int(token)]
        else:
            parent = "#" + "".join("/" + escape_token(t) for t in tokens[:depth])
            raise SpecInvalid(
                f"{source}: $ref {ref!r} points at nothing: {parent!r} has no {token!r}; "
                "fix the ref or add what it names",
                source=source,
            )
    return node


def resolve(
    document: Mapping[str, Any], node: Any, *, source: str, max_hops: int = 32
) -> tuple[Any, str | None]:
    """Follow `node` through `{"$ref": ...}` objects until something that is not a ref.

    Args:
        document: The decoded document.
        node: Any node of it (or a copy); a mapping with a string `$ref` is followed.
        source: The spec reference, named in errors.
        max_hops: Longest chain of refs followed before giving up.

    Returns:
        The first node that is not a ref, and the last ref followed as written (`#/...`), or
        None when `node` was not a ref.

    Raises:
        SpecInvalid: The chain loops or is longer than `max_hops`, or a ref dangles.
        ExternalRefRefused: A ref in the chain points outside the document.
    """
    last: str | None = None
    chain: list[str] = []
    visited: set[int] = set()
    while isinstance(node, Mapping):
        ref = node.get("$ref")
        if not isinstance(ref, str):
            break
        chain.append(ref)
        if id(node) in visited or len(chain) > max_hops:
            cause = "loops back on itself" if id(node) in visited else f"is over {max_hops} hops"
            raise SpecInvalid(
                f"{source}: the chain of $refs {' -> '.join(chain)} {cause} without reaching a "
                f"definition; make {ref!r} point at a real definition",
                source=source,
            )
        visited.add(id(node))
        node = resolve_ref(document, ref, source=source)
        last = ref
    return node, last
