"""SQLite queries for harvesting: checkpoints of resumable harvests.

Mixed into ``SQLiteStore``: methods use ``self.conn`` (reads, under ``self._lock``) and
``self._write()`` (one BEGIN IMMEDIATE transaction). Declare each public method on the
``Store`` interface in base.py too, so a PostgreSQL backend can implement the same.
"""

from __future__ import annotations

__all__ = ["HarvestMixin"]


class HarvestMixin:
    pass
