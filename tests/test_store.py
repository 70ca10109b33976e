"""The store on both backends: migrations, upsert semantics (added/updated/unchanged), version
replacement, merging sources, concurrent writers; SQLite's file itself: pages, WAL, crash
safety of a bulk import, clear errors for a bad path or a corrupt file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import Cli
from tests.db_support import is_pg, query, rows
from paperfeed.models import Paper
from paperfeed.store import open_store
from paperfeed.store.migrations import MIGRATIONS
from paperfeed.store.pg_migrations import PG_MIGRATIONS


def paper(pid="2401.00001", version=1, **kw) -> Paper:
    base = dict(
        id=pid,
        title="A title",
        abstract="An abstract.",
        authors=["Ada Lovelace", "Charles Babbage"],
        categories=["cs.LG", "stat.ML"],
        version=version,
        published="2024-01-01T00:00:00Z",
        updated=f"2024-01-0{version}T00:00:00Z",
        links={"abs": f"https://arxiv.org/abs/{pid}"},
        source="arxiv-api",
    )
    base.update(kw)
    return Paper(**base)


def test_migrations_are_recorded_and_idempotent(db):
    s = open_store(db)
    assert s.migrate() == []  # already applied by open_store
    names = [r[0] for r in rows(s, "SELECT name FROM schema_migrations ORDER BY name")]
    steps = PG_MIGRATIONS if is_pg(db) else MIGRATIONS
    assert names == sorted(name for name, _ in steps)
    s.close()


def test_new_sqlite_file_is_wal_with_16k_pages(db_path):
    # SQLite-only: journal mode and page size are properties of the SQLite file.
    s = open_store(str(db_path))
    mode = s.conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert s.conn.execute("PRAGMA page_size").fetchone()[0] == 16384  # new files only
    s.close()


def test_a_database_made_with_other_pages_keeps_them_and_works(db_path):
    # SQLite-only: page size is a property of the SQLite file.
    # Files made before 16 KB pages were the default (or by another tool) are used as they are.
    c = sqlite3.connect(db_path)
    c.execute("PRAGMA page_size = 4096")
    c.execute("CREATE TABLE t (x)")
    c.close()
    s = open_store(str(db_path))
    assert s.conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert s.upsert_papers([paper()]).added == 1
    assert s.integrity_ok()
    s.close()


def test_add_then_unchanged_then_new_version_replaces(db):
    s = open_store(db)
    r = s.upsert_papers([paper(), paper("2401.00002")])
    assert (r.added, r.updated, r.unchanged) == (2, 0, 0)
    r = s.upsert_papers([paper(), paper("2401.00002")])
    assert (r.added, r.updated, r.unchanged) == (0, 0, 2)
    rev_before = s.max_rev()
    r = s.upsert_papers([paper(version=2, title="A better title", authors=["Ada Lovelace"])])
    assert (r.added, r.updated, r.unchanged) == (0, 1, 0)
    got = s.get_paper("2401.00001")
    assert got.paper.version == 2
    assert got.paper.title == "A better title"
    assert got.paper.authors == ["Ada Lovelace"]
    assert got.paper.published == "2024-01-01T00:00:00Z"
    assert got.paper.updated == "2024-01-02T00:00:00Z"
    assert got.rev > rev_before
    # side table follows the new author list
    keys = [r[0] for r in rows(s, "SELECT key FROM paper_authors WHERE paper_pk=? ORDER BY pos", (got.pk,))]
    assert keys == ["ada lovelace"]
    # an older version arriving later does not roll the paper back
    r = s.upsert_papers([paper(version=1)])
    assert (r.added, r.updated, r.unchanged) == (0, 0, 1)
    assert s.get_paper("2401.00001").paper.title == "A better title"
    s.close()


def test_versionless_source_fills_gaps_but_never_overwrites(db):
    s = open_store(db)
    s.upsert_papers([paper(doi=None)])
    hf = Paper(
        id="2401.00001",
        title="HF's copy of the title",
        abstract="HF summary",
        authors=["Someone Else"],
        doi="10.1/x",
        links={"hf": "https://huggingface.co/papers/2401.00001"},
        source="hf-daily",
        upvotes=7,
        num_comments=2,
        listed_on="2024-01-03",
    )
    r = s.upsert_papers([hf])
    assert r.updated == 1
    got = s.get_paper("2401.00001")
    assert got.paper.title == "A title"  # arXiv's metadata kept
    assert got.paper.authors == ["Ada Lovelace", "Charles Babbage"]
    assert got.paper.doi == "10.1/x"  # gap filled
    assert set(got.paper.links) == {"abs", "hf"}
    assert got.sources == ["arxiv-api", "hf-daily"]
    assert got.listings == [{"day": "2024-01-03", "upvotes": 7, "num_comments": 2, "fields": {}}]
    # the same listing again: unchanged; more upvotes: updated
    assert s.upsert_papers([hf]).unchanged == 1
    hf.upvotes = 9
    assert s.upsert_papers([hf]).updated == 1
    assert s.get_paper("2401.00001").listings[0]["upvotes"] == 9
    s.close()


def test_same_paper_twice_in_one_batch_keeps_newest(db):
    s = open_store(db)
    r = s.upsert_papers([paper(version=2, title="v2"), paper(version=1, title="v1")])
    assert r.added == 1
    assert s.get_paper("2401.00001").paper.title == "v2"
    s.close()


def test_stats_counts(db):
    s = open_store(db)
    s.upsert_papers(
        [paper("2401.00001"), paper("2401.00002", categories=["hep-th"]), paper("x:1", source="beir", categories=[])]
    )
    st = s.stats()
    assert st["papers"] == 3
    assert st["by_category"] == {"cs.LG": 1, "hep-th": 1, "stat.ML": 1}
    assert st["by_primary_archive"] == {"(none)": 1, "cs": 1, "hep-th": 1}
    assert st["by_source"] == {"arxiv-api": 2, "beir": 1}
    s.close()


def test_iter_changed_follows_revisions(db):
    s = open_store(db)
    s.upsert_papers([paper("2401.00001"), paper("2401.00002")])
    rev = s.max_rev()
    s.upsert_papers([paper("2401.00003")])
    changed = [sp.paper.id for b in s.iter_changed(rev, batch=1) for sp in b]
    assert changed == ["2401.00003"]
    all_ids = [sp.paper.id for b in s.iter_changed(0) for sp in b]
    assert all_ids == ["2401.00001", "2401.00002", "2401.00003"]
    s.close()


def _count_papers(db) -> int:
    """Papers committed so far, read while another process imports (0 before it has begun)."""
    if not is_pg(db) and not os.path.exists(db):
        return 0
    try:
        return query(db, "SELECT count(*) FROM papers")[0][0]
    except Exception:  # the importer is still creating the file and its schema
        return 0


def test_kill_9_mid_import_leaves_db_consistent_and_rerun_completes(tmp_path, import_bench, cli):
    data = tmp_path / "big.jsonl"
    n = 60_000
    import_bench.generate(data, n)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env["PAPERFEED_DB"] = str(cli.db)
    env["PAPERFEED_IMPORT_BATCH"] = "1000"
    proc = subprocess.Popen([sys.executable, "-m", "paperfeed", "import", str(data)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Wait until some batches have landed, then kill without warning.
    deadline = time.time() + 60
    landed = 0
    while time.time() < deadline and landed < 5000:
        time.sleep(0.05)
        landed = _count_papers(cli.db)
    assert proc.poll() is None, "import finished before it could be killed; raise n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    s = open_store(str(cli.db))
    assert s.integrity_ok()
    partial = rows(s, "SELECT count(*) FROM papers")[0][0]
    # batches are atomic: whole batches only, and side tables match the papers written
    assert 0 < partial < n and partial % 1000 == 0
    orphans = rows(
        s, "SELECT count(*) FROM paper_authors WHERE paper_pk NOT IN (SELECT pk FROM papers)"
    )[0][0]
    assert orphans == 0
    authors = rows(s, "SELECT count(*) FROM paper_authors")[0][0]
    assert authors == sum(len(json.loads(a)) for (a,) in rows(s, "SELECT authors FROM papers"))
    if not is_pg(cli.db):
        # SQLite's bulk import drops the by-name author index for a file this big...
        indexes = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "paper_authors_key" not in indexes
    s.close()
    proc2, out = cli.json("import", str(data))
    assert proc2.returncode == 0
    assert out["added"] == n - partial and out["unchanged"] == partial
    s = open_store(str(cli.db))
    assert s.stats()["papers"] == n
    assert s.integrity_ok()
    if not is_pg(cli.db):
        # ...and it is whole again once an import has finished.
        assert s.conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'paper_authors_key'"
        ).fetchone()[0] == 1
    s.close()


def test_big_batches_with_awkward_text_round_trip(db):
    """Large batches take PostgreSQL's COPY path: text with tabs, newlines, backslashes, a
    literal \\N, quotes and non-BMP characters comes back exactly, side rows included, and
    the same batch again is unchanged."""
    awkward = ["tab\there", "new\nline", "back\\slash", "\\N", "quote ' and \"", "emoji 🧪 ∂x"]
    papers = [
        paper(f"2401.{i:05d}", title=f"{awkward[i % len(awkward)]} #{i}",
              abstract=awkward[(i + 1) % len(awkward)] * 3,
              authors=[f"{awkward[i % len(awkward)]} Author", "Plain Name"],
              categories=["cs.LG", "math.ST"])
        for i in range(1, 201)
    ]
    s = open_store(db)
    r = s.upsert_papers(papers)
    assert r.added == 200
    for p in papers[::37]:
        got = s.get_paper(p.id).paper
        assert (got.title, got.abstract, got.authors, got.categories) == (
            p.title, p.abstract, p.authors, p.categories)
    assert rows(s, "SELECT count(*) FROM paper_authors")[0][0] == 400
    assert rows(s, "SELECT count(*) FROM paper_categories")[0][0] == 400
    again = s.upsert_papers(papers)
    assert again.added == 0 and again.unchanged == 200
    s.close()


def test_concurrent_writers_never_fail_with_locked(tmp_path, import_bench, db):
    files = []
    for i in range(4):
        f = tmp_path / f"part{i}.jsonl"
        import_bench.generate(f, 4000, seed=i)
        files.append(f)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env["PAPERFEED_DB"] = db
    env["PAPERFEED_IMPORT_BATCH"] = "200"  # many small transactions interleave
    procs = [
        subprocess.Popen([sys.executable, "-m", "paperfeed", "import", "--json", str(f)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for f in files
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "locked" not in err
    s = open_store(db)
    # the generator reuses ids across seeds, so the union is what matters: 4000 distinct ids
    assert s.stats()["papers"] == 4000
    assert s.integrity_ok()
    s.close()


def test_bad_db_path_is_a_clear_error(tmp_path):
    # SQLite-only: a file path (an unreachable server is test_cli's concern).
    cli = Cli(tmp_path / "no" / "such" / "dir" / "x.db", tmp_path)
    proc = cli("stats")
    assert proc.returncode == 2
    assert "cannot open database" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("text", ["not a database at all" * 100])
def test_corrupt_file_is_a_clear_error(tmp_path, text):
    # SQLite-only: a corrupt file.
    cli = Cli(tmp_path / "papers.db", tmp_path)
    cli.db.write_text(text)
    proc = cli("stats")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(cli.db) in proc.stderr


def test_versionless_record_with_later_date_is_authoritative(db):
    """OAI-PMH records carry dates but no version: a later-dated one replaces the metadata."""
    s = open_store(db)
    s.upsert_papers([paper(version=None, updated="2024-01-01", title="Old title", source="arxiv-oai")])
    r = s.upsert_papers([paper(version=None, updated="2024-02-01", title="New title", source="arxiv-oai")])
    assert r.updated == 1
    assert s.get_paper("2401.00001").paper.title == "New title"
    r = s.upsert_papers([paper(version=None, updated="2023-12-01", title="Older", source="arxiv-oai")])
    assert s.get_paper("2401.00001").paper.title == "New title"
    s.close()
