"""Bounded YAML: parser events -> plain data, counting what aliases expand to (SECURITY.md).

The safe event parser (libyaml when present) feeds `YamlBuilder`, which builds dicts, lists
and JSON-compatible scalars iteratively (no recursion), refusing explicit tags, duplicate
keys, non-scalar keys, recursive or undefined aliases, more than one document, and anything
past `SpecLimits.yaml_max_nodes` (counted with aliases expanded) or `max_depth`. Each refusal
is a `SpecInvalid` naming its cause, its JSON Pointer and its line; `apiq.specs.decode`
chooses between this and strict JSON.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml
from yaml import events

from apiq.config import SpecLimits
from apiq.errors import SpecInvalid
from apiq.specs.decode import MAX_DIGITS, WHAT_TO_DO, Refused, escape, invalid

__all__ = ["YamlBuilder"]

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "null")}
_IMPLICIT: dict[Any, list[tuple[str, re.Pattern[str]]]] = {
    # YAML 1.1's implicit types minus timestamps: dates in examples stay the strings written.
    first: [(tag, rx) for tag, rx in rules if tag != _TAG + "timestamp"]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_BOOLS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
_NO_KEY: Any = object()
_MERGE: Any = object()
"""Key placeholder for YAML's merge key `<<` (a plain `<<` only; a quoted one is a key)."""


def _sexagesimal(text: str, cast: type[int] | type[float]) -> Any:
    start: Any = 0
    return functools.reduce(lambda value, part: value * 60 + cast(part), text.split(":"), start)


def _yaml_scalar(text: str, tag: str) -> Any:
    """PyYAML's SafeConstructor rules for the core tags, refusing what JSON cannot hold."""
    if tag == _TAG + "str":
        return text
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        if (flag := _BOOLS.get(text.lower())) is None:
            raise Refused(f"{text[:40]!r} is not a boolean")
        return flag
    plain = text.replace("_", "")
    sign = -1 if plain[:1] == "-" else 1
    digits = plain[1:] if plain[:1] in "+-" else plain
    if len(digits) > MAX_DIGITS:
        raise Refused(f"a number has more than {MAX_DIGITS} digits")
    if digits.lower() in (".inf", ".nan"):
        raise Refused(f"{text!r} (infinity or NaN) is not allowed")
    try:
        if tag == _TAG + "float":
            value = sign * (_sexagesimal(digits, float) if ":" in digits else float(digits))
        elif digits[:2] in ("0b", "0x"):
            return sign * int(digits[2:], 2 if digits[1] == "b" else 16)
        elif digits.startswith("0") and digits != "0":
            return sign * int(digits, 8)
        else:
            return sign * (_sexagesimal(digits, int) if ":" in digits else int(digits))
    except (ValueError, IndexError):
        raise Refused(f"{text[:40]!r} is not a valid {tag.removeprefix(_TAG)}") from None
    if math.isinf(value):
        raise Refused(f"the number {text[:40]!r} is too large")
    return value


@dataclass(slots=True)
class _Frame:
    """A mapping or sequence being built, with its alias-expanded size and its height."""

    container: Any
    anchor: str | None
    key: Any = _NO_KEY
    size: int = 1
    height: int = 1
    merges: list[Any] = field(default_factory=list)


class YamlBuilder:
    """Builds plain data from YAML parser events, iteratively and within budget.

    Counting happens with aliases expanded (an alias adds the full size of what it names), so
    a billion-laughs document stops after `yaml_max_nodes` nodes while sharing, not copying.
    Heights travel with anchors, so an alias cannot smuggle nesting past `max_depth`.
    """

    def __init__(self, source: str, limits: SpecLimits) -> None:
        self.source = source
        self.limits = limits
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int, Any]] = {}
        self.open_anchors: set[str] = set()
        self.total = 0
        self.result: Any = None
        self.event: Any = None
        self.documents = 0

    def build(self, body: bytes) -> Any:
        """The one document of `body` as plain data; SpecInvalid for anything refused."""
        handlers = {
            events.ScalarEvent: self._scalar,
            events.MappingStartEvent: self._start,
            events.SequenceStartEvent: self._start,
            events.MappingEndEvent: self._end,
            events.SequenceEndEvent: self._end,
            events.AliasEvent: self._alias,
            events.DocumentStartEvent: self._document,
        }
        loader = _LOADER(body)
        try:
            for event in iter(loader.get_event, None):  # None once the stream has ended
                self.event = event
                if handler := handlers.get(type(event)):
                    handler(event)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            if "nesting depth" in problem:  # libyaml stops at 1,000 levels
                problem = f"the document nests too deeply ({problem})"
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            raise SpecInvalid(
                f"{self.source}: not valid YAML{where}: {problem}; {WHAT_TO_DO}",
                source=self.source,
            ) from None
        except Refused as exc:
            self._refuse(str(exc))
        finally:
            loader.dispose()
        return self.result

    def _refuse(self, cause: str, *, key: Any = _NO_KEY) -> NoReturn:
        parts = [
            len(f.container) if type(f.container) is list else "<<" if f.key is _MERGE else f.key
            for f in self.stack
            if type(f.container) is list or f.key is not _NO_KEY
        ]
        pointer = "".join("/" + escape(part) for part in [*parts, key] if part is not _NO_KEY)
        mark = getattr(self.event, "start_mark", None)
        where = f" (line {mark.line + 1} column {mark.column + 1})" if mark else ""
        invalid(self.source, "YAML", pointer, cause, where)

    def _count(self, size: int, height: int) -> None:
        self.total += size
        if self.total > self.limits.yaml_max_nodes:
            self._refuse(
                f"the document expands to more than {self.limits.yaml_max_nodes} nodes "
                "with its aliases expanded (an alias bomb?); if it is a genuine huge spec, "
                "convert it to JSON or raise SpecLimits.yaml_max_nodes"
            )
        if len(self.stack) + height > self.limits.max_depth:
            self._refuse(f"the document nests deeper than {self.limits.max_depth} levels")

    def _scalar(self, event: Any) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _TAG + "str"
            if event.implicit[0]:
                value = event.value
                for candidate, rx in _IMPLICIT.get(value[:1], ()):
                    if rx.match(value):
                        tag = candidate
                        break
        elif tag not in _SCALAR_TAGS:
            self._refuse(f"the explicit tag {tag!r} is not allowed (plain YAML only)")
        self._count(1, 0)
        if tag == _TAG + "merge":
            value, key = event.value, _MERGE
        else:
            value = _yaml_scalar(event.value, tag) if tag in _SCALAR_TAGS else event.value
            key = event.value
        if event.anchor:
            self.anchors[event.anchor] = (value, 1, 0, key)
        self._add(value, 1, 0, key)

    def _document(self, _: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            self._refuse("the stream holds more than one YAML document")

    def _start(self, event: Any) -> None:
        is_map = type(event) is events.MappingStartEvent
        if event.tag not in (None, "!", _TAG + ("map" if is_map else "seq")):
            self._refuse(f"the explicit tag {event.tag!r} is not allowed (plain YAML only)")
        if self.stack and self.stack[-1].key is _NO_KEY and type(self.stack[-1].container) is dict:
            self._refuse("a mapping key is a mapping or a sequence; keys must be scalars")
        self._count(0, 1)
        if event.anchor:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame({} if is_map else [], event.anchor))

    def _end(self, _: Any) -> None:
        frame = self.stack.pop()
        value = frame.container
        if frame.merges:  # earlier merged mappings win over later ones, own keys over all
            value = {k: v for merged in reversed(frame.merges) for k, v in merged.items()} | value
        self._count(1, 0)
        if frame.anchor:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, frame.size, frame.height, None)
        self._add(value, frame.size, frame.height, None)

    def _alias(self, event: Any) -> None:
        name = event.anchor
        if name in self.open_anchors:
            self._refuse(f"the alias *{name} refers to a node that contains it (recursive)")
        if name not in self.anchors:
            self._refuse(f"the alias *{name} names no anchor defined before it")
        value, size, height, key = self.anchors[name]
        self._count(size, height)
        self._add(value, size, height, key)

    def _add(self, value: Any, size: int, height: int, key: Any) -> None:
        if not self.stack:
            self.result = value
            return
        frame = self.stack[-1]
        frame.size += size
        frame.height = max(frame.height, height + 1)
        container = frame.container
        if type(container) is list:
            container.append(value)
        elif frame.key is _NO_KEY:
            if key is None:
                self._refuse("a mapping key is an alias of a collection; keys must be scalars")
            if key in container:
                self._refuse(f"duplicate key {key!r}", key=key)
            frame.key = key
        elif frame.key is _MERGE:
            merges = value if type(value) is list else [value]
            if not all(type(m) is dict for m in merges):
                self._refuse("the merge key '<<' needs a mapping or a list of mappings")
            frame.merges.extend(merges)
            frame.key = _NO_KEY
        else:
            container[frame.key] = value
            frame.key = _NO_KEY
