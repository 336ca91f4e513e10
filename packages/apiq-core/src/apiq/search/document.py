"""The searchable text of one operation, as weighted fields of search terms.

Fields and why they weigh what they do (BM25F: a term's frequency in each field is scaled by
the field's weight and length before saturation, so one strong field beats many weak ones):

- `name` (operationId words) and `summary`: what the operation is, in a few words;
- `path`: the resources it touches (`/repos/{owner}/{repo}/issues` -> repository, issue);
- `tags`: the API's own grouping, a weaker hint;
- `description`: long prose, capped to its beginning, where the point is usually made;
- `params` (parameter names, their allowed values when few, and top-level request body
  property names) and `param_text` (parameter descriptions, capped): what it takes, which
  matches requests that name values ("pets that are sold", "customer with email ...").

The request body is read only one `$ref` deep from the document (`Catalog` resolves schemas
lazily, and a search index must not force that on a 20 MB spec).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apiq.catalog.models import Operation
from apiq.search.tokenize import search_terms, stem

__all__ = ["FIELDS", "FIELD_B", "FIELD_WEIGHTS", "name_terms", "operation_fields"]

FIELDS = ("name", "summary", "path", "tags", "description", "params", "param_text")
FIELD_WEIGHTS: Mapping[str, float] = {
    "name": 3.0,
    "summary": 3.0,
    "path": 2.0,
    "tags": 1.0,
    "description": 1.0,
    "params": 0.6,
    "param_text": 0.25,
}
"""Field -> weight of one occurrence relative to a word of the description."""
FIELD_B: Mapping[str, float] = {
    "name": 0.5,
    "summary": 0.5,
    "path": 0.5,
    "tags": 0.3,
    "description": 0.75,
    "params": 0.75,
    "param_text": 0.75,
}
"""Field -> BM25 length normalization (short fields vary little in length)."""

DESCRIPTION_CHARS = 1000
PARAM_DESCRIPTION_CHARS = 120
MAX_PARAMS = 30
MAX_BODY_PROPERTIES = 40
MAX_ENUM_VALUES = 20


def _path_words(path: str) -> tuple[str, str]:
    """(literal segments, parameter names) of a path template, as text."""
    literal: list[str] = []
    names: list[str] = []
    for segment in path.split("/"):
        if "{" in segment:
            head, _, rest = segment.partition("{")
            name, _, tail = rest.partition("}")
            names.append(name)
            literal.append(head + " " + tail)
        else:
            literal.append(segment)
    return " ".join(literal), " ".join(names)


def _resolve_once(schema: Any, document: Mapping[str, Any]) -> Any:
    """`schema`, or the local schema its `$ref` points at (one step, no recursion)."""
    if not isinstance(schema, Mapping):
        return None
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    if not ref.startswith("#/"):
        return None
    node: Any = document
    for part in ref[2:].split("/"):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part.replace("~1", "/").replace("~0", "~"))
    return node if isinstance(node, Mapping) else None


def _enum_text(schema: Any, document: Mapping[str, Any]) -> str:
    """A parameter's allowed values ("available pending sold"), when they are few words."""
    resolved = _resolve_once(schema, document)
    if resolved is None:
        return ""
    items = resolved.get("items")
    if resolved.get("type") == "array" and isinstance(items, Mapping):
        resolved = _resolve_once(items, document) or {}
    values = resolved.get("enum")
    if not isinstance(values, list) or len(values) > MAX_ENUM_VALUES:
        return ""
    return " ".join(value for value in values if isinstance(value, str))


def body_property_names(op: Operation, document: Mapping[str, Any]) -> list[str]:
    """Top-level property names of the first request body schema (capped, never deep)."""
    if op.request_body is None:
        return []
    for schema in op.request_body.content.values():
        resolved = _resolve_once(schema, document)
        if resolved is None:
            continue
        parts = [resolved]
        all_of = resolved.get("allOf")
        if isinstance(all_of, list):
            parts.extend(_resolve_once(part, document) for part in all_of[:5])
        names: list[str] = []
        for part in parts:
            properties = part.get("properties") if isinstance(part, Mapping) else None
            if isinstance(properties, Mapping):
                names.extend(str(name) for name in properties)
        return names[:MAX_BODY_PROPERTIES]
    return []


def operation_fields(op: Operation, document: Mapping[str, Any]) -> dict[str, list[str]]:
    """Field name -> search terms of `op` (see the module docstring for the fields)."""
    literal, path_params = _path_words(op.path)
    params = op.parameters[:MAX_PARAMS]
    param_names = " ".join(parameter.name for parameter in params)
    param_text = " ".join(parameter.description[:PARAM_DESCRIPTION_CHARS] for parameter in params)
    values = " ".join(_enum_text(parameter.schema, document) for parameter in params)
    body = " ".join(body_property_names(op, document))
    return {
        "name": search_terms(op.operation_id),
        "summary": search_terms(op.summary),
        "path": search_terms(literal),
        "tags": search_terms(" ".join(op.tags)),
        "description": search_terms(op.description[:DESCRIPTION_CHARS]),
        "params": search_terms(f"{path_params} {param_names} {body} {values}"),
        "param_text": search_terms(param_text),
    }


def name_terms(op: Operation, fields: Mapping[str, list[str]]) -> frozenset[str]:
    """The few terms that name what `op` does: its summary's, else its operationId's.

    Used to prefer the operation a request describes fully ("delete the repository":
    `Delete a repository`) over ones it describes in part (`Delete a deploy key of a
    repository`). An operationId word that only repeats the HTTP method (`PostCustomers`)
    names nothing.
    """
    if fields["summary"]:
        return frozenset(fields["summary"])
    method = stem(op.method)
    return frozenset(term for term in fields["name"] if term != method)
