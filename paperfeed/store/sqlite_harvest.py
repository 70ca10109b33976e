"""SQLite queries for harvesting: checkpoints of resumable harvests.

Mixed into ``SQLiteStore``: methods use ``self.conn`` (reads, under ``self._lock``) and
``self._write()`` (one BEGIN IMMEDIATE transaction). Declare each public method on the
``Store`` interface in base.py too, so a PostgreSQL backend can implement the same.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from ..models import Paper
from .base import HarvestState, UpsertResult, dedupe_rows, prepare_paper

__all__ = ["HarvestMixin"]

_COLS = (
    "name, params, token, window_from, window_until, pages, records, complete, "
    "started_at, updated_at"
)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(row) -> HarvestState:
    name, params, token, wf, wu, pages, records, complete, started, updated = row
    return HarvestState(
        name=name,
        params=orjson.loads(params),
        token=token,
        window_from=wf,
        window_until=wu,
        pages=pages,
        records=records,
        complete=bool(complete),
        started_at=started,
        updated_at=updated,
    )


class HarvestMixin:
    def get_harvest(self, name: str) -> HarvestState | None:
        with self._lock:
            row = self.conn.execute(
                f"SELECT {_COLS} FROM harvest_state WHERE name = ?", (name,)
            ).fetchone()
        return _row(row) if row else None

    def list_harvests(self) -> list[HarvestState]:
        with self._lock:
            rows = self.conn.execute(f"SELECT {_COLS} FROM harvest_state ORDER BY name").fetchall()
        return [_row(r) for r in rows]

    def save_harvest_page(self, state: HarvestState, papers: list[Paper]) -> UpsertResult:
        # Same de-duplication as upsert_rows: one page may carry a paper twice.
        batch = dedupe_rows([prepare_paper(p) for p in papers])
        now = _now()
        state.updated_at = now
        state.started_at = state.started_at or now
        with self._write() as conn:
            result = self._upsert_in_txn(conn, batch) if batch else UpsertResult()
            conn.execute(
                f"INSERT OR REPLACE INTO harvest_state ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    state.name,
                    orjson.dumps(state.params, option=orjson.OPT_SORT_KEYS).decode(),
                    state.token,
                    state.window_from,
                    state.window_until,
                    state.pages,
                    state.records,
                    int(state.complete),
                    state.started_at,
                    state.updated_at,
                ),
            )
        return result
