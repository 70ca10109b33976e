"""Which papers a digest offers: the one place the digest asks for them.

- Personal picks (followed authors and categories, saved searches, the reader's "For you"
  classifier) come from the readers' recommender, ``rank.foryou.recommend``, each with its
  reasons in plain words.
- Trending and new papers are computed here, once per run for every reader (``Pool``): the
  trending list (votes decaying with age, rank.trending) and the papers stored since the
  oldest "seen" mark among the readers due.

Scores: personal picks keep the recommender's score (0..1); a trending paper scores its share
of the top trending paper's score (0..1); a new paper without votes scores 0, so any
threshold leaves it out (a thin day is not padded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..config import Settings
from ..models import Subscription
from ..rank.foryou import recommend
from ..rank.trending import trending
from ..store import Store

__all__ = ["Pick", "Pool", "personal_picks", "reason_kind", "select_papers"]

# How many trending and new papers one run keeps as candidates for every reader.
TRENDING_POOL = 300
NEW_POOL = 5000


@dataclass(slots=True)
class Pick:
    pk: int
    score: float
    reasons: list[str]
    section: str  # foryou | follows | searches | trending | new
    paper_id: str = ""


def reason_kind(reason: str) -> str:
    """Which preference a recommender's reason belongs to, from its wording (the readers
    feature phrases them "by <author>", "new in <category>", "matches your saved search
    <q>", "close to <title>")."""
    r = reason.strip().lower()
    if r.startswith(("by ", "new in ")):
        return "follows"
    if r.startswith("matches your saved search"):
        return "searches"
    return "foryou"


def personal_picks(
    store: Store, settings: Settings, user_id: int, since: str | None, limit: int,
    exclude: set[int] | None = None,
) -> list[Pick]:  # fmt: skip
    """The reader's personal recommendations, best first."""
    recs = recommend(store, settings, user_id, limit=limit, since=since, exclude=exclude)
    out = []
    for r in recs:
        reasons = [str(x) for x in (r.reasons or [])] or ["picked for you"]
        out.append(Pick(int(r.pk), float(r.score), reasons, reason_kind(reasons[0]), r.paper_id))
    return out


@dataclass
class Pool:
    """Candidates every reader of one run shares: computed once, filtered per reader."""

    trending: list[tuple[int, float, int]] = field(default_factory=list)  # pk, 0..1, votes
    new: list[int] = field(default_factory=list)  # newest first

    @classmethod
    def build(cls, store: Store, settings: Settings, after_pk: int, now: datetime | None = None):
        # The site's own trending window (widened as its first page would be), ranked deeper.
        page = trending(
            store, settings.trending_gravity, settings.trending_window_days, limit=TRENDING_POOL,
            now=now, max_days=settings.trending_max_days, fill=settings.page_size,
        )  # fmt: skip
        voted = [x for x in page.items if x.score > 0]
        top = voted[0].score if voted else 1.0
        return cls(
            [(x.row.pk, x.score / top, x.row.votes) for x in voted],
            store.new_paper_pks(after_pk, NEW_POOL),
        )


def select_papers(
    store: Store, settings: Settings, sub: Subscription, pool: Pool, exclude: set[int],
) -> list[Pick]:  # fmt: skip
    """Up to ``sub.max_papers`` picks for one reader, never one in ``exclude`` (what they were
    sent before) and never below their threshold: personal picks first, then trending, then
    new papers."""
    want = sub.max_papers
    floor = sub.min_score
    taken: set[int] = set()
    out: list[Pick] = []

    def take(p: Pick) -> bool:
        if p.pk in exclude or p.pk in taken or (floor is not None and p.score < floor):
            return False
        taken.add(p.pk)
        out.append(p)
        return len(out) >= want

    personal = [s for s in sub.sections if s != "trending"]
    if personal:
        picks = personal_picks(store, settings, sub.user_id, sub.last_digest_at, want * 2, exclude)
        for p in picks:
            kinds = {reason_kind(r) for r in p.reasons}
            enabled = [k for k in personal if k in kinds]
            if enabled:
                p.section = enabled[0]
                if take(p):
                    return out
    if "trending" in sub.sections:
        for pk, score, votes in pool.trending:
            if floor is not None and score < floor:
                break  # sorted best first
            why = f"trending here: {votes} vote{'' if votes == 1 else 's'}"
            if take(Pick(pk, score, [why], "trending")):
                return out
        if floor is None or floor <= 0:
            for pk in pool.new:
                if pk <= sub.seen_pk:
                    break  # newest first: the rest were new in an earlier digest
                if take(Pick(pk, 0.0, ["new since your last digest"], "new")):
                    return out
    return out
