"""Sending digests through the outbox, against a real SMTP server on loopback (aiosmtpd),
reading back what it received: headers and parts, DKIM, the Maildir default, a sender killed
(SIGKILL) after k of n, two senders at once, a server that refuses, answers 4xx or 5xx, or
drops the connection, unsubscribes taking effect before a send, and papers never mailed twice.
"""

from __future__ import annotations

import base64
import json
import mailbox
import os
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from paperfeed.config import load_settings
from paperfeed.digest import digest_status, queue_due, send_queued
from paperfeed.digest.schedule import is_due
from paperfeed.models import Paper, Subscription
from paperfeed.store import open_store
from tests.db_support import BACKENDS, execute, is_pg, private_copy
from tests.mail_support import Recorder, free_port, running_smtp, smtp_env, wait_for
from tests.web_support import XSS_ID, build_db, env_for

SECRET = "test-secret-0123456789abcdef"
FAST = {  # no rate limit, short pauses, retry at once: the tests run in seconds
    "PAPERFEED_DIGEST_RATE": "0",
    "PAPERFEED_DIGEST_BACKOFF": "0.01",
    "PAPERFEED_DIGEST_RETRY_AFTER": "0.001",
    "PAPERFEED_DIGEST_FAILURES_BEFORE_PAUSE": "2",
    "PAPERFEED_DIGEST_PAUSES_PER_RUN": "2",
    "PAPERFEED_BASE_URL": "https://papers.example.org",
}


@pytest.fixture
def smtp_server():
    with running_smtp() as h:
        yield h


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("digest-send") / "papers.db"
    build_db(path)
    return path


@pytest.fixture(params=BACKENDS)
def db(request, template_db, tmp_path, monkeypatch):
    # The test's own folder is the working folder of the test and of its `paperfeed`
    # processes: the cache below, and a PostgreSQL database's Maildir (paperfeed.maildir).
    monkeypatch.chdir(tmp_path)
    return private_copy(request, template_db, tmp_path)


def _env(db, port=None, **extra) -> dict[str, str]:
    env = env_for(db, Path.cwd() / "cache", **FAST)
    if port:
        env.update(smtp_env(port))
    env.update(extra)
    return env


def _settings(db, port=None, **extra):
    return load_settings(env=_env(db, port, **extra))


def _readers(db, n: int, **prefs) -> list[str]:
    s = open_store(str(db))
    try:
        out = []
        for i in range(n):
            u, _ = s.subscribe(f"reader{i:03d}@example.org")
            s.confirm_subscription(u.id)
            if prefs:
                s.set_digest_prefs(u.id, **prefs)
            out.append(u.email)
        return out
    finally:
        s.close()


def _rows(db):
    s = open_store(str(db))
    try:
        return s.outbox_rows(limit=10000)
    finally:
        s.close()


def _run(db, settings, force=True, now=None):
    s = open_store(str(db))
    try:
        q = queue_due(s, settings, force=force, now=now)
        return q, send_queued(s, settings)
    finally:
        s.close()


# --- what arrives ---------------------------------------------------------------------------
def test_digest_mail_headers_parts_links_and_escaping(db, smtp_server):
    (addr,) = _readers(db, 1, max_papers=50)
    settings = _settings(db, smtp_server.port)
    q, r = _run(db, settings)
    assert (q.queued, r.sent) == (1, 1)
    (msg,) = smtp_server.got
    (row,) = _rows(db)
    assert msg["To"] == addr and msg["From"] == "digest@papers.example.org"
    assert msg["Message-ID"] == row["message_id"] and row["status"] == "sent"
    unsub = msg["List-Unsubscribe"]
    assert re.fullmatch(r"<https://papers\.example\.org/unsubscribe/[A-Za-z0-9_.\-]+>", unsub)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "paper" in msg["Subject"] and "\n" not in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "EvoArena" in text and "EvoArena" in html  # the most voted paper of the sample
    assert "https://papers.example.org/papers/2606.13681" in html
    assert "https://arxiv.org/abs/2606.13681" in html and "https://arxiv.org/pdf/2606.13681" in html
    assert html.count("/mail/rate/") == 2 * html.count('class="pf-card"') > 0
    assert "Why: trending here: 118 votes" in text
    assert "prefers-color-scheme: dark" in html and "max-width: 600px" in html
    # The planted hostile paper is in (it has votes) and stays inert text.
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "<script" not in html and "<b>Mallory</b>" not in html
    assert f"/papers/{XSS_ID}" in html


def test_dkim_verifies_and_covers_both_unsubscribe_headers(db, smtp_server, tmp_path):
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "dkim.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))  # fmt: skip
    pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    _readers(db, 1)
    settings = _settings(db, smtp_server.port, PAPERFEED_DKIM_KEY_FILE=str(tmp_path / "dkim.pem"),
                         PAPERFEED_DKIM_SELECTOR="pf", PAPERFEED_DKIM_DOMAIN="papers.example.org")
    _run(db, settings)
    (raw,) = smtp_server.raw
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub)
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)
    sig = raw.split(b"DKIM-Signature:", 1)[1].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
    h_tag = re.sub(rb"\s+", b"", sig.split(b"h=", 1)[1].split(b";", 1)[0]).split(b":")
    assert b"list-unsubscribe" in h_tag and b"list-unsubscribe-post" in h_tag
    # Changing the unsubscribe link breaks the signature.
    forged = re.sub(rb"(List-Unsubscribe: <https://papers\.example\.org/unsubscribe/)", rb"\1x", raw)
    assert forged != raw and not dkim.verify(forged, dnsfunc=lambda name, timeout=5: record)


def test_maildir_is_the_default_and_outbox_lists_it(db, cli):
    _readers(db, 2)
    env = {k: v for k, v in _env(db).items() if k != "PAPERFEED_DB"}
    cli.db = db
    proc = cli("digest", "send", "--force", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "sent 2" in proc.stdout
    # Beside a SQLite file; in the working folder for a PostgreSQL database (no file).
    where = cli.cwd / "paperfeed.maildir" if is_pg(db) else db.with_suffix(".maildir")
    box = mailbox.Maildir(str(where), create=False)
    assert sorted(m["To"] for m in box) == ["reader000@example.org", "reader001@example.org"]
    listed = cli("outbox", "--json", env=env)
    assert {m["to"] for m in json.loads(listed.stdout)["messages"]} == {
        "reader000@example.org", "reader001@example.org"}
    shown = cli("outbox", "--show", "1", env=env)
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in shown.stdout


# --- exactly once -------------------------------------------------------------------------------
def _sender(db, port, *args) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env.update(_env(db, port))
    return subprocess.Popen(
        [sys.executable, "-m", "paperfeed", "digest", "send", "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=Path.cwd(),
    )  # fmt: skip


def _status(db, port=None) -> dict:
    s = open_store(str(db))
    try:
        return digest_status(s, _settings(db, port))
    finally:
        s.close()


def test_sender_killed_after_k_of_n_resumes_and_reports_the_one_in_flight(db, smtp_server):
    n, k = 8, 3
    readers = _readers(db, n)
    smtp_server.hold_at = k + 1  # takes mail k+1, then holds its answer
    proc = _sender(db, smtp_server.port, "--force")
    try:
        wait_for(lambda: len(smtp_server.got) == k + 1, what="k+1 messages at the server")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    smtp_server.release.set()
    st = _status(db)
    (d,) = st["digests"]
    assert (d["sent"], d["uncertain"], d["queued"], d["sending"]) == (k, 1, n - k - 1, 0)
    assert [u["email"] for u in st["uncertain"]] == [readers[k]]
    # Restart: the n-k-1 queued ones go; the uncertain one is not resent on its own.
    proc2 = _sender(db, smtp_server.port)
    out, err = proc2.communicate(timeout=60)
    assert proc2.returncode == 0, err
    assert json.loads(out)["send"]["sent"] == n - k - 1
    assert sorted(smtp_server.to()) == sorted(readers)  # every subscriber exactly one digest
    assert len({m["Message-ID"] for m in smtp_server.got}) == n
    (d,) = _status(db)["digests"]
    assert (d["sent"], d["uncertain"], d["queued"]) == (n - 1, 1, 0)
    # What an administrator sees.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env.update(_env(db))
    shown = subprocess.run([sys.executable, "-m", "paperfeed", "digest", "status"], env=env,
                           capture_output=True, text=True, cwd=Path.cwd(), timeout=60)
    assert f"{n - 1} sent" in shown.stdout and "1 uncertain" in shown.stdout
    assert f"uncertain: mail {k + 1} to {readers[k]}" in shown.stdout


def test_two_senders_at_once_never_send_a_row_twice(db, smtp_server):
    n = 40
    readers = _readers(db, n)
    s = open_store(str(db))
    assert queue_due(s, _settings(db, smtp_server.port), force=True).queued == n
    s.close()
    procs = [_sender(db, smtp_server.port) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    sent = [json.loads(o)["send"]["sent"] for o, _ in outs]
    assert sum(sent) == n
    assert sorted(smtp_server.to()) == sorted(readers)
    assert {r["status"] for r in _rows(db)} == {"sent"}


def test_a_paper_mailed_yesterday_is_not_mailed_again(db, smtp_server):
    _readers(db, 1, max_papers=50)
    settings = _settings(db, smtp_server.port)
    day1 = datetime(2026, 6, 13, 12, 0, tzinfo=timezone.utc)
    s = open_store(str(db))
    # New papers arrive (the day's announcement): the reader is due.
    s.upsert_papers([Paper(id=f"2606.9{i:04d}", title=f"New paper {i}", authors=["N. Ew"],
                           published="2026-06-13T00:00:00Z", version=1) for i in range(3)])
    s.close()
    _run(db, settings, force=False, now=day1)
    first = smtp_server.got[0].get_body(("plain",)).get_content()
    ids1 = set(re.findall(r"Paper page: +\S+/papers/(\S+)", first))
    assert "2606.90000" in ids1 and "2606.13681" in ids1
    # Next day: one mailed paper comes back as a new version (another source, too), and two
    # new papers arrive. Only the new ones are mailed.
    s = open_store(str(db))
    s.upsert_papers([Paper(id="2606.13681", title="EvoArena (v2)", version=2,
                           updated="2026-06-14T00:00:00Z", source="arxiv-api"),
                     *[Paper(id=f"2606.8{i:04d}", title=f"Next day {i}", published="2026-06-14T00:00:00Z",
                             version=1) for i in range(2)]])
    s.close()
    q, r = _run(db, settings, force=False, now=day1 + timedelta(days=1))
    assert (q.queued, r.sent) == (1, 1)
    second = smtp_server.got[1].get_body(("plain",)).get_content()
    ids2 = set(re.findall(r"Paper page: +\S+/papers/(\S+)", second))
    assert ids2 == {"2606.80000", "2606.80001"}
    assert not ids1 & ids2
    # A day with no announcement (no new papers): not due, nothing sent.
    q, r = _run(db, settings, force=False, now=day1 + timedelta(days=2))
    assert (q.due, r.sent) == (0, 0) and len(smtp_server.got) == 2


# --- the SMTP server misbehaving ------------------------------------------------------------------
def test_smtp_refusing_connections_then_back_loses_nothing(db):
    readers = _readers(db, 4)
    port = free_port()  # nothing listens yet
    settings = _settings(db, port)
    q, r = _run(db, settings)
    assert q.queued == 4 and r.sent == 0 and r.gave_up and r.pauses == 2
    assert {x["status"] for x in _rows(db)} == {"queued"}
    h = Recorder()
    c = Controller(h, hostname="127.0.0.1", port=port)
    c.start()
    try:
        s = open_store(str(db))
        r2 = send_queued(s, settings)
        s.close()
    finally:
        c.stop()
    assert r2.sent == 4 and sorted(h.to()) == readers


def test_4xx_then_accepted_and_5xx_for_one_recipient(db, smtp_server):
    readers = _readers(db, 5)
    settings = _settings(db, smtp_server.port, PAPERFEED_DIGEST_PAUSES_PER_RUN="1")
    smtp_server.data_reply = "451 4.3.0 try again later"
    q, r = _run(db, settings)
    assert r.sent == 0 and r.gave_up and smtp_server.got == []
    assert {x["status"] for x in _rows(db)} == {"queued"}
    smtp_server.data_reply = None
    smtp_server.refuse = {readers[2]: "550 5.1.1 no such user"}
    s = open_store(str(db))
    r2 = send_queued(s, settings)
    s.close()
    assert (r2.sent, r2.failed) == (4, 1)
    assert sorted(smtp_server.to()) == sorted(readers[:2] + readers[3:])
    by = {x["email"]: x for x in _rows(db)}
    assert by[readers[2]]["status"] == "failed" and "550" in by[readers[2]]["last_error"]
    (d,) = _status(db)["digests"]
    assert (d["sent"], d["failed"], d["queued"]) == (4, 1, 0)


def test_connection_dropped_mid_run_is_retried_nothing_lost(db, smtp_server):
    readers = _readers(db, 6)
    smtp_server.drop_at = {3}
    q, r = _run(db, _settings(db, smtp_server.port))
    assert r.sent == 6 and r.retry == 1
    assert sorted(smtp_server.to()) == readers  # the dropped one went again, once


def test_unsubscribe_takes_effect_before_the_next_send(db, smtp_server):
    readers = _readers(db, 3)
    settings = _settings(db, smtp_server.port)
    s = open_store(str(db))
    queue_due(s, settings, force=True)
    s.unsubscribe(s.find_user(readers[1]).id)
    r = send_queued(s, settings)
    s.close()
    assert r.sent == 2 and readers[1] not in smtp_server.to()
    (d,) = _status(db)["digests"]
    assert d["cancelled"] == 1


# --- what goes in, and when -------------------------------------------------------------------------
def test_threshold_thin_day_not_padded_and_empty_digests_not_sent(db, smtp_server):
    s = open_store(str(db))
    a, _ = s.subscribe("picky@example.org")
    s.confirm_subscription(a.id)
    s.set_digest_prefs(a.id, min_score=0.5, max_papers=20)
    b, _ = s.subscribe("foryou@example.org")
    s.confirm_subscription(b.id)
    s.set_digest_prefs(b.id, sections="foryou")  # nothing personal yet (no follows, no model)
    s.close()
    q, r = _run(db, _settings(db, smtp_server.port))
    personal = None
    try:
        from paperfeed.rank import foryou  # noqa: F401

        personal = True
    except ImportError:
        personal = False
    if not personal:
        assert q.empty == 1 and smtp_server.to() == ["picky@example.org"]
    text = smtp_server.got[0].get_body(("plain",)).get_content()
    n = len(re.findall(r"^\d+\. ", text, re.M))
    assert 1 <= n < 20  # only papers scoring at least half the top one: no filler
    assert "new since your last digest" not in text


def test_due_rules_daily_weekly_time_zone_and_hour():
    sub = Subscription(1, "a@example.org", status="active", timezone="America/Los_Angeles",
                       send_hour=7, seen_pk=10)
    at = datetime(2026, 6, 15, 13, 0, tzinfo=timezone.utc)  # 06:00 in Los Angeles, a Monday
    assert not is_due(sub, at, 11)  # before the reader's hour
    assert is_due(sub, at + timedelta(hours=1), 11)
    assert not is_due(sub, at + timedelta(hours=1), 10)  # nothing new: no mail
    sub.last_digest_on = "2026-06-15"
    assert not is_due(sub, at + timedelta(hours=5), 12)  # once per day of the reader's own
    assert is_due(sub, at + timedelta(days=1, hours=1), 12)
    weekly = Subscription(2, "b@example.org", status="active", frequency="weekly", weekday=2,
                          send_hour=0, seen_pk=0)
    assert not is_due(weekly, at, 5)  # Monday
    assert is_due(weekly, at + timedelta(days=2), 5)  # Wednesday
    weekly.last_digest_on = "2026-06-03"  # missed a week: the first run after catches up
    assert is_due(weekly, at, 5)


def test_paperfeed_run_sends_what_is_due(db, smtp_server):
    from paperfeed.harvest.scheduler import Scheduler

    readers = _readers(db, 2, send_hour=0)  # due at any hour the test runs
    s = open_store(str(db))
    s.upsert_papers([Paper(id="2606.70001", title="Fresh", published="2026-06-14T00:00:00Z", version=1)])
    sched = Scheduler(s, _settings(db, smtp_server.port, PAPERFEED_HARVEST_SETS="cs"))
    try:
        sched._send_digests()  # what each cycle ends with
    finally:
        sched.client.close()
        s.close()
    assert sorted(smtp_server.to()) == readers


def test_a_withdrawn_paper_is_not_mailed(db, smtp_server):
    _readers(db, 1, max_papers=50)
    s = open_store(str(db))
    s.upsert_papers([Paper(id=f"2606.6{i:04d}", title=f"Announced {i}", published="2026-06-14T00:00:00Z",
                           version=1) for i in range(2)])
    s.close()
    # What a harvest does with an OAI-PMH deleted record.
    execute(db, "UPDATE papers SET withdrawn = 1 WHERE id = '2606.60001'")
    _run(db, _settings(db, smtp_server.port), force=False, now=datetime(2026, 6, 14, 12, tzinfo=timezone.utc))
    text = smtp_server.got[0].get_body(("plain",)).get_content()
    assert "/papers/2606.60000" in text and "2606.60001" not in text


def test_followed_author_paper_arrives_with_its_reason(db, smtp_server):
    """The digest's personal part comes from the readers' recommender: a paper by an author
    the reader follows arrives, saying why."""
    from paperfeed.store.base import author_key

    (email,) = _readers(db, 1)
    s = open_store(str(db))
    try:
        uid = s.find_user(email).id
        sp = s.get_paper("2606.13681")
        name = sp.paper.authors[0]
        s.follow(uid, "author", author_key(name), name)
    finally:
        s.close()
    _run(db, _settings(db, smtp_server.port))
    (msg,) = smtp_server.got
    text = msg.get_body(("plain",)).get_content()
    assert "EvoArena" in text and f"by {name}" in text
