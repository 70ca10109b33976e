"""Trending: votes that decay with age, in the manner of Hacker News.

    score = votes / (age_hours + 2) ** gravity

``votes`` is this site's own votes plus the Hugging Face upvotes imported with a listing;
``age_hours`` runs from the moment a paper appeared (its HF listing day, else its published
time, or the time it was submitted here). The +2 keeps a brand-new paper from dividing by
almost nothing; ``gravity`` (setting ``trending_gravity``) says how fast old votes fade.

Only papers of the ``trending_days`` newest days that have papers compete, and ages are
measured to now, or to the end of the newest of those days when that is earlier: a site that
has not harvested for a while still shows what was trending when its data ends, instead of
an empty page. Papers without votes follow the voted ones, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from ..store import Store
from ..store.base import FeedRow

__all__ = ["Ranked", "TrendingPage", "trending", "trending_score", "age_hours", "window"]


@dataclass(slots=True)
class Ranked:
    row: FeedRow
    score: float


@dataclass(slots=True)
class TrendingPage:
    items: list[Ranked]
    total: int  # papers in the window, voted or not
    as_of: datetime
    start_day: str  # the window, [start_day, end_day)
    end_day: str


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


def window(store: Store, days: int, now: datetime | None = None) -> tuple[str, str, datetime]:
    """(first day, day after the last, as_of): the ``days`` newest days that have papers
    (days in the future, from bad dates, are ignored) and the moment ages are measured to."""
    now = now or datetime.now(timezone.utc)
    tomorrow = now.date() + timedelta(days=1)
    recent = store.feed_recent_days(tomorrow.isoformat(), days)
    if not recent:
        return now.date().isoformat(), tomorrow.isoformat(), now
    end = date.fromisoformat(recent[0]) + timedelta(days=1)
    as_of = min(now, datetime(end.year, end.month, end.day, tzinfo=timezone.utc))
    return recent[-1], end.isoformat(), as_of


def trending(
    store: Store,
    gravity: float = 1.8,
    days: int = 14,
    limit: int = 25,
    offset: int = 0,
    now: datetime | None = None,
) -> TrendingPage:
    """One page of the trending list: voted papers by score, then the rest newest first."""
    start, end, as_of = window(store, days, now)
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
    return TrendingPage(items, len(voted) + unvoted, as_of, start, end)
