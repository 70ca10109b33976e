"""The PostgreSQL backend: the same store on a server database, for many processes on many
machines (``--db postgresql://user@host/dbname``).

The queries are the ones SQLite runs (the ``sql_*.py`` mixins), written in the SQL both
engines speak; ``pg_sql`` rewrites the little that differs (placeholders, ``INSERT OR
IGNORE``, ``json_each``, ``instr``) once per statement, and refuses anything SQLite-only, so a
query that would silently mean something else fails loudly in the tests instead.

Why the transactions look like this:

* Reads run on autocommit connections from a pool: each statement sees the latest commit
  (what another web process just wrote is visible at once) and no connection idles in a
  transaction.
* Every write transaction first takes one transaction-level advisory lock, so writers run
  one at a time as they do on SQLite (BEGIN IMMEDIATE). The shared code relies on that ("the
  next free pk", a throttle's count-then-insert) and stays correct under it. The lock is
  released at COMMIT or ROLLBACK, also when a process dies. Work that must scale out (digest
  senders claiming outbox rows) is written for PostgreSQL and skips it; see ``claim_outbox``.
* A process that holds a connection (a read, or a write) and asks for another in the same
  thread gets the same one, so nested helpers never wait on the pool for themselves.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import Iterator

from ..errors import StoreError
from .base import Store
from .pg_digest import PgDigestMixin
from .pg_migrations import PG_MIGRATIONS
from .pg_papers import PgPapersMixin
from .pg_search import PgSearchMixin
from .sql_digest import DigestMixin
from .sql_feed import FeedMixin
from .sql_harvest import HarvestMixin
from .sql_library import LibraryMixin
from .sql_papers import PapersMixin
from .sql_readers import ReadersMixin
from .sql_vectors import VectorsMixin

__all__ = ["PostgresStore", "pg_sql", "is_postgres_url", "WRITER_LOCK", "HARVEST_LOCK"]

# Advisory lock keys (one 64-bit namespace per database): arbitrary, fixed, documented.
WRITER_LOCK = 0x7066_0001  # every shared write transaction ("pf" 1)
MIGRATE_LOCK = 0x7066_0002  # applying migrations
HARVEST_LOCK = 0x7066_0003  # one `paperfeed run` harvester per database
DIGEST_QUEUE_LOCK = 0x7066_0004  # one process composing and queueing digests at a time


def is_postgres_url(db: str) -> bool:
    return db.startswith(("postgres://", "postgresql://"))


# --- the SQLite -> PostgreSQL rewrite ---------------------------------------------------------
_SQLITE_ONLY = re.compile(
    r"\b(INSERT\s+OR\s+REPLACE|PRAGMA|sqlite_master|rowid|julianday|strftime|group_concat|"
    r"WITHOUT\s+ROWID|BEGIN\s+IMMEDIATE)\b",
    re.IGNORECASE,
)
_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_JSON_EACH = re.compile(r"\bjson_each\((%s|%\(\w+\)s)\)")
# SQLite's planner hint "FROM papers p INDEXED BY papers_published": PostgreSQL's planner
# chooses by itself (the same indexes exist), so the hint is dropped.
_INDEXED_BY = re.compile(r"\s+INDEXED\s+BY\s+\w+", re.IGNORECASE)
_INSTR = re.compile(r"\binstr\(", re.IGNORECASE)


@lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """The statement in PostgreSQL's dialect (as psycopg takes it). Raises StoreError for a
    SQLite-only construct, naming it."""
    bad = _SQLITE_ONLY.search(_strip_literals(sql))
    if bad:
        raise StoreError(f"not portable to PostgreSQL: {bad.group(0)!r} in {sql[:120]!r}")
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":  # a literal or quoted identifier: copied, with % doubled for psycopg
            j = sql.find(c, i + 1)
            while j != -1 and j + 1 < n and sql[j + 1] == c:  # '' inside a literal
                j = sql.find(c, j + 2)
            if j == -1:
                raise StoreError(f"unterminated {c} in {sql[:120]!r}")
            out.append(sql[i : j + 1].replace("%", "%%"))
            i = j + 1
            continue
        if c == "?":
            out.append("%s")
        elif c == "%":
            out.append("%%")
        elif c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_") and (
            i == 0 or sql[i - 1] != ":"
        ):
            m = re.match(r"\w+", sql[i + 1 :])
            out.append(f"%({m.group(0)})s")
            i += 1 + len(m.group(0))
            continue
        else:
            out.append(c)
        i += 1
    q = "".join(out)
    if _OR_IGNORE.match(q):
        q = _OR_IGNORE.sub("INSERT INTO", q, count=1)
        m = _RETURNING.search(q)
        q = (q[: m.start()] + "ON CONFLICT DO NOTHING " + q[m.start() :]) if m else (
            q.rstrip() + " ON CONFLICT DO NOTHING"
        )
    # json_each(?) of SQLite: the elements of a JSON array, as rows of one column ``value``.
    q = _JSON_EACH.sub(r"json_array_elements_text(\1::json) AS j(value)", q)
    q = _INDEXED_BY.sub("", q)
    return _INSTR.sub("strpos(", q)


def _strip_literals(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def _params(params):
    # SQLite stores booleans as 0/1 in INTEGER columns; PostgreSQL would refuse to compare a
    # boolean with a bigint, so pass them as SQLite does.
    if isinstance(params, dict):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return [int(v) if isinstance(v, bool) else v for v in params]


class PgConnection:
    """What the shared mixins see as ``conn``: execute/executemany in SQLite's dialect."""

    __slots__ = ("raw", "writing")

    def __init__(self, raw):
        self.raw = raw
        self.writing = False  # inside a write transaction that holds the writer lock

    def execute(self, sql: str, params=()):
        return self.raw.execute(pg_sql(sql), _params(params))

    def executemany(self, sql: str, seq):
        cur = self.raw.cursor()
        cur.executemany(pg_sql(sql), [_params(p) for p in seq])
        return cur


class PostgresStore(
    PgPapersMixin,
    PgSearchMixin,
    PgDigestMixin,
    DigestMixin, LibraryMixin, ReadersMixin, VectorsMixin, HarvestMixin, FeedMixin, PapersMixin,
    Store,
):
    """One pool of connections per process; safe to share across threads."""

    def __init__(self, url: str, pool_size: int = 8, timeout: float = 60.0):
        try:
            import psycopg  # noqa: F401 - a clear message below when the driver is missing
            from psycopg_pool import ConnectionPool
        except ImportError as e:  # pragma: no cover - both are dependencies
            raise StoreError(f"the PostgreSQL backend needs psycopg 3 and psycopg-pool: {e}")
        self.url = url
        self.path = None  # no file: derived files (indexes, outbox) need their own folders
        self._local = threading.local()
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, int(pool_size)),
            kwargs={"autocommit": True},
            timeout=timeout,
            open=False,
            name="paperfeed",
        )
        try:
            self.pool.open(wait=True, timeout=min(timeout, 30.0))
        except Exception as e:  # noqa: BLE001 - psycopg_pool.PoolTimeout, OperationalError
            self.pool.close()
            raise StoreError(f"cannot connect to {redact_url(url)}: {_first_line(e)}") from None

    # --- connections ---------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[PgConnection]:
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        with self.pool.connection() as raw:
            conn = PgConnection(raw)
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[PgConnection]:
        """One transaction, writers serialised by the advisory lock (see the module's
        docstring). Nested in another write, it joins that transaction."""
        with self._read() as conn:
            if conn.writing:
                yield conn
                return
            with conn.raw.transaction():
                conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
                conn.writing = True
                try:
                    yield conn
                finally:
                    conn.writing = False

    @contextmanager
    def _transaction(self) -> Iterator[PgConnection]:
        """A transaction without the writer lock, for PostgreSQL-only code that coordinates
        through row locks instead (``FOR UPDATE SKIP LOCKED``)."""
        with self._read() as conn:
            with conn.raw.transaction():
                yield conn

    # --- lifecycle -----------------------------------------------------------------------
    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._read() as conn:
            raw = conn.raw
            raw.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                '(name TEXT COLLATE "C" PRIMARY KEY, applied_at TEXT NOT NULL)'
            )
            for name, sql in sorted(PG_MIGRATIONS):
                with raw.transaction():
                    # Two processes starting at once: one applies, the other waits and skips.
                    raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                    if raw.execute(
                        "SELECT 1 FROM schema_migrations WHERE name = %s", (name,)
                    ).fetchone():
                        continue
                    raw.execute(sql)
                    raw.execute(
                        "INSERT INTO schema_migrations (name, applied_at) VALUES (%s, %s)",
                        (name, datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")),
                    )
                applied.append(name)
        return applied

    def harvest_lock(self):
        """Store.harvest_lock: a session advisory lock on a connection of its own (not the
        pool's: it must stay open, and only this block may use it), held while the block
        runs. It is released when the block ends or the connection drops, so a killed
        harvester frees it at once; keepalives make a dead peer's lock go within minutes."""
        return self._try_session_lock(HARVEST_LOCK, "paperfeed run (harvest lock)")

    def digest_queue_lock(self):
        """Store.digest_queue_lock: the same, with its own key."""
        return self._try_session_lock(DIGEST_QUEUE_LOCK, "paperfeed (digest queue lock)")

    @contextmanager
    def _try_session_lock(self, key: int, what: str) -> Iterator[bool]:
        import psycopg

        try:
            conn = psycopg.connect(
                self.url, autocommit=True, application_name=what,
                keepalives=1, keepalives_idle=60, keepalives_interval=10, keepalives_count=6,
            )  # fmt: skip
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to {redact_url(self.url)}: {_first_line(e)}") from None
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
            yield bool(got)
        finally:
            conn.close()  # ends the session: the lock goes with it

    def applied_migrations(self) -> list[str]:
        with self._read() as conn:
            return [r[0] for r in conn.raw.execute("SELECT name FROM schema_migrations ORDER BY name")]

    @contextmanager
    def bulk_import(self, expected: int) -> Iterator[bool]:
        # PostgreSQL keeps every index current during an import (no deferral, as SQLite does).
        yield False

    def integrity_ok(self) -> bool:
        # The server guarantees its own pages; check the one invariant the shared code keeps.
        with self._read() as conn:
            return conn.execute("SELECT count(*) FROM papers WHERE rev < 0").fetchone()[0] == 0

    def close(self) -> None:
        self.pool.close()

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.url)!r})"


def redact_url(url: str) -> str:
    """The URL without its password (for messages and `paperfeed settings`)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
