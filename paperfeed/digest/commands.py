"""CLI commands for digests; ``register`` adds them to the ``paperfeed`` group:
``subscribe``, ``digest preview|send|status|requeue`` and ``outbox``."""

from __future__ import annotations

import logging
import mailbox
import signal
import sys
import threading
from datetime import datetime, timezone
from email.header import decode_header, make_header
from pathlib import Path

import click

from ..clictx import Context, echo_json, pass_ctx
from ..errors import InputError, NotFoundError

__all__ = ["register"]


def _log_to_stderr() -> None:
    log = logging.getLogger("paperfeed.digest")
    if not log.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        log.addHandler(h)
        log.setLevel(logging.INFO)


def _header(v) -> str:
    try:
        return str(make_header(decode_header(str(v or ""))))
    except Exception:  # an unreadable header in someone's Maildir: show it raw
        return str(v or "")


def _key_time(key: str) -> tuple:
    head, _, rest = key.partition(".")
    micro = rest.partition("M")[2].partition("P")[0]
    return (int(head) if head.isdigit() else 0, int(micro) if micro.isdigit() else 0, key)


def register(main: click.Group) -> None:
    @main.command()
    @click.argument("email")
    @pass_ctx
    def subscribe(c: Context, email: str) -> None:
        """Subscribe an address to the digest: it gets a confirmation mail, and digests
        start once the link's page is confirmed (the same flow as the web box).

        With no smtp_host set the mail lands in the local Maildir (`paperfeed outbox`).

        Example: paperfeed subscribe reader@example.org
        """
        from .subscribe import request_subscription

        address = request_subscription(c.store, c.settings, email, client=None, source="cli")
        click.echo(f"{address}: a confirmation link was mailed (if the address was already "
                   "subscribed, a note saying so).")  # fmt: skip

    @main.group()
    def digest() -> None:
        """Email digests: preview, send, status.

        Example: paperfeed digest send --dry-run
        """

    @digest.command()
    @click.argument("email")
    @click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True),
                  help="Also write the HTML part to this file.")  # fmt: skip
    @click.option("--json", "as_json", is_flag=True, help="Print the papers as JSON.")
    @pass_ctx
    def preview(c: Context, email: str, html_file: str | None, as_json: bool) -> None:
        """Show the next digest of a reader (nothing is stored or sent): its plain-text part,
        and with --html the HTML part in a file to open in a browser.

        Example: paperfeed digest preview reader@example.org --html next.html
        """
        from ..models import Subscription
        from .compose import compose
        from .select import Pool

        user = c.store.find_user(email)
        if user is None:
            raise NotFoundError(f"no reader with address {email!r}")
        sub = c.store.get_subscription(user.id) or Subscription(user.id, user.email)
        now = datetime.now(timezone.utc)
        d = compose(c.store, c.settings, sub, Pool.build(c.store, c.settings, sub.seen_pk, now), now)
        if d is None:
            if as_json:
                echo_json({"email": user.email, "papers": []})
            else:
                click.echo("The next digest is empty: nothing new or trending that this reader "
                           "has not been sent.")  # fmt: skip
            return
        if html_file:
            Path(html_file).write_text(d.html, encoding="utf-8")
        if as_json:
            echo_json({"email": user.email, "subject": d.subject, "papers": [
                {"id": i.paper_id, "title": i.title, "score": round(i.score, 4),
                 "reasons": i.reasons, "section": i.section} for i in d.items]})  # fmt: skip
            return
        click.echo(f"Subject: {d.subject}\n")
        click.echo(d.text)

    @digest.command()
    @click.option("--dry-run", is_flag=True, help="Say what would be queued; store and send nothing.")
    @click.option("--force", is_flag=True, help="Every confirmed subscriber is due now.")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @pass_ctx
    def send(c: Context, dry_run: bool, force: bool, as_json: bool) -> None:
        """Compose the digests that are due, store them in the outbox, then send everything
        queued (also what an earlier run left). Safe to run in several processes at once and
        to rerun after a crash: nobody gets a digest twice.

        Example: paperfeed digest send --force
        """
        from .send import queue_due, send_queued

        _log_to_stderr()
        q = queue_due(c.store, c.settings, force=force, dry_run=dry_run)
        if dry_run:
            if as_json:
                echo_json({"queue": q.as_dict()})
                return
            click.echo(f"{q.due} due, {q.queued} would get a digest, {q.empty} empty, "
                       f"{q.busy} still have one queued")  # fmt: skip
            for p in q.previews:
                click.echo(f"  {p['email']}: {len(p['papers'])} papers ({' '.join(p['papers'][:5])}"
                           f"{' ...' if len(p['papers']) > 5 else ''})")  # fmt: skip
            return
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            r = send_queued(c.store, c.settings, stop=stop)
        finally:
            signal.signal(signal.SIGTERM, previous)
        if as_json:
            echo_json({"queue": q.as_dict(), "send": r.as_dict()})
        else:
            click.echo(f"queued {q.queued} (digest {q.digest or '-'}; {q.empty} empty); "
                       f"sent {r.sent}, failed {r.failed}, to retry {r.retry}"
                       + (", gave up for now: SMTP keeps failing" if r.gave_up else ""))  # fmt: skip
        if r.gave_up:
            sys.exit(1)

    @digest.command()
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @pass_ctx
    def status(c: Context, as_json: bool) -> None:
        """Per digest: how many mails are queued, sending, sent, failed, cancelled
        (unsubscribed) and uncertain (the sender died while the SMTP server answered: it may
        or may not have arrived; it is not resent unless you requeue it).

        Example: paperfeed digest status --json
        """
        from .send import digest_status

        st = digest_status(c.store, c.settings)
        if as_json:
            echo_json(st)
            return
        if not st["digests"]:
            click.echo("no digests yet")
        for d in st["digests"]:
            click.echo(f"digest {d['digest']} ({d['created_at']}{', forced' if d['forced'] else ''}): "
                       f"{d['queued']} queued, {d['sending']} sending, {d['sent']} sent, "
                       f"{d['failed']} failed, {d['cancelled']} cancelled, "
                       f"{d['uncertain']} uncertain")  # fmt: skip
        for u in st["uncertain"]:
            click.echo(f"  uncertain: mail {u['id']} to {u['email']} (claimed by {u['claimed_by']})")

    @digest.command()
    @click.argument("mail_ids", nargs=-1, type=int, required=True)
    @pass_ctx
    def requeue(c: Context, mail_ids: tuple[int, ...]) -> None:
        """Put uncertain mails (see `digest status`) back in the queue, once you know they
        did not arrive (the SMTP server's log says); the next send sends the same message.

        Example: paperfeed digest requeue 17 18
        """
        n = c.store.requeue_outbox(list(mail_ids))
        click.echo(f"{n} mail{'' if n == 1 else 's'} queued again")

    @main.command()
    @click.option("--limit", type=click.IntRange(1), default=20, show_default=True,
                  help="Newest messages to list.")  # fmt: skip
    @click.option("--show", "show_n", type=click.IntRange(1), help="Print message N of the list.")
    @click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
    @pass_ctx
    def outbox(c: Context, limit: int, show_n: int | None, as_json: bool) -> None:
        """List the local Maildir outbox: the mail paperfeed wrote instead of sending because
        no smtp_host is set (confirmations, digests, sign-in links), newest first.

        Example: paperfeed outbox --show 1
        """
        from ..mail import maildir_path

        path = maildir_path(c.settings)
        if c.settings.smtp_host:
            click.echo(f"note: smtp_host is set ({c.settings.smtp_host}): new mail goes there, "
                       "not to the Maildir", err=True)  # fmt: skip
        if not path.is_dir():
            if as_json:
                echo_json({"maildir": str(path), "messages": []})
            else:
                click.echo(f"{path}: no mail yet")
            return
        box = mailbox.Maildir(str(path), create=False)
        # Maildir keys start with the delivery time (then microseconds and a counter).
        items = [(_key_time(k), k) for k in box.keys()]
        items.sort(reverse=True)
        items = items[:limit]
        if show_n is not None:
            if show_n > len(items):
                raise InputError(f"--show {show_n}: the list has {len(items)} messages")
            click.echo(box.get_bytes(items[show_n - 1][1]).decode("utf-8", "replace"))
            return
        rows = []
        for _, key in items:
            m = box.get_message(key)
            rows.append({
                "date": _header(m["Date"]), "to": _header(m["To"]),
                "subject": _header(m["Subject"]), "key": key,
            })  # fmt: skip
        if as_json:
            echo_json({"maildir": str(path), "messages": rows})
            return
        click.echo(f"{path}: {len(box)} message{'' if len(box) == 1 else 's'}")
        for i, r in enumerate(rows, 1):
            click.echo(f"{i:>3}. {r['date']}  {r['to']}  {r['subject']}")
