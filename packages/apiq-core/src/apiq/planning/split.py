"""A request split into clauses, one per step: "find X and then get Y for each".

Rules, applied in order (quoted text is never split):

1. sentences end at `.`, `;`, `!`, `?` followed by a space, and at line breaks;
2. a strong boundary: `and then`, `after that`, `afterwards`, `finally`, `and next`, and
   `then` after a comma or before an action (not in `which can then be used`);
3. a weak boundary: `and <verb>` or `, <verb>` where the verb starts an action (`get`,
   `delete`, ...). A weak split may be wrong (`close the dispute and accept the loss` is
   one action), so its clause is `tentative`: the planner folds it back into the clause
   before when it finds no operation of its own there;
4. `if <condition>, <action>`, `if <condition>` alone before the next clause, and
   `<action> if <condition>` make `condition` of the action's clause;
5. `for each <noun phrase>, <action>` and `<action> for each <noun phrase>`: the action runs
   once per item (`each`). With no clause before it, the noun phrase becomes a clause of
   its own that lists those items; otherwise it is kept as context of the action.
   `each`, `every`, `all of them`, `them all` inside a later clause also mean per item, and
   a first clause `<verb> every <noun phrase>` that changes something (`delete every sold
   pet`, not `list every pet`) lists the items first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from apiq.planning.words import VERB_METHODS, tokens

__all__ = ["Clause", "split_request"]


@dataclass(frozen=True, slots=True)
class Clause:
    """The part of a request that one step answers."""

    text: str
    """The words of the step, connectors removed, quotes kept as written."""
    each: bool = False
    """The step runs once per item of an earlier step's list."""
    condition: str | None = None
    """The text of an `if` guarding the step (`the pet is sold`)."""
    tentative: bool = False
    """Split off at a weak boundary (`and <verb>`); may belong to the clause before."""


_QUOTED = re.compile(
    r"(?<![\w])'[^'\n]+'(?![\w])|\"[^\"\n]+\"|\u201c[^\u201d\n]+\u201d|\u2018[^\u2019\n]+\u2019"
)
_MASK = re.compile("\ue000(\\d+)\ue001")
_SENTENCES = re.compile(r"(?:[.;!?]+(?:\s+|$))|\n+")
_VERBS = "|".join(sorted(VERB_METHODS, key=len, reverse=True))
_STRONG = re.compile(
    r"\s*(?:,\s*|\b)(?:and\s+then|(?:and\s+)?after\s+that|(?:and\s+)?afterwards|and\s+finally"
    r"|finally|and\s+next)\b\s*,?\s*"
    # a bare `then` ends a clause after a comma or before an action, not in `which can then be`
    r"|\s*,\s*then\b\s*,?\s*|\s+then\s+(?=(?:" + _VERBS + r"|if|for)\b)",
    re.IGNORECASE,
)
_WEAK = re.compile(
    rf"\s*(?:,\s*(?:and\s+)?|\s+and\s+)(?=(?:also\s+|please\s+)?(?:{_VERBS}|if)\b)",
    re.IGNORECASE,
)
_GUARD = re.compile(r"^\s*(?:and\s+)?(?:for\s+(?:each|every|all)|if)\s+[^,]*,\s*", re.I)
_LEADING_IF = re.compile(r"^(?:and\s+)?if\s+(?P<condition>[^,]+?)(?:\s*,\s*|\s+then\s+|$)", re.I)
_TRAILING_IF = re.compile(r"^(?P<action>.+?)\s+(?:only\s+)?if\s+(?P<condition>.+)$", re.I)
_LEADING_EACH = re.compile(
    r"^(?:and\s+)?for\s+(?:each|every|all)\s+(?:of\s+)?(?P<noun>[^,]*?)\s*(?:,\s*|$)", re.I
)
_TRAILING_EACH = re.compile(
    r"^(?P<action>.+?)\s+(?:for|of|on|to|from)\s+(?:each|every)\s+(?:of\s+)?(?P<noun>.+)$",
    re.I,
)
_VERB_EVERY = re.compile(r"^(?P<verb>[A-Za-z]+)\s+(?:each|every)\s+(?P<noun>.+)$", re.I)
_EACH_WORDS = re.compile(
    r"\b(?:each|every|all\s+of\s+(?:them|those|these)|them\s+all|both\s+of\s+them)\b", re.I
)
_BACK_REFERENCE = frozenset({"them", "those", "these", "it", "they", "one", "ones", "result"})
_FILLER = re.compile(r"^(?:and|also|please|then|,)\s+", re.IGNORECASE)


def split_request(request: str) -> tuple[Clause, ...]:
    """The clauses of `request`, in the order their steps run (module docstring)."""
    quoted: list[str] = []

    def mask(match: re.Match[str]) -> str:
        quoted.append(match.group(0))
        return f"\ue000{len(quoted) - 1}\ue001"

    masked = _QUOTED.sub(mask, request)
    pieces: list[tuple[str, bool, bool]] = []
    """(text, split at a weak boundary, inside the scope of a `for each`)"""
    for sentence in _SENTENCES.split(masked):
        for strong in _STRONG.split(sentence):
            # "for each pet, get ..." and "if it is sold, delete ...": that comma is no boundary
            head = _GUARD.match(strong)
            prefix = head.group(0) if head else ""
            scoped = bool(prefix) and not prefix.lstrip().lower().startswith(("if", "and if"))
            for number, weak in enumerate(_WEAK.split(strong[len(prefix) :])):
                pieces.append((prefix + weak if number == 0 else weak, number > 0, scoped))
    clauses: list[Clause] = []
    pending_condition: str | None = None
    for text, tentative, scoped in pieces:
        text = _tidy(text)
        if not text:
            continue
        condition, text = _condition(text)
        condition = condition or pending_condition
        if not text:  # "if X" alone guards the clause after it
            pending_condition = condition
            continue
        pending_condition = None
        found = _per_item(text, condition, tentative, first=not clauses)
        if scoped and tentative:  # "for each X, close it and label it": both per item
            found = [replace(clause, each=True) for clause in found]
        clauses.extend(found)
    if pending_condition is not None and clauses:
        # "delete it, if it is sold": a trailing condition guards the clause before it
        clauses[-1] = replace(clauses[-1], condition=pending_condition)
    return tuple(_unmask(clause, quoted) for clause in clauses)


def _condition(text: str) -> tuple[str | None, str]:
    """(condition, action) of one piece of text."""
    leading = _LEADING_IF.match(text)
    if leading:
        return leading.group("condition").strip(), _tidy(text[leading.end() :])
    trailing = _TRAILING_IF.match(text)
    if trailing:
        return trailing.group("condition").strip(), _tidy(trailing.group("action"))
    return None, text


def _per_item(text: str, condition: str | None, tentative: bool, *, first: bool) -> list[Clause]:
    """The clause of `text`, preceded by a listing clause when it iterates over a new list."""
    noun: str | None = None
    action = text
    leading = _LEADING_EACH.match(text)
    trailing = _TRAILING_EACH.match(text)
    if leading:
        noun, action = leading.group("noun").strip(), _tidy(text[leading.end() :])
        if not action:  # "for each pet get its name": the action starts at the first verb
            noun, action = _at_first_verb(noun)
    elif trailing:
        noun, action = trailing.group("noun").strip(), trailing.group("action").strip()
    every = _VERB_EVERY.match(text) if first else None
    if every and "get" not in VERB_METHODS.get(every.group("verb").lower(), ("get",)):
        # "delete every sold pet": list them, then act on each one
        verb, noun = every.group("verb"), every.group("noun")
        return [
            Clause(f"list {noun}", tentative=tentative),
            Clause(f"{verb} each {noun}", True, condition),
        ]
    if noun is None:
        each = _EACH_WORDS.search(text) is not None
        return [Clause(text, each=each and not first, condition=condition, tentative=tentative)]
    noun_words = [w for w in tokens(noun) if w not in _BACK_REFERENCE]
    if first and noun_words:
        # "for each open issue, close it": list the items, then act on each one
        return [Clause(f"list {noun}", tentative=tentative), Clause(action, True, condition)]
    context = f"{action} {noun}" if noun_words else action
    return [Clause(context, each=True, condition=condition, tentative=tentative)]


def _at_first_verb(text: str) -> tuple[str, str]:
    words = text.split()
    for position, word in enumerate(words):
        if position and word.lower() in VERB_METHODS:
            return " ".join(words[:position]), " ".join(words[position:])
    return "", text


def _tidy(text: str) -> str:
    text = text.strip(" \t,")
    while True:
        shorter = _FILLER.sub("", text)
        if shorter == text:
            return text
        text = shorter


def _unmask(clause: Clause, quoted: list[str]) -> Clause:
    def unmask(text: str) -> str:
        return _MASK.sub(lambda m: quoted[int(m.group(1))], text)

    condition = unmask(clause.condition) if clause.condition is not None else None
    return replace(clause, text=unmask(clause.text), condition=condition)
