"""Readers in the web app: votes (one per reader, a toggle, moving trending), the library
(save, tags, notes, ratings), follows and author pages, saved searches, personal API tokens,
the private feed, export, account deletion, sign-in for submissions, and one reader's data
never reaching another (pages and API)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import bibtexparser
import pytest
from fastapi.testclient import TestClient

from paperfeed.store import open_store
from paperfeed.web.app import create_app
from tests.db_support import BACKENDS, is_pg, private_copy, query
from tests.readers_support import csrf_of, indexed_db, sign_in
from tests.web_support import HF_TOP, settings_for, shared_cache

UNVOTED = "2606.99002"  # planted, no votes: among the unvoted papers of the window
OTHER = "2606.13515"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="session")
def web_cache(tmp_path_factory):
    return shared_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def base_db(tmp_path_factory, web_cache):
    return indexed_db(tmp_path_factory.mktemp("readers-web") / "papers.db", web_cache)


@pytest.fixture(params=BACKENDS)
def db(request, base_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a PostgreSQL database's Maildir outbox: the working folder
    return private_copy(request, base_db, tmp_path)


def client(db, cache, **extra):
    s = settings_for(db, cache, PAPERFEED_LIBRARY_FETCH_ARXIV="false", **extra)
    return s, TestClient(create_app(s))


def post(c, path, **data):
    return c.post(path, data={"csrf": csrf_of(c), **data}, follow_redirects=False)


def trending_ids(c) -> list[str]:
    return [p["id"] for p in c.get("/api/trending", params={"limit": 100}).json()["papers"]]


# --- votes ---------------------------------------------------------------------------------------
def test_one_vote_per_reader_toggles_and_moves_trending(db, web_cache):
    s, c = client(db, web_cache)
    with c:
        before = trending_ids(c)
        pos_before = before.index(UNVOTED)
        votes_before = c.get(f"/api/papers/{UNVOTED}").json()["votes"]
        sign_in(c, s, "a@example.org")
        r = post(c, "/vote", paper=UNVOTED, next="/")
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert c.get(f"/api/papers/{UNVOTED}").json()["votes"] == votes_before + 1
        after = trending_ids(c)
        assert after.index(UNVOTED) < pos_before  # a vote lifts it above every unvoted paper
        page = c.get(f"/papers/{UNVOTED}").text
        assert 'class="vote voted" aria-pressed="true"' in page  # the reader sees their vote
        # The same reader again: the vote is taken back, not counted twice.
        post(c, "/vote", paper=UNVOTED, next="/")
        assert c.get(f"/api/papers/{UNVOTED}").json()["votes"] == votes_before
        assert trending_ids(c).index(UNVOTED) == pos_before
        post(c, "/vote", paper=UNVOTED, next="/")
        # A second reader adds a second vote.
    s2, c2 = client(db, web_cache)
    with c2:
        sign_in(c2, s2, "b@example.org")
        post(c2, "/vote", paper=UNVOTED, next="/")
        assert c2.get(f"/api/papers/{UNVOTED}").json()["votes"] == votes_before + 2
        r = post(c2, "/vote", paper="9999.99999", next="/")
        assert r.status_code == 404
    assert query(db, "SELECT count(*) FROM votes") == [(2,)]


def test_anonymous_vote_and_submit_are_refused_and_submit_is_rate_limited(db, web_cache):
    s, c = client(db, web_cache, PAPERFEED_SUBMIT_PER_HOUR="2",
                  PAPERFEED_ARXIV_API_URL="http://127.0.0.1:9/api/query",
                  PAPERFEED_HARVEST_INTERVAL="0")  # fmt: skip
    with c:
        assert 'href="/login?next=/"' in c.get("/").text  # the vote box asks to sign in
        assert post(c, "/vote", paper=UNVOTED).status_code == 401
        r = post(c, "/submit", paper_id=OTHER)
        assert r.status_code == 401 and "Sign in" in r.text
        assert "Sign in</a> to submit" in c.get("/submit").text
        assert c.get("/api/daily").json()["day"] == "2026-06-12"  # nothing was submitted
        sign_in(c, s, "a@example.org")
        assert post(c, "/submit", paper_id=OTHER).status_code == 200
        assert post(c, "/submit", paper_id=UNVOTED).status_code == 200
        third = post(c, "/submit", paper_id=HF_TOP[0])
        assert third.status_code == 429 and "2 papers an hour" in third.text
    store = open_store(str(db))
    try:
        u = store.find_user("a@example.org")
        assert [x["id"] for x in store.export_user(u.id)["submissions"]] == sorted([OTHER, UNVOTED])
    finally:
        store.close()


# --- library --------------------------------------------------------------------------------------
def test_save_tag_note_rate_and_the_library_pages(db, web_cache):
    s, c = client(db, web_cache)
    with c:
        sign_in(c, s, "a@example.org")
        assert post(c, "/save", paper=HF_TOP[0], next="/").status_code == 303
        post(c, "/save", paper=OTHER, next="/")
        post(c, "/library/tags", paper=HF_TOP[0], tags="Agents, memory ,agents")
        post(c, "/library/note", paper=HF_TOP[0], note="<b>read</b> for Tuesday")
        post(c, "/rate", paper=UNVOTED, value="-1")
        lib = c.get("/library").text
        assert HF_TOP[1] in lib and "&lt;b&gt;read&lt;/b&gt; for Tuesday" in lib
        assert 'href="/tags/agents"' in lib and 'href="/tags/memory"' in lib
        tagged = c.get("/tags/agents").text
        assert HF_TOP[1] in tagged and "Tagged “agents”" in tagged
        assert c.get("/tags/nothing-here").status_code == 404
        assert c.get("/tags/a%3Cb%3E").status_code == 422  # not a tag at all
        assert ">Saved</button>" in c.get("/").text  # the top paper, saved
        assert 'aria-pressed="true">Not for me' in c.get(f"/papers/{UNVOTED}").text
        api = c.get("/api/me/library").json()
        assert {i["id"]: i["tags"] for i in api} == {HF_TOP[0]: ["agents", "memory"], OTHER: []}
        post(c, "/save", paper=OTHER, action="unsave")
        assert [i["id"] for i in c.get("/api/me/library").json()] == [HF_TOP[0]]
        bad = post(c, "/library/tags", paper=HF_TOP[0], tags="x" * 50)
        assert bad.status_code == 422
        assert c.get("/api/me/library").json()[0]["tags"] == ["agents", "memory"]  # kept
        assert post(c, "/library/note", paper=OTHER, note="x").status_code == 404  # not saved


def test_follow_authors_and_categories_and_author_pages(db, web_cache):
    s, c = client(db, web_cache)
    with c:
        home = c.get("/").text
        assert 'class="author" href="/authors/' in home  # author names on cards link there
        store = open_store(str(db))
        name = store.get_paper(HF_TOP[0]).paper.authors[0]
        store.close()
        page = c.get(f"/authors/{name}")
        assert page.status_code == 200 and HF_TOP[1] in page.text
        assert "Sign in to follow" in page.text
        assert c.get("/authors/Nobody%20At%20All").status_code == 404
        sign_in(c, s, "a@example.org")
        r = post(c, "/follow", kind="author", name=name.upper(), next=f"/authors/{name}")
        assert r.status_code == 303
        assert ">Following</button>" in c.get(f"/authors/{name}").text  # folded names match
        post(c, "/follow", kind="category", name="cs.CV")
        assert post(c, "/follow", kind="category", name="../etc").status_code == 422
        follows = c.get("/api/me/follows").json()
        assert {(f["kind"], f["label"]) for f in follows} == {("author", name.upper()), ("category", "cs.CV")}
        assert "cs.CV" in c.get("/follows").text
        post(c, "/unfollow", kind="category", key="cs.CV")
        assert [f["kind"] for f in c.get("/api/me/follows").json()] == ["author"]


def test_saved_searches_and_another_readers_ids(db, web_cache):
    s, a = client(db, web_cache)
    _, b = client(db, web_cache)
    with a, b:
        sign_in(a, s, "a@example.org")
        sign_in(b, s, "b@example.org")
        post(a, "/saved-searches", q="  sparse   attention ")
        (saved,) = a.get("/api/me/saved-searches").json()
        assert saved["query"] == "sparse attention"
        assert "sparse attention" in a.get("/saved-searches").text
        # B cannot see or delete A's search, tokens or tags.
        assert b.get("/api/me/saved-searches").json() == []
        assert post(b, "/saved-searches/delete", id=str(saved["id"])).status_code == 404
        assert b.delete(f"/api/me/saved-searches/{saved['id']}", headers={"x-csrf-token": csrf_of(b, "/")}).status_code == 404
        post(a, "/account/tokens", label="script")
        (tok,) = a.get("/api/me/tokens").json()
        assert post(b, "/account/tokens/revoke", id=str(tok["id"])).status_code == 404
        assert len(a.get("/api/me/tokens").json()) == 1
        post(a, "/save", paper=HF_TOP[0])
        post(a, "/library/tags", paper=HF_TOP[0], tags="secret-project")
        assert b.get("/tags/secret-project").status_code == 404
        assert b.get("/api/me/library").json() == [] and "secret-project" not in b.get("/library").text
        assert HF_TOP[1] not in b.get("/library").text
        assert b.get("/api/me/export").json()["library"] == []
        assert "a@example.org" not in b.get("/account").text
        assert post(a, "/saved-searches/delete", id=str(saved["id"])).status_code == 303
        assert a.get("/api/me/saved-searches").json() == []


# --- API tokens, private feed, export, deletion -------------------------------------------------------
def test_api_tokens_bearer_and_cookie_csrf(db, web_cache):
    s, c = client(db, web_cache)
    with c:
        assert c.get("/api/me").status_code == 401
        sign_in(c, s, "a@example.org")
        r = post(c, "/account/tokens", label="laptop")
        token = r.text.split('id="new-token">', 1)[1].split("<", 1)[0]
        assert token.startswith("pf_")
        # Cookie writes need the CSRF header; reads do not.
        assert c.post("/api/me/library", json={"id": OTHER}).status_code == 403
        ok = c.post("/api/me/library", json={"id": OTHER}, headers={"x-csrf-token": csrf_of(c, "/")})
        assert ok.status_code == 200
    with TestClient(create_app(s)) as anon:  # no cookies at all: the token alone
        h = {"authorization": f"Bearer {token}"}
        assert anon.get("/api/me", headers=h).json()["email"] == "a@example.org"
        assert anon.post("/api/me/library", json={"id": HF_TOP[0], "tags": ["x"]}, headers=h).status_code == 200
        assert {i["id"] for i in anon.get("/api/me/library", headers=h).json()} == {OTHER, HF_TOP[0]}
        r = anon.post("/api/me/votes", json={"id": HF_TOP[0]}, headers=h).json()
        assert r["voted"] is True and r["votes"] == 119
        assert anon.post("/api/me/library", json={"id": "9999.99999"}, headers=h).status_code == 404
        assert anon.get("/api/me", headers={"authorization": "Bearer pf_wrong"}).status_code == 401
        assert "access-control-allow-origin" not in anon.get("/api/me", headers=h).headers
        (t,) = anon.get("/api/me/tokens", headers=h).json()
        assert anon.delete(f"/api/me/tokens/{t['id']}", headers=h).status_code == 200
        assert anon.get("/api/me", headers=h).status_code == 401  # revoked


def test_private_feed_url_works_until_revoked(db, web_cache):
    s, c = client(db, web_cache)
    with c, TestClient(create_app(s)) as anon:
        sign_in(c, s, "a@example.org")
        post(c, "/save", paper=HF_TOP[0])
        r = post(c, "/account/feed")
        url = r.text.split('id="feed-url">', 1)[1].split("<", 1)[0]
        assert url.startswith("/feeds/for-you/") and len(url) > 50
        feed = anon.get(url)  # no cookie: the URL alone is the credential
        assert feed.status_code == 200 and feed.headers["cache-control"] == "private, no-store"
        entries = ET.fromstring(feed.content).findall(f"{ATOM}entry")
        assert entries and f"/papers/{HF_TOP[0]}<" not in feed.text  # saved: never picked
        assert anon.get(url.replace("/for-you/", "/for-you/x")).status_code == 404
        r = post(c, "/account/feed")  # a new URL ends the old one
        new = r.text.split('id="feed-url">', 1)[1].split("<", 1)[0]
        assert anon.get(url).status_code == 404 and anon.get(new).status_code == 200
        post(c, "/account/feed/revoke")
        assert anon.get(new).status_code == 404


def _tables(db) -> dict[str, list[str]]:
    """Every table of the database and its columns, from the backend's own catalog."""
    if is_pg(db):
        cols = query(db, "SELECT table_name, column_name FROM information_schema.columns "
                         "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")  # fmt: skip
    else:
        cols = query(db, "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c "
                         "WHERE m.type = 'table' ORDER BY m.name, c.cid")  # fmt: skip
    out: dict[str, list[str]] = {}
    for table, col in cols:
        out.setdefault(table, []).append(col)
    return out


def _rows_about(db, user_id: int, email: str) -> dict[str, int]:
    out = {}
    mentions = 0
    for table, cols in _tables(db).items():
        if "user_id" in cols:
            out[table] = query(db, f"SELECT count(*) FROM {table} WHERE user_id = ?", (user_id,))[0][0]
        # Every text value of every row (blobs are bytes: a dump shows them as hex too).
        for row in query(db, f"SELECT * FROM {table}"):
            mentions += sum(v.lower().count(email.lower()) for v in row if isinstance(v, str))
    out["mentions of the address"] = mentions
    return out


def test_export_everything_and_deletion_leaves_no_rows(db, web_cache):
    s, c = client(db, web_cache)
    with c:
        sign_in(c, s, "Gone@Example.org")
        post(c, "/save", paper=HF_TOP[0])
        post(c, "/library/tags", paper=HF_TOP[0], tags="t1, t2")
        post(c, "/library/note", paper=HF_TOP[0], note="my note")
        post(c, "/rate", paper=OTHER, value="1")
        post(c, "/rate", paper=UNVOTED, value="-1")
        post(c, "/vote", paper=OTHER)
        post(c, "/follow", kind="category", name="cs.LG")
        post(c, "/follow", kind="author", name="Ada Lovelace")
        post(c, "/saved-searches", q="agents")
        post(c, "/account/tokens")
        post(c, "/account/feed")
        post(c, "/submit", paper_id=OTHER)
        c.get("/for-you")  # trains and caches a model
        c.post("/subscribe", data={"email": "gone@example.org"})
        data = c.get("/account/export.json").json()
        assert data["user"]["email"] == "Gone@example.org"
        assert data["library"][0]["note"] == "my note" and data["library"][0]["tags"] == ["t1", "t2"]
        assert {r["value"] for r in data["ratings"]} == {1, -1} and len(data["votes"]) == 1
        assert len(data["follows"]) == 2 and data["saved_searches"][0]["query"] == "agents"
        assert {t["kind"] for t in data["tokens"]} == {"api", "feed"}
        assert "token_hash" not in str(data)
        bib = c.get("/account/export.bib")
        assert bib.headers["content-type"].startswith("application/x-bibtex")
        (entry,) = bibtexparser.loads(bib.text).entries
        assert entry["eprint"] == HF_TOP[0] and entry["note"] == "my note" and entry["keywords"] == "t1, t2"
        uid = open_store(str(db)).find_user("gone@example.org").id
        before = _rows_about(db, uid, "gone@example.org")
        assert all(before[t] for t in ("library", "library_tags", "ratings", "votes", "follows",
                                       "saved_searches", "api_tokens", "sessions", "reader_models",
                                       "reader_state", "submissions"))  # fmt: skip
        assert before["mentions of the address"]  # the scan below would see one left behind
        wrong = post(c, "/account/delete", confirm="someone@example.org")
        assert wrong.status_code == 422 and c.get("/api/me/library").json()  # nothing lost
        r = post(c, "/account/delete", confirm="gone@example.org")
        assert r.status_code == 200 and "account is deleted" in r.text
        assert c.get("/account", follow_redirects=False).status_code == 303
    after = _rows_about(db, uid, "gone@example.org")
    assert set(after.values()) == {0}, after
    assert query(db, "SELECT count(*) FROM users") == [(0,)]
    assert query(db, "SELECT count(*) FROM submissions") == [(1,)]  # the paper stays listed
