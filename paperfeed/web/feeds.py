"""Atom feeds: trending, the daily listing, a category, and a saved search.

Built with feedgen. Entry ids are this site's paper URLs, so a paper keeps its id across
feeds and re-harvests; ``updated`` is the paper's latest version (or the moment it was listed),
so feed readers show a paper again only when it really changed.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from feedgen.feed import FeedGenerator

from ..errors import NotFoundError
from ..search import MODES
from .render import paper_url, plain
from .searching import run_search
from .views import (
    CATEGORY_RE,
    Entry,
    category_ok,
    hits_to_entries,
    load_entries,
    newest_day,
    page_size,
)

__all__ = ["router"]

router = APIRouter(prefix="/feeds", include_in_schema=False)

ATOM = "application/atom+xml; charset=utf-8"
# A feed carries more than a page: readers poll now and then and should not miss papers.
FEED_SIZE = 100
# The daily feed covers the newest days with papers, so a reader polling once a week
# still sees every paper.
DAILY_DAYS = 7


def _base(request: Request) -> str:
    s = request.app.state.settings
    if s.origin("base_url") != "default":
        return s.base_url
    return str(request.base_url).rstrip("/")


def _dt(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _atom(request: Request, title: str, subtitle: str, self_path: str, html_path: str,
          entries: list[Entry]) -> Response:  # fmt: skip
    base = _base(request)
    fg = FeedGenerator()
    fg.id(base + self_path)
    fg.title(title)
    fg.subtitle(subtitle)
    fg.author({"name": "paperfeed"})
    fg.link(href=base + self_path, rel="self", type="application/atom+xml")
    fg.link(href=base + html_path, rel="alternate", type="text/html")
    fg.generator("paperfeed")
    newest = None
    for e in entries:
        p = e.paper
        url = base + paper_url(p.id)
        updated = _dt(p.updated) or _dt(e.day) or _dt(p.published) or datetime(1991, 1, 1, tzinfo=timezone.utc)
        newest = max(newest, updated) if newest else updated
        fe = fg.add_entry(order="append")
        fe.id(url)
        fe.title(plain(p.title) or p.id)
        # Only the alternate link: feedgen 1.0 drops ``rel`` from entry links, so a second
        # (PDF) link would become a second "alternate" one, which Atom forbids.
        fe.link(href=url, rel="alternate", type="text/html")
        fe.updated(updated)
        published = _dt(p.published)
        if published:
            fe.published(published)
        for name in p.authors[:50]:
            if plain(name).strip():
                fe.author({"name": plain(name)})
        for cat in p.categories:
            fe.category(term=plain(cat))
        fe.summary(plain(p.abstract) or "(no abstract)")
    fg.updated(newest or datetime.now(timezone.utc))
    return Response(fg.atom_str(pretty=False), media_type=ATOM)


@router.get("/trending.atom")
def trending_feed(request: Request):
    s, store = request.app.state.settings, request.app.state.store
    t, entries = request.app.state.trending.page(store, s, FEED_SIZE, 0)
    return _atom(request, "paperfeed: trending papers", t.window_text,
                 "/feeds/trending.atom", "/", entries)  # fmt: skip


@router.get("/daily.atom")
def daily_feed(request: Request):
    store = request.app.state.store
    last = date.fromisoformat(newest_day(store))
    start = last - timedelta(days=DAILY_DAYS - 1)
    rows, _ = store.feed_entries(
        start.isoformat(), (last + timedelta(days=1)).isoformat(), FEED_SIZE, 0, order="recent"
    )
    return _atom(request, "paperfeed: daily papers",
                 f"Papers listed {start.isoformat()} to {last.isoformat()}.",
                 "/feeds/daily.atom", "/daily", load_entries(store, rows))  # fmt: skip


@router.get("/category/{category}.atom")
def category_feed(request: Request, category: str):
    store = request.app.state.store
    if not category_ok(category) or not store.has_category(category):
        raise NotFoundError(f"no papers in category {category[:40]!r}")
    rows, _ = store.category_entries(category, FEED_SIZE, 0)
    return _atom(request, f"paperfeed: {category}", f"The newest papers in {category}.",
                 f"/feeds/category/{category}.atom", f"/category/{category}",
                 load_entries(store, rows))  # fmt: skip


@router.get("/search.atom")
def search_feed(
    request: Request,
    # The length limit is the max_query_chars setting, checked by the search (422).
    q: Annotated[str, Query(min_length=1)],
    mode: Annotated[str, Query(pattern="^(" + "|".join(MODES) + ")$")] = MODES[0],
    category: Annotated[str | None, Query(pattern=CATEGORY_RE)] = None,
    author: Annotated[str | None, Query(max_length=200)] = None,
):
    store = request.app.state.store
    size = max(page_size(request.app.state.settings), 50)
    res = run_search(
        store, request.app.state.settings, q, mode=mode, limit=size, category=category,
        author=author,
    )  # fmt: skip
    entries = hits_to_entries(store, res.hits)
    query = request.url.query
    return _atom(request, f"paperfeed: search for {plain(q)[:80]}",
                 "Papers matching a saved search" + (f" ({'; '.join(res.notes)})" if res.notes else "."),
                 f"/feeds/search.atom?{query}", f"/search?{query}", entries)  # fmt: skip
