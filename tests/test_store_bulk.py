"""Bulk imports: the by-name author index is dropped for a large import and rebuilt at its
end, never under another import, and after a killed one by the next open. Also the migration
that clustered author rows by paper.

SQLite-only: dropping and rebuilding an index around a bulk import is SQLite's way to a fast
import (PostgreSQL's store takes large batches by COPY instead, tested in test_store.py on
both backends)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import paperfeed.store.sqlite as sqlite_store
from paperfeed.importer import import_files
from paperfeed.models import Paper
from paperfeed.store import open_store
from paperfeed.store.migrations import MIGRATIONS, apply_migrations

INDEX = "paper_authors_key"


def _indexes(db: Path) -> set[str]:
    c = sqlite3.connect(db)
    try:
        return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        c.close()


def _paper(i: int, authors: list[str]) -> Paper:
    return Paper(id=f"2401.{i:05d}", title=f"Paper {i}", authors=authors, categories=["cs.LG"],
                 version=1, source="arxiv-api")


def _by_author(store, name_key: str) -> list[str]:
    rows = store.conn.execute(
        "SELECT p.id FROM paper_authors a JOIN papers p ON p.pk = a.paper_pk WHERE a.key = ? "
        "ORDER BY p.id", (name_key,),
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setattr(sqlite_store, "BULK_MIN_PAPERS", 10)


def test_bulk_import_drops_the_name_index_and_rebuilds_it(db_path, low_threshold):
    s = open_store(str(db_path))
    with s.bulk_import(expected=100):
        assert INDEX not in _indexes(db_path)
        s.upsert_papers([_paper(i, ["Ada Lovelace", f"Author {i}"]) for i in range(1, 60)])
        # Nothing is missing meanwhile; only the index is.
        assert len(_by_author(s, "ada lovelace")) == 59
    assert INDEX in _indexes(db_path)
    plan = s.conn.execute(
        "EXPLAIN QUERY PLAN SELECT paper_pk FROM paper_authors WHERE key = ?", ("x",)
    ).fetchall()
    assert INDEX in str(plan)
    assert _by_author(s, "author 7") == ["2401.00007"]
    assert s.integrity_ok()
    s.close()


def test_small_imports_next_to_a_big_store_keep_the_index(db_path, low_threshold):
    s = open_store(str(db_path))
    s.upsert_papers([_paper(i, ["A B"]) for i in range(1, 201)])
    with s.bulk_import(expected=40):  # under a quarter of what is stored: not worth it
        assert INDEX in _indexes(db_path)
    with s.bulk_import(expected=5):  # under the minimum
        assert INDEX in _indexes(db_path)
    s.close()


def test_an_index_is_never_rebuilt_under_a_running_bulk_import(db_path, low_threshold):
    a = open_store(str(db_path))
    with a.bulk_import(expected=100):
        a.upsert_papers([_paper(1, ["X Y"])])
        # Another process opening the database (the web app, a second import) leaves it be...
        b = open_store(str(db_path))
        assert INDEX not in _indexes(db_path)
        # ...and a second bulk import ending first does not rebuild it either.
        with b.bulk_import(expected=100):
            b.upsert_papers([_paper(2, ["X Y"])])
        assert INDEX not in _indexes(db_path)
        b.close()
    assert INDEX in _indexes(db_path)
    a.close()


def test_a_killed_bulk_import_leaves_the_index_to_the_next_open(db_path, low_threshold):
    s = open_store(str(db_path))
    s.upsert_papers([_paper(1, ["X Y"])])
    with s._write() as conn:  # what a killed import leaves: the index gone, no lock held
        conn.execute(f"DROP INDEX {INDEX}")
    s.close()
    assert INDEX not in _indexes(db_path)
    open_store(str(db_path)).close()
    assert INDEX in _indexes(db_path)


def test_large_file_import_defers_the_index_and_ends_with_it(tmp_path, import_bench, monkeypatch):
    f = tmp_path / "gen.jsonl"
    import_bench.generate(f, 3000)
    monkeypatch.setattr(sqlite_store, "BULK_MIN_PAPERS", 1000)
    dropped = []
    real = sqlite_store.SQLiteStore.upsert_rows

    def spy(self, rows):
        dropped.append(INDEX not in _indexes(Path(self.path)))
        return real(self, rows)

    monkeypatch.setattr(sqlite_store.SQLiteStore, "upsert_rows", spy)
    db = tmp_path / "p.db"
    s = open_store(str(db))
    rep = import_files(s, [f], batch_size=500, parser_process=True)
    assert rep.added == 3000 and dropped and all(dropped)
    assert INDEX in _indexes(db)
    n = s.conn.execute("SELECT count(*) FROM paper_authors").fetchone()[0]
    assert n == s.conn.execute(
        "SELECT sum(json_array_length(authors)) FROM papers"
    ).fetchone()[0]
    s.close()


def test_migration_clusters_existing_authors_by_paper(db_path):
    # A database as the first release left it: author rows keyed by name.
    c = sqlite3.connect(db_path, isolation_level=None)
    apply_migrations(c, [m for m in MIGRATIONS if m[0] == "0001_papers"])
    c.execute(
        "INSERT INTO papers (pk, id, title, content_hash, added_at, rev) "
        "VALUES (1, '2401.00001', 'T', x'00', '2024-01-01T00:00:00Z', 1)"
    )
    c.executemany(
        "INSERT INTO paper_authors (key, paper_pk, pos, name) VALUES (?, 1, ?, ?)",
        [("zoe a", 0, "Zoë A"), ("adam b", 1, "Adam B")],
    )
    c.close()
    s = open_store(str(db_path))
    rows = s.conn.execute("SELECT paper_pk, pos, key, name FROM paper_authors").fetchall()
    assert rows == [(1, 0, "zoe a", "Zoë A"), (1, 1, "adam b", "Adam B")]  # in paper order
    assert INDEX in _indexes(db_path) and _by_author(s, "adam b") == ["2401.00001"]
    assert s.integrity_ok()
    s.close()


def test_several_big_files_rebuild_the_index_once(tmp_path, import_bench, monkeypatch):
    files = []
    for i in range(2):
        f = tmp_path / f"gen{i}.jsonl"
        import_bench.generate(f, 1500, seed=i)
        files.append(f)
    monkeypatch.setattr(sqlite_store, "BULK_MIN_PAPERS", 1000)
    s = open_store(str(tmp_path / "p.db"))
    statements: list[str] = []
    s.conn.set_trace_callback(statements.append)
    rep = import_files(s, files, batch_size=500, parser_process=True)
    s.conn.set_trace_callback(None)
    assert rep.added == 1500  # the two files hold the same ids (the generator's)
    assert rep.unchanged + rep.updated == 1500
    assert sum(INDEX in q and q.startswith("DROP INDEX") for q in statements) == 1
    assert sum(INDEX in q and q.startswith("CREATE INDEX") for q in statements) == 1
    assert INDEX in _indexes(tmp_path / "p.db")
    s.close()


def test_the_wait_for_the_rebuild_is_announced(tmp_path, import_bench, monkeypatch, capsys):
    f = tmp_path / "gen.jsonl"
    import_bench.generate(f, 1500)
    s = open_store(str(tmp_path / "p.db"))
    import_files(s, [f], progress=True)  # under the minimum: nothing deferred, nothing said
    assert "Building the index" not in capsys.readouterr().err
    monkeypatch.setattr(sqlite_store, "BULK_MIN_PAPERS", 1000)
    s2 = open_store(str(tmp_path / "q.db"))
    import_files(s2, [f], progress=True)
    assert "Building the index of author names" in capsys.readouterr().err
    s.close()
    s2.close()
