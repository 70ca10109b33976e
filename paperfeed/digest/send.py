"""Queue and send digests: the outbox state machine.

    queued --claim--> sending --accepted--> sent
                         |--5xx-----------> failed      (that recipient refused it for good)
                         |--4xx/drop------> queued      (later; failed after max attempts)
                         '--(sender died)-> stays "sending": reported uncertain, not resent
    queued --unsubscribed--> cancelled

Queue first, send second: ``queue_due`` composes every due reader's mail and stores it, in
batches, before ``send_queued`` sends anything. A crash while queueing loses nothing (a
reader whose mail was not stored is still due); a crash while sending leaves the unsent rows
queued and at most the one in flight uncertain. Sending claims one row at a time (see
store.claim_outbox), so any number of sender processes share the queue without doubles.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parseaddr

from ..config import Settings
from ..mail import MailError, Transport
from ..store import Store
from .compose import compose, message_bytes, new_message_id
from .schedule import is_due
from .select import Pool

__all__ = [
    "QueueReport",
    "SendReport",
    "queue_due",
    "send_queued",
    "send_due_digests",
    "digest_status",
    "worker_id",
]

log = logging.getLogger("paperfeed.digest")

QUEUE_BATCH = 250  # mails stored per transaction while queueing


@dataclass
class QueueReport:
    digest: int | None = None
    due: int = 0
    queued: int = 0
    empty: int = 0
    busy: int = 0  # readers skipped: a mail of theirs is still queued or in flight
    elsewhere: bool = False  # another process held the queue lock: it queues, we only send
    previews: list[dict] = field(default_factory=list)  # --dry-run: what would be queued

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "previews" or v}


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    retry: int = 0
    pauses: int = 0
    gave_up: bool = False  # stopped after digest_pauses_per_run pauses; the rest stays queued
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def queue_due(
    store: Store,
    settings: Settings,
    force: bool = False,
    dry_run: bool = False,
    now: datetime | None = None,
) -> QueueReport:
    """Compose and store the mail of every reader whose digest is due (``force``: every
    active reader) in a new digest; readers whose digest would be empty get none."""
    if dry_run:
        return _queue_due(store, settings, force, dry_run, now)
    # Who is due is read before composing and stored after: two processes doing this at
    # once would both queue a mail for the same reader. One queues; the other only sends.
    with store.digest_queue_lock() as mine:
        if not mine:
            log.info("digest: another process is queueing digests; this one only sends")
            return QueueReport(elsewhere=True)
        return _queue_due(store, settings, force, dry_run, now)


def _queue_due(store, settings, force, dry_run, now) -> QueueReport:
    now = now or datetime.now(timezone.utc)
    report = QueueReport()
    max_pk = store.max_paper_pk()
    busy = store.users_with_open_mail(time.time() - settings.digest_uncertain_after)
    due = []
    for sub in store.list_subscriptions("active"):
        if not (force or is_due(sub, now, max_pk)):
            continue
        if sub.user_id in busy:
            report.busy += 1
            continue
        due.append(sub)
    report.due = len(due)
    if not due:
        return report
    pool = Pool.build(store, settings, min(s.seen_pk for s in due), now)
    if not dry_run:
        report.digest = store.create_digest(force, max_pk)
    papers: dict = {}
    rows: list[tuple] = []
    empty: list[int] = []

    def flush() -> None:
        if dry_run:
            return
        if rows:
            report.queued += store.queue_digest_mail(report.digest, max_pk, rows)
        if empty:
            store.mark_digest_checked(empty, max_pk)
        rows.clear()
        empty.clear()

    for sub in due:
        d = compose(store, settings, sub, pool, now, papers)
        if d is None:
            report.empty += 1
            empty.append(sub.user_id)
        elif dry_run:
            report.previews.append(
                {"email": sub.email, "papers": [i.paper_id for i in d.items], "subject": d.subject}
            )
        else:
            mid = new_message_id(settings)
            raw = message_bytes(settings, d, mid, now)
            rows.append((sub.user_id, sub.email, mid, raw, d.pks, d.local_day))
        if len(rows) + len(empty) >= QUEUE_BATCH:
            flush()
    flush()
    if dry_run:
        report.queued = len(report.previews)
    log.info("digest %s: %d due, %d queued, %d empty", report.digest, report.due,
             report.queued, report.empty)  # fmt: skip
    return report


def send_queued(
    store: Store,
    settings: Settings,
    stop: threading.Event | None = None,
    limit: int | None = None,
) -> SendReport:
    """Send queued mails until none is due (or ``limit`` were tried, or ``stop`` is set),
    at most ``digest_rate`` a second, pausing with backoff after repeated transient
    failures and giving up for now after ``digest_pauses_per_run`` pauses."""
    s = settings
    stop = stop or threading.Event()
    report = SendReport()
    me = worker_id()
    sender = parseaddr(s.mail_from)[1] or s.mail_from
    interval = 1.0 / s.digest_rate if s.digest_rate > 0 else 0.0
    next_at = 0.0
    in_a_row = 0
    backoff = s.digest_backoff
    tried = 0
    with Transport(s) as transport:
        while not stop.is_set() and (limit is None or tried < limit):
            row = store.claim_outbox(me)
            if row is None:
                break
            tried += 1
            wait = next_at - time.monotonic()
            if wait > 0 and stop.wait(wait):
                # Stopping before the send: the row never left us, so put it back.
                store.outbox_retry(row.id, "stopped before sending", 0.0, s.digest_max_attempts + 1)
                break
            next_at = time.monotonic() + interval
            try:
                transport.send_bytes(row.message, sender, [row.email])
            except MailError as e:
                if e.permanent:
                    store.outbox_failed(row.id, str(e))
                    report.failed += 1
                    log.warning("digest mail %d to %s refused: %s", row.id, row.email, e)
                    in_a_row = 0
                    continue
                status = store.outbox_retry(
                    row.id, str(e), time.time() + s.digest_retry_after, s.digest_max_attempts
                )
                report.failed += status == "failed"
                report.retry += status == "queued"
                report.errors.append(str(e))
                in_a_row += 1
                log.warning("digest mail %d to %s: %s (%s)", row.id, row.email, e, status)
                if in_a_row >= s.digest_failures_before_pause:
                    if report.pauses >= s.digest_pauses_per_run:
                        report.gave_up = True
                        log.error("digest: SMTP keeps failing; the rest stays queued")
                        break
                    report.pauses += 1
                    log.warning("digest: %d failures in a row; pausing %g s", in_a_row, backoff)
                    if stop.wait(backoff):
                        break
                    backoff = min(backoff * 2, s.digest_backoff_cap)
                    in_a_row = 0
                continue
            store.outbox_sent(row.id)
            report.sent += 1
            in_a_row = 0
            backoff = s.digest_backoff
    return report


def send_due_digests(store: Store, settings: Settings, stop: threading.Event | None = None) -> int:
    """What ``paperfeed run`` calls after each cycle: queue the digests that are due, then
    send everything queued. Returns how many mails went out."""
    queue_due(store, settings)
    return send_queued(store, settings, stop=stop).sent


def _alive(claimed_by: str | None) -> bool | None:
    """Whether the sender that claimed a row still runs (None: it ran on another host)."""
    host, _, pid = (claimed_by or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def digest_status(store: Store, settings: Settings, now: float | None = None) -> dict:
    """Per digest: queued / sending / sent / failed / cancelled / uncertain counts, and the
    uncertain rows. A row is uncertain when it is marked sending but its sender is gone or
    has held it longer than ``digest_uncertain_after``: the SMTP server may or may not have
    taken it, so it is not resent on its own (``paperfeed digest requeue`` does that)."""
    now = time.time() if now is None else now
    uncertain = []
    flying: dict[int, int] = {}
    for r in store.outbox_in_flight():
        alive = _alive(r["claimed_by"])
        old = r["claimed_at"] is None or now - r["claimed_at"] > settings.digest_uncertain_after
        if alive is False or old:
            uncertain.append(r)
        else:
            flying[r["digest"]] = flying.get(r["digest"], 0) + 1
    digests = []
    unc_by: dict[int, int] = {}
    for r in uncertain:
        unc_by[r["digest"]] = unc_by.get(r["digest"], 0) + 1
    for d in store.outbox_counts():
        c = d["counts"]
        row = {
            "digest": d["digest"],
            "created_at": d["created_at"],
            "forced": d["forced"],
            "queued": c.get("queued", 0),
            "sending": flying.get(d["digest"], 0),
            "sent": c.get("sent", 0),
            "failed": c.get("failed", 0),
            "cancelled": c.get("cancelled", 0),
            "uncertain": unc_by.get(d["digest"], 0),
        }
        digests.append(row)
    return {"digests": digests, "uncertain": uncertain}
