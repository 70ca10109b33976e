"""The ground readers and digests stand on: users, signed single-use links, rate limits,
sessions, CSRF, and the refusal to run the web app on the default secret."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from paperfeed.config import load_settings
from paperfeed.errors import ConfigError, InputError, NotFoundError
from paperfeed.readers.tokens import TokenError, consume_token, make_token, read_token
from paperfeed.store import open_store
from paperfeed.web.app import create_app
from tests.db_support import rows

SECRET = "test-secret-0123456789abcdef"


@pytest.fixture
def store(db):
    s = open_store(db)
    yield s
    s.close()


def test_users_are_one_identity_per_address_case_insensitive(store):
    a, new_a = store.get_or_create_user("Ada@Example.ORG")
    b, new_b = store.get_or_create_user("ada@example.org")
    assert new_a and not new_b and a.id == b.id
    assert store.find_user("ADA@example.org").id == a.id
    with pytest.raises(InputError):
        store.get_or_create_user("not an address")


def test_delete_user_removes_sessions_votes_and_shown(store, tmp_path):
    from paperfeed.models import Paper

    store.upsert_papers([Paper(id="2401.00001", title="T", authors=["A"], published="2024-01-01")])
    u, _ = store.get_or_create_user("x@example.org")
    store.create_session(u.id, "cookie-value", 1)
    store.add_vote("2401.00001", u.id)
    pk = store.get_paper("2401.00001").pk
    store.mark_shown(u.id, [pk])
    store.delete_user(u.id)
    assert store.session_user("cookie-value") is None
    assert store.vote_counts([pk]) == {pk: 0}
    for table in ("users", "sessions", "shown_papers", "votes"):
        assert rows(store, f"SELECT count(*) FROM {table}") == [(0,)]
    with pytest.raises(NotFoundError):
        store.delete_user(u.id)


def test_token_round_trip_purpose_tamper_expiry_and_single_use(store, monkeypatch):
    t = make_token(SECRET, "login", {"uid": 7})
    assert read_token(SECRET, "login", t, 60).data == {"uid": 7}
    with pytest.raises(TokenError, match="not valid"):
        read_token(SECRET, "unsubscribe", t, 60)  # made for another purpose
    with pytest.raises(TokenError, match="not valid"):
        read_token("another-secret-0123456789", "login", t, 60)
    with pytest.raises(TokenError, match="not valid"):
        read_token(SECRET, "login", t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"), 60)
    # A token made an hour ago.
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600)
    stale = make_token(SECRET, "login", {"uid": 7})
    monkeypatch.setattr(time, "time", real)
    with pytest.raises(TokenError, match="expired"):
        read_token(SECRET, "login", stale, 60)
    # Reading does not use it up; consuming does, once.
    read_token(SECRET, "login", t, 60)
    assert consume_token(store, SECRET, "login", t, 60).data == {"uid": 7}
    with pytest.raises(TokenError, match="already been used"):
        consume_token(store, SECRET, "login", t, 60)


def test_throttle_counts_within_window_only(store):
    assert [store.throttle_hit("k", 2, 60) for _ in range(3)] == [True, True, False]
    assert store.throttle_hit("other", 2, 60)
    assert store.throttle_hit("k", 2, 0.000001)  # nothing left in a tiny window


def test_web_app_refuses_the_default_secret(db):
    with pytest.raises(ConfigError, match="PAPERFEED_SECRET"):
        create_app(load_settings(env={"PAPERFEED_DB": db}))


def test_cli_serve_refuses_the_default_secret(db, tmp_path):
    import subprocess
    import sys
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env["PAPERFEED_DB"] = db
    proc = subprocess.run([sys.executable, "-m", "paperfeed", "serve", "--port", "0"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode != 0
    assert "PAPERFEED_SECRET" in proc.stderr and "Traceback" not in proc.stderr


def test_visitor_gets_csrf_cookie_and_session_cookie_flags(db):
    env = {"PAPERFEED_DB": db, "PAPERFEED_SECRET": SECRET,
           "PAPERFEED_BASE_URL": "https://papers.example.org"}
    with TestClient(create_app(load_settings(env=env))) as c:
        r = c.get("/")
        cookie = r.headers["set-cookie"]
        assert "pf_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" in cookie
    env["PAPERFEED_BASE_URL"] = "http://127.0.0.1:8000"
    with TestClient(create_app(load_settings(env=env))) as c:
        assert "Secure" not in c.get("/").headers["set-cookie"]
        r2 = c.get("/")  # the cookie came back: no new one
        assert "pf_csrf" not in r2.headers.get("set-cookie", "")
