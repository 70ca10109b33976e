"""Sign-in by email link through the real web app: the link is mailed to the Maildir outbox,
opens a page whose button POSTs, works once, expires, and refuses tampering; requests are
throttled and answered alike for known and unknown addresses; CSRF on every form."""

from __future__ import annotations

import time
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from paperfeed.readers.signin import login_link
from paperfeed.readers.tokens import make_token
from paperfeed.store import open_store
from paperfeed.web.app import create_app
from tests.db_support import BACKENDS, private_copy, query
from tests.readers_support import csrf_of, link_in, local, mails, sign_in
from tests.web_support import build_db, settings_for, shared_cache


@pytest.fixture(scope="session")
def web_cache(tmp_path_factory):
    return shared_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def base_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("signin") / "papers.db"
    build_db(path)
    return path


@pytest.fixture(params=BACKENDS)
def db(request, base_db, tmp_path, monkeypatch):
    # A PostgreSQL database has no folder to keep the Maildir outbox beside: it goes in the
    # working folder (paperfeed.maildir), this test's own.
    monkeypatch.chdir(tmp_path)
    return private_copy(request, base_db, tmp_path)


def app_for(db, cache, **extra):
    s = settings_for(db, cache, **extra)
    return s, TestClient(create_app(s))


def users(db) -> list[str]:
    return [r[0] for r in query(db, "SELECT email FROM users ORDER BY id")]


def ask_link(c, email: str):
    return c.post("/login", data={"csrf": csrf_of(c), "email": email})


def test_link_is_mailed_and_a_get_neither_signs_in_nor_uses_it_up(db, web_cache):
    s, c = app_for(db, web_cache)
    with c:
        r = ask_link(c, "Ada@Example.org")
        assert r.status_code == 200 and "a sign-in link is on its way" in r.text
        (msg,) = mails(s)
        assert msg["To"] == "Ada@example.org" and msg["Subject"] == "Sign in to paperfeed"
        link = local(link_in(msg))
        assert users(db) == []  # asking for a link creates nobody
        for _ in range(3):  # a mail scanner opening the link, then the reader, twice
            page = c.get(link)
            assert page.status_code == 200 and "Sign in as Ada@example.org" in page.text
            assert c.get("/account", follow_redirects=False).status_code == 303  # not signed in
        assert users(db) == []
        token = unquote(link.split("token=", 1)[1])
        r = c.post("/login/confirm", data={"csrf": csrf_of(c, link), "token": token},
                   follow_redirects=False)  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/for-you"
        cookie = r.headers["set-cookie"]
        assert "pf_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Ada@example.org" in c.get("/account").text
        assert users(db) == ["Ada@example.org"]
        # Used once: the page and a second POST both refuse it.
        again = c.get(link)
        assert again.status_code == 400 and "already been used" in again.text
        r2 = c.post("/login/confirm", data={"csrf": csrf_of(c), "token": token})
        assert r2.status_code == 400 and "already been used" in r2.text


def test_expired_tampered_and_wrong_purpose_links_are_refused(db, web_cache, monkeypatch):
    s, c = app_for(db, web_cache, PAPERFEED_LOGIN_LINK_MINUTES="30")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 31 * 60)
    stale = login_link(s, "old@example.org")
    monkeypatch.setattr(time, "time", real)
    fresh = login_link(s, "new@example.org")
    token = unquote(fresh.split("token=", 1)[1])
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    other_purpose = make_token(s.secret, "unsubscribe", {"email": "new@example.org"})
    forged = make_token("another-secret-0123456789", "login", {"email": "new@example.org"})
    with c:
        r = c.get(local(stale))
        assert r.status_code == 400 and "expired" in r.text
        for bad in (tampered, other_purpose, forged, "", "x" * 3000, "<script>alert(1)</script>"):
            r = c.get("/login/confirm", params={"token": bad})
            assert r.status_code in (400, 422), bad[:20]
            assert "<script>alert(1)" not in r.text
            r = c.post("/login/confirm", data={"csrf": csrf_of(c), "token": bad[:2000]})
            assert r.status_code in (400, 422)
        stale_token = unquote(stale.split("token=", 1)[1])
        r = c.post("/login/confirm", data={"csrf": csrf_of(c), "token": stale_token})
        assert r.status_code == 400 and "expired" in r.text
        assert c.get("/account", follow_redirects=False).status_code == 303
    assert users(db) == []


def test_same_answer_for_known_and_unknown_addresses_and_throttles(db, web_cache):
    store = open_store(str(db))
    store.get_or_create_user("known@example.org")
    store.close()
    s, c = app_for(db, web_cache, PAPERFEED_LOGIN_PER_ADDRESS="2", PAPERFEED_LOGIN_PER_CLIENT="5")
    with c:
        known = ask_link(c, "known@example.org")
        unknown = ask_link(c, "unknown@example.org")
        assert known.status_code == unknown.status_code == 200
        assert known.text.replace("known@", "X@") == unknown.text.replace("unknown@", "X@")
        assert users(db) == ["known@example.org"]  # nobody created by asking
        assert ask_link(c, "known@example.org").status_code == 200
        third = ask_link(c, "known@example.org")  # the address's limit is 2 an hour
        assert third.status_code == 429 and "Try again in an hour" in third.text
        assert ask_link(c, "friend@example.org").status_code == 200  # the client's 5th (a refused one counts)
        fifth = ask_link(c, "stranger@example.org")
        assert fifth.status_code == 429 and "from here" in fifth.text
        bad = ask_link(c, "not an address")
        assert bad.status_code in (422, 429)
    assert sorted(m["To"] for m in mails(s)) == [
        "friend@example.org", "known@example.org", "known@example.org", "unknown@example.org",
    ]  # fmt: skip


def test_csrf_and_origin_are_required(db, web_cache):
    s, c = app_for(db, web_cache)
    with c:
        c.get("/login")
        assert c.post("/login", data={"email": "a@example.org"}).status_code == 403
        assert c.post("/login", data={"email": "a@example.org", "csrf": "0" * 64}).status_code == 403
        assert mails(s) == []
        sign_in(c, s, "voter@example.org")
        csrf = csrf_of(c, "/")
        for path, data in (("/vote", {"paper": "2606.13681"}), ("/save", {"paper": "2606.13681"}),
                           ("/logout", {}), ("/account/tokens", {}), ("/account/delete", {})):
            r = c.post(path, data=data, follow_redirects=False)
            assert r.status_code == 403, path
            wrong = c.post(path, data={**data, "csrf": csrf[::-1]}, follow_redirects=False)
            assert wrong.status_code == 403, path
        cross = c.post("/vote", data={"paper": "2606.13681", "csrf": csrf},
                       headers={"origin": "https://evil.example"})  # fmt: skip
        assert cross.status_code == 403
        assert "voter@example.org" in c.get("/account").text  # still signed in
    store = open_store(str(db))
    try:
        u = store.find_user("voter@example.org")
        assert store.user_votes(u.id) == set() and store.library_pks(u.id) == {}
    finally:
        store.close()


def test_sign_out_ends_the_session_for_good(db, web_cache):
    s = settings_for(db, web_cache, PAPERFEED_BASE_URL="https://papers.example.org")
    # Secure cookies travel over https only: the client speaks https too.
    with TestClient(create_app(s), base_url="https://testserver") as c:
        sign_in(c, s, "ada@example.org")
        value = c.cookies.get("pf_session")
        assert value and c.get("/account").status_code == 200
        r = c.post("/logout", data={"csrf": csrf_of(c, "/account")}, follow_redirects=False)
        assert r.status_code == 303 and "pf_session=;" in r.headers["set-cookie"]
        assert "Secure" in r.headers["set-cookie"]
        assert c.get("/account", follow_redirects=False).headers["location"].startswith("/login")
        c.cookies.set("pf_session", value)  # the old cookie, replayed
        assert c.get("/account", follow_redirects=False).status_code == 303


def test_next_path_stays_on_this_site(db, web_cache):
    s, c = app_for(db, web_cache)
    with c:
        for target, expect in (("/library", "/library"), ("https://evil.example/", "/for-you"),
                               ("//evil.example", "/for-you")):  # fmt: skip
            link = login_link(s, "n@example.org", next_path=target if target.startswith("/") and not target.startswith("//") else "")
            token = unquote(link.split("token=", 1)[1])
            r = c.post("/login/confirm", data={"csrf": csrf_of(c), "token": token}, follow_redirects=False)
            assert r.headers["location"] == expect
        r = c.post("/login", data={"csrf": csrf_of(c), "email": "m@example.org", "next": "//evil.example"})
        assert r.status_code == 200
    (msg,) = [m for m in mails(s) if m["To"] == "m@example.org"]
    token = unquote(local(link_in(msg)).split("token=", 1)[1])
    with TestClient(create_app(s)) as c2:
        r = c2.post("/login/confirm", data={"csrf": csrf_of(c2), "token": token}, follow_redirects=False)
        assert r.headers["location"] == "/for-you"


def test_cli_login_link_signs_in_once(db, web_cache, cli_for):
    refused = cli_for(db)("user", "login-link", "admin-made@example.org")  # default secret
    assert refused.returncode == 2 and "PAPERFEED_SECRET" in refused.stderr
    env = {"PAPERFEED_SECRET": settings_for(db, web_cache).secret}
    proc = cli_for(db)("user", "login-link", "admin-made@example.org", env=env, check=True)
    link = proc.stdout.strip()
    assert link.startswith("http://127.0.0.1:8000/login/confirm?token=")
    s, c = app_for(db, web_cache)
    with c:
        token = unquote(link.split("token=", 1)[1])
        r = c.post("/login/confirm", data={"csrf": csrf_of(c), "token": token}, follow_redirects=False)
        assert r.status_code == 303
        assert "admin-made@example.org" in c.get("/account").text
    bad = cli_for(db)("user", "login-link", "not an address", env=env)
    assert bad.returncode == 2 and "not a valid email address" in bad.stderr
