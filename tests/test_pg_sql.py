"""The SQLite -> PostgreSQL rewrite the shared query mixins go through (store/postgres.py
``pg_sql``): what it translates, what it refuses, and that every statement the shared mixins
hold is one it accepts; then the translated statements run on a real server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from paperfeed.errors import StoreError
from paperfeed.store import open_store
from paperfeed.store.postgres import pg_sql
from tests.db_support import rows

STORE = Path(__file__).resolve().parents[1] / "paperfeed" / "store"


@pytest.mark.parametrize("sqlite, postgres", [
    ("SELECT id FROM papers WHERE pk = ?", "SELECT id FROM papers WHERE pk = %s"),
    ("UPDATE t SET a = :a WHERE b = :b_2", "UPDATE t SET a = %(a)s WHERE b = %(b_2)s"),
    # '?', ':x' and '%' inside literals are text, not placeholders; % is doubled for psycopg
    ("SELECT 'a?b:c', title FROM p WHERE title LIKE '%x%' AND id = ?",
     "SELECT 'a?b:c', title FROM p WHERE title LIKE '%%x%%' AND id = %s"),
    ("SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , %s"),
    ("SELECT x::text FROM t", "SELECT x::text FROM t"),  # a cast is not a named parameter
    ("SELECT a % 2 FROM t", "SELECT a %% 2 FROM t"),
    ("INSERT OR IGNORE INTO follows (a, b) VALUES (?, ?)",
     "INSERT INTO follows (a, b) VALUES (%s, %s) ON CONFLICT DO NOTHING"),
    ("INSERT OR IGNORE INTO t (a) VALUES (?) RETURNING id",
     "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING RETURNING id"),
    ("SELECT CAST(value AS BIGINT) FROM json_each(?)",
     "SELECT CAST(value AS BIGINT) FROM json_array_elements_text(%s::json) AS j(value)"),
    ("SELECT instr(title, ?) FROM p", "SELECT strpos(title, %s) FROM p"),
])
def test_rewrite(sqlite, postgres):
    assert pg_sql(sqlite) == postgres


@pytest.mark.parametrize("sql", [
    "INSERT OR REPLACE INTO t VALUES (?)",
    "PRAGMA journal_mode",
    "SELECT rowid FROM papers",
    "SELECT name FROM sqlite_master",
    "SELECT strftime('%s', 'now')",
    "SELECT group_concat(id) FROM papers",
    "BEGIN IMMEDIATE",
])
def test_sqlite_only_constructs_are_refused_by_name(sql):
    with pytest.raises(StoreError, match="not portable to PostgreSQL"):
        pg_sql(sql)


def test_an_unterminated_literal_is_a_store_error():
    with pytest.raises(StoreError, match="unterminated"):
        pg_sql("SELECT 'oops FROM t")


def test_words_inside_literals_are_not_refused():
    assert pg_sql("SELECT 'rowid and PRAGMA are words' AS note") == \
        "SELECT 'rowid and PRAGMA are words' AS note"


def _sql_literals(path: Path) -> list[str]:
    """String constants in a module that are SQL statements (the shared mixins build theirs
    from literals, sometimes joined from pieces: those pieces are checked one by one)."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            head = node.value.lstrip().split(" ", 1)[0]  # upper case: SQL, not a docstring
            if head in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
                out.append(node.value)
    return out


@pytest.mark.parametrize("module", sorted(p.name for p in STORE.glob("sql_*.py")))
def test_every_shared_statement_is_portable(module):
    statements = _sql_literals(STORE / module)
    assert statements, f"no SQL found in {module}: the scan is broken"
    for sql in statements:
        pg_sql(sql)  # raises StoreError naming the construct


def test_translated_statements_run_on_postgresql(pg_url):
    s = open_store(pg_url)
    try:
        with s._write() as conn:
            conn.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, label TEXT, flag BIGINT)")
            conn.executemany("INSERT OR IGNORE INTO t (id, label, flag) VALUES (?, ?, ?)",
                             [(1, "50% off?", True), (2, "it's :named", False), (1, "dup", True)])
            got = conn.execute(
                "INSERT OR IGNORE INTO t (id, label, flag) VALUES (?, ?, ?) RETURNING id",
                (2, "again", False)).fetchall()
            assert got == []  # a conflict inserts nothing and returns nothing
        assert rows(s, "SELECT id, label, flag FROM t ORDER BY id") == [
            (1, "50% off?", 1), (2, "it's :named", 0)]
        assert rows(s, "SELECT id FROM t WHERE label LIKE '%off%'") == [(1,)]
        assert rows(s, "SELECT id FROM t WHERE flag = :f", {"f": True}) == [(1,)]
        assert rows(s, "SELECT id FROM t WHERE id IN (SELECT CAST(value AS BIGINT) FROM "
                       "json_each(?)) ORDER BY id", ("[2, 1, 7]",)) == [(1,), (2,)]
        assert rows(s, "SELECT instr(label, 'off') FROM t WHERE id = 1") == [(5,)]
    finally:
        s.close()
