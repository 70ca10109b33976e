"""The web's door to search: one search at a time per worker process, never any indexing.

Search is CPU-bound (a query embedding, vector scoring, BM25). Run from many request threads
at once it gets slower in total, not faster: measured on 2 cores with the engine of the time,
8 threads searching together managed under half the queries per second of one thread, and 32
threads a quarter. Queueing requests behind one lock keeps the worker at its best rate; more
throughput comes from more worker processes (`paperfeed serve --workers`).

A request answers from the keyword index as it is (saying how many papers it lacks): new
papers are indexed by the app's background follower (search/follow.py), `paperfeed index`
or `paperfeed run`, so no request waits behind an import however large.
"""

from __future__ import annotations

import threading

from ..config import Settings
from ..search import Hit, SearchResponse, search, similar_response
from ..search.engine import get_engine
from ..search.qcache import Answers
from ..store import Store

__all__ = ["run_search", "run_similar", "run_similar_response"]

_GATE = threading.Lock()


# Whole answers, per worker: paging, feed readers polling a saved search and popular queries
# repeat requests. Keyed on the index version as well as the request, so an answer is never
# served once the index has moved on (the background follower moves it).
_ANSWERS = Answers(1024)


def run_search(store: Store, settings: Settings, query: str, **kw) -> SearchResponse:
    # catch_up=None: never index here; 0 (follower off) makes the note say what to run.
    catch_up = None if settings.web_index_every > 0 else 0
    with _GATE:
        if not settings.search_cache_seconds:
            return search(store, query, settings=settings, catch_up=catch_up, **kw)
        _ANSWERS.ttl = settings.search_cache_seconds
        version = get_engine(store, settings).version(store)
        key = (query, tuple(sorted(kw.items())))
        return _ANSWERS.get_or_compute(
            key, version, lambda: search(store, query, settings=settings, catch_up=catch_up, **kw)
        )


def run_similar_response(
    store: Store, settings: Settings, paper_id: str, limit: int
) -> SearchResponse:
    with _GATE:
        return similar_response(store, paper_id, limit=limit, settings=settings)


def run_similar(store: Store, settings: Settings, paper_id: str, limit: int) -> list[Hit]:
    return run_similar_response(store, settings, paper_id, limit).hits
