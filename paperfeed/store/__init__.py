"""The only package that talks to a database. Everything else calls ``open_store``."""

from __future__ import annotations

from .base import Store, StoredPaper, UpsertResult, author_key
from .postgres import PostgresStore, is_postgres_url, redact_url
from .sqlite import SQLiteStore

__all__ = [
    "open_store",
    "Store",
    "StoredPaper",
    "UpsertResult",
    "SQLiteStore",
    "PostgresStore",
    "author_key",
    "is_postgres_url",
    "redact_url",
]


def open_store(
    db: str, busy_timeout: float = 60.0, migrate: bool = True, pool_size: int = 8
) -> Store:
    """Open the database named by the ``db`` setting: a ``postgresql://`` URL means
    PostgreSQL (a pool of ``pool_size`` connections), anything else a SQLite file."""
    if is_postgres_url(db):
        store: Store = PostgresStore(db, pool_size=pool_size, timeout=busy_timeout)
    else:
        store = SQLiteStore(db, busy_timeout=busy_timeout)
    if migrate:
        store.migrate()
    return store
