"""SQLite queries for search: embeddings per model and anything the search indexes need.

Mixed into ``SQLiteStore``: methods use ``self.conn`` (reads, under ``self._lock``) and
``self._write()`` (one BEGIN IMMEDIATE transaction). Declare each public method on the
``Store`` interface in base.py too, so a PostgreSQL backend can implement the same.
"""

from __future__ import annotations

__all__ = ["VectorsMixin"]


class VectorsMixin:
    pass
