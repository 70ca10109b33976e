"""Search: keyword, semantic and hybrid; similar papers.

The public contract (used by the web app, the CLI and digests) is ``search`` and
``similar`` below, returning ``SearchResponse`` / ``Hit``. Internals may change freely.

PLACEHOLDER IMPLEMENTATION: a plain scan until the real indexes land (search issue).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..store import Store

__all__ = ["Hit", "SearchResponse", "search", "similar", "MODES"]

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
) -> SearchResponse:
    """Rank papers for ``query``. Never raises on odd user input: returns no hits instead."""
    terms = [t.lower() for t in query.split() if t.strip()]
    hits: list[Hit] = []
    for batch in store.iter_changed(0):
        for sp in batch:
            p = sp.paper
            if category and category not in p.categories:
                continue
            if since and (p.published or "") < since:
                continue
            if until and (p.published or "")[:10] > until:
                continue
            if author and not any(author.lower() in a.lower() for a in p.authors):
                continue
            text = f"{p.title} {p.abstract} {' '.join(p.authors)}".lower()
            score = sum(text.count(t) for t in terms)
            if score:
                hits.append(Hit(p.id, float(score), sp.pk))
    hits.sort(key=lambda h: -h.score)
    return SearchResponse(hits[offset : offset + limit], "keyword", len(hits), ["placeholder scan"])


def similar(store: Store, paper_id: str, limit: int = 10) -> list[Hit]:
    """Nearest neighbours of a paper, excluding itself."""
    sp = store.get_paper(paper_id)
    if sp is None:
        return []
    res = search(store, sp.paper.title, mode="keyword", limit=limit + 1)
    return [h for h in res.hits if h.id != paper_id][:limit]
