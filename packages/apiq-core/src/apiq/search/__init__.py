"""Operation search: find the operations a plain-English request needs, across catalogs.

`OperationIndex` indexes each catalog at ingest (`add`) and ranks operations with BM25F over
operationId, summary, path, tags, description and parameters, re-weighed by the request's
intent (list / read / create / update / delete). `OperationIndex.view` gives a principal a
`CatalogView`: search and lookups limited to the sources that principal may use.
"""

from __future__ import annotations

from apiq.search.bm25 import SearchHit
from apiq.search.index import CatalogView, OperationIndex
from apiq.search.query import MAX_QUERY_CHARS

__all__ = ["MAX_QUERY_CHARS", "CatalogView", "OperationIndex", "SearchHit"]
