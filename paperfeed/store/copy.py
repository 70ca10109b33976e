"""`paperfeed copy`: a whole database from one backend to another (SQLite -> PostgreSQL,
PostgreSQL -> SQLite, or between two of one kind), table by table, resumable.

How it stays correct:

* Every table of the schema is listed in ``TABLES`` with the key it is copied in the order
  of. A table the schema has and ``TABLES`` lacks stops the copy before anything is written
  (and fails a test), so a feature's new table can never be left behind silently. Columns
  are matched by name (the backends order some differently), generated columns left out.
* The source is read in ONE read transaction (a snapshot: PostgreSQL REPEATABLE READ, a
  SQLite read transaction), table by table in key order, streamed; the target is written in
  batches, each batch in one transaction together with its table's row in ``copy_progress``
  (migration 0601). A copy killed at any point has committed whole batches and exactly the
  progress that describes them: run again, each table goes on after its last key, and a
  table done is skipped. Tables go parents first, so the target's foreign keys always hold.
* The target must be empty, or hold an unfinished copy from the same source (its
  ``copy_progress`` says which); anything else is refused before a row is written.
* At the end the row count of every table and a checksum of the papers (every column, in pk
  order) are compared on both sides; only then is the copy marked done. A source written
  to between an interrupted copy and its resumption shows up here, not later.
* On PostgreSQL, identity columns were given explicit ids: their sequences are moved past
  the largest id, so the next row inserted gets a fresh one.

Stop the processes that write the source while it is copied (or accept that what they write
after the copy's snapshot stays behind, which the final check then reports).
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator

import orjson

from ..errors import InputError, StoreError
from . import open_store
from .base import Store
from .postgres import PgConnection, PostgresStore, is_postgres_url, pg_sql, redact_url

__all__ = ["TABLES", "SKIPPED", "CopyReport", "copy_database", "schema_tables", "papers_checksum"]

# Parents before children (foreign keys hold after every batch). The key orders a table's
# rows and says where an interrupted copy goes on; None: the table has no unique key and is
# copied whole in one transaction (it is small by design).
TABLES: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("papers", ("pk",)),
    ("paper_authors", ("paper_pk", "pos")),
    ("paper_categories", ("category", "paper_pk")),
    ("hf_listings", ("paper_pk", "day")),
    ("embedding_models", ("id",)),
    ("embeddings", ("model", "paper_pk")),
    ("search_checkpoints", ("name",)),
    ("harvest_state", ("name",)),
    ("harvest_sources", ("source",)),
    ("users", ("id",)),
    ("votes", ("paper_pk", "user_id")),
    ("submissions", ("paper_pk",)),
    ("sessions", ("id_hash",)),
    ("used_tokens", ("nonce",)),
    ("throttle", None),  # recent rate-limit hits: a few rows per key, no unique key
    ("shown_papers", ("user_id", "paper_pk")),
    ("library", ("user_id", "paper_pk")),
    ("library_tags", ("user_id", "paper_pk", "tag")),
    ("ratings", ("user_id", "paper_pk")),
    ("follows", ("user_id", "kind", "key")),
    ("saved_searches", ("id",)),
    ("api_tokens", ("id",)),
    ("reader_state", ("user_id",)),
    ("reader_models", ("user_id", "interest")),
    ("counters", ("name",)),
    ("digest_subscriptions", ("user_id",)),
    ("digests", ("id",)),
    ("outbox", ("id",)),
)
# Bookkeeping each database keeps for itself: never copied.
SKIPPED = frozenset({"schema_migrations", "copy_progress"})

BATCH = 2000  # rows per target transaction


@dataclass
class TableCopy:
    name: str
    source_rows: int = 0
    target_rows: int = 0
    copied_now: int = 0


@dataclass
class CopyReport:
    source: str
    target: str
    resumed: bool = False  # an earlier, interrupted copy was continued
    already_done: bool = False  # the target held a finished copy from this source already
    tables: list[TableCopy] = field(default_factory=list)
    source_checksum: str = ""
    target_checksum: str = ""

    @property
    def copied_now(self) -> int:
        return sum(t.copied_now for t in self.tables)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "target": self.target,
            "resumed": self.resumed,
            "already_done": self.already_done,
            "tables": {t.name: {"rows": t.source_rows, "target_rows": t.target_rows,
                                "copied_now": t.copied_now} for t in self.tables},  # fmt: skip
            "papers_checksum": {"source": self.source_checksum, "target": self.target_checksum},
            "complete": True,
        }


def describe(db: str) -> str:
    """How a database is named in copy_progress and messages: a resolved file path, or the
    URL without its password."""
    return redact_url(db) if is_postgres_url(db) else os.path.realpath(db)


# --- reading: one snapshot, streamed ----------------------------------------------------------
class _Reader:
    """Queries on a store inside one read transaction."""

    def __init__(self, store: Store, conn):
        self.pg = isinstance(store, PostgresStore)
        self.conn = conn
        self._n = 0

    def one(self, sql: str, params=()) -> tuple:
        return tuple(self.conn.execute(sql, params).fetchone())

    def stream(self, sql: str, params, batch: int) -> Iterator[list[tuple]]:
        if self.pg:
            # A server-side cursor: the table is never held in this process's memory whole.
            self._n += 1
            cur = self.conn.raw.cursor(name=f"pf_copy_{self._n}")
            try:
                cur.execute(pg_sql(sql), list(params))
                while rows := cur.fetchmany(batch):
                    yield [tuple(r) for r in rows]
            finally:
                cur.close()
        else:
            cur = self.conn.execute(sql, params)
            while rows := cur.fetchmany(batch):
                yield [tuple(r) for r in rows]


@contextmanager
def _snapshot(store: Store) -> Iterator[_Reader]:
    with store._read() as conn:
        if isinstance(store, PostgresStore):
            with conn.raw.transaction():
                conn.raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield _Reader(store, conn)
        else:
            conn.execute("BEGIN")  # deferred: a read transaction, the snapshot of its first read
            try:
                yield _Reader(store, conn)
            finally:
                conn.execute("COMMIT")


# --- the schema ----------------------------------------------------------------------------------
def schema_tables(store: Store) -> dict[str, list[str]]:
    """Every table of the database and its columns (generated ones left out), by name."""
    with store._read() as conn:
        if isinstance(store, PostgresStore):
            rows = conn.raw.execute(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
                "AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
                "WHERE c.table_schema = current_schema() AND c.is_generated = 'NEVER' "
                "ORDER BY c.table_name, c.ordinal_position"
            ).fetchall()
            out: dict[str, list[str]] = {}
            for t, c in rows:
                out.setdefault(t, []).append(c)
            return out
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )]  # fmt: skip
        # table_xinfo's ``hidden``: 0 a stored column, 2 and 3 generated ones.
        return {n: [r[1] for r in conn.execute(f'PRAGMA table_xinfo("{n}")') if r[6] == 0]
                for n in names}  # fmt: skip


@dataclass
class _Table:
    name: str
    key: tuple[str, ...] | None
    columns: list[str]  # the key's columns first, then the rest in name order


def _plan(src: Store, dst: Store) -> list[_Table]:
    a, b = schema_tables(src), schema_tables(dst)
    known = {name for name, _ in TABLES}
    unknown = sorted((set(a) | set(b)) - known - SKIPPED)
    if unknown:
        raise StoreError(
            f"paperfeed copy does not know the table(s) {', '.join(unknown)}: "
            "add them to TABLES in paperfeed/store/copy.py"
        )
    plan = []
    for name, key in TABLES:
        for side, tables in (("source", a), ("target", b)):
            if name not in tables:
                raise StoreError(f"the {side} database has no table {name}: is it migrated?")
        if set(a[name]) != set(b[name]):
            only_a, only_b = sorted(set(a[name]) - set(b[name])), sorted(set(b[name]) - set(a[name]))
            raise StoreError(
                f"table {name} differs: only in the source {only_a}, only in the target {only_b}"
            )
        rest = sorted(set(a[name]) - set(key or ()))
        plan.append(_Table(name, key, [*(key or ()), *rest]))
    return plan


# --- progress in the target ----------------------------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _progress(dst: Store) -> dict[str, tuple]:
    with dst._read() as conn:
        rows = conn.execute("SELECT tbl, source, last_key, rows, done FROM copy_progress").fetchall()
    return {r[0]: (r[1], orjson.loads(r[2]) if r[2] else None, r[3], bool(r[4])) for r in rows}


_SAVE = (
    "INSERT INTO copy_progress (tbl, source, last_key, rows, done, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tbl) DO UPDATE SET source = excluded.source, "
    "last_key = excluded.last_key, rows = excluded.rows, done = excluded.done, "
    "updated_at = excluded.updated_at"
)


def _save(conn, tbl: str, source: str, last_key, rows: int, done: bool) -> None:
    key = orjson.dumps(list(last_key)).decode() if last_key is not None else None
    conn.execute(_SAVE, (tbl, source, key, int(rows), int(done), _now()))


def _count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- the copy ------------------------------------------------------------------------------------
def _after(key: tuple[str, ...], last: list | None) -> tuple[str, list]:
    """The WHERE clause for rows after ``last`` in key order (row values: both engines)."""
    if last is None:
        return "", []
    if len(key) == 1:
        return f" WHERE {key[0]} > ?", list(last)
    return f" WHERE ({', '.join(key)}) > ({', '.join('?' for _ in key)})", list(last)


def _insert(conn, t: _Table, insert: str, rows: list[tuple]) -> None:
    if isinstance(conn, PgConnection):
        # COPY: a 20k-paper SQLite database went over at 58k rows/s, against 35k with the
        # (pipelined) executemany INSERT.
        with conn.raw.cursor().copy(f"COPY {t.name} ({', '.join(t.columns)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)
    else:
        conn.executemany(insert, rows)


def _copy_table(reader: _Reader, dst: Store, t: _Table, source: str, state, batch: int,
                bar) -> int:  # fmt: skip
    last, done_rows = (state[1], state[2]) if state else (None, 0)
    cols = ", ".join(t.columns)
    insert = f"INSERT INTO {t.name} ({cols}) VALUES ({', '.join('?' for _ in t.columns)})"
    copied = 0
    if t.key is None:  # whole, in one transaction: redone from the start if interrupted
        rows = [r for part in reader.stream(f"SELECT {cols} FROM {t.name}", (), batch) for r in part]
        with dst._write() as conn:
            conn.execute(f"DELETE FROM {t.name}")
            if rows:
                _insert(conn, t, insert, rows)
            _save(conn, t.name, source, None, len(rows), True)
        bar(len(rows))
        return len(rows)
    where, params = _after(t.key, last)
    order = ", ".join(t.key)
    sql = f"SELECT {cols} FROM {t.name}{where} ORDER BY {order}"
    nkey = len(t.key)
    for rows in reader.stream(sql, params, batch):
        last = rows[-1][:nkey]
        copied += len(rows)
        with dst._write() as conn:
            _insert(conn, t, insert, rows)
            _save(conn, t.name, source, last, done_rows + copied, False)
        bar(len(rows))
    with dst._write() as conn:
        _save(conn, t.name, source, last, done_rows + copied, True)
    return copied


def _reset_identities(dst: Store) -> None:
    """PostgreSQL: move each identity column's sequence past the largest id copied."""
    if not isinstance(dst, PostgresStore):
        return  # SQLite's INTEGER PRIMARY KEY takes max(id) + 1 by itself
    from psycopg import sql

    with dst._read() as conn:
        cols = conn.raw.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_identity = 'YES'"
        ).fetchall()
        for table, col in cols:
            conn.raw.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({t}, {c}), "
                    "coalesce((SELECT max({ci}) FROM {ti}), 0) + 1, false)"
                ).format(t=sql.Literal(table), c=sql.Literal(col), ci=sql.Identifier(col),
                         ti=sql.Identifier(table))  # fmt: skip
            )


def papers_checksum(reader: _Reader, columns: list[str], batch: int = BATCH) -> str:
    """BLAKE2b of every column of every paper, in pk order (bytes as hex): equal on both
    sides of a copy exactly when the papers are."""
    h = hashlib.blake2b(digest_size=16)
    cols = sorted(columns)
    for rows in reader.stream(f"SELECT {', '.join(cols)} FROM papers ORDER BY pk", (), batch):
        for r in rows:
            h.update(orjson.dumps(r, default=_hex))
            h.update(b"\n")
    return h.hexdigest()


def _hex(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    raise TypeError(type(v).__name__)


def copy_database(
    source: str,
    target: str,
    batch: int = BATCH,
    busy_timeout: float = 60.0,
    pool_size: int = 4,
    progress: bool = False,
    on_table: Callable[[TableCopy], None] | None = None,
) -> CopyReport:
    """Copy every table of ``source`` into ``target`` (both as the ``db`` setting names a
    database; a SQLite target file is created), calling ``on_table`` as each table is done. Resumes an interrupted copy from the same
    source; raises StoreError for a target that is neither empty nor that, and when the
    finished copy does not match its source."""
    from tqdm import tqdm

    src_name, dst_name = describe(source), describe(target)
    if src_name == dst_name:
        raise InputError(f"source and target are the same database: {src_name}")
    if not is_postgres_url(source) and not os.path.isfile(source):
        raise InputError(f"no database file {source}")
    report = CopyReport(src_name, dst_name)
    src = open_store(source, busy_timeout=busy_timeout, pool_size=pool_size)
    try:
        dst = open_store(target, busy_timeout=busy_timeout, pool_size=pool_size)
    except BaseException:
        src.close()
        raise
    try:
        plan = _plan(src, dst)
        state = _progress(dst)
        meta = state.get("")
        if meta is None:
            with dst._read() as conn:
                full = [(t.name, n) for t in plan if (n := _count(conn, t.name))]
            if full:
                name, n = full[0]
                raise StoreError(
                    f"the target {dst_name} is not empty (table {name} has {n} rows): copy into "
                    "an empty database, or into one where a copy from this same source was "
                    "interrupted"
                )
            with dst._write() as conn:
                _save(conn, "", src_name, None, 0, False)
        elif meta[0] != src_name:
            raise StoreError(
                f"the target {dst_name} holds a copy from {meta[0]}, not from {src_name}"
            )
        else:
            report.resumed = not meta[3]
            report.already_done = meta[3]
        papers_cols = next(t.columns for t in plan if t.name == "papers")
        with _snapshot(src) as reader:
            counts = {t.name: reader.one(f"SELECT count(*) FROM {t.name}")[0] for t in plan}
            expected = counts["papers"] + counts["paper_authors"]
            with dst.bulk_import(expected if not report.already_done else 0):
                for t in plan:
                    tc = TableCopy(t.name, counts[t.name])
                    st = state.get(t.name)
                    if not (st and st[3]):
                        with tqdm(total=counts[t.name], initial=st[2] if st else 0,
                                  desc=t.name, unit=" rows", disable=not progress,
                                  leave=False) as bar:  # fmt: skip
                            tc.copied_now = _copy_table(reader, dst, t, src_name, st, batch,
                                                        bar.update)  # fmt: skip
                    report.tables.append(tc)
                    if on_table:
                        on_table(tc)
            report.source_checksum = papers_checksum(reader, papers_cols, batch)
        _reset_identities(dst)
        with _snapshot(dst) as reader:
            for tc in report.tables:
                tc.target_rows = reader.one(f"SELECT count(*) FROM {tc.name}")[0]
            report.target_checksum = papers_checksum(reader, papers_cols, batch)
        wrong = [t for t in report.tables if t.source_rows != t.target_rows]
        if wrong or report.source_checksum != report.target_checksum:
            what = ", ".join(f"{t.name} {t.source_rows} in the source, {t.target_rows} in the "
                             "target" for t in wrong) or "the papers' checksums differ"  # fmt: skip
            why = (
                "it was finished before: the source or the target was written to since"
                if report.already_done
                else "was the source written to while it was copied?"
            )
            raise StoreError(
                f"the copy does not match its source ({what}); {why} Copy again into an empty "
                "database with the source's writers stopped"
            )
        with dst._write() as conn:
            _save(conn, "", src_name, None, sum(t.target_rows for t in report.tables), True)
        return report
    finally:
        dst.close()
        src.close()
