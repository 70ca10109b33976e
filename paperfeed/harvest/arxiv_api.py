"""The arXiv API (``/api/query``): papers by id list or by search query, page by page.

``fetch_ids`` is what the web app's "submit a paper by arXiv id" calls; ``search`` walks a
query's results using the opensearch totals. Both go through PoliteClient, so the API's
"one request every 3 seconds" holds across them.
"""

from __future__ import annotations

from typing import Iterable

import httpx

from ..errors import HarvestError, PaperfeedError
from ..ids import parse_arxiv_id
from ..models import Paper, Rejected
from ..sources.atom import FeedInfo, read_atom_page
from ..sources.xmlsafe import REFUSED
from .http import PoliteClient, RetryableReply

__all__ = ["fetch_ids", "search", "PAGE_SIZE"]

# Ids per id_list request and results per search page. The API allows far more, but small
# pages keep a dropped connection cheap and replies quick.
PAGE_SIZE = 100


def _reader(where: str, expect_entries: bool):
    def check(resp: httpx.Response) -> tuple[list[Paper | Rejected], FeedInfo]:
        records, info = read_atom_page(resp.content, where)
        for r in records:
            if isinstance(r, Rejected):
                if r.why == REFUSED:
                    raise HarvestError(f"{where}: {r.why}")
                if r.why.startswith("XML syntax error"):
                    raise RetryableReply(f"{where}: {r.why}")
                if r.why.startswith("arXiv API error"):
                    raise HarvestError(f"{where}: {r.why}")
        if expect_entries and not records:
            # The API is known to answer a page now and then with no entries although the
            # totals say there are more; that is a hiccup, not the end.
            raise RetryableReply(f"{where}: empty page before the end of the results")
        return records, info

    return check


def _with_client(settings, client: PoliteClient | None) -> tuple[PoliteClient, bool]:
    return (client, False) if client is not None else (PoliteClient(settings), True)


def fetch_ids(
    ids: Iterable[str], settings, client: PoliteClient | None = None
) -> list[Paper]:
    """The latest version of each paper named (any spelling of an arXiv id). Ids the API
    does not know are simply absent from the result. Raises PaperfeedError for text that is
    not an arXiv id (before any request) and HarvestError when the API cannot be read."""
    bases: list[str] = []
    for raw in ids:
        parsed = parse_arxiv_id(raw)
        if parsed is None:
            raise PaperfeedError(f"not an arXiv id: {raw!r}")
        if parsed[0] not in bases:
            bases.append(parsed[0])
    client, own = _with_client(settings, client)
    out: list[Paper] = []
    try:
        for i in range(0, len(bases), PAGE_SIZE):
            chunk = bases[i : i + PAGE_SIZE]
            params = {"id_list": ",".join(chunk), "start": 0, "max_results": len(chunk)}
            where = f"id_list page {i // PAGE_SIZE + 1}"
            records, _ = client.get(settings.arxiv_api_url, params, _reader(where, False))
            # A requested id the API does not know comes back as an entry without a title;
            # it is "not found", not an error.
            out.extend(r for r in records if isinstance(r, Paper))
    finally:
        if own:
            client.close()
    return out


def search(
    query: str,
    settings,
    max_results: int = PAGE_SIZE,
    sort_by: str = "submittedDate",
    client: PoliteClient | None = None,
) -> tuple[list[Paper], list[Rejected]]:
    """Up to ``max_results`` papers matching an API ``search_query`` (newest first by
    default), fetched ``PAGE_SIZE`` at a time."""
    client, own = _with_client(settings, client)
    papers: list[Paper] = []
    rejected: list[Rejected] = []
    start, total = 0, None
    try:
        while start < max_results and (total is None or start < total):
            n = min(PAGE_SIZE, max_results - start)
            params = {
                "search_query": query,
                "start": start,
                "max_results": n,
                "sortBy": sort_by,
                "sortOrder": "descending",
            }
            where = f"search page {start // PAGE_SIZE + 1}"
            records, info = client.get(
                settings.arxiv_api_url, params, _reader(where, total is not None)
            )
            if total is None:
                total = info.total_results if info.total_results is not None else len(records)
            papers.extend(r for r in records if isinstance(r, Paper))
            rejected.extend(r for r in records if isinstance(r, Rejected))
            if not records:
                break
            start += len(records)
    finally:
        if own:
            client.close()
    return papers, rejected
