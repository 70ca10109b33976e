"""Trending: recent papers, most voted first, votes decaying with age as on Hacker News.

    score = votes / (age_hours + 2) ** gravity

``votes`` is this site's own votes plus the Hugging Face upvotes imported with a listing;
``age_hours`` runs from the moment a paper appeared (its HF listing day, else its published
time, or the time it was submitted here). The +2 keeps a brand-new paper from dividing by
almost nothing; ``gravity`` (setting ``trending_gravity``) says how fast old votes fade.

Which papers compete: those listed in the last ``trending_window_days`` days, counted back
from now (today included). A quiet spell would leave that nearly empty, so the window doubles
until it holds a first page of papers, but never beyond ``trending_max_days``: trending means
recent, and a decade-old zero-vote paper never fills page 2. A site with nothing at all in
that many days (a demo database, a harvester stopped for months) shows the same window
ending at its newest day with papers instead of an empty page, and says so in plain words
(``TrendingPage.window_text``). Papers without votes follow the voted ones, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from ..store import Store
from ..store.base import FeedRow

__all__ = [
    "Ranked",
    "TrendingPage",
    "Window",
    "trending",
    "trending_score",
    "age_hours",
    "window",
    "span_text",
]


@dataclass(slots=True)
class Ranked:
    row: FeedRow
    score: float


@dataclass(slots=True)
class Window:
    """The days that compete: [start_day, end_day), ``days`` long, ages measured to ``as_of``."""

    start_day: str
    end_day: str
    as_of: datetime
    days: int
    asked_days: int  # the setting: days > asked_days when the window was widened
    stale: bool = False  # nothing within max_days of now: the window ends at the newest papers
    max_days: int = 0


@dataclass(slots=True)
class TrendingPage:
    items: list[Ranked]
    total: int  # papers in the window, voted or not
    as_of: datetime
    start_day: str  # the window, [start_day, end_day)
    end_day: str
    window: Window | None = None

    @property
    def window_text(self) -> str:
        """What the page shows, in plain words (page header, API, feed subtitle)."""
        w = self.window
        n = f"{self.total} paper{'s' if self.total != 1 else ''}"
        if w is None or self.total == 0:
            return "No papers listed yet."
        last = date.fromisoformat(self.end_day) - timedelta(days=1)
        span = span_text(date.fromisoformat(self.start_day), last)
        if w.stale:
            return (
                f"Nothing was listed in the last {w.max_days} days, so this shows the newest "
                f"papers here: {n} listed {span}, most voted first."
            )
        if w.days == 1:
            lead = f"Listed today ({span})"
        elif w.days > w.asked_days:
            lead = f"Listed in the last {w.days} days ({span}; widened from {w.asked_days} to fill a page)"
        else:
            lead = f"Listed in the last {w.days} days ({span})"
        return f"{lead}: {n}, most voted first."


def span_text(first: date, last: date) -> str:
    """``10–12 June 2026``, ``28 November – 1 December 2026``, ``12 June 2026``."""

    def full(d: date) -> str:
        return f"{d.day} {d:%B %Y}"

    if first == last:
        return full(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{full(last)}"
    if first.year == last.year:
        return f"{first.day} {first:%B} – {full(last)}"
    return f"{full(first)} – {full(last)}"


def trending_score(votes: int, age_h: float, gravity: float) -> float:
    return votes / (max(age_h, 0.0) + 2.0) ** gravity


def _moment(at: str) -> datetime | None:
    try:
        if len(at) == 10:
            d = date.fromisoformat(at)
            return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
        dt = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def age_hours(at: str, as_of: datetime) -> float:
    """Hours from ``at`` (an ISO day or time) to ``as_of``; a date we cannot read counts as
    very old rather than failing the page."""
    moment = _moment(at)
    if moment is None:
        return 24.0 * 365
    return max((as_of - moment).total_seconds() / 3600.0, 0.0)


def _widen(store: Store, end: date, days: int, max_days: int, fill: int) -> tuple[int, int]:
    """(days, papers): the narrowest window ending before ``end`` (doubling from ``days``, at
    most ``max_days``) that holds ``fill`` papers."""
    d = min(days, max_days)
    while True:
        n = store.feed_count((end - timedelta(days=d)).isoformat(), end.isoformat())
        if n >= fill or d >= max_days:
            return d, n
        d = min(d * 2, max_days)


def window(
    store: Store, days: int, now: datetime | None = None, max_days: int = 60, fill: int = 25
) -> Window:
    """The trending window for ``now`` (see the module docstring). Days in the future, from
    bad dates, never count."""
    now = now or datetime.now(timezone.utc)
    max_days = max(max_days, days)
    end = now.date() + timedelta(days=1)
    d, n = _widen(store, end, days, max_days, fill)
    if n:
        return Window((end - timedelta(days=d)).isoformat(), end.isoformat(), now, d, days, False, max_days)
    recent = store.feed_recent_days(end.isoformat(), 1)
    if not recent:
        start = end - timedelta(days=min(days, max_days))
        return Window(start.isoformat(), end.isoformat(), now, days, days, False, max_days)
    # Stale: the same rule, as if it were the end of the newest day with papers.
    end = date.fromisoformat(recent[0]) + timedelta(days=1)
    d, _ = _widen(store, end, days, max_days, fill)
    as_of = datetime(end.year, end.month, end.day, tzinfo=timezone.utc)
    return Window((end - timedelta(days=d)).isoformat(), end.isoformat(), as_of, d, days, True, max_days)


def trending(
    store: Store,
    gravity: float = 1.8,
    days: int = 3,
    limit: int = 25,
    offset: int = 0,
    now: datetime | None = None,
    max_days: int = 60,
    fill: int | None = None,
) -> TrendingPage:
    """One page of the trending list: voted papers by score, then the rest newest first.
    ``fill`` (default ``limit``) is the first page the window widens to fill: pass the site's
    page size so every page of one list, whatever its length, ranks the same window."""
    w = window(store, days, now, max_days, fill or limit)
    start, end, as_of = w.start_day, w.end_day, w.as_of
    voted = [
        Ranked(r, trending_score(r.votes, age_hours(r.at, as_of), gravity))
        for r in store.trending_candidates(start, end)
    ]
    # Ties (equal scores) go to the newer paper, then the lower key for a stable order.
    voted.sort(key=lambda x: (x.row.at, -x.row.pk), reverse=True)
    voted.sort(key=lambda x: x.score, reverse=True)
    items = voted[offset : offset + limit]
    rest_offset = max(0, offset - len(voted))
    rows, unvoted = store.feed_entries(
        start, end, limit - len(items), rest_offset, "recent", exclude=[r.row.pk for r in voted]
    )
    items.extend(Ranked(r, 0.0) for r in rows)
    return TrendingPage(items, len(voted) + unvoted, as_of, start, end, w)
