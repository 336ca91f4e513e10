"""What a request asks to do (list, read, create, update, delete) and what an operation does.

Words alone rank `GET /pets` and `POST /pets` alike for "add a pet"; the verb decides. An
operation's actions come from the first verb of its operationId (`issues/list-for-repo`,
`chat_delete`, `FetchMessage`) or, when the id has none or only names the HTTP method
(Stripe's `PostCustomersCustomer`), from the method and the path's shape: `GET /pets` lists,
`GET /pets/{id}` and `GET /user` read one thing, `POST /pets` creates, `POST /pets/{id}`
updates (Stripe, Twilio), PUT/PATCH update, DELETE deletes. A request's actions come from its
verbs, plus hints: "all"/"every" and plural nouns ask for a collection, an id-like value
(`42`, `cus_123`, `#12`) for one item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from apiq.catalog.models import Operation
from apiq.search.tokenize import STOP_WORDS, split_words, stem

__all__ = ["ACTIONS", "action_mask", "is_verb", "operation_actions", "request_actions"]

ACTIONS = ("list", "read", "create", "update", "delete")
"""The five things a REST operation does, in bit order for `action_mask`."""

_LIST, _READ, _CREATE, _UPDATE, _DELETE = ACTIONS


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_VERB_ACTIONS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_words("list enumerate browse search query all"), (_LIST,)),
    **dict.fromkeys(_words("find show which display lookup how"), (_LIST, _READ)),
    "who": (_LIST,),
    **dict.fromkeys(
        _words(
            """get fetch retrieve read view see look check inspect describe detail details
            download info information count"""
        ),
        (_READ,),
    ),
    **dict.fromkeys(
        _words(
            """create add new make register insert open start submit upload send publish
            generate place invite buy purchase post initiate begin issue file schedule write
            compose subscribe join"""
        ),
        (_CREATE,),
    ),
    **dict.fromkeys(
        _words(
            """update change edit modify set rename replace patch move mark enable disable
            reset assign close configure toggle put adjust alter turn archive unarchive"""
        ),
        (_UPDATE,),
    ),
    **dict.fromkeys(
        _words(
            """delete remove cancel destroy erase drop revoke unregister purge clear discard
            uninstall unassign kill terminate unsubscribe leave"""
        ),
        (_DELETE,),
    ),
}
_STEM_ACTIONS = {stem(word): actions for word, actions in _VERB_ACTIONS.items()}
# Words that are verbs or nouns ("file an issue" / "list the files"): in a request they count
# only where a clause starts; in an operationId, where the first ones name resources, never.
_NOUN_OR_VERB = frozenset(
    _words(
        """file issue post place open start set count view query schedule check display
        detail details information new"""
    )
)
_NOUN_IN_IDS = frozenset(_words("file issue post place count view query schedule detail details"))
_CLAUSE_STARTS = frozenset(
    _words(
        """and then also to please i want let s can could you we need me just now first next
        finally after before or"""
    )
)
_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})
_COLLECTION_WORDS = frozenset({"all", "every", "each", "many", "several"})
_BITS = {action: 1 << position for position, action in enumerate(ACTIONS)}


def action_mask(actions: Iterable[str]) -> int:
    """Bit set of `actions` (bits in `ACTIONS` order)."""
    mask = 0
    for action in actions:
        mask |= _BITS[action]
    return mask


def _verb_actions(word: str) -> tuple[str, ...]:
    """Actions of a request word: exact verbs, and inflected ones (created, listing)."""
    found = _VERB_ACTIONS.get(word)
    if found is not None:
        return found
    if word.endswith(("ed", "ing")):
        return _STEM_ACTIONS.get(stem(word), ())
    return ()


def is_verb(word: str) -> bool:
    """Whether a lower-case request word is a known action verb (`delete`, `listing`)."""
    return word not in _NOUN_OR_VERB and bool(_verb_actions(word))


def _looks_plural(word: str) -> bool:
    return len(word) > 3 and word.endswith("s") and stem(word) != word


def _shape_actions(op: Operation) -> tuple[str, ...]:
    """Actions implied by the method and whether the path ends at one item or a collection."""
    segments = [segment for segment in op.path.split("/") if segment]
    last = segments[-1] if segments else ""
    on_item = "{" in last
    words = split_words(last) if not on_item else []
    method = op.method
    if method == "get":
        if on_item or not words:
            return (_READ,)
        tail = words[-1] if words[-1] != "json" or len(words) < 2 else words[-2]
        return (_LIST,) if _looks_plural(tail) else (_READ, _LIST)
    if method == "post":
        if on_item:
            return (_UPDATE,)
        verb = _VERB_ACTIONS.get(words[-1], ()) if words else ()
        return verb or (_CREATE,)
    if method in ("put", "patch"):
        return (_UPDATE,)
    if method == "delete":
        return (_DELETE,)
    return ()


def operation_actions(op: Operation) -> frozenset[str]:
    """What `op` does, from its operationId's first verb or else its method and path."""
    shape = _shape_actions(op)
    for word in split_words(op.operation_id):
        if word in _METHODS and word == op.method:
            break  # the id only repeats the method (PostCustomers): the shape says more
        verb = () if word in _NOUN_IN_IDS else _VERB_ACTIONS.get(word, ())
        if verb:
            narrowed = set(verb) & set(shape)
            return frozenset(narrowed or verb)
    return frozenset(shape)


def request_actions(
    words: list[str],
    *,
    names_item: bool = False,
    known: Callable[[str], bool] | None = None,
) -> Mapping[str, float]:
    """Action -> weight (0..1) asked for by a request's words (`split_words` output).

    Verbs count fully (a verb with two meanings, like "find", half for each). At half
    weight: an id-like value (`names_item`, or a number) hints
    at one item; "all", "every" or a plural noun at a collection; and a request that opens
    with a word that is no known verb ("refund the payment", "comment on issue 3") at
    creating, the usual meaning of a noun used as a verb (when `known` says the searched
    operations use that word at all).
    """
    weights: dict[str, float] = {}
    previous = "and"
    for word in words:
        if word not in _NOUN_OR_VERB or previous in _CLAUSE_STARTS:
            meant = _verb_actions(word)
            for action in meant:
                # "find" may list or read: each at half the weight of a plain verb.
                weights[action] = max(weights.get(action, 0.0), 1.0 / len(meant))
        previous = word
    hints: dict[str, float] = {}
    first = words[0] if words else ""
    if (
        first
        and not weights
        and first not in STOP_WORDS
        and not first.isdigit()
        and (known is None or known(stem(first)))
    ):
        hints[_CREATE] = 0.5
    if any(word in _COLLECTION_WORDS or _looks_plural(word) for word in words):
        hints[_LIST] = 0.5
    if names_item or any(word.isdigit() for word in words):
        for action in (_READ, _UPDATE, _DELETE):
            hints[action] = 0.5
    for action, weight in hints.items():
        weights.setdefault(action, weight)
    return weights
