"""Search: keyword, semantic and hybrid; similar papers.

The public contract (used by the web app, the CLI and digests) is ``search`` and
``similar`` below, returning ``SearchResponse`` / ``Hit``. ``update_index`` brings the
indexes up to date with the store (``paperfeed index``, ``paperfeed run``).

Modules: query.py (arXiv-style query syntax), keyword.py (tantivy BM25 index), vectors.py
(exact / HNSW vector index), hybrid.py (fusion), engine.py (ties them together, cached per
process), index.py (incremental updates), metrics.py and evaluate.py (BEIR evaluation),
embed.py (the embedding model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Settings, load_settings
from ..errors import InputError
from ..ids import normalize_id
from ..store import Store
from .index import update_index
from .keyword import Filters
from .text import day_number, doc_text

__all__ = [
    "Hit",
    "SearchResponse",
    "search",
    "similar",
    "update_index",
    "doc_text",
    "MODES",
]

MODES = ("hybrid", "keyword", "semantic")


@dataclass(slots=True)
class Hit:
    id: str  # base paper id
    score: float
    pk: int = 0  # the store's integer key


@dataclass(slots=True)
class SearchResponse:
    hits: list[Hit]
    mode: str  # the mode actually used (hybrid falls back to keyword when no model)
    total: int | None = None  # matches before paging, when cheaply known
    notes: list[str] = field(default_factory=list)  # e.g. "semantic search unavailable: ..."


def _filters(category, since, until, author) -> Filters:
    f = Filters(category=(category or "").strip() or None, author=(author or "").strip() or None)
    for name, value, end in (("since", since, False), ("until", until, True)):
        if value:
            day = day_number(str(value), end=end)
            if day is None:
                raise InputError(f"{name} must be a date like 2024-05-17 (or 2024-05, 2024): {value!r}")
            setattr(f, name, day)
    return f


def _hits(store: Store, ranked: list[tuple[int, float]]) -> list[Hit]:
    papers = store.get_papers_by_pk([pk for pk, _ in ranked])
    return [Hit(papers[pk].paper.id, float(s), pk) for pk, s in ranked if pk in papers]


def search(
    store: Store,
    query: str,
    mode: str = "hybrid",
    limit: int = 20,
    offset: int = 0,
    category: str | None = None,
    since: str | None = None,  # YYYY-MM-DD, inclusive, on the published date
    until: str | None = None,
    author: str | None = None,
    settings: Settings | None = None,
) -> SearchResponse:
    """Rank papers for ``query``. Never raises on odd query text: returns no hits instead.

    ``mode``: hybrid (default), keyword or semantic; hybrid and semantic fall back to
    keyword, with a note, when the model or the vectors are not available. Filters apply in
    every mode. A malformed ``since``/``until`` raises ``InputError``. ``settings``
    defaults to the environment's (``load_settings()``).
    """
    from .engine import get_engine

    settings = settings or load_settings()
    filters = _filters(category, since, until, author)
    notes = []
    if mode not in MODES:
        notes.append(f"unknown mode {mode!r}: hybrid used")
        mode = "hybrid"
    limit = max(0, min(int(limit), 1000))
    offset = max(0, int(offset))
    if limit == 0:
        return SearchResponse([], mode, None, notes)
    engine = get_engine(store, settings)
    ranked = engine.search(store, query or "", mode, offset + limit, filters)
    return SearchResponse(
        _hits(store, ranked.pks[offset : offset + limit]),
        ranked.mode,
        ranked.total,
        notes + ranked.notes,
    )


def similar(
    store: Store, paper_id: str, limit: int = 10, settings: Settings | None = None
) -> list[Hit]:
    """Nearest neighbours of a paper, excluding itself and other records of it; an empty
    list when the paper is unknown."""
    from .engine import get_engine

    settings = settings or load_settings()
    sp = store.get_paper(normalize_id(str(paper_id)))
    if sp is None:
        return []
    engine = get_engine(store, settings)
    return _hits(store, engine.similar(store, sp.pk, max(0, int(limit))))
