"""The importer's parser process: same result as parsing in-process, bad input reported the
same way, and neither side left hanging when the other one dies."""

from __future__ import annotations

import gzip
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import paperfeed.importer as importer
from paperfeed.importer import import_files
from paperfeed.store import open_store
from tests.db_support import is_pg, query

DATA = Path(__file__).resolve().parent / "data"
SNAPSHOT = DATA / "arxiv-kaggle-snapshot-sample" / "arxiv-metadata-oai-snapshot.head200.jsonl"
HF = DATA / "hf-daily-papers" / "sotawhat_daily_papers_2026-06-12.json"


def _dump(db) -> dict:
    """Everything an import writes except the time it wrote it."""
    return {
        "papers": query(
            db,
            "SELECT pk, id, version, title, abstract, authors, categories, primary_category, "
            "published, updated, doi, journal_ref, comments, links, sources, content_hash, "
            "rev FROM papers ORDER BY pk",
        ),
        "authors": query(db, "SELECT * FROM paper_authors ORDER BY paper_pk, pos"),
        "categories": query(db, "SELECT * FROM paper_categories ORDER BY paper_pk, category"),
        "listings": query(db, "SELECT * FROM hf_listings ORDER BY paper_pk, day"),
    }


@pytest.fixture
def db_b(request, db, tmp_path):
    """A second empty database on ``db``'s backend."""
    if not is_pg(db):
        yield str(tmp_path / "b.db")
        return
    server = request.getfixturevalue("pg_server")
    url = server.new_database()
    yield url
    server.drop_database(url)


def _import(db, files, **kw):
    store = open_store(str(db))
    try:
        return import_files(store, files, **kw)
    finally:
        store.close()


def test_parser_process_writes_exactly_what_in_process_parsing_writes(tmp_path, db, db_b,
                                                                      import_bench):
    generated = tmp_path / "gen.jsonl"
    import_bench.generate(generated, 1500)
    files = [SNAPSHOT, generated, HF, SNAPSHOT]  # the last one again: all unchanged
    a = _import(db, files, batch_size=400, parser_process=True)
    b = _import(db_b, files, batch_size=400, parser_process=False)
    assert (a.added, a.updated, a.unchanged, a.rejected) == (b.added, b.updated, b.unchanged, b.rejected)
    assert (a.added, a.unchanged) == (200 + 1500 + 30, 200)  # the repeat changes nothing
    dump = _dump(db)
    assert dump == _dump(db_b)
    assert len(dump["papers"]) == a.added and len(dump["authors"]) > a.added


def test_parser_process_reports_bad_lines_where_they_are(tmp_path, db):
    good = SNAPSHOT.read_bytes().splitlines()[:30]
    lines = good[:10] + [b"{not json"] + good[10:20] + [b'{"id": "1234.5678"}'] + good[20:]
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    rep = _import(db, [f], batch_size=7, parser_process=True)
    assert rep.added == 30 and rep.rejected == 2
    assert [e.where for e in rep.errors] == [f"{f}:11", f"{f}:22"]
    assert "malformed JSON" in rep.errors[0].why and "missing title" in rep.errors[1].why


def test_parser_process_keeps_records_before_a_gzip_cut(tmp_path, db, import_bench):
    plain = tmp_path / "gen.jsonl"
    import_bench.generate(plain, 800)
    whole = gzip.compress(plain.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    rep = _import(db, [cut], batch_size=100, parser_process=True)
    assert 300 < rep.added < 800
    assert rep.errors[-1].why.startswith("truncated gzip")
    assert _dump(db)["papers"][-1][1] == f"{1501:04d}.{10000 + rep.added - 1:05d}"


def _dies_after(n: int):
    real = importer.iter_file

    def iter_file(path, fmt=None, limits=importer.DEFAULT_LIMITS):
        for i, rec in enumerate(real(path, fmt, limits)):
            if i == n:
                os._exit(3)  # the parser process dies without a word
            yield rec

    return iter_file


def test_parser_process_death_is_reported_and_finished_batches_stay(tmp_path, db, import_bench,
                                                                    monkeypatch):
    f = tmp_path / "gen.jsonl"
    import_bench.generate(f, 1000)
    # A forked child runs this module's patched iter_file (spawn would import it afresh).
    monkeypatch.setattr(importer, "_mp_context", lambda: multiprocessing.get_context("fork"))
    monkeypatch.setattr(importer, "iter_file", _dies_after(450))
    rep = _import(db, [f], batch_size=100, parser_process=True)
    assert rep.added == 400  # four whole batches were sent before it died
    assert rep.files_unreadable == 1
    assert "parser process stopped unexpectedly (exit code 3)" in rep.errors[-1].why
    s = open_store(db)
    assert s.stats()["papers"] == 400 and s.integrity_ok()
    s.close()


def test_parser_process_started_with_spawn(db, monkeypatch):
    # What runs when the importing process already has threads (fork would be unsafe).
    monkeypatch.setattr(importer, "_mp_context", lambda: multiprocessing.get_context("spawn"))
    rep = _import(db, [SNAPSHOT], batch_size=50, parser_process=True)
    assert rep.added == 200 and rep.rejected == 0


def test_large_files_get_a_parser_process_small_ones_do_not(db, monkeypatch):
    started = []
    real = importer._ParserProcess

    class Spy(real):
        def __init__(self, *a, **kw):
            started.append(a[0])
            super().__init__(*a, **kw)

    monkeypatch.setattr(importer, "_ParserProcess", Spy)
    monkeypatch.setattr(importer, "PARSER_PROCESS_MIN_BYTES", SNAPSHOT.stat().st_size)
    rep = _import(db, [HF, SNAPSHOT])
    assert started == [str(SNAPSHOT)]
    assert rep.added == 30 + 200 and rep.rejected == 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "zombie" not in state and "Z" not in state.split()[1]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_parser_process_exits_when_the_import_is_killed(tmp_path, db, import_bench):
    f = tmp_path / "big.jsonl"
    import_bench.generate(f, 40_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env["PAPERFEED_DB"] = db
    env["PAPERFEED_IMPORT_BATCH"] = "500"
    proc = subprocess.Popen([sys.executable, "-m", "paperfeed", "import", str(f)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    kids: list[int] = []
    while time.time() < deadline and not kids:
        time.sleep(0.05)
        kids = _children(proc.pid)
    assert kids, "the import started no parser process"
    time.sleep(0.5)
    assert proc.poll() is None, "import finished before it could be killed; raise n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(_running(k) for k in kids):
        time.sleep(0.05)
    alive = [k for k in kids if _running(k)]
    for k in alive:
        os.kill(k, signal.SIGKILL)
    assert not alive, "the parser process outlived the killed import"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_ctrl_c_stops_both_processes_quietly(tmp_path, db, import_bench):
    f = tmp_path / "big.jsonl"
    import_bench.generate(f, 40_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env["PAPERFEED_DB"] = db
    env["PAPERFEED_IMPORT_BATCH"] = "500"
    # Its own process group, as a terminal's foreground job; SIGINT at its default even if
    # whatever runs the tests ignores it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperfeed", "import", str(f)], env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    landed = 0
    while time.time() < deadline and landed < 2000:
        time.sleep(0.05)
        try:
            ((landed,),) = query(db, "SELECT count(*) FROM papers")
        except sqlite3.OperationalError:
            pass  # a SQLite file the import has not made its tables in yet
    kids = _children(proc.pid)
    assert kids and proc.poll() is None, "import finished before Ctrl-C; raise n"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err and "aborted" in err
    deadline = time.time() + 10
    while time.time() < deadline and any(_running(k) for k in kids):
        time.sleep(0.05)
    assert not any(_running(k) for k in kids)
    with open_store(db, migrate=False) as s:
        assert s.integrity_ok()
        assert s.stats()["papers"] % 500 == 0
