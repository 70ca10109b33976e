"""When a reader's digest is due.

Daily: once per day of the reader's own calendar (their time zone), not before their hour,
and only when papers arrived since their last digest: on days arXiv announces nothing no
harvest brings new papers, so nobody gets mail. Weekly: the same, on the reader's weekday (or
the first run after it, when a week was missed).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from ..models import Subscription

__all__ = ["is_due", "local_day"]


def local_day(sub: Subscription, now: datetime) -> str:
    return now.astimezone(ZoneInfo(sub.timezone)).date().isoformat()


def is_due(sub: Subscription, now: datetime, max_pk: int) -> bool:
    """Whether ``sub`` should get a digest composed at ``now`` (aware, any zone) when the
    newest stored paper has key ``max_pk``."""
    if sub.status != "active" or max_pk <= sub.seen_pk:
        return False
    local = now.astimezone(ZoneInfo(sub.timezone))
    today = local.date()
    if local.hour < sub.send_hour or sub.last_digest_on == today.isoformat():
        return False
    if sub.frequency == "weekly":
        if local.weekday() == sub.weekday:
            return True
        last = date.fromisoformat(sub.last_digest_on) if sub.last_digest_on else None
        return last is not None and (today - last).days >= 7
    return True
