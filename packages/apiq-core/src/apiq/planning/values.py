"""Values written in a request: quoted text, numbers, ids, emails, URLs, dates, `owner/repo`.

`mentions` reads a clause into a list of `Mention`s, words included (their positions say
what a value is next to: `pet 5`, `status sold`). `accept` decides whether a mention can be
the value of a slot, converting it to the slot's type and checking the slot's schema, so a
plan never carries a literal its operation would refuse. `abbreviates` tells whether a
prefixed id (`cus_4`, `pi_3x`, `CA12`) is of the kind a slot names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apiq.planning.shapes import Slot, slot_nouns
from apiq.planning.words import ID_WORDS, identifier_words

if TYPE_CHECKING:
    from apiq.catalog.models import Operation

__all__ = [
    "STRONG_KINDS",
    "Mention",
    "abbreviates",
    "accept",
    "has_ref",
    "id_prefix",
    "mentions",
    "value_kind",
]

_PATTERN = re.compile(
    r"""(?P<quoted>(?<![\w])'[^'\n]+'(?![\w])|"[^"\n]+"|\u201c[^\u201d\n]+\u201d|\u2018[^\u2019\n]+\u2019)
    |(?P<url>https?://[^\s'"<>]*[^\s'"<>.,;:!?)])
    |(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)
    |(?P<date>\d{4}-\d{2}-\d{2}(?:[T\ ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)
    |(?P<time>\b\d{1,2}(?::\d{2})?\s?(?:am|pm)\b)
    |(?P<phone>\+\d{7,15}\b)
    |(?P<pair>[A-Za-z0-9][\w.-]*(?:/[\w.-]*[A-Za-z0-9])+)
    |(?P<money>[$\u20ac\u00a3]\d+(?:\.\d+)?)
    |(?P<hash>\#[\w-]+)
    |(?P<number>-?\d+(?:\.\d+)?%?)(?![\w.])
    |(?P<word>[A-Za-z0-9][\w'.-]*[\w]|[A-Za-z0-9])""",
    re.VERBOSE,
)
_PREFIX = re.compile(r"([A-Za-z]+)(?:_|\d)")
STRONG_KINDS = frozenset(
    {"quoted", "url", "email", "date", "phone", "pair", "hash", "number", "id"}
)
"""Mentions that are values by their form alone (a plain word needs a name before it)."""
_FORMAT_KINDS = {
    "email": "email",
    "idn-email": "email",
    "uri": "url",
    "url": "url",
    "iri": "url",
    "date": "date",
    "date-time": "date",
}
_NAME_KINDS = {"email": "email", "url": "url", "uri": "url", "phone": "phone", "date": "date"}


@dataclass(frozen=True, slots=True)
class Mention:
    """One token of a clause: a value or a word."""

    kind: str
    """`quoted`, `url`, `email`, `date`, `time`, `phone`, `pair`, `money`, `hash`, `number`, `id`
    (letters with digits, `_` or `.`: `cus_123`, `deploy.yml`) or `word`."""
    text: str
    """As written, quotes stripped."""
    index: int
    """Position among the clause's mentions."""

    @property
    def word(self) -> str:
        """Lower case text, for comparing with names."""
        return self.text.lower()


def mentions(text: str) -> list[Mention]:
    """Every value and word of `text`, in order."""
    found: list[Mention] = []
    for match in _PATTERN.finditer(text):
        kind = match.lastgroup or "word"
        raw = match.group(0)
        if kind == "quoted":
            raw = raw[1:-1].strip()
        elif kind == "word" and (any(c.isdigit() for c in raw) or "_" in raw or "." in raw):
            kind = "id"
        elif kind == "word":
            raw = raw.removesuffix("'s")
        found.append(Mention(kind, raw, len(found)))
    return found


def id_prefix(token: Mention) -> str | None:
    """The letters an id starts with before a digit or `_` (`cus_4` -> cus, `CA12` -> ca)."""
    if token.kind != "id":
        return None
    match = _PREFIX.match(token.text)
    return match.group(1).lower() if match else None


def abbreviates(prefix: str, slot: Slot, operation: Operation) -> int:
    """How well an id prefix abbreviates what the slot names: 3 for its initials (`pi` for
    `payment_intent`), 2 for the start of its noun (`cus`, `price`), 1 for letters of its
    noun in order from the first (`acct`), 0 for none."""
    words = [w for w in identifier_words(slot.name) if w not in ID_WORDS]
    nouns = slot_nouns(slot, operation.path)
    if "".join(w[0] for w in words) == prefix:
        return 3
    if any(noun.startswith(prefix) for noun in nouns):
        return 2
    for noun in nouns:
        rest = iter(noun[1:])
        if noun[:1] == prefix[:1] and all(letter in rest for letter in prefix[1:]):
            return 1
    return 0


def value_kind(slot: Slot) -> str | None:
    """The one mention kind a slot takes by its format or name (`email`), else None."""
    source = slot.schema.get("items") if slot.kind == "array" else slot.schema
    fmt = source.get("format") if isinstance(source, dict) else None
    if isinstance(fmt, str) and fmt in _FORMAT_KINDS:
        return _FORMAT_KINDS[fmt]
    words = identifier_words(slot.name)
    for word in reversed(words):
        if word in _NAME_KINDS:
            return _NAME_KINDS[word]
    return None


def accept(slot: Slot, mention: Mention, *, plain: bool = False) -> Any | None:
    """The value `mention` gives `slot`, or None when it cannot be that value.

    Args:
        slot: Where the value would go.
        mention: The candidate.
        plain: Whether a plain word may be a string value (it follows the slot's name).
    """
    if mention.kind == "word" and not plain and not slot.enum:
        return None
    if mention.kind == "money":
        return None  # "$20" is 2000 in minor units for many APIs: better asked than guessed
    if slot.schema.get("format") == "binary":
        return None  # file content is uploaded, never written in a request
    wanted = value_kind(slot)
    if wanted is not None and mention.kind not in (wanted, "quoted"):
        return None
    value = _typed(slot.item_kind, slot.enum, mention)
    if value is None:
        return None
    if slot.kind == "array":
        value = [value]
    return value if _fits(slot, value) else None


def _typed(kind: str, enum: tuple[Any, ...], mention: Mention) -> Any | None:
    text = mention.text
    if enum:
        folded = _fold(text)
        return next((v for v in enum if isinstance(v, str) and _fold(v) == folded), None)
    if kind == "integer":
        digits = text.removeprefix("#")
        return int(digits) if re.fullmatch(r"-?\d+", digits) else None
    if kind == "number":
        try:
            return float(text) if "." in text else int(text)
        except ValueError:
            return None
    if kind == "boolean":
        return {"true": True, "false": False, "yes": True, "no": False}.get(text.lower())
    if kind in ("string", ""):
        return text.removeprefix("#") if mention.kind == "hash" and _numeric(text[1:]) else text
    return None


def _numeric(text: str) -> bool:
    return re.fullmatch(r"\d+", text) is not None


def _fold(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.strip().lower())


def _fits(slot: Slot, value: Any) -> bool:
    try:
        validator = _validator(json.dumps(slot.schema, sort_keys=True, default=str))
        return validator is None or validator.is_valid(value)
    except (SchemaError, TypeError, ValueError):
        return True


@lru_cache(maxsize=1024)
def _validator(schema_text: str) -> Draft202012Validator | None:
    """One validator per distinct slot schema (candidate values are checked many times);
    None when the schema holds references, which are checked when the call is built."""
    schema = json.loads(schema_text)
    return None if has_ref(schema) else Draft202012Validator(schema)


def has_ref(node: Any, depth: int = 0) -> bool:
    """Whether a schema holds a `$ref` anywhere (or nests too deep to tell)."""
    if depth > 32:
        return True  # too deep to be worth walking: leave it to the call's own validation
    if isinstance(node, dict):
        return "$ref" in node or any(has_ref(v, depth + 1) for v in node.values())
    if isinstance(node, list):
        return any(has_ref(v, depth + 1) for v in node)
    return False
