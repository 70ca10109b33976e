"""Helpers for tests that run on either backend (the ``db`` fixture in conftest.py)."""

from __future__ import annotations

__all__ = ["is_pg", "rows"]


def is_pg(db) -> bool:
    """The ``db`` fixture's value names a PostgreSQL database."""
    return str(db).startswith(("postgresql://", "postgres://"))


def rows(store, sql: str, params=()) -> list[tuple]:
    """Run one query (SQLite's dialect; on PostgreSQL it is translated like the store's own)
    and fetch every row: for tests that look at tables directly on either backend."""
    with store._read() as conn:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
