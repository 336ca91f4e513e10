"""BM25F over operations: per-source postings built once, ranked over any set of sources.

Each source (one catalog) keeps, per term, the operations holding it and the term's saturated
BM25F weight there, `tf / (k1 + tf)` with `tf` summed over fields, each occurrence scaled by
its field's weight and length normalization (`apiq.search.document`). Those weights depend
on one operation only, so they are computed at `add` time; inverse document frequencies
depend on which sources are searched together and are computed per query, from per-source
document frequencies, so a view over GitHub and Stripe ranks as one corpus would.

Ranking then re-weighs the best candidates by intent: an operation whose action (list, read,
create, update, delete; `apiq.search.intent`) is one the request asks for gains up to
`INTENT_BOOST`.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter

from apiq.catalog.catalog import Catalog
from apiq.catalog.models import Operation
from apiq.search.document import FIELD_B, FIELD_WEIGHTS, name_terms, operation_fields
from apiq.search.intent import ACTIONS, action_mask, operation_actions
from apiq.search.query import Query, parse_request

__all__ = [
    "INTENT_BOOST",
    "SearchHit",
    "SourceIndex",
    "build_source_index",
    "rank",
]

K1 = 1.2
INTENT_BOOST = 0.5
"""Largest relative score gain for an operation whose action the request asks for."""
COVERAGE_BOOST = 0.5
"""Relative score gain for an operation whose name terms the request holds all of."""
RERANK_POOL = 60
"""Candidates per source re-weighed by intent (the rest cannot reach the top k)."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One operation found for a request."""

    source: str
    """The source (connection) name the operation belongs to."""
    operation_id: str
    score: float
    """Higher is better; comparable within one search only."""
    operation: Operation


@dataclass(frozen=True, slots=True, eq=False)
class SourceIndex:
    """The postings of one catalog (immutable once built)."""

    source: str
    catalog: Catalog
    operations: tuple[Operation, ...]
    postings: Mapping[str, tuple[array[int], array[float]]]
    """Term -> (operation positions, saturated BM25F weights)."""
    actions: tuple[int, ...]
    """Per operation: its actions as an `action_mask`."""
    names: tuple[frozenset[str], ...]
    """Per operation: `apiq.search.document.name_terms`."""

    def document_frequency(self, term: str) -> int:
        """How many operations of this source hold `term`."""
        found = self.postings.get(term)
        return len(found[0]) if found else 0


def build_source_index(source: str, catalog: Catalog) -> SourceIndex:
    """Index every operation of `catalog` under the name `source`."""
    documents = [operation_fields(op, catalog.document) for op in catalog.operations]
    averages: dict[str, float] = {}
    for field in FIELD_WEIGHTS:
        total = sum(len(fields[field]) for fields in documents)
        averages[field] = total / len(documents) if documents and total else 1.0
    ids: dict[str, list[int]] = {}
    weights: dict[str, list[float]] = {}
    for position, fields in enumerate(documents):
        frequencies: dict[str, float] = {}
        for field, terms in fields.items():
            if not terms:
                continue
            b = FIELD_B[field]
            scale = FIELD_WEIGHTS[field] / (1.0 - b + b * len(terms) / averages[field])
            for term in terms:
                frequencies[term] = frequencies.get(term, 0.0) + scale
        for term, frequency in frequencies.items():
            ids.setdefault(term, []).append(position)
            weights.setdefault(term, []).append(frequency / (K1 + frequency))
    postings = {term: (array("i", ids[term]), array("d", weights[term])) for term in ids}
    actions = tuple(action_mask(operation_actions(op)) for op in catalog.operations)
    names = tuple(
        name_terms(op, fields) for op, fields in zip(catalog.operations, documents, strict=True)
    )
    return SourceIndex(source, catalog, catalog.operations, postings, actions, names)


def rank(entries: Iterable[SourceIndex], text: str, k: int) -> list[SearchHit]:
    """The `k` best operations of `entries` for the request `text` (empty when none match).

    A multi-step request ("find the available pets and order the first one") is ranked step
    by step and the lists are interleaved, so every step's best operations come first.
    """
    if k <= 0 or not isinstance(text, str):
        return []
    sources = list(entries)
    if not any(entry.operations for entry in sources):
        return []
    queries = parse_request(text, lambda term: any(term in e.postings for e in sources))
    if len(queries) == 1:
        return _rank_query(sources, queries[0], k)
    lists = [_rank_query(sources, query, k) for query in queries]
    merged: dict[tuple[str, str], SearchHit] = {}
    for rank_position in range(k):
        for hits in lists:
            if rank_position < len(hits):
                hit = hits[rank_position]
                merged.setdefault((hit.source, hit.operation_id), hit)
    return list(merged.values())[:k]


def _rank_query(sources: list[SourceIndex], query: Query, k: int) -> list[SearchHit]:
    if not query.terms:
        return []
    total = sum(len(entry.operations) for entry in sources)
    idfs: list[tuple[str, float]] = []
    for term, weight in query.terms.items():
        frequency = sum(entry.document_frequency(term) for entry in sources)
        idf = math.log(1.0 + (total - frequency + 0.5) / (frequency + 0.5))
        idfs.append((term, weight * idf))
    boosts = _boost_by_mask(query.actions)
    terms = query.terms
    scored: list[tuple[float, int, SourceIndex]] = []
    pool_size = max(RERANK_POOL, k)
    for entry in sources:
        totals = _accumulate(entry, idfs)
        pool = heapq.nlargest(pool_size, totals.items(), key=itemgetter(1))
        for position, score in pool:
            factor = boosts[entry.actions[position]] * _coverage(entry.names[position], terms)
            scored.append((score * factor, position, entry))
    scored.sort(key=itemgetter(0), reverse=True)
    return [
        SearchHit(
            entry.source,
            entry.operations[position].operation_id,
            score,
            entry.operations[position],
        )
        for score, position, entry in scored[:k]
    ]


def _accumulate(entry: SourceIndex, idfs: list[tuple[str, float]]) -> dict[int, float]:
    """BM25F score of every operation of `entry` holding any query term.

    Walking whole postings measured faster here than MaxScore-style pruning (whose
    bookkeeping costs more than the postings of specs this size), so it stays simple.
    """
    totals: dict[int, float] = {}
    get = totals.get
    for term, idf in idfs:
        found = entry.postings.get(term)
        if found is None:
            continue
        for position, weight in zip(found[0], found[1], strict=True):
            totals[position] = get(position, 0.0) + idf * weight
    return totals


def _boost_by_mask(asked: Mapping[str, float]) -> list[float]:
    """Score factor for every action mask: 1 + boost x the best asked weight among its bits."""
    factors = []
    for mask in range(1 << len(ACTIONS)):
        best = max(
            (asked.get(action, 0.0) for bit, action in enumerate(ACTIONS) if mask >> bit & 1),
            default=0.0,
        )
        factors.append(1.0 + INTENT_BOOST * best)
    return factors


def _coverage(names: frozenset[str], terms: Mapping[str, float]) -> float:
    """Score factor for how much of an operation's name the request holds."""
    if not names:
        return 1.0
    held = sum(min(1.0, terms.get(term, 0.0)) for term in names)
    return 1.0 + COVERAGE_BOOST * held / len(names)
