"""How well a candidate operation fits a clause, beyond the search score: a factor around 1.

Search ranks by words. A planner also knows what calling the operation would take, so a
candidate is weighed by:

- values: how many slots the text fills (`pet 5`, `status sold`: the request speaks of
  this operation's parameters) and, when the clause gives any values, the share of
  required slots that get one (from the text, an earlier step, or a default); a clause
  that points back (`it`) favours an operation taking the id of what the earlier step found;
- naming: the share of the clause's words (its verb included) found in the operation's
  name, path, summary and tags; two adjacent words that spell one of its words (`log in`
  -> `login`, `pay out` -> `payout`) count extra;
- method: whether the clause's verb usually means the operation's HTTP method.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from apiq.planning.words import STOP_WORDS, VERB_METHODS, identifier_words, matches, singular

if TYPE_CHECKING:
    from apiq.catalog.models import Operation
    from apiq.planning.steps import Draft

__all__ = ["fit_factor", "operation_words", "shares"]


def fit_factor(
    draft: Draft, words: Sequence[str], verb: str | None, refers_back: bool, valued: bool = False
) -> float:
    """The factor the candidate's search score is multiplied by (module docstring).

    Args:
        draft: The candidate, its slots filled and linked.
        words: The clause's words (lower case, in order, grammar included).
        verb: The clause's action verb, if it has one.
        refers_back: Whether the clause points at an earlier step.
        valued: Whether the clause holds values (ids, numbers, quoted text, ...).
    """
    from_text = [f for f in draft.values.values() if f.origin == "text"]
    required_text = sum(1 for s, f in draft.values.items() if s.required and f.origin == "text")
    # A request that gives values (`pet 5`, `acme/api`) names what its operation needs; one
    # that gives none ("retrieve a customer") leaves every id to be asked: no penalty then.
    gives = refers_back or bool(from_text) or valued
    factor = 0.7 + 0.3 * draft.fill_ratio if gives else 1.0
    factor *= 1 + 0.12 * min(required_text, 3) + 0.05 * min(len(from_text) - required_text, 3)
    if refers_back and any(link.identifies for link in draft.links.values()):
        factor *= 1.15
    coverage, compounds = _coverage(draft.operation, words, verb)
    factor *= (0.75 + 0.5 * coverage) * (1 + 0.2 * min(compounds, 2))
    if verb is not None:
        factor *= 1.1 if draft.operation.method in VERB_METHODS[verb] else 0.9
    return factor


def _coverage(operation: Operation, words: Sequence[str], verb: str | None) -> tuple[float, int]:
    """Share of the clause's meaningful words the operation's own text holds, and how many
    pairs of adjacent words spell one of its words (`log in` -> `login`)."""
    terms = [w for w in words if w not in STOP_WORDS and not w.isdigit() and len(w) > 1]
    if verb is not None and verb not in terms:
        terms.append(verb)
    named = operation_words(operation)
    compounds = sum(1 for a, b in itertools.pairwise(words) if a + b in named)
    if not terms:
        return 0.0, compounds
    found = sum(1 for term in terms if any(matches(term, word) for word in named))
    return found / len(terms), compounds


def operation_words(operation: Operation) -> frozenset[str]:
    """Singular words of an operation's id, path, summary and tags."""
    texts = [operation.operation_id, operation.path, operation.summary, *operation.tags]
    return frozenset(
        singular(word)
        for text in texts
        for word in identifier_words(text)
        if word not in STOP_WORDS and len(word) > 1
    )


def shares(words: Iterable[str], draft: Draft) -> bool:
    """Whether the candidate's own text (names, summary, tags, the start of its description,
    the names of its slots) holds one of `words`."""
    operation = draft.operation
    texts = [operation.description[:500], *(slot.name for slot in draft.slots)]
    described = operation_words(operation) | {
        singular(word) for text in texts for word in identifier_words(text)
    }
    return any(matches(word, other) for word in words for other in described)
