"""The JSON API under /api/ (schema at /api/openapi.json).

Responses are built from explicit schemas that carry only public fields: nothing about
where a record was imported from, internal keys or revisions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from ..errors import NotFoundError
from ..ids import is_arxiv_id, normalize_id
from ..search import MODES
from .render import paper_url
from .searching import run_search, run_similar_response
from .views import (
    CATEGORY_RE,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    Entry,
    hits_to_entries,
    load_entries,
    newest_day,
    page_size,
    parse_day,
)

__all__ = ["router", "ErrorOut", "document_limits"]



class ErrorOut(BaseModel):
    """The body of every error answer under /api/ (what app.error_response sends)."""

    detail: str = Field(description="What went wrong, in a sentence.")
    errors: list[str] = Field(
        description="One line per invalid parameter (`name: why`); empty for other errors."
    )


_ERRORS = {
    404: {"model": ErrorOut, "description": "No such paper, day or page."},
    422: {"model": ErrorOut, "description": "A parameter is not valid (see `errors`)."},
    503: {"model": ErrorOut, "description": "Search is unavailable here (the message says why)."},
}

router = APIRouter(prefix="/api", tags=["api"], responses=_ERRORS)

# Dates in the API are days, written YYYY-MM-DD and nothing else (a number such as 0.0 is
# not a date, and 2026-02-30 is refused by the search with a 422 saying so).
Day = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-\d{2}-\d{2}$", json_schema_extra={"format": "date"},
          description="A day, YYYY-MM-DD."),
]  # fmt: skip

Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")]
Limit = Annotated[
    int | None, Query(ge=1, le=MAX_PAGE_SIZE, description="Papers per page (default: page_size).")
]


class PaperOut(BaseModel):
    id: str = Field(description="Base arXiv id (no version), or a namespaced id.")
    title: str
    abstract: str
    authors: list[str]
    categories: list[str] = Field(description="Primary category first.")
    primary_category: str | None
    version: int | None
    published: str | None = Field(description="First version, ISO 8601 UTC.")
    updated: str | None = Field(description="Latest version, ISO 8601 UTC.")
    doi: str | None
    journal_ref: str | None
    comments: str | None
    votes: int = Field(description="This site's votes plus Hugging Face upvotes.")
    hf_listed_on: list[str] = Field(description="Days Hugging Face Daily Papers listed it.")
    url: str = Field(description="This site's page for the paper (a path).")
    abs_url: str | None = Field(description="arXiv abstract page, for arXiv papers.")
    pdf_url: str | None = Field(description="arXiv PDF, for arXiv papers.")


class ListedPaper(PaperOut):
    day: str | None = Field(description="The day the paper is listed on (YYYY-MM-DD).")
    score: float | None = Field(description="Trending or search score, when ranked.")


class PaperPage(BaseModel):
    papers: list[PaperOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class Listing(BaseModel):
    papers: list[ListedPaper]
    page: int
    page_size: int
    total: int = Field(description="Papers in the whole listing (an estimate when "
                       "`total_exact` is false).")  # fmt: skip
    total_exact: bool = Field(True, description="False when `total` is an estimate "
                              "(hybrid and semantic search).")  # fmt: skip


class DailyListing(Listing):
    day: str
    prev_day: str | None
    next_day: str | None


class TrendingListing(Listing):
    as_of: str = Field(description="Ages are measured to this moment (ISO 8601 UTC).")
    window: list[str] = Field(description="[first day, day after the last] considered.")
    window_text: str = Field(description="What the window shows, in plain words.")


class SearchOut(Listing):
    query: str
    mode: str = Field(description="The mode actually used (hybrid may fall back to keyword).")
    notes: list[str] = Field(description="Plain sentences for the reader: a fallback to "
                             "keyword ranking, papers not indexed yet ...")  # fmt: skip


class SimilarOut(Listing):
    mode: str = Field(description="semantic, or keyword when the paper has no vector yet.")
    notes: list[str]


def _paper_out(e: Entry, cls=ListedPaper) -> PaperOut:
    p = e.paper
    arxiv = is_arxiv_id(p.id)
    fields = dict(
        id=p.id,
        title=p.title,
        abstract=p.abstract,
        authors=p.authors,
        categories=p.categories,
        primary_category=p.primary_category,
        version=p.version,
        published=p.published,
        updated=p.updated,
        doi=p.doi,
        journal_ref=p.journal_ref,
        comments=p.comments,
        votes=e.votes,
        hf_listed_on=[li["day"] for li in e.listings],
        url=paper_url(p.id),
        abs_url=f"https://arxiv.org/abs/{p.id}" if arxiv else None,
        pdf_url=f"https://arxiv.org/pdf/{p.id}" if arxiv else None,
    )
    if cls is ListedPaper:
        fields.update(day=e.day, score=e.score)
    return cls(**fields)


def _entries_by_pk(store, pks: list[int]) -> list[Entry]:
    papers = store.get_papers_by_pk(pks)
    votes = store.vote_counts(pks)
    return [
        Entry(papers[pk].paper, pk, votes.get(pk, 0), listings=papers[pk].listings)
        for pk in pks
        if pk in papers
    ]


@router.get("/papers", response_model=PaperPage, summary="All papers, newest stored first")
def list_papers(
    request: Request,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$", description="From next_cursor.")] = None,
    limit: Limit = None,
    category: Annotated[str | None, Query(pattern=CATEGORY_RE)] = None,
):
    store = request.app.state.store
    size = page_size(request.app.state.settings, limit)
    pks = store.list_paper_pks(size, int(cursor) if cursor else None, category)
    entries = _entries_by_pk(store, pks)
    nxt = str(pks[-1]) if len(pks) == size else None
    return PaperPage(papers=[_paper_out(e, PaperOut) for e in entries], next_cursor=nxt)


def _one(request: Request, paper_id: str):
    store = request.app.state.store
    sp = store.get_paper(normalize_id(paper_id)) if paper_id.strip() else None
    if sp is None:
        raise NotFoundError(f"no paper with id {paper_id[:60]!r}")
    return sp


@router.get(
    "/papers/{paper_id:path}/similar", response_model=SimilarOut, summary="Papers similar to one"
)
def similar_papers(request: Request, paper_id: str, limit: Limit = None):
    store = request.app.state.store
    sp = _one(request, paper_id)
    size = page_size(request.app.state.settings, limit)
    res = run_similar_response(store, request.app.state.settings, sp.paper.id, size)
    entries = hits_to_entries(store, res.hits)
    return SimilarOut(
        papers=[_paper_out(e) for e in entries], page=1, page_size=size, total=len(entries),
        mode=res.mode, notes=res.notes,
    )  # fmt: skip


@router.get(
    "/papers/{paper_id:path}",
    response_model=PaperOut,
    summary="One paper",
    responses={301: {"description": "A versioned or prefixed arXiv id: moved to the base id."}},
)
def one_paper(request: Request, paper_id: str):
    if normalize_id(paper_id) != paper_id and normalize_id(paper_id):
        return RedirectResponse("/api" + paper_url(normalize_id(paper_id)), status_code=301)
    sp = _one(request, paper_id)
    votes = request.app.state.store.vote_counts([sp.pk]).get(sp.pk, 0)
    return _paper_out(Entry(sp.paper, sp.pk, votes, listings=sp.listings), PaperOut)


@router.get("/search", response_model=SearchOut, summary="Search papers")
def api_search(
    request: Request,
    q: Annotated[str, Query(
        min_length=1,
        description="The query, in arXiv's syntax. Longer than the max_query_chars setting "
        "(default 10000 characters): 422.",
    )],
    mode: Annotated[str, Query(pattern="^(" + "|".join(MODES) + ")$")] = MODES[0],
    category: Annotated[str | None, Query(pattern=CATEGORY_RE)] = None,
    since: Day = None,
    until: Day = None,
    author: Annotated[str | None, Query(max_length=200)] = None,
    page: Page = 1,
    limit: Limit = None,
):  # fmt: skip
    store = request.app.state.store
    size = page_size(request.app.state.settings, limit)
    res = run_search(
        store, request.app.state.settings, q, mode=mode, limit=size, offset=(page - 1) * size,
        category=category, since=since, until=until, author=author,
    )  # fmt: skip
    entries = hits_to_entries(store, res.hits)
    return SearchOut(
        papers=[_paper_out(e) for e in entries],
        page=page,
        page_size=size,
        total=res.total,
        total_exact=res.total_exact,
        query=q,
        mode=res.mode,
        notes=res.notes,
    )


@router.get("/trending", response_model=TrendingListing, summary="Trending papers")
def api_trending(request: Request, page: Page = 1, limit: Limit = None):
    s, store = request.app.state.settings, request.app.state.store
    size = page_size(s, limit)
    t, entries = request.app.state.trending.page(store, s, size, (page - 1) * size)
    return TrendingListing(
        papers=[_paper_out(e) for e in entries],
        page=page,
        page_size=size,
        total=t.total,
        as_of=t.as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        window=[t.start_day, t.end_day],
        window_text=t.window_text,
    )


@router.get("/daily", response_model=DailyListing, summary="The newest day's papers")
def api_daily_latest(request: Request, page: Page = 1, limit: Limit = None):
    return api_daily(request, newest_day(request.app.state.store), page, limit)


@router.get("/daily/{day}", response_model=DailyListing, summary="One day's papers")
def api_daily(request: Request, day: str, page: Page = 1, limit: Limit = None):
    s, store = request.app.state.settings, request.app.state.store
    span = parse_day(day)
    size = page_size(s, limit)
    rows, total = store.feed_entries(
        span.start.isoformat(), span.end.isoformat(), size, (page - 1) * size
    )
    prev_day, next_day = store.feed_day_bounds(span.label)
    return DailyListing(
        papers=[_paper_out(e) for e in load_entries(store, rows)],
        page=page,
        page_size=size,
        total=total,
        day=span.label,
        prev_day=prev_day,
        next_day=next_day,
    )


def document_limits(app, settings) -> None:
    """Put the limits that are settings (not constants) into the OpenAPI schema, so that it
    says what this server accepts: ``q``'s maxLength is ``max_query_chars``."""
    base = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base()
        for path in schema.get("paths", {}).values():
            for op in path.values():
                for param in op.get("parameters", []) if isinstance(op, dict) else []:
                    if param.get("name") == "q" and param.get("in") == "query":
                        param.setdefault("schema", {})["maxLength"] = settings.max_query_chars
        return schema

    app.openapi = openapi
