"""Helpers for tests that run on either backend (the ``db`` fixture in conftest.py, and the
test modules' own database fixtures made with ``private_copy``)."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from contextlib import contextmanager
from pathlib import Path

__all__ = ["BACKENDS", "is_pg", "rows", "query", "execute", "private_copy", "pg_clone",
           "sqlite_backup"]

# The test ids' [sqlite] / [postgres]: every database fixture is parametrised with these.
BACKENDS = ["sqlite", "postgres"]

# Session-wide PostgreSQL twins of SQLite template files, built once by `paperfeed copy`'s
# code: (template path, server port) -> database URL (nobody connects to it; tests clone it).
_TWINS: dict[tuple[str, int], str] = {}


def is_pg(db) -> bool:
    """The ``db`` fixture's value names a PostgreSQL database."""
    return str(db).startswith(("postgresql://", "postgres://"))


def rows(store, sql: str, params=()) -> list[tuple]:
    """Run one query (SQLite's dialect; on PostgreSQL it is translated like the store's own)
    and fetch every row: for tests that look at tables directly on either backend."""
    with store._read() as conn:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]


@contextmanager
def _store(db):
    from paperfeed.store import open_store

    store = open_store(str(db), migrate=False)
    try:
        yield store
    finally:
        store.close()


def query(db, sql: str, params=()) -> list[tuple]:
    """``rows`` on a database named as the ``db`` setting names one (path or URL): what a
    test did with ``sqlite3.connect(db).execute(...).fetchall()``, on either backend."""
    with _store(db) as store:
        return rows(store, sql, params)


def execute(db, sql: str, params=()) -> int:
    """One statement written and committed on either backend (tests planting a state the
    product would take long to reach: an expired token, a row from the past). Returns the
    rows changed."""
    with _store(db) as store, store._write() as conn:
        return conn.execute(sql, params).rowcount


def sqlite_backup(src: Path, dst: Path) -> Path:
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    a.backup(b)
    a.close()
    b.close()
    return dst


def pg_clone(pg_server, url: str) -> str:
    """A new database on the test server copied from the one at ``url`` (which nobody may be
    connected to): a prepared database per test in a fraction of a second."""
    import psycopg

    src = url.rsplit("/", 1)[1]
    name = "t_" + uuid.uuid4().hex[:16]
    with pg_server._lock, psycopg.connect(pg_server.admin_url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name} TEMPLATE {src}")
    return pg_server.url(name)


def pg_twin(pg_server, template: Path) -> str:
    """The session's PostgreSQL database holding everything ``template`` (a SQLite file)
    holds, copied once with `paperfeed copy`'s code (papers, readers, embeddings...)."""
    from paperfeed.store.copy import copy_database

    key = (str(template), pg_server.port)
    if key not in _TWINS:
        url = pg_server.new_database()
        copy_database(str(template), url)
        _TWINS[key] = url
    return _TWINS[key]


def private_copy(request, template: Path, tmp_path: Path):
    """This test's own copy of a prepared SQLite ``template`` on the backend the fixture is
    parametrised with (``request.param``): a Path to a SQLite file (with a copy of its
    keyword index folder), or the URL of a fresh PostgreSQL clone of the template's twin."""
    if request.param == "sqlite":
        dst = sqlite_backup(template, tmp_path / "papers.db")
        index = Path(str(template) + ".index")
        if index.is_dir():
            shutil.copytree(index, Path(str(dst) + ".index"))
        return dst
    pg_server = request.getfixturevalue("pg_server")
    url = pg_clone(pg_server, pg_twin(pg_server, template))
    request.addfinalizer(lambda: pg_server.drop_database(url))
    return url
