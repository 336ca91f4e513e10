"""Words and search terms of operation text and of requests.

Three steps, each usable alone:

- `split_words`: lower-case words, with identifiers split the way APIs spell them
  (`getPetById` -> get, pet, by, id; `list-for-repo`, `snake_case`, `/a/{b}.json`, `HTTPServer`
  -> http, server). HTML tags (Stripe writes descriptions in HTML) are dropped first.
- `stem`: a small suffix stemmer that folds plurals and -ed/-ing forms (`repositories` ->
  `repository`, `caches`/`cache` -> `cach`, `starred` -> `star`). It only has to map the
  forms of one word to one key; the keys need not be words.
- `search_terms`: both, minus stop words, with common API abbreviations expanded first
  (`repo` -> repository, `PR` -> pull request), because specs and people mix the two.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["STOP_WORDS", "expand_word", "search_terms", "split_words", "stem", "word_terms"]

_HTML_TAG = re.compile(r"<[^<>]{0,200}>")
# In ASCII text: plural acronyms (IDs, URLs), upper-case runs before a capitalized word
# (HTTPServer -> HTTP, Server), capitalized or lower-case words, other upper-case runs, digits.
_ASCII_WORD = re.compile(r"[A-Z]{2,}s(?![a-z])|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# Elsewhere: runs of letters and digits, not split further (case rules differ by script).
_RUN = re.compile(r"[^\W_]+")

# A word list reads better as text than as a 100-line literal.
STOP_WORDS = frozenset(
    """\
    a an the and or but of in on at to for from by with without into onto as is are be
    been being was were am do does did this that these those it its it's i my mine we us
    our you your he him his she her they them their there here which what who whom whose
    whether if then than so such some any can could would should will shall may might must
    please also just only very now right via using use per each both about up out over under
    again further once want need like json www http https com org api all every""".split(),  # noqa: SIM905
)
"""Words that carry no meaning for choosing an operation (`json`: Twilio's path suffix)."""

# Abbreviations that specs and people use interchangeably with the full word. Expanding on
# both sides (documents and requests) makes `repo` and `repository` one term.
_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "repo": ("repository",),
    "repos": ("repository",),
    "org": ("organization",),
    "orgs": ("organization",),
    "organisation": ("organization",),
    "organisations": ("organization",),
    "pr": ("pull", "request"),
    "prs": ("pull", "request"),
    "pulls": ("pull", "request"),
    "config": ("configuration",),
    "configs": ("configuration",),
    "msg": ("message",),
    "msgs": ("message",),
    "sms": ("message",),
    "dm": ("direct", "message"),
    "info": ("information",),
    "env": ("environment",),
    "envs": ("environment",),
    "perm": ("permission",),
    "perms": ("permission",),
    "stats": ("statistic",),
    "admin": ("administrator",),
    "admins": ("administrator",),
    "app": ("application",),
    "apps": ("application",),
    "doc": ("document",),
    "docs": ("document",),
    "img": ("image",),
    "pic": ("image",),
    "photo": ("image",),
    "photos": ("image",),
    "picture": ("image",),
    "pictures": ("image",),
    "e": (),
    "mail": ("email",),
    "emails": ("email",),
    "ids": ("id",),
    "sid": ("id",),
    "uuid": ("id",),
}

_IRREGULAR = {
    "people": "person",
    "persons": "person",
    "children": "child",
    "men": "man",
    "women": "woman",
    "indices": "index",
    "statuses": "status",
    "aliases": "alias",
    "analyses": "analysis",
    "addresses": "address",
    "processes": "process",
    "accesses": "access",
    # Words ending in a non-plural s, listed so that they and their plurals agree.
    "alias": "alias",
    "canvas": "canvas",
    "bias": "bias",
    "atlas": "atlas",
}
_KEEP_S = ("ss", "us", "is")
_DOUBLE_OK = frozenset("lsz")


def split_words(text: str) -> list[str]:
    """Lower-case words of `text`, identifiers split at case changes, digits and punctuation.

    Never raises; `split_words(" ".join(split_words(t))) == split_words(t)`.
    """
    text = _HTML_TAG.sub(" ", text)
    if text.isascii():
        return [word.lower() for word in _ASCII_WORD.findall(text)]
    words: list[str] = []
    for run in _RUN.findall(text):
        if run.isascii():
            words.extend(word.lower() for word in _ASCII_WORD.findall(run))
        else:
            # Lower-casing can yield combining marks (İ -> i + U+0307): split again.
            words.extend(_RUN.findall(run.lower()))
    return words


def stem(word: str) -> str:
    """The key shared by the inflected forms of a lower-case word (light, suffix-only)."""
    irregular = _IRREGULAR.get(word)
    if irregular is not None:
        return irregular
    if len(word) <= 3 or not word.isascii():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "shes", "ches", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(_KEEP_S):
        word = word[:-1]
    elif word.endswith("ing") and len(word) >= 7:
        word = _undouble(word[:-3])
    elif word.endswith("ed") and len(word) >= 6 and not word.endswith("eed"):
        word = _undouble(word[:-2])
    # A final silent e differs between forms (cache/caches/cached, create/created).
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def _undouble(word: str) -> str:
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in _DOUBLE_OK:
        return word[:-1]
    return word


def expand_word(word: str) -> tuple[str, ...]:
    """`word` with a known abbreviation written out (`repo` -> `repository`)."""
    return _ABBREVIATIONS.get(word, (word,))


@lru_cache(maxsize=1 << 16)
def word_terms(word: str) -> tuple[str, ...]:
    """Search terms of one `split_words` word: expanded, without stop words, stemmed."""
    return tuple(stem(part) for part in expand_word(word) if part not in STOP_WORDS)


@lru_cache(maxsize=1 << 12)
def _text_terms(text: str) -> tuple[str, ...]:
    # Cached whole: specs repeat parameter descriptions verbatim across operations.
    return tuple(term for word in split_words(text) for term in word_terms(word))


def search_terms(text: str) -> list[str]:
    """Stemmed, expanded words of `text` without stop words, in order, repeats kept."""
    return list(_text_terms(text))
