"""A clause read for argument filling: its values and words, and what is taken so far.

`Reading` holds one clause's `Mention`s, the operation's slots (required first, path before
query before body), which mentions are used and which slots are filled; the rules of
`apiq.planning.fill` and `apiq.planning.nouns` work on it. The word sets here are the
grammar those rules share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from apiq.catalog.models import Operation
from apiq.planning.shapes import Slot
from apiq.planning.values import Mention, mentions
from apiq.planning.words import (
    DESCRIBING_WORDS,
    GENERIC_NOUNS,
    STOP_WORDS,
    VERB_METHODS,
    identifier_words,
    singular,
)

__all__ = [
    "LINKS",
    "NAMING",
    "PATH_WORDS",
    "PREPOSITIONS",
    "RENAMING",
    "SEARCH_NAMES",
    "SECRET_WORDS",
    "SETTERS",
    "TEXT_SLOTS",
    "Filled",
    "Reading",
    "plain",
]

LINKS = frozenset({"is", "are", "be", "to", "as", "of", "with", "equal", "equals", "set", "at"})
NAMING = {"named": "name", "called": "name", "titled": "title", "entitled": "title"}
SETTERS = frozenset({"set", "change", "update", "modify", "edit", "make", "rename"})
RENAMING = {"rename": "name", "retitle": "title"}
"""Verbs whose `to <value>` is a new name: `rename pet 3 to 'Fluffy'`."""
SEARCH_NAMES = frozenset({"q", "query", "search", "term", "keyword", "keywords"})
PATH_WORDS = frozenset({"path", "file", "filename", "dir", "directory", "folder", "ref", "key"})
PREPOSITIONS = frozenset({"of", "for", "to", "from", "in", "on", "at", "into", "onto", "by"})
SECRET_WORDS = frozenset({"token", "password", "secret", "authorization", "apikey", "credential"})
TEXT_SLOTS = ("name", "title", "text", "message", "body", "content", "summary", "description")
_ORDER = {"path": 0, "query": 1, "body": 2, "header": 3, "cookie": 4}


@dataclass(frozen=True, slots=True)
class Filled:
    """A slot's value and why it has it."""

    value: object
    reason: str
    """Shown in the step's rationale: `from 'pet 5'`, `one of its values`, ..."""
    origin: str = "text"
    """`text`, `words` (a search slot given the clause's leftover words), `default` or
    `reused` (an earlier step's literal)."""


class Reading:
    """One clause's mentions against one operation's slots, filled as rules run."""

    def __init__(
        self, text: str, slots: Sequence[Slot], operation: Operation, verb: str | None
    ) -> None:
        self.tokens = mentions(text)
        self.slots = sorted(slots, key=lambda s: (not s.required, _ORDER.get(s.location, 5)))
        self.operation = operation
        self.verb = verb
        self.claimed: set[int] = set()
        self.filled: dict[Slot, Filled] = {}

    def take(self, slot: Slot, value: object, reason: str, *used: int) -> None:
        self.filled[slot] = Filled(value, reason)
        self.claimed.update(used)

    def free(self, index: int) -> Mention | None:
        if 0 <= index < len(self.tokens) and index not in self.claimed:
            return self.tokens[index]
        return None

    def snippet(self, start: int, end: int) -> str:
        return " ".join(t.text for t in self.tokens[min(start, end) : max(start, end) + 1])

    def name_end(self, slot: Slot) -> int | None:
        """Index of the last token of the slot's name in the text, if it is written there."""
        words = identifier_words(slot.name)
        if not words:
            return None
        whole = slot.name.lower()
        for token in self.tokens:
            if token.word == whole and token.kind in ("word", "id"):
                return token.index
            run = self.tokens[token.index : token.index + len(words)]
            # the name's word may abbreviate the text's (`repo` in `repository`), not the
            # reverse: `users` does not name `username`
            if len(run) == len(words) and all(
                t.kind == "word"
                and (singular(t.word) == singular(w) or (len(w) > 2 and t.word.startswith(w)))
                for t, w in zip(run, words, strict=True)
            ):
                return run[-1].index
        return None


def plain(token: Mention) -> bool:
    """Whether a word can be a value on its own (`theuser`, `acme`; not `the`, `delete`, nor a
    describing word such as `specified`, `latest` or `private`)."""
    word = token.word
    return (
        token.kind == "word"
        and word not in STOP_WORDS
        and word not in VERB_METHODS
        and word not in GENERIC_NOUNS
        and word not in DESCRIBING_WORDS
        and not (len(word) > 4 and word.endswith(("ed", "est", "ing")))
    )
