"""Baseline for the search benchmarks: plain BM25 over each operation's text as one bag.

Same words as `apiq.search` (its tokenizer, so only the ranking differs): operationId,
summary, path, tags, description and parameter names and descriptions, all in one field
with equal weight; no field weights, no intent. This is the "plain BM25 over operation
text" that public tool-retrieval benchmarks report recall@10 of 0.55-0.73 for.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from operator import itemgetter

from apiq.catalog.catalog import Catalog
from apiq.catalog.models import Operation
from apiq.search.tokenize import search_terms

__all__ = ["PlainBM25"]

K1 = 1.2
B = 0.75


class PlainBM25:
    """Unweighted BM25 over several catalogs as one corpus."""

    def __init__(self) -> None:
        self.documents: list[tuple[str, Operation]] = []
        self.postings: dict[str, list[tuple[int, int]]] = {}
        self.lengths: list[int] = []

    def add(self, source: str, catalog: Catalog) -> None:
        for op in catalog.operations:
            text = " ".join(
                [op.operation_id, op.summary, op.path, " ".join(op.tags), op.description]
                + [f"{p.name} {p.description}" for p in op.parameters]
            )
            terms = search_terms(text)
            position = len(self.documents)
            self.documents.append((source, op))
            self.lengths.append(len(terms))
            for term, count in Counter(terms).items():
                self.postings.setdefault(term, []).append((position, count))

    def search(self, text: str, k: int = 10) -> list[tuple[str, str, float]]:
        total = len(self.documents)
        average = sum(self.lengths) / total if total else 1.0
        scores: dict[int, float] = {}
        for term in dict.fromkeys(search_terms(text[:2000])):
            found = self.postings.get(term)
            if not found:
                continue
            idf = math.log(1.0 + (total - len(found) + 0.5) / (len(found) + 0.5))
            for position, count in found:
                norm = count + K1 * (1.0 - B + B * self.lengths[position] / average)
                scores[position] = scores.get(position, 0.0) + idf * count * (K1 + 1) / norm
        best = heapq.nlargest(k, scores.items(), key=itemgetter(1))
        return [(self.documents[p][0], self.documents[p][1].operation_id, s) for p, s in best]
