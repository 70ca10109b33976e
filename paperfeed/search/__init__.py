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
from ..store import Store, StoredPaper
from .index import update_index
from .keyword import Filters
from .text import doc_text, user_day_number

__all__ = [
    "Hit",
    "SearchResponse",
    "search",
    "similar",
    "similar_response",
    "update_index",
    "doc_text",
    "MODES",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "CLI_CATCH_UP",
]

MODES = ("hybrid", "keyword", "semantic")
# Paging bounds: deeper than this nobody reads, and each search ranks offset + limit papers.
MAX_LIMIT = 1000
MAX_OFFSET = 100_000
# `paperfeed search` indexes up to this many new papers itself before searching (saying so);
# beyond, it searches the index as it is and says to run `paperfeed index`.
CLI_CATCH_UP = 20_000


@dataclass(slots=True)
class Hit:
    id: str  # base paper id
    score: float | None  # in [0, 1] (1 = best); None when not ranked (newest first)
    pk: int = 0  # the store's integer key
    # The stored paper, already read to make the hit: pages and the API use it rather than
    # reading each page's papers a second time.
    stored: StoredPaper | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class SearchResponse:
    hits: list[Hit]
    mode: str  # the mode actually used (hybrid falls back to keyword when no model)
    total: int = 0  # matches before paging (an estimate when not total_exact)
    notes: list[str] = field(default_factory=list)  # plain sentences for the reader
    total_exact: bool = True


def _filters(category, since, until, author) -> Filters:
    f = Filters(category=(category or "").strip() or None, author=(author or "").strip() or None)
    for name, value, end in (("since", since, False), ("until", until, True)):
        if value:
            day = user_day_number(str(value), end=end)
            if day is None:
                raise InputError(
                    f"{name} must be a real date like 2024-05-17 (or 2024-05, 2024): {str(value)[:40]!r}"
                )
            setattr(f, name, day)
    return f


def _hits(
    store: Store, ranked: list[tuple[int, float | None]], listable_only: bool = True
) -> list[Hit]:
    # Only papers a reader can open (a date, authors, a real id, not withdrawn): records such
    # as the seed listing's must not crowd results (store.base.is_listable). Benchmarks
    # (BEIR corpora: no dates, no authors) rank everything.
    pks = [pk for pk, _ in ranked]
    ok = store.listable_pks(pks) if listable_only else set(pks)
    papers = store.get_papers_by_pk([pk for pk in pks if pk in ok])
    return [
        Hit(papers[pk].paper.id, None if s is None else round(float(s), 6), pk, papers[pk])
        for pk, s in ranked
        if pk in papers
    ]


def check_query_length(query: str, settings: Settings) -> None:
    """Refuse a query longer than the ``max_query_chars`` setting, saying so."""
    limit = settings.max_query_chars
    if len(query or "") > limit:
        raise InputError(
            f"the query is {len(query):,} characters long; at most {limit:,} are accepted "
            "(setting max_query_chars)"
        )


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
    catch_up: int | None = None,
    listable_only: bool = True,
) -> SearchResponse:
    """Rank papers for ``query``. Never raises on odd query text: returns no hits instead.

    ``mode``: hybrid (default), keyword or semantic; hybrid and semantic fall back to
    keyword, with a note, when the model or the vectors are not available. Filters apply in
    every mode. Raises ``InputError`` for a malformed ``since``/``until``, a query longer
    than the ``max_query_chars`` setting, or ``limit``/``offset`` beyond ``MAX_LIMIT`` /
    ``MAX_OFFSET``. ``settings`` defaults to the environment's (``load_settings()``).

    The search answers from the keyword index as it is and says in ``notes`` how many
    papers it does not have yet. With ``catch_up`` (``paperfeed search``) it first indexes
    the new papers when there are at most that many, and says so; ``catch_up=None`` (the
    web app, which indexes in the background) never writes.
    """
    from .engine import get_engine

    settings = settings or load_settings()
    check_query_length(query, settings)
    filters = _filters(category, since, until, author)
    limit, offset = int(limit), int(offset)
    if not 0 <= limit <= MAX_LIMIT:
        raise InputError(f"limit must be between 0 and {MAX_LIMIT}: {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InputError(f"offset must be between 0 and {MAX_OFFSET:,}: {offset}")
    notes = []
    if mode not in MODES:
        notes.append(f"unknown mode {mode!r}: hybrid used")
        mode = "hybrid"
    if limit == 0:
        return SearchResponse([], mode, 0, notes)
    engine = get_engine(store, settings)
    ranked = engine.search(store, query or "", mode, offset + limit, filters, catch_up)
    return SearchResponse(
        _hits(store, ranked.pks[offset : offset + limit], listable_only),
        ranked.mode,
        ranked.total,
        notes + ranked.notes,
        ranked.total_exact,
    )


def similar_response(
    store: Store, paper_id: str, limit: int = 10, settings: Settings | None = None
) -> SearchResponse:
    """Nearest neighbours of a paper, excluding itself and other records of it, with notes
    (a paper without a vector yet is matched by its words, and a note says so); no hits
    when the paper is unknown. ``mode`` is semantic, or keyword for that fallback."""
    from .engine import get_engine

    settings = settings or load_settings()
    limit = max(0, min(int(limit), MAX_LIMIT))
    sp = store.get_paper(normalize_id(str(paper_id)))
    if sp is None or not limit:
        return SearchResponse([], "semantic", 0)
    engine = get_engine(store, settings)
    notes: list[str] = []
    hits = _hits(store, engine.similar(store, sp.pk, limit, notes))
    return SearchResponse(hits, "keyword" if notes else "semantic", len(hits), notes)


def similar(
    store: Store, paper_id: str, limit: int = 10, settings: Settings | None = None
) -> list[Hit]:
    """``similar_response(...).hits``: the neighbours alone."""
    return similar_response(store, paper_id, limit, settings).hits
