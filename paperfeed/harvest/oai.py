"""arXiv OAI-PMH ``ListRecords`` by set and date window, resumable page by page.

Every page's papers and the checkpoint that follows it (the next resumptionToken, the window,
the page count) are written in one transaction. Killed at any moment, a harvest therefore
resumes exactly: the page in flight is fetched again, nothing stored is lost, and since papers
are keyed on their arXiv id nothing is stored twice. A harvest is marked complete when the
server sends the empty resumptionToken that ends a list, a single-page answer, or
noRecordsMatch. Some servers end a list with no resumptionToken element at all (the spec asks
for an empty one); a well-formed page cannot have lost its tail, so such a page is stored as
the last one, with a warning.

Records the server marks deleted withdraw the stored paper, and each record's header
datestamp is stored: a newer datestamp is a correction and wins, an older one never rolls a
paper back (``Store.save_harvest_page``). Each set's success or failure is recorded for
`harvest status` and the site (``Store.record_harvest_outcome``).

Checkpoint names: ``arxiv-oai:<set>:<format>`` for the incremental harvest that ``paperfeed
run`` repeats (each window starts where the last complete one ended, so no day is missed),
and ``arxiv-oai:<set>:<format>:<from>..<until>`` (``<until>`` empty when not given) for an
explicit window (a backfill), which running the same command again resumes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import httpx
from tqdm import tqdm

from ..errors import HarvestError, HarvestStopped, PaperfeedError
from ..models import Paper, Rejected
from ..sources.oai import OaiPage, read_oai_page
from ..sources.xmlsafe import REFUSED
from ..store import Store
from ..store.base import HarvestState
from .http import PoliteClient, RetryableReply
from .report import HarvestReport

__all__ = ["harvest_arxiv", "checkpoint_name", "source_name", "FORMATS"]

FORMATS = ("arXiv", "oai_dc")


class _TokenExpired(Exception):
    """The server no longer knows our resumptionToken (they expire after a while)."""


def checkpoint_name(set_spec: str, fmt: str, window: tuple[str, str] | None = None) -> str:
    base = f"arxiv-oai:{set_spec}:{fmt}"
    return f"{base}:{window[0]}..{window[1]}" if window else base


def source_name(set_spec: str) -> str:
    """The name a set's harvests are recorded under (``Store.record_harvest_outcome``)."""
    return f"arxiv-oai:{set_spec}"


def _day(value: str | date | None, what: str) -> str | None:
    if value is None or isinstance(value, date):
        return value.isoformat() if value else None
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise PaperfeedError(f"{what} must be a date YYYY-MM-DD, not {value!r}") from None


def _plan(
    store: Store,
    set_spec: str,
    fmt: str,
    date_from: str | None,
    date_until: str | None,
    today: str,
) -> tuple[HarvestState, bool]:
    """The checkpoint to go on from (resumed=True) or a fresh one for a new window."""
    if date_until and not date_from:
        raise PaperfeedError("--until needs --from (without it OAI-PMH lists all of arXiv)")
    if date_from:
        if date_until and date_until < date_from:
            raise PaperfeedError(f"--until {date_until} is before --from {date_from}")
        # An open end stays open in the name, so the same command resumes on a later day.
        name = checkpoint_name(set_spec, fmt, (date_from, date_until or ""))
    else:
        name = checkpoint_name(set_spec, fmt)
    prev = store.get_harvest(name)
    if prev is not None and not prev.complete:
        return prev, True
    if date_from:
        window = (date_from, date_until or max(today, date_from))
    else:
        # Incremental: start on the day the last complete window ended (records stamped
        # later that day were not in it), or yesterday for the very first harvest.
        start = prev.window_until if prev and prev.window_until else None
        start = start or (date.fromisoformat(today) - timedelta(days=1)).isoformat()
        window = (min(start, today), today)
    params = {"set": set_spec, "format": fmt, "incremental": not date_from}
    state = HarvestState(name=name, params=params, window_from=window[0], window_until=window[1])
    return state, False


def _fatal_xml(r: Paper | Rejected) -> str | None:
    if isinstance(r, Rejected) and (r.why == REFUSED or r.why.startswith("XML syntax error")):
        return r.why
    return None


def _reader(where: str, continuing: bool):
    """A ``check`` for PoliteClient.get: parse a page, decide retry / stop / accept."""

    def check(resp: httpx.Response) -> tuple[list[Paper | Rejected], OaiPage]:
        data = resp.content
        if b"OAI-PMH" not in data[:4096]:
            raise RetryableReply(f"{where}: not an OAI-PMH response")
        records, page = read_oai_page(data, where)
        for r in records:
            why = _fatal_xml(r)
            if why == REFUSED:
                raise HarvestError(f"{where}: {why}")
            if why:  # a page cut short or garbled on the way: fetch it again
                raise RetryableReply(f"{where}: {why}")
        codes = {code for code, _ in page.errors}
        if "badResumptionToken" in codes:
            raise _TokenExpired()
        for code, message in page.errors:
            if code != "noRecordsMatch":
                raise HarvestError(f"{where}: OAI-PMH error {code}: {message}".rstrip(": "))
        if "noRecordsMatch" in codes:
            return records, page  # the server's explicit "nothing in this window"
        # A continuation page without any resumptionToken element ends the list too: it
        # parsed whole (a page cut short fails above), so nothing of it is missing.
        if not continuing and not records and not page.deleted and page.next_token is None:
            # An empty first page is not "no new papers" (that is noRecordsMatch): retry it.
            # (A page of deleted records only is not empty: deletions are news.)
            raise RetryableReply(f"{where}: empty first page")
        return records, page

    return check


def _final_warnings(
    store: Store, report: HarvestReport, page: OaiPage, set_spec: str, continuing: bool, where: str
) -> None:
    if continuing and page.resumption_token is None and not page.errors:
        report.warn(
            f"the server ended the list at {where} without the empty resumptionToken the "
            "OAI-PMH spec asks for; that page was stored as the last one"
        )
    if any(code == "noRecordsMatch" for code, _ in page.errors) and not _ever_had_records(
        store, set_spec
    ):
        report.warn(
            f"no records in set {set_spec!r} for {report.window_from}..{report.window_until} "
            "(noRecordsMatch), and this set has never brought any here: check the set name "
            "(arXiv sets look like cs, math, stat, physics:hep-th)"
        )


def _ever_had_records(store: Store, set_spec: str) -> bool:
    return any(
        s.params.get("set") == set_spec and s.records > 0 for s in store.list_harvests()
    )


def harvest_arxiv(
    store: Store,
    settings,
    set_spec: str,
    date_from: str | date | None = None,
    date_until: str | date | None = None,
    fmt: str = "arXiv",
    client: PoliteClient | None = None,
    progress: bool = False,
    today: str | date | None = None,
) -> HarvestReport:
    """Harvest one set over a date window (default: incremental since the last harvest),
    following resumptionTokens to the end and checkpointing after every page.

    Raises HarvestError when it cannot go on; the pages stored so far stay, and calling it
    again with the same arguments resumes from the checkpoint.
    """
    if fmt not in FORMATS:
        raise PaperfeedError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    today_s = _day(today, "today") or datetime.now(timezone.utc).date().isoformat()
    state, resumed = _plan(
        store, set_spec, fmt, _day(date_from, "--from"), _day(date_until, "--until"), today_s
    )
    report = HarvestReport(
        source="arxiv-oai",
        name=state.name,
        window_from=state.window_from,
        window_until=state.window_until,
        resumed=resumed and state.pages > 0,
    )
    own = client is None
    client = client or PoliteClient(settings)
    url = settings.arxiv_oai_url
    bar = tqdm(desc=f"arXiv {set_spec}", unit=" records", disable=not progress, leave=True)
    try:
        while True:
            where = f"set {set_spec} page {state.pages + 1}"
            if state.token:
                params = {"verb": "ListRecords", "resumptionToken": state.token}
            else:
                params = {
                    "verb": "ListRecords",
                    "metadataPrefix": fmt,
                    "set": set_spec,
                    "from": state.window_from,
                    "until": state.window_until,
                }
            continuing = bool(state.token)
            try:
                records, page = client.get(url, params, _reader(where, continuing))
            except _TokenExpired:
                if report.restarted:
                    raise HarvestError(f"{where}: the server keeps rejecting our token") from None
                # Start the same window again; upserts make the repeated pages harmless.
                report.restarted = True
                report.warn(
                    f"the server no longer knew our resumptionToken (badResumptionToken) at "
                    f"{where}; the window {state.window_from}..{state.window_until} was "
                    "harvested again from its first page"
                )
                state.token, state.pages, state.records = None, 0, 0
                continue
            papers = [r for r in records if isinstance(r, Paper)]
            rejected = [r for r in records if isinstance(r, Rejected)]
            state.pages += 1
            state.records += len(papers)
            state.token = page.next_token
            state.complete = state.token is None
            res = store.save_harvest_page(
                state,
                papers,
                datestamps=page.datestamps,
                deleted=[(d.id, d.datestamp) for d in page.deleted],
            )
            report.pages += 1
            report.add(res, rejected, deleted=len(page.deleted))
            rt = page.resumption_token
            if rt is not None and rt.complete_list_size and bar.total is None:
                bar.total = rt.complete_list_size
            bar.update(len(records))
            if state.complete:
                report.complete = True
                _final_warnings(store, report, page, set_spec, continuing, where)
                store.record_harvest_outcome(source_name(set_spec))
                return report
    except HarvestError as exc:
        msg = f"{exc}. Stored so far: {report.summary()}; run it again to resume"
        if not isinstance(exc, HarvestStopped):
            store.record_harvest_outcome(source_name(set_spec), str(exc))
        err = type(exc)(msg)
        err.report = report  # type: ignore[attr-defined]  # what was really stored
        raise err from None
    finally:
        bar.close()
        if own:
            client.close()
