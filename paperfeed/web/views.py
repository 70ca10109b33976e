"""What pages, the API and feeds share: reading dates from URLs, loading the papers of a
listing, paging. Each function turns untrusted URL parts into values or a 404/422."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

from fastapi import Request

from ..config import Settings
from ..errors import NotFoundError
from ..models import Paper
from ..rank import TrendingPage, trending
from ..search import Hit
from ..store import Store
from ..store.base import FeedRow, is_listable

__all__ = [
    "Entry",
    "Span",
    "TrendingCache",
    "load_entries",
    "parse_day",
    "parse_week",
    "parse_month",
    "page_size",
    "page_href",
    "newest_day",
    "week_of",
    "MAX_PAGE",
    "DAY_PATTERN",
    "hits_to_entries",
    "category_ok",
    "CATEGORY_RE",
]

# The longest query is the max_query_chars setting (search.check_query_length: 422).
# A date parameter is a day written YYYY-MM-DD, nothing else (not a number such as 0.0);
# the search refuses a day that does not exist (2026-02-30) with a 422 saying so.
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# Beyond this a page number is an error (422), not a slow scan through a huge offset.
MAX_PAGE = 1000
MAX_PAGE_SIZE = 100
# Dates outside this range are refused: arXiv started in 1991, and date arithmetic on
# 9999-12-31 would overflow.
FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2199, 12, 31)
CATEGORY_RE = r"^[A-Za-z][A-Za-z\-]{0,20}(\.[A-Za-z][A-Za-z\-]{0,20})?$"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(slots=True)
class Entry:
    """A paper as a listing shows it."""

    paper: Paper
    pk: int
    votes: int
    day: str | None = None
    score: float | None = None
    listings: list[dict] = field(default_factory=list)


@dataclass(slots=True)
class Span:
    """A range of days shown on one page: [start, end) plus its neighbours."""

    kind: str  # day, week, month
    label: str  # 2026-06-12, 2026-W24, 2026-06
    start: date
    end: date
    prev: str | None = None  # label of the previous span, if any
    next: str | None = None


def load_entries(
    store: Store, rows: list[FeedRow], scores: list[float] | None = None
) -> list[Entry]:
    """The papers of ``rows``, in the same order (a paper deleted meanwhile is skipped)."""
    papers = store.get_papers_by_pk([r.pk for r in rows])
    out = []
    for i, r in enumerate(rows):
        sp = papers.get(r.pk)
        if sp is None:
            continue
        out.append(
            Entry(
                paper=sp.paper,
                pk=r.pk,
                votes=r.votes,
                day=r.day or None,
                score=scores[i] if scores else None,
                listings=sp.listings,
            )
        )
    return out


def hits_to_entries(store: Store, hits: list[Hit]) -> list[Entry]:
    """Search hits as listing entries (with votes), in rank order. Papers a reader cannot
    open or place (``store.base.is_listable``: no date, no authors, no arXiv id or DOI) are
    left out, as listings leave them out."""
    pks = [h.pk for h in hits if h.pk]
    papers = {h.pk: h.stored for h in hits if h.pk and h.stored is not None}
    missing = [pk for pk in pks if pk not in papers]
    if missing:  # hits made elsewhere without their papers
        papers.update(store.get_papers_by_pk(missing))
    votes = store.vote_counts(pks)
    out = []
    for h in hits:
        sp = papers.get(h.pk) if h.pk else store.get_paper(h.id)
        if sp is not None and is_listable(sp.paper, sp.withdrawn):
            out.append(
                Entry(
                    paper=sp.paper,
                    pk=sp.pk,
                    votes=votes.get(sp.pk, 0),
                    day=(sp.paper.published or "")[:10] or None,
                    score=h.score,
                    listings=sp.listings,
                )
            )
    return out


def category_ok(category: str) -> bool:
    return re.match(CATEGORY_RE, category) is not None


def _in_range(d: date, text: str) -> date:
    if not FIRST_DAY <= d <= LAST_DAY:
        raise NotFoundError(f"{text} is outside the dates this site lists")
    return d


def parse_day(text: str) -> Span:
    if not _DAY.match(text):
        raise NotFoundError(f"not a day: {text[:40]!r} (expected YYYY-MM-DD)")
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise NotFoundError(f"not a day: {text!r}") from None
    _in_range(d, text)
    return Span("day", d.isoformat(), d, d + timedelta(days=1))


def parse_week(text: str) -> Span:
    m = _WEEK.match(text)
    if not m:
        raise NotFoundError(f"not a week: {text[:40]!r} (expected YYYY-Www, e.g. 2026-W24)")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise NotFoundError(f"not a week: {text!r}") from None
    _in_range(monday, text)
    prev_w = (monday - timedelta(days=7)).isocalendar()
    next_w = (monday + timedelta(days=7)).isocalendar()
    return Span(
        "week",
        text,
        monday,
        monday + timedelta(days=7),
        f"{prev_w.year}-W{prev_w.week:02d}",
        f"{next_w.year}-W{next_w.week:02d}",
    )


def parse_month(text: str) -> Span:
    m = _MONTH.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise NotFoundError(f"not a month: {text[:40]!r} (expected YYYY-MM)")
    y, mo = int(m.group(1)), int(m.group(2))
    start = _in_range(date(y, mo, 1), text)
    end = date(y + (mo == 12), mo % 12 + 1, 1)
    prev = date(y - (mo == 1), (mo - 2) % 12 + 1, 1)
    return Span("month", text, start, end, prev.strftime("%Y-%m"), end.strftime("%Y-%m"))


def week_of(d: date) -> str:
    iso = d.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def newest_day(store: Store) -> str:
    """The newest day with papers (today when there are none, or only future-dated ones)."""
    today = datetime.now(timezone.utc).date()
    recent = store.feed_recent_days((today + timedelta(days=1)).isoformat(), 1)
    return recent[0] if recent else today.isoformat()


def page_size(settings: Settings, asked: int | None = None) -> int:
    return max(1, min(asked or settings.page_size, MAX_PAGE_SIZE))


def page_href(request: Request, page: int) -> str:
    """A relative link to another page of the same listing, keeping the other parameters."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    if page > 1:
        params.append(("page", str(page)))
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


class TrendingCache:
    """Trending pages, kept a few seconds. Computing one reads every paper of the window
    (16,000 on a 100,000-paper bench database: tens of milliseconds), while the answer
    changes slowly; the front page is the most requested one. A new paper, vote or
    submission (``store.feed_version()``) makes the next request recompute at once; imported
    upvote counts show within ``TTL`` seconds."""

    TTL = 30.0
    MAX_ENTRIES = 64

    def __init__(self) -> None:
        self._pages: dict[tuple, tuple[float, TrendingPage, list[Entry]]] = {}
        self._cards: dict[tuple, tuple[list[Entry], str]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every page (a vote was given or taken back here)."""
        with self._lock:
            self._pages.clear()
            self._cards.clear()

    def cards(self, entries: list[Entry], variant: tuple, make) -> str:
        """The cards of a cached page rendered once per ``variant`` (path, first rank) for
        visitors who are not signed in: their cards carry nothing personal, and rendering
        25 cards (escaping, math, folding) was most of the front page's time under load.
        Keyed on the entries list itself, which lives exactly as long as its cached page."""
        key = (id(entries),) + variant
        with self._lock:
            hit = self._cards.get(key)
            if hit is not None and hit[0] is entries:
                return hit[1]
        html = make()
        with self._lock:
            if len(self._cards) >= 4 * self.MAX_ENTRIES:
                self._cards.clear()
            self._cards[key] = (entries, html)
        return html

    def page(
        self, store: Store, settings: Settings, limit: int, offset: int
    ) -> tuple[TrendingPage, list[Entry]]:
        # The window moves with the clock: a new day makes a new key.
        today = datetime.now(timezone.utc).date()
        key = (limit, offset, today, store.feed_version())
        now = time.monotonic()
        with self._lock:
            hit = self._pages.get(key)
        if hit and now - hit[0] < self.TTL:
            return hit[1], hit[2]
        t = trending(
            store,
            settings.trending_gravity,
            settings.trending_window_days,
            limit,
            offset,
            max_days=settings.trending_max_days,
            fill=settings.page_size,  # one window for every page and page length
        )
        entries = load_entries(store, [r.row for r in t.items], [r.score for r in t.items])
        with self._lock:
            if len(self._pages) >= self.MAX_ENTRIES:
                self._pages = {k: v for k, v in self._pages.items() if now - v[0] < self.TTL}
                if len(self._pages) >= self.MAX_ENTRIES:
                    self._pages.clear()
            self._pages[key] = (now, t, entries)
        return t, entries
