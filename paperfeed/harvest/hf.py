"""Hugging Face Daily Papers (``/api/daily_papers?date=YYYY-MM-DD``): papers and their votes.

One request per day listed. A day with no listing yet (early in the morning, weekends) is
an empty array, which is a real answer here, unlike an empty OAI-PMH first page. Each day's
papers and the ``hf-daily`` checkpoint (the latest day fetched, used by ``paperfeed run`` to
catch up after downtime) are written in one transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Iterable

import httpx

from ..errors import HarvestError
from ..models import Paper, Rejected
from ..sources.hf import parse_hf
from ..store import Store
from ..store.base import HarvestState
from .http import PoliteClient, RetryableReply
from .report import HarvestReport

__all__ = ["harvest_hf_days", "fetch_day", "today_utc", "CHECKPOINT"]

CHECKPOINT = "hf-daily"


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


def _reader(where: str):
    def check(resp: httpx.Response) -> list[Paper | Rejected]:
        records = list(parse_hf(resp.content, where))
        if len(records) == 1 and isinstance(records[0], Rejected) and records[0].where == where:
            why = records[0].why
            if why.startswith("malformed JSON"):
                raise RetryableReply(f"{where}: {why}")  # cut off on the way: fetch again
            raise HarvestError(f"{where}: unexpected reply: {why}")
        return records

    return check


def fetch_day(day: date, settings, client: PoliteClient) -> list[Paper | Rejected]:
    url = settings.hf_api_url
    return client.get(url, {"date": day.isoformat()}, _reader(f"date {day.isoformat()}"))


def harvest_hf_days(
    store: Store, settings, days: Iterable[date], client: PoliteClient | None = None
) -> list[HarvestReport]:
    """Fetch and store each day's listing; one report per day."""
    own = client is None
    client = client or PoliteClient(settings)
    reports = []
    try:
        for day in days:
            records = fetch_day(day, settings, client)
            papers = [r for r in records if isinstance(r, Paper)]
            prev = store.get_harvest(CHECKPOINT)
            latest = max(day.isoformat(), (prev.window_until or "") if prev else "")
            state = HarvestState(
                name=CHECKPOINT,
                params={"date": day.isoformat()},
                window_from=day.isoformat(),
                window_until=latest,  # never moves back when an old day is refetched
                pages=1,
                records=len(papers),
                complete=True,
            )
            report = HarvestReport(
                source="hf-daily", window_from=day.isoformat(), window_until=day.isoformat()
            )
            report.add(
                store.save_harvest_page(state, papers),
                [r for r in records if isinstance(r, Rejected)],
            )
            report.pages = 1
            report.complete = True
            reports.append(report)
    finally:
        if own:
            client.close()
    return reports
