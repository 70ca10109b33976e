"""The only package that talks to a database. Everything else calls ``open_store``."""

from __future__ import annotations

from ..errors import StoreError
from .base import Store, StoredPaper, UpsertResult, author_key
from .sqlite import SQLiteStore

__all__ = ["open_store", "Store", "StoredPaper", "UpsertResult", "SQLiteStore", "author_key"]


def open_store(db: str, busy_timeout: float = 60.0, migrate: bool = True) -> Store:
    """Open the database named by the ``db`` setting: a file path means SQLite."""
    if db.startswith(("postgres://", "postgresql://")):
        raise StoreError("the PostgreSQL backend is not available yet; use a SQLite file path")
    store = SQLiteStore(db, busy_timeout=busy_timeout)
    if migrate:
        store.migrate()
    return store
