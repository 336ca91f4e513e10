"""Words of requests and of API descriptions, made comparable: tokens, stems, verbs.

The offline planner reads English requests with rules, not a model. These are the word
lists those rules share: which words are only grammar (`the`, `of`, `please`), which start
an action (`get`, `create`, `delete`, ...) and the HTTP methods each action usually means,
which words point back at an earlier result (`it`, `them`, `each`), and how identifiers
(`petId`, `per_page`, `list-for-repo`) break into words. Nothing here knows any one API.
"""

from __future__ import annotations

import re

__all__ = [
    "ANAPHORS",
    "DESCRIBING_WORDS",
    "GENERIC_NOUNS",
    "ID_WORDS",
    "STOP_WORDS",
    "VERB_METHODS",
    "identifier_words",
    "matches",
    "singular",
    "tokens",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = _words(
    """a an the of to in on at by for from with without into onto about as is are was were be
    been being am do does did done has have had i me my mine we us our you your he him his she
    her they them their it its this that these those there here what which who whom whose how
    when where why please can could would should will shall may might must want need like let
    lets just also and or but not no so if then than too very all any some each every both
    one ones new now right currently current only up out over under again via using use per
    s t don isn aren doesn didn wasn weren hasn haven hadn won wouldn shouldn couldn someone
    something anything everything everyone thing things kind sort way ways see none"""
)
"""Grammar and filler words: never evidence that an operation fits a request."""

GENERIC_NOUNS = _words(
    """detail details info information data result results item items entry entries record
    records object objects value values thing one first last latest next previous list
    everything all"""
)
"""Nouns that name no resource (`get its details`): a clause of only these refers back."""

DESCRIBING_WORDS = _words(
    """new old recent private public open closed active inactive specific other own whole
    entire full given existing available several many few more most less"""
)
"""Words that describe a thing rather than name it (`the private repository`)."""

ID_WORDS = _words("id ids number num no key name slug uuid sid code handle login identifier ref")
"""Words that make a name an identifier of something (`petId`, `issue_number`, `Sid`)."""

ANAPHORS = _words(
    """it its it's them their theirs they those these that him her his hers one ones
    result results same"""
)
"""Words pointing at what an earlier step found or made."""

_READ = ("get",)
_CREATE = ("post", "put")
_CHANGE = ("put", "patch", "post")
_REMOVE = ("delete", "post")
VERB_METHODS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        _words(
            """get find list show fetch retrieve read look lookup search query view display
            see check count tell give browse download inspect which what who how"""
        ),
        _READ,
    ),
    **dict.fromkeys(
        _words(
            """create add make post place submit send register open upload file publish
            invite schedule start book buy purchase generate issue store save write put
            subscribe attach comment follow star fork trigger run dispatch record remind
            charge pay refund capture confirm accept approve reply react pin order"""
        ),
        _CREATE,
    ),
    **dict.fromkeys(
        _words(
            """update change modify edit set rename replace patch mark move assign close
            lock unlock finalize enable disable reset rotate label tag transfer merge void
            expire"""
        ),
        _CHANGE,
    ),
    **dict.fromkeys(
        _words(
            """delete remove cancel drop destroy erase revoke release unsubscribe detach
            unfollow unstar kick leave archive clear"""
        ),
        _REMOVE,
    ),
}
"""Action verbs -> the HTTP methods an operation doing that action most often has."""

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9']*|\d+")


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers of free text, apostrophes kept inside words."""
    return [token.lower().removesuffix("'s").strip("'") for token in _TOKEN.findall(text)]


def identifier_words(name: str) -> list[str]:
    """Words of an identifier: `petId` -> pet, id; `per_page` -> per, page; `URLs` -> urls."""
    words: list[str] = []
    for part in re.split(r"[^A-Za-z0-9]+", name):
        words.extend(word.lower() for word in _CAMEL.findall(part))
    return words


def singular(word: str) -> str:
    """A plain English singular (`pets` -> pet, `repositories` -> repository, `status` kept)."""
    if len(word) <= 3 or word.endswith(("ss", "us", "is", "ics")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def matches(word: str, other: str, min_prefix: int = 4) -> bool:
    """Whether two words name the same thing: equal singulars, or one abbreviates the other.

    An abbreviation is a prefix of at least `min_prefix` letters (`repo` / `repository`,
    `user` / `username`); three (`org` / `organization`) suits names chosen as abbreviations.
    Two forms of one stem share at least six letters and three quarters of the shorter.
    """
    one, two = singular(word), singular(other)
    if one == two:
        return True
    short, long = (one, two) if len(one) <= len(two) else (two, one)
    if len(short) >= min_prefix and long.startswith(short):
        return True
    # Forms of one stem: `subscribe` / `subscription`, `configure` / `configuration`.
    common = next((i for i, (a, b) in enumerate(zip(one, two, strict=False)) if a != b), len(short))
    return common >= 6 and common >= 0.75 * len(short)
