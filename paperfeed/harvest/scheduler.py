"""``paperfeed run``: one long-running process that harvests on a schedule.

Jobs: each arXiv set in ``harvest_sets`` (daily at ``arxiv_harvest_at`` in
``arxiv_harvest_tz``, or every ``arxiv_harvest_every`` seconds) and Hugging Face Daily Papers
(every ``hf_harvest_every`` seconds). arXiv announces new papers at 20:00 US Eastern, Sunday to
Thursday only; a daily slot with no announcement since the one before (with the default
21:00, Friday's and Saturday's) is skipped. After each cycle, when the store holds papers the
semantic index lacks (``indexing.papers_behind``: read from the store, so a restart catches
up on what a stopped run left), it updates the search index (``harvest_embed``), then sends
due digests (``paperfeed.digest.send_due_digests``), each only when that feature is installed;
a failure there is logged and retried next cycle.

Missed runs are caught up at start-up: a set whose last complete harvest is older than the
latest scheduled time, or whose harvest was interrupted, runs at once. Because every arXiv
window starts where the last complete one ended, a machine that was off for a week harvests
the whole week on its next start.

Stopping: SIGTERM or SIGINT sets an event; waits end at once, a request in flight finishes
(within ``harvest_timeout``), its page is stored with its checkpoint, and the process exits 0.
A second signal aborts immediately (the database stays consistent either way). The cycle's
log line counts the papers the interrupted harvest really stored.

One harvester per database: the scheduler runs only while it holds the store's harvest lock
(a lock file beside a SQLite database, an advisory lock on PostgreSQL); a second `paperfeed
run` finds it taken, says so and exits 0, so a cron line or a second machine's unit file
started by mistake does no harm.

Failures: a job that fails is logged, recorded in the store (`harvest status`), retried later,
and listed in ``failed`` so that ``paperfeed run --once`` exits non-zero for cron.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from ..errors import HarvestError, HarvestRefused, HarvestStopped
from ..store import Store
from .hf import CHECKPOINT as HF_SOURCE, harvest_hf_days
from .http import PoliteClient, contact_warning
from .indexing import papers_behind, update_search_index
from .oai import checkpoint_name, harvest_arxiv, source_name
from .report import HarvestReport

__all__ = [
    "Scheduler",
    "next_daily",
    "last_daily",
    "announces_between",
    "next_arxiv_slot",
    "last_arxiv_slot",
]

log = logging.getLogger("paperfeed.run")

LOCKED_OUT = "another harvester holds the lock on this database; this one exits"

# How far back the Hugging Face job catches up missed days after downtime.
HF_CATCH_UP_DAYS = 7


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _parse_ts(s: str | None) -> datetime | None:
    if not s:
        return None
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _at(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime.combine(day, dtime(h, m), tzinfo=tz).astimezone(timezone.utc)


def next_daily(now: datetime, hhmm: str, tz: ZoneInfo) -> datetime:
    """The first time of day ``hhmm`` (local to ``tz``) strictly after ``now``."""
    local = now.astimezone(tz).date()
    for d in (local, local + timedelta(days=1), local + timedelta(days=2)):
        t = _at(d, hhmm, tz)
        if t > now:
            return t
    raise AssertionError("unreachable")


def last_daily(now: datetime, hhmm: str, tz: ZoneInfo) -> datetime:
    """The latest time of day ``hhmm`` (local to ``tz``) at or before ``now``."""
    local = now.astimezone(tz).date()
    for d in (local, local - timedelta(days=1), local - timedelta(days=2)):
        t = _at(d, hhmm, tz)
        if t <= now:
            return t
    raise AssertionError("unreachable")


# arXiv's announcements: 20:00 US Eastern, Sunday to Thursday (Monday is weekday 0). None on
# Friday and Saturday evenings, so a harvest after them finds nothing new.
ARXIV_TZ = ZoneInfo("America/New_York")
ARXIV_ANNOUNCES_AT = dtime(20, 0)
ARXIV_ANNOUNCE_WEEKDAYS = frozenset({6, 0, 1, 2, 3})


def announces_between(a: datetime, b: datetime) -> bool:
    """Whether arXiv announced new papers in (a, b]."""
    day = a.astimezone(ARXIV_TZ).date()
    last = b.astimezone(ARXIV_TZ).date()
    while day <= last:
        if day.weekday() in ARXIV_ANNOUNCE_WEEKDAYS:
            t = datetime.combine(day, ARXIV_ANNOUNCES_AT, tzinfo=ARXIV_TZ)
            if a < t <= b:
                return True
        day += timedelta(days=1)
    return False


def _worth_it(slot: datetime, hhmm: str, tz: ZoneInfo) -> bool:
    return announces_between(last_daily(slot - timedelta(seconds=1), hhmm, tz), slot)


def next_arxiv_slot(now: datetime, hhmm: str, tz: ZoneInfo) -> datetime:
    """The first daily slot after ``now`` with an arXiv announcement since the slot before."""
    t = next_daily(now, hhmm, tz)
    for _ in range(7):
        if _worth_it(t, hhmm, tz):
            return t
        t = next_daily(t, hhmm, tz)
    return t  # unreachable with five announcing days a week


def last_arxiv_slot(now: datetime, hhmm: str, tz: ZoneInfo) -> datetime:
    """The latest daily slot at or before ``now`` that had an announcement to harvest."""
    t = last_daily(now, hhmm, tz)
    for _ in range(7):
        if _worth_it(t, hhmm, tz):
            return t
        t = last_daily(t - timedelta(seconds=1), hhmm, tz)
    return t


@dataclass
class _Job:
    name: str
    source: str  # what Store.record_harvest_outcome calls it
    run: Callable[[], list[HarvestReport]]
    next_after: Callable[[datetime], datetime]  # next due time after a run that ended at t
    due: datetime


class Scheduler:
    def __init__(
        self,
        store: Store,
        settings,
        stop: threading.Event | None = None,
        client: PoliteClient | None = None,
    ):
        self.store = store
        self.settings = settings
        self.stop = stop if stop is not None else threading.Event()
        self.client = client or PoliteClient(settings, stop=self.stop)
        self.cycles = 0
        self.failed: list[str] = []  # jobs (and the index update) that failed in the last cycle
        # max_rev at an index update that could not embed (no model): not retried each cycle
        # until papers change. Memory only: a restart tries again.
        self._index_gave_up_at: int | None = None
        self.jobs = self._make_jobs(_utcnow())

    # --- schedule --------------------------------------------------------------------------
    def _arxiv_next(self, t: datetime) -> datetime:
        s = self.settings
        if s.arxiv_harvest_every > 0:
            return t + timedelta(seconds=s.arxiv_harvest_every)
        return next_arxiv_slot(t, s.arxiv_harvest_at, ZoneInfo(s.arxiv_harvest_tz))

    def _arxiv_first_due(self, set_spec: str, now: datetime) -> datetime:
        s = self.settings
        state = self.store.get_harvest(checkpoint_name(set_spec, s.harvest_format))
        if state is None or not state.complete:
            return now  # never harvested, or interrupted: go on now
        last = _parse_ts(state.updated_at) or now
        if s.arxiv_harvest_every > 0:
            return max(now, last + timedelta(seconds=s.arxiv_harvest_every))
        if last < last_arxiv_slot(now, s.arxiv_harvest_at, ZoneInfo(s.arxiv_harvest_tz)):
            return now  # a scheduled run was missed while we were not running
        return self._arxiv_next(now)

    def _make_jobs(self, now: datetime) -> list[_Job]:
        s = self.settings
        jobs = []
        for set_spec in s.harvest_sets.split(","):
            jobs.append(
                _Job(
                    name=f"arxiv {set_spec}",
                    source=source_name(set_spec),
                    run=lambda set_spec=set_spec: [self._run_arxiv(set_spec)],
                    next_after=self._arxiv_next,
                    due=self._arxiv_first_due(set_spec, now),
                )
            )
        hf_every = timedelta(seconds=s.hf_harvest_every)
        hf_state = self.store.get_harvest("hf-daily")
        hf_last = _parse_ts(hf_state.updated_at) if hf_state else None
        jobs.append(
            _Job(
                name="hf-daily",
                source=HF_SOURCE,
                run=self._run_hf,
                next_after=lambda t: t + hf_every,
                due=max(now, hf_last + hf_every) if hf_last else now,
            )
        )
        return jobs

    # --- jobs ------------------------------------------------------------------------------
    def _run_arxiv(self, set_spec: str) -> HarvestReport:
        return harvest_arxiv(
            self.store, self.settings, set_spec, fmt=self.settings.harvest_format,
            client=self.client,
        )  # fmt: skip

    def _run_hf(self) -> list[HarvestReport]:
        today = _utcnow().date()
        state = self.store.get_harvest("hf-daily")
        last = date.fromisoformat(state.window_until) if state and state.window_until else today
        # Each missed day once (bounded), then today again for its changing upvotes.
        first = max(min(last, today), today - timedelta(days=HF_CATCH_UP_DAYS))
        days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
        return harvest_hf_days(self.store, self.settings, days, client=self.client)

    # --- hooks into later stages -------------------------------------------------------------
    def _index_behind(self) -> int:
        if self._index_gave_up_at is not None and self._index_gave_up_at == self.store.max_rev():
            return 0
        return papers_behind(self.store, self.settings) or 0

    def _embed(self, behind: int, changed: int) -> None:
        if behind > changed:  # more than this cycle brought: left over by an earlier run
            log.info(
                "search index: %d papers are not in the semantic index yet; updating", behind
            )
        try:
            res = update_search_index(self.store, self.settings, progress=False)
        except ImportError as exc:
            log.info("search index: not available (%s); skipped", exc)
            self._index_gave_up_at = self.store.max_rev()
            return
        except Exception:  # the feed keeps harvesting even if embedding breaks
            self.failed.append("search index")
            log.exception("search index: update failed; will try again after the next cycle")
            return
        log.info("search index: updated %s", res)
        if res.get("notes"):  # e.g. no embedding model: keyword only until that is fixed
            self._index_gave_up_at = self.store.max_rev()

    def _send_digests(self) -> None:
        try:
            digest = importlib.import_module("paperfeed.digest")
        except ModuleNotFoundError:
            return
        send = getattr(digest, "send_due_digests", None)
        if send is None:
            return
        try:
            sent = send(self.store, self.settings, stop=self.stop)
            log.info("digests: %s sent", sent)
        except Exception:
            log.exception("digests: sending failed; will try again after the next cycle")

    # --- the loop ----------------------------------------------------------------------------
    def _retry_at(self, job: _Job, exc: Exception, now: datetime) -> datetime:
        if isinstance(exc, HarvestRefused):
            return job.next_after(now)  # a 403 is not fixed by asking again soon
        retry = now + timedelta(seconds=self.settings.harvest_backoff_cap)
        return min(retry, job.next_after(now))

    def run_cycle(self) -> bool:
        """Run each job that is due (or falls due meanwhile) once. False when none was due."""
        if not any(j.due <= _utcnow() for j in self.jobs):
            return False
        self.cycles += 1
        self.failed = []
        changed = 0
        done: set[str] = set()
        while not self.stop.is_set():
            job = next((j for j in self.jobs if j.due <= _utcnow() and j.name not in done), None)
            if job is None:
                break
            done.add(job.name)
            try:
                for report in job.run():
                    changed += self._log_report(report)
                job.due = job.next_after(_utcnow())
            except HarvestStopped as exc:
                changed += self._log_partial(exc)
                log.info("%s: %s", job.name, exc)
                break
            except HarvestError as exc:
                changed += self._log_partial(exc)
                self.failed.append(job.name)
                job.due = self._retry_at(job, exc, _utcnow())
                log.error("%s: %s; next try %s", job.name, exc, _fmt(job.due))
            except Exception as exc:  # a bug must not end the feed; say so loudly and go on
                self.failed.append(job.name)
                self.store.record_harvest_outcome(job.source, f"{type(exc).__name__}: {exc}")
                job.due = self._retry_at(job, exc, _utcnow())
                log.exception("%s: failed; next try %s", job.name, _fmt(job.due))
        if not self.stop.is_set():
            self.catch_up_index(changed)
            self._send_digests()
        nxt = min(self.jobs, key=lambda j: j.due)
        log.info(
            "cycle %d done: %d papers added or updated; next: %s at %s",
            self.cycles, changed, nxt.name, _fmt(nxt.due),
        )  # fmt: skip
        return True

    def catch_up_index(self, changed: int = 0) -> None:
        """Update the search index when the store holds papers it lacks (harvest_embed)."""
        if not self.settings.harvest_embed:
            return
        behind = self._index_behind()
        if behind or changed:
            self._embed(behind, changed)

    @staticmethod
    def _log_report(report: HarvestReport) -> int:
        log.info("%s", report.summary())
        for w in report.warnings:
            log.warning("%s: %s", report.name or report.source, w)
        return report.changed

    def _log_partial(self, exc: HarvestError) -> int:
        """Count what a harvest stored before it failed or was stopped (its pages are kept)."""
        reports = list(getattr(exc, "reports", []))
        if getattr(exc, "report", None) is not None:
            # Its summary is in the error message already; only its warnings are not.
            for w in exc.report.warnings:  # type: ignore[attr-defined]
                log.warning("%s: %s", exc.report.name, w)  # type: ignore[attr-defined]
            return exc.report.changed  # type: ignore[attr-defined]
        return sum(self._log_report(r) for r in reports)

    def run(self, once: bool = False) -> bool:
        """Run until stopped (or one pass with ``once``). False, at once, when another
        harvester holds the database's harvest lock (Store.harvest_lock): two schedulers on
        one database would harvest every window twice and race each other's checkpoints."""
        with self.store.harvest_lock() as mine:
            if not mine:
                log.warning(LOCKED_OUT)
                self.client.close()
                return False
            self._run(once)
            return True

    def _run(self, once: bool) -> None:
        s = self.settings
        arxiv_when = (
            f"every {s.arxiv_harvest_every:g} s"
            if s.arxiv_harvest_every > 0
            else f"daily at {s.arxiv_harvest_at} {s.arxiv_harvest_tz}, "
            "after arXiv's Sunday to Thursday announcements"
        )
        log.info(
            "paperfeed run: started; arXiv sets %s (%s), Hugging Face every %g s",
            s.harvest_sets, arxiv_when, s.hf_harvest_every,
        )  # fmt: skip
        if warning := contact_warning(s):
            log.warning("%s", warning)
        first = True
        while not self.stop.is_set():
            ran = self.run_cycle()
            if not ran and first:
                # Nothing due now, but an earlier run may have stopped before indexing.
                self.catch_up_index()
            first = False
            if once:
                if not ran:
                    log.info("nothing due")
                break
            if not ran:
                wake = min(j.due for j in self.jobs)
                self.stop.wait(max(0.0, (wake - _utcnow()).total_seconds()))
        self.client.close()


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
