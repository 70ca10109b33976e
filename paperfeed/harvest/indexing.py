"""Keeping the search index up with harvests.

How far semantic search is behind is read from the store (the embedding checkpoint of the
model the vector index was last built with, against the papers' revs), never from a flag in
memory: a `paperfeed run` stopped between a harvest and its embedding, or a `paperfeed
harvest` run with indexing off, is caught up by whichever command runs next.
"""

from __future__ import annotations

import json

from ..errors import SearchError
from ..store import Store

__all__ = ["papers_behind", "update_search_index", "behind_note"]


def papers_behind(store: Store, settings) -> int | None:
    """How many stored papers changed since their vectors were made (all of them when no
    vector index was ever built). None when there is no search index to be behind: search
    is not installed, or the indexes have no folder to live in."""
    try:
        from ..search.index import current_model, index_paths
    except ImportError:
        return None
    if store.keyword_index() is not None:
        # A store that indexes words itself (PostgreSQL) keeps its vectors too, and which
        # model is current is a checkpoint in it: no folder to read.
        model = current_model(store, None)
        model_id = model[0] if model else None
    else:
        try:
            paths = index_paths(store, settings)
        except SearchError:
            return None
        try:
            model_id = json.loads(paths.current.read_text()).get("model_id")
        except (FileNotFoundError, ValueError, AttributeError):
            model_id = None
    # The same checkpoint name search.index.embed_missing keeps per model.
    since = store.get_checkpoint(f"embed:{model_id}") if model_id else 0
    return store.count_changed(since)


def behind_note(n: int) -> str:
    papers = "paper" if n == 1 else "papers"
    return f"semantic search misses {n} {papers} until `paperfeed index` is run"


def update_search_index(store: Store, settings, progress: bool = False) -> dict:
    """search.update_index (keyword index, vectors, vector index); raises SearchError when
    another process holds the index, ImportError when search is not installed."""
    from ..search.index import update_index

    return update_index(store, settings, progress=progress)
