"""Submitting a paper by arXiv id: fetch it (or find it locally) and list it today.

The arXiv API client belongs to the harvest package; when it is missing or arXiv cannot be
reached, a paper already in the local store can still be submitted, and the page says so.
A paper already stored is not fetched again, so a visitor cannot make this site hammer the
arXiv API (the shared polite client spaces requests too).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from ..config import Settings
from ..errors import InputError, NotFoundError
from ..ids import parse_arxiv_id
from ..store import Store, StoredPaper

__all__ = ["Submission", "submit_paper"]

log = logging.getLogger("paperfeed.web")

# One fetch at a time per process: visitors wait in line rather than queueing requests
# inside the polite client (whose spacing is per process anyway).
_FETCH_LOCK = threading.Lock()


@dataclass(slots=True)
class Submission:
    paper: StoredPaper
    submitted_at: str
    new: bool
    via: str  # arxiv-api or local
    notes: list[str] = field(default_factory=list)


def _fetcher():
    try:
        from ..harvest.arxiv_api import fetch_ids
    except ImportError:
        return None
    return fetch_ids


def _web_settings(settings: Settings) -> Settings:
    # A visitor is waiting: one quick try, not a harvest's patient retries.
    return settings.with_overrides(
        harvest_max_retries=1, harvest_timeout=15.0, harvest_backoff_cap=2.0
    )


def submit_paper(
    store: Store, settings: Settings, text: str, user_id: int | None = None
) -> Submission:
    parsed = parse_arxiv_id(text or "")
    if parsed is None:
        raise InputError(f"not an arXiv id: {(text or '')[:60]!r} (e.g. 2606.00467)")
    pid = parsed[0]
    notes: list[str] = []
    via = "local"
    if store.get_paper(pid) is None:
        fetch_ids = _fetcher()
        if fetch_ids is None:
            notes.append("The arXiv API client is not available; looked in the local store only.")
        else:
            try:
                with _FETCH_LOCK:
                    papers = fetch_ids([pid], _web_settings(settings))
                if papers:
                    store.upsert_papers(papers)
                    via = "arxiv-api"
            except Exception as e:  # noqa: BLE001 - the network edge: fall back, say why
                log.warning("arXiv fetch of %s failed: %s", pid, e)
                notes.append(f"arXiv could not be reached ({e}); looked in the local store.")
    sp = store.get_paper(pid)
    if sp is None:
        where = "arXiv or the local store" if via == "local" and not notes else "the local store"
        raise NotFoundError(" ".join([*notes, f"{pid} was not found in {where}."]))
    submitted_at, new = store.add_submission(pid, via, user_id)
    return Submission(sp, submitted_at, new, via, notes)
