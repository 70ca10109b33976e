"""Hugging Face Daily Papers (``/api/daily_papers?date=YYYY-MM-DD``): papers and their votes.

One request per day listed (more on a day with over 100 papers). A day with no listing yet (early in the morning, weekends) is
an empty array, which is a real answer here, unlike an empty OAI-PMH first page. Each day's
papers and the ``hf-daily`` checkpoint (the latest day fetched, used by ``paperfeed run`` to
catch up after downtime) are written in one transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Iterable

import httpx

from ..errors import HarvestError, HarvestStopped
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


# The API's most items per page (its default is 50; busy days list more than that).
PAGE_SIZE = 100
MAX_PAGES = 20  # a day has never listed anything near 2,000 papers: a guard, not a limit


def fetch_day(day: date, settings, client: PoliteClient) -> tuple[list[Paper | Rejected], int]:
    """Every record listed on ``day`` and how many pages that took.

    A full page means there may be more: the next page (``p``, counted from 0) is asked for
    until a page comes back short. A page that adds no new paper also ends it, so a server
    that ignores ``p`` costs one extra request, not a loop."""
    url, iso = settings.hf_api_url, day.isoformat()
    records: list[Paper | Rejected] = []
    seen: set[str] = set()
    for page in range(MAX_PAGES):
        params = {"date": iso, "limit": str(PAGE_SIZE)}
        if page:
            params["p"] = str(page)
        where = f"date {iso}" + (f" page {page + 1}" if page else "")
        got = client.get(url, params, _reader(where))
        new = [r for r in got if not isinstance(r, Paper) or r.id not in seen]
        seen.update(r.id for r in got if isinstance(r, Paper))
        records.extend(new)
        if len(got) < PAGE_SIZE or not any(isinstance(r, Paper) for r in new):
            return records, page + 1
    return records, MAX_PAGES


def harvest_hf_days(
    store: Store, settings, days: Iterable[date], client: PoliteClient | None = None
) -> list[HarvestReport]:
    """Fetch and store each day's listing; one report per day."""
    own = client is None
    client = client or PoliteClient(settings)
    reports: list[HarvestReport] = []
    try:
        for day in days:
            records, pages = fetch_day(day, settings, client)
            papers = [r for r in records if isinstance(r, Paper)]
            prev = store.get_harvest(CHECKPOINT)
            latest = max(day.isoformat(), (prev.window_until or "") if prev else "")
            state = HarvestState(
                name=CHECKPOINT,
                params={"date": day.isoformat()},
                window_from=day.isoformat(),
                window_until=latest,  # never moves back when an old day is refetched
                pages=pages,
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
            report.pages = pages
            report.complete = True
            reports.append(report)
            store.record_harvest_outcome(CHECKPOINT)
    except HarvestError as exc:
        if not isinstance(exc, HarvestStopped):
            store.record_harvest_outcome(CHECKPOINT, str(exc))
        exc.reports = reports  # type: ignore[attr-defined]  # the days stored before it
        raise
    finally:
        if own:
            client.close()
    return reports
