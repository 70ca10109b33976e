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
from pathlib import Path
from typing import Iterator

from ..errors import StoreError
from .base import Store
from .migrations import DEFERRED_INDEXES, apply_migrations
from .sql_digest import DigestMixin
from .sql_feed import FeedMixin
from .sql_harvest import HarvestMixin
from .sql_library import LibraryMixin
from .sql_papers import PapersMixin
from .sql_readers import ReadersMixin
from .sql_vectors import VectorsMixin

__all__ = ["SQLiteStore", "BULK_MIN_PAPERS"]

_CACHE_SIZE = -131072  # KiB: 128 MB

# Imports expected to bring fewer papers than this keep every index up to date as they go.
BULK_MIN_PAPERS = 50_000

def _bulk_lock(db_path: str, suffix: str = "-bulk.lock"):
    """The open lock file beside the database, or None where there can be none (no fcntl, an
    in-memory database, a folder we cannot write: then indexes are simply never deferred)."""
    if fcntl is None or db_path in ("", ":memory:") or db_path.startswith("file:"):
        return None
    try:
        return open(db_path + suffix, "a+b")
    except OSError:
        return None


class SQLiteStore(
    DigestMixin, LibraryMixin, ReadersMixin, VectorsMixin, HarvestMixin, FeedMixin, PapersMixin,
    Store,
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

    def applied_migrations(self) -> list[str]:
        from .migrations import applied_migrations

        with self._lock:
            return applied_migrations(self.conn)

    def harvest_lock(self):
        """Store.harvest_lock: an exclusive flock on ``<db>-harvest.lock`` beside the file (the
        kernel drops it when the process dies). Where no lock file can be made, True."""
        return self._try_flock("-harvest.lock")

    def digest_queue_lock(self):
        """Store.digest_queue_lock: the same, on ``<db>-digest.lock``."""
        return self._try_flock("-digest.lock")

    @contextmanager
    def _try_flock(self, suffix: str) -> Iterator[bool]:
        lock = _bulk_lock(self.path, suffix)
        if lock is None:
            yield True
            return
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            lock.close()

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
    def _read(self):
        """The connection, for queries (the shared one; threads take turns)."""
        with self._lock:
            yield self.conn

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

    def integrity_ok(self) -> bool:
        with self._lock:
            return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
