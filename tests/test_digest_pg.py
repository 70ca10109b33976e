"""Digest senders on PostgreSQL: outbox rows claimed with FOR UPDATE SKIP LOCKED by several
real `paperfeed digest send` processes on one database, against a real SMTP server on
loopback (aiosmtpd). Every mail goes exactly once; a sender killed with SIGKILL leaves the
row it had in flight uncertain (reported, not resent), and a restart sends the rest. Last,
the queueing lock (both backends): two senders started together queue each reader once.

The mails are queued in-process with store.queue_digest_mail (what queue_due stores), so
these tests are about the outbox and its senders, not about composing.
"""

from __future__ import annotations

import json
import mailbox
import os
import signal
import subprocess
import sys
import threading
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from paperfeed.config import load_settings
from paperfeed.digest import digest_status
from paperfeed.models import Paper
from paperfeed.store import open_store
from tests.db_support import rows
from tests.mail_support import running_smtp, smtp_env, wait_for

FAST = {
    "PAPERFEED_DIGEST_RATE": "0",
    "PAPERFEED_DIGEST_BACKOFF": "0.01",
    "PAPERFEED_DIGEST_RETRY_AFTER": "0.001",
    "PAPERFEED_BASE_URL": "https://papers.example.org",
    "PAPERFEED_SECRET": "test-secret-0123456789abcdef",
    "PAPERFEED_PROGRESS": "false",
}


@pytest.fixture
def smtp_server():
    with running_smtp() as h:
        yield h


def _env(url: str, tmp_path, port: int | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env.update(FAST, PAPERFEED_DB=url, PAPERFEED_CACHE_DIR=str(tmp_path / "cache"))
    if port:
        env.update(smtp_env(port))
    env.update(extra)
    return env


def _queue(url: str, n: int) -> list[str]:
    """n confirmed readers, one queued digest mail each (two papers in it), as queue_due
    would store them. Returns the addresses in outbox order."""
    s = open_store(url)
    try:
        s.upsert_papers([Paper(id=f"2606.5{i:04d}", title=f"Paper {i}", authors=["A. Author"],
                               published="2026-06-14T00:00:00Z", version=1) for i in range(4)])
        pks = [s.get_paper(f"2606.5{i:04d}").pk for i in range(4)]
        digest = s.create_digest(True, max(pks))
        out, queued = [], []
        for i in range(n):
            u, _ = s.subscribe(f"reader{i:03d}@example.org")
            s.confirm_subscription(u.id)
            msg = EmailMessage()
            mid = make_msgid(domain="papers.example.org")
            msg["From"], msg["To"], msg["Subject"] = "digest@papers.example.org", u.email, f"Digest {i}"
            msg["Message-ID"] = mid
            msg.set_content(f"Your papers, reader {i}.")
            queued.append((u.id, u.email, mid, msg.as_bytes(), pks[i % 2 : i % 2 + 2], "2026-06-14"))
            out.append(u.email)
        assert s.queue_digest_mail(digest, max(pks), queued) == n
        return out
    finally:
        s.close()


def _sender(url: str, tmp_path, port: int, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "paperfeed", "digest", "send", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(url, tmp_path, port, **extra), cwd=tmp_path,
    )  # fmt: skip


def _status(url: str, tmp_path) -> dict:
    s = open_store(url)
    try:
        return digest_status(s, load_settings(env=_env(url, tmp_path)))
    finally:
        s.close()


def test_concurrent_claims_in_threads_never_share_a_row(pg_url):
    """Eight threads of one process claim at once (each claim is its own transaction on its
    own pooled connection): every row is claimed exactly once, no claim waits for another."""
    n = 60
    _queue(pg_url, n)
    s = open_store(pg_url, pool_size=10)
    got: list[int] = []
    lock = threading.Lock()

    def claim(worker: str) -> None:
        while (row := s.claim_outbox(worker)) is not None:
            with lock:
                got.append(row.id)
            s.outbox_sent(row.id)

    try:
        threads = [threading.Thread(target=claim, args=(f"t{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(got) == sorted(set(got)) and len(got) == n
        assert rows(s, "SELECT status, count(*) FROM outbox GROUP BY status") == [("sent", n)]
        # Every claimed mail's papers were recorded as shown (two per reader).
        assert rows(s, "SELECT count(*) FROM shown_papers WHERE via = 'digest'") == [(2 * n,)]
    finally:
        s.close()


def test_two_sender_processes_on_one_database_send_every_row_once(pg_url, smtp_server, tmp_path):
    n = 40
    readers = _queue(pg_url, n)
    # 20 mails a second each: one sender alone would take 2 s, so the two overlap for sure.
    procs = [_sender(pg_url, tmp_path, smtp_server.port, PAPERFEED_DIGEST_RATE="20")
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    sent = [json.loads(o)["send"]["sent"] for o, _ in outs]
    assert sum(sent) == n
    assert sorted(smtp_server.to()) == sorted(readers)  # each reader exactly one mail
    assert len({m["Message-ID"] for m in smtp_server.got}) == n
    s = open_store(pg_url)
    try:
        assert rows(s, "SELECT status, count(*) FROM outbox GROUP BY status") == [("sent", n)]
        workers = rows(s, "SELECT claimed_by, count(*) FROM outbox GROUP BY claimed_by")
    finally:
        s.close()
    assert len(workers) == 2 and all(c > 0 for _, c in workers)  # both senders took part
    assert sorted(c for _, c in workers) == sorted(sent)


def test_unsubscribed_reader_is_cancelled_at_claim_time(pg_url, smtp_server, tmp_path):
    readers = _queue(pg_url, 3)
    s = open_store(pg_url)
    try:
        # Unsubscribed behind the outbox's back (the UPDATE that unsubscribe's own
        # cancellation would have done is skipped): the claim's re-check must catch it.
        with s._write() as conn:
            conn.execute("UPDATE digest_subscriptions SET status = 'unsubscribed' WHERE user_id = ?",
                         (s.find_user(readers[1]).id,))
    finally:
        s.close()
    p = _sender(pg_url, tmp_path, smtp_server.port)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert json.loads(out)["send"]["sent"] == 2 and readers[1] not in smtp_server.to()
    (d,) = _status(pg_url, tmp_path)["digests"]
    assert (d["sent"], d["cancelled"]) == (2, 1)


def test_sender_killed_after_k_of_n_on_postgres_reports_the_one_in_flight(pg_url, smtp_server, tmp_path):
    n, k = 8, 3
    readers = _queue(pg_url, n)
    smtp_server.hold_at = k + 1  # takes mail k+1, then holds its answer
    proc = _sender(pg_url, tmp_path, smtp_server.port)
    try:
        wait_for(lambda: len(smtp_server.got) == k + 1, what="k+1 messages at the server")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    smtp_server.release.set()
    st = _status(pg_url, tmp_path)
    (d,) = st["digests"]
    assert (d["sent"], d["uncertain"], d["queued"], d["sending"]) == (k, 1, n - k - 1, 0)
    assert [u["email"] for u in st["uncertain"]] == [readers[k]]
    # Restart: the n-k-1 queued ones go; the uncertain one is not resent on its own.
    proc2 = _sender(pg_url, tmp_path, smtp_server.port)
    out, err = proc2.communicate(timeout=60)
    assert proc2.returncode == 0, err
    assert json.loads(out)["send"]["sent"] == n - k - 1
    assert sorted(smtp_server.to()) == sorted(readers)  # every reader exactly one mail
    assert len({m["Message-ID"] for m in smtp_server.got}) == n
    (d,) = _status(pg_url, tmp_path)["digests"]
    assert (d["sent"], d["uncertain"], d["queued"]) == (n - 1, 1, 0)
    shown = subprocess.run([sys.executable, "-m", "paperfeed", "digest", "status"],
                           env=_env(pg_url, tmp_path), capture_output=True, text=True,
                           cwd=tmp_path, timeout=60)  # fmt: skip
    assert f"{n - 1} sent" in shown.stdout and "1 uncertain" in shown.stdout, shown.stderr
    assert f"uncertain: mail {k + 1} to {readers[k]}" in shown.stdout
    # An administrator who knows it did not arrive requeues it; the next run sends it once.
    s = open_store(pg_url)
    try:
        assert s.requeue_outbox([k + 1, k + 1]) == 1
    finally:
        s.close()
    proc3 = _sender(pg_url, tmp_path, smtp_server.port)
    out, err = proc3.communicate(timeout=60)
    assert json.loads(out)["send"]["sent"] == 1, err
    assert smtp_server.to().count(readers[k]) == 2  # the same message again, as asked


def test_without_smtp_host_mail_lands_in_the_working_folders_maildir(pg_url, tmp_path):
    """A PostgreSQL database has no folder to put <db>.maildir beside: the default outbox is
    paperfeed.maildir in the sender's working folder, and `paperfeed outbox` reads it there."""
    readers = _queue(pg_url, 2)
    env = _env(pg_url, tmp_path)
    p = subprocess.run([sys.executable, "-m", "paperfeed", "digest", "send", "--json"], env=env,
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["send"]["sent"] == 2
    box = mailbox.Maildir(str(tmp_path / "paperfeed.maildir"), create=False)
    assert sorted(m["To"] for m in box) == readers
    listed = subprocess.run([sys.executable, "-m", "paperfeed", "outbox", "--json"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    out = json.loads(listed.stdout)
    assert out["maildir"] == "paperfeed.maildir"
    assert sorted(m["to"] for m in out["messages"]) == readers


# --- one process queues at a time (both backends) --------------------------------------------
def test_digest_queue_lock_is_held_by_one_store_at_a_time(db):
    a, b = open_store(db), open_store(db)
    try:
        with a.digest_queue_lock() as first:
            with b.digest_queue_lock() as second:
                assert (first, second) == (True, False)
            with a.harvest_lock() as other:  # another lock: not the same one
                assert other
        with b.digest_queue_lock() as again:
            assert again
    finally:
        a.close()
        b.close()


def test_two_senders_started_together_queue_each_due_reader_once(tmp_path, smtp_server):
    """Both find the same readers due; without the queue lock each would queue (and send) a
    digest to every one of them. (SQLite here: composing on PostgreSQL needs the feed
    queries there; the lock itself is tested on both above.)"""
    from tests.web_support import build_db

    path = tmp_path / "papers.db"
    build_db(path)
    n = 30
    s = open_store(str(path))
    try:
        readers = []
        for i in range(n):
            u, _ = s.subscribe(f"due{i:03d}@example.org")
            s.confirm_subscription(u.id)
            s.set_digest_prefs(u.id, send_hour=0)
            readers.append(u.email)
        # New papers after they confirmed: every reader is due, whatever the hour.
        s.upsert_papers([Paper(id=f"2606.4{i:04d}", title=f"Fresh {i}", authors=["F. Resh"],
                               published="2026-06-14T00:00:00Z", version=1) for i in range(3)])
    finally:
        s.close()
    procs = [_sender(str(path), tmp_path, smtp_server.port) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    reports = [json.loads(o) for o, _ in outs]
    assert sum(r["queue"]["queued"] for r in reports) == n
    assert sum(r["send"]["sent"] for r in reports) == n
    assert sorted(smtp_server.to()) == sorted(readers)  # each reader exactly one digest
