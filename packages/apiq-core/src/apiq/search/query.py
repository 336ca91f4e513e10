"""A request's search terms, weighted, with the expansions that bridge people and specs.

People and API descriptions say the same thing with different words. Besides the request's
own terms (weight 1), a query holds, at lower weight:

- the canonical verb of each action the request asks for (`apiq.search.intent`): "close
  issue 12" also looks for `update`, "remove the pet" for `delete`, "who has" for `list`;
- "me"/"my"/"I" as `me` and `authenticated`, the two ways APIs name the caller (`/me`,
  "the authenticated user");
- words for values it contains: an email address adds `email`, a URL `url`, a phone number
  `phone`;
- related forms of each term (`review` -> `reviewer`, `subscribe` -> `subscription`,
  `invite` -> `invitation`), kept only when some searched operation uses them;
- a few synonyms common across APIs (message/text, call/phone, channel/conversation).

Numbers weigh little: in a request they are values (`pet 42`), rarely names.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from apiq.search.intent import is_verb, request_actions
from apiq.search.tokenize import STOP_WORDS, expand_word, split_words, stem

__all__ = ["MAX_QUERY_CHARS", "MAX_QUERY_WORDS", "Query", "parse_query", "parse_request"]

MAX_QUERY_CHARS = 2_000
"""Longer request text is cut here: a request is a sentence or two, not a document."""
MAX_QUERY_WORDS = 64

ACTION_VERBS: Mapping[str, str] = {
    "list": "list",
    "read": "get",
    "create": "creat",
    "update": "updat",
    "delete": "delet",
}
"""Action -> the stem of the verb operations most often use for it."""
ACTION_VERB_WEIGHT = 0.5
GENERIC_VERB_WEIGHT = 0.6
"""Weight of a request's own CRUD verb ("list", "get", "create"): the intent boost already
rewards the operations that do it, and the same word elsewhere in an operation's name
(`createUsersWithListInput`) says nothing about what that operation does."""
COMPOUND_WEIGHT = 0.8
SELF_WEIGHT = 0.4
VALUE_WEIGHT = 0.5
NUMBER_WEIGHT = 0.2
VARIANT_WEIGHT = 0.4
CONTEXT_WEIGHT = 0.3
"""Weight, in one step of a multi-step request, of the other steps' words ("it", "them")."""
MAX_CLAUSES = 6
SYNONYM_WEIGHT = 0.5

# Where a multi-step request moves to its next step: "then", ";", a sentence end, and "and"
# or a comma before a verb or a verb-like word and its object ("find pets and order one").
_STEP_BREAK = re.compile(r"\b(?:and\s+|,\s*)?then\b|;|[.!?](?:\s+|$)", re.IGNORECASE)
_JOINER = re.compile(r",?\s+and\s+|,\s+", re.IGNORECASE)
_GENERIC_VERBS = frozenset(
    """list get fetch retrieve show view find create make new update change modify edit
    delete remove""".split()  # noqa: SIM905 - a word list reads better as text
)
_DETERMINERS = frozenset(
    "the a an it them its this that these those my our all one each every some".split()  # noqa: SIM905
)
_SELF_WORDS = frozenset({"me", "my", "mine", "myself", "i"})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_PHONE = re.compile(r"\+\d[\d\s().-]{6,}\d")
# Values a request names rather than asks about: quoted text, what follows "named"/"called",
# paths and owner/name pairs, identifiers mixing letters with digits or underscores, file
# names, #channels and @handles. Their words still count, at VALUE_WORD_WEIGHT.
_VALUES = re.compile(
    r"""(?<!\w)'[^'\n]{1,200}'(?!\w)|"[^"\n]{1,200}"|`[^`\n]{1,200}`|“[^”\n]{1,200}”"""
    r"|\b(?:named|called|titled|entitled|saying)\s+\S+"
    r"|\S+/\S+|[#@]\w+"
    r"|\b(?=\w*\d)(?=\w*[A-Za-z])\w+|\b\w+_\w+|\b[\w-]+\.[A-Za-z]{1,4}\b"
)
VALUE_WORD_WEIGHT = 0.3
# Suffix pairs (on stems) that join a word with its derived forms: review/reviewer,
# invite/invitation, subscribe/subscription, verify/verification, settle/settlement.
_DERIVATIONS = (
    ("", "er"),
    ("", "or"),
    ("", "ion"),
    ("", "ation"),
    ("", "ment"),
    ("", "al"),
    ("crib", "cription"),
    ("y", "ication"),
    ("iv", "ipt"),
)
_SYNONYM_GROUPS = (
    ("messag", "text"),
    ("call", "phon", "dial"),
    ("channel", "conversation"),
    ("imag", "photo", "pictur", "avatar"),
    ("remov", "delet"),
    ("folder", "directory"),
    ("purchas", "buy"),
    ("ask", "request"),
    ("search", "find", "lookup"),
)
# Request words that stand for operation words, one way only ("who is in" -> members).
_HINTS = {"who": ("member", "user")}
_SYNONYMS = {term: group for group in _SYNONYM_GROUPS for term in group}


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed request: weighted terms and the actions it asks for."""

    terms: Mapping[str, float]
    """Term -> weight (1 for the request's own words)."""
    actions: Mapping[str, float]
    """Action -> weight (`apiq.search.intent.request_actions`)."""


def _variants(term: str) -> list[str]:
    found = []
    for base, derived in _DERIVATIONS:
        if term.endswith(derived) and len(term) - len(derived) >= 3:
            found.append(term[: len(term) - len(derived)] + base)
        if term.endswith(base) and len(term) >= 3:
            found.append(term[: len(term) - len(base)] + derived if base else term + derived)
    return found


def parse_query(text: str, known: Callable[[str], bool], *, alone: bool = True) -> Query:
    """Weighted terms of a request; `known(term)` says whether any searched operation has it.

    A request (`alone`) none of whose own words any operation uses finds nothing, rather
    than what the inferred words alone would find; a step of a longer request still gets
    its inferred words.
    """
    text = text[:MAX_QUERY_CHARS]
    terms: dict[str, float] = {}
    own: set[str] = set()  # terms written in the request, not inferred from it

    def add(term: str, weight: float, *, written: bool = False) -> None:
        if weight > terms.get(term, 0.0):
            terms[term] = weight
        if written:
            own.add(term)

    for pattern, term in ((_URL, "url"), (_EMAIL, "email"), (_PHONE, "phon")):
        text, found = pattern.subn(" ", text)
        if found:
            add(term, VALUE_WEIGHT)
    values = _VALUES.findall(text)
    words = split_words(_VALUES.sub(" ", text))[:MAX_QUERY_WORDS]
    value_words = split_words(" ".join(values))[:MAX_QUERY_WORDS]
    for group, weight in ((words, 1.0), (value_words, VALUE_WORD_WEIGHT)):
        for word in group:
            if word in _SELF_WORDS:
                add("me", SELF_WEIGHT)
                add("authenticated", SELF_WEIGHT)
                continue
            for hint in _HINTS.get(word, ()):
                add(hint, SYNONYM_WEIGHT)
            if word in _GENERIC_VERBS:
                add(stem(word), min(weight, GENERIC_VERB_WEIGHT), written=True)
                continue
            for part in expand_word(word):
                if part not in STOP_WORDS:
                    part_weight = min(weight, NUMBER_WEIGHT) if part.isdigit() else weight
                    add(stem(part), part_weight, written=True)
    # People split words that specs write as one ("log in" / login, "web hook" / webhook).
    for first, second in itertools.pairwise(words):
        compound = stem(first + second)
        if known(compound):
            add(compound, COMPOUND_WEIGHT, written=True)
    names_item = any(any(char.isdigit() for char in value) for value in values)
    if alone and not any(known(term) for term in own):
        return Query({}, {})  # nothing the request says is in any operation: no guessing
    actions = request_actions(words, names_item=names_item)
    for action, weight in actions.items():
        add(ACTION_VERBS[action], ACTION_VERB_WEIGHT * weight)
    for term, weight in list(terms.items()):
        if weight < 1.0:
            continue
        for variant in _variants(term):
            if variant != term and known(variant):
                add(variant, VARIANT_WEIGHT)
        for synonym in _SYNONYMS.get(term, ()):
            if synonym != term:
                add(synonym, SYNONYM_WEIGHT)
    return Query({t: w for t, w in terms.items() if known(t)}, actions)


def split_steps(text: str) -> list[str]:
    """The steps of a request, in order (one for a single-step request)."""
    steps: list[str] = []
    for piece in _STEP_BREAK.split(text[:MAX_QUERY_CHARS]):
        start = 0
        for joint in _JOINER.finditer(piece):
            following = split_words(piece[joint.end() : joint.end() + 40])
            # "... and delete it", "..., and order the first one": a verb, or a word followed
            # by its object, starts a step; "pets and their owners" does not.
            if following and (
                is_verb(following[0]) or (len(following) > 1 and following[1] in _DETERMINERS)
            ):
                steps.append(piece[start : joint.start()])
                start = joint.end()
        steps.append(piece[start:])
    steps = [step for step in steps if split_words(step)]
    if len(steps) > MAX_CLAUSES:
        steps[MAX_CLAUSES - 1 :] = [" ".join(steps[MAX_CLAUSES - 1 :])]
    return steps or [text[:MAX_QUERY_CHARS]]


def parse_request(text: str, known: Callable[[str], bool]) -> list[Query]:
    """One query per step of the request; each also holds the other steps' words, weakly."""
    steps = split_steps(text)
    if len(steps) == 1:
        return [parse_query(steps[0], known)]
    whole = parse_query(text, known)
    if not whole.terms:
        return [whole]
    context = {
        term: weight * CONTEXT_WEIGHT for term, weight in whole.terms.items() if weight >= 1.0
    }
    queries = []
    for step in steps:
        query = parse_query(step, known, alone=False)
        terms = dict(context)
        for term, weight in query.terms.items():
            terms[term] = max(weight, terms.get(term, 0.0))
        queries.append(Query(terms, query.actions))
    return queries
