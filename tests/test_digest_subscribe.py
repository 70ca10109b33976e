"""Subscribing and leaving, end to end through the web app (in process), the JSON API and
the CLI, with a real SMTP server on loopback receiving the confirmation mails: double opt-in,
GETs that change nothing, the same answer for every address, throttles, one-click unsubscribe
without cookies, tampered links, the "not for me" links, preview and settings pages."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from paperfeed.config import load_settings
from paperfeed.store import open_store
from paperfeed.store.migrations import MIGRATIONS, apply_migrations
from paperfeed.web.app import create_app
from tests.db_support import BACKENDS, private_copy, rows
from tests.mail_support import running_smtp, smtp_env
from tests.web_support import build_db, env_for

SECRET_ENV = {"PAPERFEED_BASE_URL": "http://testserver"}


@pytest.fixture
def smtp_server():
    with running_smtp() as h:
        yield h


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("digest-web") / "papers.db"
    build_db(path)
    return path


@pytest.fixture(params=BACKENDS)
def db(request, template_db, tmp_path, monkeypatch):
    # The test's own folder is the working folder: the cache below, and a PostgreSQL
    # database's Maildir outbox (paperfeed.maildir), which has no database file to sit beside.
    monkeypatch.chdir(tmp_path)
    return private_copy(request, template_db, tmp_path)


def _settings(db, port=None, **extra):
    env = env_for(db, Path.cwd() / "cache", **SECRET_ENV, **extra)
    if port:
        env.update(smtp_env(port))
    return load_settings(env=env)


def _client(db, port=None, **extra) -> TestClient:
    return TestClient(create_app(_settings(db, port, **extra)))


def _csrf(c: TestClient, path: str) -> str:
    r = c.get(path)
    assert r.status_code == 200, r.text
    return re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)


def _link(msg, kind: str) -> str:
    body = msg.get_body(("plain",)).get_content()
    return re.search(rf"http://testserver(/{kind}/[A-Za-z0-9_.\-]+)", body).group(1)


def _status(db, email):
    s = open_store(str(db))
    try:
        u = s.find_user(email)
        sub = s.get_subscription(u.id) if u else None
        return sub.status if sub else None
    finally:
        s.close()


def test_double_opt_in_get_confirms_nothing_then_post_does(db, smtp_server):
    with _client(db, smtp_server.port) as c:
        token = _csrf(c, "/subscribe")
        r = c.post("/subscribe", data={"email": "  Reader@Example.ORG ", "csrf": token})
        assert r.status_code == 200 and "confirmation link is on its way" in r.text
        assert _status(db, "reader@example.org") == "pending"
        (msg,) = smtp_server.got
        assert msg["To"] == "Reader@example.org" and "Confirm" in msg["Subject"]
        link = _link(msg, "confirm")
        # A scanner's GET (twice, even): a page with a button, nothing confirmed or used up.
        for _ in range(2):
            page = c.get(link)
            assert page.status_code == 200 and "Confirm my subscription" in page.text
            assert 'method="post"' in page.text
        assert _status(db, "reader@example.org") == "pending"
        # The button POST without the CSRF token is refused and changes nothing.
        assert c.post(link, data={}).status_code == 403
        assert _status(db, "reader@example.org") == "pending"
        done = c.post(link, data={"csrf": re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)})
        assert done.status_code == 200 and "is subscribed" in done.text
        assert _status(db, "reader@example.org") == "active"
        # The link works once.
        again = c.post(link, data={"csrf": token})
        assert again.status_code == 400 and "already been used" in again.text


def test_same_answer_for_new_pending_known_and_case(db, smtp_server):
    with _client(db, smtp_server.port) as c:
        token = _csrf(c, "/subscribe")

        def answer(addr):
            r = c.post("/subscribe", data={"email": addr, "csrf": token})
            assert r.status_code == 200
            return re.sub(r"\s+", " ", re.search(r"<main>(.*)</main>", r.text, re.S).group(1))

        first = answer("ada@example.org")  # new
        pending = answer("ADA@example.org")  # pending, other case
        s = open_store(str(db))
        s.confirm_subscription(s.find_user("ada@example.org").id)
        s.close()
        known = answer("Ada@Example.org")  # active
        assert first == pending == known
        assert "ada@example.org" not in first.lower()  # the page does not echo who is known
    # Behind the same answer: two confirmations, then an "already subscribed" note.
    subjects = [m["Subject"] for m in smtp_server.got]
    assert subjects == ["Confirm your paperfeed digest"] * 2 + ["Your paperfeed digest subscription"]
    s = open_store(str(db))
    assert len([u for u in s.list_users() if u.email.lower() == "ada@example.org"]) == 1
    s.close()


def test_invalid_addresses_and_cross_site_posts_refused(db, smtp_server):
    with _client(db, smtp_server.port) as c:
        token = _csrf(c, "/subscribe")
        for bad in ("", "no-at-sign", "a@b", "a b@example.org", "<x>@example.org", "x" * 300 + "@example.org"):
            r = c.post("/subscribe", data={"email": bad, "csrf": token})
            assert r.status_code == 422, bad
            assert "<x>" not in r.text
        assert c.post("/subscribe", data={"email": "a@example.org"}).status_code == 403  # no token
        r = c.post("/subscribe", data={"email": "v@example.org", "csrf": token},
                   headers={"origin": "https://evil.example"})
        assert r.status_code == 403
    assert smtp_server.got == []


def test_throttled_per_address_and_per_client(db, smtp_server):
    with _client(db, smtp_server.port, PAPERFEED_SUBSCRIBE_LIMIT_ADDRESS="2",
                 PAPERFEED_SUBSCRIBE_LIMIT_CLIENT="5") as c:
        token = _csrf(c, "/subscribe")
        answers = {c.post("/subscribe", data={"email": "bob@example.org", "csrf": token}).status_code
                   for _ in range(4)}
        assert answers == {200}  # the same answer every time...
        assert smtp_server.to() == ["bob@example.org"] * 2  # ...but only two mails
        assert c.post("/subscribe", data={"email": "carol@example.org", "csrf": token}).status_code == 200
        r = c.post("/subscribe", data={"email": "dave@example.org", "csrf": token})
        assert r.status_code == 429 and "Too many" in r.text  # 6th request from this client
        assert c.post("/api/subscribe", json={"email": "erin@example.org"}).status_code == 429
    assert "dave@example.org" not in smtp_server.to()


def test_api_subscribe(db, smtp_server):
    with _client(db, smtp_server.port) as c:
        r = c.post("/api/subscribe", json={"email": "api@example.org"})
        assert r.status_code == 202 and "confirmation link" in r.json()["detail"]
        assert c.post("/api/subscribe", json={"email": "nope"}).status_code == 422
        assert c.post("/api/subscribe", data={"email": "form@example.org"}).status_code == 422
    assert smtp_server.to() == ["api@example.org"]
    assert _status(db, "api@example.org") == "pending"


def test_cli_subscribe_mails_a_confirmation(db, smtp_server, cli):
    cli.db = db
    env = {**smtp_env(smtp_server.port), "PAPERFEED_SECRET": "test-secret-0123456789abcdef"}
    proc = cli("subscribe", "Cli@Example.org", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "confirmation link was mailed" in proc.stdout
    assert smtp_server.to() == ["Cli@example.org"]
    bad = cli("subscribe", "not-an-address", env=env)
    assert bad.returncode == 2 and "not a valid email address" in bad.stderr and "Traceback" not in bad.stderr


def _active_reader(db, email="reader@example.org"):
    s = open_store(str(db))
    try:
        u, _ = s.subscribe(email)
        s.confirm_subscription(u.id)
        return u.id
    finally:
        s.close()


def test_one_click_unsubscribe_without_cookies_and_get_does_nothing(db):
    from paperfeed.digest.links import unsubscribe_url

    uid = _active_reader(db)
    settings = _settings(db)
    url = unsubscribe_url(settings, uid)
    path = url.removeprefix("http://testserver")
    with _client(db) as c:
        page = c.get(path)
        assert page.status_code == 200 and "Unsubscribe" in page.text and 'method="post"' in page.text
        assert _status(db, "reader@example.org") == "active"
        tampered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
        assert c.post(tampered, content=b"List-Unsubscribe=One-Click").status_code == 400
        assert _status(db, "reader@example.org") == "active"
    # A mail client's one-click POST: no cookie, no CSRF token, the RFC 8058 body.
    with _client(db) as c2:
        r = c2.post(path, content=b"List-Unsubscribe=One-Click",
                    headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 200 and "is unsubscribed" in r.text
        assert "cookie" not in {k.lower() for k in r.request.headers}
        assert _status(db, "reader@example.org") == "unsubscribed"
        again = c2.post(path, content=b"List-Unsubscribe=One-Click")
        assert again.status_code == 200 and "already unsubscribed" in again.text


def test_confirm_link_tampered_or_for_another_purpose_refused(db, smtp_server):
    from paperfeed.digest.links import unsubscribe_url

    uid = _active_reader(db, "x@example.org")
    unsub = unsubscribe_url(_settings(db), uid).rsplit("/", 1)[1]
    with _client(db, smtp_server.port) as c:
        token = _csrf(c, "/subscribe")
        assert c.get(f"/confirm/{unsub}").status_code == 400  # an unsubscribe token
        assert c.post(f"/confirm/{unsub}", data={"csrf": token}).status_code == 400
        assert c.get("/confirm/garbage").status_code == 400
        assert c.get("/unsubscribe/garbage").status_code == 400


def test_rate_links_show_a_page_and_post_applies(db):
    from paperfeed.digest.links import rate_url

    uid = _active_reader(db)
    s = open_store(str(db))
    s.mark_shown(uid, [s.get_paper("2606.13681").pk])  # it was in a digest of theirs
    s.close()
    base = rate_url(_settings(db), uid).removeprefix("http://testserver")
    path = base + "?paper=2606.13681&v=-1"
    with _client(db) as c:
        page = c.get(path)
        assert page.status_code == 200 and "Not for me" in page.text and "EvoArena" in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        assert c.post(path, data={}).status_code == 403
        r = c.post(path, data={"csrf": token})
        assert r.status_code == 200
        assert "Noted" in r.text
        st = c.app.state.store
        rated = rows(st, "SELECT value FROM ratings WHERE user_id = ?", (uid,))
        assert rated == [(-1,)]  # "not for me" reached the reader's library
        # A paper that was never mailed to this reader, a changed token, a bad value: refused.
        assert c.get(base + "?paper=2606.13392&v=-1").status_code == 400
        assert c.post(base + "?paper=2606.13392&v=1", data={"csrf": token}).status_code == 400
        assert c.get(base[:-2] + "xx?paper=2606.13681&v=-1").status_code == 400
        assert c.get(base + "?paper=2606.13681&v=7").status_code == 422


def _sign_in(c: TestClient, db, uid: int) -> None:
    s = open_store(str(db))
    s.create_session(uid, "session-value-for-tests-0123456789", 1)
    s.close()
    c.cookies.set("pf_session", "session-value-for-tests-0123456789")


def test_preview_and_settings_need_sign_in_and_save(db):
    uid = _active_reader(db)
    with _client(db) as c:
        assert c.get("/digest/preview").status_code == 401
        assert c.get("/account/digest").status_code == 401
        _sign_in(c, db, uid)
        r = c.get("/digest/preview")
        assert r.status_code == 200 and "Your next digest" in r.text and "EvoArena" in r.text
        assert "<img src=x" not in r.text  # the planted hostile title stays text
        token = _csrf(c, "/account/digest")
        form = {"csrf": token, "frequency": "weekly", "weekday": "4", "send_hour": "8",
                "timezone": "Europe/Berlin", "max_papers": "3", "min_score": "0.5",
                "sections": ["trending", "foryou"], "action": "save"}
        assert c.post("/account/digest", data={**form, "csrf": ""}).status_code == 403
        bad = c.post("/account/digest", data={**form, "timezone": "Mars/Olympus"})
        assert bad.status_code == 422 and "timezone" in bad.text
        ok = c.post("/account/digest", data=form)
        assert ok.status_code == 200 and "Saved" in ok.text
        s = open_store(str(db))
        sub = s.get_subscription(uid)
        s.close()
        assert (sub.frequency, sub.weekday, sub.send_hour, sub.timezone, sub.max_papers,
                sub.min_score, sub.sections) == ("weekly", 4, 8, "Europe/Berlin", 3, 0.5,
                                                 ("trending", "foryou"))
        r = c.get("/digest/preview")
        assert r.text.count('class="paper"') <= 3
        c.post("/account/digest", data={"csrf": token, "action": "unsubscribe"})
        assert _status(db, "reader@example.org") == "unsubscribed"


# SQLite-only: the PostgreSQL schema begins at 0501, so no older PostgreSQL database exists.
def test_old_pending_subscriptions_move_to_readers(tmp_path):

    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    before = [m for m in MIGRATIONS if m[0] < "0501"]
    apply_migrations(con, before)
    con.execute("INSERT INTO subscriptions (email, created_at, status, source) VALUES "
                "('Old@example.org', '2026-01-01T00:00:00Z', 'pending', 'web')")
    con.commit()
    con.close()
    s = open_store(str(path))
    try:
        u = s.find_user("old@example.org")
        sub = s.get_subscription(u.id)
        assert sub.status == "pending" and sub.source == "web" and sub.created_at.startswith("2026-01-01")
        tables = {r[0] for r in rows(s, "SELECT name FROM sqlite_master WHERE type='table'")}
        assert "subscriptions" not in tables
    finally:
        s.close()


def test_deleting_a_reader_removes_subscription_and_outbox(db):
    uid = _active_reader(db)
    s = open_store(str(db))
    try:
        did = s.create_digest(False, 0)
        s.queue_digest_mail(did, 0, [(uid, "reader@example.org", "<m1@x>", b"x", [1], "2026-01-01")])
        s.delete_user(uid)
        for table in ("digest_subscriptions", "outbox"):
            assert rows(s, f"SELECT count(*) FROM {table} WHERE user_id = ?", (uid,)) == [(0,)]
    finally:
        s.close()


