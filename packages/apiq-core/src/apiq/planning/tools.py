"""Operations as language-model tools: a safe name, a capped description, one argument schema.

A planner shows the model at most k operations (DESIGN.md decision 6), each as a `Tool`:

- `name` (`tool_name`) matches `^[A-Za-z0-9_-]{1,64}$` (what OpenAI-compatible servers
  accept), is the same in every run, and different operations never share one: a clean
  `<source>__<operationId>` when that is unambiguous and short enough, otherwise a readable
  prefix plus a hash of the original pair;
- `description` is the operation's method, path, summary and description, sanitized
  (`apiq.planning.sanitize`) and capped at 300 characters;
- `parameters` is the operation's argument schema (`Catalog.argument_schema`: groups `path`,
  `query`, `header`, `cookie`, `body`; recursive schemas as `$defs` references), slimmed:
  annotations the model does not need (`title`, `example(s)`, `xml`, `x-*`, ...) dropped,
  descriptions kept only for parameters and top-level properties and capped at 700
  characters, invisible characters stripped from every string, long enums dropped.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from apiq.catalog.arguments import SUBSCHEMA_KEYWORDS, SUBSCHEMA_LIST_KEYWORDS
from apiq.errors import SpecInvalid
from apiq.planning.sanitize import sanitize_text, strip_invisible

if TYPE_CHECKING:
    from apiq.catalog import Catalog

__all__ = [
    "MAX_ENUM_VALUES",
    "MAX_PARAMETER_DESCRIPTION",
    "MAX_TOOL_DESCRIPTION",
    "TOOL_NAME_PATTERN",
    "Tool",
    "tool_for",
    "tool_name",
]

TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What every tool name matches (SECURITY.md, "The language model is an untrusted planner")."""
MAX_TOOL_DESCRIPTION = 300
"""Most characters of an operation's description shown to the model."""
MAX_PARAMETER_DESCRIPTION = 700
"""Most characters of one schema description; also the longest other string kept."""
MAX_ENUM_VALUES = 64
"""Longer enums are dropped from the tool schema (validation still checks them)."""

_CLEAN_SOURCE = re.compile(r"[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*")
_CLEAN_OPERATION = re.compile(r"[A-Za-z0-9_-]+")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9-]+")
_HASH_CHARS = 10
_ANNOTATIONS = frozenset(
    {"title", "example", "examples", "xml", "externalDocs", "discriminator", "$comment"}
)
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_SCHEMA_LISTS = SUBSCHEMA_LIST_KEYWORDS
_SCHEMA_ONE = SUBSCHEMA_KEYWORDS
_DESCRIBED_DEPTH = 2
"""root (0) -> group or body (1) -> parameter or body property (2): described; deeper not."""
_MAX_VALUE_NODES = 100


def tool_name(source: str, operation_id: str) -> str:
    """The stable, unique tool name of an operation of a source (module docstring).

    `<source>__<operationId>` when the source is letters, digits and hyphens joined by
    single underscores, the operationId is letters, digits, `_` and `-`, and the whole
    fits 64 characters: the first `__` then separates them unambiguously. Otherwise a
    readable prefix without any `__`, a hyphen and 10 hex digits of a BLAKE2 hash of the
    pair, so the two forms never meet and hashed names differ unless 40-bit hashes collide.
    """
    name = f"{source}__{operation_id}"
    if (
        len(name) <= 64
        and _CLEAN_SOURCE.fullmatch(source)
        and _CLEAN_OPERATION.fullmatch(operation_id)
    ):
        return name
    pair = f"{source}\x00{operation_id}".encode("utf-8", "surrogatepass")
    digest = hashlib.blake2s(pair, digest_size=_HASH_CHARS // 2).hexdigest()
    readable = _UNSAFE_RUN.sub("_", f"{source}_{operation_id}")
    readable = readable[: 64 - _HASH_CHARS - 1].strip("_") or "tool"
    return f"{readable}-{digest}"


@dataclass(frozen=True, slots=True, eq=False)
class Tool:
    """One operation as the model sees it; `name` maps its calls back to the operation."""

    name: str
    """`tool_name(source, operation_id)`."""
    source: str
    """The source (connection id) the operation belongs to."""
    operation_id: str
    method: str
    """Lower case, as in the catalog."""
    path: str
    description: str
    """Method, path, summary and description: sanitized, at most `MAX_TOOL_DESCRIPTION`."""
    parameters: Mapping[str, Any]
    """The slimmed argument schema (JSON Schema 2020-12, `$defs` kept); read-only."""
    changes_state: bool

    def to_openai(self) -> dict[str, Any]:
        """The chat-completions tool definition: `{"type": "function", "function": {...}}`.

        The spec's words are wrapped in `<api_data>` (data, never instructions); whether the
        operation changes state is APIQ's own statement and stays outside.
        """
        marker = "Changes state. " if self.changes_state else ""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": f"{marker}<api_data>{self.description}</api_data>",
                "parameters": self.parameters,
            },
        }


def tool_for(source: str, catalog: Catalog, operation_id: str) -> Tool:
    """The tool for `operation_id` of `catalog`, registered under `source`.

    Raises:
        OperationNotFound: The catalog has no such operation.
        ExternalRefRefused: A schema the operation uses refers outside the document.
        SpecInvalid: A schema nests too deeply.
    """
    operation = catalog.operation(operation_id)
    summary, description = operation.summary.strip(), operation.description.strip()
    if summary and description.startswith(summary):
        summary = ""
    elif summary and description and summary[-1] not in ".!?:":
        summary += "."
    text = f"{operation.method.upper()} {operation.path}"
    if operation.deprecated:
        text += " (deprecated)"
    if summary or description:
        text += ": " + " ".join(part for part in (summary, description) if part)
    schema = catalog.argument_schema(operation_id)
    try:
        parameters = _slim(schema, 0)
    except RecursionError:
        raise SpecInvalid(
            f"{catalog.source}: the argument schema of {operation_id!r} nests too deeply to "
            "show to a language model",
            source=catalog.source,
            pointer=operation.pointer,
        ) from None
    return Tool(
        name=tool_name(source, operation_id),
        source=source,
        operation_id=operation_id,
        method=operation.method,
        path=operation.path,
        description=sanitize_text(text, MAX_TOOL_DESCRIPTION),
        parameters=parameters,
        changes_state=operation.changes_state,
    )


class _Dropped:
    """A value too large to show; its key is left out."""


_DROPPED = _Dropped()


def _slim(node: Any, depth: int) -> Any:
    """A copy of schema `node` with what the model needs only (module docstring)."""
    if isinstance(node, bool):
        return node
    if not isinstance(node, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _ANNOTATIONS or key.startswith("x-"):
            continue
        if key == "description":
            text = sanitize_text(value, MAX_PARAMETER_DESCRIPTION) if isinstance(value, str) else ""
            if text and depth <= _DESCRIBED_DEPTH:
                out[key] = text
        elif key == "$defs" and isinstance(value, Mapping):
            out[key] = {name: _slim(sub, 1) for name, sub in value.items()}
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {strip_invisible(str(k)): _slim(sub, depth + 1) for k, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_slim(sub, depth) for sub in value]
        elif key in _SCHEMA_ONE and isinstance(value, Mapping | bool):
            out[key] = _slim(value, depth + 1)
        elif key == "items" and isinstance(value, list):
            out[key] = [_slim(sub, depth + 1) for sub in value]
        elif key == "enum" and isinstance(value, list) and len(value) > MAX_ENUM_VALUES:
            continue
        else:
            cleaned = _clean_value(value, [_MAX_VALUE_NODES])
            if cleaned is not _DROPPED:
                out[key] = cleaned
    return out


def _clean_value(value: Any, budget: list[int]) -> Any:
    """`value` (an enum, default, const, pattern, ...) with invisible characters stripped;
    `_DROPPED` when it is too large for a prompt."""
    budget[0] -= 1
    if budget[0] < 0:
        return _DROPPED
    if isinstance(value, str):
        return strip_invisible(value) if len(value) <= MAX_PARAMETER_DESCRIPTION else _DROPPED
    if isinstance(value, Mapping):
        pairs = {strip_invisible(str(k)): _clean_value(v, budget) for k, v in value.items()}
        return _DROPPED if any(v is _DROPPED for v in pairs.values()) else pairs
    if isinstance(value, list | tuple):
        items = [_clean_value(item, budget) for item in value]
        return _DROPPED if any(item is _DROPPED for item in items) else items
    if isinstance(value, float) and not math.isfinite(value):
        return _DROPPED  # NaN and Infinity are not JSON
    return value
