"""The web's door to search: one search at a time per worker process.

Search is CPU-bound (a query embedding, vector scoring, BM25). Run from many request threads
at once it gets slower in total, not faster: measured on 2 cores with the engine of the time,
8 threads searching together managed under half the queries per second of one thread, and 32
threads a quarter. Queueing requests behind one lock keeps the worker at its best rate; more
throughput comes from more worker processes (`paperfeed serve --workers`).
"""

from __future__ import annotations

import threading

from ..config import Settings
from ..search import Hit, SearchResponse, search, similar
from ..store import Store

__all__ = ["run_search", "run_similar"]

_GATE = threading.Lock()


def run_search(store: Store, settings: Settings, query: str, **kw) -> SearchResponse:
    with _GATE:
        return search(store, query, settings=settings, **kw)


def run_similar(store: Store, settings: Settings, paper_id: str, limit: int) -> list[Hit]:
    with _GATE:
        return similar(store, paper_id, limit=limit, settings=settings)
