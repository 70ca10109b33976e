"""SQLite queries for harvesting: checkpoints of resumable harvests, OAI-PMH datestamps and
deletions (withdrawn papers), and per-source success / failure times.

Mixed into ``SQLiteStore``: methods use ``conn`` (reads, under ``self._lock``) and
``self._write()`` (one BEGIN IMMEDIATE transaction). Declare each public method on the
``Store`` interface in base.py too, so a PostgreSQL backend can implement the same.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

import orjson

from ..models import Paper
from .base import HarvestState, SourceHealth, UpsertResult, dedupe_rows, prepare_paper

__all__ = ["HarvestMixin"]

_COLS = (
    "name, params, token, window_from, window_until, pages, records, complete, "
    "started_at, updated_at"
)

# The longest error text kept per source: enough for a URL and the reason, never a page.
_MAX_ERROR = 500


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


def _ids(ids: Iterable[str]) -> str:
    return orjson.dumps(list(ids)).decode()


class HarvestMixin:
    def get_harvest(self, name: str) -> HarvestState | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_COLS} FROM harvest_state WHERE name = ?", (name,)
            ).fetchone()
        return _row(row) if row else None

    def list_harvests(self) -> list[HarvestState]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_COLS} FROM harvest_state ORDER BY name").fetchall()
        return [_row(r) for r in rows]

    def save_harvest_page(
        self,
        state: HarvestState,
        papers: list[Paper],
        datestamps: dict[str, str] | None = None,
        deleted: list[tuple[str, str | None]] | None = None,
    ) -> UpsertResult:
        # Same de-duplication as upsert_rows: one page may carry a paper twice.
        batch = dedupe_rows([prepare_paper(p) for p in papers])
        datestamps = datestamps or {}
        now = _now()
        state.updated_at = now
        state.started_at = state.started_at or now
        with self._write() as conn:
            stored = self._stamps(conn, list(batch) + [d[0] for d in deleted or ()])
            # A newer datestamp is the repository's correction: it wins even with the same
            # version and dates. An older one is a stale copy: it only fills gaps.
            prefer: dict[str, bool] = {}
            for pid, stamp in datestamps.items():
                old = stored.get(pid)
                if old is not None and old[1] and stamp != old[1]:
                    prefer[pid] = stamp > old[1]
            result = self._upsert_in_txn(conn, batch, prefer) if batch else UpsertResult()
            self._apply_stamps(conn, batch, datestamps, stored)
            result.withdrawn = self._withdraw(conn, deleted or [], stored)
            conn.execute(
                f"INSERT INTO harvest_state ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (name) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in _COLS.split(", ")[1:]),
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

    @staticmethod
    def _stamps(conn, ids: list[str]) -> dict[str, tuple[int, str | None, int]]:
        """id -> (pk, oai_datestamp, withdrawn) of the stored papers among ``ids``."""
        if not ids:
            return {}
        return {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT id, pk, oai_datestamp, withdrawn FROM papers "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (_ids(ids),),
            )
        }

    @staticmethod
    def _next_rev(conn) -> int:
        return conn.execute("SELECT coalesce(max(rev), 0) + 1 FROM papers").fetchone()[0]

    def _apply_stamps(self, conn, batch, datestamps: dict[str, str], stored) -> None:
        """Record each live record's datestamp (never moving back), and bring back a
        withdrawn paper when a record newer than its deletion arrives."""
        rows = [(datestamps[pid], pid, datestamps[pid]) for pid in batch if pid in datestamps]
        if not rows:
            return
        conn.executemany(
            "UPDATE papers SET oai_datestamp = ? WHERE id = ? "
            "AND (oai_datestamp IS NULL OR oai_datestamp < ?)",
            rows,
        )
        back = [
            pid
            for pid, old in stored.items()
            if pid in datestamps and pid in batch and old[2] and (old[1] or "") < datestamps[pid]
        ]
        if back:
            # A new rev: listings' caches (feed_version) and the search indexes notice.
            conn.execute(
                "UPDATE papers SET withdrawn = 0, rev = ? "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (self._next_rev(conn), _ids(back)),
            )

    def _withdraw(self, conn, deleted: list[tuple[str, str | None]], stored) -> int:
        """Mark stored papers withdrawn; a deletion older than the record stored is stale."""
        todo: dict[str, str | None] = {}
        for pid, stamp in deleted:
            old = stored.get(pid)
            if old is None or old[2]:
                continue  # not stored here, or already withdrawn
            if stamp and old[1] and stamp < old[1]:
                continue
            todo[pid] = stamp
        if not todo:
            return 0
        rev = self._next_rev(conn)
        # The datestamp never moves back, and a deletion without one keeps the stored one
        # (CASE rather than SQLite's two-argument max(), which PostgreSQL spells greatest()).
        conn.executemany(
            "UPDATE papers SET withdrawn = 1, rev = ?, oai_datestamp = CASE "
            "WHEN ? > coalesce(oai_datestamp, '') THEN ? ELSE oai_datestamp END WHERE id = ?",
            [(rev, stamp, stamp, pid) for pid, stamp in todo.items()],
        )
        return len(todo)

    # --- per-source health ------------------------------------------------------------------
    def record_harvest_outcome(self, source: str, error: str | None = None) -> None:
        now = _now()
        with self._write() as conn:
            if error is None:
                conn.execute(
                    "INSERT INTO harvest_sources (source, last_success_at) VALUES (?, ?) "
                    "ON CONFLICT (source) DO UPDATE SET last_success_at = excluded.last_success_at",
                    (source, now),
                )
            else:
                conn.execute(
                    "INSERT INTO harvest_sources (source, last_failure_at, last_error) "
                    "VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
                    "last_failure_at = excluded.last_failure_at, last_error = excluded.last_error",
                    (source, now, error[:_MAX_ERROR]),
                )

    def harvest_summary(self) -> list[SourceHealth]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT source, last_success_at, last_failure_at, last_error "
                "FROM harvest_sources ORDER BY source"
            ).fetchall()
        return [SourceHealth(*r) for r in rows]
