"""`paperfeed copy`: a whole database between backends, run as a user runs it (the real CLI in
a subprocess) on a SQLite file filled through the store's own API with a row in every table,
and a real PostgreSQL database. Checked table by table against the source, not only by the
command's own counts: SQLite -> PostgreSQL -> SQLite ends byte-identical, a copy killed with
SIGKILL midway goes on and ends identical, identity ids continue after the copied ones, and a
target that is neither empty nor an interrupted copy of the same source is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from paperfeed.errors import StoreError
from paperfeed.importer import import_files, sample_path
from paperfeed.models import Paper
from paperfeed.store import open_store
from paperfeed.store.base import HarvestState
from paperfeed.store.copy import SKIPPED, TABLES, copy_database, schema_tables
from tests.db_support import is_pg, rows


def fill(db: str, extra_papers: int = 0) -> None:
    """A row in every table, each written the way the feature that owns it writes it."""
    s = open_store(db)
    try:
        import_files(s, [sample_path()])
        for start in range(0, extra_papers, 500):
            s.upsert_papers([
                Paper(id=f"2601.{i:05d}", title=f"Synthetic paper {i} with ünïcode",
                      abstract="Words " * (i % 40), authors=[f"Author {i % 97}", f"Ébert {i % 13}",
                                                             "Shared Name"],
                      categories=["cs.LG", "stat.ML"] if i % 2 else ["cs.CL"],
                      published="2026-01-01T00:00:00Z", version=1 + i % 3, doi=f"10.1/{i}" if i % 5 == 0 else None)
                for i in range(start, min(start + 500, extra_papers))
            ])  # fmt: skip
        pks = [pk for (pk,) in rows(s, "SELECT pk FROM papers ORDER BY pk")]
        ids = [i for (i,) in rows(s, "SELECT id FROM papers ORDER BY pk LIMIT 5")]
        s.put_embeddings("model-a", 4, [(pk, 1, bytes([pk % 256]) * 8, bytes(range(16)))
                                         for pk in pks], checkpoint=("embed:model-a", 7))  # fmt: skip
        s.set_checkpoint("keyword", 3)
        st = HarvestState(name="arxiv-oai:cs:oai_dc", params={"set": "cs"}, token="tok",
                          window_from="2026-06-01", started_at="2026-06-01T00:00:00Z")  # fmt: skip
        s.save_harvest_page(st, [Paper(id="2606.77777", title="Harvested", authors=["H. Arvest"],
                                       published="2026-06-02T00:00:00Z", version=1)])  # fmt: skip
        s.record_harvest_outcome("hf-daily", "HTTP 503")
        alice, _ = s.get_or_create_user("alice@example.org")
        bob, _ = s.get_or_create_user("Bob@Example.org")
        s.delete_user(s.get_or_create_user("gone@example.org")[0].id)  # a gap in the ids
        carol, _ = s.get_or_create_user("carol@example.org")
        s.add_vote(ids[0], alice.id)
        s.toggle_vote(bob.id, ids[1])
        s.add_submission(ids[2], "local", alice.id)
        s.create_session(alice.id, "session-secret-value", 30)
        s.use_token("nonce-1", "login", time.time() + 3600)
        s.throttle_hit("login:addr:alice@example.org", 5, 3600)
        s.throttle_hit("login:addr:alice@example.org", 5, 3600)
        s.mark_shown(bob.id, pks[:3], via="web")
        s.save_paper(alice.id, ids[0], note="read this", tags=["ml", "to-read"])
        s.save_paper(bob.id, ids[3])
        s.rate_paper(alice.id, ids[1], -1)
        s.follow(alice.id, "author", "shared name", "Shared Name")
        s.follow(alice.id, "category", "cs.LG", "cs.LG")
        s.add_saved_search(alice.id, "graph neural networks")
        s.create_api_token(alice.id, "api", "api-token-value", "laptop")
        s.create_api_token(bob.id, "feed", "feed-token-value")
        s.put_reader_models(alice.id, [("", "model-a", 1, b"\x00\x01\x02\x03", pks[:2])])
        s.subscribe("dave@example.org")  # pending
        s.confirm_subscription(s.subscribe("carol@example.org")[0].id)
        s.activate_subscription(alice.id)
        d = s.create_digest(True, max(pks))
        s.queue_digest_mail(d, max(pks), [
            (carol.id, carol.email, "<m1@example.org>", b"From: x\r\n\r\nbody \xff", pks[:2], "2026-06-14"),
            (alice.id, alice.email, "<m2@example.org>", b"From: y\r\n\r\nbody", pks[2:4], "2026-06-14"),
        ])  # fmt: skip
        row = s.claim_outbox("host:1")
        s.outbox_sent(row.id)
    finally:
        s.close()


def dump(db: str) -> dict[str, list[tuple]]:
    """Every copied table, rows in key order, columns by name (bytes as bytes)."""
    s = open_store(db)
    try:
        out = {}
        for name, key in TABLES:
            cols = sorted(schema_tables(s)[name])
            order = ", ".join(key or cols)
            out[name] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                         for r in rows(s, f"SELECT {', '.join(cols)} FROM {name} ORDER BY {order}")]
        return out
    finally:
        s.close()


def _copy(cwd, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env["PAPERFEED_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run([sys.executable, "-m", "paperfeed", "copy", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("copy") / "source.db")
    fill(path)
    return path


def test_every_table_of_the_schema_is_copied(db):
    """A table added by a migration and not listed in store/copy.py's TABLES fails here (and
    stops `paperfeed copy` before it writes anything)."""
    s = open_store(db)
    try:
        tables = set(schema_tables(s)) - SKIPPED
    finally:
        s.close()
    assert tables == {name for name, _ in TABLES}


def test_the_test_source_has_rows_in_every_table(source):
    empty = [name for name, got in dump(source).items() if not got]
    assert empty == []


def test_sqlite_to_postgres_and_back_is_identical(source, pg_url, tmp_path):
    proc = _copy(tmp_path, "--from", source, "--to", pg_url, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    want = dump(source)
    assert {t: v["rows"] for t, v in report["tables"].items()} == {t: len(r) for t, r in want.items()}
    assert report["papers_checksum"]["source"] == report["papers_checksum"]["target"]
    assert not report["resumed"] and "***" not in pg_url
    assert dump(pg_url) == want
    # Identity columns go on after the copied ids: new rows get fresh ones.
    s = open_store(pg_url)
    try:
        (top_user, top_search, top_digest), = rows(
            s, "SELECT (SELECT max(id) FROM users), (SELECT max(id) FROM saved_searches), "
            "(SELECT max(id) FROM digests)")
        erin, new = s.get_or_create_user("erin@example.org")
        assert new and erin.id == top_user + 1
        assert s.add_saved_search(erin.id, "new search").id == top_search + 1
        assert s.create_digest(False, 0) == top_digest + 1
        s.delete_user(erin.id)
        with s._write() as conn:
            conn.execute("DELETE FROM digests WHERE id > ?", (top_digest,))
    finally:
        s.close()
    # ... and back to a new SQLite file: the same rows as the file we started from.
    back = str(tmp_path / "back.db")
    proc = _copy(tmp_path, "--from", pg_url, "--to", back)
    assert proc.returncode == 0, proc.stderr
    assert "copy complete: 28 tables" in proc.stdout and "papers checksum" in proc.stdout
    assert dump(back) == want


def test_sqlite_to_sqlite_and_a_second_run_only_checks(source, tmp_path):
    target = str(tmp_path / "copy.db")
    first = _copy(tmp_path, "--from", source, "--to", target)
    assert first.returncode == 0, first.stderr
    assert dump(target) == dump(source)
    again = _copy(tmp_path, "--from", source, "--to", target, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["already_done"] and sum(t["copied_now"] for t in report["tables"].values()) == 0


def test_refuses_a_target_that_is_not_empty_or_copies_another_source(source, db, tmp_path):
    s = open_store(db)
    try:
        s.get_or_create_user("someone@example.org")
    finally:
        s.close()
    proc = _copy(tmp_path, "--from", source, "--to", db)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is not empty (table users has 1 rows)" in proc.stderr
    # A target holding a (finished) copy of another database.
    other = str(tmp_path / "other.db")
    fill(other)
    target = str(tmp_path / "t.db")
    copy_database(other, target)
    with pytest.raises(StoreError, match="holds a copy from .*other.db, not from .*source.db"):
        copy_database(source, target)
    same = _copy(tmp_path, "--from", source, "--to", source)
    assert same.returncode == 2 and "same database" in same.stderr


@pytest.mark.parametrize("direction", ["sqlite->postgres", "postgres->sqlite"])
def test_killed_midway_it_goes_on_and_ends_identical(direction, pg_url, tmp_path):
    sqlite_db = str(tmp_path / "big.db")
    if direction == "sqlite->postgres":
        src, dst = sqlite_db, pg_url
        fill(src, extra_papers=3000)
    else:
        src, dst = pg_url, sqlite_db
        staging = str(tmp_path / "staging.db")
        fill(staging, extra_papers=3000)
        copy_database(staging, pg_url)
    want = dump(src)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env["PAPERFEED_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperfeed", "copy", "--from", src, "--to", dst, "--batch", "25"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # Kill it once the papers are in and the authors are on their way.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            progress = _progress(dst)
            if progress.get("papers", (0, False))[1] and progress.get("paper_authors", (0, 0))[0] > 0:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the copy finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    progress = _progress(dst)
    assert not progress[""][1]  # not done
    authors_so_far = progress["paper_authors"][0]
    assert 0 < authors_so_far < len(want["paper_authors"])
    assert len(dump(dst)["paper_authors"]) == authors_so_far  # batches and progress agree
    rerun = _copy(tmp_path, "--from", src, "--to", dst, "--batch", "500", "--json")
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["resumed"]
    assert report["tables"]["papers"]["copied_now"] == 0  # done before the kill: not redone
    assert report["tables"]["paper_authors"]["copied_now"] == len(want["paper_authors"]) - authors_so_far
    assert dump(dst) == want


def _progress(db: str) -> dict[str, tuple[int, bool]]:
    if not is_pg(db) and not os.path.exists(db):
        return {}
    s = open_store(db, migrate=False) if is_pg(db) else None
    try:
        if s is None:
            import sqlite3

            con = sqlite3.connect(db, timeout=10)
            try:
                got = con.execute("SELECT tbl, rows, done FROM copy_progress").fetchall()
            except sqlite3.OperationalError:  # not created yet
                return {}
            finally:
                con.close()
        else:
            got = rows(s, "SELECT tbl, rows, done FROM copy_progress")
        return {t: (n, bool(d)) for t, n, d in got}
    finally:
        if s is not None:
            s.close()
