"""The default backend: one SQLite file in WAL mode.

Why these settings: WAL lets readers (the web app) run while one writer imports;
``synchronous=NORMAL`` is durable across application crashes in WAL mode and much faster
than FULL; ``busy_timeout`` makes a second writer wait instead of failing with "database is
locked"; every write transaction starts with BEGIN IMMEDIATE so two writers never deadlock
upgrading a read lock.
"""

from __future__ import annotations

import sqlite3
import threading

try:
    import fcntl
except ImportError:  # Windows: no bulk-import locks, so indexes are never deferred there
    fcntl = None  # type: ignore[assignment]
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import orjson

from ..errors import StoreError
from ..models import Paper
from .base import (
    PaperRow,
    Store,
    StoredPaper,
    UpsertResult,
    content_hash,
    dedupe_rows,
    merge_papers,
    prepare_paper,
)
from .migrations import DEFERRED_INDEXES, apply_migrations
from .sqlite_digest import DigestMixin
from .sqlite_feed import FeedMixin
from .sqlite_harvest import HarvestMixin
from .sqlite_library import LibraryMixin
from .sqlite_readers import ReadersMixin
from .sqlite_vectors import VectorsMixin

__all__ = ["SQLiteStore", "BULK_MIN_PAPERS"]

_CACHE_SIZE = -131072  # KiB: 128 MB

# Imports expected to bring fewer papers than this keep every index up to date as they go.
BULK_MIN_PAPERS = 50_000

_COLS = (
    "pk, id, version, title, abstract, authors, categories, primary_category, published, "
    "updated, doi, journal_ref, comments, links, sources, added_at, rev, withdrawn"
)


def _bulk_lock(db_path: str):
    """The open lock file beside the database, or None where there can be none (no fcntl, an
    in-memory database, a folder we cannot write: then indexes are simply never deferred)."""
    if fcntl is None or db_path in ("", ":memory:") or db_path.startswith("file:"):
        return None
    try:
        return open(db_path + "-bulk.lock", "a+b")
    except OSError:
        return None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SQLiteStore(
    DigestMixin, LibraryMixin, ReadersMixin, VectorsMixin, HarvestMixin, FeedMixin, Store
):
    """Papers live here; each feature's queries live in its own mixin module beside it."""

    def __init__(self, path: str | Path, busy_timeout: float = 60.0, readonly: bool = False):
        self.path = str(path)
        try:
            if readonly:
                uri = Path(self.path).resolve().as_uri() + "?mode=ro"
                self.conn = sqlite3.connect(
                    uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
                )
            else:
                self.conn = sqlite3.connect(
                    self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
                )
            # Pragmas (see module docstring). isolation_level=None: we issue BEGIN ourselves.
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            # Only takes effect on a new, empty file. A paper row is about 2 KB: 16 KB pages
            # hold several, and a bulk import writes 40% fewer WAL frames than with 4 KB.
            self.conn.execute("PRAGMA page_size = 16384")
            if not readonly:
                self._enable_wal(busy_timeout)
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            # Bulk imports touch index pages all over the author and id B-trees: a bigger page
            # cache and fewer, larger checkpoints (each one fsyncs) measurably speed them up.
            self.conn.execute(f"PRAGMA cache_size = {_CACHE_SIZE}")
            self.conn.execute("PRAGMA wal_autocheckpoint = 8192")  # pages: about 32 MB of WAL
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open database {self.path}: {e}") from None
        # One connection may be shared by threads (the web app); serialise its use.
        self._lock = threading.RLock()

    def _enable_wal(self, busy_timeout: float) -> None:
        """Switch a new database to WAL. The switch needs an exclusive lock and SQLite does
        not always wait for it (several processes creating one file at once get "database is
        locked" at once), so retry here until busy_timeout."""
        if self.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    # --- lifecycle -----------------------------------------------------------------------
    def migrate(self) -> list[str]:
        with self._lock:
            try:
                applied = apply_migrations(self.conn)
                self._restore_deferred_indexes()  # after a bulk import that was killed
                return applied
            except sqlite3.DatabaseError as e:
                raise StoreError(f"cannot prepare database {self.path}: {e}") from None

    # --- bulk imports --------------------------------------------------------------------
    @contextmanager
    def bulk_import(self, expected: int) -> Iterator[bool]:
        """Store.bulk_import. When ``expected`` papers are many next to those stored, the
        author-name index is dropped for the import and built again, sorted, at its end: about
        3 s for 3.5 million author rows, where keeping it up to date cost 18 s.

        Every bulk import holds a shared lock on ``<db>-bulk.lock`` while it runs. The index
        is rebuilt only by whoever can take that lock exclusively, so an import never has its
        index rebuilt under it. A killed import's lock dies with it, and the next open rebuilds
        the index."""
        lock = _bulk_lock(self.path) if self._worth_deferring(expected) else None
        if lock is None:
            yield False
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_SH)
            with self._write() as conn:
                for name, _ in DEFERRED_INDEXES:
                    conn.execute(f"DROP INDEX IF EXISTS {name}")
            yield True
        finally:
            lock.close()  # releases the shared lock
            self._restore_deferred_indexes()

    def _worth_deferring(self, expected: int) -> bool:
        # Rebuilding costs about a fifth of what upkeep does per row, over all rows, old ones
        # included; so defer only when the import is large next to what is stored.
        with self._lock:
            stored = self.conn.execute("SELECT coalesce(max(pk), 0) FROM papers").fetchone()[0]
        return expected >= max(BULK_MIN_PAPERS, stored // 4)

    def _restore_deferred_indexes(self) -> None:
        with self._lock:
            present = {
                r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            }
            missing = [sql for name, sql in DEFERRED_INDEXES if name not in present]
            if not missing:
                return
            lock = _bulk_lock(self.path)
            try:
                if lock is not None:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                return  # a bulk import is running; it rebuilds them when it ends
            try:
                # The sort behind CREATE INDEX may take as much memory as the page cache. A
                # smaller cache for the build keeps a bulk import's peak where it was: for 3.5M
                # author rows, 2.6 s and +23 MB of peak RSS, where 128 MB took 3.1 s and +119 MB.
                self.conn.execute("PRAGMA cache_size = -32768")
                with self._write() as conn:
                    for sql in missing:
                        conn.execute(sql)
            finally:
                self.conn.execute(f"PRAGMA cache_size = {_CACHE_SIZE}")
                if lock is not None:
                    lock.close()

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    @contextmanager
    def _write(self):
        """One write transaction; the lock is taken up front (BEGIN IMMEDIATE)."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # --- papers --------------------------------------------------------------------------
    def upsert_rows(self, rows: list[PaperRow]) -> UpsertResult:
        if not rows:
            return UpsertResult()
        batch = dedupe_rows(rows)
        with self._write() as conn:
            return self._upsert_in_txn(conn, batch)

    def _upsert_in_txn(
        self,
        conn: sqlite3.Connection,
        batch: dict[str, PaperRow],
        prefer: dict[str, bool] | None = None,
    ) -> UpsertResult:
        """The body of upsert_rows, for callers that add their own writes to the same
        transaction (a harvest page and its checkpoint land together or not at all).
        ``prefer``: paper id -> merge_papers' ``prefer_new`` (OAI-PMH datestamps decide)."""
        result = UpsertResult()
        existing = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT id, pk, content_hash, sources FROM papers "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (orjson.dumps(list(batch)).decode(),),
            )
        }
        rev = conn.execute("SELECT coalesce(max(rev), 0) + 1 FROM papers").fetchone()[0]
        inserts, updates, listings = [], [], []
        for pid, r in batch.items():
            ex = existing.get(pid)
            if ex is None:
                inserts.append(r)
                result.added += 1
                continue
            pk, old_hash, old_sources = ex
            sources = old_sources.split()
            if r.source and r.source not in sources:
                sources = sorted(sources + [r.source])
            own = [r.source] if r.source else []
            h = r.content_hash if sources == own else content_hash(r.to_paper(), sources)
            changed = False
            if h != old_hash:
                # Slow path: the incoming record differs from what is stored; merge them
                # and write only if the merged record differs from the stored one.
                old = self._row_to_paper(
                    conn.execute(f"SELECT {_COLS} FROM papers WHERE pk = ?", (pk,)).fetchone()
                )
                merged = merge_papers(old.paper, r.to_paper(), (prefer or {}).get(pid))
                h = content_hash(merged, sources)
                if h != old_hash:
                    updates.append((pk, prepare_paper(merged), sources, h, old.paper))
                    changed = True
            if r.listed_on and self._listing_changed(conn, pk, r):
                listings.append((pk, r))
                changed = True
            if changed:
                result.updated += 1
            else:
                result.unchanged += 1
        if inserts:
            self._insert(conn, inserts, _now(), rev)
        for pk, merged, sources, h, old_paper in updates:
            self._update(conn, pk, merged, sources, h, rev, old_paper)
        self._write_listings(conn, listings)
        return result

    @staticmethod
    def _listing_changed(conn: sqlite3.Connection, pk: int, r: PaperRow) -> bool:
        row = conn.execute(
            "SELECT upvotes, num_comments, fields FROM hf_listings WHERE paper_pk = ? AND day = ?",
            (pk, r.listed_on),
        ).fetchone()
        return row != (r.upvotes or 0, r.num_comments or 0, r.hf)

    @staticmethod
    def _write_listings(conn, listings: list[tuple[int, PaperRow]]) -> None:
        if listings:
            conn.executemany(
                "INSERT INTO hf_listings (paper_pk, day, upvotes, num_comments, fields) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (paper_pk, day) DO UPDATE SET "
                "upvotes = excluded.upvotes, num_comments = excluded.num_comments, "
                "fields = excluded.fields",
                [(pk, r.listed_on, r.upvotes or 0, r.num_comments or 0, r.hf) for pk, r in listings],
            )

    def _insert(self, conn, rows: list[PaperRow], now: str, rev: int) -> None:
        # We hold the write lock, so the next free keys are ours: no read-back query needed.
        first = conn.execute("SELECT coalesce(max(pk), 0) + 1 FROM papers").fetchone()[0]
        tail = (now, rev)
        # A PaperRow starts with the papers columns in this statement's order; a new paper's
        # ``sources`` is its own source.
        conn.executemany(
            "INSERT INTO papers (id, version, title, abstract, authors, categories, "
            "primary_category, published, updated, doi, journal_ref, comments, links, sources, "
            "content_hash, pk, added_at, rev) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [r[:15] + (pk,) + tail for pk, r in enumerate(rows, first)],
        )
        items = list(enumerate(rows, first))
        self._write_side_tables(conn, items)
        self._write_listings(conn, [(pk, r) for pk, r in items if r.listed_on])

    def _update(
        self, conn, pk: int, r: PaperRow, sources: list[str], h: bytes, rev: int, old: Paper
    ) -> None:
        conn.execute(
            "UPDATE papers SET version=?, title=?, abstract=?, authors=?, categories=?, "
            "primary_category=?, published=?, updated=?, doi=?, journal_ref=?, comments=?, "
            "links=?, sources=?, content_hash=?, rev=? WHERE pk=?",
            r[1:13] + (" ".join(sources), h, rev, pk),
        )
        # The side tables are keyed by name/category first: delete by the old record's values.
        conn.execute("DELETE FROM paper_authors WHERE paper_pk = ?", (pk,))
        conn.executemany(
            "DELETE FROM paper_categories WHERE category = ? AND paper_pk = ?",
            [(c, pk) for c in set(old.categories)],
        )
        self._write_side_tables(conn, [(pk, r)])

    @staticmethod
    def _write_side_tables(conn, items: list[tuple[int, PaperRow]]) -> None:
        conn.executemany(
            "INSERT INTO paper_authors (paper_pk, pos, key, name) VALUES (?, ?, ?, ?)",
            [
                (pk, i, key, name)
                for pk, r in items
                for i, (key, name) in enumerate(zip(r.author_keys, r.author_names))
            ],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO paper_categories (category, paper_pk) VALUES (?, ?)",
            [(c, pk) for pk, r in items for c in r.categories.split()],
        )

    # --- reading -------------------------------------------------------------------------
    @staticmethod
    def _row_to_paper(row) -> StoredPaper:
        (pk, pid, version, title, abstract, authors, cats, primary, published, updated, doi,
         jref, comments, links, sources, added_at, rev, withdrawn) = row  # fmt: skip
        paper = Paper(
            id=pid,
            title=title,
            abstract=abstract,
            authors=orjson.loads(authors),
            categories=cats.split(),
            primary_category=primary,
            version=version,
            published=published,
            updated=updated,
            doi=doi,
            journal_ref=jref,
            comments=comments,
            links=orjson.loads(links),
            source=sources.split()[0] if sources else "",
        )
        return StoredPaper(
            pk=pk, paper=paper, sources=sources.split(), added_at=added_at, rev=rev,
            withdrawn=bool(withdrawn),
        )  # fmt: skip

    def _with_listings(self, papers: dict[int, StoredPaper]) -> dict[int, StoredPaper]:
        if papers:
            for pk, day, up, nc, hf in self.conn.execute(
                "SELECT paper_pk, day, upvotes, num_comments, fields FROM hf_listings "
                "WHERE paper_pk IN (SELECT value FROM json_each(?)) ORDER BY day",
                (orjson.dumps(list(papers)).decode(),),
            ):
                papers[pk].listings.append(
                    {"day": day, "upvotes": up, "num_comments": nc, "fields": orjson.loads(hf)}
                )
        return papers

    def get_paper(self, paper_id: str) -> StoredPaper | None:
        with self._lock:
            row = self.conn.execute(f"SELECT {_COLS} FROM papers WHERE id = ?", (paper_id,)).fetchone()
            if row is None:
                return None
            sp = self._row_to_paper(row)
            return self._with_listings({sp.pk: sp})[sp.pk]

    def get_papers_by_pk(self, pks: list[int]) -> dict[int, StoredPaper]:
        with self._lock:
            rows = self.conn.execute(
                f"SELECT {_COLS} FROM papers WHERE pk IN (SELECT value FROM json_each(?))",
                (orjson.dumps(list(pks)).decode(),),
            ).fetchall()
            return self._with_listings({r[0]: self._row_to_paper(r) for r in rows})

    def iter_changed(self, since_rev: int, batch: int = 1000) -> Iterator[list[StoredPaper]]:
        # Row-value paging: (rev, pk) strictly after (since_rev, +inf) means rev > since_rev.
        last_rev, last_pk = since_rev, 2**63 - 1
        while True:
            with self._lock:
                rows = self.conn.execute(
                    f"SELECT {_COLS} FROM papers WHERE (rev, pk) > (?, ?) ORDER BY rev, pk LIMIT ?",
                    (last_rev, last_pk, batch),
                ).fetchall()
            if not rows:
                return
            out = [self._row_to_paper(r) for r in rows]
            last_rev, last_pk = out[-1].rev, out[-1].pk
            yield out

    def max_rev(self) -> int:
        with self._lock:
            return self.conn.execute("SELECT coalesce(max(rev), 0) FROM papers").fetchone()[0]

    def stats(self) -> dict:
        with self._lock:
            c = self.conn
            total = c.execute("SELECT count(*) FROM papers").fetchone()[0]
            by_cat = dict(
                c.execute(
                    "SELECT category, count(*) FROM paper_categories GROUP BY category "
                    "ORDER BY count(*) DESC, category"
                ).fetchall()
            )
            by_primary: dict[str, int] = {}
            for prim, n in c.execute(
                "SELECT primary_category, count(*) FROM papers GROUP BY primary_category"
            ):
                arch = (prim or "(none)").split(".")[0]
                by_primary[arch] = by_primary.get(arch, 0) + n
            by_source: dict[str, int] = {}
            for sources, n in c.execute("SELECT sources, count(*) FROM papers GROUP BY sources"):
                for s in sources.split() or ["(unknown)"]:
                    by_source[s] = by_source.get(s, 0) + n
            listed = c.execute("SELECT count(DISTINCT paper_pk) FROM hf_listings").fetchone()[0]
        return {
            "papers": total,
            "by_primary_archive": dict(sorted(by_primary.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_category": by_cat,
            "by_source": dict(sorted(by_source.items(), key=lambda kv: (-kv[1], kv[0]))),
            "hf_listed": listed,
        }

    def integrity_ok(self) -> bool:
        with self._lock:
            return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
