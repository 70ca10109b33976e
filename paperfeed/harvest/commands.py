"""CLI commands for the harvest feature; `register` adds them to the `paperfeed` group."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import datetime

import click

from ..clictx import Context, echo_json, pass_ctx
from ..errors import HarvestError
from ..models import ImportReport
from .oai import FORMATS
from .report import HarvestReport

__all__ = ["register"]

_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _day(d: datetime | None) -> str | None:
    return d.date().isoformat() if d else None


def _totals(reports: list[HarvestReport]) -> dict:
    total = ImportReport()
    for r in reports:
        total.added += r.counts.added
        total.updated += r.counts.updated
        total.unchanged += r.counts.unchanged
        total.rejected += r.counts.rejected
    d = total.as_dict()
    d.pop("errors")
    d["complete"] = all(r.complete for r in reports)
    d["missing"] = [m for r in reports for m in r.missing]
    d["harvests"] = [r.as_dict() for r in reports]
    return d


def _print(reports: list[HarvestReport], as_json: bool, index: dict | None = None) -> None:
    if as_json:
        d = _totals(reports)
        d["deleted"] = sum(r.deleted for r in reports)
        d["withdrawn"] = sum(r.withdrawn for r in reports)
        d["warnings"] = [w for r in reports for w in r.warnings]
        if index is not None:
            d["index"] = index
        echo_json(d)
        return
    for r in reports:
        click.echo(r.summary())
        for e in r.counts.errors:
            click.echo(f"  {e.where}: {e.why}", err=True)
        if r.missing:
            click.echo(f"  not found on arXiv: {' '.join(r.missing)}", err=True)
        for w in r.warnings:
            click.echo(f"  warning: {w}", err=True)


def _warn_contact(c: Context) -> None:
    from .http import contact_warning

    if warning := contact_warning(c.settings):
        click.echo(f"warning: {warning}", err=True)


def _index_after(c: Context, no_index: bool) -> dict | None:
    """Bring the search index up to date after a harvest (harvest_embed, unless --no-index),
    or say in plain words what semantic search misses. Returns what was done, for --json."""
    from ..errors import SearchError
    from .indexing import behind_note, papers_behind, update_search_index

    behind = papers_behind(c.store, c.settings)
    if not behind:
        return None
    if no_index or not c.settings.harvest_embed:
        why = "--no-index" if no_index else "harvest_embed is off"
        click.echo(f"note: {behind_note(behind)} ({why})", err=True)
        return {"updated": False, "papers_behind": behind}
    try:
        out = update_search_index(c.store, c.settings, progress=c.progress)
    except (SearchError, ImportError) as exc:
        click.echo(f"note: search index not updated ({exc}); {behind_note(behind)}", err=True)
        return {"updated": False, "papers_behind": behind, "error": str(exc)}
    # A database that indexes words as papers are stored (PostgreSQL) has no keyword step.
    keyword = (
        "keyword kept by the database" if out.get("keyword") == "database"
        else f"{out['keyword_indexed']} papers indexed (keyword)"
    )
    click.echo(f"search index: {keyword}, {out['embedded']} embedded", err=True)
    for n in out["notes"]:
        click.echo(f"note: {n}", err=True)
    return {"updated": True, **out}


_NO_INDEX = click.option(
    "--no-index",
    is_flag=True,
    help="Do not update the search index afterwards (then `paperfeed index` catches up).",
)


def _log_to_stdout(level: int = logging.INFO) -> None:
    """`paperfeed run` logs one line per event to stdout (journald / a cron log keep it)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    root = logging.getLogger("paperfeed")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def register(main: click.Group) -> None:
    @main.group()
    def harvest() -> None:
        """Fetch new papers from arXiv (OAI-PMH, API) and Hugging Face Daily Papers.

        Requests are spaced by harvest_interval (3 s) per host, retried politely, and every
        page is stored with a checkpoint, so an interrupted harvest resumes when the same
        command is run again. Afterwards the search index is brought up to date (setting
        harvest_embed; --no-index skips it).

        Example: paperfeed harvest arxiv --set cs
        """

    @harvest.command("arxiv")
    @click.option(
        "--set",
        "sets",
        multiple=True,
        help="OAI-PMH set, e.g. cs, math, physics:hep-th (repeatable; default: harvest_sets).",
    )
    @click.option(
        "--from",
        "date_from",
        type=_DATE,
        metavar="DATE",
        help="First day (YYYY-MM-DD). Default: where the last complete harvest ended.",
    )
    @click.option("--until", "date_until", type=_DATE, metavar="DATE", help="Last day (default: today, UTC).")
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        help="Metadata format (default: the harvest_format setting, arXiv).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
    @_NO_INDEX
    @pass_ctx
    def harvest_arxiv_cmd(
        c: Context,
        sets: tuple[str, ...],
        date_from: datetime | None,
        date_until: datetime | None,
        fmt: str | None,
        as_json: bool,
        no_index: bool,
    ) -> None:
        """Harvest arXiv listings with OAI-PMH ListRecords, following resumption tokens.

        Without --from the harvest is incremental: it starts on the day the last complete one
        ended. With --from/--until it fetches that window; an interrupted run of either kind
        resumes from its checkpoint when run again.

        Example: paperfeed harvest arxiv --set cs --from 2024-01-25 --until 2024-01-26
        """
        from .http import PoliteClient
        from .oai import harvest_arxiv

        _warn_contact(c)
        reports: list[HarvestReport] = []
        with PoliteClient(c.settings) as client:
            for set_spec in sets or c.settings.harvest_sets.split(","):
                try:
                    reports.append(
                        harvest_arxiv(
                            c.store,
                            c.settings,
                            set_spec,
                            _day(date_from),
                            _day(date_until),
                            fmt or c.settings.harvest_format,
                            client=client,
                            progress=c.progress,
                        )
                    )
                except HarvestError as exc:
                    if not as_json:  # say what the sets before this one stored
                        _print(reports, as_json=False)
                    partial = getattr(exc, "report", None)
                    if partial is not None and partial.changed:
                        _index_after(c, no_index)  # what it stored is searchable too
                    raise
        _print(reports, as_json, _index_after(c, no_index))

    @harvest.command("arxiv-ids")
    @click.argument("ids", nargs=-1, required=True)
    @click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
    @_NO_INDEX
    @pass_ctx
    def harvest_ids_cmd(c: Context, ids: tuple[str, ...], as_json: bool, no_index: bool) -> None:
        """Fetch papers by arXiv id from the arXiv API (the latest version of each).

        Example: paperfeed harvest arxiv-ids 2401.14034 hep-th/9901001v2
        """
        from ..errors import HarvestStopped
        from .arxiv_api import fetch_ids

        _warn_contact(c)
        try:
            papers = fetch_ids(ids, c.settings)
        except HarvestError as exc:
            if not isinstance(exc, HarvestStopped):
                c.store.record_harvest_outcome("arxiv-api", str(exc))
            raise
        c.store.record_harvest_outcome("arxiv-api")
        report = HarvestReport(source="arxiv-api", complete=True)
        report.add(c.store.upsert_papers(papers), [])
        found = {p.id for p in papers}
        from ..ids import normalize_id

        report.missing = [i for i in dict.fromkeys(normalize_id(x) for x in ids) if i not in found]
        _print([report], as_json, _index_after(c, no_index))
        if not papers:
            sys.exit(1)

    @harvest.command("hf-daily")
    @click.option("--date", "day", type=_DATE, metavar="DATE", help="Day listed (YYYY-MM-DD; default today, UTC).")
    @click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
    @_NO_INDEX
    @pass_ctx
    def harvest_hf_cmd(c: Context, day: datetime | None, as_json: bool, no_index: bool) -> None:
        """Fetch one day of Hugging Face Daily Papers (papers, upvotes, comments).

        Example: paperfeed harvest hf-daily --date 2026-06-12
        """
        from .hf import harvest_hf_days, today_utc

        _warn_contact(c)
        reports = harvest_hf_days(c.store, c.settings, [day.date() if day else today_utc()])
        _print(reports, as_json, _index_after(c, no_index))

    @harvest.command("status")
    @click.option("--json", "as_json", is_flag=True, help="Print the checkpoints as JSON.")
    @pass_ctx
    def harvest_status_cmd(c: Context, as_json: bool) -> None:
        """List each source's last success and last failure (with the error), then the
        harvest checkpoints: window, pages, records, and whether each is complete.

        Example: paperfeed harvest status
        """
        states = c.store.list_harvests()
        sources = c.store.harvest_summary()
        if as_json:
            echo_json(
                {
                    "sources": [
                        {
                            "source": h.source,
                            "last_success_at": h.last_success_at,
                            "last_failure_at": h.last_failure_at,
                            "last_error": h.last_error,
                            "failing": h.failing,
                        }
                        for h in sources
                    ],
                    "checkpoints": [
                        {
                            "name": s.name,
                            "window_from": s.window_from,
                            "window_until": s.window_until,
                            "pages": s.pages,
                            "records": s.records,
                            "complete": s.complete,
                            "resumable": not s.complete and s.token is not None,
                            "started_at": s.started_at,
                            "updated_at": s.updated_at,
                        }
                        for s in states
                    ],
                }
            )
            return
        if not states and not sources:
            click.echo("no harvests yet")
        for h in sources:
            line = f"{h.source}: last success {h.last_success_at or 'never'}"
            if h.last_failure_at:
                line += f"; last failure {h.last_failure_at}: {h.last_error}"
            click.echo(line + ("  (FAILING)" if h.failing else ""))
        for s in states:
            state = "complete" if s.complete else "incomplete (resumes on the next run)"
            click.echo(
                f"{s.name}  {s.window_from or ''}..{s.window_until or ''}  "
                f"{s.pages} page{'' if s.pages == 1 else 's'}, {s.records} records, {state}, "
                f"updated {s.updated_at}"
            )

    @main.command("run")
    @click.option("--once", is_flag=True, help="Run the jobs that are due now, then exit (cron).")
    @pass_ctx
    def run_cmd(c: Context, once: bool) -> None:
        """Harvest on a schedule until stopped: arXiv daily after the announcement (Sunday to
        Thursday evenings, US Eastern), Hugging Face hourly (see `paperfeed settings`:
        arxiv_harvest_at, hf_harvest_every ...); papers not yet in the search index are
        embedded, whoever stored them. Logs to stdout; SIGTERM or Ctrl-C stops it cleanly.
        With --once the exit status is 1 when a job failed (cron mails it). One harvester
        runs per database: a second `run` says another holds the lock and exits 0.

        Example: paperfeed --db papers.db run   (with PAPERFEED_HARVEST_SETS=cs,stat set)
        """
        from .scheduler import Scheduler

        _log_to_stdout()
        log = logging.getLogger("paperfeed.run")
        stop = threading.Event()
        received: list[str] = []

        def on_signal(signum, frame) -> None:
            if stop.is_set():
                raise KeyboardInterrupt  # a second signal: stop now, mid-request
            received.append(signal.Signals(signum).name)
            stop.set()

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            sched = Scheduler(c.store, c.settings, stop=stop)
            if not sched.run(once=once):
                return  # another harvester runs: not a failure (exit 0)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        why = f"on {received[0]}" if received else "after one pass" if once else ""
        log.info("paperfeed run: stopped cleanly %s", why)
        if once and sched.failed:
            # cron only notices an exit status: a failed job must not look like success.
            log.error("paperfeed run --once: failed: %s", ", ".join(sched.failed))
            sys.exit(1)
