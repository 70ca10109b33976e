"""Two real `paperfeed serve` processes on one PostgreSQL database, as behind a load balancer:
what a reader does through one (a vote, a save, signing in) is what the other shows at once,
with no cache or restart in between. Readers sign in through the real link flow and post with
the pages' CSRF tokens, as a browser does."""

from __future__ import annotations

import httpx
import pytest

from paperfeed.importer import import_files, sample_path
from paperfeed.store import open_store
from tests.readers_support import csrf_of, sign_in
from tests.web_support import MATH_ID, PLANTED, Served, settings_for

PAPER = MATH_ID  # planted, no votes


@pytest.fixture
def two_servers(pg_url, tmp_path):
    s = open_store(pg_url)
    try:
        import_files(s, [sample_path()])
        s.upsert_papers(PLANTED)
    finally:
        s.close()
    # Search on PostgreSQL keeps its index in a folder of its own (none beside a URL).
    env = {"PAPERFEED_INDEX_DIR": str(tmp_path / "index"), "PAPERFEED_LIBRARY_FETCH_ARXIV": "false"}
    servers = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            servers.append(Served(pg_url, tmp_path / "cache", tmp_path / name, **env))
        yield pg_url, settings_for(pg_url, tmp_path / "cache", **env), servers
    finally:
        for srv in servers:
            srv.stop()


def _post(c: httpx.Client, path: str, **data) -> httpx.Response:
    return c.post(path, data={"csrf": csrf_of(c), **data}, follow_redirects=False)


def test_a_vote_or_save_through_one_process_shows_in_the_other_at_once(two_servers):
    url, settings, (a, b) = two_servers
    assert a.proc.pid != b.proc.pid and a.url != b.url
    with httpx.Client(base_url=a.url, timeout=30) as ca, httpx.Client(base_url=b.url, timeout=30) as cb:
        before = cb.get(f"/api/papers/{PAPER}").json()["votes"]
        sign_in(ca, settings, "ada@example.org")
        # The session made through A is a row in the shared database: B knows the reader too.
        cb.cookies.update(ca.cookies)
        assert cb.get("/api/me").json()["email"] == "ada@example.org"

        r = _post(ca, "/vote", paper=PAPER, next="/")
        assert r.status_code == 303, r.text
        assert cb.get(f"/api/papers/{PAPER}").json()["votes"] == before + 1
        page = cb.get(f"/papers/{PAPER}")
        assert page.status_code == 200
        assert 'class="vote voted" aria-pressed="true"' in page.text  # B shows A's vote as hers

        r = _post(ca, "/save", paper=PAPER, next="/")
        assert r.status_code == 303, r.text
        assert [i["id"] for i in cb.get("/api/me/library").json()] == [PAPER]

        # The other way round, and a second reader: B's writes show on A.
        with httpx.Client(base_url=b.url, timeout=30) as cb2:
            sign_in(cb2, settings, "grace@example.org")
            assert _post(cb2, "/vote", paper=PAPER, next="/").status_code == 303
        assert ca.get(f"/api/papers/{PAPER}").json()["votes"] == before + 2
        assert _post(cb, "/save", paper=PAPER, next="/", action="unsave").status_code == 303
        assert ca.get("/api/me/library").json() == []
        assert _post(cb, "/vote", paper=PAPER, next="/").status_code == 303  # taken back
        assert ca.get(f"/api/papers/{PAPER}").json()["votes"] == before + 1
        assert 'class="vote voted"' not in ca.get(f"/papers/{PAPER}").text
